"""Deploy, verify and keep alive the Azure API Management self-hosted gateway on Kubernetes.

The public names are importable from the package root. Importing the package is light: the
Azure SDK and the Kubernetes client are imported only when a client that needs them is used.

Example:
    >>> import apim_selfhosted
    >>> "ApimSelfhostedError" in apim_selfhosted.__all__
    True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module that defines it. Resolved on first attribute access (PEP 562), so that
# `import apim_selfhosted` stays light. Keep in step with the TYPE_CHECKING block below.
_EXPORTS: dict[str, str] = {
    "ApimSelfhostedError": "apim_selfhosted.errors",
    "AuthenticationError": "apim_selfhosted.errors",
    "AuthorizationError": "apim_selfhosted.errors",
    "AzureCloud": "apim_selfhosted.models",
    "ClusterUnreachableError": "apim_selfhosted.errors",
    "DeploymentSpec": "apim_selfhosted.models",
    "EntraAppAuth": "apim_selfhosted.models",
    "ExistingSecretAuth": "apim_selfhosted.models",
    "FieldConflictError": "apim_selfhosted.errors",
    "Gateway": "apim_selfhosted.models",
    "GatewayNotFoundError": "apim_selfhosted.errors",
    "GatewayTokenAuth": "apim_selfhosted.models",
    "InvalidManifestError": "apim_selfhosted.errors",
    "KeyType": "apim_selfhosted.models",
    "KubernetesError": "apim_selfhosted.errors",
    "ManagementError": "apim_selfhosted.errors",
    "RolloutError": "apim_selfhosted.errors",
    "RotationError": "apim_selfhosted.errors",
    "SecretKeyRef": "apim_selfhosted.models",
    "SpecError": "apim_selfhosted.errors",
    "Token": "apim_selfhosted.models",
    "TokenError": "apim_selfhosted.errors",
    "WorkloadIdentityAuth": "apim_selfhosted.models",
}

# A literal list so that linters and type checkers see the re-exports; a test keeps it equal
# to the keys of _EXPORTS (plus __version__) and sorted.
__all__ = [
    "ApimSelfhostedError",
    "AuthenticationError",
    "AuthorizationError",
    "AzureCloud",
    "ClusterUnreachableError",
    "DeploymentSpec",
    "EntraAppAuth",
    "ExistingSecretAuth",
    "FieldConflictError",
    "Gateway",
    "GatewayNotFoundError",
    "GatewayTokenAuth",
    "InvalidManifestError",
    "KeyType",
    "KubernetesError",
    "ManagementError",
    "RolloutError",
    "RotationError",
    "SecretKeyRef",
    "SpecError",
    "Token",
    "TokenError",
    "WorkloadIdentityAuth",
    "__version__",
]

if TYPE_CHECKING:
    from apim_selfhosted.errors import (
        ApimSelfhostedError,
        AuthenticationError,
        AuthorizationError,
        ClusterUnreachableError,
        FieldConflictError,
        GatewayNotFoundError,
        InvalidManifestError,
        KubernetesError,
        ManagementError,
        RolloutError,
        RotationError,
        SpecError,
        TokenError,
    )
    from apim_selfhosted.models import (
        AzureCloud,
        DeploymentSpec,
        EntraAppAuth,
        ExistingSecretAuth,
        Gateway,
        GatewayTokenAuth,
        KeyType,
        SecretKeyRef,
        Token,
        WorkloadIdentityAuth,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'apim_selfhosted' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
