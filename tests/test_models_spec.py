"""DeploymentSpec: defaults, validation as the API server would, files and errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from apim_selfhosted import (
    DeploymentSpec,
    EntraAppAuth,
    ExistingSecretAuth,
    Gateway,
    GatewayTokenAuth,
    SpecError,
    WorkloadIdentityAuth,
)
from apim_selfhosted.models import check_dns1123_label, check_label_key, parse_semver

GW = {
    "subscription_id": "00000000-0000-0000-0000-000000000000",
    "resource_group": "rg1",
    "service_name": "contoso",
    "name": "gw1",
}


def spec(**kw: Any) -> DeploymentSpec:
    return DeploymentSpec.from_dict({"gateway": GW, "namespace": "apim", **kw})


def test_minimal_spec_is_complete() -> None:
    s = DeploymentSpec(gateway=Gateway(**GW), namespace="apim")
    assert s.base_name == "gw1"
    assert s.replicas == 1
    assert isinstance(s.auth, GatewayTokenAuth)
    assert s.image.reference == "mcr.microsoft.com/azure-api-management/gateway:2.11.1"
    assert s.strategy.max_unavailable == 0
    assert s.strategy.max_surge == "25%"
    assert s.termination_grace_period_seconds == 60
    assert s.security_context is not None
    assert s.security_context.run_as_user == 1001
    assert s.config_map_name == "gw1-env"
    assert s.live_service_name == "gw1-live-traffic"
    assert s.discovery_service_name == "gw1-instance-discovery"
    assert s.service_account_name == "gw1"
    assert s.pvc_name is None
    assert s.untokened_secret_name == "gw1-token"
    assert s.model_fields_set == {"gateway", "namespace"}


def test_base_name_derives_from_awkward_gateway_names() -> None:
    s = DeploymentSpec.from_dict({"gateway": {**GW, "name": "My_Gateway.West"}, "namespace": "a"})
    assert s.base_name == "my-gateway-west"
    with pytest.raises(SpecError, match="set 'name'"):
        DeploymentSpec.from_dict({"gateway": {**GW, "name": "1gw"}, "namespace": "a"})
    assert spec(name="edge").base_name == "edge"


@pytest.mark.parametrize(
    ("data", "path", "fragment"),
    [
        ({"namespace": "Apim"}, "namespace", "DNS-1123"),
        ({"namespace": "a" * 64}, "namespace", "63"),
        ({"namespace": "-a"}, "namespace", "DNS-1123"),
        ({"name": "1abc"}, "name", "DNS-1035"),
        ({"name": "a" * 45}, "name", "44"),
        ({"auth": {"kind": "password"}}, "auth", "'gateway-token', 'existing-secret'"),
        ({"auth": {"kind": "existing-secret", "secret_name": "Bad"}}, "auth.secret_name", "DNS"),
        ({"image": {"pull_policy": "Sometimes"}}, "image.pull_policy", "'IfNotPresent'"),
        ({"service": {"type": "Ingress"}}, "service.type", "'LoadBalancer'"),
        ({"strategy": {"max_surge": "lots"}}, "strategy.max_surge", "percentage"),
        ({"replicas": -1}, "replicas", "greater than or equal to 0"),
        ({"common_labels": {"bad key!": "x"}}, "common_labels", "invalid key"),
        ({"common_labels": {"team": "-x"}}, "common_labels", "label value"),
        ({"resources": {"requests": {"cpu": "lots"}}}, "resources.requests", "quantity"),
        (
            {"observability": {"std_logs": {"level": "loud"}}},
            "observability.std_logs.level",
            "'warn'",
        ),
        ({"observability": {"statsd": {"enabled": True}}}, "observability.statsd", "endpoint"),
        ({"config_backup": {"size": "big"}}, "config_backup.size", "quantity"),
        ({"additional_settings": {"config.service.endpoint": "x"}}, "", "typed fields"),
        ({"unknown_field": 1}, "unknown_field", "unknown field"),
        ({"tolerations": [{"operator": "Maybe"}]}, "tolerations[0].operator", "'Exists'"),
        ({"autoscaling": {"min_replicas": 5, "max_replicas": 2}}, "autoscaling", "max_replicas"),
    ],
)
def test_bad_specs_name_field_and_allowed_values(
    data: dict[str, Any], path: str, fragment: str
) -> None:
    with pytest.raises(SpecError) as info:
        spec(**data)
    err = info.value
    assert err.source == "<input>"
    paths = [p for p, _ in err.problems]
    assert path in paths, paths
    assert fragment in str(err)


def test_security_context_cannot_be_read_only_root() -> None:
    with pytest.raises(SpecError, match="does not support") as info:
        spec(security_context={"read_only_root_filesystem": True})
    assert info.value.problems[0][0] == "security_context"


def test_auth_variants() -> None:
    s = spec(auth={"kind": "existing-secret", "secret_name": "gw1-token"})
    assert isinstance(s.auth, ExistingSecretAuth)
    assert s.auth.key == "value"
    helm = spec(auth={"kind": "existing-secret", "secret_name": "gw", "key": "gateway-key"})
    assert isinstance(helm.auth, ExistingSecretAuth)
    assert helm.auth.key == "gateway-key"
    entra = spec(
        auth={
            "kind": "entra-app",
            "tenant_id": "t1",
            "client_id": "c1",
            "client_secret": {"name": "entra", "key": "secret"},
        }
    )
    assert isinstance(entra.auth, EntraAppAuth)
    with pytest.raises(SpecError, match="exactly one"):
        spec(auth={"kind": "entra-app", "tenant_id": "t1", "client_id": "c1"})
    wi = spec(auth={"kind": "workload-identity", "client_id": "c1"})
    assert isinstance(wi.auth, WorkloadIdentityAuth)
    with pytest.raises(SpecError, match=r"2\.11\.0"):
        spec(auth={"kind": "workload-identity", "client_id": "c1"}, image={"tag": "2.10.0"})
    with pytest.raises(SpecError, match="ServiceAccount"):
        spec(
            auth={"kind": "workload-identity", "client_id": "c1"}, service_account={"create": False}
        )


def test_models_are_frozen() -> None:
    s = spec()
    with pytest.raises(ValidationError):
        s.namespace = "other"  # type: ignore[misc]


def test_yaml_and_json_round_trip(tmp_path: Path) -> None:
    s = spec(replicas=3, service={"type": "ClusterIP"}, image={"tag": "2.11.1"})
    for name in ("spec.yaml", "spec.yml", "spec.json"):
        target = tmp_path / name
        s.to_file(target)
        again = DeploymentSpec.from_file(target)
        assert again == s
        assert again.model_fields_set == s.model_fields_set
    text = (tmp_path / "spec.json").read_text()
    assert json.loads(text)["replicas"] == 3
    # only explicit fields are saved, so defaults keep tracking the library
    assert "probes" not in yaml.safe_load((tmp_path / "spec.yaml").read_text())


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SpecError, match=r"nope\.yaml: cannot read") as info:
        DeploymentSpec.from_file(missing)
    assert info.value.source == str(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("gateway: [unclosed\n")
    with pytest.raises(SpecError, match=r"broken\.yaml: not valid YAML"):
        DeploymentSpec.from_file(broken)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n")
    with pytest.raises(SpecError, match="must be a mapping"):
        DeploymentSpec.from_file(listy)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"gateway": GW, "namespace": "apim", "replicas": "many"}))
    with pytest.raises(SpecError) as info:
        DeploymentSpec.from_file(bad)
    assert str(bad) in str(info.value)
    assert (
        "replicas",
        "Input should be a valid integer, unable to parse string as an integer",
    ) in (info.value.problems)


def test_schema_is_documented() -> None:
    schema = DeploymentSpec.model_json_schema()
    assert set(schema["required"]) == {"gateway", "namespace"}
    for name, prop in schema["properties"].items():
        assert prop.get("description"), name
    assert "discriminator" in json.dumps(schema["properties"]["auth"])


def test_kubernetes_name_helpers() -> None:
    assert check_dns1123_label("a-1") == "a-1"
    for bad in ("A", "a_b", "a.", ""):
        with pytest.raises(ValueError, match="DNS-1123"):
            check_dns1123_label(bad)
    assert check_label_key("example.com/x") == "example.com/x"
    for bad in ("/x", "Example.com/x", "x/", "a" * 64):
        with pytest.raises(ValueError, match="invalid key"):
            check_label_key(bad)
    assert parse_semver("2.11.1") == (2, 11, 1)
    assert parse_semver("v2") is None
    assert parse_semver("2.11.1-preview") is None


@pytest.mark.parametrize(
    ("data", "path", "fragment"),
    [
        (
            {"host_aliases": [{"ip": "10.0.0.999", "hostnames": ["a"]}]},
            "host_aliases[0].ip",
            "IPv4",
        ),
        ({"dns_config": {"nameservers": ["dns.example"]}}, "dns_config.nameservers", "nameserver"),
        ({"service": {"load_balancer_ip": "x"}}, "service.load_balancer_ip", "load balancer IP"),
        (
            {"service": {"load_balancer_source_ranges": ["10/x"]}},
            "service.load_balancer_source_ranges",
            "CIDR",
        ),
        (
            {"tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]},
            "tolerations[0]",
            "Exists",
        ),
        ({"tolerations": [{"operator": "Equal"}]}, "tolerations[0]", "key is empty"),
        ({"tolerations": [{"key": "k", "toleration_seconds": 5}]}, "tolerations[0]", "NoExecute"),
        ({"affinity": {"nodeAfinity": {}}}, "affinity", "nodeAffinity"),
        (
            {"network_policy": {"ingress_from": [{"pods": {}}]}},
            "network_policy.ingress_from",
            "podSelector",
        ),
        ({"network_policy": {"egress_to": [{"dest": []}]}}, "network_policy.egress_to", "'to'"),
    ],
)
def test_kubernetes_shaped_fields_are_checked(
    data: dict[str, Any], path: str, fragment: str
) -> None:
    with pytest.raises(SpecError) as info:
        spec(**data)
    assert path in [p for p, _ in info.value.problems], info.value.problems
    assert fragment in str(info.value)


def test_additional_settings_may_not_shadow_typed_fields() -> None:
    for key in ("config.service.auth", "config.service.auth.azureAd.clientId", "neighborhood.host"):
        with pytest.raises(SpecError, match="typed fields"):
            spec(additional_settings={key: "x"})
    ok = spec(additional_settings={"config.service.auth.tokenAudience": "https://example"})
    assert ok.additional_settings["config.service.auth.tokenAudience"] == "https://example"


@pytest.mark.parametrize(
    "repository",
    [
        "mcr.microsoft.com/azure-api-management/gateway",
        "myregistry.azurecr.io/apim/gateway",
        "localhost:5000/gateway",
        "gateway",
        "example.org/a__b/c-d.e",
    ],
)
def test_image_repository_accepts_valid_references(repository: str) -> None:
    assert spec(image={"repository": repository}).image.repository == repository


@pytest.mark.parametrize(
    "repository",
    [
        "example.org/Gateway",  # the kubelet refuses upper-case paths (InvalidImageName)
        "mcr.microsoft.com/azure-api-management/gateway:2.11.1",  # the tag goes in image.tag
        "mcr.microsoft.com/azure-api-management/gateway@sha256:" + "a" * 64,
        "example.org//gateway",
        "example.org/gateway/",
        "",
    ],
)
def test_image_repository_refuses_what_the_kubelet_cannot_pull(repository: str) -> None:
    with pytest.raises(SpecError) as info:
        spec(image={"repository": repository})
    assert [path for path, _ in info.value.problems] == ["image.repository"]
    assert "put the tag in image.tag" in str(info.value)


@pytest.mark.parametrize(
    ("values", "path"),
    [
        ({"replicas": 2**31}, "replicas"),
        ({"min_ready_seconds": 2**31}, "min_ready_seconds"),
        ({"progress_deadline_seconds": 2**31}, "progress_deadline_seconds"),
        ({"autoscaling": {"min_replicas": 1, "max_replicas": 2**31}}, "autoscaling.max_replicas"),
        ({"probes": {"readiness": {"period_seconds": 2**31}}}, "probes.readiness.period_seconds"),
    ],
)
def test_int32_fields_refuse_what_the_api_server_cannot_decode(
    values: dict[str, Any], path: str
) -> None:
    with pytest.raises(SpecError) as info:
        spec(**values)
    assert [p for p, _ in info.value.problems] == [path]
    assert "2147483647" in str(info.value)


def test_int32_fields_accept_the_largest_int32() -> None:
    assert spec(replicas=2**31 - 1).replicas == 2**31 - 1


def test_the_longest_base_name_keeps_every_derived_name_valid() -> None:
    from apim_selfhosted import Token, render
    from apim_selfhosted.models import MAX_BASE_NAME
    from apim_selfhosted.rotation import lease_name, render_rotator

    longest = spec(name="g" * MAX_BASE_NAME, replicas=3, config_backup={"enabled": True})
    manifests = render(longest, Token.parse("gw1&202611270418&c2ln"))
    manifests += render_rotator(
        longest, image="example.org/rotator:1.0", identity="11111111-2222-3333-4444-555555555555"
    )
    for m in manifests:
        name = m["metadata"]["name"]
        limit = {"Service": 63, "CronJob": 52}.get(m["kind"], 253)
        assert len(name) <= limit, (m["kind"], name)
    discovery = [m for m in manifests if m["metadata"]["name"].endswith("-instance-discovery")]
    assert len(discovery[0]["metadata"]["name"]) == 63
    assert len(lease_name(longest)) <= 253
    with pytest.raises(SpecError, match=str(MAX_BASE_NAME)):
        spec(name="g" * (MAX_BASE_NAME + 1))
