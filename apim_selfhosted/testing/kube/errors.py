"""API errors of the Kubernetes emulator, rendered as the real ``Status`` objects.

The wording follows kube-apiserver (``k8s.io/apimachinery/pkg/api/errors``), so that clients
and ``kubectl`` print what they would print against a real cluster.

Example:
    >>> from apim_selfhosted.testing.kube.errors import ApiError
    >>> from apim_selfhosted.testing.kube.resources import by_key
    >>> err = ApiError.not_found(by_key("configmaps"), "x")
    >>> err.code, err.reason, err.message
    (404, 'NotFound', 'configmaps "x" not found')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from apim_selfhosted.testing.kube.resources import ResourceType


class ApiError(Exception):
    """An error the emulator answers with: HTTP ``code`` and a ``Status`` body."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = dict(headers or {})

    def status(self) -> dict[str, Any]:
        """The ``Status`` object for the response body."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body

    # --- constructors in kube-apiserver's words -------------------------------------------

    @staticmethod
    def _details(rt: ResourceType, name: str, **extra: Any) -> dict[str, Any]:
        details: dict[str, Any] = {"name": name, "kind": rt.plural}
        if rt.group:
            details["group"] = rt.group
        details.update(extra)
        return details

    @staticmethod
    def _qualified(rt: ResourceType) -> str:
        return rt.key

    @classmethod
    def not_found(cls, rt: ResourceType, name: str) -> ApiError:
        """404 ``<resource> "<name>" not found``."""
        return cls(
            404,
            "NotFound",
            f'{cls._qualified(rt)} "{name}" not found',
            details=cls._details(rt, name),
        )

    @classmethod
    def already_exists(cls, rt: ResourceType, name: str) -> ApiError:
        """409 ``<resource> "<name>" already exists``."""
        return cls(
            409,
            "AlreadyExists",
            f'{cls._qualified(rt)} "{name}" already exists',
            details=cls._details(rt, name),
        )

    @classmethod
    def conflict(cls, rt: ResourceType, name: str, why: str) -> ApiError:
        """409 ``Operation cannot be fulfilled on <resource> "<name>": <why>``."""
        return cls(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {cls._qualified(rt)} "{name}": {why}',
            details=cls._details(rt, name),
        )

    @classmethod
    def stale(cls, rt: ResourceType, name: str) -> ApiError:
        """409 for an update with an out-of-date ``resourceVersion``."""
        return cls.conflict(
            rt,
            name,
            "the object has been modified; please apply your changes "
            "to the latest version and try again",
        )

    @classmethod
    def invalid(
        cls, rt: ResourceType, name: str, causes: Sequence[tuple[str, str, str]]
    ) -> ApiError:
        """422 ``<Kind> "<name>" is invalid: <field>: <message>``.

        Args:
            rt: The resource type.
            name: The object's name.
            causes: ``(reason, field, message)`` triples; reason is ``FieldValueInvalid``,
                ``FieldValueRequired``, ``FieldValueNotSupported``, ``FieldValueForbidden``,
                ``FieldValueDuplicate``, ``FieldValueTooLong`` or ``FieldValueTypeInvalid``.
        """
        parts = [f"{field}: {message}" for _, field, message in causes]
        joined = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
        kind = f"{rt.kind}.{rt.group}" if rt.group else rt.kind
        return cls(
            422,
            "Invalid",
            f'{kind} "{name}" is invalid: {joined}',
            details=cls._details(
                rt,
                name,
                kind=rt.kind,
                causes=[{"reason": r, "message": m, "field": f} for r, f, m in causes],
            ),
        )

    @classmethod
    def forbidden(
        cls, user: str, verb: str, rt: ResourceType, namespace: str | None, name: str = ""
    ) -> ApiError:
        """403 as RBAC words it."""
        resource = f'{rt.plural} "{name}"' if name else rt.plural
        group = f'in API group "{rt.group}"'
        scope = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
        msg = (
            f'{resource} is forbidden: User "{user}" cannot {verb} resource "{rt.plural}" '
            f"{group}{scope}"
        )
        return cls(403, "Forbidden", msg, details=cls._details(rt, name))

    @classmethod
    def gone(cls, message: str = "too old resource version") -> ApiError:
        """410 ``Expired``/``Gone`` for a watch or list from a compacted resourceVersion."""
        return cls(410, "Expired", message)

    @classmethod
    def bad_request(cls, message: str) -> ApiError:
        """400 ``BadRequest``."""
        return cls(400, "BadRequest", message)

    @classmethod
    def unauthorized(cls) -> ApiError:
        """401 ``Unauthorized``."""
        return cls(401, "Unauthorized", "Unauthorized")

    @classmethod
    def method_not_allowed(cls) -> ApiError:
        """405 ``MethodNotAllowed``."""
        return cls(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )

    @classmethod
    def unsupported_media_type(cls, content_type: str) -> ApiError:
        """415 for a PATCH whose content type is not a known patch type."""
        return cls(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown "
            f"format - accepted media types include: "
            f"application/json-patch+json, "
            f"application/merge-patch+json, "
            f"application/apply-patch+yaml, "
            f"application/strategic-merge-patch+json "
            f'(got "{content_type}")',
        )

    @classmethod
    def namespace_terminating(cls, rt: ResourceType, name: str, namespace: str) -> ApiError:
        """403 for a create in a namespace being deleted."""
        return cls(
            403,
            "Forbidden",
            f'{rt.key} "{name}" is forbidden: unable to create new content in namespace '
            f"{namespace} because it is being terminated",
            details=cls._details(rt, name),
        )

    @classmethod
    def namespace_not_found(cls, namespace: str) -> ApiError:
        """404 ``namespaces "<ns>" not found`` for a create in a missing namespace."""
        return cls(
            404,
            "NotFound",
            f'namespaces "{namespace}" not found',
            details={"name": namespace, "kind": "namespaces"},
        )

    @classmethod
    def internal(cls, message: str = "Internal error occurred") -> ApiError:
        """500 ``InternalError``."""
        return cls(500, "InternalError", message)

    @classmethod
    def too_many_requests(cls, retry_after: int = 1) -> ApiError:
        """429 ``TooManyRequests`` with ``Retry-After``."""
        return cls(
            429,
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again later",
            details={"retryAfterSeconds": retry_after},
            headers={"Retry-After": str(retry_after)},
        )
