"""Defaulting of the emulator: the values kube-apiserver fills in before it stores an object.

Defaulting matters for faithful diffs: ``kubectl diff`` and server-side apply compare against
the defaulted object, exactly as against a real cluster.

Example:
    >>> from apim_selfhosted.testing.kube.resources import by_key
    >>> d = Defaulter()
    >>> secret = {"metadata": {"name": "s"}, "stringData": {"k": "v"}}
    >>> d.apply(by_key("secrets"), secret)
    >>> secret["data"], secret["type"], "stringData" in secret
    ({'k': 'dg=='}, 'Opaque', False)
"""

from __future__ import annotations

import base64
import ipaddress
import random
import threading
from typing import Any

from apim_selfhosted.testing.kube.resources import ResourceType

_POD_TEMPLATE_PATHS = {
    "deployments": ("spec", "template"),
    "replicasets": ("spec", "template"),
    "jobs": ("spec", "template"),
    "cronjobs": ("spec", "jobTemplate", "spec", "template"),
}


class Defaulter:
    """Fills in defaults per kind and allocates Service cluster IPs and node ports.

    Args:
        service_cidr: The range cluster IPs come from (the default of kubeadm clusters).

    Example:
        >>> from apim_selfhosted.testing.kube.resources import by_key
        >>> pod_spec = {"containers": [{"name": "c", "image": "nginx"}]}
        >>> dep = {"spec": {"template": {"spec": pod_spec}}}
        >>> Defaulter().apply(by_key("deployments.apps"), dep)
        >>> dep["spec"]["replicas"], pod_spec["containers"][0]["imagePullPolicy"]
        (1, 'Always')
    """

    def __init__(self, *, service_cidr: str = "10.96.0.0/12") -> None:
        self._network = ipaddress.ip_network(service_cidr)
        self._used_ips: set[str] = {str(self._network.network_address + 1)}
        self._used_ports: set[int] = set()
        self._lock = threading.Lock()
        self._random = random.Random(0x6B75)

    def allocate_ip(self) -> str:
        """A free cluster IP from the service range."""
        with self._lock:
            size = self._network.num_addresses
            while True:
                ip = str(self._network.network_address + self._random.randrange(2, size - 1))
                if ip not in self._used_ips:
                    self._used_ips.add(ip)
                    return ip

    def allocate_node_port(self) -> int:
        """A free node port in 30000-32767."""
        with self._lock:
            while True:
                port = self._random.randrange(30000, 32768)
                if port not in self._used_ports:
                    self._used_ports.add(port)
                    return port

    def release(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        """Gives back what a deleted Service held."""
        if rt.plural != "services":
            return
        spec = obj.get("spec") or {}
        with self._lock:
            self._used_ips.discard(spec.get("clusterIP") or "")
            for port in spec.get("ports") or []:
                self._used_ports.discard((port or {}).get("nodePort") or 0)

    def apply(
        self, rt: ResourceType, obj: dict[str, Any], *, old: dict[str, Any] | None = None
    ) -> None:
        """Defaults ``obj`` in place (``old``: the stored object of an update).

        Args:
            rt: The resource type.
            obj: The object about to be stored.
            old: The stored object when this is an update (allocations are kept).
        """
        _omit_empty_metadata(obj)
        handler = getattr(self, f"_default_{rt.plural}", None)
        if handler is not None:
            handler(obj, old)
        path = _POD_TEMPLATE_PATHS.get(rt.plural)
        if path is not None:
            template: Any = obj
            for step in path:
                template = template.get(step) if isinstance(template, dict) else None
            if isinstance(template, dict):
                _omit_empty_metadata(template)
        if path is not None:
            node: Any = obj
            for step in path:
                if not isinstance(node, dict):
                    node = None
                    break
                node = node.setdefault(step, {})
            if isinstance(node, dict):
                _pod_spec(
                    node.setdefault("spec", {}),
                    template=True,
                    job=rt.plural != "deployments" and rt.plural != "replicasets",
                )

    # --- per kind ------------------------------------------------------------------------

    def _default_secrets(self, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict) and string_data:
            data = obj.get("data")
            if not isinstance(data, dict):
                data = obj["data"] = {}
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
        obj.setdefault("type", "Opaque")

    def _default_services(self, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        spec = obj.setdefault("spec", {})
        old_spec = (old or {}).get("spec") or {}
        svc_type = spec.setdefault("type", "ClusterIP")
        if svc_type != "ExternalName":
            if not spec.get("clusterIP"):
                spec["clusterIP"] = old_spec.get("clusterIP") or self.allocate_ip()
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
            if spec["clusterIP"] != "None":
                spec.setdefault("ipFamilies", ["IPv4"])
                spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("sessionAffinity", "None")
        old_ports = {
            (p.get("port"), p.get("protocol", "TCP")): p for p in old_spec.get("ports") or []
        }
        for port in spec.get("ports") or []:
            if not isinstance(port, dict):
                continue
            port.setdefault("protocol", "TCP")
            if "targetPort" not in port and "port" in port:
                port["targetPort"] = port["port"]
            if svc_type in ("NodePort", "LoadBalancer") and not port.get("nodePort"):
                previous = old_ports.get((port.get("port"), port["protocol"])) or {}
                port["nodePort"] = previous.get("nodePort") or self.allocate_node_port()
        if svc_type in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        if svc_type == "LoadBalancer":
            spec.setdefault("allocateLoadBalancerNodePorts", True)
        obj.setdefault("status", {}).setdefault("loadBalancer", {})

    def _default_deployments(self, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxSurge", "25%")
            rolling.setdefault("maxUnavailable", "25%")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)

    def _default_replicasets(self, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        obj.setdefault("spec", {}).setdefault("replicas", 1)

    def _default_pods(self, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        spec = obj.setdefault("spec", {})
        _pod_spec(spec, template=False, job=False)
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        spec.setdefault("priority", 0)
        spec.setdefault(
            "tolerations",
            [
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                },
            ],
        )
        obj.setdefault("status", {}).setdefault("phase", "Pending")
        obj["status"].setdefault("qosClass", _qos(spec))

    def _default_jobs(self, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completions", 1)
        spec.setdefault("parallelism", 1)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
        spec.setdefault("manualSelector", None)
        if spec.get("manualSelector") is None:
            spec.pop("manualSelector")

    def _default_cronjobs(self, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("suspend", False)
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)

    def _default_persistentvolumeclaims(
        self, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        obj.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")
        obj.setdefault("status", {}).setdefault("phase", "Pending")

    def _default_horizontalpodautoscalers(
        self, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        obj.setdefault("spec", {}).setdefault("minReplicas", 1)

    def _default_networkpolicies(self, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        spec = obj.setdefault("spec", {})
        if "policyTypes" not in spec:
            types = ["Ingress"]
            if spec.get("egress"):
                types.append("Egress")
            spec["policyTypes"] = types
        for direction in ("ingress", "egress"):
            for rule in spec.get(direction) or []:
                for port in (rule or {}).get("ports") or []:
                    if isinstance(port, dict):
                        port.setdefault("protocol", "TCP")

    def _default_namespaces(self, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        meta = obj.setdefault("metadata", {})
        name = meta.get("name")
        if name:
            labels = meta.get("labels")
            if not isinstance(labels, dict):
                labels = meta["labels"] = {}
            labels["kubernetes.io/metadata.name"] = name


def _qos(spec: dict[str, Any]) -> str:
    containers = spec.get("containers") or []
    limits = [((c or {}).get("resources") or {}).get("limits") or {} for c in containers]
    requests = [((c or {}).get("resources") or {}).get("requests") or {} for c in containers]
    if not any(limits) and not any(requests):
        return "BestEffort"
    guaranteed = all(
        lim.get("cpu") and lim.get("memory") and all(req.get(k, lim[k]) == lim[k] for k in lim)
        for lim, req in zip(limits, requests, strict=False)
    )
    return "Guaranteed" if guaranteed else "Burstable"


def _pod_spec(spec: dict[str, Any], *, template: bool, job: bool) -> None:
    if not job:
        spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for group in ("initContainers", "containers"):
        for container in spec.get(group) or []:
            if isinstance(container, dict):
                _container(container)
    for volume in spec.get("volumes") or []:
        if not isinstance(volume, dict):
            continue
        for source in ("secret", "configMap"):
            if isinstance(volume.get(source), dict):
                volume[source].setdefault("defaultMode", 420)
        if isinstance(volume.get("projected"), dict):
            volume["projected"].setdefault("defaultMode", 420)


def _container(c: dict[str, Any]) -> None:
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    if "imagePullPolicy" not in c:
        image = str(c.get("image") or "")
        last = image.rsplit("/", 1)[-1]
        tag = last.split(":", 1)[1] if ":" in last and "@" not in last else ""
        c["imagePullPolicy"] = (
            "Always" if (not tag and "@" not in image) or tag == "latest" else "IfNotPresent"
        )
    c.setdefault("resources", {})
    for port in c.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = c.get(probe_name)
        if not isinstance(probe, dict):
            continue
        probe.setdefault("timeoutSeconds", 1)
        probe.setdefault("periodSeconds", 10)
        probe.setdefault("successThreshold", 1)
        probe.setdefault("failureThreshold", 3)
        if isinstance(probe.get("httpGet"), dict):
            probe["httpGet"].setdefault("scheme", "HTTP")
    for env in c.get("env") or []:
        ref = ((env or {}).get("valueFrom") or {}).get("fieldRef")
        if isinstance(ref, dict):
            ref.setdefault("apiVersion", "v1")


#: ObjectMeta fields Go encodes with ``omitempty``: kube-apiserver never stores them empty.
_OMITEMPTY_METADATA = ("labels", "annotations", "finalizers", "ownerReferences")


def _omit_empty_metadata(obj: dict[str, Any]) -> None:
    """Drops empty ``omitempty`` maps/lists of ``obj.metadata`` (in place), as decoding does.

    >>> o = {"metadata": {"name": "a", "annotations": {}, "labels": {"x": "1"}}}
    >>> _omit_empty_metadata(o); o
    {'metadata': {'name': 'a', 'labels': {'x': '1'}}}
    """
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        for key in _OMITEMPTY_METADATA:
            if key in meta and not meta[key]:
                del meta[key]
