"""render() and to_yaml(): order, labels, the token Secret design, auth variants, determinism."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from apim_selfhosted import DeploymentSpec, SpecError, Token, TokenError
from apim_selfhosted.rendering import (
    LABEL_GATEWAY,
    LABEL_MANAGED_BY,
    REDACTED,
    gateway_label_value,
    managed_selector,
    render,
    secret_name_in_use,
    to_yaml,
    token_secret,
    token_secret_name,
    token_secret_selector,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
GW = {
    "subscription_id": "00000000-0000-0000-0000-000000000000",
    "resource_group": "rg1",
    "service_name": "contoso",
    "name": "gw1",
}
SIG = "c2lnbmF0dXJlLW9mLWEtdG9rZW4="
TOKEN = Token.parse(f"GatewayKey gw1&202611270418&{SIG}")
TOKEN2 = Token.parse(f"GatewayKey gw1&202612100418&x{SIG}", key_type="secondary")


def spec(**kw: Any) -> DeploymentSpec:
    return DeploymentSpec.from_dict({"gateway": GW, "namespace": "apim", **kw})


def by_kind(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = by_kind(manifests, kind)
    return found


def container(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    return c


def env_of(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e for e in container(manifests).get("env", [])}


def test_apply_order_with_everything() -> None:
    s = spec(
        create_namespace=True,
        config_backup={"enabled": True},
        high_availability={"enabled": True},
        autoscaling={"min_replicas": 3, "max_replicas": 6},
        network_policy={},
    )
    kinds = [m["kind"] for m in render(s, TOKEN)]
    assert kinds == [
        "Namespace",
        "ServiceAccount",
        "Secret",
        "ConfigMap",
        "PersistentVolumeClaim",
        "Deployment",
        "Service",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
    ]


def test_every_object_is_labelled_and_namespaced() -> None:
    s = spec(
        create_namespace=True, common_labels={"team": "apis"}, high_availability={"enabled": True}
    )
    for m in render(s, TOKEN):
        labels = m["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "azure-api-management-gateway"
        assert labels["app.kubernetes.io/instance"] == "gw1"
        assert labels["app.kubernetes.io/version"] == "2.11.1"
        assert labels[LABEL_MANAGED_BY] == "apim-selfhosted"
        assert labels[LABEL_GATEWAY] == "gw1"
        assert labels["team"] == "apis"
        if m["kind"] != "Namespace":
            assert m["metadata"]["namespace"] == "apim"
    assert managed_selector(s) == (
        "app.kubernetes.io/managed-by=apim-selfhosted,app.kubernetes.io/instance=gw1,"
        "apim-selfhosted.io/gateway=gw1"
    )
    assert token_secret_selector(s).endswith(",app.kubernetes.io/component=gateway-token")


def test_selector_uses_only_stable_labels() -> None:
    a = render(spec(), TOKEN)
    b = render(spec(image={"tag": "2.10.1"}, common_labels={"team": "x"}, pod_labels={"p": "q"}))
    stable = {
        "app.kubernetes.io/name": "azure-api-management-gateway",
        "app.kubernetes.io/instance": "gw1",
    }
    for ms in (a, b):
        dep = one(ms, "Deployment")
        assert dep["spec"]["selector"] == {"matchLabels": stable}
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert stable.items() <= labels.items()
        for svc in by_kind(ms, "Service"):
            assert svc["spec"]["selector"] == stable


def test_gateway_label_survives_long_names() -> None:
    long = DeploymentSpec.from_dict(
        {"gateway": {**GW, "name": "g" * 70}, "namespace": "apim", "name": "edge"}
    )
    value = gateway_label_value(long.gateway)
    assert len(value) <= 63
    assert value != gateway_label_value(
        DeploymentSpec.from_dict(
            {"gateway": {**GW, "name": "g" * 71}, "namespace": "apim", "name": "edge"}
        ).gateway
    )


# --- the token Secret ---------------------------------------------------------------------


def test_token_secret_is_immutable_named_by_content_and_described_by_labels() -> None:
    s = spec()
    secret = token_secret(s, TOKEN)
    name = token_secret_name(s, TOKEN)
    assert secret["metadata"]["name"] == name
    assert name.startswith("gw1-token-")
    assert len(name.rsplit("-", 1)[1]) == 10
    assert secret["immutable"] is True
    assert secret["type"] == "Opaque"
    assert base64.b64decode(secret["data"]["value"]).decode() == TOKEN.value.get_secret_value()
    labels = secret["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "gateway-token"
    assert labels["apim-selfhosted.io/token-fingerprint"] == TOKEN.fingerprint
    assert labels["apim-selfhosted.io/key-type"] == "primary"
    assert labels["apim-selfhosted.io/token-expires"] == "202611270418"
    annotations = secret["metadata"]["annotations"]
    assert annotations["apim-selfhosted.io/token-expires-on"] == "2026-11-27T04:18:00Z"
    meta_text = repr(secret["metadata"])
    assert SIG not in meta_text
    assert secret["data"]["value"] not in meta_text


def test_token_swap_changes_only_secret_and_pod_template_reference() -> None:
    s = spec()
    old, new = render(s, TOKEN), render(s, TOKEN2)
    old_name, new_name = token_secret_name(s, TOKEN), token_secret_name(s, TOKEN2)
    assert old_name != new_name
    assert secret_name_in_use(one(old, "Deployment")) == old_name
    assert secret_name_in_use(one(new, "Deployment")) == new_name
    assert one(new, "Secret")["metadata"]["labels"]["apim-selfhosted.io/key-type"] == "secondary"
    # everything but the Secret and the Deployment's pod template is identical
    for a, b in zip(old, new, strict=True):
        if a["kind"] in ("Secret", "Deployment"):
            continue
        assert a == b
    # rollback: rendering with the old token gives back exactly the old objects
    assert render(s, TOKEN) == old
    dep_old, dep_new = one(old, "Deployment"), one(new, "Deployment")
    assert dep_old["spec"]["selector"] == dep_new["spec"]["selector"]
    ann = dep_new["spec"]["template"]["metadata"]["annotations"]
    assert ann["apim-selfhosted.io/token-fingerprint"] == TOKEN2.fingerprint


def test_without_token_the_deployment_reads_the_portal_secret_name() -> None:
    ms = render(spec())
    assert not by_kind(ms, "Secret")
    ref = env_of(ms)["config.service.auth"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "gw1-token", "key": "value"}


def test_token_for_another_gateway_or_auth_is_refused() -> None:
    other = Token.parse(f"gw2&202611270418&{SIG}")
    with pytest.raises(TokenError, match="gw2") as info:
        render(spec(), other)
    assert SIG not in str(info.value)
    existing = spec(auth={"kind": "existing-secret", "secret_name": "gw1-token"})
    with pytest.raises(SpecError, match="gateway-token"):
        render(existing, TOKEN)
    with pytest.raises(SpecError):
        token_secret_name(existing, TOKEN)


def test_yaml_redacts_secrets_unless_asked() -> None:
    ms = render(spec(), TOKEN)
    text = to_yaml(ms)
    encoded = one(ms, "Secret")["data"]["value"]
    assert encoded not in text
    assert SIG not in text
    assert f"value: {REDACTED}" in text
    assert one(ms, "Secret")["data"]["value"] == encoded  # inputs untouched
    revealed = to_yaml(ms, reveal_secrets=True)
    assert encoded in revealed
    assert list(yaml.safe_load_all(revealed)) == ms


def test_rendering_is_deterministic_across_processes() -> None:
    s = DeploymentSpec.from_file(EXAMPLES / "production.yaml")
    token = Token.parse(f"edge-gw-westeurope&202611270418&{SIG}")
    text = to_yaml(render(s, token), reveal_secrets=True)
    assert text == to_yaml(render(s, token.model_copy()), reveal_secrets=True)
    code = (
        "import sys; from apim_selfhosted import DeploymentSpec, Token;"
        "from apim_selfhosted.rendering import render, to_yaml;"
        f"s = DeploymentSpec.from_file({str(EXAMPLES / 'production.yaml')!r});"
        f"t = Token.parse({token.value.get_secret_value()!r});"
        "sys.stdout.write(to_yaml(render(s, t), reveal_secrets=True))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
    ).stdout
    assert out == text


# --- settings -----------------------------------------------------------------------------


def test_config_map_identifies_the_library_and_the_gateway() -> None:
    data = one(render(spec()), "ConfigMap")["data"]
    assert data["config.service.endpoint"] == "https://contoso.configuration.azure-api.net"
    assert data["neighborhood.host"] == "gw1-instance-discovery"
    assert data["runtime.deployment.artifact.source"] == "apim-selfhosted"
    assert data["runtime.deployment.mechanism"] == "apim-selfhosted-python"
    assert data["runtime.deployment.orchestrator.type"] == "Kubernetes"
    assert all(isinstance(v, str) for v in data.values())


def test_observability_tls_and_additional_settings() -> None:
    s = spec(
        observability={
            "std_logs": {"format": "json", "level": "warn", "color": False},
            "local_logs": {
                "type": "rfc5424",
                "rfc5424_endpoint": "syslog:514",
                "rfc5424_facility": 7,
            },
            "statsd": {"enabled": True, "endpoint": "udp://statsd:8125", "sampling": 0.5},
            "opentelemetry": {
                "enabled": True,
                "collector_uri": "http://otel:4317",
                "histogram_buckets": [10, 50, 100.5],
                "system_metrics": True,
            },
            "azure_monitor_metrics": False,
        },
        tls={"server_cipher_suites": ["A", "B"], "client_cipher_suites": ["C"]},
        additional_settings={"net.server.http.forwarded.proto.enabled": "true"},
    )
    data = one(render(s), "ConfigMap")["data"]
    assert data["telemetry.logs.std"] == "json"
    assert data["telemetry.logs.std.level"] == "warn"
    assert data["telemetry.logs.std.color"] == "false"
    assert data["telemetry.logs.local"] == "rfc5424"
    assert data["telemetry.logs.local.rfc5424.endpoint"] == "syslog:514"
    assert data["telemetry.logs.local.rfc5424.facility"] == "7"
    assert data["telemetry.metrics.local"] == "statsd"
    assert data["telemetry.metrics.local.statsd.endpoint"] == "udp://statsd:8125"
    assert data["telemetry.metrics.local.statsd.sampling"] == "0.5"
    assert data["telemetry.metrics.local.statsd.tag-format"] == "dogStatsD"
    assert data["observability.opentelemetry.enabled"] == "true"
    assert data["observability.opentelemetry.collector.uri"] == "http://otel:4317"
    assert data["observability.opentelemetry.histogram.buckets"] == "10,50,100.5"
    assert data["observability.opentelemetry.systemMetrics.enabled"] == "true"
    assert data["telemetry.metrics.cloud"] == "false"
    assert data["net.server.tls.ciphers.allowed-suites"] == "A,B"
    assert data["net.client.tls.ciphers.allowed-suites"] == "C"
    assert data["net.server.http.forwarded.proto.enabled"] == "true"


def test_config_change_rolls_pods_through_a_hash() -> None:
    def config_hash(s: DeploymentSpec) -> str:
        dep = one(render(s), "Deployment")
        return str(
            dep["spec"]["template"]["metadata"]["annotations"]["apim-selfhosted.io/config-hash"]
        )

    assert config_hash(spec()) == config_hash(spec())
    assert config_hash(spec()) != config_hash(spec(observability={"std_logs": {"level": "warn"}}))


def test_entra_app_auth() -> None:
    s = spec(
        auth={
            "kind": "entra-app",
            "tenant_id": "tenant-1",
            "client_id": "client-1",
            "client_secret": {"name": "entra", "key": "secret"},
        }
    )
    ms = render(s)
    data = one(ms, "ConfigMap")["data"]
    assert data["config.service.auth"] == "azureAdApp"
    assert data["config.service.auth.azureAd.tenantId"] == "tenant-1"
    assert data["config.service.auth.azureAd.clientId"] == "client-1"
    assert data["gateway.name"] == "gw1"
    assert "config.service.auth.azureAd.authority" not in data
    env = env_of(ms)
    assert "config.service.auth" not in env
    assert env["config.service.auth.azureAd.clientSecret"]["valueFrom"]["secretKeyRef"] == {
        "name": "entra",
        "key": "secret",
    }
    cert = DeploymentSpec.from_dict(
        {
            "gateway": {**GW, "cloud": "china"},
            "namespace": "apim",
            "auth": {
                "kind": "entra-app",
                "tenant_id": "tenant-1",
                "client_id": "client-1",
                "certificate_secret": "entra-cert",
            },
        }
    )
    ms = render(cert)
    data = one(ms, "ConfigMap")["data"]
    assert data["config.service.endpoint"] == "https://contoso.configuration.azure-api.cn"
    assert (
        data["config.service.auth.azureAd.certificatePath"] == "/apim/certificates/certificate.pfx"
    )
    assert (
        data["config.service.auth.azureAd.authority"] == "https://login.chinacloudapi.cn/tenant-1"
    )
    pod = one(ms, "Deployment")["spec"]["template"]["spec"]
    assert pod["volumes"] == [
        {"name": "entra-certificate", "secret": {"secretName": "entra-cert", "defaultMode": 0o440}}
    ]
    assert container(ms)["volumeMounts"][0]["readOnly"] is True


def test_workload_identity_auth() -> None:
    s = spec(auth={"kind": "workload-identity", "client_id": "client-1", "tenant_id": "t1"})
    ms = render(s)
    data = one(ms, "ConfigMap")["data"]
    assert data["config.service.auth"] == "workloadIdentity"
    assert data["config.service.auth.azureAd.clientId"] == "client-1"
    assert data["gateway.name"] == "gw1"
    sa = one(ms, "ServiceAccount")
    assert sa["metadata"]["annotations"]["azure.workload.identity/client-id"] == "client-1"
    assert sa["metadata"]["annotations"]["azure.workload.identity/tenant-id"] == "t1"
    dep = one(ms, "Deployment")
    assert dep["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] == "gw1"
    assert "config.service.auth" not in env_of(ms)


def test_existing_secret_auth_uses_the_given_key() -> None:
    ms = render(spec(auth={"kind": "existing-secret", "secret_name": "helm", "key": "gateway-key"}))
    ref = env_of(ms)["config.service.auth"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "helm", "key": "gateway-key"}
    assert secret_name_in_use(one(ms, "Deployment")) == "helm"


def test_pod_settings() -> None:
    s = spec(
        image={"tag": "2.11.1", "pull_secrets": ["acr"], "pull_policy": "Always"},
        proxy={"http": "http://p:3128", "https": "http://p:3128", "bypass": ".svc"},
        dns_policy="None",
        dns_config={"nameservers": ["10.0.0.10"], "options": [{"name": "ndots", "value": "2"}]},
        host_aliases=[{"ip": "10.1.1.1", "hostnames": ["contoso.configuration.azure-api.net"]}],
        node_selector={"agentpool": "gw"},
        tolerations=[
            {"key": "dedicated", "operator": "Equal", "value": "gw", "effect": "NoSchedule"}
        ],
        priority_class_name="gateway-critical",
        dapr={"enabled": True, "app_id": "gw"},
        resources={"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
        probes={"liveness": {}, "startup": {"failure_threshold": 30}},
        service_account={"create": False, "name": "existing-sa"},
        termination_grace_period_seconds=90,
    )
    ms = render(s)
    assert not by_kind(ms, "ServiceAccount")
    pod = one(ms, "Deployment")["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "acr"}]
    assert pod["dnsPolicy"] == "None"
    assert pod["dnsConfig"] == {
        "nameservers": ["10.0.0.10"],
        "options": [{"name": "ndots", "value": "2"}],
    }
    assert pod["hostAliases"][0]["ip"] == "10.1.1.1"
    assert pod["nodeSelector"] == {"agentpool": "gw"}
    assert pod["tolerations"] == [
        {"key": "dedicated", "operator": "Equal", "value": "gw", "effect": "NoSchedule"}
    ]
    assert pod["priorityClassName"] == "gateway-critical"
    assert pod["serviceAccountName"] == "existing-sa"
    assert pod["terminationGracePeriodSeconds"] == 90
    dep = one(ms, "Deployment")
    assert dep["spec"]["progressDeadlineSeconds"] == 600
    assert dep["spec"]["revisionHistoryLimit"] == 10
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    assert annotations["kubectl.kubernetes.io/default-container"] == "gw1"
    c = container(ms)
    assert c["imagePullPolicy"] == "Always"
    env = env_of(ms)
    assert env["HTTP_PROXY"]["value"] == "http://p:3128"
    assert env["NO_PROXY"]["value"] == ".svc"
    assert c["resources"] == {
        "requests": {"cpu": "1", "memory": "1Gi"},
        "limits": {"memory": "2Gi"},
    }
    assert c["livenessProbe"]["httpGet"]["path"] == "/status-0123456789abcdef"
    assert c["startupProbe"]["failureThreshold"] == 30
    ann = one(ms, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert ann["dapr.io/enabled"] == "true"
    assert ann["dapr.io/app-id"] == "gw"
    assert ann["dapr.io/config"] == "tracing"


def test_default_security_context_is_restricted() -> None:
    ms = render(spec())
    pod = one(ms, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 1001
    assert pod["securityContext"]["fsGroup"] == 1001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    csc = container(ms)["securityContext"]
    assert csc["allowPrivilegeEscalation"] is False
    assert csc["capabilities"] == {"drop": ["ALL"]}
    assert "readOnlyRootFilesystem" not in csc
    assert pod["automountServiceAccountToken"] is False


def test_high_availability_autoscaling_and_network_policy() -> None:
    s = spec(
        replicas=3,
        high_availability={"enabled": True, "max_unavailable": 1},
        autoscaling={"min_replicas": 3, "max_replicas": 9, "target_memory_utilization": 80},
        network_policy={
            "ingress_from": [{"namespaceSelector": {"matchLabels": {"ingress": "true"}}}],
            "restrict_egress": True,
            "egress_to": [{"ports": [{"protocol": "TCP", "port": 8443}]}],
        },
    )
    ms = render(s)
    dep = one(ms, "Deployment")
    assert "replicas" not in dep["spec"]  # the autoscaler owns it
    pod = dep["spec"]["template"]["spec"]
    keys = [c["topologyKey"] for c in pod["topologySpreadConstraints"]]
    assert keys == ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
    pdb = one(ms, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"] == dep["spec"]["selector"]
    hpa = one(ms, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "gw1"
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu", "memory"]
    np = one(ms, "NetworkPolicy")
    assert np["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert np["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"] == {
        "ingress": "true"
    }
    assert np["spec"]["egress"][-1]["ports"][0]["port"] == 8443
    anti = render(spec(high_availability={"enabled": True, "spread": "anti-affinity"}))
    pod = one(anti, "Deployment")["spec"]["template"]["spec"]
    assert "topologySpreadConstraints" not in pod
    terms = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert [t["podAffinityTerm"]["topologyKey"] for t in terms] == [
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    ]


def test_config_backup_matches_the_official_example() -> None:
    fixture = list(
        yaml.safe_load_all(
            (Path(__file__).parent / "fixtures" / "portal_config_backup.yaml").read_text()
        )
    )
    s = DeploymentSpec.from_dict(
        {
            "gateway": {**GW, "name": "edge-gw"},
            "namespace": "apim",
            "config_backup": {"enabled": True},
        }
    )
    ms = render(s)
    pvc = one(ms, "PersistentVolumeClaim")
    assert pvc["metadata"]["name"] == fixture[0]["metadata"]["name"]
    assert pvc["spec"] == fixture[0]["spec"]
    expected_pod = fixture[1]["spec"]["template"]["spec"]
    pod = one(ms, "Deployment")["spec"]["template"]["spec"]
    assert pod["volumes"] == expected_pod["volumes"]
    assert pod["containers"][0]["volumeMounts"] == expected_pod["containers"][0]["volumeMounts"]
    assert pod["securityContext"]["fsGroup"] == 1001
    existing = render(
        spec(config_backup={"enabled": True, "existing_claim": "shared", "storage_class": ""})
    )
    assert not by_kind(existing, "PersistentVolumeClaim")
    assert one(existing, "Deployment")["spec"]["template"]["spec"]["volumes"][0][
        "persistentVolumeClaim"
    ] == {"claimName": "shared"}
    with_class = one(
        render(spec(config_backup={"enabled": True, "storage_class": ""})), "PersistentVolumeClaim"
    )
    assert with_class["spec"]["storageClassName"] == ""


def test_service_settings() -> None:
    ms = render(
        spec(
            service={
                "type": "ClusterIP",
                "http_port": 8080,
                "https_port": 8081,
                "instance_sync_port": 14290,
                "annotations": {"example.com/x": "y"},
            }
        )
    )
    live, discovery = by_kind(ms, "Service")
    assert live["spec"]["type"] == "ClusterIP"
    assert "externalTrafficPolicy" not in live["spec"]
    assert [p["port"] for p in live["spec"]["ports"]] == [8080, 8081]
    assert live["metadata"]["annotations"]["example.com/x"] == "y"
    assert discovery["spec"]["ports"][0]["port"] == 14290
    lb = by_kind(
        render(
            spec(
                service={
                    "load_balancer_ip": "10.0.0.5",
                    "load_balancer_source_ranges": ["10.0.0.0/8"],
                    "allocate_load_balancer_node_ports": False,
                    "external_traffic_policy": "Cluster",
                }
            )
        ),
        "Service",
    )[0]["spec"]
    assert lb["loadBalancerIP"] == "10.0.0.5"
    assert lb["loadBalancerSourceRanges"] == ["10.0.0.0/8"]
    assert lb["allocateLoadBalancerNodePorts"] is False
    assert lb["externalTrafficPolicy"] == "Cluster"


def test_fast_and_pure_python_yaml_emitters_agree() -> None:
    s = DeploymentSpec.from_file(EXAMPLES / "production.yaml")
    token = Token.parse(f"edge-gw-westeurope&202611270418&{SIG}")
    manifests = render(s, token)
    pure = yaml.dump_all(
        manifests,
        Dumper=yaml.SafeDumper,
        sort_keys=False,
        explicit_start=True,
        default_flow_style=False,
        width=100,
    )
    assert to_yaml(manifests, reveal_secrets=True) == pure


def test_render_is_callable_from_the_root_whatever_was_imported_first() -> None:
    code = (
        "import apim_selfhosted.rendering, apim_selfhosted.rendering as mod;"
        "from apim_selfhosted.rendering import to_yaml;"
        "from apim_selfhosted import render, DeploymentSpec, Gateway;"
        "spec = DeploymentSpec(gateway=Gateway(subscription_id='s', resource_group='rg',"
        " service_name='contoso', name='gw1'), namespace='apim');"
        "print(len(render(spec)), len(render(spec, None)), callable(mod.to_yaml))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["5", "5", "True"]


def test_token_reference_finds_the_container_reading_the_token_from_a_secret() -> None:
    from apim_selfhosted.rendering import TokenReference, secret_name_in_use, token_reference

    def container(name: str, env: list[dict[str, Any]]) -> dict[str, Any]:
        return {"name": name, "image": "x:1", "env": env}

    plain = {"name": "config.service.auth", "value": "workloadIdentity"}
    from_secret = {
        "name": "config.service.auth",
        "valueFrom": {"secretKeyRef": {"name": "gw-token", "key": "gateway-key"}},
    }
    deployment = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [container("sidecar", [plain]), container("gw", [from_secret])]
                }
            }
        }
    }
    assert token_reference(deployment) == TokenReference("gw", "gw-token", "gateway-key")
    assert secret_name_in_use(deployment) == "gw-token"
    deployment["spec"]["template"]["spec"]["containers"].pop()
    assert token_reference(deployment) is None
    assert secret_name_in_use(deployment) is None
    assert token_reference({}) is None
