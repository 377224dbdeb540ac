"""Chart values -> spec -> render gives what the chart's templates give, object by object.

The expected manifests in ``tests/fixtures/helm/*.chart.yaml`` were written by hand from reading
chart 1.15.1's templates (no Helm binary here). Both sides are reduced to what the objects *do*
(``_essence``): which settings the gateway gets, which Secret value it reads, the container,
pod, Services and budget, with Kubernetes' defaults filled in and references resolved, so object
names and tool labels drop out. Every remaining difference must be listed in ``EXPECTED`` with the
report entry that tells the user about it: a difference the report does not mention fails.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from apim_selfhosted.helm import spec_from_helm_values
from apim_selfhosted.render import render

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "helm"

EXAMPLES = {
    # name: (release, namespace)
    "token": ("edge", "apim"),
    "workload-identity": ("wi", "apim"),
    "production": ("gw-prod", "apim-prod"),
}

_PROBE_DEFAULTS = {
    "initialDelaySeconds": 0,
    "periodSeconds": 10,
    "timeoutSeconds": 1,
    "failureThreshold": 3,
    "successThreshold": 1,
}
_TOOL_PREFIXES = (
    "app.kubernetes.io/",
    "helm.sh/",
    "apim-selfhosted.io/",
    "kubectl.kubernetes.io/",
)


def _load(name: str, suffix: str) -> Any:
    text = (FIXTURES / f"{name}.{suffix}.yaml").read_text()
    return list(yaml.safe_load_all(text)) if suffix == "chart" else yaml.safe_load(text)


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _probe(probe: dict[str, Any] | None) -> dict[str, Any] | None:
    if not probe:
        return None
    out = {**_PROBE_DEFAULTS, **{k: v for k, v in probe.items() if k != "httpGet"}}
    out["httpGet"] = {"scheme": "HTTP", **probe["httpGet"]}
    return out


def _security(pod_sc: dict[str, Any], ctr_sc: dict[str, Any]) -> dict[str, Any]:
    """The effective security settings: the container inherits the pod's, defaults dropped."""
    inherited = {
        k: pod_sc[k]
        for k in ("runAsUser", "runAsGroup", "runAsNonRoot", "seccompProfile")
        if k in pod_sc
    }
    effective = {**inherited, **ctr_sc}
    for key, default in (
        ("runAsNonRoot", False),
        ("privileged", False),
        ("allowPrivilegeEscalation", True),
    ):
        if effective.get(key) == default:
            effective.pop(key)
    pod_only = {k: v for k, v in pod_sc.items() if k in ("fsGroup", "fsGroupChangePolicy")}
    return {"container": effective, "pod": pod_only}


def _essence(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for m in manifests:
        by_kind.setdefault(m["kind"], []).append(m)

    def named(kind: str, name: str) -> dict[str, Any] | None:
        return next((m for m in by_kind.get(kind, []) if m["metadata"]["name"] == name), None)

    (dep,) = by_kind["Deployment"]
    template = dep["spec"]["template"]
    pod = template["spec"]
    labels = template["metadata"]["labels"]
    (ctr,) = pod["containers"]
    port_numbers = {p["name"]: p["containerPort"] for p in ctr["ports"]}
    discovery = [
        s
        for s in by_kind.get("Service", [])
        if s["spec"].get("clusterIP") == "None" and _selects(s["spec"]["selector"], labels)
    ]
    settings: dict[str, str] = {}
    for src in ctr.get("envFrom", []):
        cm = named("ConfigMap", src["configMapRef"]["name"])
        assert cm is not None, "envFrom names a ConfigMap that is not rendered"
        settings.update(cm["data"])
    secrets_read: dict[str, Any] = {}
    proxy: dict[str, str] = {}
    for env in ctr.get("env", []):
        ref = env.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            secret = named("Secret", ref["name"])
            if secret is None:
                secrets_read[env["name"]] = ("existing Secret", ref["name"], ref["key"])
            else:
                secrets_read[env["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
        elif env["name"] in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
            proxy[env["name"]] = env["value"]
        else:
            settings[env["name"]] = env["value"]
    settings = {k: v for k, v in settings.items() if not k.startswith("runtime.deployment.")}
    assert settings.pop("neighborhood.host") == discovery[0]["metadata"]["name"]
    for key in (
        "observability.opentelemetry.system-metrics.enabled",
        "observability.opentelemetry.systemMetrics.enabled",
    ):
        # Off is the gateway's default; the chart writes it always, the library when OTel is on.
        if settings.get(key) == "false":
            settings.pop(key)
    mounts = {}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for mount in ctr.get("volumeMounts", []):
        claim = volumes[mount["name"]]["persistentVolumeClaim"]["claimName"]
        pvc = named("PersistentVolumeClaim", claim)
        mounts[mount["mountPath"]] = pvc["spec"] if pvc else ("existing claim", claim)
    sa_name = pod.get("serviceAccountName")
    sa = named("ServiceAccount", sa_name) if sa_name else None
    zone_spread = [
        {k: v for k, v in c.items() if k != "labelSelector"}
        for c in pod.get("topologySpreadConstraints", [])
        if c["topologyKey"] == "topology.kubernetes.io/zone"
        and _selects(c["labelSelector"]["matchLabels"], labels)
    ]
    strategy = dep["spec"].get("strategy") or {}
    rolling = strategy.get("rollingUpdate", {})
    services = {}
    for svc in by_kind.get("Service", []):
        spec = svc["spec"]
        assert _selects(spec["selector"], labels), "a Service selects no gateway pod"
        role = "discovery" if spec.get("clusterIP") == "None" else "live"
        annotations = {
            k: v
            for k, v in svc["metadata"].get("annotations", {}).items()
            if k != "azure.apim.kubernetes.io/notes" and not k.startswith(_TOOL_PREFIXES)
        }
        entry: dict[str, Any] = {
            "type": spec.get("type", "ClusterIP"),
            "ports": sorted(
                (
                    p["port"],
                    port_numbers.get(p["targetPort"], p["targetPort"]),
                    p.get("protocol", "TCP"),
                )
                for p in spec["ports"]
            ),
            "annotations": annotations,
        }
        if entry["type"] in ("LoadBalancer", "NodePort"):
            entry["externalTrafficPolicy"] = spec.get("externalTrafficPolicy", "Cluster")
        if entry["type"] == "LoadBalancer":
            entry["loadBalancerIP"] = spec.get("loadBalancerIP")
            entry["allocateLoadBalancerNodePorts"] = spec.get("allocateLoadBalancerNodePorts", True)
        services[role] = entry
    pdbs = [
        p["spec"]["maxUnavailable"]
        for p in by_kind.get("PodDisruptionBudget", [])
        if _selects(p["spec"]["selector"]["matchLabels"], labels)
    ]
    return {
        "replicas": dep["spec"].get("replicas"),
        "strategy": {
            "type": strategy.get("type", "RollingUpdate"),
            "maxUnavailable": rolling.get("maxUnavailable", "25%"),
            "maxSurge": rolling.get("maxSurge", "25%"),
        },
        "settings": settings,
        "secrets read": secrets_read,
        "proxy": proxy,
        "image": ctr["image"],
        "imagePullPolicy": ctr.get("imagePullPolicy"),
        "ports": sorted(
            (p["name"], p["containerPort"], p.get("protocol", "TCP")) for p in ctr["ports"]
        ),
        "probes": {
            k: _probe(ctr.get(k)) for k in ("readinessProbe", "livenessProbe", "startupProbe")
        },
        "resources": ctr.get("resources") or None,
        "security": _security(pod.get("securityContext", {}), ctr.get("securityContext", {})),
        "mounts": mounts,
        "volumes": len(volumes),
        "pod labels": {k: v for k, v in labels.items() if not k.startswith(_TOOL_PREFIXES)},
        "pod annotations": {
            k: v
            for k, v in template["metadata"].get("annotations", {}).items()
            if not k.startswith(_TOOL_PREFIXES)
        },
        "service account": None
        if sa is None
        else {
            "labels": {
                k: v
                for k, v in sa["metadata"].get("labels", {}).items()
                if not k.startswith(_TOOL_PREFIXES)
            },
            "annotations": {
                k: v
                for k, v in sa["metadata"].get("annotations", {}).items()
                if not k.startswith(_TOOL_PREFIXES)
            },
            "automount": sa.get("automountServiceAccountToken", True),
        },
        "pod automount": pod.get("automountServiceAccountToken", True),
        "terminationGracePeriodSeconds": pod.get("terminationGracePeriodSeconds", 30),
        "imagePullSecrets": pod.get("imagePullSecrets", []),
        "hostAliases": pod.get("hostAliases", []),
        "nodeSelector": pod.get("nodeSelector", {}),
        "tolerations": pod.get("tolerations", []),
        "affinity": pod.get("affinity", {}),
        "priorityClassName": pod.get("priorityClassName"),
        "dnsPolicy": pod.get("dnsPolicy", "ClusterFirst"),
        "zone spread": zone_spread,
        "other spread": [
            c["topologyKey"]
            for c in pod.get("topologySpreadConstraints", [])
            if c["topologyKey"] != "topology.kubernetes.io/zone"
        ],
        "services": services,
        "disruption budget": pdbs,
        "kinds": sorted(
            m["kind"]
            for m in manifests
            # A Secret nothing reads (the chart's empty one with workload identity) does nothing.
            if m["kind"] != "Secret" or m.get("data")
        ),
    }


# Differences between the chart and the library that remain after reduction, per example:
# essence key -> (report path that must explain it, the library's value, the chart's value).
EXPECTED: dict[str, dict[str, tuple[str, Any, Any]]] = {
    "token": {
        "other spread": ("highAvailability", ["kubernetes.io/hostname"], []),
    },
    "workload-identity": {
        "other spread": ("highAvailability", ["kubernetes.io/hostname"], []),
        "settings": (
            "gateway.auth.type",
            {"config.service.auth.azureAd.clientId": "00000000-0000-0000-0000-000000000000"},
            {},
        ),
    },
    "production": {
        "other spread": ("highAvailability", ["kubernetes.io/hostname"], []),
        "services": (
            "service.annotations",
            {},
            {"service.beta.kubernetes.io/azure-load-balancer-internal": "true"},
        ),
    },
}


def _dict_difference(
    ours: dict[str, Any], theirs: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    only_ours = {k: v for k, v in ours.items() if theirs.get(k) != v}
    only_theirs = {k: v for k, v in theirs.items() if ours.get(k) != v}
    return only_ours, only_theirs


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_values_to_spec_renders_what_the_chart_renders(example: str) -> None:
    release, namespace = EXAMPLES[example]
    values = _load(example, "values")
    spec, report = spec_from_helm_values(
        values,
        release_name=release,
        namespace=namespace,
        subscription_id="00000000-0000-0000-0000-000000000000",
        resource_group="rg-apim",
    )
    assert report.ok, str(report)
    ours = _essence(render(spec, report.token))
    theirs = _essence(_load(example, "chart"))
    expected = EXPECTED[example]
    for key in sorted(set(ours) | set(theirs)):
        if key not in expected:
            assert ours[key] == theirs[key], f"{example}: {key} differs"
            continue
        path, our_part, their_part = expected[key]
        assert report.by_path(path), f"{example}: the report does not explain {key} ({path})"
        if key == "settings":
            assert _dict_difference(ours[key], theirs[key]) == (our_part, their_part)
        elif key == "services":
            assert ours[key]["live"] == theirs[key]["live"]
            ann = _dict_difference(
                ours[key]["discovery"]["annotations"], theirs[key]["discovery"]["annotations"]
            )
            assert ann == (our_part, their_part)
        elif key == "security":
            assert ours[key]["pod"] == theirs[key]["pod"]
            assert _dict_difference(ours[key]["container"], theirs[key]["container"]) == (
                our_part,
                their_part,
            )
        else:
            assert (ours[key], theirs[key]) == (our_part, their_part)


def test_the_comparison_notices_a_changed_value() -> None:
    """The reduction keeps what matters: a changed chart value shows up as a difference."""
    release, namespace = EXAMPLES["production"]
    values = _load("production", "values")
    values["observability"]["statsD"]["sampling"] = 0.25
    values["resources"]["limits"]["memory"] = "2Gi"
    spec, report = spec_from_helm_values(
        values, release_name=release, namespace=namespace, subscription_id="s", resource_group="r"
    )
    ours = _essence(render(spec, report.token))
    theirs = _essence(_load("production", "chart"))
    assert ours["settings"]["telemetry.metrics.local.statsd.sampling"] == "0.25"
    assert theirs["settings"]["telemetry.metrics.local.statsd.sampling"] == "0.5"
    assert ours["resources"] != theirs["resources"]


def test_the_token_from_values_is_the_secret_the_gateway_reads() -> None:
    spec, report = spec_from_helm_values(
        _load("token", "values"), release_name="edge", namespace="apim"
    )
    assert report.token is not None
    assert report.token.gateway_id == "edge-gw"
    assert spec.gateway.name == "edge-gw"
    secret_text = "ZmFrZS1zaWduYXR1cmU="
    assert secret_text not in repr(spec) + str(report) + repr(report) + str(spec.to_dict())
