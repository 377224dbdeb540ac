"""Unit tests of the emulator's pure parts: patches, field sets, validation, defaults, OpenAPI.

The statements come from RFC 6902/7386, the strategic-merge-patch and server-side-apply
documentation, and the API reference of the defaulted fields.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from apim_selfhosted.testing.kube.apply import (
    ApplyConflict,
    apply,
    from_fields_v1,
    path_string,
    to_fields_v1,
)
from apim_selfhosted.testing.kube.defaults import Defaulter
from apim_selfhosted.testing.kube.openapi import Documents
from apim_selfhosted.testing.kube.patch import PatchError, json_patch, merge_patch, strategic_merge
from apim_selfhosted.testing.kube.protobuf import ProtobufError, decode
from apim_selfhosted.testing.kube.rbac import Authorizer
from apim_selfhosted.testing.kube.resources import by_key
from apim_selfhosted.testing.kube.schema import load_schemas, schema_dir
from apim_selfhosted.testing.kube.tables import human_duration
from apim_selfhosted.testing.kube.validation import Validator

S = load_schemas("1.33")
POD = S.for_kind("v1", "Pod")
DEPLOY = S.for_kind("apps/v1", "Deployment")


def test_rfc6902_move_copy_and_append() -> None:
    doc = {"a": {"b": 1}, "l": [1, 2]}
    out = json_patch(
        doc,
        [
            {"op": "copy", "from": "/a/b", "path": "/c"},
            {"op": "move", "from": "/a", "path": "/m"},
            {"op": "add", "path": "/l/0", "value": 0},
            {"op": "add", "path": "/l/-", "value": 3},
        ],
    )
    assert out == {"c": 1, "m": {"b": 1}, "l": [0, 1, 2, 3]}
    assert doc == {"a": {"b": 1}, "l": [1, 2]}  # input untouched


def test_rfc6902_errors() -> None:
    with pytest.raises(PatchError) as missing:
        json_patch({}, [{"op": "remove", "path": "/nope"}])
    assert not missing.value.bad_request
    with pytest.raises(PatchError) as malformed:
        json_patch({}, {"op": "add"})
    assert malformed.value.bad_request
    with pytest.raises(PatchError):
        json_patch({"l": []}, [{"op": "replace", "path": "/l/5", "value": 1}])


def test_rfc7386_examples() -> None:
    """The examples of RFC 7386 appendix A."""
    assert merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert merge_patch({"a": "b"}, {"a": None}) == {}
    assert merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge_patch(["a", "b"], ["c", "d"]) == ["c", "d"]
    assert merge_patch({"a": "foo"}, "bar") == "bar"
    assert merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert merge_patch({}, {"a": {"bb": {"ccc": None}}}) == {"a": {"bb": {}}}


def test_strategic_merge_primitive_lists() -> None:
    """Primitive lists with patchStrategy merge are unioned; $deleteFromPrimitiveList removes."""
    obj = {"metadata": {"finalizers": ["a", "b"]}}
    out = strategic_merge(obj, {"metadata": {"finalizers": ["c", "a"]}}, S, POD)
    assert out["metadata"]["finalizers"] == ["a", "b", "c"]
    out = strategic_merge(obj, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}, S, POD)
    assert out["metadata"]["finalizers"] == ["b"]


def test_strategic_merge_atomic_list_replaces() -> None:
    """A list without a merge strategy (container args) is replaced whole."""
    obj = {"spec": {"containers": [{"name": "a", "args": ["x", "y"]}]}}
    patch = {"spec": {"containers": [{"name": "a", "args": ["z"]}]}}
    out = strategic_merge(obj, patch, S, POD)
    assert out["spec"]["containers"][0]["args"] == ["z"]


def test_strategic_merge_requires_merge_key() -> None:
    with pytest.raises(PatchError):
        strategic_merge({"spec": {}}, {"spec": {"containers": [{"image": "x"}]}}, S, POD)


def test_fields_v1_round_trip_and_path_strings() -> None:
    members = {
        ("f:metadata", "f:labels", "f:app"),
        ("f:spec", "f:ports", 'k:{"port":80,"protocol":"TCP"}'),
        ("f:spec", "f:ports", 'k:{"port":80,"protocol":"TCP"}', "f:name"),
        ("f:metadata", "f:finalizers", 'v:"x"'),
    }
    tree = to_fields_v1(members)
    assert tree["f:spec"]["f:ports"]['k:{"port":80,"protocol":"TCP"}'] == {".": {}, "f:name": {}}
    assert from_fields_v1(json.loads(json.dumps(tree))) == members
    assert path_string(("f:spec", "f:ports", 'k:{"port":80,"protocol":"TCP"}')) == (
        '.spec.ports[port=80,protocol="TCP"]'
    )
    assert path_string(("f:metadata", "f:finalizers", 'v:"x"')) == '.metadata.finalizers[="x"]'


def _dep(containers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": containers}}},
    }


def test_apply_removes_list_items_the_manager_stopped_applying() -> None:
    two = _dep([{"name": "a", "image": "a"}, {"name": "b", "image": "b"}])
    first = apply(
        None, two, manager="m", force=False, api_version="apps/v1", schemas=S, node=DEPLOY, now="t"
    )
    one = _dep([{"name": "a", "image": "a"}])
    second = apply(
        first.obj,
        one,
        manager="m",
        force=False,
        api_version="apps/v1",
        schemas=S,
        node=DEPLOY,
        now="t",
    )
    names = [c["name"] for c in second.obj["spec"]["template"]["spec"]["containers"]]
    assert names == ["a"]


def test_apply_keeps_items_another_manager_owns() -> None:
    first = apply(
        None,
        _dep([{"name": "a", "image": "a"}]),
        manager="m",
        force=False,
        api_version="apps/v1",
        schemas=S,
        node=DEPLOY,
        now="t",
    )
    both = apply(
        first.obj,
        _dep([{"name": "b", "image": "b"}]),
        manager="other",
        force=False,
        api_version="apps/v1",
        schemas=S,
        node=DEPLOY,
        now="t",
    )
    names = [c["name"] for c in both.obj["spec"]["template"]["spec"]["containers"]]
    assert names == ["a", "b"]


def test_apply_conflict_lists_manager_and_path() -> None:
    first = apply(
        None,
        _dep([{"name": "a", "image": "a:1"}]),
        manager="m",
        force=False,
        api_version="apps/v1",
        schemas=S,
        node=DEPLOY,
        now="t",
    )
    with pytest.raises(ApplyConflict) as info:
        apply(
            first.obj,
            _dep([{"name": "a", "image": "a:2"}]),
            manager="n",
            force=False,
            api_version="apps/v1",
            schemas=S,
            node=DEPLOY,
            now="t",
        )
    assert info.value.conflicts == [('"m"', '.spec.template.spec.containers[name="a"].image')]


def test_validator_quantities_and_ports() -> None:
    v = Validator(S)
    pod = {
        "metadata": {"name": "p"},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "x",
                    "resources": {"requests": {"cpu": "100m", "memory": "12x"}},
                    "ports": [{"containerPort": 70000}],
                }
            ]
        },
    }
    fields = sorted(f for _, f, _ in v.validate(by_key("pods"), pod))
    assert fields == [
        "spec.containers[0].ports[0].containerPort",
        "spec.containers[0].resources.requests[memory]",
    ]


def test_validator_enum_and_required() -> None:
    v = Validator(S)
    svc = {"metadata": {"name": "s"}, "spec": {"type": "Bogus", "ports": [{"port": 80}]}}
    causes = v.validate(by_key("services"), svc)
    assert causes[0][0] == "FieldValueNotSupported"
    assert causes[0][1] == "spec.type"


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.27", "IfNotPresent"),
        ("registry:5000/app", "Always"),
        ("registry:5000/app:2", "IfNotPresent"),
        ("app@sha256:abc", "IfNotPresent"),
    ],
)
def test_image_pull_policy_default(image: str, policy: str) -> None:
    pod: dict[str, Any] = {"spec": {"containers": [{"name": "c", "image": image}]}}
    Defaulter().apply(by_key("pods"), pod)
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_cluster_ips_are_unique_and_kept_on_update() -> None:
    d = Defaulter()
    svcs = [{"spec": {"ports": [{"port": 80}]}} for _ in range(50)]
    for svc in svcs:
        d.apply(by_key("services"), svc)
    ips = {s["spec"]["clusterIP"] for s in svcs}
    assert len(ips) == 50
    update = {"spec": {"ports": [{"port": 80}]}}
    d.apply(by_key("services"), update, old=svcs[0])
    assert update["spec"]["clusterIP"] == svcs[0]["spec"]["clusterIP"]


def test_rbac_wildcards_and_subresources() -> None:
    auth = Authorizer(None)
    user = auth.add_user(
        "u", rules=[{"apiGroups": ["*"], "resources": ["deployments/*"], "verbs": ["get"]}]
    )
    assert auth.allowed(user, "get", "apps", "deployments/scale", "ns", "d")
    assert not auth.allowed(user, "get", "apps", "deployments", "ns", "d")
    with pytest.raises(ValueError, match="verbs"):
        auth.add_user("v", rules=[{"apiGroups": [""], "resources": ["pods"]}])


def test_openapi_v3_keeps_patch_metadata_and_int_or_string() -> None:
    docs = Documents(S, kube_version="1.33")
    doc = json.loads(docs.openapi_v3("apis/apps/v1") or b"{}")
    schemas = doc["components"]["schemas"]
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["items"] == {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}
    int_or_string = schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    assert int_or_string["format"] == "int-or-string"
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" in patch["requestBody"]["content"]
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]


def test_unknown_kube_version_is_refused() -> None:
    with pytest.raises(ValueError, match="kube_version"):
        schema_dir("1.2")


def test_protobuf_rejects_other_bodies() -> None:
    with pytest.raises(ProtobufError):
        decode(b'{"json": true}')


def test_human_durations() -> None:
    assert [human_duration(s) for s in (0, 59, 120, 599, 3600, 36000, 90000)] == [
        "0s",
        "59s",
        "2m",
        "9m59s",
        "60m",
        "10h",
        "25h",
    ]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("kube_version", "1.2"),
        ("ready_delay", -1.0),
        ("bookmark_interval", 0.0),
        ("history", 0),
        ("port", 70000),
    ],
)
def test_emulator_options_are_checked_before_starting(option: str, value: Any) -> None:
    from apim_selfhosted.testing import KubeEmulator

    with pytest.raises(ValueError, match=option):
        KubeEmulator(**{option: value})


def test_apply_keeps_a_map_whose_node_was_owned_but_whose_keys_are_still_applied() -> None:
    """A map node owned from an Update-style record ('.') is not pruned while keys under it are
    still applied (what kubectl's client-side to server-side migration produces)."""
    cfg = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "labels": {"a": "1"}},
        "data": {"k": "v"},
    }
    node = S.for_kind("v1", "ConfigMap")
    live = dict(cfg)
    live["metadata"] = {
        **cfg["metadata"],
        "managedFields": [
            {
                "manager": "m",
                "operation": "Apply",
                "apiVersion": "v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:data": {".": {}, "f:k": {}},
                    "f:metadata": {"f:labels": {".": {}, "f:a": {}}},
                },
            }
        ],
    }
    out = apply(
        live, cfg, manager="m", force=False, api_version="v1", schemas=S, node=node, now="t"
    )
    assert out.obj["data"] == {"k": "v"}
    assert out.obj["metadata"]["labels"] == {"a": "1"}


def test_wait_idle_timeout_is_keyword_only() -> None:
    """``wait_idle`` takes its timeout by keyword on the emulator and the controllers."""
    import inspect

    from apim_selfhosted.testing.kube.controller import Controllers
    from apim_selfhosted.testing.kube.emulator import KubeEmulator

    for method in (KubeEmulator.wait_idle, Controllers.wait_idle):
        param = inspect.signature(method).parameters["timeout"]
        assert param.kind is inspect.Parameter.KEYWORD_ONLY, method.__qualname__
