"""Values of the official Helm chart ``azure-api-management-gateway`` 1.15.1, in and out.

:func:`spec_from_helm_values` maps every value of the chart to a
:class:`~apim_selfhosted.models.DeploymentSpec` that renders the same gateway, and reports
(:class:`~apim_selfhosted.adoption.ImportReport`) each value the library cannot honour, honours
differently or had to assume. :func:`spec_to_helm_values` goes the other way for teams that keep
the chart, reporting what the chart cannot express.

The mapping follows what the chart's templates do with a value, not only its name. A few of
the less obvious ones:

* ``gateway.deployment.annotations`` are *pod* annotations in the chart (``pod_annotations``);
* ``gateway.deployment.strategy: {}`` leaves Kubernetes' default (RollingUpdate, 25%/25%);
* ``terminationGracePeriodSeconds: 0`` is left out by the chart, so Kubernetes uses 30;
* probes without timings get Kubernetes' defaults (every 10 s), not the portal's (5 s);
* ``securityContext: {}`` and ``podSecurityContext: {}`` mean no security context at all;
* the chart never sets ``externalTrafficPolicy`` (Kubernetes' default is ``Cluster``) and never
  sets ``automountServiceAccountToken`` (Kubernetes mounts the token).

Secrets given in values (``gateway.auth.key``, ``gateway.auth.azureAd.app.secret``) are never
copied into a spec or report; a valid gateway token is carried as ``report.token``.

Example:
    >>> values = {"gateway": {"name": "gw1",
    ...     "configuration": {"uri": "https://contoso.configuration.azure-api.net"}}}
    >>> spec, report = spec_from_helm_values(values, release_name="gw1", namespace="apim",
    ...     subscription_id="s1", resource_group="rg")
    >>> spec.base_name, spec.replicas, spec.high_availability.enabled, report.ok
    ('gw1-azure-api-management-gateway', 3, True, True)
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

from apim_selfhosted.adoption import (
    ImportReport,
    _gateway_data,
    _Issues,
    _parse_token,
    _probe_data,
    _resources,
    _security_data,
    _tolerations,
    _validated,
)
from apim_selfhosted.errors import SpecError
from apim_selfhosted.models import (
    DEFAULT_GATEWAY_VERSION,
    MAX_BASE_NAME,
    RESERVED_SETTINGS,
    DeploymentSpec,
    EntraAppAuth,
    ExistingSecretAuth,
    GatewayTokenAuth,
    HttpProbe,
)

logger = logging.getLogger(__name__)

__all__ = [
    "CHART_APP_VERSION",
    "CHART_DEFAULTS",
    "CHART_NAME",
    "CHART_VERSION",
    "chart_fullname",
    "spec_from_helm_values",
    "spec_to_helm_values",
]

#: The chart these mappings follow.
CHART_NAME = "azure-api-management-gateway"
CHART_VERSION = "1.15.1"
CHART_APP_VERSION = DEFAULT_GATEWAY_VERSION

_PROBE = {"httpGet": {"path": "/status-0123456789abcdef", "port": "http"}}

#: The chart's default values (1.15.1), as data: user values are merged over these.
CHART_DEFAULTS: dict[str, Any] = {
    "replicaCount": 3,
    "image": {
        "repository": "mcr.microsoft.com/azure-api-management/gateway",
        "pullPolicy": "IfNotPresent",
        "tag": None,
    },
    "imagePullSecrets": [],
    "nameOverride": "",
    "fullnameOverride": "",
    "gateway": {
        "name": None,
        "deployment": {
            "terminationGracePeriodSeconds": 60,
            "strategy": {},
            "network": {"proxy": {"http": None, "https": None, "bypass": None}},
            "dns": {"hostAliases": {}},
        },
        "configuration": {
            "uri": None,
            "backup": {
                "enabled": False,
                "persistentVolumeClaim": {
                    "existingName": "",
                    "create": True,
                    "storageClassName": None,
                    "accessMode": "ReadWriteMany",
                    "size": "50Mi",
                },
            },
            "additional": {},
        },
        "auth": {
            "type": "GatewayToken",
            "key": None,
            "azureAd": {
                "tenant": {"id": None},
                "authority": None,
                "app": {"id": None, "secret": None},
            },
        },
    },
    "secret": {"createSecret": True, "existingSecretName": ""},
    "observability": {
        "logs": {
            "std": {"format": "text", "level": "info", "useColor": True},
            "local": {
                "type": "auto",
                "localsyslog": {"endpoint": None, "facility": None},
                "rfc5424": {"endpoint": None, "facility": None},
                "journal": {"endpoint": None},
                "json": {"endpoint": "127.0.0.1:8888"},
            },
        },
        "azureMonitor": {"metrics": {"enabled": True}},
        "opentelemetry": {
            "enabled": False,
            "collector": {"uri": None},
            "histogram": {"buckets": None},
            "systemMetrics": {"enabled": False},
        },
        "statsD": {"enabled": False, "endpoint": None, "sampling": 1, "tagFormat": "dogStatsD"},
    },
    "security": {
        "tls": {
            "server": {"ciphers": {"allowedSuites": None}},
            "client": {"ciphers": {"allowedSuites": None}},
        }
    },
    "dapr": {
        "enabled": False,
        "app": {"id": None},
        "config": "tracing",
        "logging": {"useJsonOutput": True, "level": "info"},
    },
    "service": {
        "type": "ClusterIP",
        "loadBalancer": {"allocateNodePorts": True},
        "ports": {
            "http": 8080,
            "https": 8081,
            "instance": {"synchronization": 4290, "heartbeat": 4291},
        },
        "annotations": {},
    },
    "ingress": {
        "controller": {
            "enabled": False,
            "namespace": "",
            "annotations": [],
            "dns": {"suffix": "svc.cluster.local"},
            "ingressClass": {"controller": "azure-api-management/gateway", "annotations": []},
        }
    },
    "serviceAccountName": "",
    "serviceAccount": {"name": "", "create": True, "annotations": {}, "labels": {}},
    "probes": {
        "readiness": copy.deepcopy(_PROBE),
        "liveness": copy.deepcopy(_PROBE),
        "startup": copy.deepcopy(_PROBE),
    },
    "resources": {},
    "highAvailability": {
        "enabled": True,
        "disruption": {"maximumUnavailable": "25%"},
        "podTopologySpread": {"whenUnsatisfiable": "ScheduleAnyway"},
    },
    "nodeSelector": {},
    "tolerations": [],
    "affinity": {},
    "securityContext": {},
    "podSecurityContext": {},
    "commonLabels": {},
}

# Values the templates read although values.yaml does not list them.
_EXTRA_VALUES = {
    "gateway.deployment.annotations",
    "service.loadBalancer.ip",
    "priorityClassName",
}
# Maps whose keys are the user's (not values of the chart): their inner keys are not "unknown".
_FREE_FORM = {
    "gateway.deployment.strategy",
    "gateway.deployment.dns.hostAliases",
    "gateway.deployment.annotations",
    "gateway.configuration.additional",
    "service.annotations",
    "serviceAccount.annotations",
    "serviceAccount.labels",
    "probes.readiness",
    "probes.liveness",
    "probes.startup",
    "resources",
    "nodeSelector",
    "affinity",
    "securityContext",
    "podSecurityContext",
    "commonLabels",
    "imagePullSecrets",
    "tolerations",
    "ingress.controller.annotations",
    "ingress.controller.ingressClass.annotations",
}


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, Mapping) and isinstance(over, Mapping):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base.get(k), v) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(over)


def _known_paths(tree: Mapping[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for k, v in tree.items():
        path = f"{prefix}.{k}" if prefix else k
        out.add(path)
        if isinstance(v, Mapping) and path not in _FREE_FORM:
            out |= _known_paths(v, path)
    return out


_KNOWN = _known_paths(CHART_DEFAULTS) | _EXTRA_VALUES


def _unknown(values: Mapping[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k, v in values.items():
        path = f"{prefix}.{k}" if prefix else str(k)
        if path not in _KNOWN:
            out.append(path)
        elif isinstance(v, Mapping) and path not in _FREE_FORM:
            out.extend(_unknown(v, path))
    return out


def _get(values: Mapping[str, Any], path: str) -> Any:
    node: Any = values
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def chart_fullname(values: Mapping[str, Any], *, release_name: str) -> str:
    """The chart's "fullname" for a release: the name of most objects it creates.

    Args:
        values: The chart values (user values; defaults need not be merged in).
        release_name: The Helm release name.

    Returns:
        ``fullnameOverride``, else the release name when it contains the chart name (or
        ``nameOverride``), else ``<release>-<name>``; cut to 63 characters without a trailing
        ``-``, as the chart's helper does.

    Example:
        >>> chart_fullname({}, release_name="edge")
        'edge-azure-api-management-gateway'
        >>> chart_fullname({"fullnameOverride": "gw1"}, release_name="edge")
        'gw1'
    """

    def cut(text: str) -> str:
        text = text[:63]
        return text[:-1] if text.endswith("-") else text

    override = values.get("fullnameOverride")
    if override:
        return cut(str(override))
    name = str(values.get("nameOverride") or CHART_NAME)
    if name in release_name:
        return cut(release_name)
    return cut(f"{release_name}-{name}")


def _chart_objects(spec: DeploymentSpec, *, release_name: str) -> dict[str, Any]:
    """``spec.existing`` for the objects chart 1.15.1 makes (its templates' names and labels)."""
    from apim_selfhosted.rendering import settings_hash

    fullname = spec.base_name
    selector = {
        "app.kubernetes.io/name": fullname,
        "app.kubernetes.io/component": "self-hosted-gateway",
        "app.kubernetes.io/instance": release_name,
    }
    return {
        "container": "azure-api-management-gateway",
        "config_map": fullname,
        "live_service": fullname,
        "discovery_service": f"{fullname}-instance-discovery",
        "selector": selector,
        "pod_labels": {
            "helm.sh/chart": f"azure-api-management-gateway-{CHART_VERSION}",
            **selector,
            "app.kubernetes.io/version": CHART_APP_VERSION,
            "app.kubernetes.io/managed-by": "Helm",
            **spec.common_labels,  # the chart's commonLabels label the pods too
        },
        "config_hash": settings_hash(spec),
    }


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _flag(value: Any, *, path: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise SpecError(
        f"helm values: {path}: must be true or false, got {value!r}",
        source="helm values",
        problems=[(path, "must be true or false")],
    )


def _suites(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [s.strip() for s in str(value).split(",") if s.strip()]


def spec_from_helm_values(
    values: Mapping[str, Any],
    *,
    release_name: str,
    namespace: str,
    subscription_id: str | None = None,
    resource_group: str | None = None,
    gateway_name: str | None = None,
) -> tuple[DeploymentSpec, ImportReport]:
    """Maps the chart's values to a spec that renders the same gateway.

    Args:
        values: The user's values (as in ``-f values.yaml``; the chart's defaults are merged in).
        release_name: The Helm release name (it names the objects).
        namespace: The release namespace.
        subscription_id: The APIM service's subscription (not in values; else a placeholder
            that the report marks as an error).
        resource_group: The APIM service's resource group (likewise).
        gateway_name: The gateway's name in APIM (default: ``gateway.name``, else the gateway
            id inside ``gateway.auth.key``, else a placeholder).

    Returns:
        The spec, and the report of every value that did not map one-to-one.

    Raises:
        SpecError: The values are ones the chart itself refuses (no
            ``gateway.configuration.uri``, an unknown ``gateway.auth.type``, Entra ID without a
            tenant or app id ...) or give an invalid spec; the message names the values path.

    Example:
        >>> spec, report = spec_from_helm_values(
        ...     {"gateway": {"configuration": {"uri": "contoso.configuration.azure-api.net"}},
        ...      "secret": {"createSecret": False, "existingSecretName": "gw-token"},
        ...      "replicaCount": None},
        ...     release_name="gw", namespace="apim", gateway_name="gw1")
        >>> spec.auth.secret_name, spec.auth.key, spec.replicas
        ('gw-token', 'gateway-key', None)
        >>> sorted({i.path for i in report.errors})
        ['gateway.resource_group', 'gateway.subscription_id']
    """
    if not isinstance(values, Mapping):
        raise SpecError(
            f"helm values: must be a mapping, got {type(values).__name__}",
            source="helm values",
            problems=[("", "must be a mapping")],
        )
    issues = _Issues()
    for path in _unknown(values):
        issues.unsupported(path, f"not a value of chart {CHART_VERSION}; left out")
    v = _merge(CHART_DEFAULTS, values)

    def user(path: str) -> Any:
        """The user's value at ``path`` when it differs from the chart's default, else None."""
        given = _get(values, path)
        return None if given == _get(CHART_DEFAULTS, path) else given

    def fail(path: str, message: str) -> SpecError:
        return SpecError(
            f"helm values: {path}: {message}", source="helm values", problems=[(path, message)]
        )

    spec: dict[str, Any] = {"namespace": namespace}
    fullname = chart_fullname(v, release_name=release_name)
    base = fullname
    if len(base) > MAX_BASE_NAME:
        base = base[:MAX_BASE_NAME].rstrip("-")
        issues.approximated(
            "fullnameOverride",
            f"the chart's object name {fullname!r} is longer than the library allows "
            f"({MAX_BASE_NAME}); the objects are named {base!r}",
            severity="warning",
        )
    spec["name"] = base

    # --- gateway and auth ----------------------------------------------------------------------
    uri = _text(_get(v, "gateway.configuration.uri"))
    if uri is None:
        raise fail("gateway.configuration.uri", "required (the chart refuses to install without)")
    auth_type = str(_get(v, "gateway.auth.type") or "").lower()
    allowed = {"gatewaytoken", "azureadapp", "workloadidentity"}
    if auth_type not in allowed:
        raise fail("gateway.auth.type", "must be GatewayToken, AzureAdApp or WorkloadIdentity")
    create_secret = _flag(_get(v, "secret.createSecret"), path="secret.createSecret")
    existing = _text(_get(v, "secret.existingSecretName"))
    token = _parse_token(_get(v, "gateway.auth.key"), path="gateway.auth.key", issues=issues)
    name = gateway_name or _text(_get(v, "gateway.name"))
    if token is not None:
        if name is None:
            name = token.gateway_id
        elif name.lower() != token.gateway_id.lower():
            issues.approximated(
                "gateway.auth.key",
                f"the token belongs to gateway {token.gateway_id!r}, not {name!r}; it is not "
                "carried (report.token is empty)",
                severity="warning",
            )
            token = None
    ad = "gateway.auth.azureAd"
    tenant = _text(_get(v, f"{ad}.tenant.id"))
    app_id = _text(_get(v, f"{ad}.app.id"))
    authority = _text(_get(v, f"{ad}.authority"))
    if not create_secret and existing is None and auth_type != "workloadidentity":
        raise fail("secret.existingSecretName", "required when secret.createSecret is false")
    if auth_type == "gatewaytoken":
        if create_secret:
            spec["auth"] = {"kind": "gateway-token"}
            if _get(v, "gateway.auth.key"):
                issues.secret(
                    "gateway.auth.key",
                    "the token is not copied into the spec: deploy issues tokens and rotates "
                    "them"
                    + (
                        "; to keep this one until then, pass report.token to deploy(token=...)"
                        if token is not None
                        else ""
                    ),
                )
            issues.approximated(
                "secret.createSecret",
                f"the token lives in an immutable Secret '{base}-token-<hash>' (key 'value') "
                f"instead of Secret '{fullname}' (key 'gateway-key'), so rotation is a rolling "
                "update",
            )
        else:
            spec["auth"] = {
                "kind": "existing-secret",
                "secret_name": existing,
                "key": "gateway-key",
            }
            if _get(v, "gateway.auth.key"):
                issues.ignored(
                    "gateway.auth.key",
                    "the chart does not use it with an existing Secret; not copied",
                )
        for path in (f"{ad}.tenant.id", f"{ad}.app.id", f"{ad}.authority", f"{ad}.app.secret"):
            if _get(v, path):
                issues.ignored(path, "only used with Entra ID authentication")
    elif auth_type == "azureadapp":
        if tenant is None or app_id is None:
            missing = f"{ad}.tenant.id" if tenant is None else f"{ad}.app.id"
            raise fail(missing, "required with gateway.auth.type AzureAdApp")
        if name is None:
            raise fail("gateway.name", "required with gateway.auth.type AzureAdApp")
        secret_name = fullname if create_secret else existing
        spec["auth"] = {
            "kind": "entra-app",
            "tenant_id": tenant,
            "client_id": app_id,
            "client_secret": {"name": secret_name, "key": "azure-ad-app-secret"},
        }
        if authority:
            spec["auth"]["authority"] = authority
        if create_secret:
            issues.secret(
                f"{ad}.app.secret",
                f"the library does not create Secrets for Entra ID client secrets: keep the "
                f"chart's Secret '{secret_name}' or create it (key 'azure-ad-app-secret') before "
                "deploying; the value is not copied",
                severity="error",
            )
        elif _get(v, f"{ad}.app.secret"):
            issues.ignored(f"{ad}.app.secret", "the chart does not use it with an existing Secret")
    else:
        if app_id is None:
            raise fail(f"{ad}.app.id", "required with gateway.auth.type WorkloadIdentity")
        if name is None:
            raise fail("gateway.name", "required with gateway.auth.type WorkloadIdentity")
        spec["auth"] = {"kind": "workload-identity", "client_id": app_id}
        for path in (f"{ad}.tenant.id", f"{ad}.authority", f"{ad}.app.secret"):
            if _get(v, path):
                issues.ignored(path, "the chart does not use it with workload identity")
        issues.approximated(
            "gateway.auth.type",
            "the library also writes config.service.auth.azureAd.clientId into the settings",
        )
    if auth_type == "workloadidentity" and create_secret:
        issues.ignored(
            "secret.createSecret",
            f"the chart creates an empty Secret '{fullname}' that nothing reads; the library "
            "does not",
        )
    if auth_type != "gatewaytoken" and _get(v, "gateway.auth.key"):
        issues.ignored("gateway.auth.key", "only used with GatewayToken authentication")
    if existing and create_secret:
        issues.ignored(
            "secret.existingSecretName", "the chart uses it only with createSecret false"
        )
    spec["gateway"] = _gateway_data(
        uri,
        path="gateway.configuration.uri",
        issues=issues,
        gateway_name=name,
        name_path="gateway.name",
        subscription_id=subscription_id,
        resource_group=resource_group,
        service_name=None,
    )

    # --- image and pod -------------------------------------------------------------------------
    image: dict[str, Any] = {
        "repository": str(_get(v, "image.repository")),
        "pull_policy": _get(v, "image.pullPolicy"),
    }
    tag = _text(_get(v, "image.tag"))
    if tag is None:
        tag = CHART_APP_VERSION
        issues.assumed("image.tag", f"not set: the chart uses its app version {CHART_APP_VERSION}")
    if "@" in tag:
        tag, image["digest"] = tag.split("@", 1)
    image["tag"] = tag
    pull = []
    for i, item in enumerate(_get(v, "imagePullSecrets") or []):
        pull_name = item.get("name") if isinstance(item, Mapping) else item
        if not pull_name:
            raise fail(f"imagePullSecrets[{i}]", "must be {name: <secret>}")
        pull.append(str(pull_name))
    if pull:
        image["pull_secrets"] = pull
    spec["image"] = image
    replicas = _get(v, "replicaCount")
    if replicas is not None and (not isinstance(replicas, int) or isinstance(replicas, bool)):
        raise fail("replicaCount", "must be a whole number or null")
    spec["replicas"] = replicas
    dep = "gateway.deployment"
    strategy = _get(v, f"{dep}.strategy") or {}
    if strategy.get("type") == "Recreate":
        spec["strategy"] = {"type": "Recreate"}
    else:
        rolling = strategy.get("rollingUpdate") or {}
        spec["strategy"] = {
            "type": "RollingUpdate",
            "max_unavailable": rolling.get("maxUnavailable", "25%"),
            "max_surge": rolling.get("maxSurge", "25%"),
        }
        if not strategy:
            issues.assumed(
                f"{dep}.strategy",
                "empty: the chart leaves Kubernetes' default, RollingUpdate with "
                "maxUnavailable 25% and maxSurge 25%",
            )
    grace = _get(v, f"{dep}.terminationGracePeriodSeconds")
    if grace:
        spec["termination_grace_period_seconds"] = grace
    else:
        spec["termination_grace_period_seconds"] = 30
        issues.assumed(
            f"{dep}.terminationGracePeriodSeconds",
            "0 or empty: the chart leaves it out and Kubernetes uses 30 seconds",
        )
    proxy = {
        k: str(x) for k in ("http", "https", "bypass") if (x := _get(v, f"{dep}.network.proxy.{k}"))
    }
    if proxy:
        spec["proxy"] = proxy
    aliases = _get(v, f"{dep}.dns.hostAliases") or []
    if aliases:
        if not isinstance(aliases, list):
            raise fail(f"{dep}.dns.hostAliases", "must be a list of {ip, hostnames}")
        spec["host_aliases"] = [
            {"ip": a.get("ip"), "hostnames": a.get("hostnames") or []} for a in aliases
        ]
    pod_ann = _get(v, f"{dep}.annotations") or {}
    if pod_ann:
        spec["pod_annotations"] = {str(k): str(x) for k, x in pod_ann.items()}
    if _get(v, "priorityClassName"):
        spec["priority_class_name"] = str(_get(v, "priorityClassName"))
    if _get(v, "nodeSelector"):
        spec["node_selector"] = {str(k): str(x) for k, x in _get(v, "nodeSelector").items()}
    if _get(v, "tolerations"):
        spec["tolerations"] = _tolerations(
            _get(v, "tolerations"), path="tolerations", issues=issues
        )
    if _get(v, "affinity"):
        spec["affinity"] = copy.deepcopy(dict(_get(v, "affinity")))
    res = _resources(_get(v, "resources"), path="resources", issues=issues)
    if res:
        spec["resources"] = res
    spec["probes"] = {
        field: _probe_data(_get(v, f"probes.{field}"), path=f"probes.{field}", issues=issues)
        for field in ("readiness", "liveness", "startup")
    }
    spec["security_context"] = _security_data(
        _get(v, "podSecurityContext"),
        _get(v, "securityContext"),
        pod_path="podSecurityContext",
        container_path="securityContext",
        issues=issues,
    )

    # --- configuration backup ------------------------------------------------------------------
    cb = "gateway.configuration.backup"
    pvc = _get(v, f"{cb}.persistentVolumeClaim") or {}
    if _flag(_get(v, f"{cb}.enabled"), path=f"{cb}.enabled"):
        backup: dict[str, Any] = {"enabled": True}
        if _flag(pvc.get("create"), path=f"{cb}.persistentVolumeClaim.create"):
            backup["size"] = str(pvc.get("size"))
            backup["access_mode"] = pvc.get("accessMode")
            if pvc.get("storageClassName") is not None:
                backup["storage_class"] = str(pvc["storageClassName"])
            if pvc.get("existingName"):
                issues.ignored(
                    f"{cb}.persistentVolumeClaim.existingName",
                    "the chart uses it only with create false",
                )
            issues.approximated(
                f"{cb}.persistentVolumeClaim",
                f"the library names the claim '{base}-config-backup' (the chart: '{fullname}'); "
                f"set config_backup.existing_claim: {fullname} to keep the chart's claim",
            )
        else:
            if not pvc.get("existingName"):
                raise fail(
                    f"{cb}.persistentVolumeClaim.existingName",
                    "required when persistentVolumeClaim.create is false",
                )
            backup["existing_claim"] = str(pvc["existingName"])
        spec["config_backup"] = backup
    elif user(f"{cb}.persistentVolumeClaim"):
        issues.ignored(f"{cb}.persistentVolumeClaim", "configuration backup is not enabled")

    # --- settings ------------------------------------------------------------------------------
    additional: dict[str, str] = {}
    for key, value in (_get(v, "gateway.configuration.additional") or {}).items():
        path = f"gateway.configuration.additional.{key}"
        if key in RESERVED_SETTINGS:
            issues.unsupported(
                path,
                "the library sets this setting from typed fields (the chart would write it "
                "twice); left out — use the matching spec field",
            )
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif value is None:
            issues.unsupported(path, "empty value; left out")
            continue
        else:
            text = str(value)
        if not isinstance(value, str):
            issues.approximated(
                path,
                f"written as the string {text!r} (ConfigMap values are strings; the chart would "
                "write a bare YAML value the API server refuses)",
            )
        additional[str(key)] = text
    obs: dict[str, Any] = {}
    logs = "observability.logs"
    obs["std_logs"] = {
        "format": _get(v, f"{logs}.std.format"),
        "level": _get(v, f"{logs}.std.level"),
        "color": _flag(_get(v, f"{logs}.std.useColor"), path=f"{logs}.std.useColor"),
    }
    local_type = str(_get(v, f"{logs}.local.type") or "auto").lower()
    local: dict[str, Any] = {"type": local_type}
    for sink, fields in (
        ("localsyslog", ("endpoint", "facility")),
        ("rfc5424", ("endpoint", "facility")),
        ("journal", ("endpoint",)),
        ("json", ("endpoint",)),
    ):
        for f in fields:
            value = _get(v, f"{logs}.local.{sink}.{f}")
            if value not in (None, ""):
                if f == "facility":
                    try:
                        value = int(value)
                    except (TypeError, ValueError):
                        raise fail(f"{logs}.local.{sink}.facility", "must be a number") from None
                local[f"{sink}_{f}"] = value
    local.setdefault("json_endpoint", None)
    if local_type == "none" and local.get("json_endpoint"):
        issues.ignored(
            f"{logs}.local.json.endpoint",
            "local logs are off; the library leaves the endpoint out of the settings",
        )
    if local_type == "localsyslog":
        issues.unsupported(
            f"{logs}.local.type",
            "the chart mounts the node's /dev/log socket (hostPath) at the localsyslog "
            "endpoint; the library does not mount host paths, so the gateway's syslog endpoint "
            "must be reachable otherwise",
        )
    obs["local_logs"] = local
    obs["azure_monitor_metrics"] = _flag(
        _get(v, "observability.azureMonitor.metrics.enabled"),
        path="observability.azureMonitor.metrics.enabled",
    )
    ot = "observability.opentelemetry"
    otel: dict[str, Any] = {
        "enabled": _flag(_get(v, f"{ot}.enabled"), path=f"{ot}.enabled"),
        "system_metrics": _flag(
            _get(v, f"{ot}.systemMetrics.enabled"), path=f"{ot}.systemMetrics.enabled"
        ),
    }
    if otel["enabled"]:
        otel["collector_uri"] = _text(_get(v, f"{ot}.collector.uri"))
        buckets = _get(v, f"{ot}.histogram.buckets")
        if buckets:
            try:
                otel["histogram_buckets"] = [float(b) for b in _suites(buckets)]
            except ValueError:
                raise fail(f"{ot}.histogram.buckets", "must be numbers, comma-separated") from None
    else:
        for path in (f"{ot}.collector.uri", f"{ot}.histogram.buckets"):
            if _get(v, path):
                issues.ignored(path, "OpenTelemetry is not enabled")
        if otel["system_metrics"]:
            issues.ignored(f"{ot}.systemMetrics.enabled", "OpenTelemetry is not enabled")
            otel["system_metrics"] = False
    obs["opentelemetry"] = otel
    sd = "observability.statsD"
    statsd: dict[str, Any] = {"enabled": _flag(_get(v, f"{sd}.enabled"), path=f"{sd}.enabled")}
    if statsd["enabled"]:
        statsd["endpoint"] = _text(_get(v, f"{sd}.endpoint"))
        statsd["sampling"] = _get(v, f"{sd}.sampling")
        statsd["tag_format"] = _get(v, f"{sd}.tagFormat")
    elif any(user(f"{sd}.{k}") is not None for k in ("endpoint", "sampling", "tagFormat")):
        issues.ignored(sd, "StatsD is not enabled")
    obs["statsd"] = statsd
    spec["observability"] = obs
    tls = {
        "server_cipher_suites": _suites(_get(v, "security.tls.server.ciphers.allowedSuites")),
        "client_cipher_suites": _suites(_get(v, "security.tls.client.ciphers.allowedSuites")),
    }
    if any(tls.values()):
        spec["tls"] = tls
    if additional:
        spec["additional_settings"] = additional

    # --- dapr ----------------------------------------------------------------------------------
    if _flag(_get(v, "dapr.enabled"), path="dapr.enabled"):
        dapr: dict[str, Any] = {
            "enabled": True,
            "config": str(_get(v, "dapr.config")),
            "log_as_json": _flag(
                _get(v, "dapr.logging.useJsonOutput"), path="dapr.logging.useJsonOutput"
            ),
            "log_level": _get(v, "dapr.logging.level"),
        }
        if _text(_get(v, "dapr.app.id")):
            dapr["app_id"] = str(_get(v, "dapr.app.id"))
        spec["dapr"] = dapr
    elif any(user(f"dapr.{k}") is not None for k in ("app", "config", "logging")):
        issues.ignored("dapr", "Dapr is not enabled")

    # --- services ------------------------------------------------------------------------------
    svc_type = _get(v, "service.type")
    svc: dict[str, Any] = {
        "type": svc_type,
        "http_port": _get(v, "service.ports.http"),
        "https_port": _get(v, "service.ports.https"),
        "instance_sync_port": _get(v, "service.ports.instance.synchronization"),
        "instance_heartbeat_port": _get(v, "service.ports.instance.heartbeat"),
        "external_traffic_policy": "Cluster",
    }
    if svc_type == "LoadBalancer":
        allocate = _get(v, "service.loadBalancer.allocateNodePorts")
        if allocate is not None and not _flag(
            allocate, path="service.loadBalancer.allocateNodePorts"
        ):
            svc["allocate_load_balancer_node_ports"] = False
        if _get(v, "service.loadBalancer.ip"):
            svc["load_balancer_ip"] = str(_get(v, "service.loadBalancer.ip"))
    elif user("service.loadBalancer"):
        issues.ignored("service.loadBalancer", f"the Service is of type {svc_type}")
    if (svc["instance_sync_port"], svc["instance_heartbeat_port"]) != (4290, 4291):
        issues.approximated(
            "service.ports.instance",
            "only the discovery Service's ports change; the gateway container keeps listening "
            "on 4290/4291 (the chart would also change the container ports, which the gateway "
            "does not follow)",
            severity="warning",
        )
    svc_ann = _get(v, "service.annotations") or {}
    if svc_ann:
        svc["annotations"] = {str(k): str(x) for k, x in svc_ann.items()}
        issues.approximated(
            "service.annotations",
            "set on the live-traffic Service only (the chart also puts them on the "
            "instance-discovery Service)",
        )
    spec["service"] = svc

    # --- ingress controller (experimental) -----------------------------------------------------
    if _flag(_get(v, "ingress.controller.enabled"), path="ingress.controller.enabled"):
        issues.unsupported(
            "ingress.controller.enabled",
            "the experimental ingress controller (IngressClass, Role, RoleBinding and the "
            "k8s.ingress.* settings) is not deployed by the library; keep the chart for it",
            severity="error",
        )
    elif user("ingress"):
        issues.ignored("ingress", "the ingress controller is not enabled")

    # --- service account -----------------------------------------------------------------------
    sa_create = _flag(_get(v, "serviceAccount.create"), path="serviceAccount.create")
    sa_name = _text(_get(v, "serviceAccount.name")) or _text(_get(v, "serviceAccountName"))
    if _text(_get(v, "serviceAccountName")) and not _text(_get(v, "serviceAccount.name")):
        issues.approximated("serviceAccountName", "deprecated; read as serviceAccount.name")
    sa: dict[str, Any] = {"create": sa_create, "automount_token": True}
    resolved = sa_name or fullname
    if resolved != base:
        sa["name"] = resolved
    if sa_create:
        if _get(v, "serviceAccount.annotations"):
            sa["annotations"] = {
                str(k): str(x) for k, x in _get(v, "serviceAccount.annotations").items()
            }
        if _get(v, "serviceAccount.labels"):
            sa["labels"] = {str(k): str(x) for k, x in _get(v, "serviceAccount.labels").items()}
    else:
        sa["name"] = resolved
        for key in ("annotations", "labels"):
            if _get(v, f"serviceAccount.{key}"):
                issues.ignored(f"serviceAccount.{key}", "no ServiceAccount is created")
    spec["service_account"] = sa

    # --- high availability, labels -------------------------------------------------------------
    ha = "highAvailability"
    if _flag(_get(v, f"{ha}.enabled"), path=f"{ha}.enabled"):
        spec["high_availability"] = {
            "enabled": True,
            "max_unavailable": _get(v, f"{ha}.disruption.maximumUnavailable"),
            "spread": "zone-topology",
            "when_unsatisfiable": _get(v, f"{ha}.podTopologySpread.whenUnsatisfiable"),
        }
        issues.approximated(
            ha,
            "the library spreads pods over zones like the chart and, in addition, over nodes",
        )
    else:
        spec["high_availability"] = {"enabled": False}
        if user(f"{ha}.disruption") or user(f"{ha}.podTopologySpread"):
            issues.ignored(ha, "high availability is not enabled")
    labels = _get(v, "commonLabels") or {}
    if labels:
        spec["common_labels"] = {str(k): str(x) for k, x in labels.items()}
    if base == fullname:
        issues.approximated(
            "<objects>",
            f"the chart's object names ('{fullname}'), Deployment selector, container name and "
            "pod labels are kept (spec.existing), so deploy updates the release's objects in "
            "place; the library's labels go on the objects' metadata",
        )
    else:
        issues.approximated(
            "<objects>",
            f"the objects are named after '{base}' as the library does ('{base}-env', "
            f"'{base}-live-traffic', ...), not all '{fullname}' as the chart does, and carry the "
            "library's app.kubernetes.io labels instead of the chart's",
        )

    try:
        result = _validated(spec, source="helm values")
        if base == fullname:
            result = _validated(
                {**spec, "existing": _chart_objects(result, release_name=release_name)},
                source="helm values",
            )
    except SpecError as exc:
        problems = [(_values_path(path), message) for path, message in exc.problems]
        lines = "\n".join(f"  {path}: {message}" for path, message in problems)
        raise SpecError(
            f"helm values: not valid for the library:\n{lines}",
            source="helm values",
            problems=problems,
        ) from exc
    report = ImportReport(source="helm values", issues=tuple(issues.items), token=token)
    logger.info("imported helm values: %d issue(s)", len(report.issues))
    return result, report


_PVC = "gateway.configuration.backup.persistentVolumeClaim"
# Spec field paths -> the values they come from, for error messages (longest prefix wins).
_SPEC_TO_VALUES = {
    "name": "fullnameOverride",
    "replicas": "replicaCount",
    "image.repository": "image.repository",
    "image.tag": "image.tag",
    "image.digest": "image.tag",
    "image.pull_policy": "image.pullPolicy",
    "image.pull_secrets": "imagePullSecrets",
    "strategy": "gateway.deployment.strategy",
    "termination_grace_period_seconds": "gateway.deployment.terminationGracePeriodSeconds",
    "proxy": "gateway.deployment.network.proxy",
    "host_aliases": "gateway.deployment.dns.hostAliases",
    "pod_annotations": "gateway.deployment.annotations",
    "gateway": "gateway.configuration.uri",
    "gateway.name": "gateway.name",
    "auth": "gateway.auth",
    "auth.client_secret": "secret.existingSecretName",
    "auth.secret_name": "secret.existingSecretName",
    "config_backup": _PVC,
    "config_backup.existing_claim": f"{_PVC}.existingName",
    "config_backup.storage_class": f"{_PVC}.storageClassName",
    "config_backup.access_mode": f"{_PVC}.accessMode",
    "config_backup.size": f"{_PVC}.size",
    "additional_settings": "gateway.configuration.additional",
    "observability.std_logs.format": "observability.logs.std.format",
    "observability.std_logs.level": "observability.logs.std.level",
    "observability.local_logs": "observability.logs.local",
    "observability.statsd": "observability.statsD",
    "observability.statsd.tag_format": "observability.statsD.tagFormat",
    "observability.opentelemetry": "observability.opentelemetry",
    "tls": "security.tls",
    "dapr": "dapr",
    "dapr.log_level": "dapr.logging.level",
    "service.type": "service.type",
    "service.http_port": "service.ports.http",
    "service.https_port": "service.ports.https",
    "service.instance_sync_port": "service.ports.instance.synchronization",
    "service.instance_heartbeat_port": "service.ports.instance.heartbeat",
    "service.annotations": "service.annotations",
    "service.load_balancer_ip": "service.loadBalancer.ip",
    "service_account": "serviceAccount",
    "probes.readiness": "probes.readiness",
    "probes.liveness": "probes.liveness",
    "probes.startup": "probes.startup",
    "resources": "resources",
    "high_availability.max_unavailable": "highAvailability.disruption.maximumUnavailable",
    "high_availability.when_unsatisfiable": "highAvailability.podTopologySpread.whenUnsatisfiable",
    "priority_class_name": "priorityClassName",
    "node_selector": "nodeSelector",
    "tolerations": "tolerations",
    "affinity": "affinity",
    "security_context": "securityContext / podSecurityContext",
    "common_labels": "commonLabels",
}


def _values_path(spec_path: str) -> str:
    """The values path a spec field came from (the spec path itself when unknown)."""
    candidates = [
        key
        for key in _SPEC_TO_VALUES
        if spec_path == key or spec_path.startswith((key + ".", key + "["))
    ]
    if not candidates:
        return spec_path
    return _SPEC_TO_VALUES[max(candidates, key=len)]


# ---------------------------------------------------------------------------------------------
# Spec -> values.
# ---------------------------------------------------------------------------------------------


def _probe_values(probe: HttpProbe | None) -> dict[str, Any] | None:
    if probe is None:
        return None
    return {
        "httpGet": {"path": probe.path, "port": probe.port, "scheme": probe.scheme},
        "initialDelaySeconds": probe.initial_delay_seconds,
        "periodSeconds": probe.period_seconds,
        "timeoutSeconds": probe.timeout_seconds,
        "failureThreshold": probe.failure_threshold,
        "successThreshold": probe.success_threshold,
    }


def _prune(values: Any, defaults: Any) -> Any:
    """Drops what equals the chart's defaults; returns ``...`` when nothing is left."""
    if isinstance(values, dict) and isinstance(defaults, Mapping):
        out = {}
        for k, x in values.items():
            if k in defaults:
                kept = _prune(x, defaults[k])
                if kept is not ...:
                    out[k] = kept
            else:
                out[k] = x
        return out if out else ...
    return ... if values == defaults else values


def spec_to_helm_values(spec: DeploymentSpec) -> tuple[dict[str, Any], ImportReport]:
    """The chart values (only those that differ from the chart's defaults) for a spec.

    The objects are named after the spec's base name (``fullnameOverride``). Tokens and
    client secrets are never written: give the token at install time
    (``--set gateway.auth.key=...``).

    Args:
        spec: The spec.

    Returns:
        The values, and a report of everything the chart cannot express (paths are spec
        field paths).

    Example:
        >>> from apim_selfhosted.models import Gateway
        >>> spec = DeploymentSpec(gateway=Gateway(subscription_id="s", resource_group="rg",
        ...     service_name="contoso", name="gw1"), namespace="apim", replicas=2)
        >>> values, report = spec_to_helm_values(spec)
        >>> values["replicaCount"], values["fullnameOverride"], values["gateway"]["name"]
        (2, 'gw1', 'gw1')
    """
    issues = _Issues()
    gw = spec.gateway
    values: dict[str, Any] = {"fullnameOverride": spec.base_name, "replicaCount": spec.replicas}
    gateway: dict[str, Any] = {"name": gw.name}
    configuration: dict[str, Any] = {"uri": gw.config_endpoint_url}
    auth: dict[str, Any] = {}
    secret: dict[str, Any] = {}
    issues.ignored(
        "gateway",
        "the subscription id and resource group are not chart values (the chart never calls Azure)",
    )
    a = spec.auth
    if isinstance(a, GatewayTokenAuth):
        auth["type"] = "GatewayToken"
        secret["createSecret"] = True
        issues.secret(
            "auth",
            "the token is not written into values: give it at install time "
            "(helm install ... --set gateway.auth.key='GatewayKey ...')",
            severity="warning",
        )
    elif isinstance(a, ExistingSecretAuth):
        auth["type"] = "GatewayToken"
        secret.update(createSecret=False, existingSecretName=a.secret_name)
        if a.key != "gateway-key":
            issues.unsupported(
                "auth.key",
                f"the chart reads the token from key 'gateway-key'; Secret '{a.secret_name}' "
                f"has it under {a.key!r}: add the key, or the gateway will not start",
                severity="error",
            )
    elif isinstance(a, EntraAppAuth):
        auth["type"] = "AzureAdApp"
        azure_ad: dict[str, Any] = {"tenant": {"id": a.tenant_id}, "app": {"id": a.client_id}}
        if a.authority:
            azure_ad["authority"] = a.authority
        auth["azureAd"] = azure_ad
        if a.client_secret is not None:
            secret.update(createSecret=False, existingSecretName=a.client_secret.name)
            if a.client_secret.key != "azure-ad-app-secret":
                issues.unsupported(
                    "auth.client_secret.key",
                    "the chart reads the client secret from key 'azure-ad-app-secret'",
                    severity="error",
                )
        else:
            issues.unsupported(
                "auth.certificate_secret",
                "the chart cannot authenticate with a client certificate",
                severity="error",
            )
    else:
        auth["type"] = "WorkloadIdentity"
        auth["azureAd"] = {"app": {"id": a.client_id}}
        if a.tenant_id:
            issues.unsupported("auth.tenant_id", "the chart uses the webhook's tenant")
    gateway["auth"] = auth
    img = spec.image
    values["image"] = {
        "repository": img.repository,
        "tag": img.tag + (f"@{img.digest}" if img.digest else ""),
        "pullPolicy": img.pull_policy,
    }
    if img.pull_secrets:
        values["imagePullSecrets"] = [{"name": n} for n in img.pull_secrets]
    deployment: dict[str, Any] = {}
    st = spec.strategy
    deployment["strategy"] = (
        {"type": "Recreate"}
        if st.type == "Recreate"
        else {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": st.max_unavailable, "maxSurge": st.max_surge},
        }
    )
    if spec.termination_grace_period_seconds == 0:
        issues.unsupported(
            "termination_grace_period_seconds", "the chart leaves 0 out (Kubernetes uses 30)"
        )
    deployment["terminationGracePeriodSeconds"] = spec.termination_grace_period_seconds
    proxy = {k: x for k, x in spec.proxy.model_dump().items() if x}
    if proxy:
        deployment["network"] = {"proxy": proxy}
    if spec.host_aliases:
        deployment["dns"] = {
            "hostAliases": [{"ip": h.ip, "hostnames": list(h.hostnames)} for h in spec.host_aliases]
        }
    if spec.pod_annotations:
        deployment["annotations"] = dict(spec.pod_annotations)
    gateway["deployment"] = deployment
    backup = spec.config_backup
    if backup.enabled:
        pvc: dict[str, Any] = {
            "create": backup.existing_claim is None,
            "existingName": backup.existing_claim or "",
            "size": backup.size,
            "accessMode": backup.access_mode,
            "storageClassName": backup.storage_class,
        }
        configuration["backup"] = {"enabled": True, "persistentVolumeClaim": pvc}
    if spec.additional_settings:
        configuration["additional"] = dict(spec.additional_settings)
    gateway["configuration"] = configuration
    values["gateway"] = gateway
    values["secret"] = secret
    obs = spec.observability
    local = obs.local_logs
    local_values: dict[str, Any] = {"type": local.type}
    for sink, fields in (
        ("localsyslog", ("endpoint", "facility")),
        ("rfc5424", ("endpoint", "facility")),
        ("journal", ("endpoint",)),
        ("json", ("endpoint",)),
    ):
        local_values[sink] = {f: getattr(local, f"{sink}_{f}") for f in fields}
    if local.type == "localsyslog":
        issues.approximated(
            "observability.local_logs.type",
            "the chart also mounts the node's /dev/log socket at the localsyslog endpoint",
        )
    otel = obs.opentelemetry
    values["observability"] = {
        "logs": {
            "std": {
                "format": obs.std_logs.format,
                "level": obs.std_logs.level,
                "useColor": obs.std_logs.color,
            },
            "local": local_values,
        },
        "azureMonitor": {"metrics": {"enabled": obs.azure_monitor_metrics}},
        "opentelemetry": {
            "enabled": otel.enabled,
            "collector": {"uri": otel.collector_uri},
            "histogram": {"buckets": ",".join(_num(b) for b in otel.histogram_buckets) or None},
            "systemMetrics": {"enabled": otel.system_metrics},
        },
        "statsD": {
            "enabled": obs.statsd.enabled,
            "endpoint": obs.statsd.endpoint,
            "sampling": obs.statsd.sampling,
            "tagFormat": obs.statsd.tag_format,
        },
    }
    values["security"] = {
        "tls": {
            side: {"ciphers": {"allowedSuites": ",".join(suites) or None}}
            for side, suites in (
                ("server", spec.tls.server_cipher_suites),
                ("client", spec.tls.client_cipher_suites),
            )
        }
    }
    d = spec.dapr
    values["dapr"] = {
        "enabled": d.enabled,
        "app": {"id": d.app_id},
        "config": d.config,
        "logging": {"useJsonOutput": d.log_as_json, "level": d.log_level},
    }
    s = spec.service
    service: dict[str, Any] = {
        "type": s.type,
        "ports": {
            "http": s.http_port,
            "https": s.https_port,
            "instance": {
                "synchronization": s.instance_sync_port,
                "heartbeat": s.instance_heartbeat_port,
            },
        },
        "annotations": dict(s.annotations),
    }
    if s.type == "LoadBalancer":
        lb: dict[str, Any] = {"allocateNodePorts": s.allocate_load_balancer_node_ports is not False}
        if s.load_balancer_ip:
            lb["ip"] = s.load_balancer_ip
        service["loadBalancer"] = lb
    if s.type in ("LoadBalancer", "NodePort") and s.external_traffic_policy != "Cluster":
        issues.unsupported(
            "service.external_traffic_policy",
            "the chart cannot set externalTrafficPolicy; Kubernetes uses Cluster (client IPs "
            "are not kept)",
        )
    if s.load_balancer_source_ranges:
        issues.unsupported("service.load_balancer_source_ranges", "the chart cannot set them")
    if s.annotations:
        issues.approximated(
            "service.annotations", "the chart puts them on the instance-discovery Service too"
        )
    values["service"] = service
    sa = spec.service_account
    values["serviceAccount"] = {
        "create": sa.create,
        "name": spec.service_account_name or "",
        "annotations": dict(sa.annotations),
        "labels": dict(sa.labels),
    }
    if not sa.create and sa.name is None:
        issues.approximated(
            "service_account",
            f"the chart always names a ServiceAccount: '{spec.base_name}' (which must exist)",
            severity="warning",
        )
    if not sa.automount_token:
        issues.unsupported(
            "service_account.automount_token",
            "the chart cannot turn off mounting the Kubernetes API token",
            severity="info",
        )
    values["probes"] = {
        "readiness": _probe_values(spec.probes.readiness),
        "liveness": _probe_values(spec.probes.liveness),
        "startup": _probe_values(spec.probes.startup),
    }
    if spec.resources is not None:
        values["resources"] = {k: dict(x) for k, x in spec.resources.model_dump().items() if x}
    ha = spec.high_availability
    values["highAvailability"] = {
        "enabled": ha.enabled,
        "disruption": {"maximumUnavailable": ha.max_unavailable},
        "podTopologySpread": {"whenUnsatisfiable": ha.when_unsatisfiable},
    }
    if ha.enabled:
        issues.approximated(
            "high_availability",
            "the chart spreads over zones only"
            + (" (not with pod anti-affinity)" if ha.spread == "anti-affinity" else "")
            + "; the library also spreads over nodes",
        )
    if spec.priority_class_name:
        values["priorityClassName"] = spec.priority_class_name
    values["nodeSelector"] = dict(spec.node_selector)
    values["tolerations"] = [
        {
            k: x
            for k, x in {
                "key": t.key,
                "operator": t.operator,
                "value": t.value,
                "effect": t.effect,
                "tolerationSeconds": t.toleration_seconds,
            }.items()
            if x is not None
        }
        for t in spec.tolerations
    ]
    values["affinity"] = copy.deepcopy(spec.affinity)
    sc = spec.security_context
    if sc is not None:
        pod_sc: dict[str, Any] = {"runAsNonRoot": sc.run_as_non_root}
        ctr_sc: dict[str, Any] = {
            "allowPrivilegeEscalation": sc.allow_privilege_escalation,
            "privileged": False,
            "runAsNonRoot": sc.run_as_non_root,
        }
        for key, value in (("runAsUser", sc.run_as_user), ("runAsGroup", sc.run_as_group)):
            if value is not None:
                pod_sc[key] = value
                ctr_sc[key] = value
        if sc.fs_group is not None:
            pod_sc["fsGroup"] = sc.fs_group
        if sc.fs_group_change_policy:
            pod_sc["fsGroupChangePolicy"] = sc.fs_group_change_policy
        if sc.seccomp_profile:
            pod_sc["seccompProfile"] = {"type": sc.seccomp_profile}
            ctr_sc["seccompProfile"] = {"type": sc.seccomp_profile}
        if sc.drop_all_capabilities:
            ctr_sc["capabilities"] = {"drop": ["ALL"]}
        values["podSecurityContext"] = pod_sc
        values["securityContext"] = ctr_sc
    values["commonLabels"] = dict(spec.common_labels)
    for path, present, why in (
        ("dns_policy", spec.dns_policy is not None, "the chart cannot set dnsPolicy"),
        ("dns_config", spec.dns_config is not None, "the chart cannot set dnsConfig"),
        ("min_ready_seconds", spec.min_ready_seconds > 0, "the chart cannot set minReadySeconds"),
        ("autoscaling", spec.autoscaling is not None, "the chart has no HorizontalPodAutoscaler"),
        ("network_policy", spec.network_policy is not None, "the chart has no NetworkPolicy"),
        ("pod_labels", bool(spec.pod_labels), "the chart cannot add pod labels"),
        ("common_annotations", bool(spec.common_annotations), "the chart has no such value"),
        (
            "deployment_annotations",
            bool(spec.deployment_annotations),
            "the chart's deployment annotations go on the pods, not the Deployment",
        ),
        ("create_namespace", spec.create_namespace, "use helm install --create-namespace"),
    ):
        if present:
            issues.unsupported(path, why)
    if spec.autoscaling is not None:
        values["replicaCount"] = None
    pruned = _prune(values, CHART_DEFAULTS)
    out: dict[str, Any] = pruned if isinstance(pruned, dict) else {}
    report = ImportReport(
        source=f"spec {spec.namespace}/{spec.base_name}", issues=tuple(issues.items)
    )
    return out, report


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
