"""What a gateway's manifests *do*, without names and tool labels: for comparing renderings.

``essence(manifests)`` reduces the objects of one gateway (from the library, the chart or the
portal) to the settings the gateway gets, the Secret values it reads, its container, pod,
Services and budget, with Kubernetes' defaults filled in and references resolved.
"""

from __future__ import annotations

import base64
from typing import Any

_PROBE_DEFAULTS = {
    "initialDelaySeconds": 0,
    "periodSeconds": 10,
    "timeoutSeconds": 1,
    "failureThreshold": 3,
    "successThreshold": 1,
}
# The gateway's own defaults (settings reference): writing them or not changes nothing.
_GATEWAY_DEFAULTS = {
    "telemetry.metrics.cloud": "true",
    "telemetry.logs.std": "text",
    "telemetry.logs.std.level": "info",
    "telemetry.logs.std.color": "true",
    "telemetry.logs.local": "auto",
    "telemetry.logs.local.json.endpoint": "127.0.0.1:8888",
    "telemetry.metrics.local": "none",
    "observability.opentelemetry.enabled": "false",
    "observability.opentelemetry.system-metrics.enabled": "false",
    "observability.opentelemetry.systemMetrics.enabled": "false",
}
_TOOL_PREFIXES = (
    "app.kubernetes.io/",
    "helm.sh/",
    "apim-selfhosted.io/",
    "kubectl.kubernetes.io/",
)


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


def essence(manifests: list[dict[str, Any]]) -> dict[str, Any]:
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
            elif ref["key"] in secret.get("stringData", {}):
                secrets_read[env["name"]] = secret["stringData"][ref["key"]]
            else:
                secrets_read[env["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
        elif env["name"] in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
            proxy[env["name"]] = env["value"]
        else:
            settings[env["name"]] = env["value"]
    settings = {k: v for k, v in settings.items() if not k.startswith("runtime.deployment.")}
    peers = settings.pop("neighborhood.host", None)
    assert peers is None or peers == discovery[0]["metadata"]["name"]
    settings = {k: v for k, v in settings.items() if _GATEWAY_DEFAULTS.get(k) != v}
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
        "imagePullPolicy": ctr.get("imagePullPolicy")
        or (
            "Always"
            if ctr["image"].endswith(":latest") or ":" not in ctr["image"]
            else "IfNotPresent"
        ),
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
            if m["kind"] != "Secret" or m.get("data") or m.get("stringData")
        ),
    }
