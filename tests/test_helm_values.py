"""Helm values in and out: every value lands in the spec or in the report, never nowhere."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from apim_selfhosted import SpecError
from apim_selfhosted.adoption import PLACEHOLDER, IssueKind
from apim_selfhosted.helm import chart_fullname, spec_from_helm_values, spec_to_helm_values
from apim_selfhosted.models import (
    MAX_BASE_NAME,
    DeploymentSpec,
    DnsConfig,
    ExistingSecretAuth,
    Gateway,
    ServiceSettings,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "helm"
URI = "https://contoso.configuration.azure-api.net"
IDS = {"subscription_id": "sub-1", "resource_group": "rg-1"}


def _values(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"gateway": {"name": "gw1", "configuration": {"uri": URI}}}
    for key, value in extra.items():
        base[key] = value
    return base


def _import(values: dict[str, Any], **kwargs: Any) -> Any:
    return spec_from_helm_values(
        values, release_name=kwargs.pop("release_name", "edge"), namespace="apim", **IDS, **kwargs
    )


def _kinds(report: Any, path: str) -> set[str]:
    return {i.kind.value for i in report.by_path(path)}


@pytest.mark.parametrize("example", ["token", "workload-identity", "entra-app", "production"])
def test_spec_to_values_and_back_gives_the_same_spec(example: str) -> None:
    values = yaml.safe_load((FIXTURES / f"{example}.values.yaml").read_text())
    spec, _ = _import(values)
    out, _ = spec_to_helm_values(spec)
    again, _ = _import(out, release_name="anything-else")
    # The chart's objects are kept in place (spec.existing); another release has another
    # instance label, everything else is the same spec.
    assert again.existing is not None
    assert again.existing.selector["app.kubernetes.io/instance"] == "anything-else"
    assert again.model_copy(update={"existing": None}) == spec.model_copy(update={"existing": None})


def test_values_out_leave_chart_defaults_out_and_never_hold_a_token() -> None:
    values = yaml.safe_load((FIXTURES / "production.values.yaml").read_text())
    spec, report = _import(values)
    out, out_report = spec_to_helm_values(spec)
    assert "ingress" not in out
    assert "dapr" not in out
    assert out["replicaCount"] == 4
    assert out["highAvailability"] == {
        "disruption": {"maximumUnavailable": 1},
        "podTopologySpread": {"whenUnsatisfiable": "DoNotSchedule"},
    }
    assert "key" not in out["gateway"].get("auth", {})
    assert report.token is not None
    assert report.token.value.get_secret_value() not in yaml.safe_dump(out)
    assert _kinds(out_report, "auth") == {"secret"}


def test_unknown_values_are_reported_not_dropped() -> None:
    values = _values(replicas=5, image={"tag": "2.11.1", "registry": "x"})
    values["gateway"]["bogus"] = True
    spec, report = _import(values)
    for path in ("replicas", "image.registry", "gateway.bogus"):
        (issue,) = report.by_path(path)
        assert issue.kind is IssueKind.UNSUPPORTED
        assert "not a value of chart 1.15.1" in issue.message
    assert spec.replicas == 3


def test_free_form_maps_are_not_unknown_values() -> None:
    values = _values(
        nodeSelector={"pool": "gw"},
        affinity={"nodeAffinity": {"x": 1}},
        commonLabels={"team": "a"},
    )
    _, report = _import(values)
    assert not [i for i in report.issues if i.kind is IssueKind.UNSUPPORTED]


def test_identity_not_in_values_becomes_placeholders_marked_as_errors() -> None:
    spec, report = spec_from_helm_values(
        {"gateway": {"configuration": {"uri": "https://private.example.com"}}},
        release_name="edge",
        namespace="apim",
    )
    assert spec.gateway.subscription_id == PLACEHOLDER
    assert spec.gateway.service_name == PLACEHOLDER
    assert spec.gateway.name == PLACEHOLDER
    assert spec.gateway.config_endpoint_url == "https://private.example.com"
    assert not report.ok
    assert {i.path for i in report.errors} == {
        "gateway.subscription_id",
        "gateway.resource_group",
        "gateway.service_name",
        "gateway.name",
    }


def test_sovereign_cloud_endpoint_sets_the_cloud() -> None:
    values = {"gateway": {"name": "gw1", "configuration": {"uri": "x1.configuration.azure-api.cn"}}}
    spec, report = _import(values)
    assert spec.gateway.cloud.value == "china"
    assert spec.gateway.service_name == "x1"
    assert _kinds(report, "gateway.configuration.uri") == {"approximated"}


@pytest.mark.parametrize(
    ("values", "path"),
    [
        ({"gateway": {"name": "gw1"}}, "gateway.configuration.uri"),
        (
            _values(gateway={"configuration": {"uri": URI}, "auth": {"type": "Basic"}}),
            "gateway.auth.type",
        ),
        (_values(secret={"createSecret": False}), "secret.existingSecretName"),
        (
            {
                "gateway": {
                    "configuration": {"uri": URI},
                    "auth": {"type": "WorkloadIdentity", "azureAd": {"app": {"id": "c"}}},
                }
            },
            "gateway.name",
        ),
        (_values(replicaCount="three"), "replicaCount"),
        (
            _values(
                gateway={
                    "name": "gw1",
                    "configuration": {
                        "uri": URI,
                        "backup": {"enabled": True, "persistentVolumeClaim": {"create": False}},
                    },
                }
            ),
            "gateway.configuration.backup.persistentVolumeClaim.existingName",
        ),
    ],
)
def test_values_the_chart_refuses_are_refused_with_their_path(
    values: dict[str, Any], path: str
) -> None:
    with pytest.raises(SpecError) as info:
        _import(values)
    assert path in str(info.value)
    assert info.value.problems[0][0] == path


def test_v1_configuration_endpoint_is_refused() -> None:
    values = _values()
    values["gateway"]["configuration"]["uri"] = (
        "https://contoso.management.azure-api.net/subscriptions/x/resourceGroups/y"
    )
    with pytest.raises(SpecError, match="retired"):
        _import(values)


def test_existing_secret_uses_the_charts_key_and_never_copies_a_key() -> None:
    values = _values(secret={"createSecret": False, "existingSecretName": "gw-token"})
    values["gateway"]["auth"] = {"key": "GatewayKey gw1&202612010000&c2VjcmV0LXZhbHVl"}
    spec, report = _import(values)
    assert spec.auth == ExistingSecretAuth(secret_name="gw-token", key="gateway-key")
    assert _kinds(report, "gateway.auth.key") == {"ignored"}
    assert "c2VjcmV0LXZhbHVl" not in str(report) + repr(report) + repr(spec)


def test_entra_app_secret_is_never_copied_and_its_secret_must_exist() -> None:
    values = _values()
    values["gateway"]["auth"] = {
        "type": "AzureAdApp",
        "azureAd": {
            "tenant": {"id": "t1"},
            "app": {"id": "c1", "secret": "very-secret-value"},
            "authority": "https://login.microsoftonline.us/t1",
        },
    }
    spec, report = _import(values)
    assert spec.auth.kind == "entra-app"
    assert spec.auth.client_secret is not None
    assert spec.auth.client_secret.name == "edge-azure-api-management-gateway"
    assert spec.auth.client_secret.key == "azure-ad-app-secret"
    assert spec.auth.authority == "https://login.microsoftonline.us/t1"
    (issue,) = report.by_path("gateway.auth.azureAd.app.secret")
    assert (issue.kind, issue.severity) == (IssueKind.SECRET, "error")
    everything = str(report) + repr(report) + repr(spec) + yaml.safe_dump(spec.to_dict())
    assert "very-secret-value" not in everything


def test_what_the_library_cannot_honour_is_reported() -> None:
    values = _values(
        ingress={"controller": {"enabled": True}},
        observability={
            "logs": {"local": {"type": "localsyslog", "localsyslog": {"endpoint": "/dev/log"}}}
        },
        probes={"liveness": {"httpGet": None, "tcpSocket": {"port": 8080}}},
        securityContext={"readOnlyRootFilesystem": True, "capabilities": {"add": ["NET_ADMIN"]}},
        resources={"requests": {"cpu": "1"}, "claims": [{"name": "gpu"}]},
    )
    values["gateway"]["configuration"]["additional"] = {
        "telemetry.logs.std.level": "debug",
        "net.server.http.forwarded.proto-enabled": True,
        "upstream.retry.count": 3,
    }
    spec, report = _import(values)
    assert report.by_path("ingress.controller.enabled")[0].severity == "error"
    assert _kinds(report, "observability.logs.local.type") == {"unsupported"}
    assert _kinds(report, "probes.liveness") == {"unsupported"}
    assert spec.probes.liveness is None
    assert _kinds(report, "securityContext.readOnlyRootFilesystem") == {"unsupported"}
    assert _kinds(report, "securityContext.capabilities.add") == {"unsupported"}
    assert _kinds(report, "resources.claims") == {"unsupported"}
    additional = "gateway.configuration.additional"
    assert _kinds(report, f"{additional}.telemetry.logs.std.level") == {"unsupported"}
    assert spec.additional_settings == {
        "net.server.http.forwarded.proto-enabled": "true",
        "upstream.retry.count": "3",
    }
    assert _kinds(report, f"{additional}.upstream.retry.count") == {"approximated"}
    assert spec.observability.std_logs.level == "info"


def test_chart_quirks_follow_the_templates() -> None:
    values = _values(
        replicaCount=None,
        serviceAccountName="legacy-sa",
        service={"type": "NodePort", "loadBalancer": {"ip": "1.2.3.4"}},
    )
    values["gateway"]["deployment"] = {
        "terminationGracePeriodSeconds": 0,
        "strategy": {"type": "Recreate"},
        "annotations": {"example.com/a": "b"},
    }
    spec, report = _import(values)
    assert spec.replicas is None
    assert spec.termination_grace_period_seconds == 30
    assert _kinds(report, "gateway.deployment.terminationGracePeriodSeconds") == {"assumed"}
    assert spec.strategy.type == "Recreate"
    assert spec.pod_annotations == {"example.com/a": "b"}
    assert spec.deployment_annotations == {}
    assert spec.service_account.name == "legacy-sa"
    assert _kinds(report, "serviceAccountName") == {"approximated"}
    assert spec.service.type == "NodePort"
    assert spec.service.external_traffic_policy == "Cluster"
    assert spec.service.load_balancer_ip is None
    assert _kinds(report, "service.loadBalancer") == {"ignored"}


def test_disabled_features_settings_are_reported_as_ignored() -> None:
    values = _values(
        dapr={"app": {"id": "x"}},
        observability={"statsD": {"endpoint": "udp://s:8125"}},
        highAvailability={"enabled": False, "disruption": {"maximumUnavailable": 1}},
    )
    spec, report = _import(values)
    assert not spec.dapr.enabled
    assert not spec.high_availability.enabled
    assert _kinds(report, "dapr") == {"ignored"}
    assert _kinds(report, "observability.statsD") == {"ignored"}
    assert _kinds(report, "highAvailability") == {"ignored"}


def test_dapr_and_backup_with_existing_claim() -> None:
    values = _values(
        dapr={"enabled": True, "app": {"id": "gw"}, "logging": {"level": "debug"}},
    )
    values["gateway"]["configuration"]["backup"] = {
        "enabled": True,
        "persistentVolumeClaim": {"create": False, "existingName": "old-claim"},
    }
    spec, _ = _import(values)
    assert spec.dapr.enabled
    assert spec.dapr.app_id == "gw"
    assert spec.dapr.log_level == "debug"
    assert spec.config_backup.existing_claim == "old-claim"
    assert spec.pvc_name == "old-claim"


def test_chart_fullname_rules() -> None:
    assert chart_fullname({}, release_name="my-azure-api-management-gateway-1") == (
        "my-azure-api-management-gateway-1"
    )
    assert chart_fullname({"nameOverride": "apim"}, release_name="edge") == "edge-apim"
    assert chart_fullname({}, release_name="a" * 40) == ("a" * 40 + "-azure-api-management-g")
    assert chart_fullname({"fullnameOverride": "x" * 62 + "-y"}, release_name="r") == "x" * 62


def test_a_fullname_longer_than_the_library_allows_is_shortened_and_reported() -> None:
    release = "gateways-of-the-west-region"  # fullname: 56 characters
    spec, report = _import(_values(), release_name=release)
    fullname = f"{release}-azure-api-management-gateway"
    assert spec.base_name == fullname[:MAX_BASE_NAME].rstrip("-")
    assert len(spec.base_name) <= MAX_BASE_NAME
    (issue,) = report.by_path("fullnameOverride")
    assert issue.severity == "warning"


def test_spec_to_values_reports_what_the_chart_cannot_express() -> None:
    spec = DeploymentSpec(
        gateway=Gateway(subscription_id="s", resource_group="rg", service_name="c", name="gw1"),
        namespace="apim",
        auth=ExistingSecretAuth(secret_name="gw1-token", key="value"),
        dns_policy="Default",
        dns_config=DnsConfig(nameservers=("10.0.0.10",)),
        service=ServiceSettings(type="LoadBalancer", external_traffic_policy="Local"),
        pod_labels={"x": "y"},
    )
    values, report = spec_to_helm_values(spec)
    assert values["secret"] == {"createSecret": False, "existingSecretName": "gw1-token"}
    assert report.by_path("auth.key")[0].severity == "error"
    for path in ("dns_policy", "dns_config", "service.external_traffic_policy", "pod_labels"):
        assert _kinds(report, path) == {"unsupported"}, path


def test_merging_does_not_change_the_callers_values() -> None:
    values = _values(resources={"requests": {"cpu": "1"}})
    before = copy.deepcopy(values)
    _import(values)
    assert values == before


def test_not_a_mapping_is_refused() -> None:
    with pytest.raises(SpecError, match="must be a mapping"):
        spec_from_helm_values(["x"], release_name="r", namespace="n")  # type: ignore[arg-type]


def test_values_the_library_refuses_are_named_by_their_values_path() -> None:
    values = _values(
        service={"type": "ExternalName"},
        observability={"logs": {"std": {"level": "verbose"}}},
        dapr={"enabled": True, "logging": {"level": "trace"}},
    )
    with pytest.raises(SpecError) as info:
        _import(values)
    paths = [path for path, _ in info.value.problems]
    assert paths == ["observability.logs.std.level", "service.type", "dapr.logging.level"]
    assert "'ClusterIP', 'NodePort' or 'LoadBalancer'" in str(info.value)


def test_helm_get_values_all_gives_the_same_spec_as_the_users_values() -> None:
    """``helm get values --all`` prints every value, defaults included: same spec, no noise."""
    from apim_selfhosted.helm import CHART_DEFAULTS, _merge

    values = yaml.safe_load((FIXTURES / "production.values.yaml").read_text())
    spec, report = _import(values)
    everything = _merge(CHART_DEFAULTS, values)
    spec_all, report_all = _import(everything)
    assert spec_all == spec
    assert [i.path for i in report_all.issues] == [i.path for i in report.issues]


@pytest.mark.parametrize(
    ("example", "release"),
    [
        ("token", "edge"),
        ("workload-identity", "wi"),
        ("entra-app", "entra"),
        ("production", "gw-prod"),
    ],
)
def test_the_chart_objects_are_kept_in_place(example: str, release: str) -> None:
    """The spec keeps the release's names, selector, container and pod labels (spec.existing)."""
    from apim_selfhosted.rendering import render

    values = yaml.safe_load((FIXTURES / f"{example}.values.yaml").read_text())
    spec, report = _import(values, release_name=release)
    chart = list(yaml.safe_load_all((FIXTURES / f"{example}.chart.yaml").read_text()))
    theirs = next(o for o in chart if o["kind"] == "Deployment")
    ours = next(m for m in render(spec, report.token) if m["kind"] == "Deployment")
    assert ours["metadata"]["name"] == theirs["metadata"]["name"]
    assert ours["spec"]["selector"] == theirs["spec"]["selector"]
    assert ours["spec"]["template"]["metadata"]["labels"] == (
        {k: str(v) for k, v in theirs["spec"]["template"]["metadata"]["labels"].items()}
    )
    assert [c["name"] for c in ours["spec"]["template"]["spec"]["containers"]] == [
        c["name"] for c in theirs["spec"]["template"]["spec"]["containers"]
    ]
    names = {(o["kind"], o["metadata"]["name"]) for o in chart}
    assert ("ConfigMap", spec.config_map_name) in names
    assert ("Service", spec.live_service_name) in names
    assert ("Service", spec.discovery_service_name) in names
