"""KubeEmulator contract: CRUD, Status errors, lists, pagination, dry-run and deletion.

Each test states one behaviour from the Kubernetes API documentation (API concepts, object
names, namespaces, owners and dependents, dry-run) and checks it with the unmodified
``kubernetes`` client over HTTPS.
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
def core(kube_emulator_module: KubeEmulator) -> client.CoreV1Api:
    return client.CoreV1Api(kube_emulator_module.api_client())


@pytest.fixture(scope="module")
def apps(kube_emulator_module: KubeEmulator) -> client.AppsV1Api:
    return client.AppsV1Api(kube_emulator_module.api_client())


@pytest.fixture
def ns(core: client.CoreV1Api) -> Iterator[str]:
    name = f"crud-{next(_counter)}"
    core.create_namespace({"metadata": {"name": name}})
    return name


def _cm(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": {"k": "v"},
    }


def _status(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


def test_create_sets_uid_resource_version_and_creation_timestamp(
    core: client.CoreV1Api, ns: str
) -> None:
    """The server sets uid, resourceVersion and creationTimestamp on every object it creates."""
    cm = core.create_namespaced_config_map(ns, _cm("a"))
    assert cm.metadata.uid
    assert cm.metadata.resource_version
    assert cm.metadata.creation_timestamp
    again = core.read_namespaced_config_map("a", ns)
    assert again.metadata.uid == cm.metadata.uid


def test_not_found_is_a_status_with_reason_and_details(core: client.CoreV1Api, ns: str) -> None:
    """Errors are returned as a Status object: 404 NotFound `configmaps "x" not found`."""
    with pytest.raises(ApiException) as info:
        core.read_namespaced_config_map("x", ns)
    status = _status(info.value)
    assert info.value.status == 404
    assert status["kind"] == "Status"
    assert status["reason"] == "NotFound"
    assert status["message"] == 'configmaps "x" not found'
    assert status["details"] == {"name": "x", "kind": "configmaps"}


def test_create_twice_is_already_exists(core: client.CoreV1Api, ns: str) -> None:
    """Creating an object whose name is taken fails with 409 AlreadyExists."""
    core.create_namespaced_config_map(ns, _cm("dup"))
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map(ns, _cm("dup"))
    assert info.value.status == 409
    assert _status(info.value)["reason"] == "AlreadyExists"
    assert _status(info.value)["message"] == 'configmaps "dup" already exists'


def test_stale_resource_version_is_a_conflict(core: client.CoreV1Api, ns: str) -> None:
    """An update carrying an old resourceVersion is rejected with 409 Conflict."""
    cm = core.create_namespaced_config_map(ns, _cm("occ"))
    cm.data = {"k": "2"}
    core.replace_namespaced_config_map("occ", ns, cm)
    cm.data = {"k": "3"}
    with pytest.raises(ApiException) as info:
        core.replace_namespaced_config_map("occ", ns, cm)
    assert info.value.status == 409
    assert "the object has been modified" in _status(info.value)["message"]


def test_generation_changes_with_spec_only(apps: client.AppsV1Api, ns: str) -> None:
    """metadata.generation is incremented on changes to the spec, not to metadata."""
    dep = apps.create_namespaced_deployment(ns, _deployment("g"))
    assert dep.metadata.generation == 1
    apps.patch_namespaced_deployment("g", ns, {"metadata": {"labels": {"x": "y"}}})
    assert apps.read_namespaced_deployment("g", ns).metadata.generation == 1
    apps.patch_namespaced_deployment("g", ns, {"spec": {"replicas": 3}})
    assert apps.read_namespaced_deployment("g", ns).metadata.generation == 2


def test_namespace_must_exist(core: client.CoreV1Api) -> None:
    """Creating an object in a namespace that does not exist fails with 404."""
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map("no-such-ns", _cm("a"))
    assert info.value.status == 404
    assert _status(info.value)["message"] == 'namespaces "no-such-ns" not found'


def test_body_namespace_must_match_the_url(core: client.CoreV1Api, ns: str) -> None:
    """The namespace in the body must match the namespace of the request path."""
    body = _cm("m")
    body["metadata"]["namespace"] = "default"
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map(ns, body)
    assert info.value.status == 400
    assert "does not match the namespace" in _status(info.value)["message"]


def test_generate_name_adds_a_random_suffix(core: client.CoreV1Api, ns: str) -> None:
    """With generateName and no name, the server generates a unique name from the prefix."""
    body = _cm("")
    body["metadata"] = {"generateName": "gen-"}
    cm = core.create_namespaced_config_map(ns, body)
    assert cm.metadata.name.startswith("gen-")
    assert len(cm.metadata.name) == 9


def test_label_and_field_selectors_filter_lists(core: client.CoreV1Api, ns: str) -> None:
    """List requests filter by labelSelector (set-based too) and fieldSelector."""
    core.create_namespaced_config_map(ns, _cm("l1", app="web", tier="front"))
    core.create_namespaced_config_map(ns, _cm("l2", app="web", tier="back"))
    core.create_namespaced_config_map(ns, _cm("l3", app="db"))
    names = lambda r: [i.metadata.name for i in r.items]  # noqa: E731
    assert names(core.list_namespaced_config_map(ns, label_selector="app=web")) == ["l1", "l2"]
    assert names(core.list_namespaced_config_map(ns, label_selector="tier in (back)")) == ["l2"]
    assert names(core.list_namespaced_config_map(ns, label_selector="!tier")) == ["l3"]
    assert names(core.list_namespaced_config_map(ns, field_selector="metadata.name=l3")) == ["l3"]


def test_bad_label_selector_is_bad_request(core: client.CoreV1Api, ns: str) -> None:
    """An unparsable selector is a 400 BadRequest."""
    with pytest.raises(ApiException) as info:
        core.list_namespaced_config_map(ns, label_selector="a in (")
    assert info.value.status == 400


def test_limit_and_continue_page_through_a_list(core: client.CoreV1Api, ns: str) -> None:
    """limit returns a continue token; following it returns the rest, in order, no duplicates."""
    for i in range(5):
        core.create_namespaced_config_map(ns, _cm(f"p{i}"))
    first = core.list_namespaced_config_map(ns, limit=2)
    assert [i.metadata.name for i in first.items] == ["p0", "p1"]
    assert first.metadata._continue
    assert first.metadata.remaining_item_count == 3
    seen = [i.metadata.name for i in first.items]
    token = first.metadata._continue
    while token:
        page = core.list_namespaced_config_map(ns, limit=2, _continue=token)
        seen += [i.metadata.name for i in page.items]
        token = page.metadata._continue
    assert seen == [f"p{i}" for i in range(5)]


def test_list_across_namespaces(core: client.CoreV1Api, ns: str) -> None:
    """Listing at the cluster scope returns objects from every namespace."""
    core.create_namespaced_config_map(ns, _cm("everywhere"))
    items = core.list_config_map_for_all_namespaces(field_selector="metadata.name=everywhere")
    assert [(i.metadata.namespace, i.metadata.name) for i in items.items] == [(ns, "everywhere")]


def test_dry_run_create_persists_nothing(core: client.CoreV1Api, ns: str) -> None:
    """dryRun=All runs every stage of the request except persisting it."""
    out = core.create_namespaced_config_map(ns, _cm("dry"), dry_run="All")
    assert out.metadata.name == "dry"
    with pytest.raises(ApiException) as info:
        core.read_namespaced_config_map("dry", ns)
    assert info.value.status == 404


def test_dry_run_delete_keeps_the_object(core: client.CoreV1Api, ns: str) -> None:
    """A dry-run delete reports success but the object stays."""
    core.create_namespaced_config_map(ns, _cm("keep"))
    core.delete_namespaced_config_map("keep", ns, dry_run="All")
    assert core.read_namespaced_config_map("keep", ns).metadata.name == "keep"


def test_bad_dry_run_value_is_rejected(core: client.CoreV1Api, ns: str) -> None:
    """The only accepted dryRun value is All."""
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map(ns, _cm("x"), dry_run="Some")
    assert info.value.status == 400


def test_delete_with_stale_precondition_is_a_conflict(core: client.CoreV1Api, ns: str) -> None:
    """DeleteOptions preconditions (uid/resourceVersion) must match or the delete is 409."""
    core.create_namespaced_config_map(ns, _cm("pre"))
    opts = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="not-the-uid"))
    with pytest.raises(ApiException) as info:
        core.delete_namespaced_config_map("pre", ns, body=opts)
    assert info.value.status == 409


def test_finalizers_keep_an_object_until_removed(core: client.CoreV1Api, ns: str) -> None:
    """An object with finalizers gets a deletionTimestamp and stays until they are removed."""
    body = _cm("fin")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    core.create_namespaced_config_map(ns, body)
    core.delete_namespaced_config_map("fin", ns)
    held = core.read_namespaced_config_map("fin", ns)
    assert held.metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map("fin", ns, {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as info:
        core.read_namespaced_config_map("fin", ns)
    assert info.value.status == 404


def test_delete_collection_by_label(core: client.CoreV1Api, ns: str) -> None:
    """deletecollection deletes every object the selector matches, and only those."""
    core.create_namespaced_config_map(ns, _cm("d1", group="a"))
    core.create_namespaced_config_map(ns, _cm("d2", group="a"))
    core.create_namespaced_config_map(ns, _cm("d3", group="b"))
    core.delete_collection_namespaced_config_map(ns, label_selector="group=a")
    assert [i.metadata.name for i in core.list_namespaced_config_map(ns).items] == ["d3"]


def test_namespace_deletion_deletes_its_content(core: client.CoreV1Api) -> None:
    """Deleting a namespace deletes everything in it."""
    core.create_namespace({"metadata": {"name": "doomed"}})
    core.create_namespaced_config_map("doomed", _cm("c"))
    core.delete_namespace("doomed")
    assert core.list_namespaced_config_map("doomed").items == []
    with pytest.raises(ApiException) as info:
        core.read_namespace("doomed")
    assert info.value.status == 404


def test_owner_references_cascade_and_orphan(core: client.CoreV1Api, ns: str) -> None:
    """Background deletion removes dependents; Orphan removes only their ownerReferences."""
    owner = core.create_namespaced_config_map(ns, _cm("owner"))
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    dep = _cm("dependent")
    dep["metadata"]["ownerReferences"] = [ref]
    core.create_namespaced_config_map(ns, dep)
    core.delete_namespaced_config_map("owner", ns, propagation_policy="Orphan")
    orphan = core.read_namespaced_config_map("dependent", ns)
    assert not orphan.metadata.owner_references
    owner2 = core.create_namespaced_config_map(ns, _cm("owner2"))
    dep2 = _cm("dependent2")
    dep2["metadata"]["ownerReferences"] = [{**ref, "name": "owner2", "uid": owner2.metadata.uid}]
    core.create_namespaced_config_map(ns, dep2)
    core.delete_namespaced_config_map("owner2", ns, propagation_policy="Background")
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("dependent2", ns)


def test_unknown_resource_path_is_404_with_the_real_message(
    kube_emulator_module: KubeEmulator,
) -> None:
    """An unserved path gets 404 `the server could not find the requested resource`."""
    from kubernetes.dynamic import DynamicClient
    from kubernetes.dynamic.exceptions import NotFoundError

    dyn = DynamicClient(kube_emulator_module.api_client())
    with pytest.raises(NotFoundError) as info:
        dyn.request("GET", "/apis/apps/v1/namespaces/default/widgets")
    assert info.value.status == 404
    assert json.loads(info.value.body)["message"] == (
        "the server could not find the requested resource"
    )


def test_discovery_lists_resources_with_verbs_and_short_names(
    kube_emulator_module: KubeEmulator,
) -> None:
    """Discovery lists each resource: kind, namespaced, verbs, short names, subresources."""
    api = client.CoreV1Api(kube_emulator_module.api_client())
    resources = {r.name: r for r in api.get_api_resources().resources}
    assert resources["pods"].kind == "Pod"
    assert resources["pods"].namespaced
    assert "po" in resources["pods"].short_names
    assert "pods/log" in resources
    assert "pods/status" in resources
    assert not resources["namespaces"].namespaced
    groups = client.ApisApi(kube_emulator_module.api_client()).get_api_versions()
    assert "apps" in [g.name for g in groups.groups]
    version = client.VersionApi(kube_emulator_module.api_client()).get_code()
    assert version.git_version == f"v{kube_emulator_module.kube_version}.0"


def test_dynamic_client_round_trip(kube_emulator_module: KubeEmulator, ns: str) -> None:
    """The DynamicClient discovers resources and reads, creates and deletes through them."""
    from kubernetes.dynamic import DynamicClient

    dyn = DynamicClient(kube_emulator_module.api_client())
    leases = dyn.resources.get(api_version="coordination.k8s.io/v1", kind="Lease")
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "leader"},
        "spec": {"holderIdentity": "me"},
    }
    created = leases.create(body=lease, namespace=ns)
    assert created.spec.holderIdentity == "me"
    assert [i.metadata.name for i in leases.get(namespace=ns).items] == ["leader"]
    leases.delete(name="leader", namespace=ns)
    assert leases.get(namespace=ns).items == []


def _deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
            },
        },
    }


def test_namespace_finalize_subresource_sets_spec_finalizers(core: client.CoreV1Api) -> None:
    """PUT namespaces/<name>/finalize replaces spec.finalizers and nothing else."""
    core.create_namespace({"metadata": {"name": "fin-ns", "labels": {"keep": "me"}}})
    ns = core.read_namespace("fin-ns")
    assert ns.spec.finalizers == ["kubernetes"]
    ns.spec.finalizers = []
    ns.metadata.labels = {"changed": "no"}
    out = core.replace_namespace_finalize("fin-ns", ns)
    assert out.spec.finalizers is None or out.spec.finalizers == []
    assert core.read_namespace("fin-ns").metadata.labels["keep"] == "me"
