"""KubeEmulator contract: JSON patch, merge patch, strategic merge patch and subresources.

Statements from the API concepts page (patch types), "Update API Objects in Place Using
kubectl patch" (strategic merge patch: merge keys, ``$patch``, ``$retainKeys``), RFC 6902/7386,
and the scale and status subresource docs.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from apim_selfhosted.testing import KubeEmulator

_counter = itertools.count()


@pytest.fixture(scope="module")
def api(kube_emulator_module: KubeEmulator) -> client.ApiClient:
    return kube_emulator_module.api_client()


@pytest.fixture
def ns(api: client.ApiClient) -> Iterator[str]:
    name = f"patch-{next(_counter)}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    return name


def _request(api: client.ApiClient, method: str, path: str, body: Any, content_type: str) -> Any:
    """A raw request with an explicit patch content type (as kubectl sends them)."""
    from kubernetes.dynamic import DynamicClient

    return DynamicClient(api).request(method, path, body=body, content_type=content_type)


def _deployment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]},
                        {"name": "sidecar", "image": "side:1"},
                    ]
                },
            },
        },
    }


def test_json_patch_applies_operations_in_order(api: client.ApiClient, ns: str) -> None:
    """A JSON patch (RFC 6902) is a list of operations applied in order."""
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "j"}, "data": {"a": "1"}})
    ops = [
        {"op": "add", "path": "/data/b", "value": "2"},
        {"op": "remove", "path": "/data/a"},
        {"op": "add", "path": "/metadata/labels", "value": {"x": "y"}},
    ]
    out = _request(
        api, "PATCH", f"/api/v1/namespaces/{ns}/configmaps/j", ops, "application/json-patch+json"
    )
    assert dict(out.data) == {"b": "2"}
    assert dict(out.metadata.labels) == {"x": "y"}


def test_json_patch_failed_test_changes_nothing(api: client.ApiClient, ns: str) -> None:
    """If a `test` operation fails, the whole patch is rejected and nothing changes."""
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "t"}, "data": {"a": "1"}})
    ops = [
        {"op": "replace", "path": "/data/a", "value": "9"},
        {"op": "test", "path": "/data/a", "value": "1"},
    ]
    with pytest.raises(ApiException) as info:
        _request(
            api,
            "PATCH",
            f"/api/v1/namespaces/{ns}/configmaps/t",
            ops,
            "application/json-patch+json",
        )
    assert info.value.status == 422
    assert core.read_namespaced_config_map("t", ns).data == {"a": "1"}


def test_merge_patch_null_deletes_and_lists_replace(api: client.ApiClient, ns: str) -> None:
    """A JSON merge patch (RFC 7386) deletes keys set to null and replaces lists whole."""
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(ns, _deployment("m"))
    patch = {
        "metadata": {"labels": {"x": "1"}},
        "spec": {"template": {"spec": {"containers": [{"name": "only", "image": "o:1"}]}}},
    }
    out = _request(
        api,
        "PATCH",
        f"/apis/apps/v1/namespaces/{ns}/deployments/m",
        patch,
        "application/merge-patch+json",
    )
    assert [c.name for c in out.spec.template.spec.containers] == ["only"]
    out = _request(
        api,
        "PATCH",
        f"/apis/apps/v1/namespaces/{ns}/deployments/m",
        {"metadata": {"labels": None}},
        "application/merge-patch+json",
    )
    assert out.metadata.labels is None


def test_strategic_merge_patch_merges_containers_by_name(api: client.ApiClient, ns: str) -> None:
    """Strategic merge patch merges lists by their patchMergeKey (containers by name)."""
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(ns, _deployment("s"))
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:2"}]}}}}
    out = apps.patch_namespaced_deployment("s", ns, patch)  # the client's default is SMP
    containers = {c.name: c.image for c in out.spec.template.spec.containers}
    assert containers == {"app": "app:2", "sidecar": "side:1"}
    env = out.spec.template.spec.containers[0].env
    assert [(e.name, e.value) for e in env] == [("A", "1")]


def test_strategic_merge_patch_delete_directive(api: client.ApiClient, ns: str) -> None:
    """`$patch: delete` in a list item removes the item with that merge key."""
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(ns, _deployment("d"))
    patch = {
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}
    }
    out = _request(
        api,
        "PATCH",
        f"/apis/apps/v1/namespaces/{ns}/deployments/d",
        patch,
        "application/strategic-merge-patch+json",
    )
    assert [c.name for c in out.spec.template.spec.containers] == ["app"]


def test_strategic_merge_patch_replace_directive(api: client.ApiClient, ns: str) -> None:
    """`$patch: replace` replaces a map instead of merging into it."""
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(ns, {"metadata": {"name": "r", "labels": {"a": "1"}}})
    patch = {"metadata": {"labels": {"$patch": "replace", "b": "2"}}}
    out = _request(
        api,
        "PATCH",
        f"/api/v1/namespaces/{ns}/configmaps/r",
        patch,
        "application/strategic-merge-patch+json",
    )
    assert dict(out.metadata.labels) == {"b": "2"}


def test_strategic_merge_patch_retain_keys(api: client.ApiClient, ns: str) -> None:
    """`$retainKeys` drops the keys of a retainKeys-strategy field that are not listed."""
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(ns, _deployment("k"))
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    out = _request(
        api,
        "PATCH",
        f"/apis/apps/v1/namespaces/{ns}/deployments/k",
        patch,
        "application/strategic-merge-patch+json",
    )
    assert out.spec.strategy.type == "Recreate"
    assert out.spec.strategy.rollingUpdate is None


def test_strategic_merge_patch_set_element_order(api: client.ApiClient, ns: str) -> None:
    """`$setElementOrder/<list>` fixes the order of a merged list (kubectl sends it)."""
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(ns, _deployment("o"))
    patch = {
        "spec": {
            "template": {
                "spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}]}
            }
        }
    }
    out = _request(
        api,
        "PATCH",
        f"/apis/apps/v1/namespaces/{ns}/deployments/o",
        patch,
        "application/strategic-merge-patch+json",
    )
    assert [c.name for c in out.spec.template.spec.containers] == ["sidecar", "app"]


def test_unknown_patch_content_type_is_415(api: client.ApiClient, ns: str) -> None:
    """A PATCH body in an unknown media type is rejected with 415 UnsupportedMediaType."""
    client.CoreV1Api(api).create_namespaced_config_map(ns, {"metadata": {"name": "u"}})
    with pytest.raises(ApiException) as info:
        _request(
            api, "PATCH", f"/api/v1/namespaces/{ns}/configmaps/u", "data: {}", "application/yaml"
        )
    assert info.value.status == 415


def test_scale_subresource_reads_and_writes_replicas(api: client.ApiClient, ns: str) -> None:
    """The scale subresource exposes spec.replicas and the selector as a Scale object."""
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(ns, _deployment("sc"))
    scale = apps.read_namespaced_deployment_scale("sc", ns)
    assert scale.spec.replicas == 1
    assert scale.status.selector == "app=sc"
    apps.patch_namespaced_deployment_scale("sc", ns, {"spec": {"replicas": 3}})
    assert apps.read_namespaced_deployment("sc", ns).spec.replicas == 3


def test_status_subresource_separates_spec_and_status(api: client.ApiClient, ns: str) -> None:
    """Writes to the main resource ignore status; writes to /status change only status."""
    core = client.CoreV1Api(api)
    pvc = {
        "metadata": {"name": "st"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    core.create_namespaced_persistent_volume_claim(ns, pvc)
    bound = {"phase": "Bound"}
    core.patch_namespaced_persistent_volume_claim(
        "st", ns, {"metadata": {"labels": {"a": "b"}}, "status": bound}
    )
    got = core.read_namespaced_persistent_volume_claim("st", ns)
    assert got.metadata.labels == {"a": "b"}
    assert got.status.phase == "Pending"
    core.patch_namespaced_persistent_volume_claim_status(
        "st", ns, {"metadata": {"labels": {"a": "c"}}, "status": bound}
    )
    got = core.read_namespaced_persistent_volume_claim("st", ns)
    assert got.status.phase == "Bound"
    assert got.metadata.labels == {"a": "b"}


def test_patch_records_update_managed_fields(api: client.ApiClient, ns: str) -> None:
    """Non-apply writes record an Update entry in managedFields for their fieldManager."""
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(
        ns, {"metadata": {"name": "mf"}, "data": {"a": "1"}}, field_manager="creator"
    )
    core.patch_namespaced_config_map("mf", ns, {"data": {"b": "2"}}, field_manager="patcher")
    entries = {
        e.manager: e for e in core.read_namespaced_config_map("mf", ns).metadata.managed_fields
    }
    assert entries["creator"].operation == "Update"
    assert entries["creator"].fields_v1 == {"f:data": {".": {}, "f:a": {}}}
    assert entries["patcher"].fields_v1 == {"f:data": {"f:b": {}}}


def test_missing_kind_defaults_to_the_endpoint(api: client.ApiClient, ns: str) -> None:
    """An object without apiVersion/kind is decoded as the endpoint's kind; a wrong kind is 400."""
    from kubernetes.dynamic import DynamicClient

    dyn = DynamicClient(api)
    path = f"/api/v1/namespaces/{ns}/configmaps"
    dyn.request("POST", path, body={"metadata": {"name": "nokind"}})
    with pytest.raises(ApiException) as info:
        dyn.request(
            "POST", path, body={"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "wrong"}}
        )
    assert info.value.status == 400
    assert json.loads(info.value.body)["reason"] == "BadRequest"
