"""Every rendered manifest validates strictly against the official schemas, 1.29 to the newest."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from kubernetes_validate.utils import schema_contents
from referencing import Registry, Resource

from apim_selfhosted import DeploymentSpec, Token
from apim_selfhosted.rendering import render

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.yaml"))
SCHEMA_DIR = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
VERSIONS = sorted(
    {
        p.name.removeprefix("v").removesuffix("-local-strict")
        for p in SCHEMA_DIR.glob("v1.*-local-strict")
        if tuple(int(x) for x in p.name[1:].split("-")[0].split(".")[:2]) >= (1, 29)
    },
    key=lambda v: tuple(int(x) for x in v.split(".")),
)

GW = {
    "subscription_id": "00000000-0000-0000-0000-000000000000",
    "resource_group": "rg1",
    "service_name": "contoso",
    "name": "gw1",
}

# A spec using every feature, so each rendered field is checked against the schemas.
KITCHEN_SINK: dict[str, Any] = {
    "gateway": GW,
    "namespace": "apim",
    "create_namespace": True,
    "image": {"tag": "2.11.1", "pull_secrets": ["acr"], "pull_policy": "Always"},
    "replicas": None,
    "strategy": {"max_unavailable": "10%", "max_surge": 2},
    "min_ready_seconds": 5,
    "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
    "probes": {"liveness": {"timeout_seconds": 3}, "startup": {"failure_threshold": 30}},
    "dns_policy": "None",
    "dns_config": {
        "nameservers": ["10.0.0.10"],
        "searches": ["svc.cluster.local"],
        "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}],
    },
    "host_aliases": [{"ip": "10.1.1.1", "hostnames": ["contoso.configuration.azure-api.net"]}],
    "proxy": {"http": "http://p:3128", "https": "http://p:3128", "bypass": ".svc"},
    "config_backup": {"enabled": True, "storage_class": "azurefile-csi", "size": "100Mi"},
    "observability": {
        "std_logs": {"format": "json"},
        "statsd": {"enabled": True, "endpoint": "udp://statsd:8125"},
        "opentelemetry": {"enabled": True, "collector_uri": "http://otel:4317"},
    },
    "tls": {"server_cipher_suites": ["TLS_AES_128_GCM_SHA256"]},
    "additional_settings": {"net.server.http.forwarded.proto.enabled": "true"},
    "service": {
        "annotations": {"service.beta.kubernetes.io/azure-load-balancer-internal": "true"},
        "load_balancer_ip": "10.0.0.5",
        "load_balancer_source_ranges": ["10.0.0.0/8"],
        "allocate_load_balancer_node_ports": False,
    },
    "high_availability": {"enabled": True, "max_unavailable": 1},
    "priority_class_name": "gateway-critical",
    "node_selector": {"agentpool": "gw"},
    "tolerations": [
        {
            "key": "dedicated",
            "operator": "Equal",
            "value": "gw",
            "effect": "NoExecute",
            "toleration_seconds": 30,
        }
    ],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}
                        ]
                    }
                ]
            }
        }
    },
    "security_context": {"run_as_group": 1001, "fs_group_change_policy": "OnRootMismatch"},
    "service_account": {"annotations": {"example.com/a": "b"}, "labels": {"x": "y"}},
    "common_labels": {"team": "apis"},
    "common_annotations": {"example.com/owner": "platform"},
    "deployment_annotations": {"example.com/d": "1"},
    "pod_labels": {"tier": "edge"},
    "pod_annotations": {"example.com/p": "1"},
    "dapr": {"enabled": True, "app_id": "gw"},
    "autoscaling": {"min_replicas": 3, "max_replicas": 9, "target_memory_utilization": 80},
    "network_policy": {
        "ingress_from": [{"namespaceSelector": {"matchLabels": {"ingress": "true"}}}],
        "restrict_egress": True,
        "egress_to": [
            {
                "to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}],
                "ports": [{"protocol": "TCP", "port": 8443}],
            }
        ],
    },
}

AUTH_VARIANTS: list[dict[str, Any]] = [
    {"kind": "existing-secret", "secret_name": "gw1-token", "key": "gateway-key"},
    {
        "kind": "entra-app",
        "tenant_id": "t",
        "client_id": "c",
        "client_secret": {"name": "entra", "key": "secret"},
    },
    {"kind": "entra-app", "tenant_id": "t", "client_id": "c", "certificate_secret": "entra-cert"},
    {"kind": "workload-identity", "client_id": "c", "tenant_id": "t"},
]


_VALIDATED: set[tuple[str, str]] = set()


@functools.cache
def _validator(version: str, kind: str, api_version: str) -> jsonschema.Validator:
    """The strict validator kubernetes_validate.validate builds, cached (it reloads per call)."""
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    folder = f"kubernetes-json-schema/v{version}-local-strict"
    schema = schema_contents(f"{folder}/{kind.lower()}-{group_version}.json", version)
    definitions = schema_contents(f"{folder}/_definitions.json", version)
    registry: Registry = Resource.from_contents(schema) @ Registry()
    registry = Resource.from_contents(definitions) @ registry
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def _specs() -> list[tuple[str, DeploymentSpec, Token | None]]:
    out: list[tuple[str, DeploymentSpec, Token | None]] = []
    for path in EXAMPLES:
        s = DeploymentSpec.from_file(path)
        token = Token.parse(f"{s.gateway.name}&202611270418&c2ln")
        out.append((path.name, s, token))
        out.append((f"{path.name} (no token)", s, None))
    sink = DeploymentSpec.from_dict(KITCHEN_SINK)
    out.append(("kitchen-sink", sink, Token.parse("gw1&202611270418&c2ln")))
    for auth in AUTH_VARIANTS:
        out.append(
            (f"auth {auth['kind']}", DeploymentSpec.from_dict({**KITCHEN_SINK, "auth": auth}), None)
        )
    return out


def test_schema_versions_cover_1_29_to_newest() -> None:
    assert VERSIONS[0] == "1.29.0"
    assert len(VERSIONS) >= 9


@pytest.mark.parametrize(
    ("label", "spec", "token"), _specs(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_manifests_validate_strictly(label: str, spec: DeploymentSpec, token: Token | None) -> None:
    manifests = render(spec, token)
    assert manifests
    for version in VERSIONS:
        for manifest in manifests:
            key = (version, json.dumps(manifest, sort_keys=True))
            if key in _VALIDATED:
                continue  # the same object from another spec: checked already
            _VALIDATED.add(key)
            validator = _validator(version, manifest["kind"], manifest["apiVersion"])
            errors = [
                f"{e.message} at {list(e.absolute_path)}" for e in validator.iter_errors(manifest)
            ]
            where = f"{manifest['kind']}/{manifest['metadata']['name']}"
            assert not errors, f"{label}: {where} invalid for {version}: {errors}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_validate_with_kubernetes_validate_itself(path: Path) -> None:
    spec = DeploymentSpec.from_file(path)
    token = Token.parse(f"{spec.gateway.name}&202611270418&c2ln")
    for manifest in render(spec, token):
        for version in (VERSIONS[0], VERSIONS[-1]):
            kubernetes_validate.validate(manifest, version, strict=True)


def test_the_cached_validator_catches_what_the_library_catches() -> None:
    bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "bogus": 1}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, VERSIONS[-1], strict=True)
    assert list(_validator(VERSIONS[-1], "ConfigMap", "v1").iter_errors(bad))
