"""KubeEmulator contract: server-side apply.

Statements from the "Server-Side Apply" documentation page: field management, managedFields,
conflicts, forcing, removal of fields a manager stops applying, shared ownership, the required
field manager, and dry-run.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from apim_selfhosted.testing import KubeEmulator

_counter = itertools.count()
_DYNAMIC: dict[int, Any] = {}


@pytest.fixture(scope="module")
def api(kube_emulator_module: KubeEmulator) -> client.ApiClient:
    return kube_emulator_module.api_client()


@pytest.fixture
def ns(api: client.ApiClient) -> Iterator[str]:
    name = f"ssa-{next(_counter)}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    return name


def _apply(
    api: client.ApiClient,
    obj: dict[str, Any],
    ns: str,
    *,
    manager: str,
    force: bool = False,
    dry_run: bool = False,
) -> dict[str, Any]:
    """One server-side apply (PATCH application/apply-patch+yaml) through the DynamicClient."""
    from kubernetes.dynamic import DynamicClient

    dyn = _DYNAMIC.get(id(api))
    if dyn is None:
        dyn = _DYNAMIC[id(api)] = DynamicClient(api)
    resource = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    kwargs: dict[str, Any] = {"field_manager": manager}
    if dry_run:
        kwargs["dry_run"] = "All"
    out = resource.server_side_apply(
        body=obj, name=obj["metadata"]["name"], namespace=ns, force_conflicts=force, **kwargs
    )
    result: dict[str, Any] = out.to_dict()
    return result


def _deployment(name: str, replicas: int | None = 2, image: str = "app:1") -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "app", "image": image}]},
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": spec}


def _managers(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["manager"]: e for e in obj["metadata"].get("managedFields", [])}


def test_apply_creates_a_missing_object(api: client.ApiClient, ns: str) -> None:
    """Apply creates the object if it does not exist."""
    out = _apply(api, _deployment("new"), ns, manager="ci")
    assert out["metadata"]["uid"]
    assert out["spec"]["replicas"] == 2
    assert client.AppsV1Api(api).read_namespaced_deployment("new", ns).spec.replicas == 2


def test_apply_records_the_applied_fields_for_the_manager(api: client.ApiClient, ns: str) -> None:
    """managedFields gets an Apply entry holding exactly the fields in the applied config."""
    out = _apply(api, _deployment("mf"), ns, manager="ci")
    entry = _managers(out)["ci"]
    assert entry["operation"] == "Apply"
    assert entry["fieldsType"] == "FieldsV1"
    assert entry["apiVersion"] == "apps/v1"
    spec = entry["fieldsV1"]["f:spec"]
    assert spec["f:replicas"] == {}
    assert spec["f:selector"] == {}
    container = spec["f:template"]["f:spec"]["f:containers"]['k:{"name":"app"}']
    assert container == {".": {}, "f:image": {}, "f:name": {}}
    # defaulted fields are not owned by the applier
    assert "f:strategy" not in spec
    assert "f:revisionHistoryLimit" not in spec


def test_conflict_with_another_manager_is_409(api: client.ApiClient, ns: str) -> None:
    """Applying a different value for a field another manager owns is a conflict (409)."""
    _apply(api, _deployment("c", replicas=2), ns, manager="first")
    with pytest.raises(ApiException) as info:
        _apply(api, _deployment("c", replicas=5), ns, manager="second")
    status = json.loads(info.value.body)
    assert info.value.status == 409
    assert status["reason"] == "Conflict"
    assert status["message"] == (
        'Apply failed with 1 conflict: conflict with "first": .spec.replicas'
    )
    assert status["details"]["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "first"',
            "field": ".spec.replicas",
        }
    ]


def test_conflict_with_an_update_manager_names_its_api_version(
    api: client.ApiClient, ns: str
) -> None:
    """A conflict with a non-apply (Update) manager names it with `using <apiVersion>`."""
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(
        ns, _deployment("u"), field_manager="kubectl-client-side-apply"
    )
    with pytest.raises(ApiException) as info:
        _apply(api, _deployment("u", replicas=7), ns, manager="kubectl")
    assert json.loads(info.value.body)["message"] == (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: '
        ".spec.replicas"
    )


def test_several_conflicts_are_listed_per_manager(api: client.ApiClient, ns: str) -> None:
    """With several conflicts, the message counts them and lists each field."""
    _apply(api, _deployment("m", replicas=2, image="a:1"), ns, manager="first")
    with pytest.raises(ApiException) as info:
        _apply(api, _deployment("m", replicas=3, image="a:2"), ns, manager="second")
    message = json.loads(info.value.body)["message"]
    assert message.startswith('Apply failed with 2 conflicts: conflicts with "first":')
    assert '- .spec.template.spec.containers[name="app"].image' in message
    assert "- .spec.replicas" in message


def test_force_takes_ownership(api: client.ApiClient, ns: str) -> None:
    """With force, the applier overwrites the value and becomes the field's only owner."""
    _apply(api, _deployment("f", replicas=2), ns, manager="first")
    out = _apply(api, _deployment("f", replicas=4), ns, manager="second", force=True)
    assert out["spec"]["replicas"] == 4
    managers = _managers(out)
    assert "f:replicas" in managers["second"]["fieldsV1"]["f:spec"]
    assert "f:replicas" not in managers["first"]["fieldsV1"]["f:spec"]


def test_same_value_is_shared_ownership(api: client.ApiClient, ns: str) -> None:
    """Applying the same value as another manager does not conflict: both own the field."""
    _apply(api, _deployment("sh", replicas=2), ns, manager="first")
    out = _apply(api, _deployment("sh", replicas=2), ns, manager="second")
    managers = _managers(out)
    assert "f:replicas" in managers["first"]["fieldsV1"]["f:spec"]
    assert "f:replicas" in managers["second"]["fieldsV1"]["f:spec"]


def test_fields_no_longer_applied_are_removed(api: client.ApiClient, ns: str) -> None:
    """A field the manager applied before and omits now is removed if nobody else owns it."""
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "p"},
        "data": {"keep": "1", "drop": "2"},
    }
    _apply(api, cm, ns, manager="ci")
    smaller = copy.deepcopy(cm)
    del smaller["data"]["drop"]
    out = _apply(api, smaller, ns, manager="ci")
    assert out["data"] == {"keep": "1"}


def test_a_list_no_longer_applied_is_removed_not_left_empty(api: client.ApiClient, ns: str) -> None:
    """When an apply stops owning a whole list and nobody else owns it, the field goes."""
    dep = _deployment("lst")
    container = dep["spec"]["template"]["spec"]["containers"][0]
    container["ports"] = [{"containerPort": 8080}, {"containerPort": 8081}]
    container["env"] = [{"name": "A", "value": "1"}]
    _apply(api, dep, ns, manager="ci")
    del container["ports"]
    out = _apply(api, dep, ns, manager="ci")
    live = out["spec"]["template"]["spec"]["containers"][0]
    assert "ports" not in live
    assert live["env"] == [{"name": "A", "value": "1"}]


def test_empty_metadata_maps_are_not_stored(api: client.ApiClient, ns: str) -> None:
    """``annotations: {}`` / ``labels: {}`` are omitempty in Go: the pod template hash stays."""
    plain = _apply(api, _deployment("omit"), ns, manager="ci")
    dep = _deployment("omit")
    dep["metadata"]["annotations"] = {}
    dep["spec"]["template"]["metadata"]["annotations"] = {}
    out = _apply(api, dep, ns, manager="ci")
    assert "annotations" not in out["spec"]["template"]["metadata"]
    assert out["spec"]["template"] == plain["spec"]["template"]


def test_fields_owned_by_another_manager_are_not_removed(api: client.ApiClient, ns: str) -> None:
    """A field another manager also owns stays when one applier stops applying it."""
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "q"},
        "data": {"shared": "1"},
    }
    _apply(api, cm, ns, manager="a")
    _apply(api, cm, ns, manager="b")
    out = _apply(api, {**cm, "data": {}}, ns, manager="a")
    assert out["data"] == {"shared": "1"}


def test_dropped_replicas_keeps_the_live_value(api: client.ApiClient, ns: str) -> None:
    """Leaving replicas out of the config (e.g. for an HPA) keeps the value in the object."""
    apps = client.AppsV1Api(api)
    _apply(api, _deployment("h", replicas=3), ns, manager="ci")
    apps.patch_namespaced_deployment_scale("h", ns, {"spec": {"replicas": 6}}, field_manager="hpa")
    out = _apply(api, _deployment("h", replicas=None), ns, manager="ci")
    assert out["spec"]["replicas"] == 6


def test_field_manager_is_required(api: client.ApiClient, ns: str) -> None:
    """Apply requests must name a fieldManager (400 otherwise)."""
    from kubernetes.dynamic import DynamicClient

    with pytest.raises(ApiException) as info:
        DynamicClient(api).request(
            "PATCH",
            f"/api/v1/namespaces/{ns}/configmaps/x",
            body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
            content_type="application/apply-patch+yaml",
        )
    assert info.value.status == 400
    assert "fieldManager is required" in json.loads(info.value.body)["message"]


def test_apply_dry_run_changes_nothing(api: client.ApiClient, ns: str) -> None:
    """A dry-run apply returns the merged object but persists nothing."""
    _apply(api, _deployment("dr", replicas=1), ns, manager="ci")
    preview = _apply(api, _deployment("dr", replicas=9), ns, manager="ci", dry_run=True)
    assert preview["spec"]["replicas"] == 9
    assert client.AppsV1Api(api).read_namespaced_deployment("dr", ns).spec.replicas == 1
    _apply(api, _deployment("dr-new"), ns, manager="ci", dry_run=True)
    with pytest.raises(ApiException):
        client.AppsV1Api(api).read_namespaced_deployment("dr-new", ns)


def test_reapplying_the_same_config_is_a_no_op(api: client.ApiClient, ns: str) -> None:
    """Applying an unchanged config does not change the object's resourceVersion."""
    first = _apply(api, _deployment("same"), ns, manager="ci")
    second = _apply(api, _deployment("same"), ns, manager="ci")
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"] or (
        second["metadata"]["generation"] == first["metadata"]["generation"]
    )
    assert second["metadata"]["generation"] == 1


def test_update_takes_ownership_without_conflict(api: client.ApiClient, ns: str) -> None:
    """A non-apply write changing an applied field takes it over (no conflict for updates)."""
    _apply(api, _deployment("up", replicas=2), ns, manager="ci")
    apps = client.AppsV1Api(api)
    out = apps.patch_namespaced_deployment(
        "up", ns, {"spec": {"replicas": 3}}, field_manager="editor"
    )
    managers = {e.manager: e for e in out.metadata.managed_fields}
    assert "f:replicas" in managers["editor"].fields_v1["f:spec"]
    assert "f:replicas" not in managers["ci"].fields_v1["f:spec"]
    # and the next apply by ci conflicts with the editor
    with pytest.raises(ApiException) as info:
        _apply(api, _deployment("up", replicas=2), ns, manager="ci")
    assert '"editor" using apps/v1' in json.loads(info.value.body)["message"]


def test_unchanged_apply_later_keeps_the_resource_version() -> None:
    """Re-applying an unchanged config is a no-op even when time has moved on: the API server
    ignores managedFields timestamp-only changes (no new resourceVersion, no watch event)."""
    from datetime import UTC, datetime, timedelta

    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    with KubeEmulator(controllers=False, clock=lambda: now[0]) as kube:
        api = kube.api_client()
        cm = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "same"},
            "data": {"a": "1"},
        }
        first = _apply(api, cm, "default", manager="ci")
        now[0] += timedelta(minutes=5)
        second = _apply(api, cm, "default", manager="ci")
        assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
        assert second["metadata"]["managedFields"] == first["metadata"]["managedFields"]
        changed = _apply(api, {**cm, "data": {"a": "2"}}, "default", manager="ci")
        assert changed["metadata"]["managedFields"][0]["time"] == "2026-01-01T00:05:00Z"


def test_managed_fields_sent_in_a_patch_become_the_baseline(api: client.ApiClient, ns: str) -> None:
    """managedFields written by a client are taken as the new ownership record (this is how
    kubectl migrates fields between managers); `[{}]` clears them."""
    from kubernetes.dynamic import DynamicClient

    _apply(api, _deployment("mig", replicas=2), ns, manager="old-manager")
    dyn = DynamicClient(api)
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/mig"
    live = dyn.request("GET", path).to_dict()
    entries = live["metadata"]["managedFields"]
    migrated = [{**e, "manager": "new-manager"} for e in entries]
    dyn.request(
        "PATCH",
        path,
        body=[
            {
                "op": "test",
                "path": "/metadata/resourceVersion",
                "value": live["metadata"]["resourceVersion"],
            },
            {"op": "replace", "path": "/metadata/managedFields", "value": migrated},
        ],
        content_type="application/json-patch+json",
    )
    managers = {
        e["manager"] for e in dyn.request("GET", path).to_dict()["metadata"]["managedFields"]
    }
    assert managers == {"new-manager"}
    # the new owner now changes replicas without a conflict
    out = _apply(api, _deployment("mig", replicas=4), ns, manager="new-manager")
    assert out["spec"]["replicas"] == 4
    dyn.request(
        "PATCH",
        path,
        body={"metadata": {"managedFields": [{}]}},
        content_type="application/merge-patch+json",
    )
    assert "managedFields" not in dyn.request("GET", path).to_dict()["metadata"]


def test_apply_to_the_status_subresource_changes_only_status(
    api: client.ApiClient, ns: str
) -> None:
    """Server-side apply to /status owns status fields under a `subresource: status` entry."""
    from kubernetes.dynamic import DynamicClient

    core = client.CoreV1Api(api)
    pvc = {
        "metadata": {"name": "sub"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    core.create_namespaced_persistent_volume_claim(ns, pvc)
    body = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "sub", "labels": {"ignored": "yes"}},
        "status": {"phase": "Bound"},
    }
    DynamicClient(api).request(
        "PATCH",
        f"/api/v1/namespaces/{ns}/persistentvolumeclaims/sub/status",
        body=body,
        content_type="application/apply-patch+yaml",
        query_params=[("fieldManager", "binder")],
    )
    got = core.read_namespaced_persistent_volume_claim("sub", ns)
    assert got.status.phase == "Bound"
    assert not got.metadata.labels
    entry = next(e for e in got.metadata.managed_fields if e.manager == "binder")
    assert (entry.operation, entry.subresource) == ("Apply", "status")
    assert entry.fields_v1 == {"f:status": {"f:phase": {}}}
