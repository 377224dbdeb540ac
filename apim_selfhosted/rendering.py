"""Renders a :class:`~apim_selfhosted.models.DeploymentSpec` and a token into Kubernetes manifests.

Pure and deterministic: the same spec and token give the same dicts and byte-identical YAML.

**The token Secret.** With library-managed token auth (``auth.kind: gateway-token``) and a token,
the token goes into an *immutable* Secret named ``<base>-token-<hash>``, where ``<hash>`` is the
first 10 hex digits of the SHA-256 of the Secret's content. The Deployment's pod template reads
``config.service.auth`` from that Secret by name. The gateway reads its token only at container
start, so:

* a new token is a new Secret plus a one-line change of the pod template, which Kubernetes rolls
  out as a RollingUpdate (with ``maxUnavailable: 0`` no capacity is lost);
* a rollback points the pod template back at the previous Secret, which still exists untouched
  (immutable, so nobody changed it in between);
* old pods keep reading the Secret they started with until they are gone; a pruner removes old
  token Secrets later. Secrets carry the gateway, the token fingerprint, key type and expiry as
  labels and annotations, never the token, so code can choose among them without reading values.

Without a token the Secret is left out and the Deployment reads the Secret ``<base>-token`` with
key ``value`` (:attr:`DeploymentSpec.untokened_secret_name`): the Secret the portal's
``kubectl create secret generic <gw>-token --from-literal=value="GatewayKey ..."`` command makes.
So ``apim-selfhosted render`` without ``--token-file`` gives YAML that works with the portal's
instructions, while ``deploy`` (which issues a token) always renders with one.

Example:
    >>> from apim_selfhosted.models import DeploymentSpec, Gateway, Token
    >>> spec = DeploymentSpec(gateway=Gateway(subscription_id="s1", resource_group="rg",
    ...     service_name="contoso", name="gw1"), namespace="apim")
    >>> token = Token.parse("GatewayKey gw1&202611270418&c2lnbmF0dXJl")
    >>> [m["kind"] for m in render(spec, token)]
    ['ServiceAccount', 'Secret', 'ConfigMap', 'Deployment', 'Service', 'Service']
    >>> token_secret_name(spec, token)
    'gw1-token-...'
    >>> "c2lnbmF0dXJl" in to_yaml(render(spec, token))
    False
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from apim_selfhosted.errors import SpecError, TokenError
from apim_selfhosted.models import (
    AzureCloud,
    DeploymentSpec,
    EntraAppAuth,
    ExistingSecretAuth,
    Gateway,
    GatewayTokenAuth,
    HttpProbe,
    Token,
    WorkloadIdentityAuth,
)

logger = logging.getLogger(__name__)

__all__ = [
    "ANNOTATION_CONFIG_HASH",
    "ANNOTATION_GATEWAY_RESOURCE_ID",
    "ANNOTATION_TOKEN_EXPIRES_ON",
    "APP_NAME",
    "LABEL_COMPONENT",
    "LABEL_GATEWAY",
    "LABEL_INSTANCE",
    "LABEL_KEY_TYPE",
    "LABEL_MANAGED_BY",
    "LABEL_NAME",
    "LABEL_TOKEN_EXPIRES",
    "LABEL_TOKEN_FINGERPRINT",
    "LABEL_VERSION",
    "MANAGED_BY",
    "REDACTED",
    "TOKEN_SECRET_KEY",
    "TokenReference",
    "gateway_label_value",
    "managed_selector",
    "object_labels",
    "redact",
    "render",
    "secret_name_in_use",
    "selector_labels",
    "settings_hash",
    "to_yaml",
    "token_reference",
    "token_secret",
    "token_secret_name",
    "token_secret_selector",
]

_AUTH_ENV = "config.service.auth"

#: ``app.kubernetes.io/name`` of every object.
APP_NAME = "azure-api-management-gateway"
#: ``app.kubernetes.io/managed-by`` of every object.
MANAGED_BY = "apim-selfhosted"

LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_VERSION = "app.kubernetes.io/version"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_COMPONENT = "app.kubernetes.io/component"
#: The APIM gateway an object belongs to (see :func:`gateway_label_value`).
LABEL_GATEWAY = "apim-selfhosted.io/gateway"
#: On token Secrets: :attr:`Token.fingerprint`.
LABEL_TOKEN_FINGERPRINT = "apim-selfhosted.io/token-fingerprint"  # noqa: S105
#: On token Secrets: ``primary`` or ``secondary``.
LABEL_KEY_TYPE = "apim-selfhosted.io/key-type"
#: On token Secrets: the expiry as ``yyyyMMddHHmm`` (UTC), sortable and selectable.
LABEL_TOKEN_EXPIRES = "apim-selfhosted.io/token-expires"  # noqa: S105
#: On token Secrets: the expiry in ISO 8601.
ANNOTATION_TOKEN_EXPIRES_ON = "apim-selfhosted.io/token-expires-on"  # noqa: S105
#: On every object: the ARM id of the gateway.
ANNOTATION_GATEWAY_RESOURCE_ID = "apim-selfhosted.io/gateway-resource-id"
#: On the pod template: a hash of the ConfigMap data, so a settings change rolls the pods.
ANNOTATION_CONFIG_HASH = "apim-selfhosted.io/config-hash"
#: Key of the token in the token Secret (the portal's key).
TOKEN_SECRET_KEY = "value"  # noqa: S105
#: What :func:`to_yaml` shows instead of secret values.
REDACTED = "<redacted>"

_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_WORKLOAD_IDENTITY_LABEL = "azure.workload.identity/use"
_CERT_DIR = "/apim/certificates"
_BACKUP_DIR = "/apim/config"


def _short_hash(text: str, n: int = 10) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def _label_safe(value: str) -> str:
    if len(value) <= 63 and _LABEL_VALUE_RE.match(value):
        return value
    cleaned = re.sub(r"[^-A-Za-z0-9_.]", "-", value)[:52].strip("-_.")
    return f"{cleaned}-{_short_hash(value)}" if cleaned else _short_hash(value)


def gateway_label_value(gateway: Gateway) -> str:
    """The value of :data:`LABEL_GATEWAY` for a gateway: its name, made label-safe if needed.

    Args:
        gateway: The gateway.

    Returns:
        The gateway name when it is a valid label value, else a shortened form plus a hash.

    Example:
        >>> from apim_selfhosted.models import Gateway
        >>> gateway_label_value(Gateway(subscription_id="s", resource_group="rg",
        ...                             service_name="contoso", name="gw1"))
        'gw1'
    """
    return _label_safe(gateway.name)


def selector_labels(spec: DeploymentSpec) -> dict[str, str]:
    """The labels selecting the gateway pods: only stable ones, as selectors are immutable.

    Args:
        spec: The deployment spec.

    Returns:
        ``app.kubernetes.io/name`` and ``app.kubernetes.io/instance``; for a spec with
        ``existing`` objects (an adopted gateway), the adopted Deployment's selector.

    Example:
        >>> from apim_selfhosted.models import DeploymentSpec, Gateway
        >>> labels = selector_labels(DeploymentSpec(gateway=Gateway(subscription_id="s",
        ...     resource_group="rg", service_name="contoso", name="gw1"), namespace="apim"))
        >>> sorted(labels.items())  # doctest: +NORMALIZE_WHITESPACE
        [('app.kubernetes.io/instance', 'gw1'),
         ('app.kubernetes.io/name', 'azure-api-management-gateway')]
    """
    if spec.existing is not None:
        return dict(spec.existing.selector)
    return _own_labels(spec)


def _own_labels(spec: DeploymentSpec) -> dict[str, str]:
    return {LABEL_NAME: APP_NAME, LABEL_INSTANCE: spec.base_name}


def settings_hash(spec: DeploymentSpec) -> str:
    """A hash of the gateway settings (the ConfigMap data) the spec renders.

    It is the pod template's ``apim-selfhosted.io/config-hash`` annotation, so that a change of
    settings rolls the pods; adopt records it in ``ExistingObjects.config_hash``.

    Args:
        spec: The deployment spec.

    Returns:
        16 hex digits.

    Example:
        >>> from apim_selfhosted.models import DeploymentSpec, Gateway
        >>> len(settings_hash(DeploymentSpec(gateway=Gateway(subscription_id="s",
        ...     resource_group="rg", service_name="contoso", name="gw1"), namespace="apim")))
        16
    """
    return _short_hash(json.dumps(_settings(spec), sort_keys=True), 16)


def object_labels(spec: DeploymentSpec, *, component: str | None = None) -> dict[str, str]:
    """The labels every rendered object carries.

    Args:
        spec: The deployment spec.
        component: Optional ``app.kubernetes.io/component`` value.

    Returns:
        The spec's ``common_labels``, then name, instance, version, managed-by, the gateway label
        and the component (the library's labels win over common labels of the same key).

    Example:
        >>> from apim_selfhosted.models import DeploymentSpec, Gateway
        >>> labels = object_labels(DeploymentSpec(gateway=Gateway(subscription_id="s",
        ...     resource_group="rg", service_name="contoso", name="gw1"), namespace="apim"))
        >>> labels["app.kubernetes.io/managed-by"], labels["apim-selfhosted.io/gateway"]
        ('apim-selfhosted', 'gw1')
    """
    labels = dict(spec.common_labels)
    labels.update(_own_labels(spec))
    labels[LABEL_VERSION] = _label_safe(spec.image.tag)
    labels[LABEL_MANAGED_BY] = MANAGED_BY
    labels[LABEL_GATEWAY] = gateway_label_value(spec.gateway)
    if component is not None:
        labels[LABEL_COMPONENT] = component
    return labels


def managed_selector(spec: DeploymentSpec) -> str:
    """A label selector matching every object the library rendered for this spec's gateway.

    Args:
        spec: The deployment spec.

    Returns:
        A selector string for ``labelSelector=`` (``kubectl get -l``).

    Example:
        >>> from apim_selfhosted.models import DeploymentSpec, Gateway
        >>> managed_selector(DeploymentSpec(gateway=Gateway(subscription_id="s",
        ...     resource_group="rg", service_name="contoso", name="gw1"),
        ...     namespace="apim")).split(",")  # doctest: +NORMALIZE_WHITESPACE
        ['app.kubernetes.io/managed-by=apim-selfhosted', 'app.kubernetes.io/instance=gw1',
         'apim-selfhosted.io/gateway=gw1']
    """
    return (
        f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_INSTANCE}={spec.base_name},"
        f"{LABEL_GATEWAY}={gateway_label_value(spec.gateway)}"
    )


def token_secret_selector(spec: DeploymentSpec) -> str:
    """A label selector matching this spec's token Secrets (current and previous).

    Args:
        spec: The deployment spec.

    Returns:
        :func:`managed_selector` plus ``app.kubernetes.io/component=gateway-token``.

    Example:
        >>> from apim_selfhosted.models import DeploymentSpec, Gateway
        >>> token_secret_selector(DeploymentSpec(gateway=Gateway(subscription_id="s",
        ...     resource_group="rg", service_name="contoso", name="gw1"),
        ...     namespace="apim")).endswith("component=gateway-token")
        True
    """
    return f"{managed_selector(spec)},{LABEL_COMPONENT}=gateway-token"


def _annotations(spec: DeploymentSpec, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    out = dict(spec.common_annotations)
    out[ANNOTATION_GATEWAY_RESOURCE_ID] = spec.gateway.resource_id
    if extra:
        out.update(extra)
    return out


def _metadata(
    spec: DeploymentSpec,
    name: str,
    *,
    component: str | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    namespaced: bool = True,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespaced:
        meta["namespace"] = spec.namespace
    all_labels = object_labels(spec, component=component)
    if labels:
        all_labels = {**labels, **all_labels}
    meta["labels"] = all_labels
    meta["annotations"] = _annotations(spec, annotations)
    return meta


def _check_token(spec: DeploymentSpec, token: Token) -> None:
    if not isinstance(spec.auth, GatewayTokenAuth):
        raise SpecError(
            f"auth.kind is {spec.auth.kind!r}: a token is only used with auth.kind "
            "'gateway-token'; render without a token",
            problems=[("auth.kind", "a token needs 'gateway-token'")],
        )
    if token.gateway_id.lower() != spec.gateway.name.lower():
        raise TokenError(
            f"the token belongs to gateway {token.gateway_id!r}, not {spec.gateway.name!r}"
        )


def token_secret_name(spec: DeploymentSpec, token: Token) -> str:
    """The name of the immutable Secret holding ``token`` for ``spec``: ``<base>-token-<hash10>``.

    The hash covers the Secret's content, so the same token always gives the same name and a
    different token a different one.

    Args:
        spec: The deployment spec (library-managed token auth).
        token: The token.

    Returns:
        The Secret name.

    Raises:
        SpecError: The spec does not use library-managed token auth.
        TokenError: The token belongs to another gateway.

    Example:
        >>> from apim_selfhosted.models import DeploymentSpec, Gateway, Token
        >>> spec = DeploymentSpec(gateway=Gateway(subscription_id="s", resource_group="rg",
        ...     service_name="contoso", name="gw1"), namespace="apim")
        >>> name = token_secret_name(spec, Token.parse("gw1&202611270418&c2ln"))
        >>> name.startswith("gw1-token-"), len(name) == len("gw1-token-") + 10
        (True, True)
    """
    _check_token(spec, token)
    content = f"{TOKEN_SECRET_KEY}\0{token.value.get_secret_value()}"
    return f"{spec.base_name}-token-{_short_hash(content)}"


def token_secret(spec: DeploymentSpec, token: Token) -> dict[str, Any]:
    """The immutable token Secret manifest (the value base64-encoded in ``data``).

    Args:
        spec: The deployment spec (library-managed token auth).
        token: The token.

    Returns:
        The Secret as a dict; its labels and annotations carry the fingerprint, key type and
        expiry, never the token.

    Raises:
        SpecError: The spec does not use library-managed token auth.
        TokenError: The token belongs to another gateway.

    Example:
        >>> from apim_selfhosted.models import DeploymentSpec, Gateway, Token
        >>> spec = DeploymentSpec(gateway=Gateway(subscription_id="s", resource_group="rg",
        ...     service_name="contoso", name="gw1"), namespace="apim")
        >>> secret = token_secret(spec, Token.parse("gw1&202611270418&c2ln"))
        >>> secret["immutable"], secret["metadata"]["labels"]["apim-selfhosted.io/token-expires"]
        (True, '202611270418')
    """
    name = token_secret_name(spec, token)
    value = token.value.get_secret_value()
    metadata = _metadata(
        spec,
        name,
        component="gateway-token",
        annotations={ANNOTATION_TOKEN_EXPIRES_ON: _iso(token)},
    )
    metadata["labels"].update(
        {
            LABEL_TOKEN_FINGERPRINT: token.fingerprint,
            LABEL_KEY_TYPE: token.key_type.value,
            LABEL_TOKEN_EXPIRES: token.expires_on.strftime("%Y%m%d%H%M"),
        }
    )
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "Opaque",
        "immutable": True,
        "data": {TOKEN_SECRET_KEY: base64.b64encode(value.encode()).decode()},
    }


def _iso(token: Token) -> str:
    return token.expires_on.strftime("%Y-%m-%dT%H:%M:%SZ")


class TokenReference(NamedTuple):
    """Where a gateway Deployment reads its token from: container, Secret and key.

    Example:
        >>> TokenReference(container="gw1", secret="gw1-token", key="value").secret
        'gw1-token'
    """

    container: str
    secret: str
    key: str


def token_reference(deployment: Mapping[str, Any]) -> TokenReference | None:
    """The container, Secret and key a gateway Deployment reads ``config.service.auth`` from.

    Args:
        deployment: A Deployment manifest as a dict (from :func:`render` or the API server).

    Returns:
        The first container whose ``config.service.auth`` comes from a Secret key, or ``None``
        when no container reads the token from a Secret.

    Example:
        >>> from apim_selfhosted.models import DeploymentSpec, Gateway
        >>> spec = DeploymentSpec(gateway=Gateway(subscription_id="s", resource_group="rg",
        ...     service_name="contoso", name="gw1"), namespace="apim")
        >>> [token_reference(m) for m in render(spec) if m["kind"] == "Deployment"]
        [TokenReference(container='gw1', secret='gw1-token', key='value')]
    """
    template = (deployment.get("spec") or {}).get("template") or {}
    for container in (template.get("spec") or {}).get("containers") or []:
        for env in container.get("env") or []:
            if env.get("name") == _AUTH_ENV:
                ref = (env.get("valueFrom") or {}).get("secretKeyRef") or {}
                if ref.get("name") and ref.get("key"):
                    return TokenReference(str(container["name"]), str(ref["name"]), str(ref["key"]))
    return None


def secret_name_in_use(deployment: Mapping[str, Any]) -> str | None:
    """The Secret a (rendered or live) gateway Deployment reads ``config.service.auth`` from.

    Args:
        deployment: A Deployment manifest as a dict (from :func:`render` or the API server).

    Returns:
        The Secret name, or ``None`` when the token does not come from a Secret.

    Example:
        >>> from apim_selfhosted.models import DeploymentSpec, Gateway
        >>> spec = DeploymentSpec(gateway=Gateway(subscription_id="s", resource_group="rg",
        ...     service_name="contoso", name="gw1"), namespace="apim")
        >>> [secret_name_in_use(m) for m in render(spec) if m["kind"] == "Deployment"]
        ['gw1-token']
    """
    ref = token_reference(deployment)
    return ref.secret if ref is not None else None


# ---------------------------------------------------------------------------------------------
# The manifests.
# ---------------------------------------------------------------------------------------------


def _authority(cloud: AzureCloud, tenant: str) -> str:
    return f"https://{cloud.authority_host}/{tenant}"


def _settings(spec: DeploymentSpec) -> dict[str, str]:
    from apim_selfhosted import __version__

    gw = spec.gateway
    data: dict[str, str] = {"config.service.endpoint": gw.config_endpoint_url}
    auth = spec.auth
    if isinstance(auth, EntraAppAuth):
        data["config.service.auth"] = "azureAdApp"
        data["config.service.auth.azureAd.tenantId"] = auth.tenant_id
        data["config.service.auth.azureAd.clientId"] = auth.client_id
        if auth.certificate_secret is not None:
            data["config.service.auth.azureAd.certificatePath"] = (
                f"{_CERT_DIR}/{auth.certificate_key}"
            )
        if auth.authority is not None or gw.cloud is not AzureCloud.PUBLIC:
            data["config.service.auth.azureAd.authority"] = auth.authority or _authority(
                gw.cloud, auth.tenant_id
            )
        data["gateway.name"] = gw.name
    elif isinstance(auth, WorkloadIdentityAuth):
        data["config.service.auth"] = "workloadIdentity"
        data["config.service.auth.azureAd.clientId"] = auth.client_id
        if auth.tenant_id is not None:
            data["config.service.auth.azureAd.tenantId"] = auth.tenant_id
            if gw.cloud is not AzureCloud.PUBLIC:
                data["config.service.auth.azureAd.authority"] = _authority(gw.cloud, auth.tenant_id)
        data["gateway.name"] = gw.name
    data["neighborhood.host"] = spec.discovery_service_name
    data["runtime.deployment.artifact.source"] = "apim-selfhosted"
    data["runtime.deployment.artifact.version"] = __version__
    data["runtime.deployment.mechanism"] = "apim-selfhosted-python"
    data["runtime.deployment.orchestrator.type"] = "Kubernetes"
    obs = spec.observability
    data["telemetry.metrics.cloud"] = _bool(obs.azure_monitor_metrics)
    data["telemetry.logs.std"] = obs.std_logs.format
    data["telemetry.logs.std.level"] = obs.std_logs.level
    data["telemetry.logs.std.color"] = _bool(obs.std_logs.color)
    local = obs.local_logs
    data["telemetry.logs.local"] = local.type
    for key, value in (
        ("telemetry.logs.local.localsyslog.endpoint", local.localsyslog_endpoint),
        ("telemetry.logs.local.localsyslog.facility", local.localsyslog_facility),
        ("telemetry.logs.local.rfc5424.endpoint", local.rfc5424_endpoint),
        ("telemetry.logs.local.rfc5424.facility", local.rfc5424_facility),
        ("telemetry.logs.local.journal.endpoint", local.journal_endpoint),
        ("telemetry.logs.local.json.endpoint", local.json_endpoint),
    ):
        if value is not None and local.type != "none":
            data[key] = str(value)
    statsd = obs.statsd
    if statsd.enabled and statsd.endpoint:
        data["telemetry.metrics.local"] = "statsd"
        data["telemetry.metrics.local.statsd.endpoint"] = statsd.endpoint
        data["telemetry.metrics.local.statsd.sampling"] = _number(statsd.sampling)
        data["telemetry.metrics.local.statsd.tag-format"] = statsd.tag_format
    else:
        data["telemetry.metrics.local"] = "none"
    otel = obs.opentelemetry
    data["observability.opentelemetry.enabled"] = _bool(otel.enabled)
    if otel.enabled and otel.collector_uri:
        data["observability.opentelemetry.collector.uri"] = otel.collector_uri
        if otel.histogram_buckets:
            data["observability.opentelemetry.histogram.buckets"] = ",".join(
                _number(b) for b in otel.histogram_buckets
            )
        data["observability.opentelemetry.systemMetrics.enabled"] = _bool(otel.system_metrics)
    if spec.tls.server_cipher_suites:
        data["net.server.tls.ciphers.allowed-suites"] = ",".join(spec.tls.server_cipher_suites)
    if spec.tls.client_cipher_suites:
        data["net.client.tls.ciphers.allowed-suites"] = ",".join(spec.tls.client_cipher_suites)
    for key in sorted(spec.additional_settings):
        data[key] = spec.additional_settings[key]
    return data


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _probe(probe: HttpProbe, *, adopted: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "httpGet": {"path": probe.path, "port": probe.port, "scheme": probe.scheme},
        "initialDelaySeconds": probe.initial_delay_seconds,
        "periodSeconds": probe.period_seconds,
        "timeoutSeconds": probe.timeout_seconds,
        "failureThreshold": probe.failure_threshold,
        "successThreshold": probe.success_threshold,
    }
    if adopted and not probe.initial_delay_seconds:
        del out["initialDelaySeconds"]  # 0 is the API's zero value, which it does not store
    return out


def _env(spec: DeploymentSpec, token: Token | None) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = []
    auth = spec.auth
    if isinstance(auth, GatewayTokenAuth):
        name = token_secret_name(spec, token) if token else spec.untokened_secret_name
        env.append(_secret_env("config.service.auth", name, TOKEN_SECRET_KEY))
    elif isinstance(auth, ExistingSecretAuth):
        env.append(_secret_env("config.service.auth", auth.secret_name, auth.key))
    elif isinstance(auth, EntraAppAuth) and auth.client_secret is not None:
        env.append(
            _secret_env(
                "config.service.auth.azureAd.clientSecret",
                auth.client_secret.name,
                auth.client_secret.key,
            )
        )
    proxy = spec.proxy
    for name, value in (
        ("HTTP_PROXY", proxy.http),
        ("HTTPS_PROXY", proxy.https),
        ("NO_PROXY", proxy.bypass),
    ):
        if value:
            env.append({"name": name, "value": value})
    return env


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _container_name(spec: DeploymentSpec) -> str:
    if spec.existing is not None and spec.existing.container is not None:
        return spec.existing.container
    return spec.base_name


def _container(spec: DeploymentSpec, token: Token | None) -> dict[str, Any]:
    adopted = spec.existing is not None
    container: dict[str, Any] = {
        "name": _container_name(spec),
        "image": spec.image.reference,
        "imagePullPolicy": spec.image.pull_policy,
        "ports": [
            {"name": "http", "containerPort": 8080, "protocol": "TCP"},
            {"name": "https", "containerPort": 8081, "protocol": "TCP"},
            {"name": "rate-limit-dc", "containerPort": 4290, "protocol": "UDP"},
            {"name": "dc-heartbeat", "containerPort": 4291, "protocol": "UDP"},
        ],
        "env": _env(spec, token),
        "envFrom": [{"configMapRef": {"name": spec.config_map_name}}],
    }
    if spec.probes.readiness is not None:
        container["readinessProbe"] = _probe(spec.probes.readiness, adopted=adopted)
    if spec.probes.liveness is not None:
        container["livenessProbe"] = _probe(spec.probes.liveness, adopted=adopted)
    if spec.probes.startup is not None:
        container["startupProbe"] = _probe(spec.probes.startup, adopted=adopted)
    if spec.resources is not None:
        resources: dict[str, Any] = {}
        if spec.resources.requests:
            resources["requests"] = dict(spec.resources.requests)
        if spec.resources.limits:
            resources["limits"] = dict(spec.resources.limits)
        container["resources"] = resources
    sc = spec.security_context
    if sc is not None:
        csc: dict[str, Any] = {
            "allowPrivilegeEscalation": sc.allow_privilege_escalation,
            "privileged": False,
            "runAsNonRoot": sc.run_as_non_root,
        }
        if sc.run_as_user is not None:
            csc["runAsUser"] = sc.run_as_user
        if sc.run_as_group is not None:
            csc["runAsGroup"] = sc.run_as_group
        if sc.drop_all_capabilities:
            csc["capabilities"] = {"drop": ["ALL"]}
        if sc.seccomp_profile is not None:
            csc["seccompProfile"] = {"type": sc.seccomp_profile}
        container["securityContext"] = csc
    mounts: list[dict[str, Any]] = []
    if spec.pvc_name is not None:
        mounts.append({"name": "config-backup", "mountPath": _BACKUP_DIR})
    if isinstance(spec.auth, EntraAppAuth) and spec.auth.certificate_secret is not None:
        mounts.append({"name": "entra-certificate", "mountPath": _CERT_DIR, "readOnly": True})
    if mounts:
        container["volumeMounts"] = mounts
    return container


def _pod_spec(spec: DeploymentSpec, token: Token | None) -> dict[str, Any]:
    pod: dict[str, Any] = {}
    sa = spec.service_account_name
    # An adopted pod template that leaves these to Kubernetes' defaults keeps them unwritten.
    adopted = spec.existing is not None
    if sa is not None and not (adopted and sa == "default"):
        pod["serviceAccountName"] = sa
    if not (adopted and spec.service_account.automount_token):
        pod["automountServiceAccountToken"] = spec.service_account.automount_token
    pod["terminationGracePeriodSeconds"] = spec.termination_grace_period_seconds
    if spec.image.pull_secrets:
        pod["imagePullSecrets"] = [{"name": n} for n in spec.image.pull_secrets]
    if spec.priority_class_name is not None:
        pod["priorityClassName"] = spec.priority_class_name
    if spec.dns_policy is not None:
        pod["dnsPolicy"] = spec.dns_policy
    if spec.dns_config is not None:
        dns: dict[str, Any] = {}
        if spec.dns_config.nameservers:
            dns["nameservers"] = list(spec.dns_config.nameservers)
        if spec.dns_config.searches:
            dns["searches"] = list(spec.dns_config.searches)
        if spec.dns_config.options:
            dns["options"] = [
                {"name": o.name} | ({"value": o.value} if o.value is not None else {})
                for o in spec.dns_config.options
            ]
        pod["dnsConfig"] = dns
    if spec.host_aliases:
        pod["hostAliases"] = [
            {"ip": h.ip, "hostnames": list(h.hostnames)} for h in spec.host_aliases
        ]
    if spec.node_selector:
        pod["nodeSelector"] = dict(spec.node_selector)
    if spec.tolerations:
        pod["tolerations"] = [t.to_manifest() for t in spec.tolerations]
    affinity = copy.deepcopy(spec.affinity)
    ha = spec.high_availability
    if ha.enabled and ha.spread == "anti-affinity":
        anti = affinity.setdefault("podAntiAffinity", {})
        preferred = anti.setdefault("preferredDuringSchedulingIgnoredDuringExecution", [])
        for weight, key in ((100, "topology.kubernetes.io/zone"), (50, "kubernetes.io/hostname")):
            preferred.append(
                {
                    "weight": weight,
                    "podAffinityTerm": {
                        "labelSelector": {"matchLabels": selector_labels(spec)},
                        "topologyKey": key,
                    },
                }
            )
    if affinity:
        pod["affinity"] = affinity
    if ha.enabled and ha.spread == "zone-topology":
        pod["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": key,
                "whenUnsatisfiable": ha.when_unsatisfiable,
                "labelSelector": {"matchLabels": selector_labels(spec)},
            }
            for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
        ]
    sc = spec.security_context
    if sc is not None:
        psc: dict[str, Any] = {"runAsNonRoot": sc.run_as_non_root}
        if sc.run_as_user is not None:
            psc["runAsUser"] = sc.run_as_user
        if sc.run_as_group is not None:
            psc["runAsGroup"] = sc.run_as_group
        if sc.fs_group is not None:
            psc["fsGroup"] = sc.fs_group
        if sc.fs_group_change_policy is not None:
            psc["fsGroupChangePolicy"] = sc.fs_group_change_policy
        if sc.seccomp_profile is not None:
            psc["seccompProfile"] = {"type": sc.seccomp_profile}
        pod["securityContext"] = psc
    pod["containers"] = [_container(spec, token)]
    volumes: list[dict[str, Any]] = []
    if spec.pvc_name is not None:
        volumes.append(
            {"name": "config-backup", "persistentVolumeClaim": {"claimName": spec.pvc_name}}
        )
    if isinstance(spec.auth, EntraAppAuth) and spec.auth.certificate_secret is not None:
        volumes.append(
            {
                "name": "entra-certificate",
                "secret": {"secretName": spec.auth.certificate_secret, "defaultMode": 0o440},
            }
        )
    if volumes:
        pod["volumes"] = volumes
    return pod


def _deployment(spec: DeploymentSpec, token: Token | None, config_hash: str) -> dict[str, Any]:
    existing = spec.existing
    own = object_labels(spec, component="gateway") if existing is None else {}
    pod_labels = {**(existing.pod_labels if existing else {}), **spec.pod_labels, **own}
    if isinstance(spec.auth, WorkloadIdentityAuth):
        pod_labels[_WORKLOAD_IDENTITY_LABEL] = "true"
    pod_annotations = {**(existing.pod_annotations if existing else {}), **spec.pod_annotations}
    if spec.dapr.enabled:
        pod_annotations["dapr.io/enabled"] = "true"
        if spec.dapr.app_id:
            pod_annotations["dapr.io/app-id"] = spec.dapr.app_id
        pod_annotations["dapr.io/config"] = spec.dapr.config
        pod_annotations["dapr.io/log-as-json"] = _bool(spec.dapr.log_as_json)
        pod_annotations["dapr.io/log-level"] = spec.dapr.log_level
    if existing is None:
        pod_annotations["kubectl.kubernetes.io/default-container"] = spec.base_name
    if existing is None or existing.config_hash != config_hash:
        pod_annotations[ANNOTATION_CONFIG_HASH] = config_hash
    if token is not None:
        pod_annotations[LABEL_TOKEN_FINGERPRINT] = token.fingerprint
        pod_annotations[ANNOTATION_TOKEN_EXPIRES_ON] = _iso(token)
    body: dict[str, Any] = {}
    if spec.replicas is not None and spec.autoscaling is None:
        body["replicas"] = spec.replicas
    body["revisionHistoryLimit"] = 10
    if spec.min_ready_seconds:
        body["minReadySeconds"] = spec.min_ready_seconds
    body["progressDeadlineSeconds"] = spec.progress_deadline_seconds
    body["selector"] = {"matchLabels": selector_labels(spec)}
    strategy: dict[str, Any] = {"type": spec.strategy.type}
    if spec.strategy.type == "RollingUpdate":
        strategy["rollingUpdate"] = {
            "maxUnavailable": spec.strategy.max_unavailable,
            "maxSurge": spec.strategy.max_surge,
        }
    body["strategy"] = strategy
    template_meta: dict[str, Any] = {"labels": pod_labels}
    if pod_annotations:  # an adopted template without annotations stays without
        template_meta["annotations"] = pod_annotations
    body["template"] = {"metadata": template_meta, "spec": _pod_spec(spec, token)}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(
            spec,
            spec.base_name,
            component="gateway",
            annotations=spec.deployment_annotations,
        ),
        "spec": body,
    }


def _services(spec: DeploymentSpec) -> list[dict[str, Any]]:
    svc = spec.service
    live: dict[str, Any] = {"type": svc.type}
    if svc.type in ("LoadBalancer", "NodePort"):
        live["externalTrafficPolicy"] = svc.external_traffic_policy
    if svc.type == "LoadBalancer":
        if svc.load_balancer_ip is not None:
            live["loadBalancerIP"] = svc.load_balancer_ip
        if svc.load_balancer_source_ranges:
            live["loadBalancerSourceRanges"] = list(svc.load_balancer_source_ranges)
        if svc.allocate_load_balancer_node_ports is not None:
            live["allocateLoadBalancerNodePorts"] = svc.allocate_load_balancer_node_ports
    live["ports"] = [
        {"name": "http", "port": svc.http_port, "targetPort": 8080, "protocol": "TCP"},
        {"name": "https", "port": svc.https_port, "targetPort": 8081, "protocol": "TCP"},
    ]
    live["selector"] = selector_labels(spec)
    discovery = {
        "type": "ClusterIP",
        "clusterIP": "None",
        "ports": [
            {
                "name": "rate-limit-discovery",
                "port": svc.instance_sync_port,
                "targetPort": "rate-limit-dc",
                "protocol": "UDP",
            },
            {
                "name": "discovery-heartbeat",
                "port": svc.instance_heartbeat_port,
                "targetPort": "dc-heartbeat",
                "protocol": "UDP",
            },
        ],
        "selector": selector_labels(spec),
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _metadata(
                spec, spec.live_service_name, component="gateway", annotations=svc.annotations
            ),
            "spec": live,
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _metadata(
                spec,
                spec.discovery_service_name,
                component="instance-discovery",
                annotations={
                    "azure.apim.kubernetes.io/notes": (
                        "Headless service used by gateway instances to discover each other"
                    )
                },
            ),
            "spec": discovery,
        },
    ]


def _network_policy(spec: DeploymentSpec) -> dict[str, Any]:
    assert spec.network_policy is not None
    np = spec.network_policy
    peers = {"podSelector": {"matchLabels": selector_labels(spec)}}
    sync_ports = [{"protocol": "UDP", "port": 4290}, {"protocol": "UDP", "port": 4291}]
    traffic: dict[str, Any] = {
        "ports": [{"protocol": "TCP", "port": 8080}, {"protocol": "TCP", "port": 8081}]
    }
    if np.ingress_from:
        traffic["from"] = [copy.deepcopy(dict(p)) for p in np.ingress_from]
    body: dict[str, Any] = {
        "podSelector": {"matchLabels": selector_labels(spec)},
        "policyTypes": ["Ingress", "Egress"] if np.restrict_egress else ["Ingress"],
        "ingress": [traffic, {"from": [peers], "ports": sync_ports}],
    }
    if np.restrict_egress:
        body["egress"] = [
            {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
            {"ports": [{"protocol": "TCP", "port": 443}]},
            {"to": [peers], "ports": sync_ports},
            *(copy.deepcopy(dict(rule)) for rule in np.egress_to),
        ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(spec, spec.base_name, component="gateway"),
        "spec": body,
    }


def render(spec: DeploymentSpec, token: Token | None = None) -> list[dict[str, Any]]:
    """Renders the manifests for a spec, in the order they should be applied.

    Order: Namespace (if ``create_namespace``), ServiceAccount (if created), token Secret (with a
    token), ConfigMap, PersistentVolumeClaim (if backup creates one), Deployment, live-traffic
    Service, instance-discovery Service, PodDisruptionBudget, HorizontalPodAutoscaler,
    NetworkPolicy. See the module docstring for the token Secret design and what happens
    without a token.

    A spec with ``existing`` objects (an adopted gateway, see
    :class:`~apim_selfhosted.models.ExistingObjects`) renders with the adopted object names and
    Deployment selector; the library's labels go on every object's metadata but not on the pod
    template, whose labels and annotations are the adopted ones plus the spec's ``pod_labels``
    and ``pod_annotations``. Nothing else is added to the pod template unless the spec really
    changes the pods: the config-hash annotation only when :func:`settings_hash` differs from
    ``existing.config_hash`` (the settings the adopted gateway was read with), and
    ``serviceAccountName: default`` / ``automountServiceAccountToken: true`` (Kubernetes'
    defaults) stay unwritten. So deploying an adopted spec changes ownership and labels but not
    the pods.

    Args:
        spec: The deployment spec.
        token: The gateway token, for ``auth.kind: gateway-token``.

    Returns:
        Plain dicts, ready for server-side apply or :func:`to_yaml`.

    Raises:
        SpecError: A token was given for a spec that does not use library-managed tokens.
        TokenError: The token belongs to another gateway.

    Example:
        >>> from apim_selfhosted.models import DeploymentSpec, Gateway
        >>> spec = DeploymentSpec(gateway=Gateway(subscription_id="s1", resource_group="rg",
        ...     service_name="contoso", name="gw1"), namespace="apim")
        >>> deployment = [m for m in render(spec) if m["kind"] == "Deployment"][0]
        >>> deployment["spec"]["strategy"]["rollingUpdate"]
        {'maxUnavailable': 0, 'maxSurge': '25%'}
    """
    if token is not None:
        _check_token(spec, token)
    out: list[dict[str, Any]] = []
    if spec.create_namespace:
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": _metadata(spec, spec.namespace, namespaced=False),
            }
        )
    if spec.service_account.create:
        sa_name = spec.service_account_name
        assert sa_name is not None
        sa_annotations = dict(spec.service_account.annotations)
        if isinstance(spec.auth, WorkloadIdentityAuth):
            sa_annotations["azure.workload.identity/client-id"] = spec.auth.client_id
            if spec.auth.tenant_id is not None:
                sa_annotations["azure.workload.identity/tenant-id"] = spec.auth.tenant_id
        sa_labels = dict(spec.service_account.labels)
        if isinstance(spec.auth, WorkloadIdentityAuth):
            sa_labels[_WORKLOAD_IDENTITY_LABEL] = "true"
        out.append(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": _metadata(
                    spec,
                    sa_name,
                    component="gateway",
                    labels=sa_labels,
                    annotations=sa_annotations,
                ),
                "automountServiceAccountToken": spec.service_account.automount_token,
            }
        )
    if token is not None:
        out.append(token_secret(spec, token))
    settings = _settings(spec)
    config_hash = settings_hash(spec)
    out.append(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _metadata(spec, spec.config_map_name, component="gateway"),
            "data": settings,
        }
    )
    backup = spec.config_backup
    if backup.enabled and backup.existing_claim is None:
        assert spec.pvc_name is not None
        pvc: dict[str, Any] = {
            "accessModes": [backup.access_mode],
            "resources": {"requests": {"storage": backup.size}},
        }
        if backup.storage_class is not None:
            pvc["storageClassName"] = backup.storage_class
        out.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": _metadata(spec, spec.pvc_name, component="config-backup"),
                "spec": pvc,
            }
        )
    out.append(_deployment(spec, token, config_hash))
    out.extend(_services(spec))
    if spec.high_availability.enabled:
        out.append(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": _metadata(spec, spec.base_name, component="gateway"),
                "spec": {
                    "maxUnavailable": spec.high_availability.max_unavailable,
                    "selector": {"matchLabels": selector_labels(spec)},
                },
            }
        )
    if spec.autoscaling is not None:
        hpa = spec.autoscaling
        metrics = []
        for resource, target in (
            ("cpu", hpa.target_cpu_utilization),
            ("memory", hpa.target_memory_utilization),
        ):
            if target is not None:
                metrics.append(
                    {
                        "type": "Resource",
                        "resource": {
                            "name": resource,
                            "target": {"type": "Utilization", "averageUtilization": target},
                        },
                    }
                )
        out.append(
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": _metadata(spec, spec.base_name, component="gateway"),
                "spec": {
                    "scaleTargetRef": {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": spec.base_name,
                    },
                    "minReplicas": hpa.min_replicas,
                    "maxReplicas": hpa.max_replicas,
                    "metrics": metrics,
                    "behavior": {
                        "scaleDown": {
                            "stabilizationWindowSeconds": hpa.scale_down_stabilization_seconds
                        }
                    },
                },
            }
        )
    if spec.network_policy is not None:
        out.append(_network_policy(spec))
    logger.debug(
        "rendered %d manifests for gateway %s in namespace %s (token %s)",
        len(out),
        spec.gateway.name,
        spec.namespace,
        token.fingerprint if token else "none",
    )
    return out


def redact(manifests: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Copies of the manifests with every Secret value replaced by ``<redacted>``.

    Args:
        manifests: Manifests as from :func:`render`.

    Returns:
        Deep copies; the inputs are not changed.

    Example:
        >>> redact([{"kind": "Secret", "data": {"value": "c2VjcmV0"}}])
        [{'kind': 'Secret', 'data': {'value': '<redacted>'}}]
    """
    out = []
    for manifest in manifests:
        item = copy.deepcopy(dict(manifest))
        if item.get("kind") == "Secret":
            for field in ("data", "stringData"):
                if isinstance(item.get(field), dict):
                    item[field] = dict.fromkeys(item[field], REDACTED)
        out.append(item)
    return out


def to_yaml(manifests: Iterable[Mapping[str, Any]], *, reveal_secrets: bool = False) -> str:
    """Multi-document YAML for ``kubectl apply -f -``.

    Args:
        manifests: Manifests as from :func:`render`.
        reveal_secrets: Show Secret values; by default they read ``<redacted>``.

    Returns:
        The YAML text, one ``---``-separated document per manifest, keys in render order.

    Example:
        >>> print(to_yaml([{"apiVersion": "v1", "kind": "Secret", "data": {"value": "eA=="}}]))
        ---
        apiVersion: v1
        kind: Secret
        data:
          value: <redacted>
        <BLANKLINE>
    """
    import yaml

    docs = [dict(m) for m in manifests] if reveal_secrets else redact(manifests)
    # libyaml's emitter writes the same bytes as the pure-Python one, several times faster.
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text: str = yaml.dump_all(
        docs,
        Dumper=dumper,
        sort_keys=False,
        explicit_start=True,
        default_flow_style=False,
        width=100,
        allow_unicode=False,
    )
    return text
