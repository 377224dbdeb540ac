"""The emulator's object store: what etcd plus the generic registry of kube-apiserver do.

Objects are plain JSON dicts. The store assigns ``metadata.uid``, ``resourceVersion``,
``generation`` and ``creationTimestamp``, enforces optimistic concurrency, requires namespaces
to exist, deletes the content of a namespace with it, collects garbage by ``ownerReferences`` and
serves watches from a bounded history (``410 Gone`` for versions older than the history).

It does *not* validate or default objects: the HTTP layer does that before it writes.

Namespace deletion is synchronous: ``delete`` of a namespace marks it ``Terminating`` (one
``MODIFIED`` event), deletes every object in it, then removes it (``DELETED``). If an object in it
still has finalizers, the namespace stays ``Terminating`` until the last object is gone.
Garbage collection is synchronous too: when ``delete`` returns, the dependents are gone (or, with
``propagation_policy="Orphan"``, no longer reference the owner).

A new store already holds the namespaces ``default``, ``kube-system``, ``kube-public`` and
``kube-node-lease``, as kube-apiserver creates them itself.

Example:
    >>> from apim_selfhosted.testing.kube.resources import by_key
    >>> store = Store()
    >>> cm = store.create(
    ...     by_key("configmaps"),
    ...     {"apiVersion": "v1", "kind": "ConfigMap",
    ...      "metadata": {"name": "c", "namespace": "default", "labels": {"app": "x"}},
    ...      "data": {"k": "v"}},
    ... )
    >>> cm["metadata"]["resourceVersion"] == store.resource_version
    True
    >>> items, rv = store.list(by_key("configmaps"), "default", label_selector="app in (x,y)")
    >>> [i["metadata"]["name"] for i in items]
    ['c']
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from apim_selfhosted.testing.kube.errors import ApiError
from apim_selfhosted.testing.kube.resources import RESOURCES, ResourceType, by_key

__all__ = [
    "Requirement",
    "Store",
    "StoreLock",
    "Watch",
    "clone",
    "field_value",
    "format_time",
    "label_selector_requirements",
    "label_selector_to_string",
    "match_label_selector",
    "match_labels",
    "parse_field_selector",
    "parse_label_selector",
]

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
Subscriber = Callable[[str, ResourceType, Obj], None]
_Dependents = list[tuple[ResourceType, tuple[str, str], Obj]]
_ObjList = list[Obj]
_T = TypeVar("_T")

SYSTEM_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")
"""Namespaces that a new store already holds, as on a fresh cluster."""

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
"""The alphabet of ``generateName`` suffixes (k8s.io/apimachinery/pkg/util/rand)."""

_WITH_GENERATION = frozenset(
    {
        "deployments.apps",
        "replicasets.apps",
        "pods",
        "jobs.batch",
        "cronjobs.batch",
        "horizontalpodautoscalers.autoscaling",
        "poddisruptionbudgets.policy",
        "networkpolicies.networking.k8s.io",
    }
)
"""Types whose registry strategy sets ``metadata.generation`` (bumped on spec changes)."""


def format_time(when: datetime) -> str:
    """RFC 3339 in UTC with seconds precision, as Kubernetes writes ``metav1.Time``.

    Args:
        when: An aware (or naive UTC) datetime.

    Returns:
        For example ``"2024-01-02T03:04:05Z"``.

    >>> format_time(datetime(2024, 1, 2, 3, 4, 5, 999, tzinfo=UTC))
    '2024-01-02T03:04:05Z'
    """
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def random_suffix(length: int = 5) -> str:
    """Random characters as Kubernetes appends to ``generateName`` and pod names.

    >>> len(random_suffix())
    5
    """
    return "".join(random.choice(_NAME_CHARS) for _ in range(length))


# --------------------------------------------------------------------------------------------
# Label selectors
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    """One term of a label selector.

    ``operator`` is one of ``=``, ``!=``, ``in``, ``notin``, ``exists``, ``!`` (does not exist),
    ``gt``, ``lt``.

    >>> Requirement("app", "in", ("a", "b")).matches({"app": "b"})
    True
    """

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this requirement.

        Args:
            labels: The object's labels.

        Returns:
            True if satisfied.
        """
        present = self.key in labels
        value = labels.get(self.key)
        op = self.operator
        if op in ("=", "in"):
            return present and value in self.values
        if op in ("!=", "notin"):
            return not present or value not in self.values
        if op == "exists":
            return present
        if op == "!":
            return not present
        if op in ("gt", "lt"):
            if not present or value is None:
                return False
            try:
                have = int(value)
            except ValueError:
                return False
            want = int(self.values[0])
            return have > want if op == "gt" else have < want
        return False  # pragma: no cover - parser never produces other operators

    def __str__(self) -> str:
        if self.operator in ("=", "!="):
            return f"{self.key}{self.operator}{self.values[0]}"
        if self.operator in ("in", "notin"):
            return f"{self.key} {self.operator} ({','.join(self.values)})"
        if self.operator == "exists":
            return self.key
        if self.operator == "!":
            return f"!{self.key}"
        return f"{self.key}{'>' if self.operator == 'gt' else '<'}{self.values[0]}"


_KEY_RE = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _bad_selector(detail: str) -> ApiError:
    return ApiError.bad_request(f"unable to parse requirement: {detail}")


def _check_key(key: str) -> str:
    if not _KEY_RE.match(key) or len(key.rsplit("/", 1)[-1]) > 63:
        raise _bad_selector(
            f'key: Invalid value: "{key}": name part must consist of alphanumeric characters, '
            "'-', '_' or '.', and must start and end with an alphanumeric character"
        )
    return key


def _check_value(value: str) -> str:
    if not _VALUE_RE.match(value):
        raise _bad_selector(
            f'values[0]: Invalid value: "{value}": a valid label must be an empty string or '
            "consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
            "an alphanumeric character"
        )
    return value


_SET_RE = re.compile(r"^\s*(\S+?)\s+(in|notin)\s*\((.*)\)\s*$")
_CMP_RE = re.compile(r"^\s*([^=!<>\s]+)\s*(==|!=|=|>|<)\s*(.*?)\s*$")


def parse_label_selector(text: str | None) -> tuple[Requirement, ...]:
    """Parse a label selector string as ``kubectl -l`` and ``?labelSelector=`` use it.

    Syntax: ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a`` (exists),
    ``!a`` (does not exist), ``a>1``, ``a<1``, joined by commas (all must hold).

    Args:
        text: The selector; empty or None selects everything.

    Returns:
        The requirements.

    Raises:
        ApiError: 400 ``BadRequest`` for a malformed selector.

    >>> [str(r) for r in parse_label_selector("app=x, tier in (a,b),!legacy")]
    ['app=x', 'tier in (a,b)', '!legacy']
    """
    if text is None or not text.strip():
        return ()
    out: list[Requirement] = []
    for raw in _split_top_level(text):
        term = raw.strip()
        if not term:
            raise _bad_selector(f'found "", expected: identifier in selector "{text}"')
        match = _SET_RE.match(term)
        if match:
            key, op, inner = match.group(1), match.group(2), match.group(3)
            values = tuple(_check_value(v.strip()) for v in inner.split(",")) if inner else ()
            if not inner.strip():
                raise _bad_selector("for 'in', 'notin' operators, values set can't be empty")
            out.append(Requirement(_check_key(key), op, tuple(sorted(set(values)))))
            continue
        if term.startswith("!"):
            out.append(Requirement(_check_key(term[1:].strip()), "!"))
            continue
        match = _CMP_RE.match(term)
        if match:
            key, op, value = match.group(1), match.group(2), match.group(3)
            if op in (">", "<"):
                try:
                    int(value)
                except ValueError:
                    raise _bad_selector(
                        f"for 'Gt', 'Lt' operators, the value must be an integer: {value!r}"
                    ) from None
                out.append(Requirement(_check_key(key), "gt" if op == ">" else "lt", (value,)))
            else:
                out.append(
                    Requirement(
                        _check_key(key), "!=" if op == "!=" else "=", (_check_value(value),)
                    )
                )
            continue
        if re.match(r"^[^\s=!<>(),]+$", term):
            out.append(Requirement(_check_key(term), "exists"))
            continue
        raise _bad_selector(f'invalid selector term "{term}" in "{text}"')
    return tuple(out)


def match_labels(
    selector: str | Sequence[Requirement] | None, labels: Mapping[str, str] | None
) -> bool:
    """Whether ``labels`` match a selector (string or parsed requirements).

    Args:
        selector: A selector string or the result of :func:`parse_label_selector`;
            empty or None matches everything.
        labels: The object's labels (None is no labels).

    Returns:
        True if every requirement holds.

    Raises:
        ApiError: 400 for a malformed selector string.

    >>> match_labels("app=x,!old", {"app": "x"}), match_labels("app!=x", {"app": "x"})
    (True, False)
    """
    reqs = parse_label_selector(selector) if isinstance(selector, str | None) else selector
    have = labels or {}
    return all(r.matches(have) for r in reqs)


def label_selector_requirements(selector: Mapping[str, Any]) -> tuple[Requirement, ...]:
    """Requirements of a ``LabelSelector`` object (``matchLabels`` and ``matchExpressions``).

    Args:
        selector: ``{"matchLabels": {...}, "matchExpressions": [{key, operator, values}]}``.

    Returns:
        The requirements (an empty selector gives none, i.e. it matches everything).

    Raises:
        ApiError: 400 for an unknown operator.

    >>> [str(r) for r in label_selector_requirements(
    ...     {"matchLabels": {"app": "x"},
    ...      "matchExpressions": [{"key": "t", "operator": "NotIn", "values": ["a"]}]})]
    ['app=x', 't notin (a)']
    """
    out: list[Requirement] = []
    for key, value in sorted((selector.get("matchLabels") or {}).items()):
        out.append(Requirement(key, "=", (str(value),)))
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in selector.get("matchExpressions") or []:
        op = ops.get(expr.get("operator", ""))
        if op is None:
            raise ApiError.bad_request(
                f'"{expr.get("operator")}" is not a valid label selector operator'
            )
        values = tuple(sorted(str(v) for v in expr.get("values") or ()))
        out.append(Requirement(str(expr.get("key", "")), op, values))
    return tuple(out)


def match_label_selector(
    selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None
) -> bool:
    """Whether ``labels`` match a ``LabelSelector`` object.

    As in Kubernetes, an empty selector matches everything and a missing (None) selector
    matches nothing.

    Args:
        selector: The ``LabelSelector`` dict, or None.
        labels: The object's labels.

    Returns:
        True if they match.

    >>> match_label_selector({"matchLabels": {"app": "x"}}, {"app": "x", "v": "2"})
    True
    >>> match_label_selector(None, {"app": "x"})
    False
    """
    if selector is None:
        return False
    return match_labels(label_selector_requirements(selector), labels)


def label_selector_to_string(selector: Mapping[str, Any] | None) -> str:
    """The string form of a ``LabelSelector`` (as the scale subresource's ``status.selector``).

    Args:
        selector: The ``LabelSelector`` dict.

    Returns:
        For example ``"app=x,tier in (a,b)"``.

    >>> label_selector_to_string({"matchLabels": {"b": "2", "a": "1"}})
    'a=1,b=2'
    """
    if not selector:
        return ""
    return ",".join(str(r) for r in label_selector_requirements(selector))


# --------------------------------------------------------------------------------------------
# Field selectors
# --------------------------------------------------------------------------------------------

_COMMON_FIELDS = ("metadata.name", "metadata.namespace")
_FIELDS: dict[str, tuple[str, ...]] = {
    "pods": (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "secrets": ("type",),
    "events": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    "namespaces": ("status.phase",),
    "replicasets.apps": ("status.replicas",),
    "jobs.batch": ("status.successful",),
    "services": ("spec.clusterIP", "spec.type"),
}


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The value of a field-selector path in an object, as a string (``""`` if absent).

    >>> field_value({"status": {"phase": "Running"}}, "status.phase")
    'Running'
    """
    if path == "source":
        node: Any = (obj.get("source") or {}).get("component", "")
        return str(node or "")
    node = obj
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return ""
        node = node.get(part)
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def parse_field_selector(rt: ResourceType, text: str | None) -> tuple[tuple[str, str, str], ...]:
    """Parse a field selector for a resource type.

    Args:
        rt: The resource type (decides which fields are supported).
        text: For example ``"metadata.name=x,status.phase!=Running"``.

    Returns:
        ``(field, operator, value)`` triples; operator is ``=`` or ``!=``.

    Raises:
        ApiError: 400 for malformed text or an unsupported field.

    >>> parse_field_selector(by_key("pods"), "status.phase==Running")
    (('status.phase', '=', 'Running'),)
    """
    if text is None or not text.strip():
        return ()
    allowed = _COMMON_FIELDS + _FIELDS.get(rt.key, ())
    out: list[tuple[str, str, str]] = []
    for raw in text.split(","):
        term = raw.strip()
        match = re.match(r"^([^=!]+?)\s*(==|!=|=)\s*(.*)$", term)
        if not match:
            raise ApiError.bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
        field, op, value = match.group(1).strip(), match.group(2), match.group(3).strip()
        if field not in allowed:
            raise ApiError.bad_request(f"field label not supported: {field}")
        out.append((field, "!=" if op == "!=" else "=", value))
    return tuple(out)


def _match_fields(obj: Mapping[str, Any], terms: Iterable[tuple[str, str, str]]) -> bool:
    for field, op, value in terms:
        have = field_value(obj, field)
        if (have == value) != (op == "="):
            return False
    return True


# --------------------------------------------------------------------------------------------
# Watch
# --------------------------------------------------------------------------------------------


class Watch:
    """A stream of watch events for one resource type, as the watch cache serves it.

    Events are ``{"type": "ADDED"|"MODIFIED"|"DELETED"|"BOOKMARK", "object": obj}``.

    >>> from apim_selfhosted.testing.kube.resources import by_key
    >>> store = Store()
    >>> w = store.watch(by_key("namespaces"), None, resource_version=store.resource_version)
    >>> _ = store.create(by_key("namespaces"), {"metadata": {"name": "n1"}})
    >>> ev = w.next(1.0)
    >>> ev["type"], ev["object"]["metadata"]["name"]
    ('ADDED', 'n1')
    >>> w.close(); w.next(0.01) is None
    True
    """

    def __init__(
        self,
        store: Store,
        rt: ResourceType,
        namespace: str | None,
        labels: tuple[Requirement, ...],
        fields: tuple[tuple[str, str, str], ...],
        allow_bookmarks: bool,
    ) -> None:
        self._store = store
        self.rt = rt
        self.namespace = namespace
        self._labels = labels
        self._fields = fields
        self.allow_bookmarks = allow_bookmarks
        self._queue: queue.SimpleQueue[Obj | None] = queue.SimpleQueue()
        self.closed = False

    def _matches(self, obj: Obj | None) -> bool:
        if obj is None:
            return False
        meta = obj.get("metadata") or {}
        if (
            self.rt.namespaced
            and self.namespace is not None
            and meta.get("namespace") != self.namespace
        ):
            return False
        return match_labels(self._labels, meta.get("labels")) and _match_fields(obj, self._fields)

    def _offer(self, etype: str, obj: Obj, old: Obj | None) -> None:
        """Queue an event if it concerns this watch (called under the store lock)."""
        if self.closed:
            return
        now = self._matches(obj)
        if etype == "MODIFIED" and old is not None:
            before = self._matches(old)
            if now and not before:
                etype = "ADDED"
            elif before and not now:
                gone = dict(old)
                gone["metadata"] = dict(old.get("metadata") or {})
                gone["metadata"]["resourceVersion"] = obj["metadata"]["resourceVersion"]
                self._queue.put({"type": "DELETED", "object": gone})
                return
        if now:
            self._queue.put({"type": etype, "object": obj})

    def next(self, timeout: float) -> dict[str, Any] | None:
        """The next event, or None after ``timeout`` seconds (or when the watch is closed).

        Args:
            timeout: Seconds to wait.

        Returns:
            The event (a deep copy) or None.
        """
        if self.closed:
            return None
        try:
            event = self._queue.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return None
        if event is None:
            return None
        return {"type": event["type"], "object": clone(event["object"])}

    def bookmark(self) -> dict[str, Any]:
        """A ``BOOKMARK`` event at the store's current resourceVersion (beyond the contract).

        Returns:
            ``{"type": "BOOKMARK", "object": {kind, apiVersion, metadata: {resourceVersion}}}``.
        """
        return {
            "type": "BOOKMARK",
            "object": {
                "kind": self.rt.kind,
                "apiVersion": self.rt.api_version,
                "metadata": {"resourceVersion": self._store.resource_version},
            },
        }

    def close(self) -> None:
        """Stop the watch; a blocked :meth:`next` returns None."""
        if self.closed:
            return
        self.closed = True
        self._store._remove_watch(self)
        self._queue.put(None)

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------------
# Store
# --------------------------------------------------------------------------------------------


class StoreLock:
    """The store's re-entrant lock; subscribers are called when the outermost holder releases.

    Use as ``with store.lock: ...`` to make several store calls one atomic step.
    """

    def __init__(self, store: Store) -> None:
        self._lock = threading.RLock()
        self._depth = 0
        self._store = store

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Acquire (re-entrant), as :meth:`threading.RLock.acquire`."""
        ok = self._lock.acquire(blocking, timeout)
        if ok:
            self._depth += 1
        return ok

    def release(self) -> None:
        """Release; the outermost release delivers pending events to subscribers."""
        self._depth -= 1
        if self._depth:
            self._lock.release()
            return
        pending = self._store._take_pending()
        self._lock.release()
        if pending:
            self._store._deliver(pending)

    def __enter__(self) -> StoreLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Store:
    """Thread-safe in-memory object store with watches and subscriptions.

    Args:
        clock: Returns the current time (aware UTC); defaults to the system clock.
        history: How many change events to keep for watches that resume from a
            resourceVersion; older versions get ``410 Gone``.

    >>> from apim_selfhosted.testing.kube.resources import by_key
    >>> store = Store()
    >>> ns = store.create(by_key("namespaces"), {"metadata": {"name": "team"}})
    >>> ns["status"]["phase"]
    'Active'
    """

    def __init__(self, *, clock: Callable[[], datetime] | None = None, history: int = 2000) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self.lock = StoreLock(self)
        self._rv = 0
        self._objects: dict[str, dict[tuple[str, str], Obj]] = {rt.key: {} for rt in RESOURCES}
        self._history: deque[tuple[int, str, str, Obj, Obj | None]] = deque(maxlen=max(history, 1))
        self._history_floor = 0
        self._watches: dict[str, list[Watch]] = {rt.key: [] for rt in RESOURCES}
        self._subscribers: list[tuple[Subscriber, bool]] = []
        self._by_uid: dict[str, Obj] = {}
        self._labels: dict[str, dict[tuple[str, str], set[tuple[str, str]]]] = {}
        self._owned: dict[str, dict[tuple[str, str, str], ResourceType]] = {}
        self._pending: list[tuple[str, ResourceType, Obj]] = []
        with self.lock:
            for name in SYSTEM_NAMESPACES:
                self.create(by_key("namespaces"), {"metadata": {"name": name}})

    # --- basics ------------------------------------------------------------------------------

    @property
    def resource_version(self) -> str:
        """The current global resourceVersion (a monotonic integer, as a string)."""
        return str(self._rv)

    def now(self) -> datetime:
        """The store's clock."""
        return self._clock()

    def _bucket(self, rt: ResourceType) -> dict[tuple[str, str], Obj]:
        bucket = self._objects.get(rt.key)
        if bucket is None:
            bucket = self._objects[rt.key] = {}
            self._watches[rt.key] = []
        return bucket

    @staticmethod
    def _ns(rt: ResourceType, namespace: str | None) -> str:
        return (namespace or "") if rt.namespaced else ""

    def _emit(self, etype: str, rt: ResourceType, obj: Obj, old: Obj | None) -> None:
        """Record a committed change (under the lock): history, watches, subscribers."""
        if len(self._history) == self._history.maxlen:
            self._history_floor = self._history[0][0]
        self._history.append((self._rv, etype, rt.key, obj, old))
        for w in self._watches.get(rt.key, ()):
            w._offer(etype, obj, old)
        if self._subscribers:
            self._pending.append((etype, rt, obj))

    def _take_pending(self) -> list[tuple[str, ResourceType, Obj]]:
        pending, self._pending = self._pending, []
        return pending

    def _deliver(self, pending: list[tuple[str, ResourceType, Obj]]) -> None:
        subscribers = list(self._subscribers)
        for etype, rt, obj in pending:
            for callback, copy in subscribers:
                try:
                    callback(etype, rt, clone(obj) if copy else obj)
                except Exception:
                    logger.exception("store subscriber failed on %s %s", etype, rt.key)

    def subscribe(self, callback: Subscriber, *, copy: bool = True) -> Callable[[], None]:
        """Call ``callback(event_type, rt, obj)`` after each committed change.

        The callback runs outside the store lock, in the writer's thread, after the writer's
        outermost lock release; it gets a deep copy.

        Args:
            callback: The function to call.
            copy: False hands the callback the stored object itself, which it must only read
                (beyond the contract; saves a copy per change for read-only consumers).

        Returns:
            A function that unsubscribes.

        >>> seen = []
        >>> store = Store()
        >>> stop = store.subscribe(lambda etype, rt, obj: seen.append((etype, rt.kind)))
        >>> _ = store.create(by_key("namespaces"), {"metadata": {"name": "n"}})
        >>> stop(); seen
        [('ADDED', 'Namespace')]
        """
        entry = (callback, copy)
        with self.lock:
            self._subscribers.append(entry)

        def unsubscribe() -> None:
            with self.lock:
                if entry in self._subscribers:
                    self._subscribers.remove(entry)

        return unsubscribe

    # --- reads -------------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        """One object (a deep copy).

        Args:
            rt: The resource type.
            namespace: The namespace (ignored for cluster-scoped types).
            name: The object's name.

        Returns:
            The object.

        Raises:
            ApiError: 404 ``NotFound``.

        >>> Store().get(by_key("namespaces"), None, "default")["status"]["phase"]
        'Active'
        """
        with self.lock:
            obj = self._bucket(rt).get((self._ns(rt, namespace), name))
            if obj is None:
                raise ApiError.not_found(rt, name)
            return clone(obj)

    def exists(self, rt: ResourceType, namespace: str | None, name: str) -> bool:
        """Whether an object exists (beyond the contract; no copy made)."""
        with self.lock:
            return (self._ns(rt, namespace), name) in self._bucket(rt)

    def list(
        self,
        rt: ResourceType,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[list[Obj], str]:
        """Objects of a type, sorted by namespace and name, and the list's resourceVersion.

        Args:
            rt: The resource type.
            namespace: Only this namespace; None for all namespaces.
            label_selector: A label selector string.
            field_selector: A field selector string.

        Returns:
            ``(items, resource_version)``.

        Raises:
            ApiError: 400 for a bad selector.

        >>> items, rv = Store().list(by_key("namespaces"), None, label_selector="!team")
        >>> [n["metadata"]["name"] for n in items][:2]
        ['default', 'kube-node-lease']
        """
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(rt, field_selector)
        with self.lock:
            out: list[Obj] = []
            bucket = self._bucket(rt)
            keys = self._candidates(rt, labels)
            if keys is None:
                keys = set(bucket)
            for key in sorted(keys):
                ns = key[0]
                if rt.namespaced and namespace is not None and ns != namespace:
                    continue
                obj = bucket[key]
                meta = obj["metadata"]
                if match_labels(labels, meta.get("labels")) and _match_fields(obj, fields):
                    out.append(clone(obj))
            return out, self.resource_version

    # --- writes ------------------------------------------------------------------------------

    def _check_namespace(self, rt: ResourceType, namespace: str, name: str) -> None:
        ns = self._objects["namespaces"].get(("", namespace))
        if ns is None:
            raise ApiError.namespace_not_found(namespace)
        if (ns.get("status") or {}).get("phase") == "Terminating" or ns["metadata"].get(
            "deletionTimestamp"
        ):
            raise ApiError.namespace_terminating(rt, name, namespace)

    def create(self, rt: ResourceType, obj: Obj, *, dry_run: bool = False) -> Obj:
        """Store a new object.

        Sets ``uid``, ``resourceVersion``, ``creationTimestamp`` and (for types with a spec)
        ``generation: 1``; supports ``generateName``. Namespaces get ``status.phase: Active``
        and the ``kubernetes`` finalizer in ``spec.finalizers`` as the real strategy sets them.

        Args:
            rt: The resource type.
            obj: The object (not modified).
            dry_run: Check everything and return the result without storing it.

        Returns:
            The stored object (a copy).

        Raises:
            ApiError: 409 ``AlreadyExists``; 404 if the namespace does not exist; 403 if it
                is terminating; 422 without a name.

        >>> cm = Store().create(
        ...     by_key("configmaps"), {"metadata": {"generateName": "c-", "namespace": "default"}})
        >>> cm["metadata"]["name"].startswith("c-"), len(cm["metadata"]["uid"])
        (True, 36)
        """
        new = clone(obj)
        new.setdefault("apiVersion", rt.api_version)
        new.setdefault("kind", rt.kind)
        meta = new.setdefault("metadata", {})
        with self.lock:
            bucket = self._bucket(rt)
            if rt.namespaced:
                namespace = meta.get("namespace") or ""
                if not namespace:
                    raise ApiError.bad_request("the namespace of the object is required")
            else:
                meta.pop("namespace", None)
                namespace = ""
            name = meta.get("name") or ""
            if not name:
                prefix = meta.get("generateName") or ""
                if not prefix:
                    raise ApiError.invalid(
                        rt,
                        "",
                        [
                            (
                                "FieldValueRequired",
                                "metadata.name",
                                "Required value: name or generateName is required",
                            )
                        ],
                    )
                for _ in range(20):
                    name = prefix + random_suffix()
                    if (namespace, name) not in bucket:
                        break
                meta["name"] = name
            if rt.namespaced:
                self._check_namespace(rt, namespace, name)
            if (namespace, name) in bucket:
                raise ApiError.already_exists(rt, name)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = format_time(self._clock())
            for transient in ("deletionTimestamp", "deletionGracePeriodSeconds"):
                meta.pop(transient, None)
            if rt.key in _WITH_GENERATION:
                meta["generation"] = 1
            if rt.key == "namespaces":
                new.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
                new.setdefault("status", {})["phase"] = "Active"
            if dry_run:
                meta["resourceVersion"] = self.resource_version
                return new
            self._rv += 1
            meta["resourceVersion"] = str(self._rv)
            self._put(rt, (namespace, name), new)
            self._emit("ADDED", rt, new, None)
            return clone(new)

    def update(
        self,
        rt: ResourceType,
        obj: Obj,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """Replace an object (PUT), with optimistic concurrency.

        Args:
            rt: The resource type.
            obj: The new object; ``metadata.name``/``namespace`` say which one. If
                ``metadata.resourceVersion`` is set it must equal the stored one.
            subresource: ``"status"`` to change only the status (and ``managedFields``);
                None for the main resource, which keeps the stored status when the type has a
                status subresource.
            dry_run: Check everything and return the result without storing it.

        Returns:
            The stored object (a copy). A change-less update returns the stored object
            unchanged (same resourceVersion, no event).

        Raises:
            ApiError: 404 ``NotFound``; 409 ``Conflict`` on a stale resourceVersion or uid.

        >>> store = Store()
        >>> cm = store.create(
        ...     by_key("configmaps"), {"metadata": {"name": "c", "namespace": "default"}})
        >>> cm["data"] = {"k": "v"}
        >>> _ = store.update(by_key("configmaps"), cm)
        >>> store.update(by_key("configmaps"), cm)  # cm still has the old resourceVersion
        Traceback (most recent call last):
        ...
        apim_selfhosted.testing.kube.errors.ApiError: Operation cannot be fulfilled on ...
        """
        meta_in = obj.get("metadata") or {}
        name = meta_in.get("name") or ""
        with self.lock:
            key = (self._ns(rt, meta_in.get("namespace")), name)
            bucket = self._bucket(rt)
            old = bucket.get(key)
            if old is None:
                raise ApiError.not_found(rt, name)
            old_meta = old["metadata"]
            rv = meta_in.get("resourceVersion")
            if rv and rv != old_meta["resourceVersion"]:
                raise ApiError.stale(rt, name)
            uid = meta_in.get("uid")
            if uid and uid != old_meta["uid"]:
                raise ApiError.conflict(
                    rt,
                    name,
                    f"Precondition failed: UID in precondition: {uid}, "
                    f"UID in object meta: {old_meta['uid']}",
                )
            if subresource == "status":
                new = clone(old)
                if "status" in obj:
                    new["status"] = clone(obj["status"])
                else:
                    new.pop("status", None)
                if "managedFields" in meta_in:
                    new["metadata"]["managedFields"] = clone(meta_in["managedFields"])
            else:
                new = clone(obj)
                new.setdefault("apiVersion", rt.api_version)
                new.setdefault("kind", rt.kind)
                meta = new.setdefault("metadata", {})
                if rt.namespaced:
                    meta["namespace"] = old_meta["namespace"]
                else:
                    meta.pop("namespace", None)
                for fixed in (
                    "uid",
                    "creationTimestamp",
                    "generation",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                ):
                    if fixed in old_meta:
                        meta[fixed] = old_meta[fixed]
                    else:
                        meta.pop(fixed, None)
                if rt.has_status:
                    if "status" in old:
                        new["status"] = clone(old["status"])
                    else:
                        new.pop("status", None)
                if "generation" in old_meta and _spec_part(new) != _spec_part(old):
                    meta["generation"] = old_meta["generation"] + 1
            new["metadata"]["resourceVersion"] = old_meta["resourceVersion"]
            if new == old:
                return clone(old)
            if dry_run:
                return new
            self._rv += 1
            new["metadata"]["resourceVersion"] = str(self._rv)
            new_meta = new["metadata"]
            if (
                new_meta.get("deletionTimestamp")
                and not new_meta.get("finalizers")
                and not (rt.key == "pods" and new_meta.get("deletionGracePeriodSeconds"))
            ):
                # The last finalizer is gone (a pod in its grace period waits for the kubelet).
                self._remove(rt, key, new)
                return clone(new)
            self._put(rt, key, new)
            self._emit("MODIFIED", rt, new, old)
            return clone(new)

    def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        *,
        propagation_policy: str = "Background",
        preconditions: Mapping[str, str] | None = None,
        dry_run: bool = False,
        grace_period_seconds: int | None = None,
    ) -> Obj:
        """Delete an object, collecting its dependents by ``ownerReferences``.

        Args:
            rt: The resource type.
            namespace: The namespace (ignored for cluster-scoped types).
            name: The object's name.
            propagation_policy: ``Background`` or ``Foreground`` delete dependents (recursively);
                ``Orphan`` removes the owner's reference from them.
            preconditions: ``{"uid": ..., "resourceVersion": ...}`` that must match.
            dry_run: Check everything and return the result without deleting.
            grace_period_seconds: For pods (beyond the contract): a positive value on a pod
                that is bound to a node and still running only marks it (``deletionTimestamp``
                = now + grace, ``deletionGracePeriodSeconds``), as the API server does; the
                kubelet of the controllers then stops it and deletes it with 0. None or 0
                deletes at once (unbound pods are always deleted at once).

        Returns:
            The deleted object with ``deletionTimestamp`` set. An object with finalizers is
            only marked (``deletionTimestamp``) and stays until an update empties its
            finalizers. A namespace is marked ``Terminating``, its content deleted, then it
            goes (synchronously, see the module docstring).

        Raises:
            ApiError: 404 ``NotFound``; 409 ``Conflict`` when a precondition fails; 400 for an
                unknown propagation policy.

        >>> store = Store()
        >>> _ = store.create(by_key("namespaces"), {"metadata": {"name": "team"}})
        >>> _ = store.create(
        ...     by_key("configmaps"), {"metadata": {"name": "c", "namespace": "team"}})
        >>> _ = store.delete(by_key("namespaces"), None, "team")
        >>> store.list(by_key("configmaps"), "team")[0]
        []
        """
        if propagation_policy not in ("Background", "Foreground", "Orphan"):
            raise ApiError.bad_request(
                f'propagationPolicy: Unsupported value: "{propagation_policy}": supported '
                'values: "Foreground", "Background", "Orphan"'
            )
        with self.lock:
            key = (self._ns(rt, namespace), name)
            old = self._bucket(rt).get(key)
            if old is None:
                raise ApiError.not_found(rt, name)
            meta = old["metadata"]
            pre = preconditions or {}
            if pre.get("uid") and pre["uid"] != meta["uid"]:
                raise ApiError.conflict(
                    rt,
                    name,
                    f"Precondition failed: UID in precondition: {pre['uid']}, "
                    f"UID in object meta: {meta['uid']}",
                )
            if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
                raise ApiError.conflict(
                    rt,
                    name,
                    f"Precondition failed: ResourceVersion in precondition: "
                    f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                    f"{meta['resourceVersion']}",
                )
            now = format_time(self._clock())
            if dry_run:
                out = clone(old)
                out["metadata"].setdefault("deletionTimestamp", now)
                return out
            graceful = (
                rt.key == "pods"
                and (grace_period_seconds or 0) > 0
                and bool((old.get("spec") or {}).get("nodeName"))
                and (old.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            )
            if meta.get("deletionTimestamp") and rt.key != "namespaces":
                if not (
                    rt.key == "pods" and grace_period_seconds == 0 and not meta.get("finalizers")
                ):
                    return clone(old)
            elif graceful:
                grace = int(grace_period_seconds or 0)
                new = clone(old)
                new["metadata"]["deletionTimestamp"] = format_time(
                    self._clock() + timedelta(seconds=grace)
                )
                new["metadata"]["deletionGracePeriodSeconds"] = grace
                if "generation" in new["metadata"]:
                    new["metadata"]["generation"] += 1
                self._rv += 1
                new["metadata"]["resourceVersion"] = str(self._rv)
                self._put(rt, key, new)
                self._emit("MODIFIED", rt, new, old)
                return clone(new)
            if rt.key == "namespaces":
                return self._delete_namespace(rt, key, old, now)
            if meta.get("finalizers"):
                new = clone(old)
                new["metadata"]["deletionTimestamp"] = now
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                if "generation" in new["metadata"]:
                    new["metadata"]["generation"] += 1
                self._rv += 1
                new["metadata"]["resourceVersion"] = str(self._rv)
                self._put(rt, key, new)
                self._emit("MODIFIED", rt, new, old)
                if propagation_policy == "Orphan":
                    self._orphan(new)
                return clone(new)
            if propagation_policy == "Foreground":
                self._collect(old)
            self._rv += 1
            gone = clone(old)
            gone["metadata"]["resourceVersion"] = str(self._rv)
            gone["metadata"]["deletionTimestamp"] = now
            gone["metadata"]["deletionGracePeriodSeconds"] = 0
            self._remove(rt, key, gone, orphan=propagation_policy == "Orphan")
            return clone(gone)

    # --- deletion internals -------------------------------------------------------------------

    def _remove(
        self, rt: ResourceType, key: tuple[str, str], gone: Obj, *, orphan: bool = False
    ) -> None:
        """Remove a stored object for good (RV already bumped), then collect dependents."""
        self._drop(rt, key)
        self._emit("DELETED", rt, gone, None)
        if orphan:
            self._orphan(gone)
        else:
            self._collect(gone)
        namespace = key[0]
        if rt.namespaced and namespace:
            ns = self._objects["namespaces"].get(("", namespace))
            if ns is not None and ns["metadata"].get("deletionTimestamp"):
                self._finish_namespace(namespace)

    def _candidates(
        self, rt: ResourceType, labels: tuple[Requirement, ...]
    ) -> set[tuple[str, str]] | None:
        """Keys that can match the equality terms of a selector (None: no such term)."""
        index = self._labels.get(rt.key, {})
        best: set[tuple[str, str]] | None = None
        for req in labels:
            if req.operator != "=":
                continue
            found = index.get((req.key, req.values[0]), set())
            if best is None or len(found) < len(best):
                best = found
        return None if best is None else set(best)

    def _put(self, rt: ResourceType, key: tuple[str, str], new: Obj) -> None:
        """Store an object and keep the uid, owner and label indexes right."""
        bucket = self._bucket(rt)
        old = bucket.get(key)
        if old is not None:
            self._unindex(rt, key, old)
        bucket[key] = new
        self._by_uid[new["metadata"]["uid"]] = new
        for ref in new["metadata"].get("ownerReferences") or ():
            owner = str(ref.get("uid", ""))
            self._owned.setdefault(owner, {})[(rt.key, *key)] = rt
        index = self._labels.setdefault(rt.key, {})
        for label in (new["metadata"].get("labels") or {}).items():
            if isinstance(label[1], str):
                index.setdefault(label, set()).add(key)

    def _drop(self, rt: ResourceType, key: tuple[str, str]) -> None:
        old = self._bucket(rt).pop(key, None)
        if old is not None:
            self._unindex(rt, key, old)

    def _unindex(self, rt: ResourceType, key: tuple[str, str], old: Obj) -> None:
        self._by_uid.pop(old["metadata"]["uid"], None)
        index = self._labels.get(rt.key, {})
        for label in (old["metadata"].get("labels") or {}).items():
            if not isinstance(label[1], str):
                continue
            keys = index.get(label)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del index[label]
        for ref in old["metadata"].get("ownerReferences") or ():
            owner = str(ref.get("uid", ""))
            members = self._owned.get(owner)
            if members is not None:
                members.pop((rt.key, *key), None)
                if not members:
                    del self._owned[owner]

    def _dependents(self, owner: Obj) -> _Dependents:
        uid = owner["metadata"]["uid"]
        out: _Dependents = []
        for (_, ns, name), rt in sorted(self._owned.get(uid, {}).items(), key=lambda item: item[0]):
            obj = self._bucket(rt).get((ns, name))
            if obj is not None:
                out.append((rt, (ns, name), obj))
        return out

    def dependents(
        self, owner_uid: str, rt: ResourceType | None = None, *, copy: bool = True
    ) -> _ObjList:
        """Objects whose ``ownerReferences`` name ``owner_uid`` (beyond the contract).

        Served from an index, so controllers need not list and filter everything.

        Args:
            owner_uid: The owner's ``metadata.uid``.
            rt: Only this resource type; None for all.
            copy: Return deep copies (False: the stored dicts, which callers must not
                modify).

        Returns:
            The dependents, sorted by type, namespace and name.

        >>> store = Store()
        >>> owner = store.create(
        ...     by_key("configmaps"), {"metadata": {"name": "o", "namespace": "default"}})
        >>> ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "o",
        ...        "uid": owner["metadata"]["uid"]}
        >>> _ = store.create(by_key("configmaps"), {"metadata": {
        ...     "name": "d", "namespace": "default", "ownerReferences": [ref]}})
        >>> [d["metadata"]["name"] for d in store.dependents(owner["metadata"]["uid"])]
        ['d']
        """
        with self.lock:
            out: _ObjList = []
            for (key, ns, name), dep_rt in sorted(
                self._owned.get(owner_uid, {}).items(), key=lambda item: item[0]
            ):
                if rt is not None and key != rt.key:
                    continue
                obj = self._bucket(dep_rt).get((ns, name))
                if obj is not None:
                    out.append(clone(obj) if copy else obj)
            return out

    def owners_gone(self, obj: Mapping[str, Any]) -> bool:
        """Whether every owner in ``obj``'s ``ownerReferences`` is gone (beyond the contract).

        The garbage collector deletes such dangling dependents; the controllers use this to
        do the same for objects created by a racing writer after their owner was deleted.

        Args:
            obj: The object.

        Returns:
            True if it has owner references and none of the owners exists.

        >>> Store().owners_gone({"metadata": {"ownerReferences": [{"uid": "nope"}]}})
        True
        """
        refs = (obj.get("metadata") or {}).get("ownerReferences") or ()
        with self.lock:
            return bool(refs) and not any(str(r.get("uid")) in self._by_uid for r in refs)

    def _uid_exists(self, uid: str) -> bool:
        obj = self._by_uid.get(uid)
        return obj is not None and not obj["metadata"].get("deletionTimestamp")

    def _strip_refs(self, rt: ResourceType, key: tuple[str, str], obj: Obj, uids: set[str]) -> None:
        new = clone(obj)
        refs = [r for r in new["metadata"].get("ownerReferences") or () if r.get("uid") not in uids]
        if refs:
            new["metadata"]["ownerReferences"] = refs
        else:
            new["metadata"].pop("ownerReferences", None)
        self._rv += 1
        new["metadata"]["resourceVersion"] = str(self._rv)
        self._put(rt, key, new)
        self._emit("MODIFIED", rt, new, obj)

    def _collect(self, owner: Obj) -> None:
        """Garbage-collect dependents of a deleted owner (like the GC, but synchronous)."""
        uid = owner["metadata"]["uid"]
        for rt, key, obj in self._dependents(owner):
            current = self._bucket(rt).get(key)
            if current is None or current is not obj:
                continue
            others = [
                r
                for r in obj["metadata"].get("ownerReferences") or ()
                if r.get("uid") != uid and self._uid_exists(str(r.get("uid")))
            ]
            if others:
                dangling = {
                    str(r.get("uid"))
                    for r in obj["metadata"].get("ownerReferences") or ()
                    if r not in others
                }
                self._strip_refs(rt, key, obj, dangling)
                continue
            with contextlib.suppress(ApiError):
                self.delete(rt, key[0], key[1], propagation_policy="Background")

    def _orphan(self, owner: Obj) -> None:
        uid = owner["metadata"]["uid"]
        for rt, key, obj in self._dependents(owner):
            self._strip_refs(rt, key, obj, {uid})

    def _delete_namespace(self, rt: ResourceType, key: tuple[str, str], old: Obj, now: str) -> Obj:
        namespace = key[1]
        if not old["metadata"].get("deletionTimestamp"):
            new = clone(old)
            new["metadata"]["deletionTimestamp"] = now
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new.setdefault("status", {})["phase"] = "Terminating"
            self._rv += 1
            new["metadata"]["resourceVersion"] = str(self._rv)
            self._put(rt, key, new)
            self._emit("MODIFIED", rt, new, old)
        else:
            new = old
        marked = clone(new)
        for other in RESOURCES:
            if not other.namespaced:
                continue
            for obj_key in [k for k in self._bucket(other) if k[0] == namespace]:
                if obj_key in self._bucket(other):
                    stored = self._bucket(other)[obj_key]
                    if stored["metadata"].get("deletionTimestamp"):
                        continue
                    self.delete(other, namespace, obj_key[1])
        self._finish_namespace(namespace)
        return marked

    def _finish_namespace(self, namespace: str) -> None:
        """Remove a terminating namespace once nothing is left in it."""
        ns_rt = by_key("namespaces")
        ns = self._objects["namespaces"].get(("", namespace))
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        for other in RESOURCES:
            if other.namespaced and any(k[0] == namespace for k in self._bucket(other)):
                return
        if ns["metadata"].get("finalizers"):
            return
        self._rv += 1
        gone = clone(ns)
        gone["metadata"]["resourceVersion"] = str(self._rv)
        gone.setdefault("spec", {})["finalizers"] = []
        self._drop(ns_rt, ("", namespace))
        self._emit("DELETED", ns_rt, gone, None)

    # --- watch -------------------------------------------------------------------------------

    def watch(
        self,
        rt: ResourceType,
        namespace: str | None,
        *,
        resource_version: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        allow_bookmarks: bool = False,
    ) -> Watch:
        """Start a watch.

        Args:
            rt: The resource type.
            namespace: Only this namespace; None for all.
            resource_version: None or ``"0"``: an ``ADDED`` event for every current matching
                object first, then changes. Otherwise every change after that version.
            label_selector: Only objects whose labels match; an object that starts or stops
                matching is sent as ``ADDED``/``DELETED``.
            field_selector: Only objects whose fields match.
            allow_bookmarks: Recorded on the watch (the HTTP layer sends bookmarks).

        Returns:
            The :class:`Watch`; close it when done.

        Raises:
            ApiError: 410 ``Expired`` for a version older than the kept history; 400 for a bad
                selector or resourceVersion.

        >>> store = Store(history=1)
        >>> old = store.resource_version
        >>> for n in ("a", "b"):
        ...     _ = store.create(by_key("namespaces"), {"metadata": {"name": n}})
        >>> store.watch(by_key("namespaces"), None, resource_version=old)
        Traceback (most recent call last):
        ...
        apim_selfhosted.testing.kube.errors.ApiError: too old resource version: ...
        """
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(rt, field_selector)
        w = Watch(self, rt, namespace, labels, fields, allow_bookmarks)
        with self.lock:
            if resource_version in (None, "", "0"):
                for _key, obj in sorted(self._bucket(rt).items()):
                    w._offer("ADDED", obj, None)
            else:
                try:
                    since = int(str(resource_version))
                except ValueError:
                    raise ApiError.bad_request(
                        f'Invalid value: "{resource_version}": resourceVersion must be an integer'
                    ) from None
                if since < self._history_floor:
                    raise ApiError.gone(
                        f"too old resource version: {since} ({self._history_floor + 1})"
                    )
                for rv, etype, key, obj, old in self._history:
                    if rv > since and key == rt.key:
                        w._offer(etype, obj, old)
            self._watches.setdefault(rt.key, []).append(w)
        return w

    def _remove_watch(self, w: Watch) -> None:
        with self.lock:
            watches = self._watches.get(w.rt.key, [])
            if w in watches:
                watches.remove(w)


def clone(value: _T) -> _T:
    """Deep copy of a JSON-like value (dicts, lists, scalars): much faster than deepcopy.

    >>> a = {"x": [1, {"y": 2}]}
    >>> b = clone(a); b["x"][1]["y"] = 3; a
    {'x': [1, {'y': 2}]}
    """
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, list):
        return [clone(v) for v in value]  # type: ignore[return-value]
    return value


def _spec_part(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Everything but metadata and status: what a generation bump looks at."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}
