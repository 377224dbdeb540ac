"""In-place takeover: ``deploy(adopt(...).spec)`` keeps the pods of a portal- or chart-made gateway.

The gateway is created the way its users create it (``kubectl apply``, client-side, for the
portal's YAML; the chart's output for Helm), in the KubeEmulator (a real HTTP API server, the
unmodified ``kubernetes`` client). After adopt + deploy the same pods (names and uids) and the
same ReplicaSet run, the pod template is unchanged, the objects carry the library's labels and
its field manager owns the applied fields; a second deploy changes nothing and a real change
(the image tag) rolls the pods.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from apim_selfhosted import KubernetesApplier, deploy
from apim_selfhosted.adoption import adopt
from apim_selfhosted.models import DeploymentSpec, ExistingObjects
from apim_selfhosted.rendering import LABEL_MANAGED_BY, MANAGED_BY, render, selector_labels
from apim_selfhosted.steps import verify
from apim_selfhosted.testing.kube.emulator import KubeEmulator

FIXTURES = Path(__file__).resolve().parent / "fixtures"
KUBECTL = str(Path(sys.executable).with_name("kubectl"))
IDS = {"subscription_id": "sub-1", "resource_group": "rg-1"}
# Before the fixture tokens expire (2026-12-01) and outside the profile's renewal horizon.
NOW = datetime(2026, 10, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def emulator() -> Iterator[KubeEmulator]:
    with KubeEmulator(ready_delay=0.02) as kube:
        yield kube


@pytest.fixture(scope="module")
def kube(emulator: KubeEmulator) -> Iterator[KubernetesApplier]:
    with KubernetesApplier.from_kubeconfig(str(emulator.kubeconfig_path)) as applier:
        yield applier


def _kubectl(emulator: KubeEmulator, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [KUBECTL, "--kubeconfig", str(emulator.kubeconfig_path), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _state(kube: KubernetesApplier, namespace: str, name: str) -> dict[str, Any]:
    dep = kube.get("apps/v1", "Deployment", name, namespace)
    assert dep is not None
    return {
        "pods": sorted(
            (p["metadata"]["name"], p["metadata"]["uid"])
            for p in kube.list_objects("v1", "Pod", namespace)
            if not p["metadata"].get("deletionTimestamp")
        ),
        "replicasets": sorted(
            (r["metadata"]["name"], r["metadata"]["uid"])
            for r in kube.list_objects("apps/v1", "ReplicaSet", namespace)
        ),
        "template": dep["spec"]["template"],
        "generation": dep["metadata"]["generation"],
    }


def _managers(obj: dict[str, Any]) -> dict[str, str]:
    return {m["manager"]: m["operation"] for m in obj["metadata"].get("managedFields") or []}


def _take_over(
    kube: KubernetesApplier,
    namespace: str,
    name: str,
    *,
    objects: list[tuple[str, str, str]],
    kept_by_others: str | None = None,
) -> DeploymentSpec:
    before = _state(kube, namespace, name)
    assert len(before["pods"]) >= 1

    result = adopt(kube, namespace=namespace, name=name, **IDS)

    assert result.spec.existing is not None
    assert not result.restarts_pods, result.restart_reasons
    actions = {(t.kind, t.live_name): t.action for t in result.takeover}
    assert actions[("Deployment", name)] == "taken-over"
    assert result.needs_force  # kubectl / helm own the fields today
    assert "pods restart: no" in str(result)

    done = deploy(
        result.spec,
        management=None,
        kube=kube,
        allow_lint_errors=True,
        run_verify=False,
        force=True,
    )
    assert done.ok, done.error

    after = _state(kube, namespace, name)
    assert after["pods"] == before["pods"]  # no pod restarted
    assert after["replicasets"] == before["replicasets"]  # no new ReplicaSet
    assert after["template"] == before["template"]  # the pod template is byte-for-byte the same
    for api_version, kind, obj_name in objects:
        obj = kube.get(api_version, kind, obj_name, namespace)
        assert obj is not None, (kind, obj_name)
        assert obj["metadata"]["labels"][LABEL_MANAGED_BY] == MANAGED_BY, (kind, obj_name)
        assert _managers(obj).get("apim-selfhosted") == "Apply", (kind, obj_name)

    again = deploy(
        result.spec,
        management=None,
        kube=kube,
        allow_lint_errors=True,
        run_verify=False,
    )
    assert again.ok, again.error
    assert not again.changed
    assert _state(kube, namespace, name) == after

    report = verify(result.spec, kube=kube, now=NOW)
    if kept_by_others is None:
        assert report.ok, str(report)
    else:
        # Every check but 'objects' is ok; 'objects' sees exactly the fields the previous
        # manager still owns (see REQUESTS.md: verify could leave other managers' fields be).
        assert [c.name for c in report.checks if c.status != "ok"] == ["objects"], str(report)
        (objects_check,) = (c for c in report.checks if c.name == "objects")
        drift = [e for e in objects_check.evidence if "differs" in e]
        assert drift == [f"Deployment {namespace}/{name}: differs at {kept_by_others}"], drift
    return result.spec


def _roll(kube: KubernetesApplier, spec: DeploymentSpec, name: str) -> None:
    before = _state(kube, spec.namespace, name)
    newer = spec.model_copy(update={"image": spec.image.model_copy(update={"tag": "2.11.2"})})
    # kubectl / helm still co-own the fields whose value the takeover applied unchanged (shared
    # ownership, as on a real API server), so changing one of them needs force once more.
    done = deploy(
        newer, management=None, kube=kube, allow_lint_errors=True, run_verify=False, force=True
    )
    assert done.ok, done.error
    after = _state(kube, spec.namespace, name)
    assert not set(after["pods"]) & set(before["pods"])  # every pod was replaced
    assert after["template"]["spec"]["containers"][0]["image"].endswith(":2.11.2")
    # The pods keep the adopted labels: the immutable selector still matches them.
    assert after["template"]["metadata"]["labels"] == before["template"]["metadata"]["labels"]


def test_a_portal_made_gateway_is_taken_over_without_restarting_pods(
    emulator: KubeEmulator, kube: KubernetesApplier
) -> None:
    namespace, name = "takeover-portal", "edge-west"
    _kubectl(emulator, "create", "namespace", namespace)
    text = (FIXTURES / "adopt" / "portal-v2.yaml").read_text()
    _kubectl(emulator, "-n", namespace, "apply", "-f", "-", stdin=text)

    spec = _take_over(
        kube,
        namespace,
        name,
        objects=[
            ("apps/v1", "Deployment", name),
            ("v1", "ConfigMap", f"{name}-env"),
            ("v1", "Service", f"{name}-live-traffic"),
            ("v1", "Service", f"{name}-instance-discovery"),
        ],
    )
    assert selector_labels(spec) == {"app": name}
    _roll(kube, spec, name)


def test_a_settings_change_rolls_the_pods_through_the_config_hash(
    kube: KubernetesApplier,
) -> None:
    # Adopting a gateway the library has taken over gives the same kept identity again.
    again = adopt(kube, namespace="takeover-portal", name="edge-west", **IDS)
    assert not again.restarts_pods, again.restart_reasons
    spec = again.spec
    assert spec.existing is not None
    assert spec.existing.selector == {"app": "edge-west"}
    same = next(m for m in render(spec) if m["kind"] == "Deployment")
    assert "apim-selfhosted.io/config-hash" not in same["spec"]["template"]["metadata"].get(
        "annotations", {}
    )
    changed = spec.model_copy(update={"additional_settings": {"log.console.level": "debug"}})
    dep = next(m for m in render(changed) if m["kind"] == "Deployment")
    assert "apim-selfhosted.io/config-hash" in dep["spec"]["template"]["metadata"]["annotations"]

    before = _state(kube, "takeover-portal", "edge-west")
    done = deploy(changed, management=None, kube=kube, allow_lint_errors=True, run_verify=False)
    assert done.ok, done.error
    after = _state(kube, "takeover-portal", "edge-west")
    assert not set(after["pods"]) & set(before["pods"])  # new settings: the pods rolled
    cm = kube.get("v1", "ConfigMap", "edge-west-env", "takeover-portal")
    assert cm is not None
    assert cm["data"]["log.console.level"] == "debug"


def test_existing_objects_are_validated_before_anything_is_written() -> None:
    with pytest.raises(ValueError, match="pod_labels: must contain every selector label"):
        ExistingObjects(selector={"app": "gw"}, pod_labels={"app": "other"})
    with pytest.raises(ValueError, match="at least one label"):
        ExistingObjects(selector={}, pod_labels={})
    with pytest.raises(ValueError, match="DNS-1123"):
        ExistingObjects(selector={"a": "b"}, pod_labels={"a": "b"}, live_service="Not_A_Name")
    with pytest.raises(ValueError, match="invalid key"):
        ExistingObjects(selector={"a/b/c": "x"}, pod_labels={"a/b/c": "x"})


def test_without_existing_objects_render_is_unchanged() -> None:
    spec = DeploymentSpec.model_validate(
        {
            "gateway": {
                "subscription_id": "s",
                "resource_group": "rg",
                "service_name": "contoso",
                "name": "gw1",
            },
            "namespace": "apim",
        }
    )
    dep = next(m for m in render(spec) if m["kind"] == "Deployment")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert labels[LABEL_MANAGED_BY] == MANAGED_BY
    assert dep["spec"]["selector"]["matchLabels"] == selector_labels(spec)
    assert "apim-selfhosted.io/config-hash" in dep["spec"]["template"]["metadata"]["annotations"]


def _chart_objects(namespace: str, *, high_availability: bool) -> list[dict[str, Any]]:
    """The chart's output for tests/fixtures/helm/token.values.yaml, as helm install applies it.

    ``high_availability=False`` is what the chart renders with ``highAvailability.enabled:
    false``: no PodDisruptionBudget, no topology spread, the setting ``false``.
    """
    objects = list(yaml.safe_load_all((FIXTURES / "helm" / "token.chart.yaml").read_text()))
    out = []
    for obj in objects:
        obj["metadata"]["namespace"] = namespace
        obj["metadata"].setdefault("annotations", {}).update(
            {"meta.helm.sh/release-name": "edge", "meta.helm.sh/release-namespace": namespace}
        )
        if not high_availability:
            if obj["kind"] == "PodDisruptionBudget":
                continue
            if obj["kind"] == "Deployment":
                pod = obj["spec"]["template"]["spec"]
                pod.pop("topologySpreadConstraints")
                for env in pod["containers"][0]["env"]:
                    if env["name"] == "runtime.deployment.highAvailability.enabled":
                        env["value"] = "false"
        out.append(obj)
    return out


def _helm_install(kube: KubernetesApplier, namespace: str, objects: list[dict[str, Any]]) -> None:
    kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}])
    # helm writes with its own field manager (Update operations, like client-side apply).
    for obj in objects:
        kube.create(obj, field_manager="helm")
    kube.wait_for_rollout(CHART_NAME, namespace, timeout=30)


CHART_NAME = "edge-azure-api-management-gateway"
CHART_OBJECTS = [
    ("apps/v1", "Deployment", CHART_NAME),
    ("v1", "ConfigMap", CHART_NAME),
    ("v1", "Service", CHART_NAME),
    ("v1", "Service", f"{CHART_NAME}-instance-discovery"),
]


def test_a_chart_made_gateway_is_taken_over_without_restarting_pods(
    kube: KubernetesApplier,
) -> None:
    namespace = "takeover-chart"
    _helm_install(kube, namespace, _chart_objects(namespace, high_availability=False))

    spec = _take_over(
        kube,
        namespace,
        CHART_NAME,
        objects=CHART_OBJECTS,
        # The chart's runtime.deployment.* and neighborhood.host env entries stay (helm owns
        # them; the same settings are in the library's ConfigMap).
        kept_by_others="spec.template.spec.containers[0].env",
    )
    assert spec.existing is not None
    assert spec.existing.container == "azure-api-management-gateway"
    assert (spec.config_map_name, spec.live_service_name) == (CHART_NAME, CHART_NAME)
    _roll(kube, spec, CHART_NAME)


def test_a_chart_made_gateway_with_zone_spreading_rolls_once_and_says_why(
    kube: KubernetesApplier,
) -> None:
    # The chart spreads pods over zones only; the library's high availability also spreads
    # them over nodes. That is a real change of the pod template: adopt predicts it, and
    # deploy rolls the pods once, keeping the names, the selector and the pod labels.
    namespace = "takeover-chart-ha"
    _helm_install(kube, namespace, _chart_objects(namespace, high_availability=True))
    result = adopt(kube, namespace=namespace, name=CHART_NAME, **IDS)
    assert result.restarts_pods
    assert result.restart_reasons == ("spec.topologySpreadConstraints changes",)
    before = _state(kube, namespace, CHART_NAME)
    done = deploy(
        result.spec,
        management=None,
        kube=kube,
        allow_lint_errors=True,
        run_verify=False,
        force=True,
    )
    assert done.ok, done.error
    after = _state(kube, namespace, CHART_NAME)
    assert not set(after["pods"]) & set(before["pods"])
    assert after["template"]["metadata"] == before["template"]["metadata"]
    pdb = kube.get("policy/v1", "PodDisruptionBudget", CHART_NAME, namespace)
    assert pdb is not None
    assert _managers(pdb).get("apim-selfhosted") == "Apply"
    again = deploy(
        result.spec, management=None, kube=kube, allow_lint_errors=True, run_verify=False
    )
    assert again.ok, again.error
    assert not again.changed
