"""The emulator's controllers, tested in process against the documented behaviour.

Statements come from the Kubernetes documentation: the Deployments concept page (rolling update,
maxSurge/maxUnavailable and their rounding, Recreate, paused, revisionHistoryLimit,
minReadySeconds, progressDeadlineSeconds and the Progressing/Available conditions, rollback),
the ReplicaSet page, the pod lifecycle page (phases, conditions, container states,
CrashLoopBackOff), "Define environment variables"/"Secrets" (env is read at container start),
and the Service page (LoadBalancer status).
"""

from __future__ import annotations

import base64
import copy
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from apim_selfhosted.testing.kube.controller import (
    Controllers,
    PodBehaviour,
    pod_template_hash,
    resolve_int_or_percent,
)
from apim_selfhosted.testing.kube.errors import ApiError
from apim_selfhosted.testing.kube.resources import ResourceType, by_key
from apim_selfhosted.testing.kube.store import Store

DEPLOY = by_key("deployments.apps")
RS = by_key("replicasets.apps")
POD = by_key("pods")
SVC = by_key("services")
SECRET = by_key("secrets")
EVENT = by_key("events")
NS = "default"


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def ctl(store: Store) -> Iterator[Controllers]:
    controllers = Controllers(store, ready_delay=0.02)
    controllers.start()
    yield controllers
    controllers.stop()


def deployment(
    name: str = "web",
    *,
    replicas: int = 3,
    image: str = "example/web:1",
    surge: int | str = "25%",
    unavailable: int | str = "25%",
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable},
            },
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
        },
    }
    body["spec"].update(spec)
    return body


def wait_for(
    store: Store, rt: ResourceType, name: str, predicate: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Wait (through a watch, not by polling) until an object satisfies ``predicate``."""
    watch = store.watch(rt, NS, resource_version="0", field_selector=f"metadata.name={name}")
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline:
            event = watch.next(deadline - time.monotonic())
            if event is not None and event["type"] != "DELETED" and predicate(event["object"]):
                return event["object"]
    finally:
        watch.close()
    raise AssertionError(f"{rt.kind} {name} never satisfied the condition")


def condition(obj: dict[str, Any], ctype: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or ():
        if c["type"] == ctype:
            return dict(c)
    return {}


def is_complete(d: dict[str, Any]) -> bool:
    """What ``kubectl rollout status`` waits for, plus the NewReplicaSetAvailable reason."""
    status = d.get("status") or {}
    want = d["spec"].get("replicas", 1)
    return (
        status.get("observedGeneration") == d["metadata"]["generation"]
        and status.get("updatedReplicas", 0) == want
        and status.get("replicas", 0) == want
        and status.get("availableReplicas", 0) == want
        and condition(d, "Progressing").get("reason") == "NewReplicaSetAvailable"
    )


def change_template(store: Store, name: str, mutate: Callable[[dict[str, Any]], None]) -> None:
    d = store.get(DEPLOY, NS, name)
    mutate(d["spec"]["template"])
    store.update(DEPLOY, d)


def set_image(image: str) -> Callable[[dict[str, Any]], None]:
    def mutate(template: dict[str, Any]) -> None:
        template["spec"]["containers"][0]["image"] = image

    return mutate


def pods_of(store: Store, name: str, *, terminating: bool = False) -> list[dict[str, Any]]:
    """The deployment's pods; those being terminated only if ``terminating``."""
    pods = store.list(POD, NS, label_selector=f"app={name}")[0]
    return [p for p in pods if terminating or not p["metadata"].get("deletionTimestamp")]


def is_ready(pod: dict[str, Any]) -> bool:
    return condition(pod, "Ready").get("status") == "True"


def replica_sets(store: Store, name: str) -> list[dict[str, Any]]:
    items = store.list(RS, NS, label_selector=f"app={name}")[0]
    return sorted(items, key=lambda r: int(r["metadata"]["annotations"][REV]))


REV = "deployment.kubernetes.io/revision"


# --- pure helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "total", "up", "expected"),
    [("25%", 10, True, 3), ("25%", 10, False, 2), (1, 10, True, 1), ("0%", 3, True, 0)],
)
def test_percentages_round_surge_up_and_unavailable_down(
    value: int | str, total: int, up: bool, expected: int
) -> None:
    assert resolve_int_or_percent(value, total, round_up=up) == expected


def test_template_hash_depends_on_template_and_collision_count() -> None:
    a = {"spec": {"containers": [{"image": "a"}]}}
    b = {"spec": {"containers": [{"image": "b"}]}}
    assert pod_template_hash(a) != pod_template_hash(b)
    assert pod_template_hash(a) != pod_template_hash(a, 1)


# --- a deployment rolls out ---------------------------------------------------------------------


def test_deployment_creates_replicaset_and_ready_pods(store: Store, ctl: Controllers) -> None:
    store.create(DEPLOY, deployment(replicas=2))
    d = wait_for(store, DEPLOY, "web", is_complete)
    status = d["status"]
    assert status["replicas"] == status["updatedReplicas"] == 2
    assert status["readyReplicas"] == status["availableReplicas"] == 2
    assert condition(d, "Available")["reason"] == "MinimumReplicasAvailable"
    assert d["metadata"]["annotations"][REV] == "1"
    (rs,) = replica_sets(store, "web")
    hash_ = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{hash_}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": hash_}
    ann = rs["metadata"]["annotations"]
    assert ann["deployment.kubernetes.io/desired-replicas"] == "2"
    assert ann["deployment.kubernetes.io/max-replicas"] == "3"  # 2 + ceil(25% of 2)
    owner = rs["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == (
        "Deployment",
        d["metadata"]["uid"],
        True,
    )
    pods = pods_of(store, "web")
    assert len(pods) == 2
    for pod in pods:
        assert pod["metadata"]["name"].startswith(f"web-{hash_}-")
        assert len(pod["metadata"]["name"]) == len(f"web-{hash_}-") + 5
        assert pod["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
        assert pod["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] is True
        assert pod["status"]["phase"] == "Running"
        assert pod["status"]["podIP"]
        types = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
        assert types["PodScheduled"] == types["Initialized"] == "True"
        assert types["ContainersReady"] == types["Ready"] == "True"
        (cs,) = pod["status"]["containerStatuses"]
        assert cs["ready"] is True
        assert cs["started"] is True
        assert "running" in cs["state"]
        assert cs["image"] == "example/web:1"
        assert cs["imageID"].startswith("example/web@sha256:")


def test_status_starts_progressing_with_new_replicaset_created(
    store: Store, ctl: Controllers
) -> None:
    ctl.script(image="example/slow", behaviour=PodBehaviour(ready_after=5))
    store.create(DEPLOY, deployment(image="example/slow:1"))
    d = wait_for(store, DEPLOY, "web", lambda o: bool(condition(o, "Progressing")))
    cond = condition(d, "Progressing")
    assert cond["status"] == "True"
    assert cond["reason"] in ("NewReplicaSetCreated", "ReplicaSetUpdated")
    d = wait_for(store, DEPLOY, "web", lambda o: bool(condition(o, "Available")))
    assert condition(d, "Available")["reason"] == "MinimumReplicasUnavailable"
    assert condition(d, "Available")["status"] == "False"


class PodCensus:
    """Records, after every committed change, how many pods of a deployment exist and serve."""

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self.name = name
        self.totals: list[int] = []
        self.ready: list[int] = []
        self._lock = threading.Lock()
        self.unsubscribe = store.subscribe(self._on_change)

    def _on_change(self, etype: str, rt: ResourceType, obj: dict[str, Any]) -> None:
        if rt is not POD:
            return
        pods = pods_of(self.store, self.name, terminating=True)
        with self._lock:
            self.totals.append(len(pods))
            # A pod being terminated no longer serves (endpoints drop it), even if still Ready.
            self.ready.append(
                sum(1 for p in pods if is_ready(p) and not p["metadata"].get("deletionTimestamp"))
            )


@pytest.mark.parametrize(
    ("replicas", "surge", "unavailable", "max_total", "min_ready"),
    [
        (4, 1, 1, 5, 3),
        (4, "25%", "25%", 5, 3),
        (3, 0, 1, 3, 2),
        (3, 2, 0, 5, 3),
        (10, "30%", "20%", 13, 8),
    ],
)
def test_rolling_update_honours_max_surge_and_max_unavailable(
    store: Store,
    ctl: Controllers,
    replicas: int,
    surge: int | str,
    unavailable: int | str,
    max_total: int,
    min_ready: int,
) -> None:
    store.create(DEPLOY, deployment(replicas=replicas, surge=surge, unavailable=unavailable))
    wait_for(store, DEPLOY, "web", is_complete)
    census = PodCensus(store, "web")
    change_template(store, "web", set_image("example/web:2"))
    d = wait_for(store, DEPLOY, "web", is_complete)
    census.unsubscribe()
    assert d["status"]["updatedReplicas"] == replicas
    assert census.totals, "the rollout changed no pods"
    assert max(census.totals) <= max_total
    assert min(census.ready) >= min_ready
    assert max(census.totals) > replicas or min(census.ready) < replicas  # it did roll
    assert ctl.wait_idle()  # old pods that were still terminating are gone
    images = {p["spec"]["containers"][0]["image"] for p in pods_of(store, "web")}
    assert images == {"example/web:2"}
    old, new = replica_sets(store, "web")
    assert old["spec"]["replicas"] == 0
    assert new["spec"]["replicas"] == replicas
    assert new["metadata"]["annotations"][REV] == "2"
    assert d["metadata"]["annotations"][REV] == "2"


def test_pod_that_never_gets_ready_blocks_the_rollout_and_times_out(
    store: Store, ctl: Controllers
) -> None:
    ctl.script(image="example/broken", behaviour=PodBehaviour(never_ready=True))
    store.create(DEPLOY, deployment(replicas=3, surge=1, unavailable=0, progressDeadlineSeconds=1))
    wait_for(store, DEPLOY, "web", is_complete)
    census = PodCensus(store, "web")
    change_template(store, "web", set_image("example/broken:2"))
    d = wait_for(
        store,
        DEPLOY,
        "web",
        lambda o: condition(o, "Progressing").get("reason") == "ProgressDeadlineExceeded",
    )
    census.unsubscribe()
    cond = condition(d, "Progressing")
    assert cond["status"] == "False"
    assert cond["message"].endswith("has timed out progressing.")
    assert min(census.ready) >= 3  # the old pods kept serving
    old, new = replica_sets(store, "web")
    assert old["spec"]["replicas"] == 3
    assert new["spec"]["replicas"] == 1
    assert d["status"]["updatedReplicas"] == 1
    assert d["status"]["availableReplicas"] == 3
    assert condition(d, "Available")["status"] == "True"
    events = store.list(EVENT, NS, field_selector="reason=Unhealthy")[0]
    assert events
    assert events[0]["type"] == "Warning"


def test_recreate_removes_old_pods_before_creating_new_ones(store: Store, ctl: Controllers) -> None:
    body = deployment(replicas=2)
    body["spec"]["strategy"] = {"type": "Recreate"}
    store.create(DEPLOY, body)
    wait_for(store, DEPLOY, "web", is_complete)
    mixed: list[set[str]] = []

    def on_change(etype: str, rt: ResourceType, obj: dict[str, Any]) -> None:
        if rt is POD:
            pods = pods_of(store, "web", terminating=True)
            mixed.append({p["spec"]["containers"][0]["image"] for p in pods})

    unsubscribe = store.subscribe(on_change)
    change_template(store, "web", set_image("example/web:2"))
    wait_for(store, DEPLOY, "web", is_complete)
    unsubscribe()
    assert all(len(images) <= 1 for images in mixed)
    assert set() in mixed  # there was a moment without pods
    assert {p["spec"]["containers"][0]["image"] for p in pods_of(store, "web")} == {"example/web:2"}


def test_paused_deployment_does_not_roll_until_resumed(store: Store, ctl: Controllers) -> None:
    store.create(DEPLOY, deployment(replicas=1))
    wait_for(store, DEPLOY, "web", is_complete)
    d = store.get(DEPLOY, NS, "web")
    d["spec"]["paused"] = True
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "example/web:2"
    store.update(DEPLOY, d)
    d = wait_for(
        store,
        DEPLOY,
        "web",
        lambda o: condition(o, "Progressing").get("reason") == "DeploymentPaused",
    )
    assert ctl.wait_idle()
    assert len(replica_sets(store, "web")) == 1
    d = store.get(DEPLOY, NS, "web")
    d["spec"]["paused"] = False
    store.update(DEPLOY, d)
    wait_for(store, DEPLOY, "web", is_complete)
    assert len(replica_sets(store, "web")) == 2


def test_revision_history_limit_deletes_oldest_replicasets(store: Store, ctl: Controllers) -> None:
    store.create(DEPLOY, deployment(replicas=1, revisionHistoryLimit=1))
    for version in (2, 3, 4):
        wait_for(store, DEPLOY, "web", is_complete)
        change_template(store, "web", set_image(f"example/web:{version}"))
    wait_for(store, DEPLOY, "web", is_complete)
    assert ctl.wait_idle()
    revisions = [r["metadata"]["annotations"][REV] for r in replica_sets(store, "web")]
    assert revisions == ["3", "4"]


def test_rollout_restart_annotation_rolls_new_pods(store: Store, ctl: Controllers) -> None:
    store.create(DEPLOY, deployment(replicas=2))
    wait_for(store, DEPLOY, "web", is_complete)
    before = {p["metadata"]["name"] for p in pods_of(store, "web")}

    def restart(template: dict[str, Any]) -> None:
        template["metadata"]["annotations"] = {
            "kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"
        }

    change_template(store, "web", restart)
    d = wait_for(store, DEPLOY, "web", is_complete)
    assert d["metadata"]["annotations"][REV] == "2"
    after = {p["metadata"]["name"] for p in pods_of(store, "web")}
    assert before.isdisjoint(after)
    pod = pods_of(store, "web")[0]
    assert pod["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]


def test_undo_reuses_the_old_replicaset_with_a_new_revision(store: Store, ctl: Controllers) -> None:
    """What ``kubectl rollout undo`` does: copy revision 1's template back into the Deployment."""
    store.create(DEPLOY, deployment(replicas=2))
    wait_for(store, DEPLOY, "web", is_complete)
    change_template(store, "web", set_image("example/web:2"))
    wait_for(store, DEPLOY, "web", is_complete)
    first = next(r for r in replica_sets(store, "web") if r["metadata"]["annotations"][REV] == "1")
    template = copy.deepcopy(first["spec"]["template"])
    del template["metadata"]["labels"]["pod-template-hash"]
    d = store.get(DEPLOY, NS, "web")
    d["spec"]["template"] = template
    store.update(DEPLOY, d)
    d = wait_for(store, DEPLOY, "web", is_complete)
    assert d["metadata"]["annotations"][REV] == "3"
    rs_names = {r["metadata"]["name"]: r for r in replica_sets(store, "web")}
    assert len(rs_names) == 2
    reused = rs_names[first["metadata"]["name"]]
    assert reused["metadata"]["annotations"][REV] == "3"
    assert reused["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    assert reused["spec"]["replicas"] == 2
    assert {p["spec"]["containers"][0]["image"] for p in pods_of(store, "web")} == {"example/web:1"}


def test_change_cause_annotation_is_copied_to_the_replicaset(
    store: Store, ctl: Controllers
) -> None:
    body = deployment(replicas=1)
    body["metadata"]["annotations"] = {"kubernetes.io/change-cause": "first"}
    store.create(DEPLOY, body)
    wait_for(store, DEPLOY, "web", is_complete)
    (rs,) = replica_sets(store, "web")
    assert rs["metadata"]["annotations"]["kubernetes.io/change-cause"] == "first"


def test_scaling_up_and_down(store: Store, ctl: Controllers) -> None:
    store.create(DEPLOY, deployment(replicas=1))
    wait_for(store, DEPLOY, "web", is_complete)
    for replicas in (4, 2, 0):
        d = store.get(DEPLOY, NS, "web")
        d["spec"]["replicas"] = replicas
        store.update(DEPLOY, d)
        d = wait_for(
            store,
            DEPLOY,
            "web",
            lambda o, n=replicas: is_complete(o) and o["status"].get("replicas", 0) == n,
        )
        assert len(pods_of(store, "web")) == replicas
    (rs,) = replica_sets(store, "web")
    assert rs["spec"]["replicas"] == 0
    scaling = store.list(EVENT, NS, field_selector="reason=ScalingReplicaSet")[0]
    messages = {e["message"] for e in scaling}
    assert f"Scaled down replica set {rs['metadata']['name']} to 0 from 2" in messages


def test_min_ready_seconds_delays_availability(store: Store, ctl: Controllers) -> None:
    store.create(DEPLOY, deployment(replicas=1, minReadySeconds=1))
    d = wait_for(store, DEPLOY, "web", lambda o: o.get("status", {}).get("readyReplicas") == 1)
    assert d["status"].get("availableReplicas", 0) == 0
    d = wait_for(store, DEPLOY, "web", is_complete)
    assert d["status"]["availableReplicas"] == 1


def test_deleted_pod_is_replaced(store: Store, ctl: Controllers) -> None:
    store.create(DEPLOY, deployment(replicas=2))
    wait_for(store, DEPLOY, "web", is_complete)
    victim = pods_of(store, "web")[0]["metadata"]["name"]
    store.delete(POD, NS, victim)
    assert ctl.wait_idle()
    names = {p["metadata"]["name"] for p in pods_of(store, "web")}
    assert victim not in names
    assert len(names) == 2


def test_deleting_the_deployment_removes_everything(store: Store, ctl: Controllers) -> None:
    store.create(DEPLOY, deployment(replicas=2))
    wait_for(store, DEPLOY, "web", is_complete)
    store.delete(DEPLOY, NS, "web")
    assert ctl.wait_idle()
    assert store.list(RS, NS)[0] == []
    assert pods_of(store, "web") == []


# --- pods: scripted behaviours, env, logs ---------------------------------------------------------


def bare_pod(name: str, container: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"run": name}},
        "spec": {"containers": [container], **spec},
    }


def pod_named(
    store: Store, name: str, predicate: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    return wait_for(store, POD, name, predicate)


def waiting_reason(pod: dict[str, Any]) -> str | None:
    statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
    return statuses[0].get("state", {}).get("waiting", {}).get("reason")


def test_crash_loop_restarts_with_growing_count(store: Store, ctl: Controllers) -> None:
    ctl.script(
        labels={"run": "crash"}, behaviour=PodBehaviour(crash_loop=True, log_lines=("boom",))
    )
    store.create(POD, bare_pod("crash", {"name": "app", "image": "example/app:1"}))
    pod = pod_named(
        store,
        "crash",
        lambda p: (
            (p.get("status") or {}).get("containerStatuses", [{}])[0].get("restartCount", 0) >= 2
        ),
    )
    (cs,) = pod["status"]["containerStatuses"]
    assert cs["ready"] is False
    assert pod["status"]["phase"] == "Running"
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    assert condition(pod, "Ready")["status"] == "False"
    pod = pod_named(store, "crash", lambda p: waiting_reason(p) == "CrashLoopBackOff")
    assert "boom" in ctl.pod_log(NS, "crash", previous=True)
    assert store.list(EVENT, NS, field_selector="reason=BackOff")[0]


def test_image_pull_error_then_back_off(store: Store, ctl: Controllers) -> None:
    ctl.script(image="example/missing", behaviour=PodBehaviour(image_pull_error=True))
    store.create(POD, bare_pod("nopull", {"name": "app", "image": "example/missing:9"}))
    pod = pod_named(store, "nopull", lambda p: waiting_reason(p) == "ErrImagePull")
    assert pod["status"]["phase"] == "Pending"
    pod_named(store, "nopull", lambda p: waiting_reason(p) == "ImagePullBackOff")
    with pytest.raises(ApiError) as err:
        ctl.pod_log(NS, "nopull")
    assert err.value.code == 400
    assert "is waiting to start: trying and failing to pull image" in err.value.message
    failed = store.list(EVENT, NS, field_selector="reason=Failed")[0]
    assert any(e["involvedObject"]["name"] == "nopull" for e in failed)


def secret(name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NS},
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


ENV_CONTAINER = {
    "name": "gw",
    "image": "example/gw:1",
    "env": [
        {"name": "PLAIN", "value": "x"},
        {"name": "DERIVED", "value": "$(PLAIN)-y"},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "tok", "key": "value"}}},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ],
    "envFrom": [{"secretRef": {"name": "tok"}, "prefix": "S_"}],
}


def test_missing_secret_is_create_container_config_error_until_created(
    store: Store, ctl: Controllers
) -> None:
    store.create(POD, bare_pod("gw", ENV_CONTAINER))
    pod = pod_named(store, "gw", lambda p: waiting_reason(p) == "CreateContainerConfigError")
    message = pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
    assert message == 'secret "tok" not found'
    assert pod["status"]["phase"] == "Pending"
    # Let the kubelet's retry back-off grow well beyond the wait below.
    wait_for(
        store,
        EVENT,
        store.list(EVENT, NS, field_selector="reason=Failed")[0][0]["metadata"]["name"],
        lambda e: e["count"] >= 3,
    )
    store.create(SECRET, secret("tok", value="s3cret"))
    pod_named(store, "gw", is_ready)
    env = ctl.pod_environment(NS, "gw")
    assert env == {
        "S_value": "s3cret",
        "PLAIN": "x",
        "DERIVED": "x-y",
        "TOKEN": "s3cret",
        "POD": "gw",
    }


def test_missing_key_is_create_container_config_error(store: Store, ctl: Controllers) -> None:
    store.create(SECRET, secret("tok", other="1"))
    store.create(POD, bare_pod("gw", ENV_CONTAINER))
    pod = pod_named(store, "gw", lambda p: waiting_reason(p) == "CreateContainerConfigError")
    message = pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
    assert message == "couldn't find key value in Secret default/tok"


def test_running_pod_keeps_the_env_it_started_with(store: Store, ctl: Controllers) -> None:
    store.create(SECRET, secret("tok", value="old"))
    store.create(
        DEPLOY,
        deployment(
            replicas=1,
            template={
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [ENV_CONTAINER]},
            },
        ),
    )
    wait_for(store, DEPLOY, "web", is_complete)
    (pod,) = pods_of(store, "web")
    assert ctl.pod_environment(NS, pod["metadata"]["name"])["TOKEN"] == "old"
    s = store.get(SECRET, NS, "tok")
    s["data"]["value"] = base64.b64encode(b"new").decode()
    store.update(SECRET, s)
    assert ctl.wait_idle()
    assert ctl.pod_environment(NS, pod["metadata"]["name"])["TOKEN"] == "old"

    def restart(template: dict[str, Any]) -> None:
        template["metadata"]["annotations"] = {"kubectl.kubernetes.io/restartedAt": "now"}

    change_template(store, "web", restart)
    wait_for(store, DEPLOY, "web", is_complete)
    (fresh,) = pods_of(store, "web")
    assert fresh["metadata"]["name"] != pod["metadata"]["name"]
    assert ctl.pod_environment(NS, fresh["metadata"]["name"])["TOKEN"] == "new"


def test_missing_secret_volume_keeps_pod_container_creating(store: Store, ctl: Controllers) -> None:
    store.create(
        POD,
        bare_pod(
            "vol",
            {"name": "app", "image": "example/app:1"},
            volumes=[{"name": "certs", "secret": {"secretName": "certs"}}],
        ),
    )
    pod_named(store, "vol", lambda p: waiting_reason(p) == "ContainerCreating")
    assert ctl.wait_idle()
    events = store.list(EVENT, NS, field_selector="reason=FailedMount")[0]
    assert 'MountVolume.SetUp failed for volume "certs" : secret "certs" not found' in {
        e["message"] for e in events
    }
    store.create(SECRET, secret("certs", crt="x"))
    pod_named(store, "vol", is_ready)


def test_pod_logs(store: Store, ctl: Controllers) -> None:
    ctl.script(labels={"run": "talk"}, behaviour=PodBehaviour(log_lines=("one", "two", "three")))
    store.create(POD, bare_pod("talk", {"name": "app", "image": "example/app:1"}))
    pod_named(store, "talk", is_ready)
    log = ctl.pod_log(NS, "talk")
    assert log.splitlines()[1:] == ["one", "two", "three"]
    assert log.endswith("\n")
    assert ctl.pod_log(NS, "talk", tail_lines=2) == "two\nthree\n"
    stamped = ctl.pod_log(NS, "talk", timestamps=True, tail_lines=1)
    assert stamped.endswith("Z three\n")
    assert stamped[:4].isdigit()
    assert ctl.pod_log(NS, "talk", container="app", since_seconds=3600).count("\n") == 4
    with pytest.raises(ApiError) as err:
        ctl.pod_log(NS, "talk", container="nope")
    assert err.value.message == "container nope is not valid for pod talk"
    with pytest.raises(ApiError) as err:
        ctl.pod_log(NS, "talk", previous=True)
    assert err.value.code == 400
    with pytest.raises(ApiError) as err:
        ctl.pod_log(NS, "ghost")
    assert err.value.code == 404


def test_append_log_adds_a_line_to_a_running_container(store: Store, ctl: Controllers) -> None:
    store.create(POD, bare_pod("late", {"name": "app", "image": "example/app:1"}))
    pod_named(store, "late", is_ready)
    ctl.append_log(NS, "late", "WARN could not load configuration")
    assert ctl.pod_log(NS, "late", tail_lines=1) == "WARN could not load configuration\n"
    with pytest.raises(ApiError) as err:
        ctl.append_log(NS, "ghost", "x")
    assert err.value.code == 404


def test_clear_scripts_returns_pods_to_the_default_behaviour(
    store: Store, ctl: Controllers
) -> None:
    ctl.script(image="example/app", behaviour=PodBehaviour(never_ready=True))
    ctl.clear_scripts()
    store.create(POD, bare_pod("plain", {"name": "app", "image": "example/app:1"}))
    pod_named(store, "plain", is_ready)


def test_pod_log_needs_a_container_name_with_two_containers(store: Store, ctl: Controllers) -> None:
    body = bare_pod("two", {"name": "a", "image": "example/a:1"})
    body["spec"]["containers"].append({"name": "b", "image": "example/b:1"})
    store.create(POD, body)
    pod_named(store, "two", is_ready)
    with pytest.raises(ApiError) as err:
        ctl.pod_log(NS, "two")
    assert (
        err.value.message == "a container name must be specified for pod two, choose one of: [a b]"
    )
    assert ctl.pod_log(NS, "two", container="b").startswith("b started")


def test_latest_matching_script_wins(store: Store, ctl: Controllers) -> None:
    ctl.script(image="example/app", behaviour=PodBehaviour(never_ready=True))
    ctl.script(labels={"run": "ok"}, behaviour=PodBehaviour())
    store.create(POD, bare_pod("ok", {"name": "app", "image": "example/app:1"}))
    pod_named(store, "ok", is_ready)


def test_bare_pod_is_scheduled(store: Store, ctl: Controllers) -> None:
    store.create(POD, bare_pod("solo", {"name": "app", "image": "example/app:1"}))
    pod = pod_named(store, "solo", is_ready)
    assert pod["spec"]["nodeName"]
    assert pod["status"]["hostIP"]
    assert store.list(EVENT, NS, field_selector="reason=Scheduled")[0]


# --- services -------------------------------------------------------------------------------------


def service(name: str, type_: str = "LoadBalancer") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"type": type_, "selector": {"app": name}, "ports": [{"port": 80}]},
    }


def test_load_balancer_gets_an_ingress_ip(store: Store, ctl: Controllers) -> None:
    store.create(SVC, service("gw"))
    store.create(SVC, service("gw2"))
    first = wait_for(store, SVC, "gw", lambda s: bool(s.get("status", {}).get("loadBalancer")))
    second = wait_for(store, SVC, "gw2", lambda s: bool(s.get("status", {}).get("loadBalancer")))
    ip1 = first["status"]["loadBalancer"]["ingress"][0]["ip"]
    ip2 = second["status"]["loadBalancer"]["ingress"][0]["ip"]
    assert ip1.startswith("127.0.")
    assert ip1 != ip2
    reasons = {e["reason"] for e in store.list(EVENT, NS)[0]}
    assert {"EnsuringLoadBalancer", "EnsuredLoadBalancer"} <= reasons


def test_load_balancer_stays_pending_when_disabled(store: Store) -> None:
    with Controllers(store, ready_delay=0.01, assign_load_balancer=False) as ctl:
        store.create(SVC, service("gw"))
        store.create(SVC, service("internal", "ClusterIP"))
        assert ctl.wait_idle()
        assert not store.get(SVC, NS, "gw").get("status", {}).get("loadBalancer")
        ctl.assign_load_balancer = True  # the cloud provider shows up
        svc = wait_for(store, SVC, "gw", lambda o: bool(o.get("status", {}).get("loadBalancer")))
        assert svc["status"]["loadBalancer"]["ingress"][0]["ip"].startswith("127.0.")
        assert not store.get(SVC, NS, "internal").get("status", {}).get("loadBalancer")


# --- efficiency ----------------------------------------------------------------------------------


def test_many_deployments_roll_out_and_then_cost_nothing(store: Store) -> None:
    with Controllers(store, ready_delay=0.01) as ctl:
        for i in range(100):
            store.create(DEPLOY, deployment(f"d{i}", replicas=2))
        assert ctl.wait_idle(timeout=60)
        items, _ = store.list(DEPLOY, NS)
        assert all(is_complete(d) for d in items)
        rv = store.resource_version
        # Idle means idle: nothing is written and no work is queued a little later.
        assert ctl.wait_idle(timeout=1)
        time.sleep(0.2)
        assert store.resource_version == rv


# --- over HTTP, with the official kubernetes client -----------------------------------------------


def _http_deployment(name: str, image: str, **spec: Any) -> dict[str, Any]:
    body = deployment(name, replicas=2, image=image, **spec)
    for key in ("strategy", "revisionHistoryLimit", "progressDeadlineSeconds"):
        if key not in spec:
            body["spec"].pop(key)  # the server defaults them
    return body


def _watch_deployment(
    apps: Any, name: str, predicate: Callable[[Any], bool], *, timeout: int = 10
) -> Any:
    from kubernetes import watch

    w = watch.Watch()
    try:
        for event in w.stream(
            apps.list_namespaced_deployment,
            namespace=NS,
            field_selector=f"metadata.name={name}",
            timeout_seconds=timeout,
        ):
            if predicate(event["object"]):
                return event["object"]
    finally:
        w.stop()
    raise AssertionError(f"deployment {name} never satisfied the condition")


def _available(d: Any) -> bool:
    s = d.status
    return bool(
        s
        and s.observed_generation == d.metadata.generation
        and s.updated_replicas == d.spec.replicas
        and s.available_replicas == d.spec.replicas
        and s.replicas == d.spec.replicas
    )


def test_http_deployment_rolls_out_and_a_watch_sees_it_available(kube_emulator: Any) -> None:
    from kubernetes import client

    api_client = kube_emulator.api_client()
    apps = client.AppsV1Api(api_client)
    core = client.CoreV1Api(api_client)
    apps.create_namespaced_deployment(NS, _http_deployment("web", "example/web:1"))
    d = _watch_deployment(apps, "web", _available)
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    conds = {c.type: c for c in d.status.conditions}
    assert conds["Available"].status == "True"
    assert conds["Progressing"].reason == "NewReplicaSetAvailable"
    assert d.spec.strategy.rolling_update.max_surge == "25%"  # defaulted by the server
    pods = core.list_namespaced_pod(NS, label_selector="app=web").items
    assert len(pods) == 2
    assert all(p.status.phase == "Running" for p in pods)
    log = core.read_namespaced_pod_log(pods[0].metadata.name, NS)
    assert "started (image example/web:1)" in log
    rs = apps.list_namespaced_replica_set(NS, label_selector="app=web").items
    assert [r.metadata.owner_references[0].name for r in rs] == ["web"]
    api_client.close()


def test_http_server_side_apply_rolls_a_new_image(kube_emulator: Any) -> None:
    from kubernetes import client

    api_client = kube_emulator.api_client()
    apps = client.AppsV1Api(api_client)
    body = _http_deployment("gw", "example/gw:1")
    apps.patch_namespaced_deployment(
        "gw", NS, body, field_manager="tests", _content_type="application/apply-patch+yaml"
    )
    _watch_deployment(apps, "gw", _available)
    body["spec"]["template"]["spec"]["containers"][0]["image"] = "example/gw:2"
    apps.patch_namespaced_deployment(
        "gw", NS, body, field_manager="tests", _content_type="application/apply-patch+yaml"
    )
    d = _watch_deployment(
        apps,
        "gw",
        lambda o: _available(o) and o.spec.template.spec.containers[0].image == "example/gw:2",
    )
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    revisions = sorted(
        r.metadata.annotations["deployment.kubernetes.io/revision"]
        for r in apps.list_namespaced_replica_set(NS, label_selector="app=gw").items
    )
    assert revisions == ["1", "2"]
    scale = apps.patch_namespaced_deployment_scale("gw", NS, {"spec": {"replicas": 4}})
    assert scale.spec.replicas == 4
    _watch_deployment(apps, "gw", lambda o: _available(o) and o.status.replicas == 4)
    api_client.close()


def test_http_never_ready_rollout_hits_the_progress_deadline(kube_emulator: Any) -> None:
    from kubernetes import client

    kube_emulator.script_pods(image="example/stuck", behaviour=PodBehaviour(never_ready=True))
    api_client = kube_emulator.api_client()
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(
        NS, _http_deployment("gw", "example/ok:1", progressDeadlineSeconds=1)
    )
    _watch_deployment(apps, "gw", _available)
    apps.patch_namespaced_deployment(
        "gw",
        NS,
        {
            "spec": {
                "template": {"spec": {"containers": [{"name": "main", "image": "example/stuck:2"}]}}
            }
        },
    )
    d = _watch_deployment(
        apps,
        "gw",
        lambda o: any(c.reason == "ProgressDeadlineExceeded" for c in o.status.conditions or ()),
    )
    assert d.status.available_replicas == 2  # the old pods keep serving
    assert d.status.updated_replicas == 1
    api_client.close()


def test_http_load_balancer_service_gets_an_ip(kube_emulator: Any) -> None:
    from kubernetes import client, watch

    api_client = kube_emulator.api_client()
    core = client.CoreV1Api(api_client)
    core.create_namespaced_service(NS, service("gw"))
    w = watch.Watch()
    ip = None
    for event in w.stream(
        core.list_namespaced_service, NS, field_selector="metadata.name=gw", timeout_seconds=10
    ):
        lb = event["object"].status.load_balancer
        if lb and lb.ingress:
            ip = lb.ingress[0].ip
            w.stop()
    assert ip is not None
    assert ip.startswith("127.0.")
    api_client.close()


def test_scaled_down_pods_terminate_gracefully(store: Store, ctl: Controllers) -> None:
    store.create(DEPLOY, deployment(replicas=2))
    wait_for(store, DEPLOY, "web", is_complete)
    seen: list[dict[str, Any]] = []

    def on_change(etype: str, rt: ResourceType, obj: dict[str, Any]) -> None:
        if rt is POD and obj["metadata"].get("deletionTimestamp") and etype == "MODIFIED":
            seen.append(obj)

    unsubscribe = store.subscribe(on_change)
    d = store.get(DEPLOY, NS, "web")
    d["spec"]["replicas"] = 1
    store.update(DEPLOY, d)
    assert ctl.wait_idle()
    unsubscribe()
    assert seen, "the pod was not terminated gracefully"
    assert seen[0]["metadata"]["deletionGracePeriodSeconds"] == 30
    assert any(condition(p, "Ready").get("status") == "False" for p in seen)
    assert len(pods_of(store, "web", terminating=True)) == 1
    killing = store.list(EVENT, NS, field_selector="reason=Killing")[0]
    assert killing[0]["message"] == "Stopping container main"


def test_proportional_scaling_of_a_stuck_rollout(store: Store, ctl: Controllers) -> None:
    """The worked example of the Deployments page ("Proportional scaling").

    10 replicas, maxSurge 3, maxUnavailable 2; a new image that cannot be pulled leaves the old
    ReplicaSet at 8 and the new one at 5. Scaling to 15 adds 3 to the old and 2 to the new.
    """
    ctl.script(image="example/unresolvable", behaviour=PodBehaviour(image_pull_error=True))
    store.create(DEPLOY, deployment(replicas=10, surge=3, unavailable=2))
    wait_for(store, DEPLOY, "web", is_complete)
    change_template(store, "web", set_image("example/unresolvable:1"))
    assert ctl.wait_idle()
    old, new = replica_sets(store, "web")
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (8, 5)
    d = store.get(DEPLOY, NS, "web")
    d["spec"]["replicas"] = 15
    store.update(DEPLOY, d)
    assert ctl.wait_idle()
    old, new = replica_sets(store, "web")
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (11, 7)
    for rs in (old, new):
        assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "15"
        assert rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "18"


@pytest.mark.parametrize("ready_delay", [0.0, 0.01])
def test_template_changes_during_a_rollout_keep_the_bounds(
    store: Store, ready_delay: float
) -> None:
    """Several template changes in a row: every intermediate state stays within the bounds."""
    with Controllers(store, ready_delay=ready_delay) as ctl:
        store.create(DEPLOY, deployment(replicas=6, surge=2, unavailable=1))
        wait_for(store, DEPLOY, "web", is_complete)
        census = PodCensus(store, "web")
        for version in range(2, 6):
            change_template(store, "web", set_image(f"example/web:{version}"))
        wait_for(store, DEPLOY, "web", is_complete)
        assert ctl.wait_idle()
        census.unsubscribe()
        assert max(census.totals) <= 8
        assert min(census.ready) >= 5
        assert {p["spec"]["containers"][0]["image"] for p in pods_of(store, "web")} == {
            "example/web:5"
        }
        assert [r["spec"]["replicas"] for r in replica_sets(store, "web")][-1] == 6
        assert sum(r["spec"]["replicas"] for r in replica_sets(store, "web")) == 6


def test_invalid_image_name(store: Store, ctl: Controllers) -> None:
    store.create(POD, bare_pod("bad", {"name": "app", "image": "Example/App:1"}))
    pod = pod_named(store, "bad", lambda p: waiting_reason(p) == "InvalidImageName")
    message = pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
    assert message.endswith('couldn\'t parse image name "Example/App:1": invalid reference format')
    assert pod["status"]["phase"] == "Pending"


def test_bad_behaviour_and_delay_are_refused_naming_the_field(store: Store) -> None:
    with pytest.raises(ValueError, match="ready_after must be >= 0"):
        PodBehaviour(ready_after=-1)
    with pytest.raises(ValueError, match="log_lines must be a tuple"):
        PodBehaviour(log_lines="one line")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ready_delay must be >= 0"):
        Controllers(store, ready_delay=-0.5)


def test_secret_values_stay_out_of_reprs(store: Store, ctl: Controllers) -> None:
    store.create(SECRET, secret("tok", value="hunter2-token"))
    store.create(POD, bare_pod("gw", ENV_CONTAINER))
    pod_named(store, "gw", is_ready)
    assert ctl.pod_environment(NS, "gw")["TOKEN"] == "hunter2-token"
    assert "hunter2" not in repr(ctl._pods)
    assert "hunter2" not in repr(ctl)


PDB = by_key("poddisruptionbudgets.policy")


def pdb(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec},
    }


@pytest.mark.parametrize(
    ("budget", "desired", "allowed"),
    [
        ({"minAvailable": 2}, 2, 1),
        ({"minAvailable": "50%"}, 2, 1),  # 50 % of 3, rounded up
        ({"maxUnavailable": 1}, 2, 1),
        ({"maxUnavailable": "10%"}, 2, 1),  # 10 % of 3 rounds up to 1
        ({"minAvailable": 3}, 3, 0),
    ],
)
def test_disruption_budget_status(
    store: Store, ctl: Controllers, budget: dict[str, Any], desired: int, allowed: int
) -> None:
    store.create(DEPLOY, deployment(replicas=3))
    wait_for(store, DEPLOY, "web", is_complete)
    store.create(PDB, pdb("web", **budget))
    got = wait_for(store, PDB, "web", lambda o: "status" in o)
    status = got["status"]
    assert (status["currentHealthy"], status["expectedPods"]) == (3, 3)
    assert (status["desiredHealthy"], status["disruptionsAllowed"]) == (desired, allowed)
    cond = status["conditions"][0]
    assert cond["type"] == "DisruptionAllowed"
    assert cond["reason"] == ("SufficientPods" if allowed else "InsufficientPods")


def test_disruption_budget_follows_pod_health(store: Store, ctl: Controllers) -> None:
    store.create(PDB, pdb("web", minAvailable=1))
    got = wait_for(store, PDB, "web", lambda o: "status" in o)
    assert got["status"]["disruptionsAllowed"] == 0
    store.create(DEPLOY, deployment(replicas=2))
    got = wait_for(store, PDB, "web", lambda o: o.get("status", {}).get("currentHealthy") == 2)
    assert got["status"]["disruptionsAllowed"] == 1


HPA = by_key("horizontalpodautoscalers.autoscaling")


def autoscaler(name: str, *, min_replicas: int, max_replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": min_replicas,
            "maxReplicas": max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        },
    }


def test_autoscaler_keeps_replicas_within_bounds(store: Store, ctl: Controllers) -> None:
    store.create(DEPLOY, deployment(replicas=1))
    store.create(HPA, autoscaler("web", min_replicas=3, max_replicas=5))
    d = wait_for(store, DEPLOY, "web", lambda o: is_complete(o) and o["spec"]["replicas"] == 3)
    assert d["status"]["availableReplicas"] == 3
    hpa = wait_for(store, HPA, "web", lambda o: o.get("status", {}).get("currentReplicas") == 3)
    assert hpa["status"]["desiredReplicas"] == 3
    assert hpa["status"]["lastScaleTime"]
    events = store.list(EVENT, NS, field_selector="reason=SuccessfulRescale")[0]
    assert events[0]["message"] == (
        "New size: 3; reason: Current number of replicas below Spec.MinReplicas"
    )
    # Someone applies replicas: 9; the autoscaler brings it back to its maximum.
    d = store.get(DEPLOY, NS, "web")
    d["spec"]["replicas"] = 9
    store.update(DEPLOY, d)
    wait_for(store, DEPLOY, "web", lambda o: is_complete(o) and o["spec"]["replicas"] == 5)
    hpa = wait_for(store, HPA, "web", lambda o: o.get("status", {}).get("currentReplicas") == 5)
    active = condition(hpa, "ScalingActive")
    assert (active["status"], active["reason"]) == ("False", "FailedGetResourceMetric")


def test_autoscaler_without_target_cannot_get_scale(store: Store, ctl: Controllers) -> None:
    store.create(HPA, autoscaler("ghost", min_replicas=1, max_replicas=2))
    hpa = wait_for(store, HPA, "ghost", lambda o: bool(o.get("status")))
    able = condition(hpa, "AbleToScale")
    assert (able["status"], able["reason"]) == ("False", "FailedGetScale")


def test_concurrent_writers_and_controllers_converge(store: Store, ctl: Controllers) -> None:
    """Writers racing the controllers (409s on both sides) still end in finished rollouts."""
    names = [f"w{i}" for i in range(6)]
    for name in names:
        store.create(DEPLOY, deployment(name, replicas=2))
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            for version in range(2, 6):
                while True:
                    d = store.get(DEPLOY, NS, name)
                    d["spec"]["template"]["spec"]["containers"][0]["image"] = f"ex/{version}"
                    d["spec"]["replicas"] = version
                    try:
                        store.update(DEPLOY, d)  # carries the resourceVersion it read
                        break
                    except ApiError as exc:
                        if exc.code != 409:
                            raise
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for name in names:
        d = wait_for(store, DEPLOY, name, is_complete)
        assert d["status"]["updatedReplicas"] == 5
    assert ctl.wait_idle()
    for name in names:
        pods = pods_of(store, name, terminating=True)
        assert {p["spec"]["containers"][0]["image"] for p in pods} == {"ex/5"}
        assert len(pods) == 5


def test_dangling_replicaset_is_collected(store: Store, ctl: Controllers) -> None:
    """An object whose owners are all gone is deleted, as the garbage collector does."""
    rs = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": "late",
            "namespace": NS,
            "labels": {"app": "late"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": "gone",
                    "uid": "00000000-0000-0000-0000-000000000000",
                    "controller": True,
                }
            ],
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "late"}},
            "template": deployment("late")["spec"]["template"],
        },
    }
    store.create(RS, rs)
    assert ctl.wait_idle()
    assert store.list(RS, NS)[0] == []
    assert pods_of(store, "late", terminating=True) == []


def test_failing_readiness_probe_repeats_unhealthy_every_period(
    store: Store, ctl: Controllers
) -> None:
    ctl.script(labels={"run": "sick"}, behaviour=PodBehaviour(never_ready=True))
    container = {
        "name": "app",
        "image": "example/app:1",
        "readinessProbe": {"httpGet": {"path": "/", "port": 80}, "periodSeconds": 1},
    }
    store.create(POD, bare_pod("sick", container))
    watch = store.watch(EVENT, NS, resource_version="0", field_selector="reason=Unhealthy")
    try:
        deadline = time.monotonic() + 10
        count = 0
        while count < 2 and time.monotonic() < deadline:
            ev = watch.next(deadline - time.monotonic())
            if ev is not None:
                count = ev["object"]["count"]
    finally:
        watch.close()
    assert count >= 2
    assert condition(store.get(POD, NS, "sick"), "Ready")["status"] == "False"


def test_recreated_deployment_adopts_orphaned_replicaset(store: Store, ctl: Controllers) -> None:
    """``kubectl delete --cascade=orphan`` then apply again: the ReplicaSet is adopted."""
    store.create(DEPLOY, deployment(replicas=2))
    wait_for(store, DEPLOY, "web", is_complete)
    (rs,) = replica_sets(store, "web")
    pod_names = {p["metadata"]["name"] for p in pods_of(store, "web")}
    store.delete(DEPLOY, NS, "web", propagation_policy="Orphan")
    assert "ownerReferences" not in store.get(RS, NS, rs["metadata"]["name"])["metadata"]
    d = store.create(DEPLOY, deployment(replicas=2))
    wait_for(store, DEPLOY, "web", is_complete)
    assert ctl.wait_idle()
    (adopted,) = replica_sets(store, "web")
    assert adopted["metadata"]["uid"] == rs["metadata"]["uid"]
    assert adopted["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"]
    assert {p["metadata"]["name"] for p in pods_of(store, "web", terminating=True)} == pod_names


def test_replicaset_adopts_matching_orphan_pod(store: Store, ctl: Controllers) -> None:
    store.create(DEPLOY, deployment(replicas=1))
    wait_for(store, DEPLOY, "web", is_complete)
    (pod,) = pods_of(store, "web")
    store.delete(RS, NS, pod["metadata"]["ownerReferences"][0]["name"], propagation_policy="Orphan")
    assert ctl.wait_idle()
    (rs,) = replica_sets(store, "web")  # the Deployment made it again, same hash
    (kept,) = pods_of(store, "web", terminating=True)
    assert kept["metadata"]["name"] == pod["metadata"]["name"]
    assert kept["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
