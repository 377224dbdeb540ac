"""Portal YAML -> spec -> render gives the same objects back (what they do, object by object)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from _manifest_essence import essence

from apim_selfhosted import SpecError
from apim_selfhosted.adoption import PLACEHOLDER, IssueKind, spec_from_manifests
from apim_selfhosted.models import MAX_BASE_NAME
from apim_selfhosted.rendering import render

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "adopt"
IDS = {"subscription_id": "sub-1", "resource_group": "rg-1"}


def _read(name: str) -> str:
    return (FIXTURES / name).read_text()


def _kinds(report: Any, path: str) -> set[str]:
    return {i.kind.value for i in report.by_path(path)}


# Differences left after reduction: essence key -> (report path explaining it, ours, theirs).
EXPECTED: dict[str, dict[str, tuple[str, Any, Any]]] = {
    "portal-v2.yaml": {
        "settings": (
            "Deployment/edge-west: settings.config.service.endpoint",
            {"config.service.endpoint": "https://contoso.configuration.azure-api.net"},
            {"config.service.endpoint": "contoso.configuration.azure-api.net"},
        ),
    },
    "config-backup.yaml": {
        # The example has no instance-discovery Service and no UDP ports; the library adds them.
        "services": ("service", "discovery added", None),
        "kinds": ("service", ["Service"], []),
        "ports": (
            "Deployment/edge-east: spec.template.spec.containers[0].ports",
            "udp added",
            None,
        ),
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_manifests_to_spec_render_the_same_objects(name: str) -> None:
    text = _read(name)
    theirs_objects = list(yaml.safe_load_all(text))
    spec, report = spec_from_manifests(text, namespace="apim", **IDS, source=name)
    assert report.ok, str(report)
    # The token Secret stays as it is (managed outside the library), so it is part of what runs.
    kept = [o for o in theirs_objects if o["kind"] == "Secret"]
    ours = essence(render(spec) + kept)
    theirs = essence(theirs_objects)
    for key in sorted(set(ours) | set(theirs)):
        if key not in EXPECTED[name]:
            assert ours[key] == theirs[key], f"{name}: {key} differs"
            continue
        path, our_part, their_part = EXPECTED[name][key]
        assert report.by_path(path), f"{name}: the report does not explain {key} ({path})"
        if key == "settings":
            diff_ours = {k: v for k, v in ours[key].items() if theirs[key].get(k) != v}
            diff_theirs = {k: v for k, v in theirs[key].items() if ours[key].get(k) != v}
            assert (diff_ours, diff_theirs) == (our_part, their_part)
        elif key == "services":
            assert ours[key]["live"] == theirs[key]["live"]
            assert "discovery" in ours[key]
            assert "discovery" not in theirs[key]
        elif key == "kinds":
            extra = list(ours[key])
            for kind in theirs[key]:
                extra.remove(kind)
            assert (extra, []) == (our_part, their_part)
        elif key == "ports":
            assert set(theirs[key]) < set(ours[key])
            assert {p for p in ours[key] if p not in theirs[key]} == {
                ("dc-heartbeat", 4291, "UDP"),
                ("rate-limit-dc", 4290, "UDP"),
            }


def test_portal_yaml_gives_the_portal_settings_and_names() -> None:
    spec, report = spec_from_manifests(_read("portal-v2.yaml"), **IDS)
    assert spec.namespace == "default"
    assert _kinds(report, "namespace") == {"assumed"}
    assert spec.base_name == "edge-west"
    assert spec.gateway.service_name == "contoso"
    assert spec.gateway.name == "edge-west"
    assert spec.auth.kind == "existing-secret"
    assert spec.image.tag == "v2"
    assert spec.strategy.max_unavailable == 0
    assert spec.service.external_traffic_policy == "Local"
    assert spec.common_labels == {"app": "edge-west"}
    assert spec.security_context is None
    assert not spec.service_account.create
    assert report.token is not None
    assert report.token.gateway_id == "edge-west"
    # The portal's deployment identification is replaced by the library's, and says so.
    assert _kinds(report, "Deployment/edge-west: settings.runtime.deployment.mechanism") == {
        "ignored"
    }
    # The selector is kept (a Deployment's selector cannot change): deploy updates in place.
    (selector,) = report.by_path("Deployment/edge-west: spec.selector")
    assert selector.severity == "info"
    assert "in place" in selector.message
    assert spec.existing is not None
    assert spec.existing.selector == {"app": "edge-west"}


def test_token_values_never_reach_the_spec_or_the_report_text() -> None:
    for name, signature in (
        ("portal-v2.yaml", "d2VzdC1zaWduYXR1cmU="),
        ("config-backup.yaml", "ZWFzdC1zaWduYXR1cmU="),
    ):
        spec, report = spec_from_manifests(_read(name), **IDS)
        assert report.token is not None
        text = repr(spec) + str(report) + repr(report) + yaml.safe_dump(spec.to_dict())
        text += report._repr_markdown_()
        assert signature not in text
        assert _kinds(report, f"Secret/{spec.base_name}-token") == {"secret"}


def test_config_backup_example_keeps_backup_dns_and_pull_policy() -> None:
    spec, report = spec_from_manifests(_read("config-backup.yaml"), namespace="apim", **IDS)
    assert spec.config_backup.enabled
    assert spec.config_backup.existing_claim is None
    assert spec.config_backup.size == "50Mi"
    assert _kinds(report, "PersistentVolumeClaim/edge-east-pvc") == {"approximated"}
    assert spec.dns_policy == "Default"
    assert spec.image.tag == "latest"
    assert spec.image.pull_policy == "Always"
    assert spec.replicas == 2
    assert _kinds(report, "Service/edge-east") == {"approximated"}
    assert spec.gateway.name == "edge-east"


def test_what_a_spec_cannot_express_is_reported() -> None:
    docs = list(yaml.safe_load_all(_read("portal-v2.yaml")))
    dep = next(d for d in docs if d["kind"] == "Deployment")
    pod = dep["spec"]["template"]["spec"]
    ctr = pod["containers"][0]
    ctr["env"].append({"name": "MY_FLAG", "value": "1"})
    ctr["env"].append({"name": "telemetry.logs.std.level", "value": "debug"})
    ctr["livenessProbe"] = {"tcpSocket": {"port": 8080}}
    ctr["volumeMounts"] = [{"name": "scratch", "mountPath": "/tmp/x"}]
    pod["volumes"] = [{"name": "scratch", "emptyDir": {}}]
    pod["containers"].append({"name": "sidecar", "image": "busybox"})
    docs.append(
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "np"}}
    )
    spec, report = spec_from_manifests(yaml.safe_dump_all(docs), **IDS)
    where = "Deployment/edge-west: spec.template.spec"
    assert _kinds(report, f"{where}.containers[0].env[1]") == {"unsupported"}
    assert _kinds(report, f"{where}.containers[0].env[2]") == {"approximated"}
    assert spec.observability.std_logs.level == "debug"
    assert _kinds(report, f"{where}.containers[0].livenessProbe") == {"unsupported"}
    assert _kinds(report, f"{where}.volumes[0]") == {"unsupported"}
    assert _kinds(report, f"{where}.containers[1]") == {"unsupported"}
    assert _kinds(report, "NetworkPolicy/np") == {"unsupported"}


def test_missing_identity_is_a_placeholder_and_an_error() -> None:
    spec, report = spec_from_manifests(_read("portal-v2.yaml"))
    assert spec.gateway.subscription_id == PLACEHOLDER
    assert {i.path for i in report.errors} == {"gateway.subscription_id", "gateway.resource_group"}
    assert all(i.kind is IssueKind.PLACEHOLDER for i in report.errors)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("kind: ConfigMap\nmetadata: {name: x}\n", "no gateway Deployment"),
        ("a: [", "not valid YAML"),
        ("- 1\n- 2\n", "Kubernetes object"),
        (
            "kind: Deployment\nmetadata: {name: gw}\nspec: {template: {spec: {containers: "
            "[{name: gw, image: mcr.microsoft.com/azure-api-management/gateway:2.11.1}]}}}\n",
            "config.service.endpoint",
        ),
    ],
)
def test_bad_input_is_refused_clearly(text: str, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        spec_from_manifests(text)


def test_entra_app_and_workload_identity_settings_are_read() -> None:
    base = list(yaml.safe_load_all(_read("portal-v2.yaml")))
    cm = next(d for d in base if d["kind"] == "ConfigMap")
    dep = next(d for d in base if d["kind"] == "Deployment")
    ctr = dep["spec"]["template"]["spec"]["containers"][0]
    ctr["image"] = "mcr.microsoft.com/azure-api-management/gateway:2.11.1"
    cm["data"].update(
        {
            "config.service.auth": "workloadIdentity",
            "gateway.name": "edge-west-gw",
            "config.service.auth.azureAd.clientId": "client-1",
        }
    )
    ctr["env"] = []
    spec, _ = spec_from_manifests(yaml.safe_dump_all(base), **IDS)
    assert spec.auth.kind == "workload-identity"
    assert spec.auth.client_id == "client-1"
    assert spec.gateway.name == "edge-west-gw"
    cm["data"]["config.service.auth"] = "azureAdApp"
    cm["data"]["config.service.auth.azureAd.tenantId"] = "tenant-1"
    ctr["env"] = [
        {
            "name": "config.service.auth.azureAd.clientSecret",
            "valueFrom": {"secretKeyRef": {"name": "entra", "key": "secret"}},
        }
    ]
    spec, _ = spec_from_manifests(yaml.safe_dump_all(base), **IDS)
    assert spec.auth.kind == "entra-app"
    assert spec.auth.client_secret is not None
    assert (spec.auth.client_secret.name, spec.auth.tenant_id) == ("entra", "tenant-1")


def test_no_token_in_logs_at_any_level(caplog: pytest.LogCaptureFixture) -> None:
    from apim_selfhosted.helm import spec_from_helm_values

    caplog.set_level(logging.DEBUG)
    spec_from_manifests(_read("portal-v2.yaml"), **IDS)
    spec_from_helm_values(
        {
            "gateway": {
                "configuration": {"uri": "https://contoso.configuration.azure-api.net"},
                "auth": {"key": "GatewayKey gw9&202612010000&bG9nLXNpZ25hdHVyZQ=="},
            }
        },
        release_name="r",
        namespace="n",
    )
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert logged  # the importers do log what they did
    assert "d2VzdC1zaWduYXR1cmU" not in logged
    assert "bG9nLXNpZ25hdHVyZQ" not in logged


def test_the_classmethods_delegate_to_the_importers() -> None:
    from apim_selfhosted import DeploymentSpec

    text = _read("config-backup.yaml")
    assert DeploymentSpec.from_manifests(text, **IDS) == spec_from_manifests(text, **IDS)


def test_a_long_deployment_name_is_shortened_and_reported() -> None:
    docs = list(yaml.safe_load_all(_read("portal-v2.yaml")))
    long_name = "gateways-of-the-west-region-azure-api-management-gateway"  # 56 characters
    for doc in docs:
        if doc["kind"] == "Deployment":
            doc["metadata"]["name"] = long_name
    docs.append(
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "hpa"},
            "spec": {
                "scaleTargetRef": {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": long_name,
                },
                "minReplicas": 2,
                "maxReplicas": 6,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 60},
                        },
                    }
                ],
            },
        }
    )
    spec, report = spec_from_manifests(yaml.safe_dump_all(docs), **IDS)
    assert spec.base_name == long_name[:MAX_BASE_NAME].rstrip("-")
    assert report.by_path(f"Deployment/{long_name}: metadata.name")[0].severity == "warning"
    # The Deployment cannot keep its name, so it is not kept in place either: replaced.
    assert spec.existing is None
    (selector,) = report.by_path(f"Deployment/{long_name}: spec.selector")
    assert selector.severity == "warning"
    assert "replaces" in selector.message
    assert spec.autoscaling is not None
    assert (spec.autoscaling.min_replicas, spec.autoscaling.target_cpu_utilization) == (2, 60)
    assert spec.replicas is None


def test_unknown_auth_settings_are_kept_as_additional_settings() -> None:
    docs = list(yaml.safe_load_all(_read("portal-v2.yaml")))
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    cm["data"]["config.service.auth.tokenAudience"] = "https://azure-api.cn/"
    spec, _ = spec_from_manifests(yaml.safe_dump_all(docs), **IDS)
    assert spec.additional_settings == {
        "config.service.auth.tokenAudience": "https://azure-api.cn/"
    }


def test_a_second_service_for_the_gateway_is_reported() -> None:
    docs = list(yaml.safe_load_all(_read("portal-v2.yaml")))
    docs.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "edge-west-nodeport"},
            "spec": {
                "type": "NodePort",
                "ports": [{"port": 80, "targetPort": 8080}],
                "selector": {"app": "edge-west"},
            },
        }
    )
    docs.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "unrelated"},
            "spec": {"ports": [{"port": 80}], "selector": {"app": "other"}},
        }
    )
    _, report = spec_from_manifests(yaml.safe_dump_all(docs), **IDS)
    (extra,) = report.by_path("Service/edge-west-nodeport")
    assert "further Service" in extra.message
    (other,) = report.by_path("Service/unrelated")
    assert "selects no gateway pod" in other.message
