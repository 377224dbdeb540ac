"""``adopt`` against the KubeEmulator: portal-, chart- and library-made gateways, then deploy.

Objects are created the way their users create them: ``kubectl apply`` (client-side) for the
portal's YAML and the chart's output, ``deploy`` for the library's own. The emulator is a real
HTTP API server; the library talks to it with the unmodified ``kubernetes`` client.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from apim_selfhosted import InvalidManifestError, KubernetesApplier, SpecError, deploy
from apim_selfhosted.adoption import adopt, spec_from_manifests
from apim_selfhosted.helm import spec_from_helm_values
from apim_selfhosted.models import DeploymentSpec
from apim_selfhosted.rendering import render
from apim_selfhosted.testing.kube.emulator import KubeEmulator

FIXTURES = Path(__file__).resolve().parent / "fixtures"
KUBECTL = str(Path(sys.executable).with_name("kubectl"))
IDS = {"subscription_id": "sub-1", "resource_group": "rg-1"}


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


def _namespace(emulator: KubeEmulator, name: str) -> None:
    _kubectl(
        emulator,
        "apply",
        "-f",
        "-",
        stdin=f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n",
    )


def _pods(kube: KubernetesApplier, namespace: str) -> set[str]:
    return {p["metadata"]["name"] for p in kube.list_objects("v1", "Pod", namespace)}


def _library_spec(namespace: str) -> DeploymentSpec:
    return DeploymentSpec.model_validate(
        {
            "gateway": {
                "subscription_id": "00000000-0000-0000-0000-0000000000aa",
                "resource_group": "rg-gateways",
                "service_name": "contoso",
                "name": "gw-lib",
            },
            "namespace": namespace,
            "replicas": 2,
            "auth": {"kind": "existing-secret", "secret_name": "gw-lib-token"},
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
            "high_availability": {"enabled": True},
            "config_backup": {"enabled": True, "access_mode": "ReadWriteOnce"},
            "common_labels": {"team": "edge"},
        }
    )


def test_a_library_made_gateway_is_adopted_without_restarting_pods(
    emulator: KubeEmulator, kube: KubernetesApplier
) -> None:
    namespace = "adopt-own"
    _namespace(emulator, namespace)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "gw-lib-token", "namespace": namespace},
        "stringData": {"value": "GatewayKey gw-lib&202612010000&b3duLXNpZ25hdHVyZQ=="},
    }
    _kubectl(emulator, "apply", "-f", "-", stdin=yaml.safe_dump(secret))
    spec = _library_spec(namespace)
    first = deploy(spec, management=None, kube=kube, allow_lint_errors=True, run_verify=False)
    assert first.ok, first.error
    pods = _pods(kube, namespace)

    result = adopt(kube, namespace=namespace, name="gw-lib")

    # The identity comes back from the objects' annotations: no placeholder, nothing to fill in.
    assert result.report.ok, str(result.report)
    assert render(result.spec) == render(spec)
    assert not result.restarts_pods, result.restart_reasons
    assert {t.action for t in result.takeover} == {"taken-over", "left-alone"}
    assert not result.needs_force
    assert result.report.token is not None
    assert "b3duLXNpZ25hdHVyZQ" not in str(result) + repr(result) + result._repr_markdown_()

    again = deploy(
        result.spec, management=None, kube=kube, allow_lint_errors=True, run_verify=False
    )
    assert again.ok, again.error
    assert not again.changed
    assert _pods(kube, namespace) == pods


def test_a_change_after_adoption_is_predicted_as_a_restart(kube: KubernetesApplier) -> None:
    result = adopt(kube, namespace="adopt-own", name="gw-lib")
    bigger = result.spec.model_copy(update={"replicas": 3})
    newer = result.spec.model_copy(
        update={"image": result.spec.image.model_copy(update={"tag": "2.11.2"})}
    )
    live = kube.get("apps/v1", "Deployment", "gw-lib", "adopt-own")
    assert live is not None
    from apim_selfhosted.adoption import _template_differences

    def template(spec: DeploymentSpec) -> dict[str, Any]:
        dep = next(m for m in render(spec) if m["kind"] == "Deployment")
        return dep["spec"]["template"]  # type: ignore[no-any-return]

    assert _template_differences(live["spec"]["template"], template(bigger)) == []
    assert any(
        "image" in r for r in _template_differences(live["spec"]["template"], template(newer))
    )


def test_a_portal_made_gateway_is_adopted_and_the_report_tells_the_truth(
    emulator: KubeEmulator, kube: KubernetesApplier
) -> None:
    namespace = "adopt-portal"
    text = (FIXTURES / "adopt" / "portal-v2.yaml").read_text()
    _namespace(emulator, namespace)
    _kubectl(emulator, "-n", namespace, "apply", "-f", "-", stdin=text)

    result = adopt(kube, namespace=namespace, name="edge-west", **IDS)

    from_file, _ = spec_from_manifests(text, namespace=namespace, **IDS)
    assert render(result.spec) == render(from_file)
    assert result.report.token is not None
    assert result.report.token.gateway_id == "edge-west"
    actions = {(t.kind, t.live_name): t.action for t in result.takeover}
    assert actions[("Deployment", "edge-west")] == "taken-over"
    assert actions[("ConfigMap", "edge-west-env")] == "taken-over"
    assert actions[("Service", "edge-west-live-traffic")] == "taken-over"
    assert actions[("Service", "edge-west-instance-discovery")] == "taken-over"
    # The spec keeps the Deployment's selector and pod template labels: no restart.
    assert result.spec.existing is not None
    assert result.spec.existing.selector == {"app": "edge-west"}
    assert not result.restarts_pods, result.restart_reasons
    rules = {f.rule for f in result.findings}
    assert rules  # a portal deployment is not production-ready by the profile
    assert result.needs_force  # kubectl-client-side-apply owns the fields today
    # What the report says is what the API server does: the whole rendering applies in place,
    # the immutable selector included (tests/test_adopt_takeover.py deploys it).
    kube.apply(render(result.spec), dry_run=True, force=True)
    # Without the adopted selector the Deployment could not be updated in place.
    own = result.spec.model_copy(update={"existing": None})
    deployment = [m for m in render(own) if m["kind"] == "Deployment"]
    with pytest.raises(InvalidManifestError, match="selector"):
        kube.apply(deployment, dry_run=True, force=True)


def test_a_chart_made_gateway_is_adopted(emulator: KubeEmulator, kube: KubernetesApplier) -> None:
    namespace = "apim"
    objects = list(yaml.safe_load_all((FIXTURES / "helm" / "token.chart.yaml").read_text()))
    for obj in objects:  # what helm install adds to every object it creates
        obj["metadata"].setdefault("annotations", {}).update(
            {"meta.helm.sh/release-name": "edge", "meta.helm.sh/release-namespace": namespace}
        )
    _namespace(emulator, namespace)
    _kubectl(emulator, "apply", "-f", "-", stdin=yaml.safe_dump_all(objects))
    name = "edge-azure-api-management-gateway"

    result = adopt(kube, namespace=namespace, name=name, **IDS)

    values = yaml.safe_load((FIXTURES / "helm" / "token.values.yaml").read_text())
    from_values, _ = spec_from_helm_values(values, release_name="edge", namespace=namespace, **IDS)
    spec = result.spec
    assert spec.auth.kind == "existing-secret"
    assert (spec.auth.secret_name, spec.auth.key) == (name, "gateway-key")
    assert spec.gateway.name == "edge-gw"  # read from the token in the chart's Secret
    for field in (
        "replicas",
        "strategy",
        "probes",
        "termination_grace_period_seconds",
        "image",
        "observability",
        "high_availability",
        "service",
        "security_context",
    ):
        assert getattr(spec, field) == getattr(from_values, field), field
    actions = {(t.kind, t.live_name): t.action for t in result.takeover}
    # The chart's names and selector are kept: every object is taken over in place.
    assert actions[("Deployment", name)] == "taken-over"
    assert actions[("ConfigMap", name)] == "taken-over"
    assert actions[("Service", name)] == "taken-over"
    assert actions[("Service", f"{name}-instance-discovery")] == "taken-over"
    assert actions[("Secret", name)] == "left-alone"
    (helm,) = result.report.by_path(f"Deployment/{name}: metadata.annotations")
    assert "helm uninstall" in helm.message


def test_adopting_a_missing_deployment_says_so(kube: KubernetesApplier) -> None:
    with pytest.raises(SpecError, match="no Deployment 'nope'"):
        adopt(kube, namespace="default", name="nope")


def test_without_permission_to_read_secrets_the_report_says_what_was_not_read(
    emulator: KubeEmulator,
) -> None:
    read = ["get", "list", "watch"]
    emulator.add_user(
        "auditor",
        rules=[
            {
                "apiGroups": [""],
                "resources": ["configmaps", "services", "serviceaccounts"],
                "verbs": read,
            },
            {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": read},
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": read},
        ],
        namespace="adopt-portal",
    )
    with KubernetesApplier(emulator.api_client(user="auditor")) as limited:
        result = adopt(limited, namespace="adopt-portal", name="edge-west", **IDS)
    assert result.report.token is None
    assert result.report.by_path("Secret/edge-west-token")
    assert result.report.by_path("PodDisruptionBudget")
    assert result.spec.auth.kind == "existing-secret"
