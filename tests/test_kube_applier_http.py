"""KubernetesApplier over real HTTP against the KubeEmulator: apply, diff, prune, error mapping.

The unmodified ``kubernetes`` client talks to the emulator; nothing is mocked.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from apim_selfhosted import (
    AuthorizationError,
    DeploymentSpec,
    FieldConflictError,
    Gateway,
    InvalidManifestError,
    KubernetesApplier,
    KubernetesError,
    Token,
)
from apim_selfhosted.rendering import render
from apim_selfhosted.testing.kube.emulator import KubeEmulator

SIGNATURE = "c2lnbmF0dXJlLW9mLXRoZS10b2tlbg=="
TOKEN = Token.parse(f"GatewayKey gw1&203001010000&{SIGNATURE}")


@pytest.fixture(scope="module")
def emulator() -> Iterator[KubeEmulator]:
    with KubeEmulator(controllers=False) as emu:
        yield emu


@pytest.fixture(autouse=True)
def _fresh_namespace(emulator: KubeEmulator) -> Iterator[None]:
    """Each test deploys to namespace apim; remove it (and everything in it) afterwards."""
    yield
    with KubernetesApplier.from_kubeconfig(str(emulator.kubeconfig_path)) as admin:
        admin.delete("v1", "Namespace", "apim")


@pytest.fixture
def kube(emulator: KubeEmulator) -> Iterator[KubernetesApplier]:
    with KubernetesApplier.from_kubeconfig(str(emulator.kubeconfig_path)) as applier:
        yield applier


def _spec(**changes: Any) -> DeploymentSpec:
    base = DeploymentSpec(
        gateway=Gateway(
            subscription_id="00000000-0000-0000-0000-000000000001",
            resource_group="rg",
            service_name="contoso",
            name="gw1",
        ),
        namespace="apim",
        create_namespace=True,
        replicas=2,
    )
    return DeploymentSpec.model_validate({**base.model_dump(), **changes})


def test_apply_creates_then_reports_unchanged(kube: KubernetesApplier) -> None:
    manifests = render(_spec(), TOKEN)
    first = kube.apply(manifests)
    assert [a.action for a in first] == ["created"] * len(manifests)
    assert next(a.kind for a in first) == "Namespace"
    second = kube.apply(manifests)
    assert {a.action for a in second} == {"unchanged"}, [str(a) for a in second]


def test_apply_reports_only_the_changed_object(kube: KubernetesApplier) -> None:
    kube.apply(render(_spec(), TOKEN))
    result = kube.apply(render(_spec(replicas=3), TOKEN))
    changed = [a.kind for a in result if a.action == "changed"]
    assert changed == ["Deployment"]
    live = kube.get("apps/v1", "Deployment", "gw1", "apim")
    assert live is not None
    assert live["spec"]["replicas"] == 3


def test_dry_run_writes_nothing(kube: KubernetesApplier, emulator: KubeEmulator) -> None:
    result = kube.apply(render(_spec(), TOKEN), dry_run=True)
    assert all(a.dry_run and a.action == "created" for a in result)
    assert kube.get("v1", "Namespace", "apim") is None
    kube.apply(render(_spec(), TOKEN))
    again = kube.apply(render(_spec(replicas=5), TOKEN), dry_run=True)
    assert [a.kind for a in again if a.action == "changed"] == ["Deployment"]
    live = kube.get("apps/v1", "Deployment", "gw1", "apim")
    assert live is not None
    assert live["spec"]["replicas"] == 2


def test_diff_shows_fields_and_redacts_secrets(kube: KubernetesApplier) -> None:
    spec = _spec()
    kube.apply(render(spec, TOKEN))
    plan = kube.diff(render(_spec(replicas=4), TOKEN))
    (update,) = [item for item in plan.items if item.action == "update"]
    assert update.kind == "Deployment"
    assert [(c.path, c.before, c.after) for c in update.changes] == [("spec.replicas", 2, 4)]
    assert not kube.diff(render(spec, TOKEN)).changed

    # A changed Secret value shows as redacted (a mutable, hand-made Secret).
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "extra", "namespace": "apim"},
        "stringData": {"value": "first-secret-value"},
    }
    kube.apply([secret])
    changed = copy.deepcopy(secret)
    changed["stringData"] = {"value": "second-secret-value"}
    text = str(kube.diff([changed])) + kube.diff([changed])._repr_markdown_()
    assert "data.value: <redacted> -> <redacted>" in text
    assert "secret-value" not in text
    assert "Zmlyc3Qtc2VjcmV0LXZhbHVl" not in text  # base64 of the first value


def test_diff_of_a_fresh_namespace_plans_creates(kube: KubernetesApplier) -> None:
    plan = kube.diff(render(_spec(), TOKEN))
    assert {item.action for item in plan.items} == {"create"}
    assert SIGNATURE not in str(plan)


def test_403_names_verb_resource_and_namespace(
    emulator: KubeEmulator, kube: KubernetesApplier
) -> None:
    kube.apply(render(_spec(), TOKEN))
    user = emulator.add_user(
        "deployer",
        namespace="apim",
        rules=[
            {"apiGroups": [""], "resources": ["*"], "verbs": ["*"]},
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list"]},
        ],
    )
    manifests = [m for m in render(_spec(replicas=3), TOKEN) if m["kind"] != "Namespace"]
    with (
        KubernetesApplier.from_kubeconfig(str(user.kubeconfig_path)) as limited,
        pytest.raises(AuthorizationError) as info,
    ):
        limited.apply(manifests)
    err = info.value
    assert err.system == "kubernetes"
    assert err.permission == "patch deployments.apps"
    assert err.namespace == "apim"
    assert "patch deployments.apps" in str(err)
    assert SIGNATURE not in str(err)


def test_422_carries_the_field_causes(kube: KubernetesApplier) -> None:
    bad = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "Not_A_Valid_Name", "namespace": "default"},
        "data": {"a": "b"},
    }
    with pytest.raises(InvalidManifestError) as info:
        kube.apply([bad])
    assert info.value.code == 422
    assert any(field == "metadata.name" for field, _ in info.value.causes)


def test_conflict_names_the_other_manager(kube: KubernetesApplier) -> None:
    manifests = render(_spec(), TOKEN)
    kube.apply(manifests)
    deployment = next(m for m in manifests if m["kind"] == "Deployment")
    other = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "gw1", "namespace": "apim"},
        "spec": {"replicas": 7},
    }
    kube.apply([other], field_manager="platform-team", force=True)
    with pytest.raises(FieldConflictError) as info:
        kube.apply([deployment])
    assert info.value.managers == ("platform-team",)
    assert any("replicas" in f for f in info.value.fields)
    # force takes the field back
    (applied,) = kube.apply([deployment], force=True)
    assert applied.action == "changed"


def test_prune_deletes_only_what_the_rendering_lost(kube: KubernetesApplier) -> None:
    with_policy = _spec(network_policy={})
    kube.apply(render(with_policy, TOKEN))
    assert kube.get("networking.k8s.io/v1", "NetworkPolicy", "gw1", "apim") is not None
    foreign = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "not-ours", "namespace": "apim", "labels": {"app": "gw1"}},
    }
    rotator_like = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": "gw1-rotator",
            "namespace": "apim",
            "labels": {
                "app.kubernetes.io/managed-by": "apim-selfhosted",
                "app.kubernetes.io/instance": "gw1",
                "apim-selfhosted.io/gateway": "gw1",
                "app.kubernetes.io/component": "rotator",
            },
        },
    }
    kube.apply([foreign, rotator_like])
    plain = _spec()
    manifests = render(plain, TOKEN)
    kube.apply(manifests)
    assert kube.prune(plain, keep=manifests, dry_run=True)
    assert kube.get("networking.k8s.io/v1", "NetworkPolicy", "gw1", "apim") is not None
    deleted = kube.prune(plain, keep=manifests)
    assert [str(ref) for ref in deleted] == ["NetworkPolicy apim/gw1"]
    assert kube.get("v1", "ConfigMap", "not-ours", "apim") is not None
    assert kube.get("v1", "ServiceAccount", "gw1-rotator", "apim") is not None
    assert kube.prune(plain, keep=manifests) == []


def test_prune_keeps_the_token_secret_the_deployment_uses(kube: KubernetesApplier) -> None:
    spec = _spec()
    old = render(spec, TOKEN)
    kube.apply(old)
    newer = Token.parse("GatewayKey gw1&203001020000&bmV3ZXItc2lnbmF0dXJl")
    new = render(spec, newer)
    new_secret = next(m for m in new if m["kind"] == "Secret")
    old_secret = next(m for m in old if m["kind"] == "Secret")
    # Only the new Secret exists in `keep`, but the live Deployment still reads the old one.
    kube.apply([new_secret])
    assert kube.prune(spec, keep=new) == []
    kube.apply(new)
    deleted = kube.prune(spec, keep=new)
    assert [ref.name for ref in deleted] == [old_secret["metadata"]["name"]]


def test_403_on_an_apply_that_creates_names_create(
    emulator: KubeEmulator, kube: KubernetesApplier
) -> None:
    kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apim"}}])
    user = emulator.add_user(
        "patcher",
        namespace="apim",
        rules=[{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "patch"]}],
    )
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "new-one", "namespace": "apim"},
        "data": {"a": "b"},
    }
    with (
        KubernetesApplier.from_kubeconfig(str(user.kubeconfig_path)) as limited,
        pytest.raises(AuthorizationError) as info,
    ):
        limited.apply([manifest])
    assert info.value.permission == "create configmaps"
    assert info.value.namespace == "apim"


def test_create_replace_patch_and_watch(kube: KubernetesApplier) -> None:
    kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apim"}}])
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "rotation", "namespace": "apim"},
        "spec": {"holderIdentity": "a"},
    }
    created = kube.create(lease)
    with pytest.raises(KubernetesError) as exists:
        kube.create(lease)
    assert exists.value.reason == "AlreadyExists"
    mine = copy.deepcopy(created)
    mine["spec"]["holderIdentity"] = "b"
    replaced = kube.replace(mine)
    assert replaced["spec"]["holderIdentity"] == "b"
    stale = copy.deepcopy(created)  # still the first resourceVersion
    stale["spec"]["holderIdentity"] = "c"
    with pytest.raises(KubernetesError) as conflict:
        kube.replace(stale)
    assert conflict.value.reason == "Conflict"
    patched = kube.patch(
        "coordination.k8s.io/v1",
        "Lease",
        "rotation",
        "apim",
        [
            {"op": "test", "path": "/spec/holderIdentity", "value": "b"},
            {"op": "replace", "path": "/spec/holderIdentity", "value": "d"},
        ],
        patch_type="json",
    )
    assert patched["spec"]["holderIdentity"] == "d"
    merged = kube.patch("v1", "Namespace", "apim", None, {"metadata": {"labels": {"x": "y"}}})
    assert merged["metadata"]["labels"]["x"] == "y"
    with pytest.raises(ValueError, match="patch_type"):
        kube.patch("v1", "Namespace", "apim", None, {}, patch_type="yaml")

    events = kube.watch(
        "coordination.k8s.io/v1",
        "Lease",
        "apim",
        field_selector="metadata.name=rotation",
        timeout=10,
    )
    first = next(events)
    assert (first["type"], first["object"]["spec"]["holderIdentity"]) == ("ADDED", "d")
    kube.patch(
        "coordination.k8s.io/v1", "Lease", "rotation", "apim", {"spec": {"holderIdentity": "e"}}
    )
    second = next(events)
    assert (second["type"], second["object"]["spec"]["holderIdentity"]) == ("MODIFIED", "e")
    events.close()
    kube.delete("coordination.k8s.io/v1", "Lease", "rotation", "apim")
    assert kube.get("coordination.k8s.io/v1", "Lease", "rotation", "apim") is None
