"""The emulator's object store, tested in process against kube-apiserver's documented behaviour.

Statements come from the Kubernetes API concepts page (resourceVersion, watch, 410 Gone), the
object-metadata reference (uid, generation, creationTimestamp, generateName), the label and
field selector pages, the namespace page and the garbage-collection page.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from apim_selfhosted.testing.kube.errors import ApiError
from apim_selfhosted.testing.kube.resources import ResourceType, by_key
from apim_selfhosted.testing.kube.store import (
    Store,
    label_selector_to_string,
    match_label_selector,
    match_labels,
    parse_label_selector,
)

CM = by_key("configmaps")
NS = by_key("namespaces")
DEPLOY = by_key("deployments.apps")
RS = by_key("replicasets.apps")
POD = by_key("pods")
SECRET = by_key("secrets")


def _cm(name: str, ns: str = "default", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "data": {"k": "v"},
    }


def _deploy(name: str, ns: str = "default", replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}},
    }


def _owned(
    rt: ResourceType, name: str, owner: dict[str, Any], ns: str = "default"
) -> dict[str, Any]:
    meta = owner["metadata"]
    return {
        "apiVersion": rt.api_version,
        "kind": rt.kind,
        "metadata": {
            "name": name,
            "namespace": ns,
            "ownerReferences": [
                {
                    "apiVersion": owner["apiVersion"],
                    "kind": owner["kind"],
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {},
    }


@pytest.fixture
def store() -> Store:
    return Store(clock=lambda: datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC))


# --- create / get / metadata ---------------------------------------------------------------


def test_create_sets_system_fields(store: Store) -> None:
    obj = store.create(DEPLOY, _deploy("web"))
    meta = obj["metadata"]
    assert len(meta["uid"]) == 36
    assert meta["resourceVersion"] == store.resource_version
    assert meta["generation"] == 1
    assert meta["creationTimestamp"] == "2024-05-06T07:08:09Z"
    assert store.get(DEPLOY, "default", "web") == obj


def test_create_does_not_modify_the_input_and_get_returns_copies(store: Store) -> None:
    given = _cm("a")
    store.create(CM, given)
    assert "uid" not in given["metadata"]
    got = store.get(CM, "default", "a")
    got["data"]["k"] = "changed"
    assert store.get(CM, "default", "a")["data"]["k"] == "v"


def test_configmaps_have_no_generation(store: Store) -> None:
    assert "generation" not in store.create(CM, _cm("a"))["metadata"]


def test_resource_versions_increase_with_every_write(store: Store) -> None:
    first = int(store.create(CM, _cm("a"))["metadata"]["resourceVersion"])
    second = int(store.create(CM, _cm("b"))["metadata"]["resourceVersion"])
    assert second > first
    assert int(store.resource_version) == second


def test_create_existing_name_is_already_exists(store: Store) -> None:
    store.create(CM, _cm("a"))
    with pytest.raises(ApiError) as err:
        store.create(CM, _cm("a"))
    assert (err.value.code, err.value.reason) == (409, "AlreadyExists")
    assert err.value.message == 'configmaps "a" already exists'


def test_same_name_in_other_namespace_is_fine(store: Store) -> None:
    store.create(NS, {"metadata": {"name": "other"}})
    store.create(CM, _cm("a"))
    store.create(CM, _cm("a", "other"))
    assert len(store.list(CM, None)[0]) == 2


def test_get_missing_is_not_found(store: Store) -> None:
    with pytest.raises(ApiError) as err:
        store.get(DEPLOY, "default", "nope")
    assert err.value.code == 404
    assert err.value.message == 'deployments.apps "nope" not found'


def test_generate_name_appends_five_random_characters(store: Store) -> None:
    obj = store.create(CM, {"metadata": {"generateName": "web-", "namespace": "default"}})
    name = obj["metadata"]["name"]
    assert name.startswith("web-")
    assert len(name) == len("web-") + 5


def test_create_in_missing_namespace_is_not_found(store: Store) -> None:
    with pytest.raises(ApiError) as err:
        store.create(CM, _cm("a", "missing"))
    assert err.value.code == 404
    assert err.value.message == 'namespaces "missing" not found'


def test_system_namespaces_exist_and_are_active(store: Store) -> None:
    names = [n["metadata"]["name"] for n in store.list(NS, None)[0]]
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
    assert store.get(NS, None, "default")["status"]["phase"] == "Active"


def test_dry_run_create_stores_nothing(store: Store) -> None:
    rv = store.resource_version
    out = store.create(CM, _cm("a"), dry_run=True)
    assert out["metadata"]["name"] == "a"
    assert store.resource_version == rv
    with pytest.raises(ApiError):
        store.get(CM, "default", "a")


def test_dry_run_create_still_checks(store: Store) -> None:
    store.create(CM, _cm("a"))
    with pytest.raises(ApiError) as err:
        store.create(CM, _cm("a"), dry_run=True)
    assert err.value.reason == "AlreadyExists"


# --- update ------------------------------------------------------------------------------------


def test_update_with_stale_resource_version_is_conflict(store: Store) -> None:
    obj = store.create(CM, _cm("a"))
    fresh = dict(obj, data={"k": "1"})
    store.update(CM, fresh)
    stale = dict(obj, data={"k": "2"})
    with pytest.raises(ApiError) as err:
        store.update(CM, stale)
    assert err.value.code == 409
    assert err.value.reason == "Conflict"
    assert "the object has been modified" in err.value.message
    assert store.get(CM, "default", "a")["data"] == {"k": "1"}


def test_update_without_resource_version_is_unconditional(store: Store) -> None:
    store.create(CM, _cm("a"))
    store.update(CM, {"metadata": {"name": "a", "namespace": "default"}, "data": {"x": "y"}})
    assert store.get(CM, "default", "a")["data"] == {"x": "y"}


def test_generation_bumps_on_spec_change_only(store: Store) -> None:
    obj = store.create(DEPLOY, _deploy("web"))
    obj["metadata"]["labels"] = {"team": "a"}
    obj = store.update(DEPLOY, obj)
    assert obj["metadata"]["generation"] == 1
    obj["spec"]["replicas"] = 3
    obj = store.update(DEPLOY, obj)
    assert obj["metadata"]["generation"] == 2
    obj["status"] = {"replicas": 3}
    obj = store.update(DEPLOY, obj, subresource="status")
    assert obj["metadata"]["generation"] == 2


def test_main_update_keeps_status_and_status_update_keeps_spec(store: Store) -> None:
    obj = store.create(DEPLOY, _deploy("web"))
    obj["status"] = {"replicas": 1}
    obj = store.update(DEPLOY, obj, subresource="status")
    assert obj["status"] == {"replicas": 1}
    obj["status"] = {"replicas": 99}
    obj["spec"]["replicas"] = 2
    obj = store.update(DEPLOY, obj)
    assert obj["status"] == {"replicas": 1}
    assert obj["spec"]["replicas"] == 2
    obj["spec"]["replicas"] = 5
    obj["status"] = {"replicas": 2}
    obj = store.update(DEPLOY, obj, subresource="status")
    assert obj["spec"]["replicas"] == 2
    assert obj["status"] == {"replicas": 2}


def test_update_preserves_uid_and_creation_timestamp(store: Store) -> None:
    obj = store.create(CM, _cm("a"))
    changed = dict(obj, data={"n": "1"})
    changed["metadata"] = dict(obj["metadata"], creationTimestamp="2000-01-01T00:00:00Z")
    changed["metadata"].pop("uid")
    out = store.update(CM, changed)
    assert out["metadata"]["uid"] == obj["metadata"]["uid"]
    assert out["metadata"]["creationTimestamp"] == obj["metadata"]["creationTimestamp"]


def test_noop_update_keeps_resource_version_and_emits_nothing(store: Store) -> None:
    obj = store.create(CM, _cm("a"))
    w = store.watch(CM, "default", resource_version=store.resource_version)
    out = store.update(CM, obj)
    assert out["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
    assert w.next(0.01) is None
    w.close()


def test_update_missing_is_not_found(store: Store) -> None:
    with pytest.raises(ApiError) as err:
        store.update(CM, _cm("ghost"))
    assert err.value.code == 404


def test_dry_run_update_changes_nothing(store: Store) -> None:
    obj = store.create(CM, _cm("a"))
    out = store.update(CM, dict(obj, data={"k": "dry"}), dry_run=True)
    assert out["data"] == {"k": "dry"}
    assert store.get(CM, "default", "a") == obj


# --- delete, finalizers, namespaces, GC -------------------------------------------------------


def test_delete_returns_object_with_deletion_timestamp(store: Store) -> None:
    store.create(CM, _cm("a"))
    out = store.delete(CM, "default", "a")
    assert out["metadata"]["deletionTimestamp"] == "2024-05-06T07:08:09Z"
    with pytest.raises(ApiError):
        store.get(CM, "default", "a")


def test_delete_preconditions(store: Store) -> None:
    obj = store.create(CM, _cm("a"))
    with pytest.raises(ApiError) as err:
        store.delete(CM, "default", "a", preconditions={"uid": "other"})
    assert err.value.code == 409
    assert "Precondition failed: UID in precondition: other" in err.value.message
    with pytest.raises(ApiError) as err:
        store.delete(CM, "default", "a", preconditions={"resourceVersion": "1"})
    assert err.value.code == 409
    store.delete(CM, "default", "a", preconditions={"uid": obj["metadata"]["uid"]})


def test_dry_run_delete_keeps_object(store: Store) -> None:
    store.create(CM, _cm("a"))
    store.delete(CM, "default", "a", dry_run=True)
    store.get(CM, "default", "a")


def test_finalizers_hold_the_object_until_removed(store: Store) -> None:
    cm = _cm("a")
    cm["metadata"]["finalizers"] = ["example.com/hold"]
    store.create(CM, cm)
    marked = store.delete(CM, "default", "a")
    assert marked["metadata"]["deletionTimestamp"]
    held = store.get(CM, "default", "a")
    assert held["metadata"]["deletionTimestamp"]
    held["metadata"]["finalizers"] = []
    store.update(CM, held)
    with pytest.raises(ApiError):
        store.get(CM, "default", "a")


def test_namespace_delete_cascades(store: Store) -> None:
    store.create(NS, {"metadata": {"name": "team"}})
    store.create(CM, _cm("a", "team"))
    store.create(DEPLOY, _deploy("web", "team"))
    w = store.watch(NS, None, resource_version=store.resource_version)
    store.delete(NS, None, "team")
    assert store.list(CM, "team")[0] == []
    assert store.list(DEPLOY, "team")[0] == []
    with pytest.raises(ApiError):
        store.get(NS, None, "team")
    first, second = w.next(1), w.next(1)
    assert first is not None
    assert second is not None
    assert first["type"] == "MODIFIED"
    assert first["object"]["status"]["phase"] == "Terminating"
    assert second["type"] == "DELETED"
    w.close()


def test_terminating_namespace_refuses_new_content(store: Store) -> None:
    store.create(NS, {"metadata": {"name": "team"}})
    cm = _cm("held", "team")
    cm["metadata"]["finalizers"] = ["example.com/hold"]
    store.create(CM, cm)
    store.delete(NS, None, "team")
    assert store.get(NS, None, "team")["status"]["phase"] == "Terminating"
    with pytest.raises(ApiError) as err:
        store.create(CM, _cm("new", "team"))
    assert err.value.code == 403
    assert "because it is being terminated" in err.value.message
    held = store.get(CM, "team", "held")
    held["metadata"]["finalizers"] = []
    store.update(CM, held)
    with pytest.raises(ApiError):
        store.get(NS, None, "team")


def test_background_gc_deletes_dependents_recursively(store: Store) -> None:
    deploy = store.create(DEPLOY, _deploy("web"))
    rs = store.create(RS, _owned(RS, "web-abc", deploy))
    store.create(POD, _owned(POD, "web-abc-x1", rs))
    store.create(POD, _owned(POD, "web-abc-x2", rs))
    store.create(CM, _cm("unrelated"))
    store.delete(DEPLOY, "default", "web")
    assert store.list(RS, "default")[0] == []
    assert store.list(POD, "default")[0] == []
    assert len(store.list(CM, "default")[0]) == 1


def test_foreground_gc_deletes_dependents_first(store: Store) -> None:
    deploy = store.create(DEPLOY, _deploy("web"))
    rs = store.create(RS, _owned(RS, "web-abc", deploy))
    store.create(POD, _owned(POD, "web-abc-x1", rs))
    w = store.watch(POD, "default", resource_version=store.resource_version)
    wd = store.watch(DEPLOY, "default", resource_version=store.resource_version)
    store.delete(DEPLOY, "default", "web", propagation_policy="Foreground")
    pod_ev, dep_ev = w.next(1), wd.next(1)
    assert pod_ev is not None
    assert dep_ev is not None
    assert int(pod_ev["object"]["metadata"]["resourceVersion"]) < int(
        dep_ev["object"]["metadata"]["resourceVersion"]
    )
    w.close()
    wd.close()


def test_orphan_removes_owner_references(store: Store) -> None:
    deploy = store.create(DEPLOY, _deploy("web"))
    store.create(RS, _owned(RS, "web-abc", deploy))
    store.delete(DEPLOY, "default", "web", propagation_policy="Orphan")
    rs = store.get(RS, "default", "web-abc")
    assert "ownerReferences" not in rs["metadata"]


def test_dependent_with_another_live_owner_survives(store: Store) -> None:
    a = store.create(DEPLOY, _deploy("a"))
    b = store.create(DEPLOY, _deploy("b"))
    cm = _owned(CM, "shared", a)
    cm["metadata"]["ownerReferences"].append(
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "b", "uid": b["metadata"]["uid"]}
    )
    store.create(CM, cm)
    store.delete(DEPLOY, "default", "a")
    refs = store.get(CM, "default", "shared")["metadata"]["ownerReferences"]
    assert [r["name"] for r in refs] == ["b"]


def test_unknown_propagation_policy_is_bad_request(store: Store) -> None:
    store.create(CM, _cm("a"))
    with pytest.raises(ApiError) as err:
        store.delete(CM, "default", "a", propagation_policy="Sideways")
    assert err.value.code == 400


# --- selectors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", ["a", "b"]),
        ("app==web", ["a", "b"]),
        ("app!=web", ["c", "d"]),
        ("tier in (front,back)", ["a", "b"]),
        ("tier notin (front)", ["b", "c", "d"]),
        ("tier", ["a", "b"]),
        ("!tier", ["c", "d"]),
        ("app=web,tier=back", ["b"]),
        ("", ["a", "b", "c", "d"]),
    ],
)
def test_label_selectors(store: Store, selector: str, expected: list[str]) -> None:
    store.create(CM, _cm("a", app="web", tier="front"))
    store.create(CM, _cm("b", app="web", tier="back"))
    store.create(CM, _cm("c", app="db"))
    store.create(CM, _cm("d"))
    items, _ = store.list(CM, "default", label_selector=selector)
    assert [i["metadata"]["name"] for i in items] == expected


@pytest.mark.parametrize("bad", ["a in (x", "a=b=c", "=x", "a in ()", "in (a)", "a,,b", "a>x"])
def test_bad_label_selector_is_bad_request(store: Store, bad: str) -> None:
    with pytest.raises(ApiError) as err:
        store.list(CM, "default", label_selector=bad)
    assert err.value.code == 400


def test_numeric_label_comparisons() -> None:
    assert match_labels("n>3", {"n": "4"})
    assert not match_labels("n<3", {"n": "4"})
    assert not match_labels("n>3", {})


def test_field_selectors(store: Store) -> None:
    store.create(CM, _cm("a"))
    store.create(CM, _cm("b"))
    items, _ = store.list(CM, None, field_selector="metadata.name=b")
    assert [i["metadata"]["name"] for i in items] == ["b"]
    items, _ = store.list(CM, None, field_selector="metadata.name!=b,metadata.namespace=default")
    assert [i["metadata"]["name"] for i in items] == ["a"]


def test_pod_phase_and_secret_type_field_selectors(store: Store) -> None:
    store.create(POD, {"metadata": {"name": "p1", "namespace": "default"}, "spec": {}})
    running = store.create(POD, {"metadata": {"name": "p2", "namespace": "default"}, "spec": {}})
    running["status"] = {"phase": "Running"}
    store.update(POD, running, subresource="status")
    items, _ = store.list(POD, "default", field_selector="status.phase=Running")
    assert [i["metadata"]["name"] for i in items] == ["p2"]
    store.create(SECRET, {"metadata": {"name": "s", "namespace": "default"}, "type": "Opaque"})
    assert len(store.list(SECRET, None, field_selector="type=Opaque")[0]) == 1
    assert store.list(SECRET, None, field_selector="type=kubernetes.io/tls")[0] == []


def test_unsupported_field_selector_is_bad_request(store: Store) -> None:
    with pytest.raises(ApiError) as err:
        store.list(CM, None, field_selector="data.k=v")
    assert err.value.code == 400
    assert "field label not supported: data.k" in err.value.message


def test_label_selector_objects() -> None:
    sel = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["front"]},
            {"key": "legacy", "operator": "DoesNotExist"},
        ],
    }
    assert match_label_selector(sel, {"app": "web", "tier": "front"})
    assert not match_label_selector(sel, {"app": "web", "tier": "front", "legacy": "1"})
    assert match_label_selector({}, {"anything": "x"})
    assert not match_label_selector(None, {"anything": "x"})
    assert label_selector_to_string(sel) == "app=web,tier in (front),!legacy"
    assert parse_label_selector(label_selector_to_string(sel)) == parse_label_selector(
        "app=web,tier in (front),!legacy"
    )


# --- watch -------------------------------------------------------------------------------------


def test_watch_from_zero_lists_current_objects_first(store: Store) -> None:
    store.create(CM, _cm("a"))
    store.create(CM, _cm("b"))
    w = store.watch(CM, "default", resource_version="0")
    first, second = w.next(1), w.next(1)
    assert first is not None
    assert second is not None
    assert [first["type"], second["type"]] == ["ADDED", "ADDED"]
    store.create(CM, _cm("c"))
    third = w.next(1)
    assert third is not None
    assert third["object"]["metadata"]["name"] == "c"
    w.close()


def test_watch_from_a_version_replays_later_changes(store: Store) -> None:
    a = store.create(CM, _cm("a"))
    rv = a["metadata"]["resourceVersion"]
    store.update(CM, dict(a, data={"k": "2"}))
    store.delete(CM, "default", "a")
    w = store.watch(CM, "default", resource_version=rv)
    events = [w.next(1), w.next(1)]
    assert [e["type"] for e in events if e] == ["MODIFIED", "DELETED"]
    assert w.next(0.01) is None
    w.close()


def test_watch_from_a_version_older_than_history_is_gone() -> None:
    store = Store(history=5)
    rv = store.resource_version
    for i in range(10):
        store.create(CM, _cm(f"c{i}"))
    with pytest.raises(ApiError) as err:
        store.watch(CM, None, resource_version=rv)
    assert err.value.code == 410
    assert err.value.reason == "Expired"
    recent = str(int(store.resource_version) - 2)
    store.watch(CM, None, resource_version=recent).close()


def test_watch_filters_by_namespace(store: Store) -> None:
    store.create(NS, {"metadata": {"name": "other"}})
    w = store.watch(CM, "other", resource_version=store.resource_version)
    store.create(CM, _cm("a"))
    store.create(CM, _cm("b", "other"))
    ev = w.next(1)
    assert ev is not None
    assert ev["object"]["metadata"]["name"] == "b"
    assert w.next(0.01) is None
    w.close()


def test_watch_label_selector_transitions_are_added_and_deleted(store: Store) -> None:
    obj = store.create(CM, _cm("a", app="web"))
    w = store.watch(
        CM, "default", resource_version=store.resource_version, label_selector="app=web"
    )
    obj["metadata"]["labels"] = {"app": "db"}
    obj = store.update(CM, obj)
    ev = w.next(1)
    assert ev is not None
    assert ev["type"] == "DELETED"
    assert ev["object"]["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
    obj["metadata"]["labels"] = {"app": "web"}
    store.update(CM, obj)
    ev = w.next(1)
    assert ev is not None
    assert ev["type"] == "ADDED"
    w.close()


def test_watch_next_times_out_with_none_and_close_unblocks(store: Store) -> None:
    w = store.watch(CM, None, resource_version=store.resource_version)
    assert w.next(0.01) is None
    results: list[Any] = []
    t = threading.Thread(target=lambda: results.append(w.next(30)))
    t.start()
    w.close()
    t.join(5)
    assert results == [None]


def test_bookmark_carries_current_resource_version(store: Store) -> None:
    w = store.watch(CM, None, resource_version=store.resource_version, allow_bookmarks=True)
    store.create(CM, _cm("a"))
    bm = w.bookmark()
    assert bm["type"] == "BOOKMARK"
    assert bm["object"]["metadata"]["resourceVersion"] == store.resource_version
    w.close()


def test_deleted_event_has_a_newer_resource_version(store: Store) -> None:
    a = store.create(CM, _cm("a"))
    w = store.watch(CM, None, resource_version=store.resource_version)
    store.delete(CM, "default", "a")
    ev = w.next(1)
    assert ev is not None
    assert ev["type"] == "DELETED"
    assert int(ev["object"]["metadata"]["resourceVersion"]) > int(a["metadata"]["resourceVersion"])
    w.close()


# --- subscribe and locking -------------------------------------------------------------------


def test_subscribers_are_called_outside_the_lock_after_commit(store: Store) -> None:
    seen: list[tuple[str, str, bool]] = []

    def callback(etype: str, rt: ResourceType, obj: dict[str, Any]) -> None:
        # The store must be usable from a callback (it is not holding the lock for us).
        other = threading.Thread(target=lambda: store.get(rt, "default", "a"))
        other.start()
        other.join(5)
        seen.append((etype, obj["metadata"]["name"], other.is_alive()))

    unsubscribe = store.subscribe(callback)
    with store.lock:
        store.create(CM, _cm("a"))
        assert seen == []  # not yet: the outermost holder has not released
    assert seen == [("ADDED", "a", False)]
    unsubscribe()
    store.create(CM, _cm("b"))
    assert len(seen) == 1


def test_concurrent_creates_get_distinct_versions(store: Store) -> None:
    def worker(i: int) -> None:
        for j in range(20):
            store.create(CM, _cm(f"c{i}-{j}"))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    items, _ = store.list(CM, "default")
    versions = {i["metadata"]["resourceVersion"] for i in items}
    assert len(items) == len(versions) == 80


# --- graceful pod deletion (beyond the contract) --------------------------------------------------


def _pod(name: str, node: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "x"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name, "namespace": "default"}, "spec": spec}


def test_graceful_delete_of_a_bound_pod_only_marks_it(store: Store) -> None:
    store.create(POD, _pod("p", "node-1"))
    marked = store.delete(POD, "default", "p", grace_period_seconds=30)
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 30
    assert marked["metadata"]["deletionTimestamp"] == "2024-05-06T07:08:39Z"  # now + 30 s
    assert store.get(POD, "default", "p")["metadata"]["deletionTimestamp"]
    store.delete(POD, "default", "p")  # a second delete without grace changes nothing
    store.get(POD, "default", "p")
    store.delete(POD, "default", "p", grace_period_seconds=0)
    with pytest.raises(ApiError):
        store.get(POD, "default", "p")


def test_unbound_pod_is_deleted_at_once_even_with_grace(store: Store) -> None:
    store.create(POD, _pod("p", None))
    store.delete(POD, "default", "p", grace_period_seconds=30)
    with pytest.raises(ApiError):
        store.get(POD, "default", "p")


def test_status_update_of_a_terminating_pod_keeps_it(store: Store) -> None:
    store.create(POD, _pod("p", "node-1"))
    marked = store.delete(POD, "default", "p", grace_period_seconds=5)
    marked["status"] = {"phase": "Running"}
    store.update(POD, marked, subresource="status")
    assert store.get(POD, "default", "p")["status"] == {"phase": "Running"}


def test_label_selected_lists_follow_label_changes_and_deletes(store: Store) -> None:
    obj = store.create(CM, _cm("a", app="web", tier="front"))
    store.create(CM, _cm("b", app="web"))
    obj["metadata"]["labels"] = {"app": "db", "tier": "front"}
    store.update(CM, obj)
    names = [i["metadata"]["name"] for i in store.list(CM, None, label_selector="app=web")[0]]
    assert names == ["b"]
    names = [
        i["metadata"]["name"]
        for i in store.list(CM, None, label_selector="app=db,tier in (front)")[0]
    ]
    assert names == ["a"]
    store.delete(CM, "default", "a")
    assert store.list(CM, None, label_selector="app=db")[0] == []


def test_marking_for_deletion_bumps_generation(store: Store) -> None:
    """Setting deletionTimestamp on an object with finalizers bumps metadata.generation."""
    body = _deploy("web")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    store.create(DEPLOY, body)
    marked = store.delete(DEPLOY, "default", "web")
    assert marked["metadata"]["generation"] == 2


def test_update_cannot_change_deletion_timestamp_or_uid(store: Store) -> None:
    obj = store.create(CM, _cm("a"))
    obj["metadata"]["deletionTimestamp"] = "2000-01-01T00:00:00Z"
    out = store.update(CM, obj)
    assert "deletionTimestamp" not in out["metadata"]
    out["metadata"]["uid"] = "someone-else"
    with pytest.raises(ApiError) as err:
        store.update(CM, out)
    assert err.value.code == 409


def test_watch_field_selector_sees_deletes(store: Store) -> None:
    store.create(CM, _cm("a"))
    store.create(CM, _cm("b"))
    w = store.watch(
        CM, None, resource_version=store.resource_version, field_selector="metadata.name=b"
    )
    store.delete(CM, "default", "a")
    store.delete(CM, "default", "b")
    ev = w.next(1)
    assert ev is not None
    assert (ev["type"], ev["object"]["metadata"]["name"]) == ("DELETED", "b")
    assert w.next(0.01) is None
    w.close()


def test_cluster_scoped_objects_ignore_namespace(store: Store) -> None:
    ns = store.create(NS, {"metadata": {"name": "x", "namespace": "default"}})
    assert "namespace" not in ns["metadata"]
    assert store.get(NS, "whatever", "x")["metadata"]["name"] == "x"


def test_dry_run_delete_of_a_namespace_keeps_its_content(store: Store) -> None:
    store.create(NS, {"metadata": {"name": "team"}})
    store.create(CM, _cm("a", "team"))
    out = store.delete(NS, None, "team", dry_run=True)
    assert out["metadata"]["deletionTimestamp"]
    assert store.get(NS, None, "team")["status"]["phase"] == "Active"
    assert len(store.list(CM, "team")[0]) == 1
