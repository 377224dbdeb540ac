"""Controllers that act like kube-controller-manager and a kubelet, in process, over the store.

* Deployment controller: one ReplicaSet per pod-template hash (``<deployment>-<hash>``, label
  ``pod-template-hash``), revisions in ``deployment.kubernetes.io/revision``, rolling updates
  that honour ``maxSurge`` (rounded up) and ``maxUnavailable`` (rounded down), ``Recreate``,
  ``paused``, ``minReadySeconds``, ``revisionHistoryLimit`` and ``progressDeadlineSeconds``;
  status and the ``Available``/``Progressing`` conditions with the real reasons.
* ReplicaSet controller: creates pods ``<rs>-<5 chars>`` owned by the ReplicaSet and deletes
  surplus ones, not-ready pods first.
* Kubelet: schedules pods on one node, resolves their environment from Secrets and ConfigMaps
  (once per container start, as the kubelet does), starts them and makes them Ready after a
  delay, or follows a scripted :class:`PodBehaviour` (never ready, crash loop, image pull error);
  keeps container logs; records Events.
* Service controller: ``LoadBalancer`` Services get ``status.loadBalancer.ingress``.

Everything is event driven: the controllers subscribe to the store and keep a work queue and a
timer heap served by one worker thread, so idle deployments cost no CPU.

Two simplifications against the real system: a deleted pod disappears at once (no graceful
termination period), and a Deployment scaled in the middle of a rollout is not scaled
proportionally across its ReplicaSets (the rolling-update step reconciles it instead).

Example:
    >>> from apim_selfhosted.testing.kube.store import Store
    >>> controllers = Controllers(Store(), ready_delay=0.01)
    >>> controllers.script(image="example/broken:1", behaviour=PodBehaviour(never_ready=True))
    >>> resolve_int_or_percent("25%", 10, round_up=True), resolve_int_or_percent(
    ...     "25%", 10, round_up=False)
    (3, 2)
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import heapq
import itertools
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from apim_selfhosted.testing.kube.errors import ApiError
from apim_selfhosted.testing.kube.resources import ResourceType, by_key
from apim_selfhosted.testing.kube.store import (
    Requirement,
    Store,
    clone,
    format_time,
    label_selector_requirements,
    label_selector_to_string,
    match_label_selector,
    random_suffix,
)

__all__ = ["Controllers", "PodBehaviour", "pod_template_hash", "resolve_int_or_percent"]

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
Key = tuple[str, str, str]

DEPLOY = by_key("deployments.apps")
RS = by_key("replicasets.apps")
POD = by_key("pods")
SVC = by_key("services")
PDB = by_key("poddisruptionbudgets.policy")
HPA = by_key("horizontalpodautoscalers.autoscaling")
SECRET = by_key("secrets")
CONFIGMAP = by_key("configmaps")
EVENT = by_key("events")

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX = "deployment.kubernetes.io/max-replicas"
HASH_LABEL = "pod-template-hash"
_NOT_COPIED = {
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED,
    MAX,
    "deprecated.deployment.rollback.to",
}
NODE_NAME = "kube-emulator"
HOST_IP = "10.0.0.2"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


@dataclass(frozen=True)
class PodBehaviour:
    """What pods matching a :meth:`Controllers.script` rule do.

    Attributes:
        ready_after: Seconds from container start to Ready; None uses the controllers'
            ``ready_delay``.
        never_ready: The container runs but its readiness probe keeps failing.
        crash_loop: The container exits with code 1 soon after each start
            (``CrashLoopBackOff``, ``restartCount`` grows).
        image_pull_error: The image cannot be pulled (``ErrImagePull``, then
            ``ImagePullBackOff``).
        log_lines: Lines the container prints after its start line.

    >>> PodBehaviour(log_lines=("ready",)).log_lines
    ('ready',)
    """

    ready_after: float | None = None
    never_ready: bool = False
    crash_loop: bool = False
    image_pull_error: bool = False
    log_lines: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.ready_after is not None and not self.ready_after >= 0:
            raise ValueError(
                f"PodBehaviour.ready_after must be >= 0 seconds or None, got {self.ready_after!r}"
            )
        if isinstance(self.log_lines, str):
            raise ValueError("PodBehaviour.log_lines must be a tuple of lines, not one string")


@dataclass(frozen=True)
class _Rule:
    image: str | None
    labels: Mapping[str, str] | None
    behaviour: PodBehaviour

    def matches(self, pod: Mapping[str, Any]) -> bool:
        if self.labels:
            have = (pod.get("metadata") or {}).get("labels") or {}
            if any(have.get(k) != v for k, v in self.labels.items()):
                return False
        if self.image:
            images = [c.get("image", "") for c in (pod.get("spec") or {}).get("containers") or []]
            return any(
                img == self.image or img.startswith((self.image + ":", self.image + "@"))
                for img in images
            )
        return True


@dataclass
class _Container:
    name: str
    image: str
    logs: list[tuple[datetime, str]] = field(default_factory=list)
    previous: list[tuple[datetime, str]] | None = None
    restarts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    last_started_at: datetime | None = None
    container_id: str = ""
    waiting: tuple[str, str] | None = ("ContainerCreating", "")
    env: dict[str, str] = field(default_factory=dict, repr=False)  # may hold secret values


@dataclass
class _PodRuntime:
    uid: str
    behaviour: PodBehaviour
    pod_ip: str
    containers: list[_Container]
    stage: str = "new"
    due: float = 0.0
    ready: bool = False
    ready_since: datetime | None = None
    start_time: datetime | None = None
    backoff: float = 0.2


def resolve_int_or_percent(value: int | str | None, total: int, *, round_up: bool) -> int:
    """Resolve an ``IntOrString`` such as ``maxSurge`` against a replica count.

    Args:
        value: An int, ``"25%"`` or a numeric string; None is 0.
        total: The replica count percentages refer to.
        round_up: Round a percentage up (``maxSurge``) or down (``maxUnavailable``).

    Returns:
        The absolute number.

    Raises:
        ValueError: ``value`` is neither an int nor a percentage.

    >>> resolve_int_or_percent("30%", 5, round_up=True)
    2
    >>> resolve_int_or_percent(2, 5, round_up=False)
    2
    """
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ValueError(f"invalid value for IntOrString: {value!r}")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.endswith("%"):
        pct = int(text[:-1])
        exact = pct * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(text)


def pod_template_hash(template: Mapping[str, Any], collision_count: int = 0) -> str:
    """The ``pod-template-hash`` of a pod template: FNV-1a over the template, safely encoded.

    Args:
        template: The Deployment's ``spec.template``.
        collision_count: ``status.collisionCount`` (changes the hash after a collision).

    Returns:
        A short string of the characters Kubernetes uses for generated names.

    >>> pod_template_hash({"spec": {}}) == pod_template_hash({"spec": {}})
    True
    """
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        data += str(collision_count).encode()
    h = 0x811C9DC5
    for byte in data:
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return "".join(_SAFE[ord(ch) % len(_SAFE)] for ch in str(h))


def _controller_ref(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return ref  # type: ignore[no-any-return]
    return None


def _strip_hash(template: Mapping[str, Any]) -> Obj:
    out = clone(dict(template))
    labels = (out.get("metadata") or {}).get("labels")
    if labels and HASH_LABEL in labels:
        labels = dict(labels)
        labels.pop(HASH_LABEL)
        out["metadata"] = dict(out["metadata"], labels=labels)
    return out


def _revision(rs: Mapping[str, Any]) -> int:
    try:
        return int(((rs.get("metadata") or {}).get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _cond(conditions: list[Obj], ctype: str) -> Obj | None:
    for c in conditions:
        if c.get("type") == ctype:
            return c
    return None


def _set_cond(
    conditions: list[Obj], ctype: str, status: str, reason: str, message: str, now: str
) -> None:
    """``SetDeploymentCondition``: a no-op when status and reason are unchanged."""
    current = _cond(conditions, ctype)
    if current and current["status"] == status and current.get("reason") == reason:
        return
    new = {
        "type": ctype,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }
    if current and current["status"] == status:
        new["lastTransitionTime"] = current["lastTransitionTime"]
    conditions[:] = [c for c in conditions if c.get("type") != ctype] + [new]


def _order_conditions(conditions: list[Obj]) -> list[Obj]:
    order = {"Available": 0, "Progressing": 1, "ReplicaFailure": 2}
    return sorted(conditions, key=lambda c: order.get(str(c.get("type")), 9))


def _drop_zero(status: Obj, keep: Iterable[str] = ()) -> Obj:
    """Leave out zero counts, as the API's ``omitempty`` fields do."""
    kept = set(keep)
    return {k: v for k, v in status.items() if k in kept or v not in (0, None, [])}


class Controllers:
    """The deployment, replica-set, service controllers and a kubelet, on one worker thread.

    Args:
        store: The object store to watch and write.
        clock: The wall clock for timestamps; defaults to the store's.
        ready_delay: Seconds from container start to Ready when no rule says otherwise.
        assign_load_balancer: Give ``LoadBalancer`` Services an ingress IP (127.0.0.x);
            False leaves them pending. May be changed later through the attribute.

    >>> from apim_selfhosted.testing.kube.store import Store
    >>> ctl = Controllers(Store(), ready_delay=0.01)
    >>> ctl.start(); ctl.wait_idle(timeout=1.0)
    True
    >>> ctl.stop()
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], datetime] | None = None,
        ready_delay: float = 0.05,
        assign_load_balancer: bool = True,
    ) -> None:
        if not ready_delay >= 0:
            raise ValueError(f"ready_delay must be >= 0 seconds, got {ready_delay!r}")
        self.store = store
        self._clock = clock or store.now
        self.ready_delay = ready_delay
        self._assign_load_balancer = assign_load_balancer
        self._cond = threading.Condition()
        self._queue: dict[Key, None] = {}
        self._timers: list[tuple[float, int, Key, bool]] = []
        self._work_timers = 0
        self._seq = itertools.count()
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._rules: list[_Rule] = []
        self._pods: dict[tuple[str, str], _PodRuntime] = {}
        self._waiting_config: dict[str, set[str]] = {}
        self._state = threading.Lock()
        self._ip_seq = itertools.count(2)
        self._lb_seq = itertools.count(10)
        self._lb_ips: dict[str, str] = {}
        self._lb_due: dict[str, float] = {}
        self._deadlines: dict[Key, datetime] = {}
        self._pdbs: dict[str, dict[str, tuple[Requirement, ...] | None]] = {}
        self._scheduled: set[Key] = set()
        self._hpas: dict[str, dict[str, str]] = {}
        self._orphans: dict[tuple[str, str], set[str]] = {}
        self._min_ready_due: dict[Key, float] = {}
        self._events: dict[tuple[str, str, str, str], str] = {}
        self._event_seq = itertools.count()

    @property
    def assign_load_balancer(self) -> bool:
        """Whether ``LoadBalancer`` Services get an ingress IP; setting True serves pending ones."""
        return self._assign_load_balancer

    @assign_load_balancer.setter
    def assign_load_balancer(self, enabled: bool) -> None:
        self._assign_load_balancer = enabled
        if enabled and self._thread is not None:
            for svc in self.store.list(SVC, None)[0]:
                self._enqueue(("svc", svc["metadata"]["namespace"], svc["metadata"]["name"]))

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Subscribe to the store and start the worker thread (idempotent)."""
        if self._thread is not None:
            return
        self._stopping = False
        self._unsubscribe = self.store.subscribe(self._on_change, copy=False)
        self._thread = threading.Thread(target=self._run, name="kube-controllers", daemon=True)
        self._thread.start()
        for rt, kind in (
            (DEPLOY, "deploy"),
            (RS, "rs"),
            (POD, "pod"),
            (SVC, "svc"),
            (PDB, "pdb"),
            (HPA, "hpa"),
        ):
            for obj in self.store.list(rt, None)[0]:
                meta = obj["metadata"]
                if rt is PDB:
                    self._index_budget(obj)
                if rt is HPA:
                    self._index_autoscaler("ADDED", obj)
                if (rt is RS or rt is POD) and _controller_ref(obj) is None:
                    with self._cond:
                        self._orphans.setdefault((rt.key, meta["namespace"]), set()).add(
                            meta["name"]
                        )
                self._enqueue((kind, meta.get("namespace", ""), meta["name"]))

    def stop(self) -> None:
        """Stop the worker thread and unsubscribe."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> Controllers:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_idle(self, *, timeout: float = 5.0) -> bool:
        """Wait until no work is queued or due (for tests).

        Pending pod readiness, load-balancer assignment and ``minReadySeconds`` count as work;
        crash-loop restarts, image-pull back-offs and progress-deadline checks do not (they
        would never end).

        Args:
            timeout: Seconds to wait at most.

        Returns:
            True if idle, False on timeout.

        >>> from apim_selfhosted.testing.kube.store import Store
        >>> with Controllers(Store()) as ctl:
        ...     ctl.wait_idle(timeout=1.0)
        True
        """
        end = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy or self._work_timers:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def script(
        self,
        *,
        image: str | None = None,
        labels: Mapping[str, str] | None = None,
        behaviour: PodBehaviour,
    ) -> None:
        """Make pods that match ``image`` and/or ``labels`` follow ``behaviour``.

        The rule applies to pods started after the call; the latest matching rule wins. An
        image matches exactly or with any tag/digest (``example/gw`` matches ``example/gw:2``).

        Args:
            image: A container image of the pod.
            labels: Labels the pod must carry (all of them).
            behaviour: What the pods do.
        """
        with self._state:
            self._rules.append(_Rule(image, dict(labels) if labels else None, behaviour))

    def clear_scripts(self) -> None:
        """Forget every :meth:`script` rule (beyond the contract)."""
        with self._state:
            self._rules.clear()

    # --- queue and timers ----------------------------------------------------------------------

    def _enqueue(self, key: Key) -> None:
        with self._cond:
            self._queue.setdefault(key, None)
            self._cond.notify_all()

    def _after(self, delay: float, key: Key, *, work: bool = True) -> None:
        with self._cond:
            heapq.heappush(
                self._timers, (time.monotonic() + max(delay, 0.0), next(self._seq), key, work)
            )
            if work:
                self._work_timers += 1
            self._cond.notify_all()

    def _after_once(self, delay: float, key: Key) -> None:
        """Like :meth:`_after`, unless the key is already waiting for a timer."""
        with self._cond:
            if key in self._scheduled:
                return
            self._scheduled.add(key)
        self._after(delay, key)

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopping:
                        return
                    now = time.monotonic()
                    while self._timers and self._timers[0][0] <= now:
                        _, _, key, work = heapq.heappop(self._timers)
                        self._scheduled.discard(key)
                        if work:
                            self._work_timers -= 1
                        self._queue.setdefault(key, None)
                    if self._queue:
                        key = next(iter(self._queue))
                        del self._queue[key]
                        self._busy = True
                        break
                    self._cond.notify_all()
                    wait = self._timers[0][0] - now if self._timers else None
                    self._cond.wait(wait)
            try:
                self._sync(key)
            except ApiError as exc:
                if exc.code == 409:
                    self._after(0.01, key)
                elif exc.code not in (403, 404):
                    logger.warning("controller sync of %s failed: %s", key, exc.message)
            except Exception:
                logger.exception("controller sync of %s failed", key)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _on_change(self, etype: str, rt: ResourceType, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace", "")
        name = meta.get("name", "")
        if rt is RS or rt is POD:
            # Track orphans, so that adoption lists only when there is something to adopt.
            orphan = (
                etype != "DELETED"
                and _controller_ref(obj) is None
                and not meta.get("deletionTimestamp")
            )
            with self._cond:
                orphans = self._orphans.setdefault((rt.key, ns), set())
                if orphan:
                    orphans.add(name)
                else:
                    orphans.discard(name)
        if rt is DEPLOY:
            self._enqueue(("deploy", ns, name))
            with self._cond:
                scalers = [h for h, target in self._hpas.get(ns, {}).items() if target == name]
            for scaler in scalers:
                self._enqueue(("hpa", ns, scaler))
        elif rt is RS:
            self._enqueue(("rs", ns, name))
            owner = _controller_ref(obj)
            if owner and owner.get("kind") == "Deployment":
                self._enqueue(("deploy", ns, str(owner.get("name"))))
        elif rt is POD:
            owner = _controller_ref(obj)
            if owner and owner.get("kind") == "ReplicaSet":
                self._enqueue(("rs", ns, str(owner.get("name"))))
            if etype != "MODIFIED" or meta.get("deletionTimestamp"):
                self._enqueue(("pod", ns, name))
            with self._cond:
                budgets = list(self._pdbs.get(ns, {}).items())
            labels = meta.get("labels") or {}
            for budget, requirements in budgets:
                if requirements is not None and all(r.matches(labels) for r in requirements):
                    # Pods change often during a rollout: recompute a budget at most once
                    # per ready_delay (the real disruption controller batches through its queue).
                    self._after_once(self.ready_delay, ("pdb", ns, budget))
        elif rt is HPA:
            self._index_autoscaler(etype, obj)
            self._enqueue(("hpa", ns, name))
        elif rt is PDB:
            if etype == "DELETED":
                with self._cond:
                    self._pdbs.get(ns, {}).pop(name, None)
            else:
                self._index_budget(obj)
            self._enqueue(("pdb", ns, name))
        elif rt is SVC:
            self._enqueue(("svc", ns, name))
        elif rt in (SECRET, CONFIGMAP):
            with self._cond:
                waiting = list(self._waiting_config.get(ns, ()))
            for pod in waiting:
                self._enqueue(("pod", ns, pod))

    def _index_autoscaler(self, etype: str, hpa: Mapping[str, Any]) -> None:
        """Remember which Deployment an autoscaler targets, to wake it when that changes."""
        meta = hpa["metadata"]
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        with self._cond:
            scalers = self._hpas.setdefault(meta["namespace"], {})
            if etype == "DELETED" or ref.get("kind") != "Deployment":
                scalers.pop(meta["name"], None)
            else:
                scalers[meta["name"]] = str(ref.get("name", ""))

    def _index_budget(self, pdb: Mapping[str, Any]) -> None:
        """Remember a budget's parsed selector, to wake it only for the pods it selects."""
        meta = pdb["metadata"]
        selector = (pdb.get("spec") or {}).get("selector")
        try:
            reqs = None if selector is None else label_selector_requirements(selector)
        except ApiError:
            reqs = None
        with self._cond:
            self._pdbs.setdefault(meta["namespace"], {})[meta["name"]] = reqs

    def _sync(self, key: Key) -> None:
        kind, ns, name = key
        if kind == "deploy":
            self._sync_deployment(ns, name)
        elif kind == "rs":
            self._sync_replicaset(ns, name)
        elif kind == "pod":
            self._sync_pod(ns, name)
        elif kind == "svc":
            self._sync_service(ns, name)
        elif kind == "pdb":
            self._sync_disruption_budget(ns, name)
        elif kind == "hpa":
            self._sync_autoscaler(ns, name)

    def _now(self) -> datetime:
        return self._clock()

    # --- events ------------------------------------------------------------------------------

    def _event(
        self,
        involved: Mapping[str, Any],
        etype: str,
        reason: str,
        message: str,
        *,
        component: str,
        field_path: str | None = None,
    ) -> None:
        """Record a ``v1 Event`` (aggregated by object, reason and message, like the recorder)."""
        meta = involved.get("metadata") or {}
        ns = meta.get("namespace") or "default"
        now = format_time(self._now())
        key = (str(meta.get("uid")), reason, message, field_path or "")
        existing = self._events.get(key)
        if existing is not None:
            try:
                ev = self.store.get(EVENT, ns, existing)
                ev["count"] = int(ev.get("count", 1)) + 1
                ev["lastTimestamp"] = now
                ev["metadata"].pop("resourceVersion", None)
                self.store.update(EVENT, ev)
                return
            except ApiError:
                pass
        ref: Obj = {
            "kind": involved.get("kind"),
            "namespace": ns,
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "apiVersion": involved.get("apiVersion"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        if field_path:
            ref["fieldPath"] = field_path
        name = f"{meta.get('name')}.{time.time_ns() + next(self._event_seq):x}"
        event: Obj = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "source": {"component": component}
            | ({"host": NODE_NAME} if component == "kubelet" else {}),
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": etype,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": NODE_NAME if component == "kubelet" else "",
        }
        with contextlib.suppress(ApiError):
            self.store.create(EVENT, event)
            self._events[key] = name

    # --- deployment controller ----------------------------------------------------------------

    def _pods_of(self, ns: str, owner_uid: str, *, terminating: bool = False) -> list[Obj]:
        """Pods controlled by ``owner_uid``; only active ones unless ``terminating``."""
        # Read-only views of the stored pods (the store replaces objects, never mutates them).
        pods = self.store.dependents(owner_uid, POD, copy=False)
        return [
            p
            for p in pods
            if (terminating or not p["metadata"].get("deletionTimestamp"))
            and (_controller_ref(p) or {}).get("uid") == owner_uid
        ]

    def _pod_ready(self, pod: Mapping[str, Any]) -> bool:
        for c in (pod.get("status") or {}).get("conditions") or ():
            if c.get("type") == "Ready":
                return bool(c.get("status") == "True")
        return False

    def _ready_since(self, pod: Mapping[str, Any]) -> datetime | None:
        meta = pod.get("metadata") or {}
        with self._state:
            rt = self._pods.get((meta.get("namespace", ""), meta.get("name", "")))
            if rt is not None and rt.uid == meta.get("uid") and rt.ready_since is not None:
                return rt.ready_since
        for c in (pod.get("status") or {}).get("conditions") or ():
            if c.get("type") == "Ready" and c.get("status") == "True":
                return _parse_time(c.get("lastTransitionTime"))
        return None

    def _pod_available(self, pod: Mapping[str, Any], min_ready: int, now: datetime) -> bool:
        if not self._pod_ready(pod):
            return False
        if min_ready <= 0:
            return True
        since = self._ready_since(pod)
        return since is not None and since + timedelta(seconds=min_ready) <= now

    def _new_rs_object(
        self, d: Obj, template: Obj, hash_: str, revision: int, replicas: int, max_total: int
    ) -> Obj:
        meta = d["metadata"]
        spec = d["spec"]
        rs_template = clone(template)
        tmeta = rs_template.setdefault("metadata", {})
        tmeta["labels"] = dict(tmeta.get("labels") or {}, **{HASH_LABEL: hash_})
        selector = clone(spec.get("selector") or {})
        selector["matchLabels"] = dict(selector.get("matchLabels") or {}, **{HASH_LABEL: hash_})
        annotations = {
            k: v for k, v in (meta.get("annotations") or {}).items() if k not in _NOT_COPIED
        }
        annotations.update(
            {DESIRED: str(spec.get("replicas", 1)), MAX: str(max_total), REVISION: str(revision)}
        )
        rs_spec: Obj = {"replicas": replicas, "selector": selector, "template": rs_template}
        if spec.get("minReadySeconds"):
            rs_spec["minReadySeconds"] = spec["minReadySeconds"]
        return {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{meta['name']}-{hash_}",
                "namespace": meta["namespace"],
                "labels": tmeta["labels"],
                "annotations": annotations,
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": rs_spec,
        }

    def _adopt(self, rt: ResourceType, owner: Obj, selector: Mapping[str, Any] | None) -> None:
        """``ClaimReplicaSets``/``ClaimPods``: take over orphans that match the selector.

        An object without a controller reference whose labels match becomes the owner's (for
        example the ReplicaSets left behind by ``kubectl delete --cascade=orphan`` when the
        Deployment is created again).
        """
        if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
            return  # an empty selector would claim everything; the API refuses those anyway
        meta = owner["metadata"]
        with self._cond:
            if not self._orphans.get((rt.key, meta["namespace"])):
                return
        ref = {
            "apiVersion": owner.get("apiVersion", ""),
            "kind": owner.get("kind", ""),
            "name": meta["name"],
            "uid": meta["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        orphans, _ = self.store.list(
            rt, meta["namespace"], label_selector=label_selector_to_string(selector)
        )
        for obj in orphans:
            if _controller_ref(obj) is not None or obj["metadata"].get("deletionTimestamp"):
                continue
            obj["metadata"]["ownerReferences"] = [
                *(obj["metadata"].get("ownerReferences") or []),
                ref,
            ]
            with contextlib.suppress(ApiError):
                self.store.update(rt, obj)  # with its resourceVersion: a racing change wins

    def _scale_rs(self, d: Obj, rs: Obj, replicas: int, annotations: Mapping[str, str]) -> Obj:
        old = rs["spec"].get("replicas", 1)
        new = clone(rs)
        new["spec"]["replicas"] = replicas
        new["metadata"]["annotations"] = dict(new["metadata"].get("annotations") or {})
        new["metadata"]["annotations"].update(annotations)
        stored = self.store.update(RS, new)
        if old != replicas:
            direction = "up" if replicas > old else "down"
            self._event(
                d,
                "Normal",
                "ScalingReplicaSet",
                f"Scaled {direction} replica set {rs['metadata']['name']} to {replicas} from {old}",
                component="deployment-controller",
            )
        return stored

    def _sync_deployment(self, ns: str, name: str) -> None:
        try:
            d = self.store.get(DEPLOY, ns, name)
        except ApiError:
            return
        meta = d["metadata"]
        if meta.get("deletionTimestamp"):
            return
        spec = d.setdefault("spec", {})
        replicas = int(spec.get("replicas", 1))
        template = spec.get("template") or {}
        now = self._now()
        now_s = format_time(now)
        min_ready = int(spec.get("minReadySeconds") or 0)
        paused = bool(spec.get("paused"))
        strategy = spec.get("strategy") or {}
        recreate = strategy.get("type") == "Recreate"
        rolling = strategy.get("rollingUpdate") or {}
        if recreate:
            surge, unavailable = 0, 0
        else:
            surge = resolve_int_or_percent(rolling.get("maxSurge", "25%"), replicas, round_up=True)
            unavailable = resolve_int_or_percent(
                rolling.get("maxUnavailable", "25%"), replicas, round_up=False
            )
            if surge == 0 and unavailable == 0:
                unavailable = 1
            unavailable = min(unavailable, replicas)
        prev_status = d.get("status") or {}
        conditions: list[Obj] = clone(prev_status.get("conditions") or [])
        collision = int(prev_status.get("collisionCount") or 0)

        self._adopt(RS, d, spec.get("selector"))
        all_rs = [
            rs
            for rs in self.store.dependents(meta["uid"], RS)
            if (_controller_ref(rs) or {}).get("uid") == meta["uid"]
            and not rs["metadata"].get("deletionTimestamp")
        ]
        all_rs.sort(key=lambda r: (r["metadata"]["creationTimestamp"], r["metadata"]["name"]))
        stripped = _strip_hash(template)
        new_rs = next(
            (r for r in all_rs if _strip_hash(r["spec"].get("template") or {}) == stripped), None
        )
        old_rs = [r for r in all_rs if r is not new_rs]
        pods = {r["metadata"]["uid"]: self._pods_of(ns, r["metadata"]["uid"]) for r in all_rs}
        # Terminating pods still run: they count against maxSurge until they are gone.
        with_terminating = {
            r["metadata"]["uid"]: len(self._pods_of(ns, r["metadata"]["uid"], terminating=True))
            for r in all_rs
        }
        max_old_revision = max((_revision(r) for r in old_rs), default=0)
        annotations_for_rs = {DESIRED: str(replicas), MAX: str(replicas + surge)}

        def live(rs: Obj) -> int:
            return with_terminating.get(rs["metadata"]["uid"], 0)

        def spec_of(rs: Obj) -> int:
            return int(rs["spec"].get("replicas", 1))

        def available(rs: Obj) -> int:
            return sum(
                1
                for p in pods.get(rs["metadata"]["uid"], ())
                if self._pod_available(p, min_ready, now)
            )

        def total_pods() -> int:
            return sum(max(spec_of(r), live(r)) for r in all_rs)

        # isScalingEvent: an active ReplicaSet was sized for another replica count.
        scaling_event = any(
            ((r["metadata"].get("annotations") or {}).get(DESIRED) != str(replicas))
            for r in all_rs
            if spec_of(r) > 0
        )

        # --- the new ReplicaSet: find (fix up its revision) or create ---------------------
        if new_rs is not None:
            rs_ann = new_rs["metadata"].get("annotations") or {}
            wanted = {
                k: v for k, v in (meta.get("annotations") or {}).items() if k not in _NOT_COPIED
            }
            if _revision(new_rs) <= max_old_revision:
                wanted[REVISION] = str(max_old_revision + 1)
                history = [h for h in rs_ann.get(REVISION_HISTORY, "").split(",") if h]
                if rs_ann.get(REVISION):
                    history.append(rs_ann[REVISION])
                wanted[REVISION_HISTORY] = ",".join(history)
            min_ready_changed = int(new_rs["spec"].get("minReadySeconds") or 0) != min_ready
            if any(rs_ann.get(k) != v for k, v in wanted.items()) or min_ready_changed:
                fixed = clone(new_rs)
                fixed["metadata"]["annotations"] = dict(rs_ann, **wanted)
                if min_ready:
                    fixed["spec"]["minReadySeconds"] = min_ready
                else:
                    fixed["spec"].pop("minReadySeconds", None)
                new_rs = self.store.update(RS, fixed)
                all_rs = [
                    new_rs if r["metadata"]["uid"] == new_rs["metadata"]["uid"] else r
                    for r in all_rs
                ]
            if _cond(conditions, "Progressing") is None:
                _set_cond(
                    conditions,
                    "Progressing",
                    "True",
                    "FoundNewReplicaSet",
                    f'Found new replica set "{new_rs["metadata"]["name"]}"',
                    now_s,
                )
        elif (
            not paused
            and not scaling_event
            and not (recreate and (any(spec_of(r) for r in old_rs) or any(live(r) for r in old_rs)))
        ):
            if recreate:
                initial = replicas
            else:
                initial = max(0, min(replicas + surge - total_pods(), replicas))
            while True:
                hash_ = pod_template_hash(template, collision)
                candidate = self._new_rs_object(
                    d, template, hash_, max_old_revision + 1, initial, replicas + surge
                )
                try:
                    new_rs = self.store.create(RS, candidate)
                    break
                except ApiError as exc:
                    if exc.reason != "AlreadyExists":
                        raise
                    collision += 1  # a ReplicaSet of that name exists with another template
                    if collision > 100:
                        raise
            pods[new_rs["metadata"]["uid"]] = []
            all_rs.append(new_rs)
            _set_cond(
                conditions,
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                f'Created new replica set "{new_rs["metadata"]["name"]}"',
                now_s,
            )
            if initial:
                self._event(
                    d,
                    "Normal",
                    "ScalingReplicaSet",
                    f"Scaled up replica set {new_rs['metadata']['name']} to {initial} from 0",
                    component="deployment-controller",
                )

        # --- the deployment's own revision annotation --------------------------------------
        if new_rs is not None:
            revision = new_rs["metadata"]["annotations"].get(REVISION)
            d_ann = meta.get("annotations") or {}
            if revision and d_ann.get(REVISION) != revision:
                patched = clone(d)
                patched["metadata"]["annotations"] = dict(d_ann, **{REVISION: revision})
                patched.pop("status", None)
                d = self.store.update(DEPLOY, patched)
                meta = d["metadata"]

        # --- scaling ----------------------------------------------------------------------
        scaled = False
        if paused or scaling_event:
            scaled = self._scale(
                d, new_rs, old_rs, replicas, surge, recreate, annotations_for_rs, available
            )
        elif recreate:
            for r in old_rs:
                if spec_of(r) > 0:
                    self._scale_rs(d, r, 0, annotations_for_rs)
                    scaled = True
            if (
                not scaled
                and new_rs is not None
                and not any(live(r) for r in old_rs)
                and spec_of(new_rs) != replicas
            ):
                self._scale_rs(d, new_rs, replicas, annotations_for_rs)
                scaled = True
        elif new_rs is not None:
            scaled = self._rolling_step(
                d,
                new_rs,
                old_rs,
                replicas,
                surge,
                unavailable,
                annotations_for_rs,
                spec_of,
                total_pods,
                available,
            )
        # After scaling, the ReplicaSet events bring us back for the next step.
        complete = self._write_deployment_status(
            d,
            all_rs,
            pods,
            new_rs,
            replicas,
            unavailable,
            min_ready,
            now,
            conditions,
            collision,
            prev_status,
            recreate,
        )
        if complete and not paused and not scaled:
            self._cleanup_old(d, old_rs, pods)

    def _scale(
        self,
        d: Obj,
        new_rs: Obj | None,
        old_rs: list[Obj],
        replicas: int,
        surge: int,
        recreate: bool,
        annotations: Mapping[str, str],
        available: Callable[[Obj], int],
    ) -> bool:
        """The deployment controller's ``scale``: resize for a new replica count.

        With one active ReplicaSet it gets the new count; during a rolling update the
        difference is spread over the active ReplicaSets in proportion to their size
        ("proportional scaling"), the rest going to the largest one.

        Returns:
            Whether a ReplicaSet was changed.
        """

        def size(rs: Obj) -> int:
            return int(rs["spec"].get("replicas", 1))

        def needs(rs: Obj, target: int) -> bool:
            ann = rs["metadata"].get("annotations") or {}
            return size(rs) != target or any(ann.get(k) != v for k, v in annotations.items())

        everything = [*([new_rs] if new_rs is not None else []), *old_rs]
        active = [r for r in everything if size(r) > 0]
        if len(active) <= 1:
            target_rs = active[0] if active else new_rs
            if target_rs is None and old_rs:
                target_rs = max(old_rs, key=_revision)
            if target_rs is None or not needs(target_rs, replicas):
                return False
            self._scale_rs(d, target_rs, replicas, annotations)
            return True
        if recreate:
            return False
        if new_rs is not None and size(new_rs) == replicas and available(new_rs) >= replicas:
            # IsSaturated: the new ReplicaSet carries everything; the old ones go.
            changed = False
            for rs in old_rs:
                if size(rs) > 0:
                    self._scale_rs(d, rs, 0, annotations)
                    changed = True
            return changed
        allowed = replicas + surge if replicas > 0 else 0
        to_add = allowed - sum(size(r) for r in active)
        newest_first = sorted(
            active,
            key=lambda r: (r["metadata"]["creationTimestamp"], _revision(r)),
            reverse=to_add > 0,
        )
        ordered = sorted(newest_first, key=size, reverse=True)
        added = 0
        targets: dict[str, int] = {}
        for rs in ordered:
            proportion = 0
            if to_add and to_add != added:
                if replicas == 0:
                    fraction = -size(rs)
                else:
                    annotated = max(
                        int(
                            (rs["metadata"].get("annotations") or {}).get(MAX)
                            or (d.get("status") or {}).get("replicas")
                            or size(rs)
                        ),
                        1,
                    )
                    fraction = math.floor(size(rs) * (replicas + surge) / annotated + 0.5)
                    fraction -= size(rs)
                allowed_left = to_add - added
                proportion = (
                    min(fraction, allowed_left) if to_add > 0 else max(fraction, allowed_left)
                )
            targets[rs["metadata"]["uid"]] = size(rs) + proportion
            added += proportion
        if to_add and ordered:
            first = ordered[0]["metadata"]["uid"]
            targets[first] = max(targets[first] + to_add - added, 0)
        changed = False
        for rs in ordered:
            target = targets[rs["metadata"]["uid"]]
            if needs(rs, target):
                self._scale_rs(d, rs, target, annotations)
                changed = True
        return changed

    def _rolling_step(
        self,
        d: Obj,
        new_rs: Obj,
        old_rs: list[Obj],
        replicas: int,
        surge: int,
        unavailable: int,
        annotations: Mapping[str, str],
        spec_of: Callable[[Obj], int],
        total_pods: Callable[[], int],
        available: Callable[[Obj], int],
    ) -> bool:
        """One step of ``rolloutRolling``: scale the new ReplicaSet up or the old ones down.

        Counts come from the live pods, so that a ReplicaSet whose surplus pods are not
        deleted yet still counts them (never more than replicas + maxSurge pods) and only
        pods that will survive count as available (never fewer than replicas - maxUnavailable).
        """
        new_spec = spec_of(new_rs)
        if new_spec > replicas:
            self._scale_rs(d, new_rs, replicas, annotations)
            return True
        if new_spec < replicas:
            room = replicas + surge - total_pods()
            step = min(room, replicas - new_spec)
            if step > 0:
                self._scale_rs(d, new_rs, new_spec + step, annotations)
                return True
        old_active = [r for r in old_rs if spec_of(r) > 0]
        if not old_active:
            return False
        all_rs = [new_rs, *old_rs]
        min_available = replicas - unavailable
        new_unavailable = max(spec_of(new_rs) - available(new_rs), 0)
        max_scaled_down = total_pods() - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        scaled = False
        # cleanupUnhealthyReplicas: unavailable pods of old ReplicaSets go first.
        targets: dict[str, int] = {r["metadata"]["uid"]: spec_of(r) for r in old_active}
        budget = max_scaled_down
        for r in old_active:
            if budget <= 0:
                break
            unhealthy = targets[r["metadata"]["uid"]] - available(r)
            if unhealthy <= 0:
                continue
            cut = min(unhealthy, budget)
            targets[r["metadata"]["uid"]] -= cut
            budget -= cut
        # scaleDownOldReplicaSetsForRollingUpdate: only as far as availability allows.
        available_now = sum(
            min(available(r), targets.get(r["metadata"]["uid"], spec_of(r))) for r in all_rs
        )
        room = available_now - min_available
        for r in old_active:
            uid = r["metadata"]["uid"]
            if room <= 0:
                break
            if targets[uid] <= 0:
                continue
            cut = min(targets[uid], room)
            targets[uid] -= cut
            room -= cut
        for r in old_active:
            target = targets[r["metadata"]["uid"]]
            if target != spec_of(r):
                self._scale_rs(d, r, target, annotations)
                scaled = True
        return scaled

    def _write_deployment_status(
        self,
        d: Obj,
        all_rs: list[Obj],
        pods: Mapping[str, list[Obj]],
        new_rs: Obj | None,
        replicas: int,
        unavailable: int,
        min_ready: int,
        now: datetime,
        conditions: list[Obj],
        collision: int,
        prev_status: Mapping[str, Any],
        recreate: bool,
    ) -> bool:
        """Compute and write ``status`` (``calculateStatus`` + ``syncRolloutStatus``).

        Returns:
            Whether the rollout is complete.
        """
        now_s = format_time(now)
        spec = d["spec"]
        all_pods = [p for r in all_rs for p in pods.get(r["metadata"]["uid"], ())]
        new_pods = pods.get(new_rs["metadata"]["uid"], []) if new_rs is not None else []
        ready = sum(1 for p in all_pods if self._pod_ready(p))
        available = sum(1 for p in all_pods if self._pod_available(p, min_ready, now))
        total_spec = sum(int(r["spec"].get("replicas", 1)) for r in all_rs)
        status: Obj = {
            "observedGeneration": d["metadata"].get("generation", 1),
            "replicas": len(all_pods),
            "updatedReplicas": len(new_pods),
            "readyReplicas": ready,
            "availableReplicas": available,
            "unavailableReplicas": max(total_spec - available, 0),
        }
        if collision:
            status["collisionCount"] = collision
        min_available = replicas - (0 if recreate else unavailable)
        if available >= min_available:
            _set_cond(
                conditions,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                now_s,
            )
        else:
            _set_cond(
                conditions,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                now_s,
            )
        complete = (
            status["updatedReplicas"] == replicas
            and status["replicas"] == replicas
            and available == replicas
            and status["observedGeneration"] >= d["metadata"].get("generation", 1)
        )
        deadline = spec.get("progressDeadlineSeconds", 600)
        if deadline is not None and int(deadline) >= 2**31 - 1:
            deadline = None  # MaxInt32 means "no progress deadline"
        progressing = _cond(conditions, "Progressing")
        rs_name = new_rs["metadata"]["name"] if new_rs is not None else ""
        if spec.get("paused"):
            if progressing is None or progressing.get("reason") != "DeploymentPaused":
                _set_cond(
                    conditions,
                    "Progressing",
                    "Unknown",
                    "DeploymentPaused",
                    "Deployment is paused",
                    now_s,
                )
        elif progressing is not None and progressing.get("reason") == "DeploymentPaused":
            _set_cond(
                conditions,
                "Progressing",
                "Unknown",
                "DeploymentResumed",
                "Deployment is resumed",
                now_s,
            )
        elif deadline is not None and new_rs is not None:
            already_complete = (
                progressing is not None
                and progressing.get("reason") == "NewReplicaSetAvailable"
                and status["replicas"] == status["updatedReplicas"]
                and complete
            )
            if not already_complete:
                if complete:
                    _set_cond(
                        conditions,
                        "Progressing",
                        "True",
                        "NewReplicaSetAvailable",
                        f'ReplicaSet "{rs_name}" has successfully progressed.',
                        now_s,
                    )
                elif self._progressed(prev_status, status):
                    current = _cond(conditions, "Progressing")
                    new_cond = {
                        "type": "Progressing",
                        "status": "True",
                        "lastUpdateTime": now_s,
                        "lastTransitionTime": now_s,
                        "reason": "ReplicaSetUpdated",
                        "message": f'ReplicaSet "{rs_name}" is progressing.',
                    }
                    if current is not None and current.get("status") == "True":
                        new_cond["lastTransitionTime"] = current["lastTransitionTime"]
                    conditions[:] = [c for c in conditions if c.get("type") != "Progressing"]
                    conditions.append(new_cond)
                else:
                    current = _cond(conditions, "Progressing")
                    since = _parse_time((current or {}).get("lastUpdateTime"))
                    if current is not None and current.get("reason") != "ProgressDeadlineExceeded":
                        if since is not None and since + timedelta(seconds=deadline) < now:
                            _set_cond(
                                conditions,
                                "Progressing",
                                "False",
                                "ProgressDeadlineExceeded",
                                f'ReplicaSet "{rs_name}" has timed out progressing.',
                                now_s,
                            )
                        elif since is not None:
                            self._arm_deadline(d, since + timedelta(seconds=deadline), now)
        if min_ready > 0:
            self._arm_min_ready(d, all_pods, min_ready, now)
        status["conditions"] = _order_conditions(conditions)
        status = _drop_zero(status)
        if status != (d.get("status") or {}):
            out = clone(d)
            out["status"] = status
            out["metadata"].pop("resourceVersion", None)
            self.store.update(DEPLOY, out, subresource="status")
        return complete

    def _arm_deadline(self, d: Obj, when: datetime, now: datetime) -> None:
        """Re-sync a Deployment just after its progress deadline (once per deadline)."""
        key = ("deploy", d["metadata"]["namespace"], d["metadata"]["name"])
        if self._deadlines.get(key) == when:
            return
        self._deadlines[key] = when
        # lastUpdateTime has one-second precision: look a second later to be sure it passed.
        self._after((when - now).total_seconds() + 1.01, key, work=False)

    def _arm_min_ready(self, d: Obj, pods: list[Obj], min_ready: int, now: datetime) -> None:
        soonest: float | None = None
        for p in pods:
            if self._pod_ready(p) and not self._pod_available(p, min_ready, now):
                since = self._ready_since(p)
                if since is None:
                    continue
                left = (since + timedelta(seconds=min_ready) - now).total_seconds()
                soonest = left if soonest is None else min(soonest, left)
        if soonest is not None:
            key = ("deploy", d["metadata"]["namespace"], d["metadata"]["name"])
            due = time.monotonic() + soonest + 0.01
            armed = self._min_ready_due.get(key)
            if armed is not None and time.monotonic() < armed <= due:
                return  # an earlier timer will look again
            self._min_ready_due[key] = due
            self._after(soonest + 0.01, key)

    @staticmethod
    def _progressed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        """``DeploymentProgressing``: more updated/ready/available pods or fewer old ones."""

        def n(s: Mapping[str, Any], k: str) -> int:
            return int(s.get(k) or 0)

        old_old = n(old, "replicas") - n(old, "updatedReplicas")
        new_old = n(new, "replicas") - n(new, "updatedReplicas")
        return (
            n(new, "updatedReplicas") > n(old, "updatedReplicas")
            or new_old < old_old
            or n(new, "readyReplicas") > n(old, "readyReplicas")
            or n(new, "availableReplicas") > n(old, "availableReplicas")
        )

    def _cleanup_old(self, d: Obj, old_rs: list[Obj], pods: Mapping[str, list[Obj]]) -> None:
        limit = d["spec"].get("revisionHistoryLimit", 10)
        if limit is None:
            return
        idle = [
            r
            for r in old_rs
            if int(r["spec"].get("replicas", 1)) == 0
            and not pods.get(r["metadata"]["uid"])
            and not int((r.get("status") or {}).get("replicas") or 0)
        ]
        idle.sort(key=_revision)
        for r in idle[: max(len(idle) - int(limit), 0)]:
            with contextlib.suppress(ApiError):
                self.store.delete(
                    RS,
                    r["metadata"]["namespace"],
                    r["metadata"]["name"],
                    preconditions={"uid": r["metadata"]["uid"]},
                )

    # --- replica-set controller ---------------------------------------------------------------

    def _sync_replicaset(self, ns: str, name: str) -> None:
        try:
            rs = self.store.get(RS, ns, name)
        except ApiError:
            return
        meta = rs["metadata"]
        if self.store.owners_gone(rs):
            # Created after its Deployment was deleted: the garbage collector removes it.
            with contextlib.suppress(ApiError):
                self.store.delete(RS, ns, name, preconditions={"uid": meta["uid"]})
            return
        spec = rs.get("spec") or {}
        want = int(spec.get("replicas", 1))
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = self._now()
        if not meta.get("deletionTimestamp"):
            self._adopt(POD, rs, spec.get("selector"))
        pods = self._pods_of(ns, meta["uid"])
        if not meta.get("deletionTimestamp"):
            if len(pods) < want:
                for _ in range(want - len(pods)):
                    pods.append(self._create_pod(rs))
            elif len(pods) > want:
                doomed = sorted(pods, key=lambda p: self._deletion_rank(p, min_ready, now))
                for pod in doomed[: len(pods) - want]:
                    with contextlib.suppress(ApiError):
                        grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
                        self.store.delete(
                            POD,
                            ns,
                            pod["metadata"]["name"],
                            preconditions={"uid": pod["metadata"]["uid"]},
                            grace_period_seconds=30 if grace is None else int(grace),
                        )
                        self._event(
                            rs,
                            "Normal",
                            "SuccessfulDelete",
                            f"Deleted pod: {pod['metadata']['name']}",
                            component="replicaset-controller",
                        )
                    pods.remove(pod)
        labels_sel = spec.get("selector")
        status = {
            "replicas": len(pods),
            "fullyLabeledReplicas": sum(
                1 for p in pods if match_label_selector(labels_sel, p["metadata"].get("labels"))
            ),
            "readyReplicas": sum(1 for p in pods if self._pod_ready(p)),
            "availableReplicas": sum(1 for p in pods if self._pod_available(p, min_ready, now)),
            "observedGeneration": meta.get("generation", 1),
        }
        status = _drop_zero(status, keep=("replicas",))
        if status != (rs.get("status") or {}):
            rs["status"] = status
            meta.pop("resourceVersion", None)
            with contextlib.suppress(ApiError):
                self.store.update(RS, rs, subresource="status")
        owner = _controller_ref(rs)
        if owner and owner.get("kind") == "Deployment":
            self._enqueue(("deploy", ns, str(owner.get("name"))))

    def _deletion_rank(
        self, pod: Mapping[str, Any], min_ready: int, now: datetime
    ) -> tuple[int, int, float]:
        """Pods to delete first: not running, not ready, not available, then the newest."""
        phase = (pod.get("status") or {}).get("phase")
        ready = self._pod_ready(pod)
        avail = self._pod_available(pod, min_ready, now)
        rank = 0 if phase != "Running" else 1 if not ready else 2 if not avail else 3
        since = self._ready_since(pod)
        created = _parse_time((pod.get("metadata") or {}).get("creationTimestamp"))
        stamp = (since or created or now).timestamp()
        restarts = sum(
            int(c.get("restartCount") or 0)
            for c in (pod.get("status") or {}).get("containerStatuses") or ()
        )
        return (rank, -restarts, -stamp)

    def _create_pod(self, rs: Obj) -> Obj:
        meta = rs["metadata"]
        template = clone((rs.get("spec") or {}).get("template") or {})
        tmeta = template.get("metadata") or {}
        pod_spec = template.get("spec") or {}
        pod: Obj = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{meta['name']}-{random_suffix()}",
                "namespace": meta["namespace"],
                "labels": dict(tmeta.get("labels") or {}),
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "ReplicaSet",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": pod_spec,
            "status": {"phase": "Pending", "qosClass": _qos_class(pod_spec)},
        }
        if tmeta.get("annotations"):
            pod["metadata"]["annotations"] = dict(tmeta["annotations"])
        if not pod_spec.get("nodeName"):
            pod_spec["nodeName"] = NODE_NAME  # the scheduler binds at once
        for _ in range(5):
            try:
                created = self.store.create(POD, pod)
                break
            except ApiError as exc:
                if exc.reason != "AlreadyExists":
                    raise
                pod["metadata"]["name"] = f"{meta['name']}-{random_suffix()}"
        else:  # pragma: no cover - 27**5 names
            raise ApiError.internal("could not generate a unique pod name")
        self._event(
            rs,
            "Normal",
            "SuccessfulCreate",
            f"Created pod: {created['metadata']['name']}",
            component="replicaset-controller",
        )
        self._event(
            created,
            "Normal",
            "Scheduled",
            f"Successfully assigned {meta['namespace']}/{created['metadata']['name']} "
            f"to {NODE_NAME}",
            component="default-scheduler",
        )
        return created

    # --- kubelet ---------------------------------------------------------------------------

    def _behaviour_for(self, pod: Mapping[str, Any]) -> PodBehaviour:
        with self._state:
            for rule in reversed(self._rules):
                if rule.matches(pod):
                    return rule.behaviour
        return PodBehaviour()

    def _runtime(self, pod: Obj) -> _PodRuntime:
        meta = pod["metadata"]
        key = (meta["namespace"], meta["name"])
        with self._state:
            rt = self._pods.get(key)
            if rt is not None and rt.uid == meta["uid"]:
                return rt
        n = next(self._ip_seq)
        containers = [
            _Container(name=c.get("name", ""), image=c.get("image", ""))
            for c in (pod.get("spec") or {}).get("containers") or ()
        ]
        rt = _PodRuntime(
            uid=meta["uid"],
            behaviour=self._behaviour_for(pod),
            pod_ip=f"10.244.{n // 250}.{n % 250 + 2}",
            containers=containers,
        )
        with self._state:
            self._pods[key] = rt
        return rt

    def _sync_pod(self, ns: str, name: str) -> None:
        try:
            pod = self.store.get(POD, ns, name)
        except ApiError:
            with self._state:
                self._pods.pop((ns, name), None)
            with self._cond:
                self._waiting_config.get(ns, set()).discard(name)
            return
        if self.store.owners_gone(pod):
            with contextlib.suppress(ApiError):
                self.store.delete(POD, ns, name, preconditions={"uid": pod["metadata"]["uid"]})
            return
        rt = self._runtime(pod)
        now_mono = time.monotonic()
        if pod["metadata"].get("deletionTimestamp"):
            self._terminate(pod, rt, now_mono)
            return
        if rt.due > now_mono and rt.stage != "config_error":
            return  # a timer is armed for then (a missing Secret/ConfigMap is retried at once)
        spec = pod.get("spec") or {}
        if not spec.get("nodeName"):
            bound = clone(pod)
            bound["spec"]["nodeName"] = NODE_NAME
            bound.pop("status", None)
            bound["metadata"].pop("resourceVersion", None)
            pod = self.store.update(POD, bound)
            self._event(
                pod,
                "Normal",
                "Scheduled",
                f"Successfully assigned {ns}/{name} to {NODE_NAME}",
                component="default-scheduler",
            )
        now = self._now()
        if rt.start_time is None:
            rt.start_time = now
        stage = rt.stage
        if stage in ("new", "config_error"):
            self._try_start(pod, rt, now)
        elif stage == "pull_error":
            for c in rt.containers:
                c.waiting = ("ImagePullBackOff", f'Back-off pulling image "{c.image}"')
                self._event(
                    pod,
                    "Normal",
                    "BackOff",
                    f'Back-off pulling image "{c.image}"',
                    component="kubelet",
                    field_path=f"spec.containers{{{c.name}}}",
                )
                self._event(
                    pod,
                    "Warning",
                    "Failed",
                    "Error: ImagePullBackOff",
                    component="kubelet",
                    field_path=f"spec.containers{{{c.name}}}",
                )
            rt.stage = "pull_backoff"
        elif stage == "starting":
            if rt.behaviour.crash_loop:
                self._crash(pod, rt, now)
            elif rt.behaviour.never_ready:
                rt.stage = "unready"
                self._probe_fails(pod, rt)
            else:
                rt.ready = True
                rt.ready_since = now
                rt.stage = "ready"
        elif stage == "crashed":
            self._start_containers(pod, rt, now)
        elif stage == "unready":
            self._probe_fails(pod, rt)
        self._write_pod_status(pod, rt, now)

    def _probe_fails(self, pod: Obj, rt: _PodRuntime) -> None:
        """A failed readiness probe: an ``Unhealthy`` event now and every probe period."""
        container = ((pod.get("spec") or {}).get("containers") or [{}])[0]
        period = float((container.get("readinessProbe") or {}).get("periodSeconds") or 10)
        self._event(
            pod,
            "Warning",
            "Unhealthy",
            "Readiness probe failed: HTTP probe failed with statuscode: 503",
            component="kubelet",
            field_path=f"spec.containers{{{container.get('name', '')}}}",
        )
        rt.due = time.monotonic() + period
        meta = pod["metadata"]
        self._after(period, ("pod", meta["namespace"], meta["name"]), work=False)

    def _terminate(self, pod: Obj, rt: _PodRuntime, now_mono: float) -> None:
        """Graceful termination: the pod turns not-ready at once, then goes after a short while.

        The real kubelet waits for the containers to exit (at most the grace period); the
        emulated containers exit after ``ready_delay``.
        """
        meta = pod["metadata"]
        grace = meta.get("deletionGracePeriodSeconds")
        if not grace:
            return  # held by finalizers, or already on its way out
        key = ("pod", meta["namespace"], meta["name"])
        if rt.stage != "terminating":
            rt.stage = "terminating"
            rt.ready = False
            delay = min(self.ready_delay, float(grace))
            rt.due = now_mono + delay
            for c in rt.containers:
                if c.started_at is not None and c.waiting is None:
                    self._event(
                        pod,
                        "Normal",
                        "Killing",
                        f"Stopping container {c.name}",
                        component="kubelet",
                        field_path=f"spec.containers{{{c.name}}}",
                    )
            self._write_pod_status(pod, rt, self._now())
            self._after(delay, key)
            return
        if rt.due > now_mono:
            return
        with contextlib.suppress(ApiError):
            self.store.delete(
                POD,
                meta["namespace"],
                meta["name"],
                preconditions={"uid": meta["uid"]},
                grace_period_seconds=0,
            )

    def _try_start(self, pod: Obj, rt: _PodRuntime, now: datetime) -> None:
        meta = pod["metadata"]
        ns = meta["namespace"]
        bad = [c for c in rt.containers if not _IMAGE_REF.match(c.image)]
        if bad:
            for c in bad:
                message = (
                    f'Failed to apply default image tag "{c.image}": couldn\'t parse image name '
                    f'"{c.image}": invalid reference format'
                )
                c.waiting = ("InvalidImageName", message)
                self._event(
                    pod,
                    "Warning",
                    "InspectFailed",
                    message,
                    component="kubelet",
                    field_path=f"spec.containers{{{c.name}}}",
                )
                self._event(
                    pod,
                    "Warning",
                    "Failed",
                    "Error: InvalidImageName",
                    component="kubelet",
                    field_path=f"spec.containers{{{c.name}}}",
                )
            rt.stage = "invalid_image"
            return
        if rt.behaviour.image_pull_error:
            for c in rt.containers:
                self._event(
                    pod,
                    "Normal",
                    "Pulling",
                    f'Pulling image "{c.image}"',
                    component="kubelet",
                    field_path=f"spec.containers{{{c.name}}}",
                )
                message = (
                    f'Failed to pull image "{c.image}": rpc error: code = NotFound desc = '
                    f'failed to pull and unpack image "{c.image}": not found'
                )
                self._event(
                    pod,
                    "Warning",
                    "Failed",
                    message,
                    component="kubelet",
                    field_path=f"spec.containers{{{c.name}}}",
                )
                self._event(
                    pod,
                    "Warning",
                    "Failed",
                    "Error: ErrImagePull",
                    component="kubelet",
                    field_path=f"spec.containers{{{c.name}}}",
                )
                c.waiting = ("ErrImagePull", message)
            rt.stage = "pull_error"
            rt.due = time.monotonic() + max(self.ready_delay, 0.05)
            self._after(rt.due - time.monotonic(), ("pod", ns, meta["name"]), work=False)
            return
        problem = self._volume_problem(pod)
        if problem is not None:
            volume, message = problem
            for c in rt.containers:
                c.waiting = ("ContainerCreating", "")
            self._event(
                pod,
                "Warning",
                "FailedMount",
                f'MountVolume.SetUp failed for volume "{volume}" : {message}',
                component="kubelet",
            )
            self._wait_config(rt, ns, meta["name"])
            return
        envs: list[dict[str, str]] = []
        spec_containers = (pod.get("spec") or {}).get("containers") or []
        for c_spec, c in zip(spec_containers, rt.containers, strict=False):
            try:
                envs.append(self._resolve_env(pod, c_spec))
            except _ConfigError as exc:
                c.waiting = ("CreateContainerConfigError", str(exc))
                self._event(
                    pod,
                    "Warning",
                    "Failed",
                    f"Error: {exc}",
                    component="kubelet",
                    field_path=f"spec.containers{{{c.name}}}",
                )
                self._wait_config(rt, ns, meta["name"])
                return
        with self._cond:
            self._waiting_config.get(ns, set()).discard(meta["name"])
        for c, env in zip(rt.containers, envs, strict=False):
            c.env = env
            self._event(
                pod,
                "Normal",
                "Pulled",
                f'Container image "{c.image}" already present on machine',
                component="kubelet",
                field_path=f"spec.containers{{{c.name}}}",
            )
        self._start_containers(pod, rt, now)

    def _wait_config(self, rt: _PodRuntime, ns: str, name: str) -> None:
        rt.stage = "config_error"
        with self._cond:
            self._waiting_config.setdefault(ns, set()).add(name)
        # The kubelet also retries on its own, with back-off.
        rt.due = time.monotonic() + rt.backoff
        self._after(rt.backoff, ("pod", ns, name), work=False)
        rt.backoff = min(rt.backoff * 2, 10.0)

    def _start_containers(self, pod: Obj, rt: _PodRuntime, now: datetime) -> None:
        ns = pod["metadata"]["namespace"]
        name = pod["metadata"]["name"]
        spec_containers = (pod.get("spec") or {}).get("containers") or []
        for c_spec, c in zip(spec_containers, rt.containers, strict=False):
            if rt.stage == "crashed":
                with contextlib.suppress(_ConfigError):
                    c.env = self._resolve_env(pod, c_spec)
            c.waiting = None
            c.started_at = now
            c.container_id = (
                "containerd://"
                + hashlib.sha256(f"{rt.uid}/{c.name}/{c.restarts}".encode()).hexdigest()
            )
            c.logs = [(now, f"{c.name} started (image {c.image})")]
            c.logs.extend((now, line) for line in rt.behaviour.log_lines)
            self._event(
                pod,
                "Normal",
                "Created",
                f"Created container: {c.name}",
                component="kubelet",
                field_path=f"spec.containers{{{c.name}}}",
            )
            self._event(
                pod,
                "Normal",
                "Started",
                f"Started container {c.name}",
                component="kubelet",
                field_path=f"spec.containers{{{c.name}}}",
            )
        rt.stage = "starting"
        b = rt.behaviour
        if b.crash_loop:
            delay = min(self.ready_delay, 0.05)
        elif b.never_ready:
            delay = b.ready_after if b.ready_after is not None else self.ready_delay
        else:
            delay = b.ready_after if b.ready_after is not None else self.ready_delay
        rt.due = time.monotonic() + delay
        self._after(delay, ("pod", ns, name), work=not (b.crash_loop or b.never_ready))

    def _crash(self, pod: Obj, rt: _PodRuntime, now: datetime) -> None:
        ns = pod["metadata"]["namespace"]
        name = pod["metadata"]["name"]
        for c in rt.containers:
            c.finished_at = now
            c.last_started_at = c.started_at
            c.previous = list(c.logs)
            c.restarts += 1
            c.waiting = (
                "CrashLoopBackOff",
                f"back-off {int(rt.backoff * 50)}s restarting failed container={c.name} "
                f"pod={name}_{ns}({rt.uid})",
            )
            self._event(
                pod,
                "Warning",
                "BackOff",
                f"Back-off restarting failed container {c.name} in pod {name}_{ns}({rt.uid})",
                component="kubelet",
                field_path=f"spec.containers{{{c.name}}}",
            )
        rt.ready = False
        rt.ready_since = None
        rt.stage = "crashed"
        rt.due = time.monotonic() + rt.backoff
        self._after(rt.backoff, ("pod", ns, name), work=False)
        rt.backoff = min(rt.backoff * 2, 5.0)

    def _write_pod_status(self, pod: Obj, rt: _PodRuntime, now: datetime) -> None:
        old = pod.get("status") or {}
        now_s = format_time(now)
        running = rt.stage in ("starting", "ready", "unready", "terminating")
        started_any = any(c.started_at is not None for c in rt.containers)
        phase = "Running" if started_any else "Pending"
        statuses = []
        for c in rt.containers:
            state: Obj
            if c.waiting is not None:
                state = {"waiting": {"reason": c.waiting[0]}}
                if c.waiting[1]:
                    state["waiting"]["message"] = c.waiting[1]
            else:
                state = {"running": {"startedAt": format_time(c.started_at or now)}}
            last: Obj = {}
            if c.restarts and c.finished_at is not None:
                last = {
                    "terminated": {
                        "exitCode": 1,
                        "reason": "Error",
                        "startedAt": format_time(c.last_started_at or c.started_at or now),
                        "finishedAt": format_time(c.finished_at),
                        "containerID": c.container_id,
                    }
                }
            entry: Obj = {
                "name": c.name,
                "state": state,
                "lastState": last,
                "ready": bool(rt.ready and c.waiting is None),
                "restartCount": c.restarts,
                "image": c.image,
                "imageID": _image_id(c.image),
                "started": bool(running and c.waiting is None),
            }
            if c.container_id and c.waiting is None:
                entry["containerID"] = c.container_id
            statuses.append(entry)
        unready = [c.name for c in rt.containers if not (rt.ready and c.waiting is None)]
        prev = {c.get("type"): c for c in old.get("conditions") or ()}

        def cond(ctype: str, ok: bool, reason: str = "", message: str = "") -> Obj:
            status = "True" if ok else "False"
            before = prev.get(ctype)
            out: Obj = {
                "type": ctype,
                "status": status,
                "lastProbeTime": None,
                "lastTransitionTime": before["lastTransitionTime"]
                if before and before.get("status") == status
                else now_s,
            }
            if not ok and reason:
                out["reason"] = reason
                out["message"] = message
            return out

        not_ready_msg = f"containers with unready status: [{' '.join(unready)}]"
        conditions = [
            cond("PodReadyToStartContainers", True),
            cond("Initialized", True),
            cond("Ready", not unready, "ContainersNotReady", not_ready_msg),
            cond("ContainersReady", not unready, "ContainersNotReady", not_ready_msg),
            cond("PodScheduled", True),
        ]
        spec = pod.get("spec") or {}
        status: Obj = {
            "phase": phase,
            "conditions": conditions,
            "hostIP": HOST_IP,
            "hostIPs": [{"ip": HOST_IP}],
            "podIP": rt.pod_ip,
            "podIPs": [{"ip": rt.pod_ip}],
            "startTime": format_time(rt.start_time or now),
            "containerStatuses": statuses,
            "qosClass": old.get("qosClass") or _qos_class(spec),
        }
        if spec.get("initContainers"):
            status["initContainerStatuses"] = [
                {
                    "name": ic.get("name", ""),
                    "image": ic.get("image", ""),
                    "imageID": _image_id(ic.get("image", "")),
                    "ready": True,
                    "restartCount": 0,
                    "started": False,
                    "state": {
                        "terminated": {
                            "exitCode": 0,
                            "reason": "Completed",
                            "startedAt": format_time(rt.start_time or now),
                            "finishedAt": format_time(rt.start_time or now),
                        }
                    },
                }
                for ic in spec["initContainers"]
            ]
        if status != old:
            out = clone(pod)
            out["status"] = status
            out["metadata"].pop("resourceVersion", None)
            self.store.update(POD, out, subresource="status")

    def _volume_problem(self, pod: Mapping[str, Any]) -> tuple[str, str] | None:
        ns = pod["metadata"]["namespace"]
        for vol in (pod.get("spec") or {}).get("volumes") or ():
            if "secret" in vol:
                src = vol["secret"] or {}
                if not src.get("optional") and not self.store.exists(
                    SECRET, ns, src.get("secretName", "")
                ):
                    return vol.get("name", ""), f'secret "{src.get("secretName")}" not found'
            if "configMap" in vol:
                src = vol["configMap"] or {}
                if not src.get("optional") and not self.store.exists(
                    CONFIGMAP, ns, src.get("name", "")
                ):
                    return vol.get("name", ""), f'configmap "{src.get("name")}" not found'
        return None

    def _source(self, pod: Mapping[str, Any], kind: str, name: str) -> Obj | None:
        rt = SECRET if kind == "Secret" else CONFIGMAP
        try:
            return self.store.get(rt, pod["metadata"]["namespace"], name)
        except ApiError:
            return None

    @staticmethod
    def _source_data(obj: Mapping[str, Any], kind: str) -> dict[str, str]:
        if kind == "Secret":
            out: dict[str, str] = {}
            for k, v in (obj.get("data") or {}).items():
                try:
                    out[k] = base64.b64decode(v).decode("utf-8", "replace")
                except (ValueError, TypeError):
                    out[k] = ""
            for k, v in (obj.get("stringData") or {}).items():
                out[k] = str(v)
            return out
        data = {k: str(v) for k, v in (obj.get("data") or {}).items()}
        for k, v in (obj.get("binaryData") or {}).items():
            data.setdefault(k, base64.b64decode(v).decode("utf-8", "replace"))
        return data

    def _resolve_env(self, pod: Mapping[str, Any], container: Mapping[str, Any]) -> dict[str, str]:
        """The container's environment as the kubelet builds it (envFrom, then env)."""
        ns = pod["metadata"]["namespace"]
        env: dict[str, str] = {}
        for src in container.get("envFrom") or ():
            prefix = src.get("prefix", "")
            for kind, ref_key in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
                ref = src.get(ref_key)
                if ref is None:
                    continue
                obj = self._source(pod, kind, ref.get("name", ""))
                if obj is None:
                    if ref.get("optional"):
                        continue
                    raise _ConfigError(f'{kind.lower()} "{ref.get("name")}" not found')
                for k, v in self._source_data(obj, kind).items():
                    env[prefix + k] = v
        for var in container.get("env") or ():
            name = var.get("name", "")
            if "valueFrom" not in var:
                env[name] = _expand(str(var.get("value", "")), env)
                continue
            vf = var["valueFrom"] or {}
            for kind, ref_key in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                ref = vf.get(ref_key)
                if ref is None:
                    continue
                obj = self._source(pod, kind, ref.get("name", ""))
                if obj is None:
                    if ref.get("optional"):
                        break
                    raise _ConfigError(f'{kind.lower()} "{ref.get("name")}" not found')
                data = self._source_data(obj, kind)
                if ref.get("key") not in data:
                    if ref.get("optional"):
                        break
                    raise _ConfigError(
                        f"couldn't find key {ref.get('key')} in {kind} {ns}/{ref.get('name')}"
                    )
                env[name] = data[ref["key"]]
            if "fieldRef" in vf:
                env[name] = _field_ref(pod, str((vf["fieldRef"] or {}).get("fieldPath", "")))
            if "resourceFieldRef" in vf:
                ref = vf["resourceFieldRef"] or {}
                resource = str(ref.get("resource", ""))
                section, _, res = resource.partition(".")
                value = ((container.get("resources") or {}).get(section) or {}).get(res)
                env[name] = str(value) if value is not None else "0"
        return env

    # --- disruption controller -------------------------------------------------------------

    def _expected_scale(self, pods: list[Obj]) -> int:
        """``getExpectedScale``: the replicas of the controllers of the selected pods."""
        total = 0
        seen: set[str] = set()
        for pod in pods:
            ref = _controller_ref(pod)
            if ref is None or ref.get("kind") != "ReplicaSet" or ref.get("uid") in seen:
                continue
            seen.add(str(ref.get("uid")))
            ns = pod["metadata"]["namespace"]
            try:
                rs = self.store.get(RS, ns, str(ref.get("name")))
            except ApiError:
                continue
            owner = _controller_ref(rs)
            if owner is not None and owner.get("kind") == "Deployment":
                if owner.get("uid") in seen:
                    continue
                seen.add(str(owner.get("uid")))
                try:
                    d = self.store.get(DEPLOY, ns, str(owner.get("name")))
                    total += int(d["spec"].get("replicas", 1))
                    continue
                except ApiError:
                    pass
            total += int(rs["spec"].get("replicas", 1))
        return total

    def _sync_disruption_budget(self, ns: str, name: str) -> None:
        """The disruption controller: a PodDisruptionBudget's status from the pods it selects."""
        try:
            pdb = self.store.get(PDB, ns, name)
        except ApiError:
            return
        spec = pdb.get("spec") or {}
        selector = spec.get("selector")
        if selector is None:
            pods: list[Obj] = []
        else:
            pods = self.store.list(POD, ns, label_selector=label_selector_to_string(selector))[0]
        healthy = sum(
            1 for p in pods if self._pod_ready(p) and not p["metadata"].get("deletionTimestamp")
        )
        if spec.get("maxUnavailable") is not None:
            expected = self._expected_scale(pods)
            unavailable = resolve_int_or_percent(spec["maxUnavailable"], expected, round_up=True)
            desired = max(expected - unavailable, 0)
        elif isinstance(spec.get("minAvailable"), int):
            expected = len(pods)
            desired = int(spec["minAvailable"])
        elif spec.get("minAvailable") is not None:
            expected = self._expected_scale(pods)
            desired = resolve_int_or_percent(spec["minAvailable"], expected, round_up=True)
        else:
            expected, desired = len(pods), 0
        allowed = max(healthy - desired, 0) if expected > 0 else 0
        now = format_time(self._now())
        old = pdb.get("status") or {}
        old_cond: Mapping[str, Any] = next(
            (c for c in old.get("conditions") or () if c.get("type") == "DisruptionAllowed"), {}
        )
        cond_status = "True" if allowed > 0 else "False"
        status = {
            "observedGeneration": pdb["metadata"].get("generation", 1),
            "disruptionsAllowed": allowed,
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "expectedPods": expected,
            "conditions": [
                {
                    "type": "DisruptionAllowed",
                    "status": cond_status,
                    "reason": "SufficientPods" if allowed > 0 else "InsufficientPods",
                    "message": "",
                    "observedGeneration": pdb["metadata"].get("generation", 1),
                    "lastTransitionTime": old_cond.get("lastTransitionTime", now)
                    if old_cond.get("status") == cond_status
                    else now,
                }
            ],
        }
        if status != old:
            pdb["status"] = status
            pdb["metadata"].pop("resourceVersion", None)
            self.store.update(PDB, pdb, subresource="status")

    # --- horizontal pod autoscaler ---------------------------------------------------------

    def _sync_autoscaler(self, ns: str, name: str) -> None:
        """The HPA controller of a cluster without a metrics API.

        It keeps the target's replicas within ``minReplicas``..``maxReplicas`` (that needs no
        metrics) and otherwise reports that it cannot get metrics, as a real cluster without
        metrics-server does; it never scales on load.
        """
        try:
            hpa = self.store.get(HPA, ns, name)
        except ApiError:
            return
        spec = hpa.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        now = format_time(self._now())
        old = hpa.get("status") or {}
        conditions: list[Obj] = clone(old.get("conditions") or [])

        def setc(ctype: str, status: str, reason: str, message: str) -> None:
            current = _cond(conditions, ctype)
            new = {
                "type": ctype,
                "status": status,
                "lastTransitionTime": now,
                "reason": reason,
                "message": message,
            }
            if current is not None and current.get("status") == status:
                new["lastTransitionTime"] = current["lastTransitionTime"]
            conditions[:] = [c for c in conditions if c.get("type") != ctype] + [new]

        min_r = int(spec.get("minReplicas", 1))
        max_r = int(spec.get("maxReplicas", 1))
        status: Obj = {"currentReplicas": 0, "desiredReplicas": 0}
        if old.get("lastScaleTime"):
            status["lastScaleTime"] = old["lastScaleTime"]
        target: Obj | None = None
        if ref.get("kind") == "Deployment":
            with contextlib.suppress(ApiError):
                target = self.store.get(DEPLOY, ns, str(ref.get("name", "")))
        if target is None:
            setc(
                "AbleToScale",
                "False",
                "FailedGetScale",
                f"the HPA controller was unable to get the target's current scale: "
                f'{str(ref.get("kind", "")).lower()}s.apps "{ref.get("name")}" not found',
            )
        else:
            current = int(target["spec"].get("replicas", 1))
            status["currentReplicas"] = int((target.get("status") or {}).get("replicas") or 0)
            desired = current
            reason = ""
            if current == 0 and min_r != 0:
                setc(
                    "ScalingActive",
                    "False",
                    "ScalingDisabled",
                    "scaling is disabled since the replica count of the target is zero",
                )
            elif current > max_r:
                desired, reason = max_r, "Current number of replicas above Spec.MaxReplicas"
            elif current < min_r:
                desired, reason = min_r, "Current number of replicas below Spec.MinReplicas"
            else:
                setc(
                    "ScalingActive",
                    "False",
                    "FailedGetResourceMetric",
                    "the HPA was unable to compute the replica count: failed to get metrics: "
                    "no metrics API is served by this cluster",
                )
            status["desiredReplicas"] = desired
            if desired != current:
                target["spec"]["replicas"] = desired
                target.pop("status", None)
                self.store.update(DEPLOY, target)
                status["lastScaleTime"] = now
                setc(
                    "AbleToScale",
                    "True",
                    "SucceededRescale",
                    f"the HPA controller was able to update the target scale to {desired}",
                )
                self._event(
                    hpa,
                    "Normal",
                    "SuccessfulRescale",
                    f"New size: {desired}; reason: {reason}",
                    component="horizontal-pod-autoscaler",
                )
            elif (
                _cond(conditions, "AbleToScale") is None
                or (_cond(conditions, "AbleToScale") or {}).get("status") != "True"
            ):
                setc(
                    "AbleToScale",
                    "True",
                    "SucceededGetScale",
                    "the HPA controller was able to get the target's current scale",
                )
            if current != 0 or min_r == 0:
                if current > max_r:
                    setc(
                        "ScalingLimited",
                        "True",
                        "TooManyReplicas",
                        "the desired replica count is more than the maximum replica count",
                    )
                elif current < min_r:
                    setc(
                        "ScalingLimited",
                        "True",
                        "TooFewReplicas",
                        "the desired replica count is less than the minimum replica count",
                    )
                else:
                    setc(
                        "ScalingLimited",
                        "False",
                        "DesiredWithinRange",
                        "the desired count is within the acceptable range",
                    )
        order = {"AbleToScale": 0, "ScalingActive": 1, "ScalingLimited": 2}
        status["conditions"] = sorted(conditions, key=lambda c: order.get(str(c["type"]), 9))
        if hpa["metadata"].get("generation"):
            status["observedGeneration"] = hpa["metadata"]["generation"]
        if status != old:
            hpa["status"] = status
            hpa["metadata"].pop("resourceVersion", None)
            self.store.update(HPA, hpa, subresource="status")

    # --- services ------------------------------------------------------------------------------

    def _sync_service(self, ns: str, name: str) -> None:
        try:
            svc = self.store.get(SVC, ns, name)
        except ApiError:
            return
        uid = svc["metadata"]["uid"]
        is_lb = (svc.get("spec") or {}).get("type") == "LoadBalancer"
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress")
        if not is_lb:
            if ingress:
                svc["status"] = dict(svc.get("status") or {}, loadBalancer={})
                svc["metadata"].pop("resourceVersion", None)
                self.store.update(SVC, svc, subresource="status")
            self._lb_due.pop(uid, None)
            return
        if ingress or not self.assign_load_balancer:
            return
        now_mono = time.monotonic()
        due = self._lb_due.get(uid)
        if due is None:
            self._event(
                svc,
                "Normal",
                "EnsuringLoadBalancer",
                "Ensuring load balancer",
                component="service-controller",
            )
            due = now_mono + self.ready_delay
            self._lb_due[uid] = due
        if due > now_mono:
            self._after(due - now_mono, ("svc", ns, name))
            return
        ip = self._lb_ips.get(uid)
        if ip is None:
            n = next(self._lb_seq)
            ip = f"127.0.{(n // 254) % 256}.{n % 254 + 1}"
            self._lb_ips[uid] = ip
        svc["status"] = dict(
            svc.get("status") or {}, loadBalancer={"ingress": [{"ip": ip, "ipMode": "VIP"}]}
        )
        svc["metadata"].pop("resourceVersion", None)
        self.store.update(SVC, svc, subresource="status")
        self._event(
            svc,
            "Normal",
            "EnsuredLoadBalancer",
            "Ensured load balancer",
            component="service-controller",
        )

    # --- reading what the kubelet knows --------------------------------------------------------

    def _pod_and_container(
        self, namespace: str, name: str, container: str | None
    ) -> tuple[_PodRuntime, _Container]:
        pod = self.store.get(POD, namespace, name)
        names = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or ()]
        if container is None:
            if len(names) != 1:
                raise ApiError.bad_request(
                    f"a container name must be specified for pod {name}, "
                    f"choose one of: [{' '.join(names)}]"
                )
            container = names[0]
        if container not in names:
            raise ApiError.bad_request(f"container {container} is not valid for pod {name}")
        with self._state:
            rt = self._pods.get((namespace, name))
        if rt is None or rt.uid != pod["metadata"]["uid"]:
            raise ApiError.bad_request(
                f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating'
            )
        c = next(c for c in rt.containers if c.name == container)
        return rt, c

    def pod_log(
        self,
        namespace: str,
        name: str,
        *,
        container: str | None = None,
        tail_lines: int | None = None,
        since_seconds: int | None = None,
        previous: bool = False,
        timestamps: bool = False,
    ) -> str:
        """A container's log, as ``GET /api/v1/namespaces/{ns}/pods/{name}/log`` returns it.

        Args:
            namespace: The pod's namespace.
            name: The pod's name.
            container: The container; required when the pod has more than one.
            tail_lines: Only the last N lines.
            since_seconds: Only lines written in the last N seconds.
            previous: The log of the previous (terminated) instance of the container.
            timestamps: Prefix every line with its RFC 3339 timestamp.

        Returns:
            The lines, each ending with a newline.

        Raises:
            ApiError: 404 if the pod does not exist; 400 if the container is ambiguous,
                unknown, not started yet, or has no previous instance.

        >>> from apim_selfhosted.testing.kube.store import Store
        >>> store = Store()
        >>> with Controllers(store, ready_delay=0.01) as ctl:
        ...     ctl.script(image="example/gw", behaviour=PodBehaviour(log_lines=("401",)))
        ...     _ = store.create(POD, {"metadata": {"name": "p", "namespace": "default"},
        ...                            "spec": {"containers": [{"name": "gw",
        ...                                                     "image": "example/gw:2"}]}})
        ...     ctl.wait_idle()
        ...     print(ctl.pod_log("default", "p", tail_lines=1), end="")
        True
        401
        """
        _, c = self._pod_and_container(namespace, name, container)
        with self._state:
            if previous:
                if c.previous is None:
                    raise ApiError.bad_request(
                        f'previous terminated container "{c.name}" in pod "{name}" not found'
                    )
                lines = list(c.previous)
            else:
                if c.started_at is None and c.waiting is not None:
                    reason = c.waiting[0]
                    why = (
                        "trying and failing to pull image"
                        if reason in ("ErrImagePull", "ImagePullBackOff")
                        else reason
                    )
                    raise ApiError.bad_request(
                        f'container "{c.name}" in pod "{name}" is waiting to start: {why}'
                    )
                lines = list(c.logs)
        if since_seconds is not None:
            cutoff = self._now() - timedelta(seconds=since_seconds)
            lines = [(t, line) for t, line in lines if t >= cutoff]
        if tail_lines is not None:
            lines = lines[-tail_lines:] if tail_lines > 0 else []
        out = []
        for t, line in lines:
            stamp = t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z "
            out.append((stamp if timestamps else "") + line + "\n")
        return "".join(out)

    def append_log(
        self, namespace: str, name: str, line: str, *, container: str | None = None
    ) -> None:
        """Make a running container print ``line`` (beyond the contract).

        Args:
            namespace: The pod's namespace.
            name: The pod's name.
            line: The text (one line).
            container: The container; required when the pod has more than one.

        Raises:
            ApiError: As :meth:`pod_log`.
        """
        _, c = self._pod_and_container(namespace, name, container)
        with self._state:
            c.logs.append((self._now(), line))

    def pod_environment(self, namespace: str, name: str) -> dict[str, str]:
        """The first container's environment as resolved when it started.

        Like the kubelet, a running container keeps the values it started with: changing a
        Secret later does not change it (a restart or a new pod picks up the new values).

        Args:
            namespace: The pod's namespace.
            name: The pod's name.

        Returns:
            Variable name to value.

        Raises:
            ApiError: 404 if the pod does not exist; 400 if its container has not started.

        >>> from apim_selfhosted.testing.kube.store import Store
        >>> store = Store()
        >>> with Controllers(store, ready_delay=0.01) as ctl:
        ...     _ = store.create(POD, {"metadata": {"name": "p", "namespace": "default"},
        ...                            "spec": {"containers": [{"name": "c", "image": "x",
        ...                                     "env": [{"name": "A", "value": "1"}]}]}})
        ...     ctl.wait_idle()
        ...     ctl.pod_environment("default", "p")
        True
        {'A': '1'}
        """
        pod = self.store.get(POD, namespace, name)
        names = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or ()]
        _, c = self._pod_and_container(namespace, name, names[0] if names else None)
        with self._state:
            if c.started_at is None:
                raise ApiError.bad_request(
                    f'container "{c.name}" in pod "{name}" is waiting to start: '
                    f"{c.waiting[0] if c.waiting else 'ContainerCreating'}"
                )
            return dict(c.env)


class _ConfigError(Exception):
    """A Secret, ConfigMap or key a container needs is missing (CreateContainerConfigError)."""


def _expand(value: str, env: Mapping[str, str]) -> str:
    """Expand ``$(VAR)`` references to earlier variables; ``$$`` escapes, as the kubelet does."""

    def repl(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        var = match.group(1)
        return env.get(var, match.group(0))

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", repl, value)


def _field_ref(pod: Mapping[str, Any], path: str) -> str:
    meta = pod.get("metadata") or {}
    match = re.match(r"^metadata\.(labels|annotations)\['(.+)'\]$", path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": (pod.get("spec") or {}).get("nodeName") or NODE_NAME,
        "spec.serviceAccountName": (pod.get("spec") or {}).get("serviceAccountName", "default"),
        "status.hostIP": HOST_IP,
        "status.hostIPs": HOST_IP,
    }
    if path in simple:
        return str(simple[path] or "")
    if path in ("status.podIP", "status.podIPs"):
        return str((pod.get("status") or {}).get("podIP") or "")
    return ""


_IMAGE_REF = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]+)?/)?"  # registry host[:port]/
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"  # path
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"  # :tag
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"  # @digest
)
"""A container image reference as the kubelet parses it (docker reference grammar)."""


def _image_id(image: str) -> str:
    repo = image.split("@", 1)[0]
    last = repo.rsplit("/", 1)[-1]
    if ":" in last:
        repo = repo[: len(repo) - len(last)] + last.split(":", 1)[0]
    return f"{repo}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def _qos_class(spec: Mapping[str, Any]) -> str:
    containers = list(spec.get("containers") or ())
    if not any(
        (c.get("resources") or {}).get(k) for c in containers for k in ("limits", "requests")
    ):
        return "BestEffort"
    for c in containers:
        res = c.get("resources") or {}
        limits = res.get("limits") or {}
        requests = res.get("requests") or limits
        for r in ("cpu", "memory"):
            if r not in limits or str(requests.get(r)) != str(limits.get(r)):
                return "Burstable"
    return "Guaranteed"
