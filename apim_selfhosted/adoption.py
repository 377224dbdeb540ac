"""Adopt what users already run: the portal's YAML and live clusters in, with a report.

Most teams that would use this library already run a self-hosted gateway, deployed from the
portal's YAML or the official Helm chart (see :mod:`apim_selfhosted.helm` for chart values).
This module turns what they have into a :class:`~apim_selfhosted.models.DeploymentSpec`:

* :func:`spec_from_manifests` reads Kubernetes YAML (the portal's, the repository's
  configuration-backup example, or ``kubectl get -o yaml`` output);
* :func:`adopt` reads a live gateway Deployment and the objects it uses from a cluster.

Nothing is dropped silently: every value the library cannot honour, honours differently, or had
to assume becomes an :class:`ImportIssue` in an :class:`ImportReport`, with the path it came from
and why. Secret values are never copied into a spec or a report; a gateway token found in the
input is carried as :attr:`ImportReport.token` (a :class:`~apim_selfhosted.models.Token`, whose
value never shows).

Example:
    >>> text = '''
    ... apiVersion: v1
    ... kind: ConfigMap
    ... metadata: {name: gw1-env}
    ... data: {config.service.endpoint: "contoso.configuration.azure-api.net"}
    ... ---
    ... apiVersion: apps/v1
    ... kind: Deployment
    ... metadata: {name: gw1}
    ... spec:
    ...   replicas: 2
    ...   selector: {matchLabels: {app: gw1}}
    ...   template:
    ...     metadata: {labels: {app: gw1}}
    ...     spec:
    ...       containers:
    ...       - name: gw1
    ...         image: mcr.microsoft.com/azure-api-management/gateway:2.11.1
    ...         env:
    ...         - name: config.service.auth
    ...           valueFrom: {secretKeyRef: {name: gw1-token, key: value}}
    ...         envFrom:
    ...         - configMapRef: {name: gw1-env}
    ... '''
    >>> spec, report = spec_from_manifests(text, namespace="apim")
    >>> spec.gateway.service_name, spec.replicas, spec.auth.kind, spec.auth.secret_name
    ('contoso', 2, 'existing-secret', 'gw1-token')
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from apim_selfhosted.errors import SpecError, TokenError
from apim_selfhosted.models import MAX_BASE_NAME, AzureCloud, DeploymentSpec, Token
from apim_selfhosted.results import Finding

if TYPE_CHECKING:
    from apim_selfhosted.kube import KubernetesApplier
    from apim_selfhosted.profile import ProductionProfile

logger = logging.getLogger(__name__)

__all__ = [
    "PLACEHOLDER",
    "AdoptResult",
    "ImportIssue",
    "ImportReport",
    "IssueKind",
    "ObjectTakeover",
    "adopt",
    "spec_from_manifests",
]

#: Stand-in for identifiers the input does not carry (subscription id, resource group ...).
#: A spec holding it gets an ``error`` issue at the field's path: replace it before deploying.
PLACEHOLDER = "replace-me"

Severity = Literal["error", "warning", "info"]


class IssueKind(StrEnum):
    """What happened to one input value on the way into (or out of) a spec.

    Example:
        >>> IssueKind.UNSUPPORTED.value
        'unsupported'
    """

    #: The library cannot honour it; it is not in the result.
    UNSUPPORTED = "unsupported"
    #: Honoured, but in a different form (the message says how).
    APPROXIMATED = "approximated"
    #: Not in the input; the value Kubernetes or the chart would use was assumed.
    ASSUMED = "assumed"
    #: Not in the input and not guessable: the result holds :data:`PLACEHOLDER`.
    PLACEHOLDER = "placeholder"
    #: A secret value: never copied into a spec, report or file.
    SECRET = "secret"  # noqa: S105 (a kind of issue, not a secret)
    #: Has no effect in the source either (a disabled feature's settings, a label the library
    #: sets itself).
    IGNORED = "ignored"


class ImportIssue(BaseModel):
    """One value that did not map one-to-one, with where it came from and why.

    Example:
        >>> issue = ImportIssue(path="ingress.controller.enabled", kind="unsupported",
        ...     severity="warning", message="the ingress controller is not deployed")
        >>> print(issue)
        warning  unsupported   ingress.controller.enabled: the ingress controller is not deployed
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(
        description="Where the value is: a Helm values path (gateway.auth.type), a spec field "
        "path, or '<Kind>/<name>: <field path>' for manifests."
    )
    kind: IssueKind = Field(description="What happened to it.")
    severity: Severity = Field(
        description="'error': the result is not usable as is (fill in a placeholder, create a "
        "Secret); 'warning': behaviour changes; 'info': for the record."
    )
    message: str = Field(description="What happened and why, and what to do if anything.")

    def __str__(self) -> str:
        return f"{self.severity:<8} {self.kind.value:<13} {self.path}: {self.message}"


class ImportReport(BaseModel):
    """Everything that did not map one-to-one between a source and a spec.

    Attributes:
        token: A gateway token found in the input (Helm ``gateway.auth.key`` or a token
            Secret), for ``deploy(token=...)``; its value never shows in ``repr``/``str``.

    Example:
        >>> report = ImportReport(source="values.yaml", issues=(ImportIssue(
        ...     path="gateway.name", kind="placeholder", severity="error",
        ...     message="not in the values"),))
        >>> report.ok, [i.path for i in report.errors]
        (False, ['gateway.name'])
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(description="What was read: a file name, 'helm values', a cluster path.")
    issues: tuple[ImportIssue, ...] = Field(default=(), description="The issues, in input order.")
    token: Token | None = Field(
        default=None, description="A gateway token found in the input (value never shown)."
    )

    @property
    def ok(self) -> bool:
        """True when no issue has severity ``error``."""
        return not self.errors

    @property
    def errors(self) -> tuple[ImportIssue, ...]:
        """Issues of severity ``error``."""
        return tuple(i for i in self.issues if i.severity == "error")

    @property
    def warnings(self) -> tuple[ImportIssue, ...]:
        """Issues of severity ``warning``."""
        return tuple(i for i in self.issues if i.severity == "warning")

    def by_path(self, path: str) -> tuple[ImportIssue, ...]:
        """The issues about one path (exactly, or below it).

        Args:
            path: A values, spec or manifest path, e.g. ``observability.logs.local``.

        Returns:
            The matching issues.

        Example:
            >>> ImportReport(source="x").by_path("service")
            ()
        """
        return tuple(
            i for i in self.issues if i.path == path or i.path.startswith((path + ".", path + "["))
        )

    def __str__(self) -> str:
        counts = {s: sum(1 for i in self.issues if i.severity == s) for s in ("error", "warning")}
        head = (
            f"import of {self.source}: {len(self.issues)} issue(s), {counts['error']} error(s), "
            f"{counts['warning']} warning(s)"
        )
        if self.token is not None:
            head += f"; a gateway token was found ({self.token.fingerprint}), not written anywhere"
        return "\n".join([head, *(f"  {i}" for i in self.issues)])

    def _repr_markdown_(self) -> str:
        rows = [
            f"| {i.severity} | {i.kind.value} | `{i.path}` | {i.message.replace('|', '/')} |"
            for i in self.issues
        ]
        table = ["| severity | kind | path | what and why |", "|---|---|---|---|", *rows]
        return f"**Import of {self.source}** ({len(self.issues)} issues)\n\n" + "\n".join(table)


class _Issues:
    """Collects issues while a converter walks its input."""

    def __init__(self) -> None:
        self.items: list[ImportIssue] = []

    def add(self, path: str, kind: IssueKind, severity: Severity, message: str) -> None:
        self.items.append(ImportIssue(path=path, kind=kind, severity=severity, message=message))

    def unsupported(self, path: str, message: str, *, severity: Severity = "warning") -> None:
        self.add(path, IssueKind.UNSUPPORTED, severity, message)

    def approximated(self, path: str, message: str, *, severity: Severity = "info") -> None:
        self.add(path, IssueKind.APPROXIMATED, severity, message)

    def assumed(self, path: str, message: str) -> None:
        self.add(path, IssueKind.ASSUMED, "info", message)

    def placeholder(self, path: str, message: str) -> None:
        self.add(path, IssueKind.PLACEHOLDER, "error", message)

    def secret(self, path: str, message: str, *, severity: Severity = "info") -> None:
        self.add(path, IssueKind.SECRET, severity, message)

    def ignored(self, path: str, message: str) -> None:
        self.add(path, IssueKind.IGNORED, "info", message)


# ---------------------------------------------------------------------------------------------
# Shared pieces: the gateway's identity from a configuration endpoint.
# ---------------------------------------------------------------------------------------------

_CONFIG_HOST_RE = re.compile(
    r"^(?P<service>[A-Za-z][A-Za-z0-9-]{0,49})\.(?P<suffix>configuration\.azure-api\.(?:net|cn|us))$"
)


def _gateway_data(
    endpoint: str,
    *,
    path: str,
    issues: _Issues,
    gateway_name: str | None,
    name_path: str,
    subscription_id: str | None,
    resource_group: str | None,
    service_name: str | None,
) -> dict[str, Any]:
    """The ``gateway`` part of a spec from a configuration endpoint and what else is known."""
    text = endpoint.strip()
    host = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://", "", text).split("/", 1)[0]
    bare_host = host.split(":", 1)[0].lower()
    match = _CONFIG_HOST_RE.match(bare_host)
    data: dict[str, Any] = {}
    cloud = AzureCloud.PUBLIC
    derived_service = None
    if match:
        derived_service = match["service"]
        cloud = next(c for c in AzureCloud if c.config_endpoint_suffix == match["suffix"])
    service = service_name or derived_service
    if service is None:
        issues.placeholder(
            "gateway.service_name",
            f"the configuration endpoint host {bare_host!r} does not name the APIM service "
            "(not <service>.configuration.azure-api.net); set gateway.service_name",
        )
        service = PLACEHOLDER
    data["service_name"] = service
    if cloud is not AzureCloud.PUBLIC:
        data["cloud"] = cloud.value
    derived_url = f"https://{service}.{cloud.config_endpoint_suffix}"
    if f"https://{host}" != derived_url:
        data["config_endpoint"] = text
    if not text.lower().startswith("https://"):
        issues.approximated(
            path,
            f"written as https://{host}: the library always gives the gateway an https URL "
            "(the gateway accepts both forms)",
        )
    for field, given, what in (
        ("subscription_id", subscription_id, "the Azure subscription id of the APIM service"),
        ("resource_group", resource_group, "the resource group of the APIM service"),
    ):
        if given:
            data[field] = given
        else:
            issues.placeholder(
                f"gateway.{field}",
                f"{what} is not in the input; replace {PLACEHOLDER!r} (it is needed to issue "
                "tokens and to find the gateway in Azure)",
            )
            data[field] = PLACEHOLDER
    if gateway_name:
        data["name"] = gateway_name
    else:
        issues.placeholder(
            name_path,
            f"the gateway name in API Management is not in the input; replace {PLACEHOLDER!r}",
        )
        data["name"] = PLACEHOLDER
    return data


def _parse_token(text: Any, *, path: str, issues: _Issues) -> Token | None:
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        return Token.parse(text)
    except TokenError as exc:
        issues.secret(
            path,
            f"the value is not a gateway token ({exc}); it was not copied",
            severity="warning",
        )
        return None


def _validated(data: dict[str, Any], *, source: str) -> DeploymentSpec:
    return DeploymentSpec.from_dict(data, source=source)


def _existing_objects(
    objs: Sequence[Mapping[str, Any]], spec: DeploymentSpec
) -> dict[str, Any] | None:
    """``spec.existing`` for objects another tool made, or None when there is nothing to keep.

    None when the library made the objects (its own selector), when the Deployment's name is
    not the spec's base name (too long for the library's names) or when its selector uses
    ``matchExpressions`` (a spec holds match labels only): then the Deployment is replaced.
    """
    from apim_selfhosted.rendering import selector_labels, settings_hash

    dep = _find_gateway_deployment(objs)
    dspec = dep.get("spec") or {}
    selector = dspec.get("selector") or {}
    match = {str(k): str(v) for k, v in (selector.get("matchLabels") or {}).items()}
    if (dep.get("metadata") or {}).get("name") != spec.base_name:
        return None
    if not match or selector.get("matchExpressions") or match == selector_labels(spec):
        return None
    template_meta = (dspec.get("template") or {}).get("metadata") or {}
    pod_labels = {str(k): str(v) for k, v in (template_meta.get("labels") or {}).items()}
    existing: dict[str, Any] = {
        "selector": match,
        "pod_labels": pod_labels,
        "pod_annotations": {
            str(k): str(v) for k, v in (template_meta.get("annotations") or {}).items()
        },
        "config_hash": settings_hash(spec),
    }
    containers = ((dspec.get("template") or {}).get("spec") or {}).get("containers") or []
    container = str(containers[0].get("name")) if containers else spec.base_name
    if container != spec.base_name:
        existing["container"] = container
    for source in (containers[0].get("envFrom") or []) if containers else []:
        ref = (source.get("configMapRef") or {}).get("name")
        if ref:
            if ref != spec.config_map_name:
                existing["config_map"] = str(ref)
            break
    for obj in objs:
        if obj.get("kind") != "Service":
            continue
        body = obj.get("spec") or {}
        svc_selector = body.get("selector") or {}
        if not svc_selector or not _selects(svc_selector, pod_labels):
            continue
        name = str((obj.get("metadata") or {}).get("name"))
        if body.get("clusterIP") == "None":
            if name != spec.discovery_service_name:
                existing.setdefault("discovery_service", name)
        elif name != spec.live_service_name:
            existing.setdefault("live_service", name)
    return existing


def _with_existing(
    data: dict[str, Any], objs: Sequence[Mapping[str, Any]], *, source: str
) -> DeploymentSpec:
    spec = _validated(data, source=source)
    existing = _existing_objects(objs, spec)
    if existing is None:
        return spec
    return _validated({**data, "existing": existing}, source=source)


# ---------------------------------------------------------------------------------------------
# Manifests -> spec.
# ---------------------------------------------------------------------------------------------

#: Labels that tools set on their objects: not carried into ``common_labels``.
_TOOL_LABEL_PREFIXES = ("app.kubernetes.io/", "helm.sh/", "apim-selfhosted.io/")
_TOOL_LABELS = {"pod-template-hash", "azure.workload.identity/use"}
_TOOL_ANNOTATION_PREFIXES = (
    "kubectl.kubernetes.io/",
    "deployment.kubernetes.io/",
    "meta.helm.sh/",
    "apim-selfhosted.io/",
)
_K8S_PROBE_DEFAULTS = {
    "initialDelaySeconds": 0,
    "periodSeconds": 10,
    "timeoutSeconds": 1,
    "failureThreshold": 3,
    "successThreshold": 1,
}
_STANDARD_PORTS = {("http", 8080, "TCP"), ("https", 8081, "TCP")}
_DISCOVERY_PORTS = {("rate-limit-dc", 4290, "UDP"), ("dc-heartbeat", 4291, "UDP")}
# Settings that say how the gateway authenticates (read into ``auth`` and ``gateway``).
_AUTH_SETTINGS = {
    "config.service.endpoint",
    "gateway.name",
    "config.service.auth",
    "config.service.auth.azureAd.tenantId",
    "config.service.auth.azureAd.clientId",
    "config.service.auth.azureAd.clientSecret",
    "config.service.auth.azureAd.certificatePath",
    "config.service.auth.azureAd.authority",
}
_SETTING_ENV_RE = re.compile(r"^[a-z][A-Za-z0-9-]*(\.[A-Za-z0-9-]+)+$")
# Gateway settings the library writes itself (the values read here only tell what ran before).
_LIBRARY_SETTINGS = {
    "runtime.deployment.artifact.source",
    "runtime.deployment.artifact.version",
    "runtime.deployment.mechanism",
    "runtime.deployment.orchestrator.type",
    "runtime.deployment.highAvailability.enabled",
    "runtime.deployment.dapr.enabled",
}


def _where(obj: Mapping[str, Any], field: str = "") -> str:
    meta = obj.get("metadata") or {}
    ref = f"{obj.get('kind', '?')}/{meta.get('name', '?')}"
    return f"{ref}: {field}" if field else ref


def _labels_common(objs: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    common: dict[str, str] | None = None
    for obj in objs:
        labels = {
            k: str(v)
            for k, v in ((obj.get("metadata") or {}).get("labels") or {}).items()
            if not k.startswith(_TOOL_LABEL_PREFIXES) and k not in _TOOL_LABELS
        }
        common = (
            labels if common is None else {k: v for k, v in common.items() if labels.get(k) == v}
        )
    return common or {}


def _split_image(image: str) -> tuple[str, str | None, str | None]:
    digest = None
    if "@" in image:
        image, digest = image.split("@", 1)
    repo, tag = image, None
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = image.rsplit(":", 1)
    return repo, tag, digest


def _probe_data(probe: Any, *, path: str, issues: _Issues) -> dict[str, Any] | None:
    """An HttpProbe as data from a Kubernetes probe, or None when it cannot be expressed."""
    if not isinstance(probe, Mapping) or not probe:
        return None
    http = probe.get("httpGet")
    if not isinstance(http, Mapping):
        kinds = sorted(k for k in probe if k in {"tcpSocket", "exec", "grpc"})
        issues.unsupported(
            path,
            f"only HTTP probes can be expressed (this one is {', '.join(kinds) or 'empty'}); "
            "left out",
        )
        return None
    extra = sorted(k for k in http if k not in {"path", "port", "scheme"})
    extra += sorted(k for k in probe if k not in {"httpGet", *_K8S_PROBE_DEFAULTS})
    extra = [k for k in extra if k != "terminationGracePeriodSeconds" or probe.get(k) is not None]
    if extra:
        issues.unsupported(path, f"probe fields {extra} cannot be expressed; left out")
    data: dict[str, Any] = {
        "path": str(http.get("path", "/")),
        "port": http.get("port", "http"),
        "scheme": str(http.get("scheme", "HTTP")).upper(),
    }
    for key, field in (
        ("initialDelaySeconds", "initial_delay_seconds"),
        ("periodSeconds", "period_seconds"),
        ("timeoutSeconds", "timeout_seconds"),
        ("failureThreshold", "failure_threshold"),
        ("successThreshold", "success_threshold"),
    ):
        value = probe.get(key)
        data[field] = _K8S_PROBE_DEFAULTS[key] if value is None else value
    return data


def _security_data(
    pod_sc: Mapping[str, Any] | None,
    container_sc: Mapping[str, Any] | None,
    *,
    pod_path: str,
    container_path: str,
    issues: _Issues,
) -> dict[str, Any] | None:
    """A SecurityContext as data from the pod's and the container's security contexts.

    Fields nobody set keep Kubernetes' meaning (run as the image's user, privilege escalation
    allowed, capabilities kept, no seccomp profile), so the spec renders the same pod.
    """
    pod_sc = dict(pod_sc or {})
    container_sc = dict(container_sc or {})
    if not pod_sc and not container_sc:
        return None
    out: dict[str, Any] = {
        "run_as_non_root": False,
        "run_as_user": None,
        "run_as_group": None,
        "fs_group": None,
        "allow_privilege_escalation": True,
        "drop_all_capabilities": False,
        "seccomp_profile": None,
    }
    both = {
        "runAsNonRoot": "run_as_non_root",
        "runAsUser": "run_as_user",
        "runAsGroup": "run_as_group",
    }
    for key, field in both.items():
        pod_value, container_value = pod_sc.pop(key, None), container_sc.pop(key, None)
        if pod_value is not None and container_value is not None and pod_value != container_value:
            issues.approximated(
                f"{container_path}.{key}",
                f"the pod says {pod_value!r} and the container {container_value!r}; the spec "
                "has one value for both: the container's is kept",
                severity="warning",
            )
        value = container_value if container_value is not None else pod_value
        if value is not None:
            out[field] = value
    for key, field in (("fsGroup", "fs_group"), ("fsGroupChangePolicy", "fs_group_change_policy")):
        if key in pod_sc:
            out[field] = pod_sc.pop(key)
    seccomp = [sc.pop("seccompProfile", None) for sc in (pod_sc, container_sc)]
    given = [s for s in seccomp if isinstance(s, Mapping)]
    if given:
        kind = given[-1].get("type")
        if kind in ("RuntimeDefault", "Unconfined"):
            out["seccomp_profile"] = kind
        else:
            issues.unsupported(
                f"{container_path}.seccompProfile",
                f"seccomp profile type {kind!r} cannot be expressed (RuntimeDefault or "
                "Unconfined); left out",
            )
    if "allowPrivilegeEscalation" in container_sc:
        out["allow_privilege_escalation"] = bool(container_sc.pop("allowPrivilegeEscalation"))
    caps = container_sc.pop("capabilities", None) or {}
    drop = [str(c).upper() for c in caps.get("drop") or []]
    if "ALL" in drop:
        out["drop_all_capabilities"] = True
    if [c for c in drop if c != "ALL"]:
        issues.unsupported(
            f"{container_path}.capabilities.drop",
            "only dropping ALL capabilities can be expressed; the other drops were left out",
        )
    if caps.get("add"):
        issues.unsupported(
            f"{container_path}.capabilities.add",
            "added capabilities cannot be expressed (the gateway needs none); left out",
        )
    if container_sc.pop("privileged", False):
        issues.unsupported(
            f"{container_path}.privileged",
            "privileged containers cannot be expressed (the gateway needs no privileges); "
            "the spec renders privileged: false",
        )
    if container_sc.pop("readOnlyRootFilesystem", False):
        issues.unsupported(
            f"{container_path}.readOnlyRootFilesystem",
            "the gateway does not support a read-only root file system (it writes to it); left out",
        )
    for where, rest in ((pod_path, pod_sc), (container_path, container_sc)):
        for key in sorted(rest):
            if rest[key] not in (None, {}, [], False):
                issues.unsupported(f"{where}.{key}", "cannot be expressed in a spec; left out")
    return out


def _tolerations(items: Any, *, path: str, issues: _Issues) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(items or []):
        if not isinstance(item, Mapping):
            issues.unsupported(f"{path}[{i}]", "not a toleration mapping; left out")
            continue
        t: dict[str, Any] = {}
        for key, field in (
            ("key", "key"),
            ("operator", "operator"),
            ("value", "value"),
            ("effect", "effect"),
            ("tolerationSeconds", "toleration_seconds"),
        ):
            if item.get(key) not in (None, ""):
                t[field] = item[key]
        out.append(t)
    return out


def _resources(value: Any, *, path: str, issues: _Issues) -> dict[str, Any] | None:
    if not isinstance(value, Mapping) or not value:
        return None
    out: dict[str, Any] = {}
    for key in ("requests", "limits"):
        if value.get(key):
            out[key] = {k: str(v) for k, v in value[key].items()}
    for key in sorted(k for k in value if k not in ("requests", "limits")):
        issues.unsupported(f"{path}.{key}", "only requests and limits can be expressed; left out")
    return out or None


def _settings_from_config_map(
    data: Mapping[str, Any],
    *,
    where: str,
    spec: dict[str, Any],
    base: str,
    issues: _Issues,
) -> dict[str, Any]:
    """Fills ``spec`` from gateway settings; returns the auth-related settings found."""
    settings = {str(k): str(v) for k, v in data.items()}
    auth: dict[str, Any] = {}
    obs: dict[str, Any] = {}
    std: dict[str, Any] = {}
    local: dict[str, Any] = {}
    statsd: dict[str, Any] = {}
    otel: dict[str, Any] = {}
    tls: dict[str, Any] = {}
    additional: dict[str, str] = {}
    for key, value in settings.items():
        path = f"{where}.{key}"
        if key in _AUTH_SETTINGS:
            auth[key] = value
        elif key in _LIBRARY_SETTINGS:
            issues.ignored(path, "the library writes its own deployment identification")
        elif key == "neighborhood.host":
            if value not in (f"{base}-instance-discovery",):
                issues.approximated(
                    path,
                    f"the gateway will find its peers through Service '{base}-instance-"
                    f"discovery' (was {value!r})",
                )
        elif key == "telemetry.metrics.cloud":
            obs["azure_monitor_metrics"] = value.lower() == "true"
        elif key == "telemetry.logs.std":
            std["format"] = value
        elif key == "telemetry.logs.std.level":
            std["level"] = value
        elif key == "telemetry.logs.std.color":
            std["color"] = value.lower() == "true"
        elif key == "telemetry.logs.local":
            local["type"] = value.lower()
        elif key.startswith("telemetry.logs.local.") and key.count(".") == 4:
            _, _, _, sink, what = key.split(".")
            field = f"{sink}_{what}"
            local[field] = int(value) if what == "facility" and value.isdigit() else value
        elif key == "telemetry.metrics.local":
            statsd["enabled"] = value.lower() == "statsd"
            if value.lower() not in ("statsd", "none"):
                issues.unsupported(path, f"local metrics {value!r} cannot be expressed; left out")
        elif key == "telemetry.metrics.local.statsd.endpoint":
            statsd["endpoint"] = value
        elif key == "telemetry.metrics.local.statsd.sampling":
            statsd["sampling"] = float(value)
        elif key == "telemetry.metrics.local.statsd.tag-format":
            statsd["tag_format"] = value
        elif key == "observability.opentelemetry.enabled":
            otel["enabled"] = value.lower() == "true"
        elif key == "observability.opentelemetry.collector.uri":
            otel["collector_uri"] = value
        elif key == "observability.opentelemetry.histogram.buckets":
            otel["histogram_buckets"] = [float(b) for b in value.split(",") if b.strip()]
        elif key in (
            "observability.opentelemetry.systemMetrics.enabled",
            "observability.opentelemetry.system-metrics.enabled",
        ):
            otel["system_metrics"] = value.lower() == "true"
        elif key == "net.server.tls.ciphers.allowed-suites":
            tls["server_cipher_suites"] = [s.strip() for s in value.split(",") if s.strip()]
        elif key == "net.client.tls.ciphers.allowed-suites":
            tls["client_cipher_suites"] = [s.strip() for s in value.split(",") if s.strip()]
        else:
            additional[key] = value
    if local:
        if local.get("type") == "none":
            local.pop("json_endpoint", None)
        std_keys = {"type"} | {
            f"{s}_{w}" for s in ("localsyslog", "rfc5424") for w in ("endpoint", "facility")
        }
        std_keys |= {"journal_endpoint", "json_endpoint"}
        for key in sorted(set(local) - std_keys):
            issues.unsupported(f"{where}.telemetry.logs.local.{key}", "unknown; left out")
            local.pop(key)
        if "json_endpoint" not in local:
            local["json_endpoint"] = None
    if std:
        obs["std_logs"] = std
    if local:
        obs["local_logs"] = local
    if statsd:
        obs["statsd"] = statsd
    if otel:
        if not otel.get("enabled"):
            for key in ("collector_uri", "histogram_buckets"):
                if otel.pop(key, None):
                    issues.ignored(
                        f"{where}.observability.opentelemetry", f"{key}: OpenTelemetry is off"
                    )
        obs["opentelemetry"] = otel
    if obs:
        spec["observability"] = obs
    if tls:
        spec["tls"] = tls
    if additional:
        spec["additional_settings"] = additional
    return auth


def _find_gateway_deployment(objs: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    deployments = [o for o in objs if o.get("kind") == "Deployment"]
    for dep in deployments:
        for c in ((dep.get("spec") or {}).get("template") or {}).get("spec", {}).get(
            "containers"
        ) or []:
            env_names = {e.get("name") for e in c.get("env") or []}
            if "config.service.auth" in env_names or "gateway/" in str(c.get("image", "")):
                return dep
    if len(deployments) == 1:
        return deployments[0]
    raise SpecError(
        "no gateway Deployment found: expected a Deployment whose container reads "
        "config.service.auth or runs the azure-api-management/gateway image "
        f"({len(deployments)} Deployment(s) in the input)",
        problems=[("Deployment", "missing")],
    )


def _ours(obj: Mapping[str, Any] | None) -> bool:
    """Whether this library made the object (its managed-by label)."""
    labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
    return bool(labels.get("app.kubernetes.io/managed-by") == "apim-selfhosted")


_RESOURCE_ID_RE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"Microsoft\.ApiManagement/service/(?P<svc>[^/]+)/gateways/(?P<gw>[^/]+)$",
    re.IGNORECASE,
)


def _selects(selector: Mapping[str, Any] | None, labels: Mapping[str, Any]) -> bool:
    if not selector:
        return False
    return all(labels.get(k) == v for k, v in selector.items())


@dataclass
class _Found:
    """What the sections of :func:`_spec_from_objects` share: the input and the spec so far."""

    objs: Sequence[Mapping[str, Any]]
    source: str
    live: bool
    issues: _Issues
    dep: Mapping[str, Any]
    meta: Mapping[str, Any]
    dep_name: str
    live_name: str
    dspec: Mapping[str, Any]
    template: Mapping[str, Any]
    pod: Mapping[str, Any]
    container: Mapping[str, Any]
    cpath: str
    spec: dict[str, Any]
    by_kind: dict[str, list[Mapping[str, Any]]]

    def named(self, kind: str, name: str | None) -> Mapping[str, Any] | None:
        """The input object of ``kind`` called ``name``, if any."""
        return next(
            (
                o
                for o in self.by_kind.get(kind, [])
                if (o.get("metadata") or {}).get("name") == name
            ),
            None,
        )


def _spec_from_objects(
    objs: Sequence[Mapping[str, Any]],
    *,
    source: str,
    namespace: str | None,
    subscription_id: str | None,
    resource_group: str | None,
    gateway_name: str | None,
    live: bool,
    issues: _Issues,
) -> tuple[dict[str, Any], Token | None]:
    dep = _find_gateway_deployment(objs)
    meta = dep.get("metadata") or {}
    dep_name = live_name = str(meta.get("name"))
    dspec = dep.get("spec") or {}
    template = dspec.get("template") or {}
    pod = template.get("spec") or {}
    containers = pod.get("containers") or []
    if not containers:
        raise SpecError(f"{_where(dep)}: the Deployment has no containers", source=source)
    container = containers[0]
    cpath = "spec.template.spec.containers[0]"
    if len(containers) > 1:
        for i, extra in enumerate(containers[1:], start=1):
            issues.unsupported(
                _where(dep, f"spec.template.spec.containers[{i}]"),
                f"extra container {extra.get('name')!r} cannot be expressed; left out "
                "(sidecars injected by Dapr or a mesh come back by themselves)",
            )
    spec: dict[str, Any] = {}
    ns = namespace or meta.get("namespace")
    if not ns:
        ns = "default"
        issues.assumed(
            "namespace",
            "the manifests name no namespace; assumed 'default' (what kubectl uses without -n)",
        )
    spec["namespace"] = ns
    if len(dep_name) > MAX_BASE_NAME:
        short = dep_name[:MAX_BASE_NAME].rstrip("-")
        issues.approximated(
            _where(dep, "metadata.name"),
            f"longer than the library's base names ({MAX_BASE_NAME}); the objects are named "
            f"after {short!r}",
            severity="warning",
        )
        dep_name = short
    spec["name"] = dep_name
    by_kind: dict[str, list[Mapping[str, Any]]] = {}
    for o in objs:
        by_kind.setdefault(str(o.get("kind")), []).append(o)
    c = _Found(
        objs=objs,
        source=source,
        live=live,
        issues=issues,
        dep=dep,
        meta=meta,
        dep_name=dep_name,
        live_name=live_name,
        dspec=dspec,
        template=template,
        pod=pod,
        container=container,
        cpath=cpath,
        spec=spec,
        by_kind=by_kind,
    )
    auth_settings, env_auth = _read_settings(c)
    token = _read_auth(
        c,
        auth_settings,
        env_auth,
        gateway_name=gateway_name,
        subscription_id=subscription_id,
        resource_group=resource_group,
    )
    spread = _read_deployment(c)
    _read_volumes(c)
    _read_service_account(c)
    _read_labels(c)
    _read_services(c)
    _read_extras(c, spread)
    return spec, token


def _read_settings(c: _Found) -> tuple[dict[str, Any], dict[str, Any]]:
    """Gateway settings (ConfigMaps from envFrom, then literal env); returns the auth parts."""
    source = c.source
    issues = c.issues
    dep = c.dep
    dep_name = c.dep_name
    container = c.container
    cpath = c.cpath
    spec = c.spec
    named = c.named
    settings: dict[str, Any] = {}
    for i, src in enumerate(container.get("envFrom") or []):
        ref = (src.get("configMapRef") or {}).get("name")
        cm = named("ConfigMap", ref)
        if cm is None:
            issues.unsupported(
                _where(dep, f"{cpath}.envFrom[{i}]"),
                f"ConfigMap {ref!r} is not in the input; its settings are unknown",
                severity="error",
            )
            continue
        if ref != f"{dep_name}-env":
            issues.approximated(
                _where(cm),
                f"the settings move to ConfigMap '{dep_name}-env' (the library's name)",
            )
        settings.update(cm.get("data") or {})
    env_auth: dict[str, Any] = {}
    proxy: dict[str, str] = {}
    for i, env in enumerate(container.get("env") or []):
        name = str(env.get("name"))
        path = _where(dep, f"{cpath}.env[{i}]")
        ref = (env.get("valueFrom") or {}).get("secretKeyRef")
        if name in ("config.service.auth", "config.service.auth.azureAd.clientSecret") and ref:
            env_auth[name] = ref
        elif name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY") and "value" in env:
            proxy[{"HTTP_PROXY": "http", "HTTPS_PROXY": "https", "NO_PROXY": "bypass"}[name]] = str(
                env["value"]
            )
        elif "value" in env and (_SETTING_ENV_RE.match(name) or name in _LIBRARY_SETTINGS):
            if name not in _LIBRARY_SETTINGS and name != "neighborhood.host":
                issues.approximated(path, f"setting {name!r} moves from env to the ConfigMap")
            settings[name] = env["value"]
        else:
            issues.unsupported(
                path, f"environment variable {name!r} cannot be expressed in a spec; left out"
            )
    auth_settings = _settings_from_config_map(
        settings, where=_where(dep, "settings"), spec=spec, base=dep_name, issues=issues
    )
    if proxy:
        spec["proxy"] = proxy
    endpoint = auth_settings.get("config.service.endpoint")
    if not endpoint:
        raise SpecError(
            f"{source}: no configuration endpoint: the gateway's settings have no "
            "config.service.endpoint",
            source=source,
            problems=[("config.service.endpoint", "required")],
        )
    return auth_settings, env_auth


def _read_auth(
    c: _Found,
    auth_settings: dict[str, Any],
    env_auth: dict[str, Any],
    *,
    gateway_name: str | None,
    subscription_id: str | None,
    resource_group: str | None,
) -> Token | None:
    """Auth mode and the gateway's identity; returns a token found in a readable Secret."""
    source = c.source
    issues = c.issues
    dep = c.dep
    meta = c.meta
    dep_name = c.dep_name
    pod = c.pod
    container = c.container
    cpath = c.cpath
    spec = c.spec
    named = c.named
    endpoint = auth_settings["config.service.endpoint"]
    token: Token | None = None
    mode = str(auth_settings.get("config.service.auth", "")).lower()
    found_name = gateway_name or auth_settings.get("gateway.name")
    token_ref = env_auth.get("config.service.auth")
    if token_ref:
        secret_name, key = str(token_ref.get("name")), str(token_ref.get("key"))
        secret = named("Secret", secret_name)
        library_token = _ours(secret) and (
            ((secret or {}).get("metadata") or {})
            .get("labels", {})
            .get("app.kubernetes.io/component")
            == "gateway-token"
        )
        if library_token:
            spec["auth"] = {"kind": "gateway-token"}
        else:
            spec["auth"] = {"kind": "existing-secret", "secret_name": secret_name, "key": key}
            issues.approximated(
                "auth",
                f"the token stays in Secret '{secret_name}' (key '{key}'), managed outside the "
                "library; switch auth to kind gateway-token to let deploy issue and rotate "
                "tokens (one rolling restart)",
            )
        if secret is not None:
            raw = (secret.get("stringData") or {}).get(key)
            if raw is None and (secret.get("data") or {}).get(key):
                import base64

                try:
                    raw = base64.b64decode(str(secret["data"][key])).decode()
                except (ValueError, UnicodeDecodeError):
                    raw = None
            token = _parse_token(raw, path=_where(secret, f"data.{key}"), issues=issues)
            issues.secret(
                _where(secret),
                "the Secret's value is not copied into the spec"
                + ("; the token is in report.token" if token else ""),
            )
        if token is not None and not found_name:
            found_name = token.gateway_id
        if library_token and token is None:
            issues.placeholder(
                "auth",
                f"the library's token Secret '{secret_name}' could not be read: deploy will "
                "issue a new token (one rolling restart)",
            )
    elif mode == "azureadapp":
        ref = env_auth.get("config.service.auth.azureAd.clientSecret")
        entra: dict[str, Any] = {
            "kind": "entra-app",
            "tenant_id": auth_settings.get("config.service.auth.azureAd.tenantId", PLACEHOLDER),
            "client_id": auth_settings.get("config.service.auth.azureAd.clientId", PLACEHOLDER),
        }
        if auth_settings.get("config.service.auth.azureAd.authority"):
            entra["authority"] = auth_settings["config.service.auth.azureAd.authority"]
        cert = auth_settings.get("config.service.auth.azureAd.certificatePath")
        if ref:
            entra["client_secret"] = {"name": ref.get("name"), "key": ref.get("key")}
        elif cert:
            cert_secret_name = _secret_volume_for(pod, container, str(cert))
            if cert_secret_name is None:
                raise SpecError(
                    f"{_where(dep)}: the certificate {cert!r} is not on a mounted Secret volume",
                    source=source,
                )
            entra["certificate_secret"] = cert_secret_name
            entra["certificate_key"] = str(cert).rsplit("/", 1)[-1]
        spec["auth"] = entra
    elif mode == "workloadidentity":
        client_id = auth_settings.get("config.service.auth.azureAd.clientId")
        wi_sa = named("ServiceAccount", pod.get("serviceAccountName"))
        if not client_id and wi_sa is not None:
            client_id = ((wi_sa.get("metadata") or {}).get("annotations") or {}).get(
                "azure.workload.identity/client-id"
            )
        if not client_id:
            issues.placeholder("auth.client_id", "the workload identity client id is unknown")
            client_id = PLACEHOLDER
        wi: dict[str, Any] = {"kind": "workload-identity", "client_id": client_id}
        if auth_settings.get("config.service.auth.azureAd.tenantId"):
            wi["tenant_id"] = auth_settings["config.service.auth.azureAd.tenantId"]
        spec["auth"] = wi
    else:
        issues.unsupported(
            _where(dep, f"{cpath}.env"),
            "the gateway's authentication is not a token Secret, an Entra app or workload "
            "identity; the spec uses the library-managed token",
            severity="warning",
        )
    resource_id = str((meta.get("annotations") or {}).get(_ANNOTATION_RESOURCE_ID, ""))
    from_id = _RESOURCE_ID_RE.match(resource_id)
    if from_id:
        found_name = found_name or from_id["gw"]
        subscription_id = subscription_id or from_id["sub"]
        resource_group = resource_group or from_id["rg"]
    if not found_name:
        found_name = dep_name
        issues.assumed(
            "gateway.name",
            f"the gateway name in API Management is not in the input; assumed {dep_name!r} "
            "(the portal names the objects after the gateway) — check it",
        )
    spec["gateway"] = _gateway_data(
        str(endpoint),
        path=_where(dep, "settings.config.service.endpoint"),
        issues=issues,
        gateway_name=str(found_name),
        name_path="gateway.name",
        subscription_id=subscription_id,
        resource_group=resource_group,
        service_name=from_id["svc"] if from_id else None,
    )
    return token


def _read_deployment(c: _Found) -> list[Any]:
    """Replicas, strategy, image, probes, pod settings; returns the spread constraints."""
    live = c.live
    issues = c.issues
    dep = c.dep
    dspec = c.dspec
    pod = c.pod
    container = c.container
    cpath = c.cpath
    spec = c.spec
    if "replicas" in dspec:
        spec["replicas"] = dspec["replicas"]
    elif live:
        spec["replicas"] = None
    else:
        spec["replicas"] = 1
        issues.assumed("replicas", "the Deployment sets no replica count; Kubernetes uses 1")
    strategy = dspec.get("strategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    stype = strategy.get("type", "RollingUpdate")
    spec["strategy"] = (
        {"type": "Recreate"}
        if stype == "Recreate"
        else {
            "type": "RollingUpdate",
            "max_unavailable": rolling.get("maxUnavailable", "25%"),
            "max_surge": rolling.get("maxSurge", "25%"),
        }
    )
    if dspec.get("minReadySeconds"):
        spec["min_ready_seconds"] = dspec["minReadySeconds"]
    spec["termination_grace_period_seconds"] = pod.get("terminationGracePeriodSeconds", 30)
    repo, tag, digest = _split_image(str(container.get("image", "")))
    image: dict[str, Any] = {"repository": repo}
    if tag is None:
        tag = "latest"
        issues.assumed("image.tag", "the image has no tag: the registry serves 'latest'")
    image["tag"] = tag
    if digest:
        image["digest"] = digest
    policy = container.get("imagePullPolicy") or ("Always" if tag == "latest" else "IfNotPresent")
    image["pull_policy"] = policy
    pull = [p.get("name") for p in pod.get("imagePullSecrets") or [] if p.get("name")]
    if pull:
        image["pull_secrets"] = pull
    spec["image"] = image
    res = _resources(
        container.get("resources"), path=_where(dep, f"{cpath}.resources"), issues=issues
    )
    if res:
        spec["resources"] = res
    probes: dict[str, Any] = {}
    for key, field in (
        ("readinessProbe", "readiness"),
        ("livenessProbe", "liveness"),
        ("startupProbe", "startup"),
    ):
        probes[field] = _probe_data(
            container.get(key), path=_where(dep, f"{cpath}.{key}"), issues=issues
        )
    spec["probes"] = probes
    for key, field in (("dnsPolicy", "dns_policy"), ("priorityClassName", "priority_class_name")):
        if pod.get(key):
            spec[field] = pod[key]
    if spec.get("dns_policy") == "ClusterFirst":
        spec.pop("dns_policy")
    if pod.get("dnsConfig"):
        dc = pod["dnsConfig"]
        spec["dns_config"] = {
            "nameservers": dc.get("nameservers") or [],
            "searches": dc.get("searches") or [],
            "options": [
                {"name": o.get("name"), **({"value": o["value"]} if "value" in o else {})}
                for o in dc.get("options") or []
            ],
        }
    if pod.get("hostAliases"):
        spec["host_aliases"] = [
            {"ip": h.get("ip"), "hostnames": h.get("hostnames") or []} for h in pod["hostAliases"]
        ]
    if pod.get("nodeSelector"):
        spec["node_selector"] = {k: str(v) for k, v in pod["nodeSelector"].items()}
    if pod.get("tolerations"):
        spec["tolerations"] = _tolerations(
            pod["tolerations"], path=_where(dep, "spec.template.spec.tolerations"), issues=issues
        )
    if pod.get("affinity"):
        spec["affinity"] = copy.deepcopy(dict(pod["affinity"]))
    spread = pod.get("topologySpreadConstraints") or []
    security = _security_data(
        pod.get("securityContext"),
        container.get("securityContext"),
        pod_path=_where(dep, "spec.template.spec.securityContext"),
        container_path=_where(dep, f"{cpath}.securityContext"),
        issues=issues,
    )
    spec["security_context"] = security
    return list(spread)


def _read_volumes(c: _Found) -> None:
    """Container ports and volumes (the configuration backup claim)."""
    live = c.live
    issues = c.issues
    dep = c.dep
    dep_name = c.dep_name
    pod = c.pod
    container = c.container
    cpath = c.cpath
    spec = c.spec
    named = c.named
    ports = {
        (p.get("name"), p.get("containerPort"), p.get("protocol", "TCP"))
        for p in container.get("ports") or []
    }
    missing = sorted(str(p[0]) for p in (_STANDARD_PORTS | _DISCOVERY_PORTS) - ports)
    if missing:
        issues.approximated(
            _where(dep, f"{cpath}.ports"),
            f"the library declares the gateway's ports {missing} too (needed by the Services)",
        )
    for p in sorted(ports - _STANDARD_PORTS - _DISCOVERY_PORTS, key=str):
        issues.unsupported(
            _where(dep, f"{cpath}.ports"), f"port {p[0]} {p[1]}/{p[2]} cannot be expressed"
        )
    mounts = {m.get("name"): m for m in container.get("volumeMounts") or []}
    backup: dict[str, Any] | None = None
    cert_secret = (spec.get("auth") or {}).get("certificate_secret")
    for i, vol in enumerate(pod.get("volumes") or []):
        vname = vol.get("name")
        mount = mounts.get(vname)
        vpath = _where(dep, f"spec.template.spec.volumes[{i}]")
        claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
        if claim and mount is not None and mount.get("mountPath") == "/apim/config":
            pvc = named("PersistentVolumeClaim", claim)
            if pvc is not None and (not live or _ours(pvc)):
                pspec = pvc.get("spec") or {}
                backup = {
                    "enabled": True,
                    "size": str(
                        ((pspec.get("resources") or {}).get("requests") or {}).get(
                            "storage", "50Mi"
                        )
                    ),
                    "access_mode": (pspec.get("accessModes") or ["ReadWriteMany"])[0],
                }
                if "storageClassName" in pspec:
                    backup["storage_class"] = pspec["storageClassName"]
                if claim != f"{dep_name}-config-backup":
                    issues.approximated(
                        _where(pvc),
                        f"the library creates the claim as '{dep_name}-config-backup'; the backup "
                        f"copy is downloaded again (or set config_backup.existing_claim: {claim} "
                        "to keep this claim)",
                    )
            else:
                backup = {"enabled": True, "existing_claim": claim}
                issues.approximated(
                    vpath,
                    f"PersistentVolumeClaim '{claim}' is kept as an existing claim; the library "
                    "mounts it but does not manage it",
                )
        elif _kept_volume(vol, cert_secret):
            continue
        else:
            issues.unsupported(
                vpath, f"volume {vname!r} cannot be expressed in a spec; left out (with its mount)"
            )
    if backup is not None:
        spec["config_backup"] = backup


def _read_service_account(c: _Found) -> None:
    """The pod's ServiceAccount: kept as it is, created only when the library made it."""
    live = c.live
    issues = c.issues
    dep_name = c.dep_name
    pod = c.pod
    spec = c.spec
    named = c.named
    sa_name = pod.get("serviceAccountName") or pod.get("serviceAccount")
    sa_obj = named("ServiceAccount", sa_name) if sa_name else None
    sa: dict[str, Any] = {}
    if not sa_name or sa_name == "default":
        sa = {"create": False, "name": "default"}
    else:
        sa = {"create": sa_obj is not None and (not live or _ours(sa_obj)), "name": sa_name}
        if sa["create"] and sa_name == dep_name:
            sa.pop("name")
        if live and sa_obj is not None and not sa["create"]:
            issues.approximated(
                _where(sa_obj),
                "the ServiceAccount is kept as an existing one (create: false); the library "
                "uses it but does not manage it",
            )
        if sa_obj is not None:
            sa_meta = sa_obj.get("metadata") or {}
            ann = {
                k: str(v)
                for k, v in (sa_meta.get("annotations") or {}).items()
                if not k.startswith(_TOOL_ANNOTATION_PREFIXES)
                and not k.startswith("azure.workload.identity/")
            }
            if ann and sa["create"]:
                sa["annotations"] = ann
    if "automountServiceAccountToken" in pod:
        sa["automount_token"] = bool(pod["automountServiceAccountToken"])
    else:
        sa["automount_token"] = True
    spec["service_account"] = sa


def _read_labels(c: _Found) -> None:
    """Common and pod labels, pod and Deployment annotations, Dapr; the selector's fate."""
    objs = c.objs
    issues = c.issues
    dep = c.dep
    meta = c.meta
    dspec = c.dspec
    template = c.template
    spec = c.spec
    release = (meta.get("annotations") or {}).get("meta.helm.sh/release-name")
    if release:
        release_ns = (meta.get("annotations") or {}).get("meta.helm.sh/release-namespace", "")
        issues.approximated(
            _where(dep, "metadata.annotations.meta.helm.sh/release-name"),
            f"this gateway is Helm release {release!r} ({release_ns}): once deploy has taken "
            "the objects over, stop running helm upgrade for it, and do not helm uninstall it "
            "(that deletes objects the library now manages); delete the release's record "
            f"(Secrets sh.helm.release.v1.{release}.v*) instead",
            severity="warning",
        )
    ours = [o for o in objs if o.get("kind") in {"Deployment", "Service", "ConfigMap"}]
    common = _labels_common(ours)
    if common:
        spec["common_labels"] = common
    pod_meta = template.get("metadata") or {}
    pod_labels = {
        k: str(v)
        for k, v in (pod_meta.get("labels") or {}).items()
        if k not in common and not k.startswith(_TOOL_LABEL_PREFIXES) and k not in _TOOL_LABELS
    }
    if pod_labels:
        spec["pod_labels"] = pod_labels
    dapr: dict[str, Any] = {}
    pod_ann: dict[str, str] = {}
    for k, v in (pod_meta.get("annotations") or {}).items():
        if k.startswith(_TOOL_ANNOTATION_PREFIXES):
            continue
        if k == "dapr.io/enabled":
            dapr["enabled"] = str(v).lower() == "true"
        elif k == "dapr.io/app-id":
            dapr["app_id"] = str(v)
        elif k == "dapr.io/config":
            dapr["config"] = str(v)
        elif k == "dapr.io/log-as-json":
            dapr["log_as_json"] = str(v).lower() == "true"
        elif k == "dapr.io/log-level":
            dapr["log_level"] = str(v)
        else:
            pod_ann[k] = str(v)
    if dapr.get("enabled"):
        spec["dapr"] = dapr
    elif dapr:
        pod_ann.update({f"dapr.io/{k}": str(v) for k, v in dapr.items()})
    if pod_ann:
        spec["pod_annotations"] = pod_ann
    dep_ann = {
        k: str(v)
        for k, v in (meta.get("annotations") or {}).items()
        if not k.startswith(_TOOL_ANNOTATION_PREFIXES)
    }
    if dep_ann:
        spec["deployment_annotations"] = dep_ann
    selector = (dspec.get("selector") or {}).get("matchLabels") or {}
    if (dspec.get("selector") or {}).get("matchExpressions") or c.dep_name != c.live_name:
        issues.approximated(
            _where(dep, "spec.selector"),
            f"the library selects pods by app.kubernetes.io/name and /instance, not {selector}; "
            "a Deployment's selector cannot change in place, so deploy replaces the Deployment",
            severity="warning",
        )
    else:
        issues.approximated(
            _where(dep, "spec.selector"),
            f"the selector {selector} and the pod template's labels and annotations are kept "
            "(spec.existing), so deploy takes the Deployment over in place; the library's "
            "labels go on the objects' metadata, not on the pods",
        )
    if (dspec.get("selector") or {}).get("matchExpressions"):
        issues.unsupported(
            _where(dep, "spec.selector.matchExpressions"), "selector expressions are not kept"
        )


def _read_services(c: _Found) -> None:
    """The live-traffic and instance-discovery Services that select the gateway pods."""
    issues = c.issues
    dep_name = c.dep_name
    spec = c.spec
    by_kind = c.by_kind
    pod_labels_all = (c.template.get("metadata") or {}).get("labels") or {}
    services = [
        s
        for s in by_kind.get("Service", [])
        if _selects((s.get("spec") or {}).get("selector"), pod_labels_all)
    ]
    live_svc = None
    discovery = None
    for svc in services:
        sspec = svc.get("spec") or {}
        if sspec.get("clusterIP") == "None":
            discovery = discovery or svc
        else:
            live_svc = live_svc or svc
    if live_svc is None:
        issues.approximated(
            "service",
            "no live-traffic Service selects the gateway pods; the library adds "
            f"'{dep_name}-live-traffic' (type ClusterIP, so nothing is exposed)",
            severity="warning",
        )
        spec["service"] = {"type": "ClusterIP", "http_port": 8080, "https_port": 8081}
    else:
        spec["service"] = _live_service(live_svc, base=dep_name, issues=issues)
    if discovery is None:
        issues.approximated(
            "service",
            f"no instance-discovery Service; the library adds '{dep_name}-instance-discovery' "
            "(gateway replicas then share rate limits)",
        )
    else:
        dname = (discovery.get("metadata") or {}).get("name")
        if dname != f"{dep_name}-instance-discovery":
            issues.approximated(_where(discovery), f"renamed to '{dep_name}-instance-discovery'")
        for p in (discovery.get("spec") or {}).get("ports") or []:
            if p.get("targetPort") in ("rate-limit-dc", 4290):
                spec["service"]["instance_sync_port"] = p.get("port", 4290)
            elif p.get("targetPort") in ("dc-heartbeat", 4291):
                spec["service"]["instance_heartbeat_port"] = p.get("port", 4291)
    for svc in by_kind.get("Service", []):
        if svc is live_svc or svc is discovery:
            continue
        if any(svc is other for other in services):
            issues.unsupported(
                _where(svc),
                "a further Service for the gateway pods; the library renders one live-traffic "
                "and one discovery Service, so this one is left out (and left alone)",
            )
        elif c.live:
            continue  # a live namespace holds other workloads' Services: not ours to report
        else:
            issues.unsupported(_where(svc), "this Service selects no gateway pod; left out")


def _read_extras(c: _Found, spread: list[Any]) -> None:
    """Disruption budget and spreading, autoscaler, and objects a spec cannot hold."""
    objs = c.objs
    issues = c.issues
    dep = c.dep
    live_name = c.live_name
    spec = c.spec
    by_kind = c.by_kind
    pod_labels_all = (c.template.get("metadata") or {}).get("labels") or {}
    for pdb in by_kind.get("PodDisruptionBudget", []):
        sel = ((pdb.get("spec") or {}).get("selector") or {}).get("matchLabels")
        if not _selects(sel, pod_labels_all):
            continue
        ha: dict[str, Any] = {"enabled": True}
        pspec = pdb.get("spec") or {}
        if "maxUnavailable" in pspec:
            ha["max_unavailable"] = pspec["maxUnavailable"]
        else:
            issues.unsupported(
                _where(pdb, "spec.minAvailable"),
                "minAvailable cannot be expressed (the spec has maxUnavailable); 25% is used",
            )
        zone = [sc for sc in spread if sc.get("topologyKey") == "topology.kubernetes.io/zone"]
        if zone:
            ha["when_unsatisfiable"] = zone[0].get("whenUnsatisfiable", "ScheduleAnyway")
            spread = [sc for sc in spread if sc not in zone]
            hosts = [
                sc
                for sc in spread
                if sc.get("topologyKey") == "kubernetes.io/hostname"
                and sc.get("whenUnsatisfiable") == ha["when_unsatisfiable"]
            ]
            if hosts:
                spread = [sc for sc in spread if sc not in hosts]
            else:
                issues.approximated(
                    _where(dep, "spec.template.spec.topologySpreadConstraints"),
                    "the library spreads over zones and, in addition, over nodes",
                )
        spec["high_availability"] = ha
    for sc in spread:
        issues.unsupported(
            _where(dep, "spec.template.spec.topologySpreadConstraints"),
            f"spread over {sc.get('topologyKey')!r} is not expressed; left out",
        )
    for hpa in by_kind.get("HorizontalPodAutoscaler", []):
        hspec = hpa.get("spec") or {}
        if (hspec.get("scaleTargetRef") or {}).get("name") != live_name:
            continue
        auto: dict[str, Any] = {
            "min_replicas": hspec.get("minReplicas", 1),
            "max_replicas": hspec.get("maxReplicas"),
            "target_cpu_utilization": None,
        }
        for m in hspec.get("metrics") or []:
            res_m = m.get("resource") or {}
            target = (res_m.get("target") or {}).get("averageUtilization")
            if m.get("type") == "Resource" and res_m.get("name") in ("cpu", "memory") and target:
                auto[f"target_{res_m['name']}_utilization"] = target
            else:
                issues.unsupported(_where(hpa, "spec.metrics"), "only CPU/memory utilisation")
        if auto["target_cpu_utilization"] is None and "target_memory_utilization" not in auto:
            auto.pop("target_cpu_utilization")
        spec["autoscaling"] = auto
        spec["replicas"] = None
    known = {
        "Deployment",
        "ConfigMap",
        "Secret",
        "Service",
        "PersistentVolumeClaim",
        "ServiceAccount",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    }
    for o in objs:
        if o.get("kind") not in known:
            issues.unsupported(
                _where(o), f"{o.get('kind')} objects are not part of a spec; left out"
            )


def _kept_volume(vol: Mapping[str, Any], cert_secret: Any) -> bool:
    """Volumes that come back by themselves: the Entra certificate, the API token projection."""
    secret = vol.get("secret") or {}
    if secret and cert_secret and secret.get("secretName") == cert_secret:
        return True
    return str(vol.get("name", "")).startswith("kube-api-access")


def _secret_volume_for(
    pod: Mapping[str, Any], container: Mapping[str, Any], path: str
) -> str | None:
    directory = path.rsplit("/", 1)[0]
    for mount in container.get("volumeMounts") or []:
        if mount.get("mountPath", "").rstrip("/") == directory:
            for vol in pod.get("volumes") or []:
                if vol.get("name") == mount.get("name") and vol.get("secret"):
                    name = vol["secret"].get("secretName")
                    return str(name) if name else None
    return None


def _live_service(svc: Mapping[str, Any], *, base: str, issues: _Issues) -> dict[str, Any]:
    sspec = svc.get("spec") or {}
    name = (svc.get("metadata") or {}).get("name")
    if name != f"{base}-live-traffic":
        issues.approximated(_where(svc), f"renamed to '{base}-live-traffic' (the library's name)")
    out: dict[str, Any] = {"type": sspec.get("type", "ClusterIP")}
    if out["type"] not in ("ClusterIP", "NodePort", "LoadBalancer"):
        issues.unsupported(_where(svc, "spec.type"), f"type {out['type']!r}; ClusterIP is used")
        out["type"] = "ClusterIP"
    for p in sspec.get("ports") or []:
        target = p.get("targetPort")
        if target in (8080, "http"):
            out["http_port"] = p.get("port")
        elif target in (8081, "https"):
            out["https_port"] = p.get("port")
        else:
            issues.unsupported(_where(svc, "spec.ports"), f"port {p.get('name')!r} is not kept")
        if p.get("nodePort") and out["type"] != "ClusterIP":
            issues.approximated(
                _where(svc, "spec.ports"),
                "node ports are assigned by Kubernetes again (a spec does not pin them)",
            )
    # Kubernetes' default; the spec's own default (Local) would change a Service made without it.
    out["external_traffic_policy"] = sspec.get("externalTrafficPolicy", "Cluster")
    if sspec.get("loadBalancerIP"):
        out["load_balancer_ip"] = sspec["loadBalancerIP"]
    if sspec.get("loadBalancerSourceRanges"):
        out["load_balancer_source_ranges"] = list(sspec["loadBalancerSourceRanges"])
    if sspec.get("allocateLoadBalancerNodePorts") is False and out["type"] == "LoadBalancer":
        out["allocate_load_balancer_node_ports"] = False
    ann = {
        k: str(v)
        for k, v in ((svc.get("metadata") or {}).get("annotations") or {}).items()
        if not k.startswith(_TOOL_ANNOTATION_PREFIXES)
    }
    if ann:
        out["annotations"] = ann
    return out


def _load_documents(yaml_text: str, *, source: str) -> list[dict[str, Any]]:
    import yaml

    try:
        docs = list(yaml.safe_load_all(yaml_text))
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: not valid YAML: {exc}", source=source) from exc
    out: list[dict[str, Any]] = []
    for doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, dict) or "kind" not in doc:
            raise SpecError(
                f"{source}: every document must be a Kubernetes object with a kind",
                source=source,
            )
        if doc.get("kind") == "List":
            out.extend(i for i in doc.get("items") or [] if isinstance(i, dict))
        else:
            out.append(doc)
    return out


def spec_from_manifests(
    yaml_text: str,
    *,
    namespace: str | None = None,
    subscription_id: str | None = None,
    resource_group: str | None = None,
    gateway_name: str | None = None,
    source: str = "manifests",
) -> tuple[DeploymentSpec, ImportReport]:
    """Reads a gateway's Kubernetes YAML (the portal's, or ``kubectl get -o yaml``) into a spec.

    The gateway Deployment is the one whose container reads ``config.service.auth`` (or runs
    the gateway image); its ConfigMap, token Secret, Services, PVC, ServiceAccount, PDB and HPA
    are found by reference and selector. A token Secret's value is never copied; if it holds a
    valid token, the token is in ``report.token``.

    Args:
        yaml_text: One or more YAML documents (``---`` separated; a ``List`` works too).
        namespace: The namespace (default: the objects' own, else ``default``).
        subscription_id: The APIM service's subscription (not in manifests; else a placeholder).
        resource_group: The APIM service's resource group (likewise).
        gateway_name: The gateway's name in APIM (default: ``gateway.name`` setting, the
            token's gateway id, else the Deployment's name — reported as assumed).
        source: A name for the input in messages (e.g. the file name).

    Returns:
        The spec that reproduces the objects, and the report of what did not map one-to-one.

    Raises:
        SpecError: The YAML is invalid, holds no gateway Deployment, or gives no configuration
            endpoint.

    Example:
        >>> text = '''
        ... kind: Deployment
        ... apiVersion: apps/v1
        ... metadata: {name: gw1, namespace: apim}
        ... spec:
        ...   template:
        ...     spec:
        ...       containers:
        ...       - name: gw1
        ...         image: mcr.microsoft.com/azure-api-management/gateway:2.11.1
        ...         env:
        ...         - {name: config.service.endpoint, value: contoso.configuration.azure-api.net}
        ...         - name: config.service.auth
        ...           valueFrom: {secretKeyRef: {name: gw1-token, key: value}}
        ... '''
        >>> spec, report = spec_from_manifests(text, subscription_id="s1", resource_group="rg")
        >>> spec.namespace, spec.gateway.name, report.ok
        ('apim', 'gw1', True)
    """
    issues = _Issues()
    objs = _load_documents(yaml_text, source=source)
    data, token = _spec_from_objects(
        objs,
        source=source,
        namespace=namespace,
        subscription_id=subscription_id,
        resource_group=resource_group,
        gateway_name=gateway_name,
        live=False,
        issues=issues,
    )
    spec = _with_existing(data, objs, source=source)
    report = ImportReport(source=source, issues=tuple(issues.items), token=token)
    logger.info("imported %s: %d issue(s)", source, len(report.issues))
    return spec, report


# ---------------------------------------------------------------------------------------------
# Live cluster -> spec.
# ---------------------------------------------------------------------------------------------


class ObjectTakeover(BaseModel):
    """What the next ``deploy`` of an adopted spec does to one live or rendered object.

    Example:
        >>> print(ObjectTakeover(kind="Service", live_name="gw1", rendered_name="gw1-live-traffic",
        ...     action="replaced", reason="the library names it gw1-live-traffic"))
        Service gw1 -> gw1-live-traffic: replaced (the library names it gw1-live-traffic)
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = Field(description="The object's kind.")
    live_name: str | None = Field(description="The live object's name (None: new object).")
    rendered_name: str | None = Field(
        description="The name the library renders (None: the library leaves it alone)."
    )
    action: Literal["taken-over", "replaced", "created", "left-alone"] = Field(
        description="taken-over: same object (same name; for the Deployment also the same "
        "selector, kept through spec.existing), the library becomes its field manager; replaced: "
        "a new object takes its role and the live one is left for you to delete; created: new; "
        "left-alone: the library does not manage it."
    )
    reason: str = Field(default="", description="Why, in one line.")
    needs_force: bool = Field(
        default=False,
        description="Other field managers own fields of it (e.g. kubectl-client-side-apply): "
        "the first deploy needs force=True to take them over.",
    )

    def __str__(self) -> str:
        names = f"{self.live_name or '(none)'} -> {self.rendered_name or '(none)'}"
        return f"{self.kind} {names}: {self.action}" + (f" ({self.reason})" if self.reason else "")


class AdoptResult(BaseModel):
    """The outcome of :func:`adopt`: the spec, what did not map, and what deploy will do.

    Example:
        >>> AdoptResult.model_fields["restarts_pods"].description.split(":")[0]
        'Whether the first deploy of this spec rolls the pods'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    spec: DeploymentSpec = Field(description="The spec that reproduces the live gateway.")
    report: ImportReport = Field(description="Values that did not map one-to-one.")
    findings: tuple[Finding, ...] = Field(
        default=(), description="How the spec differs from the production profile (lint)."
    )
    takeover: tuple[ObjectTakeover, ...] = Field(
        default=(), description="What the next deploy does to each object."
    )
    restarts_pods: bool = Field(
        description="Whether the first deploy of this spec rolls the pods: the rendered pod "
        "template sets a value the live one does not have (fields the spec does not render stay "
        "with their field managers and do not count when spec.existing is set)."
    )

    @property
    def needs_force(self) -> bool:
        """Whether the first deploy needs ``force=True`` (other managers own adopted fields)."""
        return any(t.needs_force for t in self.takeover)

    restart_reasons: tuple[str, ...] = Field(
        default=(), description="The pod template paths that differ (why pods would restart)."
    )

    def __str__(self) -> str:
        lines = [
            f"adopted {self.spec.namespace}/{self.spec.base_name} "
            f"(gateway {self.spec.gateway.name})",
            str(self.report),
            "takeover by the next deploy:",
            *(f"  {t}" for t in self.takeover),
            "first deploy needs force=True (other field managers): "
            + ("yes" if self.needs_force else "no"),
            "pods restart: "
            + ("yes — " + "; ".join(self.restart_reasons[:8]) if self.restarts_pods else "no"),
        ]
        if self.findings:
            lines.append(f"production profile: {len(self.findings)} finding(s)")
            lines.extend(
                f"  {f.severity:<8} {f.rule}  {f.path}: {f.message}" for f in self.findings
            )
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        rows = "\n".join(f"- {t}" for t in self.takeover)
        findings = "\n".join(f"- **{f.severity}** `{f.rule}` {f.message}" for f in self.findings)
        return (
            f"### Adopted `{self.spec.namespace}/{self.spec.base_name}`\n\n"
            f"{self.report._repr_markdown_()}\n\n**Takeover**\n\n{rows}\n\n"
            f"**Pods restart:** {'yes' if self.restarts_pods else 'no'}\n\n"
            f"**Production profile**\n\n{findings or 'no findings'}\n"
        )


_ANNOTATION_RESOURCE_ID = "apim-selfhosted.io/gateway-resource-id"
_FIELD_MANAGER = "apim-selfhosted"
_SERVER_FIELDS = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields")


def _clean(obj: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(obj))
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for key in _SERVER_FIELDS:
        meta.pop(key, None)
    return out


def _leaves(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_leaves(v, f"{path}.{k}" if path else str(k)))
        return out
    if isinstance(value, list):
        if value and all(isinstance(v, Mapping) and "name" in v for v in value):
            out = {}
            for v in value:
                out.update(_leaves(v, f"{path}[{v['name']}]"))
            return out
        return {path: value}
    return {path: value}


# Leaves the API server fills in when absent: a rendered template without them is the same.
_DEFAULTED_SUFFIXES = (
    "terminationMessagePath",
    "terminationMessagePolicy",
    "dnsPolicy",
    "restartPolicy",
    "schedulerName",
    "securityContext",
    "imagePullPolicy",
    "protocol",
    ".scheme",
    "timeoutSeconds",
    "periodSeconds",
    "successThreshold",
    "failureThreshold",
    "creationTimestamp",
    "resources",
)


def _template_differences(live: Mapping[str, Any], rendered: Mapping[str, Any]) -> list[str]:
    a, b = _leaves(live), _leaves(rendered)
    reasons = []
    for key in sorted(set(a) | set(b)):
        if key in a and key in b:
            if str(a[key]) != str(b[key]):
                reasons.append(f"{key} changes")
        elif key in b:
            reasons.append(f"{key} is added")
        elif not key.endswith(_DEFAULTED_SUFFIXES) and a[key] not in (None, {}, []):
            reasons.append(f"{key} is removed")
    return reasons


def adopt(
    kube: KubernetesApplier,
    *,
    namespace: str,
    name: str,
    subscription_id: str | None = None,
    resource_group: str | None = None,
    gateway_name: str | None = None,
    profile: ProductionProfile | None = None,
) -> AdoptResult:
    """Reads a live gateway Deployment (portal-, chart- or hand-made) into a spec.

    Reads the Deployment ``namespace/name``, the ConfigMaps and ServiceAccount it references,
    the Services, PodDisruptionBudgets and HorizontalPodAutoscalers that select it and the
    token Secret it reads (only to learn the gateway name from the token, if the credentials
    may read Secrets; the value is never copied or logged). It then says what the next
    ``deploy`` of the spec does to each object and whether the pods roll, and lints the spec
    against the production profile.

    Args:
        kube: The applier for the cluster.
        namespace: The Deployment's namespace.
        name: The Deployment's name.
        subscription_id: The APIM service's subscription (not in the cluster; else a
            placeholder the report marks as an error).
        resource_group: The APIM service's resource group (likewise).
        gateway_name: The gateway's name in APIM (default: from the settings or the token).
        profile: The production profile to lint against (default: ``ProductionProfile()``).

    Returns:
        The spec, the import report, the takeover plan, whether pods restart, and findings.

    Raises:
        SpecError: There is no such Deployment, or it is not a gateway.
        AuthorizationError: The credentials may not read the Deployment or its ConfigMap.
        KubernetesError: Any other API failure.

    Example:
        >>> result = adopt(kube, namespace="apim", name="gw1")  # doctest: +SKIP
        >>> result.spec.to_file("gw1.yaml")  # doctest: +SKIP
    """
    from apim_selfhosted.errors import AuthorizationError
    from apim_selfhosted.profile import lint
    from apim_selfhosted.rendering import render

    source = f"cluster {namespace}/{name}"
    dep = kube.get("apps/v1", "Deployment", name, namespace)
    if dep is None:
        raise SpecError(
            f"{source}: no Deployment {name!r} in namespace {namespace!r}",
            source=source,
            problems=[("name", "not found")],
        )
    objs: list[dict[str, Any]] = []
    managers: dict[tuple[str, str], set[str]] = {}

    def take(obj: Mapping[str, Any], api_version: str, kind: str) -> None:
        full = {**obj, "apiVersion": obj.get("apiVersion", api_version), "kind": kind}
        meta = full.get("metadata") or {}
        managers[(kind, str(meta.get("name")))] = {
            str(m.get("manager")) for m in meta.get("managedFields") or [] if m.get("manager")
        }
        objs.append(_clean(full))

    take(dep, "apps/v1", "Deployment")
    pod = ((dep.get("spec") or {}).get("template") or {}).get("spec") or {}
    issues = _Issues()
    for container in pod.get("containers") or []:
        for src in container.get("envFrom") or []:
            ref = (src.get("configMapRef") or {}).get("name")
            if ref:
                cm = kube.get("v1", "ConfigMap", ref, namespace)
                if cm is not None:
                    take(cm, "v1", "ConfigMap")
        for env in container.get("env") or []:
            ref = ((env.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name")
            if env.get("name") == "config.service.auth" and ref:
                try:
                    secret = kube.get("v1", "Secret", ref, namespace)
                except AuthorizationError:
                    secret = None
                    issues.assumed(
                        _where({"kind": "Secret", "metadata": {"name": ref}}),
                        "the credentials may not read this Secret; the gateway name is not "
                        "taken from its token",
                    )
                if secret is not None:
                    take(secret, "v1", "Secret")
    sa_name = pod.get("serviceAccountName")
    if sa_name and sa_name != "default":
        sa_obj = kube.get("v1", "ServiceAccount", sa_name, namespace)
        if sa_obj is not None:
            take(sa_obj, "v1", "ServiceAccount")
    for api_version, kind in (
        ("v1", "Service"),
        ("policy/v1", "PodDisruptionBudget"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("v1", "PersistentVolumeClaim"),
    ):
        try:
            items = kube.list_objects(api_version, kind, namespace)
        except AuthorizationError:
            issues.assumed(kind, f"the credentials may not list {kind}s; none are adopted")
            continue
        for item in items:
            take(item, api_version, kind)
    data, token = _spec_from_objects(
        objs,
        source=source,
        namespace=namespace,
        subscription_id=subscription_id,
        resource_group=resource_group,
        gateway_name=gateway_name,
        live=True,
        issues=issues,
    )
    spec = _with_existing(data, objs, source=source)
    report = ImportReport(source=source, issues=tuple(issues.items), token=token)
    rendered = render(spec)
    takeover = _takeover(objs, rendered, spec, managers)
    live_template = (dep.get("spec") or {}).get("template") or {}
    rendered_dep = next(m for m in rendered if m["kind"] == "Deployment")
    reasons = _template_differences(live_template, rendered_dep["spec"]["template"])
    if spec.existing is not None:
        # Server-side apply leaves what the spec does not render to the field managers that
        # own it today (kubectl, helm): the live template keeps it, the pods do not roll.
        reasons = [r for r in reasons if not r.endswith(" is removed")]
    findings = tuple(lint(spec, profile))
    logger.info(
        "adopted %s: %d issue(s), %d finding(s), pods %s",
        source,
        len(report.issues),
        len(findings),
        "restart" if reasons else "stay",
    )
    return AdoptResult(
        spec=spec,
        report=report,
        findings=findings,
        takeover=tuple(takeover),
        restarts_pods=bool(reasons),
        restart_reasons=tuple(reasons),
    )


def _takeover(
    live: Iterable[Mapping[str, Any]],
    rendered: Iterable[Mapping[str, Any]],
    spec: DeploymentSpec,
    managers: Mapping[tuple[str, str], set[str]],
) -> list[ObjectTakeover]:
    rendered_list = list(rendered)
    live_by_kind: dict[str, list[str]] = {}
    dep = next((o for o in live if o.get("kind") == "Deployment"), None)
    pod_labels = (((dep or {}).get("spec") or {}).get("template") or {}).get("metadata", {}).get(
        "labels"
    ) or {}
    for o in live:
        kind = str(o.get("kind"))
        meta = o.get("metadata") or {}
        if kind in ("Service", "PodDisruptionBudget"):
            sel = (o.get("spec") or {}).get("selector") or {}
            sel = sel.get("matchLabels", sel) if kind == "PodDisruptionBudget" else sel
            if not _selects(sel, pod_labels):
                continue
        if kind in ("PersistentVolumeClaim",) and meta.get("name") != spec.pvc_name:
            continue
        live_by_kind.setdefault(kind, []).append(str(meta.get("name")))
    out: list[ObjectTakeover] = []
    selector = ((dep or {}).get("spec") or {}).get("selector", {}).get("matchLabels") or {}
    for m in rendered_list:
        kind, rname = m["kind"], m["metadata"]["name"]
        names = live_by_kind.get(kind, [])
        if rname in names:
            names.remove(rname)
            if kind == "Deployment" and selector != m["spec"]["selector"]["matchLabels"]:
                out.append(
                    ObjectTakeover(
                        kind=kind,
                        live_name=rname,
                        rendered_name=rname,
                        action="replaced",
                        reason="its selector differs and cannot change in place: delete it "
                        "(pods go) or deploy under another name",
                    )
                )
            else:
                others = sorted(managers.get((kind, rname), set()) - {_FIELD_MANAGER})
                reason = "same name: the library becomes its field manager"
                if others:
                    reason += f"; fields owned by {', '.join(others)}: deploy with force=True"
                out.append(
                    ObjectTakeover(
                        kind=kind,
                        live_name=rname,
                        rendered_name=rname,
                        action="taken-over",
                        reason=reason,
                        needs_force=bool(others),
                    )
                )
        elif kind == "Secret":
            out.append(
                ObjectTakeover(kind=kind, live_name=None, rendered_name=rname, action="created")
            )
        elif names and kind != "Secret":
            old = names.pop(0)
            out.append(
                ObjectTakeover(
                    kind=kind,
                    live_name=old,
                    rendered_name=rname,
                    action="replaced",
                    reason=f"the library names it {rname}; delete {old} after deploying",
                )
            )
        else:
            out.append(
                ObjectTakeover(kind=kind, live_name=None, rendered_name=rname, action="created")
            )
    for kind, names in live_by_kind.items():
        for n in names:
            out.append(
                ObjectTakeover(
                    kind=kind,
                    live_name=n,
                    rendered_name=None,
                    action="left-alone",
                    reason="the spec refers to it; the library does not manage it",
                )
            )
    return out
