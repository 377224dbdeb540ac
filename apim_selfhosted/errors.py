"""The error tree of ``apim_selfhosted``.

Every exception the library raises on purpose derives from :class:`ApimSelfhostedError`.
Errors a caller can act on carry structured attributes; the rest chain the original
exception (``raise ... from exc``). No error text ever contains a token or a key.

::

    ApimSelfhostedError
    ├── SpecError (ValueError)             bad spec input: .source, .problems
    ├── TokenError (ValueError)            malformed, foreign or too long-lived token
    ├── AuthenticationError                credentials refused: .system
    ├── AuthorizationError                 permission missing: .system, .permission, .resource
    ├── GatewayNotFoundError (LookupError) service or gateway missing in APIM: .gateway
    ├── ManagementError                    other Azure failure, retries exhausted: .status, .code
    ├── KubernetesError                    other API-server failure: .status (the API Status object)
    │   ├── InvalidManifestError           422 Invalid: .causes
    │   ├── FieldConflictError             server-side apply conflict: .managers
    │   └── ClusterUnreachableError        no API server or unusable kubeconfig
    ├── RolloutError                       a rollout did not complete: .rollout
    ├── VerificationError                  a verification check failed: .report
    └── RotationError                      a token rotation could not complete: .result

Example:
    >>> from apim_selfhosted.errors import AuthorizationError, ApimSelfhostedError
    >>> err = AuthorizationError(
    ...     "not allowed",
    ...     system="azure",
    ...     permission="Microsoft.ApiManagement/service/gateways/generateToken/action",
    ... )
    >>> isinstance(err, ApimSelfhostedError), err.permission.split("/")[-2]
    (True, 'generateToken')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

System = Literal["azure", "kubernetes"]


class ApimSelfhostedError(Exception):
    """Base class of every error that ``apim_selfhosted`` raises on purpose."""


class SpecError(ApimSelfhostedError, ValueError):
    """A spec (file, dict or keyword arguments) is not valid.

    Attributes:
        source: Where the spec came from (a file path or ``"<input>"``).
        problems: ``(field path, message)`` pairs, one per problem, e.g.
            ``("deployment.replicas", "Input should be greater than or equal to 1")``.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str = "<input>",
        problems: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.source = source
        self.problems: tuple[tuple[str, str], ...] = tuple(problems)


class TokenError(ApimSelfhostedError, ValueError):
    """A gateway token is malformed, belongs to another gateway or lives too long.

    The message never contains the token itself.
    """


class AuthenticationError(ApimSelfhostedError):
    """The credentials were refused (HTTP 401).

    Attributes:
        system: ``"azure"`` or ``"kubernetes"``.
    """

    def __init__(self, message: str, *, system: System) -> None:
        super().__init__(message)
        self.system: System = system


class AuthorizationError(ApimSelfhostedError):
    """The credentials lack a permission (HTTP 403).

    Attributes:
        system: ``"azure"`` or ``"kubernetes"``.
        permission: The missing permission in the system's own words: an Azure action such as
            ``Microsoft.ApiManagement/service/gateways/generateToken/action``, or a Kubernetes
            verb and resource such as ``patch deployments.apps``.
        resource: The resource the call was about (an ARM id or ``namespace/kind/name``).
        namespace: For Kubernetes, the namespace of the request, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        system: System,
        permission: str,
        resource: str | None = None,
        namespace: str | None = None,
    ) -> None:
        super().__init__(message)
        self.system: System = system
        self.permission = permission
        self.resource = resource
        self.namespace = namespace


class GatewayNotFoundError(ApimSelfhostedError, LookupError):
    """The API Management service or the gateway does not exist.

    Attributes:
        gateway: The :class:`~apim_selfhosted.models.Gateway` that was looked up.
        missing: ``"service"`` or ``"gateway"``: which of the two is missing.
    """

    def __init__(self, message: str, *, gateway: Any, missing: str = "gateway") -> None:
        super().__init__(message)
        self.gateway = gateway
        self.missing = missing


class ManagementError(ApimSelfhostedError):
    """An Azure management call failed for another reason (including exhausted retries).

    Attributes:
        status: The last HTTP status code, or ``None`` if no response arrived.
        code: ARM's error code (``error.code``), if any.
    """

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class KubernetesError(ApimSelfhostedError):
    """A Kubernetes API call failed.

    Attributes:
        status: The API server's ``Status`` object as a dict (``reason``, ``message``,
            ``details``, ``code``), or an empty dict when no response arrived.
    """

    def __init__(self, message: str, *, status: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status: dict[str, Any] = dict(status or {})

    @property
    def code(self) -> int | None:
        """The HTTP status code from the ``Status`` object, if any."""
        code = self.status.get("code")
        return code if isinstance(code, int) else None

    @property
    def reason(self) -> str | None:
        """The ``Status.reason`` (``NotFound``, ``Invalid``, ``Conflict`` ...), if any."""
        reason = self.status.get("reason")
        return reason if isinstance(reason, str) else None


class InvalidManifestError(KubernetesError):
    """The API server refused a manifest as invalid (HTTP 422).

    Attributes:
        causes: ``(field, message)`` pairs from ``Status.details.causes``.
    """

    def __init__(
        self,
        message: str,
        *,
        status: Mapping[str, Any] | None = None,
        causes: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message, status=status)
        self.causes: tuple[tuple[str, str], ...] = tuple(causes)


class FieldConflictError(KubernetesError):
    """Server-side apply found fields owned by another field manager (HTTP 409).

    Attributes:
        managers: The names of the field managers that own the conflicting fields.
        fields: The conflicting field paths as the API server reported them.
    """

    def __init__(
        self,
        message: str,
        *,
        status: Mapping[str, Any] | None = None,
        managers: Sequence[str] = (),
        fields: Sequence[str] = (),
    ) -> None:
        super().__init__(message, status=status)
        self.managers: tuple[str, ...] = tuple(managers)
        self.fields: tuple[str, ...] = tuple(fields)


class ClusterUnreachableError(KubernetesError):
    """No API server answered, or the kubeconfig cannot be used."""


class RolloutError(ApimSelfhostedError):
    """A rollout did not complete.

    Attributes:
        rollout: The final rollout status (a ``RolloutStatus``), naming the reason.
    """

    def __init__(self, message: str, *, rollout: Any = None) -> None:
        super().__init__(message)
        self.rollout = rollout


class VerificationError(ApimSelfhostedError):
    """A gateway failed verification (``VerifyReport.raise_for_failure``).

    Attributes:
        report: The ``VerifyReport`` with the failed checks, their evidence and advice.
    """

    def __init__(self, message: str, *, report: Any = None) -> None:
        super().__init__(message)
        self.report = report


class RotationError(ApimSelfhostedError):
    """A token rotation could not complete.

    Attributes:
        result: The ``RotateResult`` describing what happened (rolled back, yielded ...).
    """

    def __init__(self, message: str, *, result: Any = None) -> None:
        super().__init__(message)
        self.result = result
