"""The HTTP layer of the emulator: routing, verbs, admission, watch streaming and faults.

:class:`ApiServer` turns HTTP requests into operations on the :class:`~.store.Store`, as
kube-apiserver's generic registry does: authentication (bearer tokens), RBAC, injected
faults, defaulting and validation from the official schemas, ``managedFields`` and server-side
apply, dry-run, ``Status`` errors, chunked watch streams and server-side ``Table`` printing for
kubectl. :class:`HttpServer` serves it on ``127.0.0.1`` with ``ThreadingHTTPServer``.

Example:
    >>> route = parse_path("/apis/apps/v1/namespaces/team/deployments/web/scale")
    >>> route.rt.key, route.namespace, route.name, route.subresource
    ('deployments.apps', 'team', 'web', 'scale')
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import logging
import select
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from apim_selfhosted.testing.kube.errors import ApiError
from apim_selfhosted.testing.kube.resources import RESOURCES, ResourceType, groups

if TYPE_CHECKING:
    from apim_selfhosted.testing.kube.apply import ApplyResult
    from apim_selfhosted.testing.kube.defaults import Defaulter
    from apim_selfhosted.testing.kube.openapi import Documents
    from apim_selfhosted.testing.kube.rbac import Authorizer, User
    from apim_selfhosted.testing.kube.schema import Schemas
    from apim_selfhosted.testing.kube.store import Store
    from apim_selfhosted.testing.kube.validation import Validator

logger = logging.getLogger(__name__)

_BY_GV_PLURAL = {(rt.api_version, rt.plural): rt for rt in RESOURCES}
_PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+cbor": "apply-cbor",
}
_IDLE_CHECK = 2.0
"""Seconds between checks that an idle watch's client is still connected."""
_SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
_VIRTUAL_GROUPS = ("authorization.k8s.io/v1",)
_BODY_TYPES = ("application/json", "application/yaml", "")
_AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
_TABLE = "as=Table"


@dataclass(frozen=True)
class Route:
    """A parsed resource path."""

    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


def parse_path(path: str) -> Route | None:
    """Parses ``/api/v1/...`` or ``/apis/<g>/<v>/...`` into a :class:`Route` (None if none).

    Raises:
        ApiError: 404 for a path under a served group-version that names no served resource.

    Example:
        >>> parse_path("/api/v1/namespaces/team").rt.plural
        'namespaces'
    """
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        api_version, rest = parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        api_version, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    else:
        return None
    if not rest:
        return None
    namespace: str | None = None
    if (
        rest[0] == "namespaces"
        and len(rest) >= 3
        and (api_version, rest[2]) in _BY_GV_PLURAL
        and _BY_GV_PLURAL[(api_version, rest[2])].namespaced
    ):
        namespace, rest = rest[1], rest[2:]
    rt = _BY_GV_PLURAL.get((api_version, rest[0]))
    if rt is None or len(rest) > 3:
        raise _not_found_path()
    name = rest[1] if len(rest) >= 2 else None
    sub = rest[2] if len(rest) == 3 else None
    if (
        sub is not None
        and sub not in rt.subresources
        and not (rt.plural == "namespaces" and sub == "finalize")
    ):
        raise _not_found_path()
    return Route(rt, namespace, name, sub)


def _not_found_path() -> ApiError:
    return ApiError(
        404,
        "NotFound",
        "the server could not find the requested resource",
        details={
            "causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]
        },
    )


@dataclass
class Request:
    """One HTTP request as the API server sees it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def q(self, name: str, default: str | None = None) -> str | None:
        return self.query.get(name, default)

    def flag(self, name: str) -> bool:
        return (self.query.get(name) or "").lower() in ("1", "true")


@dataclass
class Response:
    """A complete response, or a streaming one when ``stream`` is set."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    stream: Iterator[bytes] | None = None


@dataclass(frozen=True)
class RequestRecord:
    """What the emulator counted for one request (see ``KubeEmulator.requests``)."""

    method: str
    path: str
    verb: str
    resource: str
    namespace: str | None
    name: str | None
    user: str
    status: int
    seconds: float


@dataclass
class Fault:
    """An injected failure for the next ``remaining`` matching requests."""

    status: int
    remaining: int
    verb: str | None = None
    resource: str | None = None
    namespace: str | None = None
    name: str | None = None
    message: str | None = None
    retry_after: int = 1

    def matches(self, verb: str, rt: ResourceType | None, route: Route | None) -> bool:
        if self.remaining <= 0:
            return False
        if self.verb is not None and self.verb != verb:
            return False
        if self.resource is not None and (
            rt is None
            or self.resource
            not in (rt.plural, rt.key, f"{rt.plural}/{route.subresource if route else ''}")
        ):
            return False
        if self.namespace is not None and (route is None or route.namespace != self.namespace):
            return False
        return not (self.name is not None and (route is None or route.name != self.name))


def _name_from_field_selector(req: Request, verb: str) -> str:
    """The object name a list/watch is limited to by ``fieldSelector=metadata.name=<n>``.

    RBAC treats such a request as naming that object (so ``resourceNames`` rules apply), as
    kube-apiserver's request-info resolver does.
    """
    if verb not in ("list", "watch"):
        return ""
    selector = (req.q("fieldSelector") or "").strip()
    for op in ("==", "="):
        key, sep, value = selector.partition(op)
        if sep and key.strip() == "metadata.name" and "," not in value and "!" not in key:
            return value.strip()
    return ""


def _valid_managed_fields(entries: Any) -> bool:
    """Whether ``entries`` is a non-empty, decodable ``managedFields`` list."""
    if not isinstance(entries, list) or not entries:
        return False
    for entry in entries:
        if not isinstance(entry, dict) or not entry.get("manager"):
            return False
        if entry.get("operation") not in ("Apply", "Update"):
            return False
        if entry.get("fieldsType", "FieldsV1") != "FieldsV1":
            return False
        if not isinstance(entry.get("fieldsV1", {}), dict):
            return False
    return True


def _same_but_managed_times(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether two objects differ at most in ``managedFields[].time`` (and resourceVersion)."""
    old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
    old_fields = old_meta.get("managedFields") or []
    new_fields = new_meta.get("managedFields") or []
    if len(old_fields) != len(new_fields):
        return False
    for a, b in zip(old_fields, new_fields, strict=True):
        if {k: v for k, v in a.items() if k != "time"} != {
            k: v for k, v in b.items() if k != "time"
        }:
            return False
    ignored = ("managedFields", "resourceVersion")
    old_rest = {k: v for k, v in old_meta.items() if k not in ignored}
    new_rest = {k: v for k, v in new_meta.items() if k not in ignored}
    if old_rest != new_rest:
        return False
    return {k: v for k, v in old.items() if k != "metadata"} == {
        k: v for k, v in new.items() if k != "metadata"
    }


def _keep_managed_times(old: dict[str, Any], new: dict[str, Any]) -> None:
    """A write that changes nothing but managedFields timestamps keeps the stored ones.

    kube-apiserver ignores such updates (no new resourceVersion, no watch event), so applying
    an unchanged configuration is a no-op.
    """
    if _same_but_managed_times(old, new):
        fields = (old.get("metadata") or {}).get("managedFields")
        if fields is not None:
            new.setdefault("metadata", {})["managedFields"] = copy.deepcopy(fields)


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class ApiServer:
    """Answers Kubernetes API requests from a store.

    Args:
        store: The object store.
        schemas: Schemas of the emulated release.
        documents: Discovery and OpenAPI documents.
        validator: Admission validation.
        defaulter: Defaulting and IP allocation.
        authorizer: Tokens and RBAC.
        pod_log: ``(namespace, name, container, tail_lines, since_seconds, previous,
            timestamps) -> text`` for ``pods/log`` (the controllers' log), or None.
        bookmark_interval: Seconds between ``BOOKMARK`` events on idle watches that asked
            for them.
    """

    def __init__(
        self,
        *,
        store: Store,
        schemas: Schemas,
        documents: Documents,
        validator: Validator,
        defaulter: Defaulter,
        authorizer: Authorizer,
        pod_log: Callable[..., str] | None = None,
        bookmark_interval: float = 1.0,
    ) -> None:
        self.store = store
        self.schemas = schemas
        self.documents = documents
        self.validator = validator
        self.defaulter = defaulter
        self.authorizer = authorizer
        self.pod_log = pod_log
        self.bookmark_interval = bookmark_interval
        self.server_address = "127.0.0.1:0"
        self.records: list[RequestRecord] = []
        self.record_requests = True
        self._faults: list[Fault] = []
        self._dropped: list[tuple[str | None, int]] = []
        self._lock = threading.Lock()
        self._watches: set[Any] = set()
        self._stopping = threading.Event()

    # --- faults --------------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        """Queues an injected failure."""
        with self._lock:
            self._faults.append(fault)

    def drop_watches(self, resource: str | None = None, namespace: str | None = None) -> int:
        """Ends every open watch stream (of ``resource``, in ``namespace``); returns how many."""
        with self._lock:
            targets = [
                w
                for w in self._watches
                if resource in (None, w.rt.plural, w.rt.key) and namespace in (None, w.namespace)
            ]
        for w in targets:
            w.close()
        return len(targets)

    def open_watches(self, resource: str | None = None, namespace: str | None = None) -> int:
        """How many watch streams are open (of ``resource``, in ``namespace``)."""
        with self._lock:
            return sum(
                1
                for w in self._watches
                if resource in (None, w.rt.plural, w.rt.key) and namespace in (None, w.namespace)
            )

    def stop(self) -> None:
        """Ends every open watch (server shutdown)."""
        self._stopping.set()
        self.drop_watches()

    def _take_fault(self, verb: str, rt: ResourceType | None, route: Route | None) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(verb, rt, route):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # --- entry point ---------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        """Answers one request (never raises)."""
        started = time.perf_counter()
        verb, rt, route, user_name = req.method.lower(), None, None, ""
        try:
            user = self._authenticate(req)
            user_name = user.name
            route = None if req.path.rstrip("/") == _SSAR_PATH else parse_path(req.path)
            if req.path.rstrip("/") == _SSAR_PATH:
                verb = "create"
                response = self._self_subject_access_review(req, user)
            elif route is None:
                verb = "get"
                fault = self._take_fault(verb, None, None)
                if fault is not None:
                    raise self._fault_error(fault)
                response = self._non_resource(req)
            else:
                rt = route.rt
                verb = self._verb(req, route)
                fault = self._take_fault(verb, rt, route)
                if fault is not None:
                    raise self._fault_error(fault)
                self._authorize(user, verb, route, _name_from_field_selector(req, verb))
                response = self._resource(req, route, verb, user)
        except ApiError as err:
            response = self._error(err)
        except Exception as exc:  # a bug in the emulator: answer like the real server would
            logger.exception("emulator failed on %s %s", req.method, req.path)
            response = self._error(ApiError.internal(f"Internal error occurred: {exc}"))
        if self.record_requests:
            record = RequestRecord(
                req.method,
                req.path,
                verb,
                rt.key if rt else "",
                route.namespace if route else None,
                route.name if route else None,
                user_name,
                response.status,
                time.perf_counter() - started,
            )
            with self._lock:
                self.records.append(record)
        return response

    def _self_subject_access_review(self, req: Request, user: User) -> Response:
        """``kubectl auth can-i``: may the requesting user do this? (Every user may ask.)"""
        if req.method != "POST":
            raise ApiError.method_not_allowed()
        review = self._body(req)
        if not isinstance(review, dict):
            raise ApiError.bad_request("a SelfSubjectAccessReview object is required")
        spec = review.get("spec") or {}
        attrs = spec.get("resourceAttributes")
        if not isinstance(attrs, dict):
            allowed = "system:masters" in user.groups
            reason = "" if allowed else "non-resource URLs are only allowed for admins here"
        else:
            resource = str(attrs.get("resource") or "")
            if attrs.get("subresource"):
                resource += f"/{attrs['subresource']}"
            allowed = self.authorizer.allowed(
                user,
                str(attrs.get("verb") or ""),
                str(attrs.get("group") or ""),
                resource,
                attrs.get("namespace") or None,
                str(attrs.get("name") or ""),
            )
            reason = ""
        status: dict[str, Any] = {"allowed": allowed}
        if reason:
            status["reason"] = reason
        body = {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        }
        return Response(201, _dumps(body))

    @staticmethod
    def _fault_error(fault: Fault) -> ApiError:
        if fault.status == 429:
            return ApiError.too_many_requests(fault.retry_after)
        if fault.status == 500:
            return ApiError.internal(fault.message or "Internal error occurred: injected fault")
        if fault.status == 503:
            return ApiError(
                503,
                "ServiceUnavailable",
                fault.message or "the server is currently unable to handle the request",
            )
        if fault.status == 504:
            return ApiError(
                504,
                "Timeout",
                fault.message or "the server was unable to return a response in the time allotted",
            )
        return ApiError(fault.status, "InternalError", fault.message or "injected fault")

    def _error(self, err: ApiError) -> Response:
        return Response(err.code, _dumps(err.status()), headers=dict(err.headers))

    def _authenticate(self, req: Request) -> User:
        header = req.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        user = self.authorizer.authenticate(token)
        if user is None:
            raise ApiError.unauthorized()
        return user

    def _authorize(self, user: User, verb: str, route: Route, name: str = "") -> None:
        resource = route.rt.plural + (f"/{route.subresource}" if route.subresource else "")
        namespace = route.namespace
        if route.rt.plural == "namespaces" and route.name:
            namespace = route.name
        if not self.authorizer.allowed(
            user, verb, route.rt.group, resource, namespace, route.name or name
        ):
            from apim_selfhosted.testing.kube.rbac import forbidden

            raise forbidden(
                user.name, verb, route.rt.group, resource, route.namespace, route.name or ""
            )

    @staticmethod
    def _verb(req: Request, route: Route) -> str:
        method = req.method
        if method == "GET":
            if route.name is None:
                return "watch" if req.flag("watch") else "list"
            return "get"
        if method == "POST":
            if route.name is not None and route.subresource is None:
                raise ApiError.method_not_allowed()
            return "create"
        if method == "PUT":
            return "update"
        if method == "PATCH":
            return "patch"
        if method == "DELETE":
            return "delete" if route.name is not None else "deletecollection"
        raise ApiError.method_not_allowed()

    # --- non-resource endpoints ------------------------------------------------------------

    def _non_resource(self, req: Request) -> Response:
        path = req.path.rstrip("/") or "/"
        docs = self.documents
        accept = req.headers.get("accept", "")
        if path == "/version":
            return Response(200, _dumps(docs.version()))
        if path in ("/healthz", "/readyz", "/livez"):
            return Response(200, b"ok", content_type="text/plain")
        if path in ("/api", "/apis"):
            core = path == "/api"
            if "as=APIGroupDiscoveryList" in accept and "v=v2;" in accept.replace(" ", "") + ";":
                return Response(200, _dumps(docs.aggregated(core=core)), content_type=_AGGREGATED)
            if core:
                return Response(200, _dumps(docs.api_versions(self.server_address)))
            return Response(200, _dumps(docs.api_groups()))
        if path == "/api/v1" or path.startswith("/apis/"):
            api_version = "v1" if path == "/api/v1" else path[len("/apis/") :]
            if api_version in groups() or api_version in _VIRTUAL_GROUPS:
                return Response(200, _dumps(docs.resource_list(api_version)))
            group = next((g for g in docs.api_groups()["groups"] if g["name"] == api_version), None)
            if group is not None:
                return Response(200, _dumps({"kind": "APIGroup", "apiVersion": "v1", **group}))
            raise _not_found_path()
        if path == "/openapi/v3":
            return Response(200, _dumps(docs.openapi_v3_index()))
        if path.startswith("/openapi/v3/"):
            body = docs.openapi_v3(path[len("/openapi/v3/") :])
            if body is None:
                raise _not_found_path()
            return Response(200, body, headers={"Cache-Control": "public, immutable"})
        if path == "/openapi/v2":
            if "protobuf" in accept and "json" not in accept:
                return Response(
                    406,
                    _dumps(
                        ApiError(406, "NotAcceptable", "only application/json is served").status()
                    ),
                )
            return Response(200, docs.openapi_v2)
        raise _not_found_path()

    # --- resources -----------------------------------------------------------------------

    def _resource(self, req: Request, route: Route, verb: str, user: User) -> Response:
        rt = route.rt
        if rt.namespaced and route.name is not None and route.namespace is None:
            raise _not_found_path()
        sub = route.subresource
        if sub == "log":
            return self._pod_log(req, route)
        if sub == "scale":
            return self._scale(req, route, verb, user)
        if verb == "get":
            obj = self.store.get(rt, route.namespace, route.name or "")
            return self._object_response(req, rt, obj)
        if verb == "list":
            return self._list(req, route)
        if verb == "watch":
            return self._watch(req, route)
        if verb == "create":
            return self._create(req, route, user)
        if verb == "update":
            return self._update(req, route, user)
        if verb == "patch":
            return self._patch(req, route, user)
        if verb == "delete":
            return self._delete(req, route)
        if verb == "deletecollection":
            return self._delete_collection(req, route)
        raise ApiError.method_not_allowed()

    def _object_response(
        self,
        req: Request,
        rt: ResourceType,
        obj: dict[str, Any],
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Response:
        if _TABLE in req.headers.get("accept", ""):
            from apim_selfhosted.testing.kube.tables import table

            return Response(
                status,
                _dumps(
                    table(
                        rt,
                        [obj],
                        obj["metadata"].get("resourceVersion", ""),
                        include=req.q("includeObject", "Metadata") or "Metadata",
                        now=self.store.now(),
                    )
                ),
                headers=headers or {},
            )
        return Response(status, _dumps(obj), headers=headers or {})

    def _list(self, req: Request, route: Route) -> Response:
        rt = route.rt
        items, rv = self.store.list(
            rt,
            route.namespace,
            label_selector=req.q("labelSelector"),
            field_selector=req.q("fieldSelector"),
        )
        meta: dict[str, Any] = {"resourceVersion": rv}
        token = req.q("continue")
        if token:
            try:
                state = json.loads(base64.urlsafe_b64decode(token.encode()))
                after = (state["ns"], state["name"])
                rv = str(state["rv"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ApiError.bad_request(f"continue key is not valid: {exc}") from exc
            meta["resourceVersion"] = rv
            items = [
                i
                for i in items
                if (i["metadata"].get("namespace", ""), i["metadata"]["name"]) > after
            ]
        limit_text = req.q("limit")
        limit = int(limit_text) if limit_text and limit_text.isdigit() else 0
        if limit and len(items) > limit:
            last = items[limit - 1]["metadata"]
            state = {
                "rv": meta["resourceVersion"],
                "ns": last.get("namespace", ""),
                "name": last["name"],
            }
            meta["continue"] = base64.urlsafe_b64encode(_dumps(state)).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        if _TABLE in req.headers.get("accept", ""):
            from apim_selfhosted.testing.kube.tables import table

            doc = table(
                rt,
                items,
                meta["resourceVersion"],
                include=req.q("includeObject", "Metadata") or "Metadata",
                now=self.store.now(),
            )
            doc["metadata"].update({k: v for k, v in meta.items() if k != "resourceVersion"})
            return Response(200, _dumps(doc))
        body = {
            "kind": f"{rt.kind}List",
            "apiVersion": rt.api_version,
            "metadata": meta,
            "items": items,
        }
        return Response(200, _dumps(body))

    def _watch(self, req: Request, route: Route) -> Response:
        rt = route.rt
        timeout_text = req.q("timeoutSeconds")
        timeout = float(timeout_text) if timeout_text else 1800.0
        rv = req.q("resourceVersion")
        bookmarks = req.flag("allowWatchBookmarks")
        field_selector = req.q("fieldSelector")
        if route.name is not None:
            extra = f"metadata.name={route.name}"
            field_selector = f"{field_selector},{extra}" if field_selector else extra
        initial: list[dict[str, Any]] = []
        send_initial = req.flag("sendInitialEvents")
        if send_initial and not bookmarks:
            raise ApiError.invalid(
                rt,
                "",
                [
                    (
                        "FieldValueForbidden",
                        "allowWatchBookmarks",
                        "Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true",
                    )
                ],
            )
        try:
            with self.store.lock:
                if send_initial:
                    # the "watch list" protocol: current state as ADDED events, then a bookmark
                    # annotated k8s.io/initial-events-end, then changes
                    initial, rv = self.store.list(
                        rt,
                        route.namespace,
                        label_selector=req.q("labelSelector"),
                        field_selector=field_selector,
                    )
                watch = self.store.watch(
                    rt,
                    route.namespace,
                    resource_version=rv,
                    label_selector=req.q("labelSelector"),
                    field_selector=field_selector,
                    allow_bookmarks=bookmarks,
                )
        except ApiError as err:
            if err.code != 410:
                raise
            event = {"type": "ERROR", "object": err.status()}
            return Response(200, stream=iter([_dumps(event) + b"\n"]))
        with self._lock:
            self._watches.add(watch)

        as_table = _TABLE in req.headers.get("accept", "")
        include = req.q("includeObject", "Metadata") or "Metadata"

        def encode(event: dict[str, Any]) -> bytes:
            if as_table and event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                # kubectl get -w: each object as a one-row Table, as the server prints them
                from apim_selfhosted.testing.kube.tables import table

                obj = event["object"]
                event = {
                    "type": event["type"],
                    "object": table(
                        rt,
                        [obj],
                        obj["metadata"].get("resourceVersion", ""),
                        include=include,
                        now=self.store.now(),
                    ),
                }
            return _dumps(event) + b"\n"

        def events() -> Iterator[bytes]:
            deadline = time.monotonic() + timeout
            next_bookmark = time.monotonic() + self.bookmark_interval
            try:
                if send_initial:
                    for obj in initial:
                        yield encode({"type": "ADDED", "object": obj})
                    end = watch.bookmark()
                    end["object"]["metadata"]["resourceVersion"] = rv
                    end["object"]["metadata"]["annotations"] = {"k8s.io/initial-events-end": "true"}
                    yield encode(end)
                while not watch.closed and not self._stopping.is_set():
                    now = time.monotonic()
                    if now >= deadline:
                        return
                    wait = min(deadline, next_bookmark if bookmarks else deadline) - now
                    event = watch.next(min(max(wait, 0.0), _IDLE_CHECK))
                    if event is None:
                        if watch.closed:
                            return
                        if bookmarks and time.monotonic() >= next_bookmark:
                            next_bookmark = time.monotonic() + self.bookmark_interval
                            yield encode(watch.bookmark())
                        else:
                            yield b""  # idle: lets the handler notice a client that went away
                        continue
                    yield encode(event)
            finally:
                watch.close()
                with self._lock:
                    self._watches.discard(watch)

        return Response(200, stream=events())

    # --- writes ----------------------------------------------------------------------------

    def _body(self, req: Request) -> Any:
        content_type = req.headers.get("content-type", "application/json").split(";")[0].strip()
        if content_type == "application/vnd.kubernetes.protobuf":
            from apim_selfhosted.testing.kube.protobuf import ProtobufError, decode

            try:
                return decode(req.body)
            except ProtobufError as exc:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types "
                    f"include: application/json, application/yaml ({exc})",
                ) from exc
        if content_type not in _BODY_TYPES and content_type not in _PATCH_TYPES:
            # protobuf and CBOR are not spoken here: 415 makes client-go fall back to JSON
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types "
                f'include: application/json, application/yaml (got "{content_type}")',
            )
        try:
            text = req.body.decode("utf-8") if req.body else ""
        except UnicodeDecodeError as exc:
            raise ApiError.bad_request(f"error decoding request body: {exc}") from exc
        if not text.strip():
            raise ApiError.bad_request("the body of the request was empty")
        try:
            if content_type in ("application/yaml", "application/apply-patch+yaml"):
                if text.lstrip().startswith("{"):
                    # JSON is YAML, and what kubectl and the clients send: parse it fast
                    with contextlib.suppress(ValueError):
                        return json.loads(text)
                import yaml

                loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
                return yaml.load(text, Loader=loader)
            return json.loads(text)
        except Exception as exc:
            raise ApiError.bad_request(f"error decoding request body: {exc}") from exc

    def _field_manager(self, req: Request, *, apply: bool = False) -> str:
        manager = req.q("fieldManager")
        if manager:
            if len(manager) > 128:
                raise ApiError.bad_request("fieldManager: Too long: must have at most 128 bytes")
            return manager
        if apply:
            raise ApiError.bad_request("PATCH /: fieldManager is required for apply requests")
        agent = req.headers.get("user-agent", "")
        return agent.split("/", 1)[0][:128] or "unknown"

    def _dry_run(self, req: Request) -> bool:
        values = req.query.get("dryRun")
        if values is None:
            return False
        if values != "All":
            raise ApiError.bad_request(
                f'dryRun: Unsupported value: "{values}": supported values: "All"'
            )
        return True

    def _now(self) -> str:
        from apim_selfhosted.testing.kube.store import format_time

        return format_time(self.store.now())

    def _check_type(self, rt: ResourceType, obj: Any) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise ApiError.bad_request(f"Object 'Kind' is missing in '{json.dumps(obj)[:200]}'")
        # like the API server's decoder, a missing kind/apiVersion defaults to the endpoint's
        api_version = obj.setdefault("apiVersion", rt.api_version)
        kind = obj.setdefault("kind", rt.kind)
        if kind != rt.kind:
            raise ApiError.bad_request(
                f'{kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                "no kind is registered for the version"
            )
        if api_version != rt.api_version:
            raise ApiError.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rt.api_version})"
            )
        return obj

    def _unknown(
        self, req: Request, rt: ResourceType, obj: dict[str, Any], warnings: list[str]
    ) -> None:
        mode = req.q("fieldValidation") or "Warn"
        if mode not in ("Ignore", "Warn", "Strict"):
            raise ApiError.bad_request(
                f'fieldValidation: Unsupported value: "{mode}": supported values: '
                '"Ignore", "Strict", "Warn"'
            )
        status = obj.get("status")
        unknown = self.validator.unknown_fields(rt, obj, prune=True)
        if status is not None and "status" not in obj:
            obj["status"] = status
        if not unknown or mode == "Ignore":
            return
        if mode == "Strict":
            joined = ", ".join(f'unknown field "{u}"' for u in unknown)
            raise ApiError.bad_request(f"strict decoding error: {joined}")
        warnings.extend(f'unknown field "{u}"' for u in unknown)

    def _admit(
        self,
        rt: ResourceType,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
        subresource: str | None,
    ) -> None:
        if subresource is None:
            self.defaulter.apply(rt, obj, old=old)
        causes = self.validator.validate(rt, obj, old=old)
        if causes:
            raise ApiError.invalid(rt, (obj.get("metadata") or {}).get("name") or "", causes)

    def _track(
        self,
        req: Request,
        rt: ResourceType,
        old: dict[str, Any] | None,
        new: dict[str, Any],
        subresource: str | None,
        manager: str,
    ) -> None:
        from apim_selfhosted.testing.kube.apply import track_update

        track_update(
            old,
            new,
            manager=manager,
            api_version=rt.api_version,
            schemas=self.schemas,
            node=self._node(rt),
            now=self._now(),
            subresource=subresource or "",
            has_status=rt.has_status,
        )

    def _node(self, rt: ResourceType) -> dict[str, Any]:
        return self.schemas.for_kind(rt.api_version, rt.kind)

    @staticmethod
    def _warning_headers(warnings: list[str]) -> dict[str, str]:
        if not warnings:
            return {}
        return {"Warning": ", ".join(f"299 - {json.dumps(w)}" for w in warnings)}

    def _set_namespace(self, route: Route, obj: dict[str, Any]) -> None:
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError.bad_request("metadata must be an object")
        if route.rt.namespaced:
            if meta.get("namespace") and route.namespace and meta["namespace"] != route.namespace:
                raise ApiError.bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            if route.namespace is None:
                raise _not_found_path()
            meta["namespace"] = route.namespace

    def _create(self, req: Request, route: Route, user: User) -> Response:
        rt = route.rt
        if route.subresource is not None:
            raise ApiError.method_not_allowed()
        obj = self._check_type(rt, self._body(req))
        dry_run = self._dry_run(req)
        warnings: list[str] = []
        self._set_namespace(route, obj)
        self._unknown(req, rt, obj, warnings)
        manager = self._field_manager(req)
        meta = obj["metadata"]
        for server_set in (
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
            "selfLink",
        ):
            meta.pop(server_set, None)
        if meta.get("managedFields") != [{}]:
            meta.pop("managedFields", None)
        self._admit(rt, obj, None, None)
        self._track(req, rt, None, obj, None, manager)
        created = self.store.create(rt, obj, dry_run=dry_run)
        return self._object_response(req, rt, created, 201, self._warning_headers(warnings))

    def _update(self, req: Request, route: Route, user: User) -> Response:
        rt = route.rt
        obj = self._check_type(rt, self._body(req))
        dry_run = self._dry_run(req)
        warnings: list[str] = []
        meta = obj.setdefault("metadata", {})
        if meta.get("name") and meta["name"] != route.name:
            raise ApiError.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL "
                f"({route.name})"
            )
        meta["name"] = route.name
        self._set_namespace(route, obj)
        self._unknown(req, rt, obj, warnings)
        manager = self._field_manager(req)
        with self.store.lock:
            old = self.store.get(rt, route.namespace, route.name or "")
            subresource = route.subresource
            if subresource == "finalize":
                # namespaces/<name>/finalize changes only spec.finalizers
                finalizers = (obj.get("spec") or {}).get("finalizers") or []
                obj = copy.deepcopy(old)
                obj.setdefault("spec", {})["finalizers"] = finalizers
                subresource = None
            stored = self._write(req, rt, old, obj, subresource, manager, dry_run)
        return self._object_response(req, rt, stored, 200, self._warning_headers(warnings))

    def _write(
        self,
        req: Request,
        rt: ResourceType,
        old: dict[str, Any],
        new: dict[str, Any],
        subresource: str | None,
        manager: str,
        dry_run: bool,
    ) -> dict[str, Any]:
        """Admits and stores an update of ``old`` to ``new`` (caller holds the store lock)."""
        if subresource == "status":
            merged = dict(old)
            merged["status"] = new.get("status")
            if merged["status"] is None:
                merged.pop("status")
            new_meta = new.get("metadata") or {}
            merged["metadata"] = dict(old["metadata"])
            if new_meta.get("resourceVersion"):
                merged["metadata"]["resourceVersion"] = new_meta["resourceVersion"]
            new = merged
        elif rt.has_status:
            new = dict(new)
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        meta = new.setdefault("metadata", {})
        sent = meta.get("managedFields")
        if sent != [{}] and not _valid_managed_fields(sent):
            # absent or undecodable: keep the stored ones (clients that do not know
            # managedFields must not wipe them); valid ones sent are the new baseline
            meta["managedFields"] = (old.get("metadata") or {}).get("managedFields")
            if meta["managedFields"] is None:
                meta.pop("managedFields")
        self._admit(rt, new, old, subresource)
        self._track(req, rt, old, new, subresource, manager)
        if rt.plural == "namespaces" and subresource is None:
            new.setdefault("status", old.get("status"))
        _keep_managed_times(old, new)
        return self.store.update(rt, new, subresource=subresource, dry_run=dry_run)

    def _patch(self, req: Request, route: Route, user: User) -> Response:
        from apim_selfhosted.testing.kube import patch as patches

        rt = route.rt
        content_type = req.headers.get("content-type", "").split(";")[0].strip()
        kind = _PATCH_TYPES.get(content_type)
        if kind is None or kind == "apply-cbor":
            raise ApiError.unsupported_media_type(content_type)
        dry_run = self._dry_run(req)
        body = self._body(req)
        warnings: list[str] = []
        if kind == "apply":
            return self._apply(req, route, body, dry_run, warnings, user)
        manager = self._field_manager(req)
        with self.store.lock:
            old = self.store.get(rt, route.namespace, route.name or "")
            # the patch functions share untouched subtrees with their input; defaulting later
            # changes the result in place, so patch a copy and keep ``old`` pristine
            base = copy.deepcopy(old)
            try:
                if kind == "json":
                    patched = patches.json_patch(base, body)
                elif kind == "merge":
                    patched = patches.merge_patch(base, body)
                else:
                    patched = patches.strategic_merge(base, body, self.schemas, self._node(rt))
            except patches.PatchError as err:
                if err.bad_request:
                    raise ApiError.bad_request(str(err)) from err
                raise ApiError(422, "Invalid", str(err)) from err
            if not isinstance(patched, dict):
                raise ApiError.bad_request("the patch must produce an object")
            meta = patched.setdefault("metadata", {})
            meta["name"] = route.name
            if rt.namespaced:
                meta["namespace"] = route.namespace
            patched["apiVersion"], patched["kind"] = rt.api_version, rt.kind
            sent_rv = ((body.get("metadata") or {}) if isinstance(body, dict) else {}).get(
                "resourceVersion"
            )
            meta["resourceVersion"] = sent_rv or old["metadata"]["resourceVersion"]
            self._unknown(req, rt, patched, warnings)
            stored = self._write(req, rt, old, patched, route.subresource, manager, dry_run)
        return self._object_response(req, rt, stored, 200, self._warning_headers(warnings))

    def _apply(
        self,
        req: Request,
        route: Route,
        body: Any,
        dry_run: bool,
        warnings: list[str],
        user: User,
    ) -> Response:
        from apim_selfhosted.testing.kube.apply import ApplyConflict, apply

        rt = route.rt
        manager = self._field_manager(req, apply=True)
        config = self._check_type(rt, body)
        meta = config.setdefault("metadata", {})
        if meta.get("name") and meta["name"] != route.name:
            raise ApiError.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL "
                f"({route.name})"
            )
        meta["name"] = route.name
        self._set_namespace(route, config)
        if meta.get("managedFields"):
            raise ApiError.bad_request("metadata.managedFields must be nil")
        self._unknown(req, rt, config, warnings)
        force = req.flag("force")
        with self.store.lock:
            try:
                live: dict[str, Any] | None = self.store.get(rt, route.namespace, route.name or "")
            except ApiError as err:
                if err.code != 404 or route.subresource is not None:
                    raise
                live = None
            try:
                result: ApplyResult = apply(
                    live,
                    config,
                    manager=manager,
                    force=force,
                    api_version=rt.api_version,
                    schemas=self.schemas,
                    node=self._node(rt),
                    now=self._now(),
                    subresource=route.subresource or "",
                    has_status=rt.has_status,
                )
            except ApplyConflict as conflict:
                raise ApiError(
                    409,
                    "Conflict",
                    str(conflict),
                    details={
                        "causes": [
                            {
                                "reason": "FieldManagerConflict",
                                "message": f"conflict with {m}",
                                "field": f,
                            }
                            for m, f in conflict.conflicts
                        ]
                    },
                ) from conflict
            merged = result.obj
            merged["apiVersion"], merged["kind"] = rt.api_version, rt.kind
            if live is None:
                # a patch that creates needs the create permission too
                self._authorize(user, "create", route)
                self._admit(rt, merged, None, None)
                stored = self.store.create(rt, merged, dry_run=dry_run)
                status = 201
            else:
                merged["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
                sub = route.subresource
                self._admit(rt, merged, live, sub)
                _keep_managed_times(live, merged)
                stored = self.store.update(rt, merged, subresource=sub, dry_run=dry_run)
                status = 200
        return self._object_response(req, rt, stored, status, self._warning_headers(warnings))

    def _delete_options(self, req: Request) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if req.body and req.body.strip():
            try:
                parsed = json.loads(req.body)
            except ValueError as exc:
                raise ApiError.bad_request(f"error decoding DeleteOptions: {exc}") from exc
            if isinstance(parsed, dict):
                options = parsed
        if req.q("propagationPolicy"):
            options["propagationPolicy"] = req.q("propagationPolicy")
        if req.q("dryRun"):
            options["dryRun"] = [req.q("dryRun")]
        if req.q("gracePeriodSeconds"):
            options["gracePeriodSeconds"] = int(req.q("gracePeriodSeconds") or 0)
        dry = options.get("dryRun") or []
        if dry and dry != ["All"]:
            raise ApiError.bad_request(
                f'dryRun: Unsupported value: "{dry[0]}": supported values: "All"'
            )
        return options

    def _delete(self, req: Request, route: Route) -> Response:
        rt = route.rt
        if route.subresource is not None:
            raise ApiError.method_not_allowed()
        options = self._delete_options(req)
        dry_run = bool(options.get("dryRun"))
        deleted = self.store.delete(
            rt,
            route.namespace,
            route.name or "",
            propagation_policy=options.get("propagationPolicy") or "Background",
            preconditions=options.get("preconditions"),
            dry_run=dry_run,
        )
        if not dry_run:
            self.defaulter.release(rt, deleted)
        still_there = bool(deleted["metadata"].get("finalizers")) or rt.plural in (
            "pods",
            "namespaces",
        )
        if still_there or dry_run:
            return Response(200, _dumps(deleted))
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {
                "name": route.name,
                "kind": rt.plural,
                "uid": deleted["metadata"].get("uid"),
            },
        }
        if rt.group:
            status["details"]["group"] = rt.group
        return Response(200, _dumps(status))

    def _delete_collection(self, req: Request, route: Route) -> Response:
        rt = route.rt
        if "deletecollection" not in rt.verbs:
            raise ApiError.method_not_allowed()
        options = self._delete_options(req)
        dry_run = bool(options.get("dryRun"))
        items, _ = self.store.list(
            rt,
            route.namespace,
            label_selector=req.q("labelSelector"),
            field_selector=req.q("fieldSelector"),
        )
        deleted = []
        for item in items:
            try:
                deleted.append(
                    self.store.delete(
                        rt,
                        item["metadata"].get("namespace"),
                        item["metadata"]["name"],
                        propagation_policy=options.get("propagationPolicy") or "Background",
                        dry_run=dry_run,
                    )
                )
            except ApiError as err:
                if err.code != 404:
                    raise
        body = {
            "kind": f"{rt.kind}List",
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": self.store.resource_version},
            "items": deleted,
        }
        return Response(200, _dumps(body))

    # --- subresources ----------------------------------------------------------------------

    def _scale_of(self, obj: dict[str, Any]) -> dict[str, Any]:
        from apim_selfhosted.testing.kube.store import label_selector_to_string

        meta = obj["metadata"]
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in meta
            },
            "spec": {"replicas": spec.get("replicas", 0)},
            "status": {
                "replicas": status.get("replicas", 0),
                "selector": label_selector_to_string(spec.get("selector")),
            },
        }

    def _scale(self, req: Request, route: Route, verb: str, user: User) -> Response:
        from apim_selfhosted.testing.kube import patch as patches

        rt = route.rt
        if verb == "get":
            obj = self.store.get(rt, route.namespace, route.name or "")
            return Response(200, _dumps(self._scale_of(obj)))
        if verb not in ("update", "patch"):
            raise ApiError.method_not_allowed()
        dry_run = self._dry_run(req)
        body = self._body(req)
        manager = self._field_manager(
            req, apply=req.headers.get("content-type", "").startswith("application/apply-patch")
        )
        with self.store.lock:
            obj = self.store.get(rt, route.namespace, route.name or "")
            scale = self._scale_of(obj)
            if verb == "update":
                new_scale = body
            else:
                content_type = req.headers.get("content-type", "").split(";")[0].strip()
                kind = _PATCH_TYPES.get(content_type)
                try:
                    if kind == "json":
                        new_scale = patches.json_patch(scale, body)
                    elif kind in ("merge", "strategic", "apply"):
                        new_scale = patches.merge_patch(scale, body)
                    else:
                        raise ApiError.unsupported_media_type(content_type)
                except patches.PatchError as err:
                    raise ApiError(422, "Invalid", str(err)) from err
            replicas = ((new_scale or {}).get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise ApiError(
                    422,
                    "Invalid",
                    f'Scale.autoscaling "{route.name}" is invalid: spec.replicas: Invalid value: '
                    f"{json.dumps(replicas)}: must be greater than or equal to 0",
                )
            sent_rv = ((new_scale or {}).get("metadata") or {}).get("resourceVersion")
            if verb == "update" and sent_rv and sent_rv != obj["metadata"]["resourceVersion"]:
                raise ApiError.stale(rt, route.name or "")
            new = json.loads(json.dumps(obj))
            new["spec"]["replicas"] = replicas
            self._track(req, rt, obj, new, None, manager)
            stored = self.store.update(rt, new, dry_run=dry_run)
        return Response(200, _dumps(self._scale_of(stored)))

    def _pod_log(self, req: Request, route: Route) -> Response:
        if self.pod_log is None:
            raise ApiError.bad_request("pod logs are not available")
        self.store.get(route.rt, route.namespace, route.name or "")

        def number(name: str) -> int | None:
            value = req.q(name)
            return int(value) if value and value.lstrip("-").isdigit() else None

        text = self.pod_log(
            route.namespace or "",
            route.name or "",
            container=req.q("container"),
            tail_lines=number("tailLines"),
            since_seconds=number("sinceSeconds"),
            previous=req.flag("previous"),
            timestamps=req.flag("timestamps"),
        )
        return Response(200, text.encode(), content_type="text/plain")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)

    def _serve(self) -> None:
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        req = Request(self.command, split.path, query, headers, body)
        response = self.server.api.handle(req)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Audit-Id", f"{threading.get_ident():x}-{time.monotonic_ns():x}")
        for key, value in response.headers.items():
            self.send_header(key, value)
        if response.stream is None:
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in response.stream:
                if not chunk:
                    if self._client_gone():
                        break
                    continue
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            close = getattr(response.stream, "close", None)
            if close is not None:
                close()

    def _client_gone(self) -> bool:
        """Whether the client of a streaming response hung up.

        While it waits for a watch stream a client sends nothing, so a readable socket means
        it closed the connection (EOF or a TLS close_notify).
        """
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve  # noqa: N815


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    api: ApiServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # clients that hang up or fail the TLS handshake are not the server's problem
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)


class HttpServer:
    """Serves an :class:`ApiServer` over HTTP(S) on ``127.0.0.1`` (an ephemeral port by default).

    Args:
        api: The API server.
        port: The TCP port; 0 picks a free one.
        ssl_context: Serve HTTPS with this server context (kubectl sends bearer tokens only
            over TLS).
    """

    def __init__(
        self, api: ApiServer, *, port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.api = api
        self.api = api
        host, bound = str(self._server.server_address[0]), int(self._server.server_address[1])
        scheme = "http"
        if ssl_context is not None:
            # the handshake happens on first read, in the request's own thread
            self._server.socket = ssl_context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
            scheme = "https"
        self.url = f"{scheme}://{host}:{bound}"
        api.server_address = f"{host}:{bound}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="kube-emulator-http",
            daemon=True,
        )

    def start(self) -> None:
        """Starts serving in a daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stops serving and ends open watches."""
        self.api.stop()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def utc_now() -> datetime:
    """The current time in UTC (the default clock)."""
    return datetime.now(UTC)
