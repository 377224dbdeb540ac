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
    "AdoptResult": "apim_selfhosted.adoption",
    "ApimSelfhostedError": "apim_selfhosted.errors",
    "Applied": "apim_selfhosted.results",
    "AuthenticationError": "apim_selfhosted.errors",
    "AuthorizationError": "apim_selfhosted.errors",
    "AzureCloud": "apim_selfhosted.models",
    "Check": "apim_selfhosted.results",
    "ClusterUnreachableError": "apim_selfhosted.errors",
    "DeployResult": "apim_selfhosted.results",
    "DeploymentSpec": "apim_selfhosted.models",
    "EntraAppAuth": "apim_selfhosted.models",
    "ExistingObjects": "apim_selfhosted.models",
    "ExistingSecretAuth": "apim_selfhosted.models",
    "FieldConflictError": "apim_selfhosted.errors",
    "Finding": "apim_selfhosted.results",
    "Gateway": "apim_selfhosted.models",
    "GatewayNotFoundError": "apim_selfhosted.errors",
    "GatewayStatus": "apim_selfhosted.results",
    "GatewayTokenAuth": "apim_selfhosted.models",
    "ImportIssue": "apim_selfhosted.adoption",
    "ImportReport": "apim_selfhosted.adoption",
    "InvalidManifestError": "apim_selfhosted.errors",
    "IssueKind": "apim_selfhosted.adoption",
    "KeyType": "apim_selfhosted.models",
    "KubernetesApplier": "apim_selfhosted.kube",
    "KubernetesError": "apim_selfhosted.errors",
    "ManagementClient": "apim_selfhosted.management",
    "ManagementError": "apim_selfhosted.errors",
    "ObjectTakeover": "apim_selfhosted.adoption",
    "Plan": "apim_selfhosted.results",
    "ProductionProfile": "apim_selfhosted.profile",
    "ProgressEvent": "apim_selfhosted.results",
    "RolloutError": "apim_selfhosted.errors",
    "RolloutStatus": "apim_selfhosted.results",
    "RotateResult": "apim_selfhosted.rotation",
    "RotationError": "apim_selfhosted.errors",
    "SecretKeyRef": "apim_selfhosted.models",
    "SpecError": "apim_selfhosted.errors",
    "Token": "apim_selfhosted.models",
    "TokenError": "apim_selfhosted.errors",
    "VerificationError": "apim_selfhosted.errors",
    "VerifyReport": "apim_selfhosted.results",
    "WorkloadIdentityAuth": "apim_selfhosted.models",
    "adopt": "apim_selfhosted.adoption",
    "deploy": "apim_selfhosted.steps",
    "lint": "apim_selfhosted.profile",
    "render": "apim_selfhosted.rendering",
    "render_rotator": "apim_selfhosted.rotation",
    "rotate": "apim_selfhosted.rotation",
    "rotate_many": "apim_selfhosted.rotation",
    "spec_from_helm_values": "apim_selfhosted.helm",
    "spec_from_manifests": "apim_selfhosted.adoption",
    "spec_to_helm_values": "apim_selfhosted.helm",
    "to_yaml": "apim_selfhosted.rendering",
    "token_secret_name": "apim_selfhosted.rendering",
    "verify": "apim_selfhosted.steps",
}

# A literal list so that linters and type checkers see the re-exports; a test keeps it equal
# to the keys of _EXPORTS (plus __version__) and sorted.
__all__ = [
    "AdoptResult",
    "ApimSelfhostedError",
    "Applied",
    "AuthenticationError",
    "AuthorizationError",
    "AzureCloud",
    "Check",
    "ClusterUnreachableError",
    "DeployResult",
    "DeploymentSpec",
    "EntraAppAuth",
    "ExistingObjects",
    "ExistingSecretAuth",
    "FieldConflictError",
    "Finding",
    "Gateway",
    "GatewayNotFoundError",
    "GatewayStatus",
    "GatewayTokenAuth",
    "ImportIssue",
    "ImportReport",
    "InvalidManifestError",
    "IssueKind",
    "KeyType",
    "KubernetesApplier",
    "KubernetesError",
    "ManagementClient",
    "ManagementError",
    "ObjectTakeover",
    "Plan",
    "ProductionProfile",
    "ProgressEvent",
    "RolloutError",
    "RolloutStatus",
    "RotateResult",
    "RotationError",
    "SecretKeyRef",
    "SpecError",
    "Token",
    "TokenError",
    "VerificationError",
    "VerifyReport",
    "WorkloadIdentityAuth",
    "__version__",
    "adopt",
    "deploy",
    "lint",
    "render",
    "render_rotator",
    "rotate",
    "rotate_many",
    "spec_from_helm_values",
    "spec_from_manifests",
    "spec_to_helm_values",
    "to_yaml",
    "token_secret_name",
    "verify",
]

if TYPE_CHECKING:
    from apim_selfhosted.adoption import (
        AdoptResult,
        ImportIssue,
        ImportReport,
        IssueKind,
        ObjectTakeover,
        adopt,
        spec_from_manifests,
    )
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
        VerificationError,
    )
    from apim_selfhosted.helm import spec_from_helm_values, spec_to_helm_values
    from apim_selfhosted.kube import (
        KubernetesApplier,
    )
    from apim_selfhosted.management import ManagementClient
    from apim_selfhosted.models import (
        AzureCloud,
        DeploymentSpec,
        EntraAppAuth,
        ExistingObjects,
        ExistingSecretAuth,
        Gateway,
        GatewayTokenAuth,
        KeyType,
        SecretKeyRef,
        Token,
        WorkloadIdentityAuth,
    )
    from apim_selfhosted.profile import (
        ProductionProfile,
        lint,
    )
    from apim_selfhosted.rendering import (
        render,
        to_yaml,
        token_secret_name,
    )
    from apim_selfhosted.results import (
        Applied,
        Check,
        DeployResult,
        Finding,
        GatewayStatus,
        Plan,
        ProgressEvent,
        RolloutStatus,
        VerifyReport,
    )
    from apim_selfhosted.rotation import (
        RotateResult,
        render_rotator,
        rotate,
        rotate_many,
    )
    from apim_selfhosted.steps import (
        deploy,
        verify,
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
