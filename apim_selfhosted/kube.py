"""``KubernetesApplier``: server-side apply, diff, prune and rollout watching.

This is the only module that imports the ``kubernetes`` client (on first use, inside the
constructors). Requests go through the client's ``ApiClient`` and its configuration, so
authentication (tokens, client certificates, exec plugins), TLS and proxies work as with the
official client, but the process-wide default configuration is never read or changed.

Server-side apply is one ``PATCH`` per object with ``application/apply-patch+yaml``, a field
manager and ``force``; rollouts are followed with watches (never by polling) that resume from the
last resourceVersion when the connection drops and start over (relist) on ``410 Gone``.

Errors the caller can act on are mapped to the library's tree: 403 to
:class:`~apim_selfhosted.errors.AuthorizationError` (naming the verb, resource and namespace),
422 to :class:`~apim_selfhosted.errors.InvalidManifestError`, apply conflicts to
:class:`~apim_selfhosted.errors.FieldConflictError`, no server or unusable kubeconfig to
:class:`~apim_selfhosted.errors.ClusterUnreachableError`.

Example:
    >>> from apim_selfhosted.kube import object_path
    >>> object_path({"apiVersion": "apps/v1", "kind": "Deployment",
    ...              "metadata": {"name": "gw", "namespace": "apim"}})
    '/apis/apps/v1/namespaces/apim/deployments/gw'
"""

from __future__ import annotations

import copy
import json
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import quote

from apim_selfhosted.errors import (
    AuthenticationError,
    AuthorizationError,
    ClusterUnreachableError,
    FieldConflictError,
    InvalidManifestError,
    KubernetesError,
)
from apim_selfhosted.results import (
    Applied,
    FieldChange,
    ObjectRef,
    Plan,
    PlannedChange,
    PodProblem,
    ProgressEvent,
    RolloutStatus,
)

if TYPE_CHECKING:
    from apim_selfhosted.models import DeploymentSpec

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_FIELD_MANAGER",
    "POD_START_FAILURES",
    "KubernetesApplier",
    "applied_configuration",
    "collection_path",
    "object_path",
    "pod_problems",
    "rollout_state",
    "secret_names_in_template",
]

#: The field manager this library applies with.
DEFAULT_FIELD_MANAGER = "apim-selfhosted"

#: Container waiting reasons that mean a pod cannot start without a change to its template.
POD_START_FAILURES = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)

# kind -> (plural, namespaced) for the kinds this library writes or reads.
_KINDS: dict[str, tuple[str, bool]] = {
    "Namespace": ("namespaces", False),
    "ServiceAccount": ("serviceaccounts", True),
    "Secret": ("secrets", True),
    "ConfigMap": ("configmaps", True),
    "PersistentVolumeClaim": ("persistentvolumeclaims", True),
    "Service": ("services", True),
    "Pod": ("pods", True),
    "Event": ("events", True),
    "Deployment": ("deployments", True),
    "ReplicaSet": ("replicasets", True),
    "PodDisruptionBudget": ("poddisruptionbudgets", True),
    "HorizontalPodAutoscaler": ("horizontalpodautoscalers", True),
    "NetworkPolicy": ("networkpolicies", True),
    "Role": ("roles", True),
    "RoleBinding": ("rolebindings", True),
    "ClusterRole": ("clusterroles", False),
    "ClusterRoleBinding": ("clusterrolebindings", False),
    "CronJob": ("cronjobs", True),
    "Job": ("jobs", True),
    "Lease": ("leases", True),
}

# What prune looks at: the kinds that rendering produces in the gateway's namespace.
_PRUNABLE: tuple[tuple[str, str], ...] = (
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("policy/v1", "PodDisruptionBudget"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "ServiceAccount"),
)

# Labels that select "this library's objects of this gateway".
_SELECTOR_LABELS = ("app.kubernetes.io/managed-by", "app.kubernetes.io/instance")
_COMPONENT_LABEL = "app.kubernetes.io/component"

# Fields the API server owns; ignored when comparing a desired object with a live one.
_SERVER_METADATA = (
    "managedFields",
    "resourceVersion",
    "generation",
    "uid",
    "creationTimestamp",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
_SERVER_ANNOTATIONS = ("deployment.kubernetes.io/revision",)

_REDACTED = "<redacted>"
_CONFLICT_MANAGER_RE = re.compile(r'conflict with "([^"]+)"')
_FORBIDDEN_RE = re.compile(r'cannot (\w+) resource "([^"]+)"(?: in API group "([^"]*)")?')
_INVALID_VALUE_RE = re.compile(r'Invalid value: "(?:[^"\\]|\\.)*"')

EventCallback = Callable[[ProgressEvent], None]


def _split_api_version(api_version: str) -> tuple[str, str]:
    if "/" in api_version:
        group, version = api_version.split("/", 1)
        return group, version
    return "", api_version


def _kind_info(kind: str) -> tuple[str, bool]:
    try:
        return _KINDS[kind]
    except KeyError:
        raise ValueError(
            f"kind {kind!r} is not one this library manages; known kinds: {sorted(_KINDS)}"
        ) from None


def collection_path(api_version: str, kind: str, namespace: str | None) -> str:
    """The URL path of a collection (``/api/v1/namespaces/apim/secrets``).

    Args:
        api_version: ``v1`` or ``group/version``.
        kind: The kind, e.g. ``Secret``.
        namespace: The namespace for namespaced kinds; ``None`` lists across namespaces.

    Returns:
        The path, without host.

    Raises:
        ValueError: The kind is not one this library knows.

    Example:
        >>> collection_path("apps/v1", "Deployment", "apim")
        '/apis/apps/v1/namespaces/apim/deployments'
    """
    plural, namespaced = _kind_info(kind)
    group, version = _split_api_version(api_version)
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    if namespaced and namespace:
        base += f"/namespaces/{quote(namespace, safe='')}"
    return f"{base}/{plural}"


def object_path(manifest: Mapping[str, Any]) -> str:
    """The URL path of the object a manifest describes.

    Args:
        manifest: A manifest with ``apiVersion``, ``kind`` and ``metadata.name`` (and
            ``metadata.namespace`` for namespaced kinds).

    Returns:
        The path, without host.

    Raises:
        ValueError: A required field is missing or the kind is unknown.

    Example:
        >>> object_path({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apim"}})
        '/api/v1/namespaces/apim'
    """
    ref = _ref(manifest)
    return _ref_path(ref)


def _ref_path(ref: ObjectRef) -> str:
    return f"{collection_path(ref.api_version, ref.kind, ref.namespace)}/{quote(ref.name, safe='')}"


def _ref(manifest: Mapping[str, Any]) -> ObjectRef:
    api_version = manifest.get("apiVersion")
    kind = manifest.get("kind")
    metadata = manifest.get("metadata") or {}
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if not isinstance(api_version, str) or not isinstance(kind, str) or not isinstance(name, str):
        raise ValueError(
            "a manifest needs apiVersion, kind and metadata.name (strings); got "
            f"apiVersion={api_version!r}, kind={kind!r}, metadata.name={name!r}"
        )
    _, namespaced = _kind_info(kind)
    namespace = metadata.get("namespace") if namespaced else None
    if namespaced and not isinstance(namespace, str):
        raise ValueError(f"{kind} {name!r} needs metadata.namespace")
    return ObjectRef(api_version=api_version, kind=kind, name=name, namespace=namespace)


def _resource_name(api_version: str, kind: str) -> str:
    plural, _ = _kind_info(kind)
    group, _ = _split_api_version(api_version)
    return f"{plural}.{group}" if group else plural


def _normalized(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy without the fields the API server owns (for comparisons)."""
    out = copy.deepcopy(dict(obj))
    out.pop("status", None)
    metadata = out.get("metadata")
    if isinstance(metadata, dict):
        for key in _SERVER_METADATA:
            metadata.pop(key, None)
        annotations = metadata.get("annotations")
        if isinstance(annotations, dict):
            for key in _SERVER_ANNOTATIONS:
                annotations.pop(key, None)
            if not annotations:
                metadata.pop("annotations", None)
    return out


def _field_changes(before: Any, after: Any, path: str = "") -> list[FieldChange]:
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        changes: list[FieldChange] = []
        for key in sorted(set(before) | set(after)):
            sub = f"{path}.{key}" if path else str(key)
            changes.extend(_field_changes(before.get(key), after.get(key), sub))
        return changes
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        changes = []
        for index, (b, a) in enumerate(zip(before, after, strict=True)):
            changes.extend(_field_changes(b, a, f"{path}[{index}]"))
        return changes
    if before == after:
        return []
    return [FieldChange(path=path, before=before, after=after)]


def _redact_secret_changes(kind: str, changes: list[FieldChange]) -> list[FieldChange]:
    if kind != "Secret":
        return changes
    out = []
    for change in changes:
        if change.path.startswith(("data", "stringData")):
            out.append(
                FieldChange(
                    path=change.path,
                    before=None if change.before is None else _REDACTED,
                    after=None if change.after is None else _REDACTED,
                )
            )
        else:
            out.append(change)
    return out


def _status_of(body: bytes | str | None) -> dict[str, Any]:
    if not body:
        return {}
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        return {"message": str(body)[:300] if isinstance(body, str) else ""}
    return data if isinstance(data, dict) else {}


def _emit(on_event: EventCallback | None, step: str, message: str, **data: Any) -> None:
    logger.info("%s: %s", step, message)
    if on_event is not None:
        on_event(ProgressEvent(step=step, message=message, data=data))


class KubernetesApplier:
    """Applies manifests to a cluster and follows rollouts, as a careful kubectl user would.

    Build it from a kubeconfig (:meth:`from_kubeconfig`), from the pod's service account
    (:meth:`in_cluster`) or from a ``kubernetes.client.ApiClient`` you configured. It closes the
    client when used as a context manager (only a client it created itself).

    Args:
        api_client: A ``kubernetes.client.ApiClient``.
        request_timeout: Seconds to wait for one ordinary (non-watch) request.

    Example:
        >>> from kubernetes.client import ApiClient, Configuration
        >>> cfg = Configuration()
        >>> cfg.host = "https://127.0.0.1:6443"
        >>> with KubernetesApplier(ApiClient(cfg)) as kube:
        ...     kube.host
        'https://127.0.0.1:6443'
    """

    def __init__(self, api_client: Any, *, request_timeout: float = 30.0) -> None:
        self._api = api_client
        self._owns_client = False
        self._request_timeout = request_timeout

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, *, context: str | None = None) -> Self:
        """A client from a kubeconfig file, leaving the process-wide default untouched.

        Args:
            path: The kubeconfig; ``None`` means ``$KUBECONFIG`` or ``~/.kube/config``.
            context: The context to use; ``None`` means the file's current context.

        Returns:
            The applier (it owns and closes its client).

        Raises:
            ClusterUnreachableError: The file is missing or unusable, or the context is unknown.

        Example:
            >>> KubernetesApplier.from_kubeconfig("/nonexistent/kubeconfig")
            Traceback (most recent call last):
            ...
            apim_selfhosted.errors.ClusterUnreachableError: cannot use kubeconfig ...
        """
        from kubernetes import config as kube_config
        from kubernetes.client import Configuration

        where = path or "the default kubeconfig ($KUBECONFIG or ~/.kube/config)"
        try:
            cfg = type.__call__(Configuration)
            api = kube_config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=path, context=context, persist_config=False, client_configuration=cfg
            )
        except (kube_config.ConfigException, OSError, ValueError, TypeError, KeyError) as exc:
            raise ClusterUnreachableError(
                f"cannot use kubeconfig {where}"
                + (f" (context {context!r})" if context else "")
                + f": {_first_line(exc)}"
            ) from exc
        applier = cls(api)
        applier._owns_client = True
        return applier

    @classmethod
    def in_cluster(cls) -> Self:
        """A client from the pod's service account (token and CA mounted by Kubernetes).

        Returns:
            The applier (it owns and closes its client).

        Raises:
            ClusterUnreachableError: Not running in a pod (no service account mounted).

        Example:
            >>> KubernetesApplier.in_cluster()  # doctest: +SKIP
        """
        from kubernetes import config as kube_config
        from kubernetes.client import ApiClient, Configuration

        try:
            cfg = type.__call__(Configuration)
            kube_config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        except kube_config.ConfigException as exc:
            raise ClusterUnreachableError(
                f"not running inside a Kubernetes pod: {_first_line(exc)}"
            ) from exc
        applier = cls(ApiClient(cfg))
        applier._owns_client = True
        return applier

    @property
    def host(self) -> str:
        """The API server URL."""
        return str(self._api.configuration.host)

    def close(self) -> None:
        """Closes the client's connections, if this applier created the client.

        Example:
            >>> from kubernetes.client import ApiClient, Configuration
            >>> KubernetesApplier(ApiClient(Configuration())).close()
        """
        if self._owns_client:
            self._api.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KubernetesApplier(host={self.host!r})"

    # ------------------------------------------------------------------ low-level requests

    def _open(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str | None = None,
        accept: str = "application/json",
        timeout: float | tuple[float, float] | None = None,
    ) -> Any:
        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            request = self._api.param_serialize(
                method,
                path,
                query_params=list(query),
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            return self._api.call_api(
                *request, _request_timeout=timeout if timeout is not None else self._request_timeout
            )
        except Exception as exc:
            raise _transport_error(exc, self.host) from exc

    def _call(
        self,
        method: str,
        path: str,
        *,
        verb: str,
        resource: str,
        namespace: str | None,
        name: str | None = None,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str | None = None,
        accept: str = "application/json",
        allow_not_found: bool = False,
    ) -> tuple[int, Any]:
        resp = self._open(
            method, path, query=query, body=body, content_type=content_type, accept=accept
        )
        try:
            data = resp.read()
        except Exception as exc:
            raise _transport_error(exc, self.host) from exc
        status = int(resp.status)
        if 200 <= status < 300:
            if accept != "application/json":
                return status, data.decode("utf-8", errors="replace")
            return status, json.loads(data) if data else {}
        if status == 404 and allow_not_found:
            return status, None
        raise _api_error(
            status, _status_of(data), verb=verb, resource=resource, namespace=namespace, name=name
        )

    # ------------------------------------------------------------------ reads

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """Reads one object.

        Args:
            api_version: ``v1`` or ``group/version``.
            kind: The kind, e.g. ``Deployment``.
            name: The object's name.
            namespace: Its namespace (for namespaced kinds).

        Returns:
            The object as a dict, or ``None`` when it does not exist.

        Raises:
            AuthorizationError: The credentials may not ``get`` it.
            KubernetesError: Any other API failure.

        Example:
            >>> kube.get("apps/v1", "Deployment", "gw1", "apim")  # doctest: +SKIP
        """
        ref = ObjectRef(api_version=api_version, kind=kind, name=name, namespace=namespace)
        _, data = self._call(
            "GET",
            _ref_path(ref),
            verb="get",
            resource=_resource_name(api_version, kind),
            namespace=namespace,
            name=name,
            allow_not_found=True,
        )
        return data if isinstance(data, dict) else None

    def list_objects(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        """Lists objects of a kind.

        Args:
            api_version: ``v1`` or ``group/version``.
            kind: The kind.
            namespace: The namespace, or ``None`` for all namespaces.
            label_selector: A label selector such as ``app=gw,tier!=web``.
            field_selector: A field selector such as ``metadata.name=gw``.

        Returns:
            The items (each with ``apiVersion`` and ``kind`` filled in).

        Raises:
            AuthorizationError: The credentials may not ``list`` them.
            KubernetesError: Any other API failure.

        Example:
            >>> kube.list_objects("v1", "Pod", "apim", label_selector="app=gw1")  # doctest: +SKIP
        """
        query = []
        if label_selector:
            query.append(("labelSelector", label_selector))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        _, data = self._call(
            "GET",
            collection_path(api_version, kind, namespace),
            verb="list",
            resource=_resource_name(api_version, kind),
            namespace=namespace,
            query=query,
        )
        items = data.get("items") or []
        for item in items:
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return list(items)

    def pod_log(
        self,
        name: str,
        namespace: str,
        *,
        container: str | None = None,
        tail_lines: int | None = 200,
        previous: bool = False,
    ) -> str:
        """Reads a pod's container log.

        Args:
            name: The pod.
            namespace: Its namespace.
            container: The container (needed when the pod has several).
            tail_lines: Only the last lines; ``None`` for the whole log.
            previous: The log of the previous (crashed) container instance.

        Returns:
            The log text.

        Raises:
            AuthorizationError: The credentials may not ``get pods/log``.
            KubernetesError: Any other API failure (e.g. no such pod).

        Example:
            >>> kube.pod_log("gw1-7d4b9-abcde", "apim", tail_lines=50)  # doctest: +SKIP
        """
        query: list[tuple[str, str]] = []
        if container:
            query.append(("container", container))
        if tail_lines is not None:
            query.append(("tailLines", str(tail_lines)))
        if previous:
            query.append(("previous", "true"))
        path = f"{collection_path('v1', 'Pod', namespace)}/{quote(name, safe='')}/log"
        _, text = self._call(
            "GET",
            path,
            verb="get",
            resource="pods/log",
            namespace=namespace,
            name=name,
            query=query,
            accept="*/*",
        )
        return str(text)

    def create(
        self,
        manifest: Mapping[str, Any],
        *,
        field_manager: str = DEFAULT_FIELD_MANAGER,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Creates an object (``POST``); fails if it exists.

        Args:
            manifest: The object.
            field_manager: The field manager recorded for its fields.
            dry_run: Ask the server to check without creating.

        Returns:
            The created object as the server returned it.

        Raises:
            KubernetesError: It exists already (``reason == "AlreadyExists"``, 409) or another
                API failure.
            AuthorizationError: The credentials may not ``create`` it.
            InvalidManifestError: The server refused it (422).

        Example:
            >>> lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            ...          "metadata": {"name": "rotation", "namespace": "apim"}}
            >>> kube.create(lease)  # doctest: +SKIP
        """
        return self._write("create", manifest, field_manager=field_manager, dry_run=dry_run)

    def replace(
        self,
        manifest: Mapping[str, Any],
        *,
        field_manager: str = DEFAULT_FIELD_MANAGER,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Replaces an object (``PUT``); with ``metadata.resourceVersion`` set, only that version.

        Optimistic concurrency: when someone changed the object since it was read, the server
        answers 409 ``Conflict`` and nothing is written.

        Args:
            manifest: The whole object, usually as read and then changed.
            field_manager: The field manager recorded for changed fields.
            dry_run: Ask the server to check without writing.

        Returns:
            The object as the server stored it.

        Raises:
            KubernetesError: A newer version exists (``reason == "Conflict"``), the object is
                gone (``NotFound``), or another API failure.
            AuthorizationError: The credentials may not ``update`` it.
            InvalidManifestError: The server refused it (422).

        Example:
            >>> lease = kube.get("coordination.k8s.io/v1", "Lease", "r", "apim")  # doctest: +SKIP
            >>> kube.replace({**lease, "spec": {"holderIdentity": "me"}})  # doctest: +SKIP
        """
        return self._write("update", manifest, field_manager=field_manager, dry_run=dry_run)

    def _write(
        self, verb: str, manifest: Mapping[str, Any], *, field_manager: str, dry_run: bool
    ) -> dict[str, Any]:
        """A whole-object write: ``create`` POSTs to the collection, ``update`` PUTs the object."""
        ref = _ref(manifest)
        query = [("fieldManager", field_manager)]
        if dry_run:
            query.append(("dryRun", "All"))
        if verb == "create":
            method, path = "POST", collection_path(ref.api_version, ref.kind, ref.namespace)
        else:
            method, path = "PUT", _ref_path(ref)
        _, data = self._call(
            method,
            path,
            verb=verb,
            resource=_resource_name(ref.api_version, ref.kind),
            namespace=ref.namespace,
            name=ref.name,
            query=query,
            body=dict(manifest),
            content_type="application/json",
        )
        return dict(data)

    def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        patch: Any,
        *,
        patch_type: str = "merge",
        field_manager: str = DEFAULT_FIELD_MANAGER,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Patches an object with a JSON patch, a merge patch or a strategic merge patch.

        Args:
            api_version: ``v1`` or ``group/version``.
            kind: The kind.
            name: The object's name.
            namespace: Its namespace.
            patch: A list of RFC 6902 operations (``json``) or a partial object.
            patch_type: ``json`` (RFC 6902), ``merge`` (RFC 7386) or ``strategic``.
            field_manager: The field manager recorded for changed fields.
            dry_run: Ask the server to check without writing.

        Returns:
            The patched object.

        Raises:
            ValueError: ``patch_type`` is not one of the three.
            KubernetesError: A ``test`` operation failed (``Invalid``/``Conflict``), the object
                is gone, or another API failure.
            AuthorizationError: The credentials may not ``patch`` it.

        Example:
            >>> kube.patch("apps/v1", "Deployment", "gw1", "apim",
            ...            {"spec": {"replicas": 3}})  # doctest: +SKIP
        """
        content_types = {
            "json": "application/json-patch+json",
            "merge": "application/merge-patch+json",
            "strategic": "application/strategic-merge-patch+json",
        }
        if patch_type not in content_types:
            raise ValueError(
                f"patch_type must be one of {sorted(content_types)}, got {patch_type!r}"
            )
        if patch_type == "json" and not isinstance(patch, list):
            raise ValueError("a json patch is a list of RFC 6902 operations")
        ref = ObjectRef(api_version=api_version, kind=kind, name=name, namespace=namespace)
        query = [("fieldManager", field_manager)]
        if dry_run:
            query.append(("dryRun", "All"))
        _, data = self._call(
            "PATCH",
            _ref_path(ref),
            verb="patch",
            resource=_resource_name(api_version, kind),
            namespace=namespace,
            name=name,
            query=query,
            body=patch,
            content_type=content_types[patch_type],
        )
        return dict(data)

    def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        timeout: float = 60.0,
    ) -> Iterator[dict[str, Any]]:
        """Watches objects; yields ``{"type": ADDED|MODIFIED|DELETED, "object": {...}}`` events.

        Without ``resource_version`` it starts with an ``ADDED`` event per existing object. A
        dropped connection is resumed from the last resourceVersion seen; when the server no
        longer has that version (410 Gone) the watch starts over, so existing objects come
        again as ``ADDED`` (as an informer's relist). Ends after ``timeout`` seconds, or when
        the caller stops iterating.

        Args:
            api_version: ``v1`` or ``group/version``.
            kind: The kind.
            namespace: The namespace, or ``None`` for all namespaces.
            label_selector: A label selector.
            field_selector: A field selector, e.g. ``metadata.name=gw1``.
            resource_version: Where to start (a list's resourceVersion).
            timeout: Seconds to watch in all.

        Yields:
            The events, bookmarks left out.

        Raises:
            AuthorizationError: The credentials may not ``watch`` them.
            ClusterUnreachableError: The connection kept dropping.
            KubernetesError: Any other API failure.

        Example:
            >>> for event in kube.watch("v1", "Pod", "apim", timeout=30):  # doctest: +SKIP
            ...     print(event.get("type"))
        """
        deadline = time.monotonic() + timeout
        base = []
        if label_selector:
            base.append(("labelSelector", label_selector))
        if field_selector:
            base.append(("fieldSelector", field_selector))
        path = collection_path(api_version, kind, namespace)
        resource = _resource_name(api_version, kind)
        rv = resource_version
        drops = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            window = max(1, int(remaining + 0.999))
            query = [*base, ("watch", "true"), ("allowWatchBookmarks", "true")]
            query.append(("timeoutSeconds", str(window)))
            if rv:
                query.append(("resourceVersion", rv))
            try:
                resp = self._watch_stream(
                    path,
                    query,
                    read_timeout=window + 15.0,
                    resource=resource,
                    namespace=namespace or "",
                )
            except KubernetesError as exc:
                if exc.code == 410:
                    rv = None
                    continue
                raise
            gone = False
            try:
                for line in _iter_lines(resp):
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        if obj.get("code") == 410:
                            gone = True
                            break
                        raise KubernetesError(
                            f"watch of {resource} failed: {obj.get('message')}", status=obj
                        )
                    new_rv = (obj.get("metadata") or {}).get("resourceVersion")
                    if new_rv:
                        rv = new_rv
                    drops = 0
                    if event.get("type") != "BOOKMARK":
                        obj.setdefault("apiVersion", api_version)
                        obj.setdefault("kind", kind)
                        yield event
                    if time.monotonic() >= deadline:
                        resp.close()
                        return
            except GeneratorExit:
                resp.close()  # the caller stopped early: do not reuse a half-read connection
                raise
            except KubernetesError:
                resp.close()
                raise
            except Exception as exc:
                resp.close()
                drops += 1
                if drops > 5:
                    raise ClusterUnreachableError(
                        f"the watch of {resource} kept dropping ({self.host})"
                    ) from exc
                continue
            resp.release_conn()
            if gone:
                rv = None

    def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        dry_run: bool = False,
    ) -> bool:
        """Deletes one object (background propagation: its dependents are collected).

        Args:
            api_version: ``v1`` or ``group/version``.
            kind: The kind.
            name: The object's name.
            namespace: Its namespace.
            dry_run: Ask the server to check the delete without doing it.

        Returns:
            ``True`` when it existed, ``False`` when it was already gone.

        Raises:
            AuthorizationError: The credentials may not ``delete`` it.
            KubernetesError: Any other API failure.

        Example:
            >>> kube.delete("v1", "ConfigMap", "old", "apim")  # doctest: +SKIP
        """
        ref = ObjectRef(api_version=api_version, kind=kind, name=name, namespace=namespace)
        query = [("propagationPolicy", "Background")]
        if dry_run:
            query.append(("dryRun", "All"))
        status, _ = self._call(
            "DELETE",
            _ref_path(ref),
            verb="delete",
            resource=_resource_name(api_version, kind),
            namespace=namespace,
            name=name,
            query=query,
            allow_not_found=True,
        )
        return status != 404

    # ------------------------------------------------------------------ apply, diff, prune

    def _apply_one(
        self,
        manifest: Mapping[str, Any],
        ref: ObjectRef,
        *,
        field_manager: str,
        force: bool,
        dry_run: bool,
    ) -> tuple[int, dict[str, Any]]:
        query = [("fieldManager", field_manager), ("force", "true" if force else "false")]
        if dry_run:
            query.append(("dryRun", "All"))
        status, data = self._call(
            "PATCH",
            _ref_path(ref),
            verb="patch",
            resource=_resource_name(ref.api_version, ref.kind),
            namespace=ref.namespace,
            name=ref.name,
            query=query,
            body=dict(manifest),
            content_type="application/apply-patch+yaml",
        )
        return status, data

    def apply(
        self,
        manifests: Iterable[Mapping[str, Any]],
        *,
        field_manager: str = DEFAULT_FIELD_MANAGER,
        force: bool = False,
        dry_run: bool = False,
        live: Mapping[ObjectRef, Mapping[str, Any] | None] | None = None,
        on_event: EventCallback | None = None,
    ) -> list[Applied]:
        """Server-side applies each manifest, in order, one PATCH per object.

        Each object is read first, so that the result says whether it was created, changed or
        left unchanged (the object's content before and after, without the fields the server
        manages, such as resourceVersion and managedFields).

        Args:
            manifests: Plain-dict manifests in apply order (namespaces first).
            field_manager: The field manager that owns the applied fields.
            force: Take over fields another manager owns instead of failing with a conflict.
            dry_run: Let the server check and default everything without persisting.
            live: Objects the caller has just read (``None``: known to be absent); their GET
                is skipped.
            on_event: Called with a :class:`~apim_selfhosted.results.ProgressEvent` per object.

        Returns:
            One :class:`~apim_selfhosted.results.Applied` per manifest, in order.

        Raises:
            ValueError: A manifest lacks apiVersion, kind, name or namespace (before any write).
            AuthorizationError: The credentials lack a permission (verb, resource, namespace).
            InvalidManifestError: The server refused a manifest (422), with the field causes.
            FieldConflictError: Another field manager owns a field (and ``force`` is off).
            ClusterUnreachableError: No API server answered.

        Example:
            >>> kube.apply(render(spec, token=token))  # doctest: +SKIP
        """
        return [
            applied
            for applied, _ in self._apply_all(
                manifests,
                field_manager=field_manager,
                force=force,
                dry_run=dry_run,
                live=live,
                on_event=on_event,
            )
        ]

    def _apply_all(
        self,
        manifests: Iterable[Mapping[str, Any]],
        *,
        field_manager: str,
        force: bool,
        dry_run: bool,
        live: Mapping[ObjectRef, Mapping[str, Any] | None] | None,
        on_event: EventCallback | None,
        seen: dict[ObjectRef, Mapping[str, Any] | None] | None = None,
    ) -> list[tuple[Applied, dict[str, Any] | None]]:
        """``apply``, also returning the object the server answered with (None if skipped).

        ``seen`` (when given) receives each object as it was before its apply (``None``:
        absent), as soon as it has been read, so a caller still has it when a later object
        fails; entries already there are kept.
        """
        items = [(dict(m), _ref(m)) for m in manifests]  # validates all before writing
        known = dict(live or {})
        results: list[tuple[Applied, dict[str, Any] | None]] = []
        missing_namespaces: set[str] = set()  # created by this dry run only
        created_namespaces: set[str] = set()
        for manifest, ref in items:
            if dry_run and ref.namespace in missing_namespaces:
                # The server cannot dry-run into a namespace that does not exist yet.
                results.append((_applied(ref, "created", None, dry_run=True), None))
                continue
            if ref in known:
                before = known[ref]
            elif ref.namespace is not None and ref.namespace in created_namespaces:
                before = None  # nothing can exist yet in a namespace this call created
            else:
                before = self.get(ref.api_version, ref.kind, ref.name, ref.namespace)
            if seen is not None:
                seen.setdefault(ref, before)
            if dry_run and ref.kind == "Namespace" and before is None:
                missing_namespaces.add(ref.name)
            status, obj = self._apply_one(
                manifest, ref, field_manager=field_manager, force=force, dry_run=dry_run
            )
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if before is None or status == 201:
                action = "created"
            else:
                # Content, not resourceVersion: a concurrent write by someone else between the
                # read and the apply, or a managedFields-only bump, is not a change we made.
                same = _normalized(before) == _normalized(obj)
                action = "unchanged" if same else "changed"
            if ref.kind == "Namespace" and action == "created" and not dry_run:
                created_namespaces.add(ref.name)
            applied = _applied(ref, action, rv if isinstance(rv, str) else None, dry_run=dry_run)
            results.append((applied, obj))
            _emit(on_event, "apply", str(applied), kind=ref.kind, name=ref.name, action=action)
        return results

    def diff(
        self,
        manifests: Iterable[Mapping[str, Any]],
        *,
        field_manager: str = DEFAULT_FIELD_MANAGER,
        force: bool = False,
    ) -> Plan:
        """What applying ``manifests`` would change: a server-side dry-run against the live objects.

        Fields the server owns (resourceVersion, managedFields, status ...) are ignored; values
        in Secrets are shown as ``<redacted>``.

        Args:
            manifests: The manifests, as for :meth:`apply`.
            field_manager: The field manager to dry-run as.
            force: Dry-run with ``force`` (conflicts are otherwise raised).

        Returns:
            The :class:`~apim_selfhosted.results.Plan`.

        Raises:
            ValueError: A manifest lacks apiVersion, kind, name or namespace.
            AuthorizationError: The credentials lack a permission.
            InvalidManifestError: The server refused a manifest (422).
            FieldConflictError: Another field manager owns a field (and ``force`` is off).
            ClusterUnreachableError: No API server answered.

        Example:
            >>> print(kube.diff(render(spec, token=token)))  # doctest: +SKIP
        """
        items = [(dict(m), _ref(m)) for m in manifests]
        planned: list[PlannedChange] = []
        for manifest, ref in items:
            live = self.get(ref.api_version, ref.kind, ref.name, ref.namespace)
            if live is None and ref.namespace and ref.kind != "Namespace":
                # Dry-run into a namespace that does not exist yet would fail: nothing to compare.
                namespace_live = self.get("v1", "Namespace", ref.namespace)
                if namespace_live is None:
                    planned.append(_planned(ref, "create"))
                    continue
            _, dry = self._apply_one(
                manifest, ref, field_manager=field_manager, force=force, dry_run=True
            )
            if live is None:
                planned.append(_planned(ref, "create"))
                continue
            changes = _field_changes(_normalized(live), _normalized(dry))
            changes = _redact_secret_changes(ref.kind, changes)
            planned.append(_planned(ref, "update" if changes else "unchanged", changes))
        return Plan(items=tuple(planned))

    def prune(
        self,
        spec: DeploymentSpec,
        *,
        keep: Sequence[Mapping[str, Any]] | None = None,
        dry_run: bool = False,
        on_event: EventCallback | None = None,
    ) -> list[ObjectRef]:
        """Deletes objects this library created for the gateway that the rendering lacks.

        Candidates are found by the library's labels (``app.kubernetes.io/managed-by`` and
        ``app.kubernetes.io/instance`` of the rendered objects) in the spec's namespace, among
        the kinds rendering produces. Never deleted: anything in ``keep``, objects of another
        component (``app.kubernetes.io/component`` not rendered, e.g. the rotator), and
        Secrets still referenced by the live Deployment or one of its ReplicaSets with pods.

        Args:
            spec: The gateway's spec.
            keep: The current rendering (default: ``render(spec)``); pass the manifests you
                applied (with the token) so that their Secret is kept.
            dry_run: Ask the server to check the deletes without doing them.
            on_event: Progress callback.

        Returns:
            The objects deleted (or that would be, with ``dry_run``).

        Raises:
            AuthorizationError: The credentials may not list or delete.
            KubernetesError: Any other API failure.

        Example:
            >>> kube.prune(spec, keep=manifests)  # doctest: +SKIP
        """
        if keep is None:
            import importlib

            keep = importlib.import_module("apim_selfhosted.rendering").render(spec)
        keep_refs = {_ref(m) for m in keep}
        labels: dict[str, str] = {}
        components: set[str] = set()
        namespace: str | None = None
        deployment: Mapping[str, Any] | None = None
        for manifest in keep:
            meta = manifest.get("metadata") or {}
            found = meta.get("labels") or {}
            if not labels:
                labels = {k: found[k] for k in _SELECTOR_LABELS if k in found}
            if _COMPONENT_LABEL in found:
                components.add(found[_COMPONENT_LABEL])
            if manifest.get("kind") == "Deployment":
                deployment = manifest
                namespace = meta.get("namespace")
        if len(labels) != len(_SELECTOR_LABELS) or namespace is None:
            raise ValueError(
                "cannot prune: the rendering carries no Deployment with the labels "
                f"{list(_SELECTOR_LABELS)}"
            )
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        protected: set[str] | None = None  # read only when a Secret is a candidate
        deleted: list[ObjectRef] = []
        for api_version, kind in _PRUNABLE:
            for item in self.list_objects(api_version, kind, namespace, label_selector=selector):
                meta = item.get("metadata") or {}
                ref = ObjectRef(
                    api_version=api_version, kind=kind, name=meta["name"], namespace=namespace
                )
                if ref in keep_refs:
                    continue
                component = (meta.get("labels") or {}).get(_COMPONENT_LABEL)
                if component is not None and components and component not in components:
                    continue
                if kind == "Secret":
                    if protected is None:
                        protected = self._secrets_in_use(namespace, deployment)
                    if ref.name in protected:
                        continue
                if meta.get("ownerReferences"):
                    continue  # owned by something else (garbage collected with it)
                if self.delete(api_version, kind, ref.name, namespace, dry_run=dry_run):
                    deleted.append(ref)
                    _emit(on_event, "prune", f"{ref}: deleted", kind=kind, name=ref.name)
        return deleted

    def _secrets_in_use(self, namespace: str, deployment: Mapping[str, Any] | None) -> set[str]:
        """Secrets referenced by the live Deployment and its ReplicaSets that still have pods."""
        names: set[str] = set()
        if deployment is None:
            return names
        name = deployment["metadata"]["name"]
        live = self.get("apps/v1", "Deployment", name, namespace)
        templates: list[Mapping[str, Any]] = []
        if live is not None:
            templates.append(live.get("spec", {}).get("template", {}))
            match = live.get("spec", {}).get("selector", {}).get("matchLabels") or {}
            if match:
                selector = ",".join(f"{k}={v}" for k, v in sorted(match.items()))
                for rs in self.list_objects(
                    "apps/v1", "ReplicaSet", namespace, label_selector=selector
                ):
                    status = rs.get("status") or {}
                    if (rs.get("spec") or {}).get("replicas", 0) or status.get("replicas", 0):
                        templates.append(rs.get("spec", {}).get("template", {}))
        for template in templates:
            names |= secret_names_in_template(template)
        return names

    def restore_template(
        self,
        manifest: Mapping[str, Any],
        previous: Mapping[str, Any],
        *,
        field_manager: str = DEFAULT_FIELD_MANAGER,
        on_event: EventCallback | None = None,
    ) -> Applied:
        """Rolls a Deployment back: re-applies ``manifest`` with the pod template of ``previous``.

        This is ``kubectl rollout undo`` done with server-side apply under the library's own
        field manager, so the next apply does not conflict with it. The controller recognises
        the old template and scales its ReplicaSet back up; no new pods are made.

        Args:
            manifest: The Deployment manifest that was applied (and failed).
            previous: The live Deployment as read before that apply.
            field_manager: The field manager (the one that applied ``manifest``).
            on_event: Progress callback.

        Returns:
            What the apply did.

        Raises:
            ValueError: ``manifest`` or ``previous`` is not a Deployment with a template.
            AuthorizationError: The credentials may not patch the Deployment.
            InvalidManifestError: The server refused the restored Deployment (422).
            ClusterUnreachableError: No API server answered.

        Example:
            >>> kube.restore_template(new_deployment, previous_live)  # doctest: +SKIP
        """
        if manifest.get("kind") != "Deployment" or previous.get("kind", "Deployment") != (
            "Deployment"
        ):
            raise ValueError("restore_template works on Deployments only")
        template = (previous.get("spec") or {}).get("template")
        if not isinstance(template, Mapping):
            raise ValueError("the previous Deployment has no spec.template")
        restored = copy.deepcopy(dict(manifest))
        restored["spec"] = dict(restored.get("spec") or {})
        restored["spec"]["template"] = copy.deepcopy(dict(template))
        _emit(on_event, "rollback", f"restoring the previous pod template of {_ref(manifest)}")
        return self.apply([restored], field_manager=field_manager, force=True)[0]

    # ------------------------------------------------------------------ rollouts

    def wait_for_rollout(
        self,
        name: str,
        namespace: str,
        *,
        timeout: float = 300.0,
        deployment: Mapping[str, Any] | None = None,
        on_event: EventCallback | None = None,
    ) -> RolloutStatus:
        """Waits, with watches, until a Deployment's rollout ends, and says how it ended.

        Success is ``kubectl rollout status``'s rule: the controller observed the latest
        generation, all replicas run the new template and are available, no old replica is
        left. It also ends on ``ProgressDeadlineExceeded``, when a pod of the new template
        cannot start (image pull errors, crash loops, missing Secret or ConfigMap: named in the
        result), or at ``timeout``. A dropped watch resumes from the last resourceVersion; an
        expired one (410 Gone) starts over.

        Args:
            name: The Deployment.
            namespace: Its namespace.
            timeout: Seconds to wait at most.
            deployment: The Deployment as the server just returned it (e.g. from the apply);
                saves the first read.
            on_event: Called with a progress event when the replica counts change.

        Returns:
            The :class:`~apim_selfhosted.results.RolloutStatus` (check ``.ok``).

        Raises:
            KubernetesError: The Deployment does not exist or was deleted while waiting.
            AuthorizationError: The credentials may not watch deployments or pods.
            ClusterUnreachableError: The API server stopped answering.

        Example:
            >>> kube.wait_for_rollout("gw1", "apim", timeout=120).ok  # doctest: +SKIP
            True
        """
        return self._wait(
            name, namespace, timeout=timeout, deployment=deployment, on_event=on_event
        )[0]

    def _wait(
        self,
        name: str,
        namespace: str,
        *,
        timeout: float,
        deployment: Mapping[str, Any] | None,
        on_event: EventCallback | None,
    ) -> tuple[RolloutStatus, dict[str, Any] | None]:
        """``wait_for_rollout`` plus the Deployment as last seen (what the status says)."""
        watcher = _RolloutWatcher(self, name, namespace, timeout, on_event)
        status = watcher.run(deployment)
        return status, watcher.deployment

    def _watch_stream(
        self,
        path: str,
        query: Sequence[tuple[str, str]],
        *,
        read_timeout: float,
        resource: str,
        namespace: str,
    ) -> Any:
        """Opens a watch; returns the urllib3 response (raises mapped errors, 410 included)."""
        resp = self._open(
            "GET", path, query=query, timeout=(min(self._request_timeout, 10.0), read_timeout)
        )
        status = int(resp.status)
        if status != 200:
            data = resp.read()
            raise _api_error(
                status, _status_of(data), verb="watch", resource=resource, namespace=namespace
            )
        return resp.response


_ABSENT = object()


def _extract(value: Any, fields: Mapping[str, Any]) -> Any:
    """The part of ``value`` that the ``fieldsV1`` set ``fields`` names (structured-merge-diff)."""
    children = {k: v for k, v in fields.items() if k != "."}
    if not children:
        return copy.deepcopy(value)  # a leaf, or an atomic list/map: owned as a whole
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, sub in children.items():
            if key.startswith("f:") and key[2:] in value:
                out[key[2:]] = _extract(value[key[2:]], sub or {})
        return out
    if isinstance(value, list):
        items: list[Any] = []
        for index, item in enumerate(value):
            for key, sub in children.items():
                kind, _, text = key.partition(":")
                if kind == "k" and isinstance(item, Mapping):
                    keys = json.loads(text)
                    if all(item.get(k, _ABSENT) == v for k, v in keys.items()):
                        items.append({**keys, **_extract(item, sub or {})})
                        break
                elif (kind == "v" and item == json.loads(text)) or (
                    kind == "i" and text == str(index)
                ):
                    items.append(copy.deepcopy(item))
                    break
        return items
    return copy.deepcopy(value)


def applied_configuration(
    obj: Mapping[str, Any], *, field_manager: str = DEFAULT_FIELD_MANAGER
) -> dict[str, Any] | None:
    """What ``field_manager`` last server-side applied to ``obj``, read back from the object.

    The API server records, in ``metadata.managedFields``, the exact set of fields each
    manager's apply owns; taking those fields (with their live values) out of the object gives
    the manager's last applied configuration (client-go's ``Extract<Kind>`` does the same).
    Applying it again with the same manager returns the object to that state: this is how a
    failed ``deploy`` is rolled back, without keeping a copy of the manifests (and of the
    token) anywhere else.

    Args:
        obj: A live object as read from the API server (with ``metadata.managedFields``).
        field_manager: The manager whose ``Apply`` entry is read.

    Returns:
        A manifest (``apiVersion``, ``kind``, name, namespace and the owned fields), or ``None``
        when the manager never applied the object.

    Example:
        >>> live = {"apiVersion": "v1", "kind": "ConfigMap",
        ...         "metadata": {"name": "c", "namespace": "n", "labels": {"a": "1", "b": "2"},
        ...                      "managedFields": [{"manager": "apim-selfhosted",
        ...                                         "operation": "Apply",
        ...                                         "fieldsV1": {"f:data": {"f:x": {}},
        ...                                                      "f:metadata": {"f:labels":
        ...                                                                     {"f:a": {}}}}}]},
        ...         "data": {"x": "1", "y": "2"}}
        >>> applied_configuration(live)["data"], applied_configuration(live)["metadata"]["labels"]
        ({'x': '1'}, {'a': '1'})
    """
    meta = obj.get("metadata") or {}
    entries = [
        e
        for e in meta.get("managedFields") or []
        if e.get("manager") == field_manager
        and e.get("operation") == "Apply"
        and not e.get("subresource")
        and isinstance(e.get("fieldsV1"), Mapping)
    ]
    if not entries:
        return None
    out: dict[str, Any] = {}
    for entry in entries:
        part = _extract(obj, entry["fieldsV1"])
        if isinstance(part, dict):
            out = _merged(out, part)
    metadata = dict(out.get("metadata") or {})
    metadata["name"] = meta.get("name")
    if meta.get("namespace"):
        metadata["namespace"] = meta["namespace"]
    return {
        **out,
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": metadata,
    }


def _merged(a: dict[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def secret_names_in_template(template: Mapping[str, Any]) -> set[str]:
    """Names of the Secrets a pod template references (env, envFrom, volumes, pull secrets).

    Args:
        template: A pod template (``spec.template`` of a Deployment).

    Returns:
        The Secret names.

    Example:
        >>> secret_names_in_template({"spec": {"containers": [{"name": "c", "env": [
        ...     {"name": "x", "valueFrom": {"secretKeyRef": {"name": "tok", "key": "value"}}}]}]}})
        {'tok'}
    """
    spec = template.get("spec") or {}
    names: set[str] = set()
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    for container in containers:
        for env in container.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("secretKeyRef") or {}
            if ref.get("name"):
                names.add(ref["name"])
        for source in container.get("envFrom") or []:
            ref = source.get("secretRef") or {}
            if ref.get("name"):
                names.add(ref["name"])
    for volume in spec.get("volumes") or []:
        secret = volume.get("secret") or {}
        if secret.get("secretName"):
            names.add(secret["secretName"])
        for source in (volume.get("projected") or {}).get("sources") or []:
            ref = source.get("secret") or {}
            if ref.get("name"):
                names.add(ref["name"])
    for pull in spec.get("imagePullSecrets") or []:
        if pull.get("name"):
            names.add(pull["name"])
    return names


def rollout_state(deployment: Mapping[str, Any]) -> tuple[str, str]:
    """Evaluates a Deployment the way ``kubectl rollout status`` does.

    Args:
        deployment: The Deployment as read from the server.

    Returns:
        ``(state, message)`` where state is ``complete``, ``progress-deadline-exceeded`` or
        ``waiting``.

    Example:
        >>> rollout_state({"metadata": {"generation": 2}, "spec": {"replicas": 2},
        ...                "status": {"observedGeneration": 2, "replicas": 2,
        ...                           "updatedReplicas": 2, "availableReplicas": 2}})
        ('complete', 'successfully rolled out')
        >>> rollout_state({"metadata": {"generation": 3}, "spec": {"replicas": 1},
        ...                "status": {"observedGeneration": 2}})[0]
        'waiting'
    """
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    generation = int(meta.get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    if generation > observed:
        return "waiting", "waiting for the deployment spec update to be observed"
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and (
            condition.get("reason") == "ProgressDeadlineExceeded"
        ):
            return "progress-deadline-exceeded", str(
                condition.get("message") or "progress deadline exceeded"
            )
    desired = _desired_replicas(spec)
    replicas = int(status.get("replicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    if updated < desired:
        return "waiting", f"{updated} of {desired} new replicas have been updated"
    if replicas > updated:
        return "waiting", f"{replicas - updated} old replicas are pending termination"
    if available < updated:
        return "waiting", f"{available} of {updated} updated replicas are available"
    return "complete", "successfully rolled out"


def pod_problems(pod: Mapping[str, Any]) -> list[PodProblem]:
    """The containers of a pod that cannot start (see :data:`POD_START_FAILURES`).

    Args:
        pod: A Pod as read from the server.

    Returns:
        One :class:`~apim_selfhosted.results.PodProblem` per failing container.

    Example:
        >>> pod = {"metadata": {"name": "gw-1"}, "status": {"containerStatuses": [
        ...     {"name": "gw", "restartCount": 0,
        ...      "state": {"waiting": {"reason": "ImagePullBackOff", "message": "no such tag"}}}]}}
        >>> pod_problems(pod)[0].reason
        'ImagePullBackOff'
    """
    name = str((pod.get("metadata") or {}).get("name", ""))
    status = pod.get("status") or {}
    problems = []
    statuses = list(status.get("initContainerStatuses") or []) + list(
        status.get("containerStatuses") or []
    )
    for cs in statuses:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason in POD_START_FAILURES:
            problems.append(
                PodProblem(
                    pod=name,
                    container=str(cs.get("name", "")),
                    reason=str(reason),
                    message=str(waiting.get("message") or "")[:300],
                    restart_count=int(cs.get("restartCount") or 0),
                )
            )
    return problems


class _Watch(threading.Thread):
    """One resumable watch in a thread, feeding ``(tag, event)`` into a queue."""

    def __init__(
        self,
        kube: KubernetesApplier,
        tag: str,
        path: str,
        query: Sequence[tuple[str, str]],
        resource: str,
        namespace: str,
        deadline: float,
        out: queue.Queue[tuple[str, Any]],
        *,
        resource_version: str | None = None,
    ) -> None:
        super().__init__(name=f"watch-{tag}", daemon=True)
        self.resource_version = resource_version
        self.kube = kube
        self.tag = tag
        self.path = path
        self.query = list(query)
        self.resource = resource
        self.namespace = namespace
        self.deadline = deadline
        self.out = out
        self.stopped = threading.Event()
        self._resp: Any = None
        self._lock = threading.Lock()

    def stop(self) -> None:
        self.stopped.set()
        with self._lock:
            resp = self._resp
        if resp is not None:
            try:
                resp.shutdown()
            except Exception:
                logger.debug("closing a watch failed", exc_info=True)

    def run(self) -> None:
        rv: str | None = self.resource_version
        failures = 0
        while not self.stopped.is_set():
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                return
            window = max(1, min(int(remaining) + 1, 300))
            query = [*self.query, ("watch", "true"), ("allowWatchBookmarks", "true")]
            query.append(("timeoutSeconds", str(window)))
            if rv:
                query.append(("resourceVersion", rv))
            try:
                resp = self.kube._watch_stream(
                    self.path,
                    query,
                    read_timeout=window + 15.0,
                    resource=self.resource,
                    namespace=self.namespace,
                )
            except KubernetesError as exc:
                if exc.code == 410:
                    rv = None
                    self.out.put((self.tag + ":relist", None))
                    continue
                if isinstance(exc, ClusterUnreachableError) and failures < 5:
                    failures += 1
                    self.out.put((self.tag + ":resume", None))
                    self.stopped.wait(0.05 * 2**failures)
                    continue
                self.out.put(("error", exc))
                return
            except Exception as exc:
                self.out.put(("error", exc))
                return
            with self._lock:
                self._resp = resp
            if self.stopped.is_set():
                resp.shutdown()
            try:
                for line in _iter_lines(resp):
                    if self.stopped.is_set():
                        return
                    event = json.loads(line)
                    kind = event.get("type")
                    obj = event.get("object") or {}
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            rv = None
                            self.out.put((self.tag + ":relist", None))
                            break
                        self.out.put(
                            (
                                "error",
                                KubernetesError(
                                    f"watch of {self.resource} failed: {obj.get('message')}",
                                    status=obj,
                                ),
                            )
                        )
                        return
                    new_rv = (obj.get("metadata") or {}).get("resourceVersion")
                    if new_rv:
                        rv = new_rv
                    failures = 0
                    if kind != "BOOKMARK":
                        self.out.put((self.tag, event))
                else:
                    if not self.stopped.is_set():
                        self.out.put((self.tag + ":resume", None))
            except Exception:
                if self.stopped.is_set():
                    return
                failures += 1
                if failures > 5:
                    self.out.put(
                        (
                            "error",
                            ClusterUnreachableError(
                                f"the watch of {self.resource} kept dropping ({self.kube.host})"
                            ),
                        )
                    )
                    return
                logger.debug("watch of %s dropped; resuming from %s", self.resource, rv)
                self.out.put((self.tag + ":resume", None))
            finally:
                with self._lock:
                    self._resp = None
                try:
                    resp.release_conn()
                except Exception:
                    logger.debug("releasing a watch connection failed", exc_info=True)


def _iter_lines(resp: Any) -> Iterator[str]:
    buffer = bytearray()
    for chunk in resp.stream(amt=None, decode_content=True):
        buffer.extend(chunk)
        while True:
            index = buffer.find(b"\n")
            if index < 0:
                break
            line = buffer[:index].decode("utf-8", errors="replace").strip()
            del buffer[: index + 1]
            if line:
                yield line
    rest = buffer.decode("utf-8", errors="replace").strip()
    if rest:
        yield rest


class _RolloutWatcher:
    def __init__(
        self,
        kube: KubernetesApplier,
        name: str,
        namespace: str,
        timeout: float,
        on_event: EventCallback | None,
    ) -> None:
        self.kube = kube
        self.name = name
        self.namespace = namespace
        self.timeout = timeout
        self.on_event = on_event
        self.deployment: dict[str, Any] | None = None
        self.pods: dict[str, dict[str, Any]] = {}
        self.rs_revision: dict[str, str | None] = {}
        self.restarts = 0
        self.last_progress: tuple[int, ...] | None = None

    def run(self, known: Mapping[str, Any] | None = None) -> RolloutStatus:
        started = time.monotonic()
        deadline = started + self.timeout
        # One read first: it tells a missing Deployment apart, and an unchanged one is done
        # without opening a watch at all.
        current = (
            dict(known)
            if known is not None
            else self.kube.get("apps/v1", "Deployment", self.name, self.namespace)
        )
        if current is None:
            raise KubernetesError(
                f'deployments.apps "{self.name}" not found in namespace {self.namespace!r}',
                status={"reason": "NotFound", "code": 404},
            )
        self.deployment = current
        state, message = rollout_state(current)
        self._progress(message)
        if state == "complete":
            return self._status("complete", message, started)
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        deploy_watch = _Watch(
            self.kube,
            "deployment",
            collection_path("apps/v1", "Deployment", self.namespace),
            [("fieldSelector", f"metadata.name={self.name}")],
            "deployments.apps",
            self.namespace,
            deadline,
            events,
            resource_version=(current.get("metadata") or {}).get("resourceVersion"),
        )
        watches = [deploy_watch]
        deploy_watch.start()
        pod_watch = self._start_pod_watch(current, deadline, events)
        if pod_watch is not None:
            watches.append(pod_watch)
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return self._status("timeout", "timed out waiting for the rollout", started)
                try:
                    tag, payload = events.get(timeout=remaining)
                except queue.Empty:
                    return self._status("timeout", "timed out waiting for the rollout", started)
                if tag == "error":
                    raise payload
                if tag.endswith(":resume"):
                    self.restarts += 1
                    continue
                if tag == "deployment:relist":
                    self.restarts += 1
                    self.deployment = None
                    continue
                if tag == "pods:relist":
                    self.restarts += 1
                    self.pods.clear()
                    continue
                obj = payload.get("object") or {}
                if tag == "deployment":
                    if payload.get("type") == "DELETED":
                        raise KubernetesError(
                            f"deployment {self.namespace}/{self.name} was deleted during the "
                            "rollout",
                            status={"reason": "NotFound", "code": 404},
                        )
                    self.deployment = obj
                elif tag == "pods":
                    pod_name = (obj.get("metadata") or {}).get("name", "")
                    if payload.get("type") == "DELETED":
                        self.pods.pop(pod_name, None)
                    else:
                        self.pods[pod_name] = obj
                result = self._evaluate(started)
                if result is not None:
                    return result
        finally:
            for watch in watches:
                watch.stop()
            for watch in watches:
                watch.join(timeout=2.0)

    def _start_pod_watch(
        self, deployment: Mapping[str, Any], deadline: float, events: queue.Queue[tuple[str, Any]]
    ) -> _Watch | None:
        match = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if not match:
            return None
        selector = ",".join(f"{k}={v}" for k, v in sorted(match.items()))
        watch = _Watch(
            self.kube,
            "pods",
            collection_path("v1", "Pod", self.namespace),
            [("labelSelector", selector)],
            "pods",
            self.namespace,
            deadline,
            events,
        )
        watch.start()
        return watch

    def _revision(self) -> str | None:
        annotations = ((self.deployment or {}).get("metadata") or {}).get("annotations") or {}
        value = annotations.get("deployment.kubernetes.io/revision")
        return str(value) if value is not None else None

    def _is_new_pod(self, pod: Mapping[str, Any]) -> bool:
        revision = self._revision()
        if revision is None:
            return False
        for owner in (pod.get("metadata") or {}).get("ownerReferences") or []:
            if owner.get("kind") != "ReplicaSet":
                continue
            rs_name = str(owner.get("name"))
            if rs_name not in self.rs_revision:
                rs = self.kube.get("apps/v1", "ReplicaSet", rs_name, self.namespace)
                annotations = ((rs or {}).get("metadata") or {}).get("annotations") or {}
                self.rs_revision[rs_name] = annotations.get("deployment.kubernetes.io/revision")
            return self.rs_revision[rs_name] == revision
        return False

    def _evaluate(self, started: float) -> RolloutStatus | None:
        if self.deployment is None:
            return None
        state, message = rollout_state(self.deployment)
        self._progress(message)
        if state == "complete":
            return self._status("complete", message, started)
        if state == "progress-deadline-exceeded":
            return self._status(
                "progress-deadline-exceeded", message, started, self._new_pod_problems()
            )
        problems = self._new_pod_problems()
        if problems:
            text = "; ".join(str(p) for p in problems)
            return self._status("pods-failing", f"pods cannot start: {text}", started, problems)
        return None

    def _new_pod_problems(self) -> list[PodProblem]:
        problems: list[PodProblem] = []
        for pod in self.pods.values():
            found = pod_problems(pod)
            if found and self._is_new_pod(pod):
                problems.extend(found)
        return problems

    def _progress(self, message: str) -> None:
        status = (self.deployment or {}).get("status") or {}
        counts = (
            int(status.get("replicas") or 0),
            int(status.get("updatedReplicas") or 0),
            int(status.get("readyReplicas") or 0),
            int(status.get("availableReplicas") or 0),
        )
        if counts != self.last_progress:
            self.last_progress = counts
            _emit(
                self.on_event,
                "rollout",
                f"{self.namespace}/{self.name}: {message}",
                replicas=counts[0],
                updated=counts[1],
                ready=counts[2],
                available=counts[3],
            )

    def _status(
        self,
        outcome: Any,
        message: str,
        started: float,
        problems: Sequence[PodProblem] = (),
    ) -> RolloutStatus:
        dep = self.deployment or {}
        meta = dep.get("metadata") or {}
        spec = dep.get("spec") or {}
        status = dep.get("status") or {}
        return RolloutStatus(
            name=self.name,
            namespace=self.namespace,
            outcome=outcome,
            message=message,
            revision=self._revision(),
            generation=int(meta.get("generation") or 0),
            observed_generation=int(status.get("observedGeneration") or 0),
            desired_replicas=_desired_replicas(spec),
            replicas=int(status.get("replicas") or 0),
            updated_replicas=int(status.get("updatedReplicas") or 0),
            ready_replicas=int(status.get("readyReplicas") or 0),
            available_replicas=int(status.get("availableReplicas") or 0),
            pod_problems=tuple(problems),
            watch_restarts=self.restarts,
            elapsed_seconds=round(time.monotonic() - started, 3),
        )


def _applied(ref: ObjectRef, action: Any, rv: str | None, *, dry_run: bool) -> Applied:
    return Applied(
        api_version=ref.api_version,
        kind=ref.kind,
        name=ref.name,
        namespace=ref.namespace,
        action=action,
        resource_version=rv,
        dry_run=dry_run,
    )


def _desired_replicas(spec: Mapping[str, Any]) -> int:
    value = spec.get("replicas")
    return 1 if value is None else int(value)


def _planned(ref: ObjectRef, action: Any, changes: Sequence[FieldChange] = ()) -> PlannedChange:
    return PlannedChange(
        api_version=ref.api_version,
        kind=ref.kind,
        name=ref.name,
        namespace=ref.namespace,
        action=action,
        changes=tuple(changes),
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _transport_error(exc: Exception, host: str) -> Exception:
    """Maps a failure below HTTP (refused, TLS, timeout) to ClusterUnreachableError."""
    if isinstance(exc, KubernetesError):
        return exc
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException) and exc.status not in (0, None):
        return _api_error(
            int(exc.status), _status_of(exc.body), verb="", resource="", namespace=None
        )
    text = _first_line(exc)
    lowered = str(exc).lower()
    if "refused" in lowered:
        why = "connection refused"
    elif "certificate" in lowered or "ssl" in lowered:
        why = f"TLS failed ({text})"
    elif "timed out" in lowered or "timeout" in lowered:
        why = "the request timed out"
    elif "name or service not known" in lowered or "nodename nor servname" in lowered:
        why = "the host name does not resolve"
    else:
        why = text
    return ClusterUnreachableError(f"cannot reach the Kubernetes API server at {host}: {why}")


def _api_error(
    status: int,
    body: Mapping[str, Any],
    *,
    verb: str,
    resource: str,
    namespace: str | None,
    name: str | None = None,
) -> KubernetesError | AuthorizationError | AuthenticationError:
    message = str(body.get("message") or f"HTTP {status}")
    full = dict(body)
    full.setdefault("code", status)
    where = f" in namespace {namespace!r}" if namespace else ""
    if status == 401:
        return AuthenticationError(
            f"the Kubernetes API server refused the credentials (401): {message}",
            system="kubernetes",
        )
    if status == 403:
        permission = f"{verb} {resource}".strip()
        said = _FORBIDDEN_RE.search(message)
        if said:
            # The server names what it checked (an apply that creates is checked as create).
            group = said.group(3) or ""
            permission = f"{said.group(1)} {said.group(2)}{'.' + group if group else ''}"
        target = f"{namespace}/{resource}/{name}" if name else None
        return AuthorizationError(
            f"the Kubernetes credentials lack permission to {permission}{where} (403 Forbidden): "
            f"{message}",
            system="kubernetes",
            permission=permission,
            resource=target,
            namespace=namespace,
        )
    causes_raw = (body.get("details") or {}).get("causes") or []
    if status == 422:
        if resource == "secrets":
            # "Invalid value: ..." echoes the value; for a Secret that may be the secret itself.
            message = _INVALID_VALUE_RE.sub('Invalid value: "<redacted>"', message)
            causes_raw = [
                {
                    **c,
                    "message": _INVALID_VALUE_RE.sub(
                        'Invalid value: "<redacted>"', str(c.get("message", ""))
                    ),
                }
                for c in causes_raw
            ]
            full = {
                **full,
                "message": message,
                "details": {**(full.get("details") or {}), "causes": causes_raw},
            }
        causes = [(str(c.get("field", "")), str(c.get("message", ""))) for c in causes_raw]
        return InvalidManifestError(
            f"the API server refused {resource} {name or ''}{where} as invalid (422): {message}",
            status=full,
            causes=causes,
        )
    if status == 409 and (
        message.startswith("Apply failed")
        or any(c.get("reason") == "FieldManagerConflict" for c in causes_raw)
    ):
        managers = sorted(
            set(_CONFLICT_MANAGER_RE.findall(message))
            | {
                m
                for c in causes_raw
                for m in _CONFLICT_MANAGER_RE.findall(str(c.get("message", "")))
            }
        )
        fields = [str(c.get("field", "")) for c in causes_raw if c.get("field")]
        return FieldConflictError(
            f"server-side apply of {resource} {name or ''}{where} conflicts with field "
            f"manager(s) {', '.join(managers) or '?'}: {message}",
            status=full,
            managers=managers,
            fields=fields,
        )
    return KubernetesError(
        f"{verb} {resource} {name or ''}{where} failed ({status} {body.get('reason') or ''}): "
        f"{message}".replace("  ", " "),
        status=full,
    )
