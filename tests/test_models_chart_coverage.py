"""Every value of the official Helm chart 1.15.1 has a home in DeploymentSpec.

The chart's values are listed here by hand (from its values.yaml), each with the spec field that
covers it. The experimental ingress-controller values are the one deliberate gap: the chart marks
them experimental and the gateway settings they drive are not documented.
"""

from __future__ import annotations

import types
import typing
from typing import Any

import pytest
from pydantic import BaseModel

from apim_selfhosted.models import DeploymentSpec, EntraAppAuth, ExistingSecretAuth

CHART_VALUES: dict[str, str] = {
    "replicaCount": "replicas",
    "image.repository": "image.repository",
    "image.pullPolicy": "image.pull_policy",
    "image.tag": "image.tag",
    "imagePullSecrets": "image.pull_secrets",
    "nameOverride": "name",
    "fullnameOverride": "name",
    "gateway.name": "gateway.name",
    "gateway.deployment.terminationGracePeriodSeconds": "termination_grace_period_seconds",
    "gateway.deployment.strategy": "strategy",
    "gateway.deployment.network.proxy.http": "proxy.http",
    "gateway.deployment.network.proxy.https": "proxy.https",
    "gateway.deployment.network.proxy.bypass": "proxy.bypass",
    "gateway.deployment.dns.hostAliases": "host_aliases",
    "gateway.deployment.annotations": "deployment_annotations",
    "gateway.configuration.uri": "gateway.config_endpoint",
    "gateway.configuration.backup.enabled": "config_backup.enabled",
    "gateway.configuration.backup.persistentVolumeClaim.existingName": (
        "config_backup.existing_claim"
    ),
    "gateway.configuration.backup.persistentVolumeClaim.create": "config_backup.existing_claim",
    "gateway.configuration.backup.persistentVolumeClaim.storageClassName": (
        "config_backup.storage_class"
    ),
    "gateway.configuration.backup.persistentVolumeClaim.accessMode": "config_backup.access_mode",
    "gateway.configuration.backup.persistentVolumeClaim.size": "config_backup.size",
    "gateway.configuration.additional": "additional_settings",
    "gateway.auth.type": "auth",
    "gateway.auth.key": "auth",
    "gateway.auth.azureAd.tenant.id": "auth:entra-app.tenant_id",
    "gateway.auth.azureAd.authority": "auth:entra-app.authority",
    "gateway.auth.azureAd.app.id": "auth:entra-app.client_id",
    "gateway.auth.azureAd.app.secret": "auth:entra-app.client_secret",
    "secret.createSecret": "auth",
    "secret.existingSecretName": "auth:existing-secret.secret_name",
    "observability.logs.std.format": "observability.std_logs.format",
    "observability.logs.std.level": "observability.std_logs.level",
    "observability.logs.std.useColor": "observability.std_logs.color",
    "observability.logs.local.type": "observability.local_logs.type",
    "observability.logs.local.localsyslog.endpoint": (
        "observability.local_logs.localsyslog_endpoint"
    ),
    "observability.logs.local.localsyslog.facility": (
        "observability.local_logs.localsyslog_facility"
    ),
    "observability.logs.local.rfc5424.endpoint": "observability.local_logs.rfc5424_endpoint",
    "observability.logs.local.rfc5424.facility": "observability.local_logs.rfc5424_facility",
    "observability.logs.local.journal.endpoint": "observability.local_logs.journal_endpoint",
    "observability.logs.local.json.endpoint": "observability.local_logs.json_endpoint",
    "observability.azureMonitor.metrics.enabled": "observability.azure_monitor_metrics",
    "observability.opentelemetry.enabled": "observability.opentelemetry.enabled",
    "observability.opentelemetry.collector.uri": "observability.opentelemetry.collector_uri",
    "observability.opentelemetry.histogram.buckets": (
        "observability.opentelemetry.histogram_buckets"
    ),
    "observability.opentelemetry.systemMetrics.enabled": (
        "observability.opentelemetry.system_metrics"
    ),
    "observability.statsD.enabled": "observability.statsd.enabled",
    "observability.statsD.endpoint": "observability.statsd.endpoint",
    "observability.statsD.sampling": "observability.statsd.sampling",
    "observability.statsD.tagFormat": "observability.statsd.tag_format",
    "security.tls.server.ciphers.allowedSuites": "tls.server_cipher_suites",
    "security.tls.client.ciphers.allowedSuites": "tls.client_cipher_suites",
    "dapr.enabled": "dapr.enabled",
    "dapr.app.id": "dapr.app_id",
    "dapr.config": "dapr.config",
    "dapr.logging.useJsonOutput": "dapr.log_as_json",
    "dapr.logging.level": "dapr.log_level",
    "service.type": "service.type",
    "service.loadBalancer.allocateNodePorts": "service.allocate_load_balancer_node_ports",
    "service.ports.http": "service.http_port",
    "service.ports.https": "service.https_port",
    "service.ports.instance.synchronization": "service.instance_sync_port",
    "service.ports.instance.heartbeat": "service.instance_heartbeat_port",
    "service.annotations": "service.annotations",
    "serviceAccountName": "service_account.name",
    "serviceAccount.name": "service_account.name",
    "serviceAccount.create": "service_account.create",
    "serviceAccount.annotations": "service_account.annotations",
    "serviceAccount.labels": "service_account.labels",
    "probes.readiness": "probes.readiness",
    "probes.liveness": "probes.liveness",
    "probes.startup": "probes.startup",
    "resources": "resources",
    "highAvailability.enabled": "high_availability.enabled",
    "highAvailability.disruption.maximumUnavailable": "high_availability.max_unavailable",
    "highAvailability.podTopologySpread.whenUnsatisfiable": "high_availability.when_unsatisfiable",
    "nodeSelector": "node_selector",
    "tolerations": "tolerations",
    "affinity": "affinity",
    "securityContext": "security_context",
    "podSecurityContext": "security_context",
    "commonLabels": "common_labels",
}

NOT_COVERED = {
    "ingress.controller.enabled",
    "ingress.controller.namespace",
    "ingress.controller.annotations",
    "ingress.controller.dns.suffix",
    "ingress.controller.ingressClass.controller",
    "ingress.controller.ingressClass.annotations",
}

AUTH_MODELS: dict[str, type[BaseModel]] = {
    "entra-app": EntraAppAuth,
    "existing-secret": ExistingSecretAuth,
}


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None


def _resolve(path: str) -> bool:
    model: type[BaseModel] | None = DeploymentSpec
    head, _, rest = path.partition(":")
    if rest:  # auth:<kind>.<field>
        kind, _, field = rest.partition(".")
        return field in AUTH_MODELS[kind].model_fields
    for part in head.split("."):
        if model is None or part not in model.model_fields:
            return False
        model = _model_of(model.model_fields[part].annotation)
    return True


@pytest.mark.parametrize(("value", "field"), sorted(CHART_VALUES.items()))
def test_chart_value_has_a_spec_field(value: str, field: str) -> None:
    assert _resolve(field), f"chart value {value} maps to missing field {field}"


def test_the_table_lists_every_chart_value_once() -> None:
    # 88 values: the leaves of values.yaml (each probe counted once) plus the commented
    # gateway.deployment.annotations
    assert len(CHART_VALUES) + len(NOT_COVERED) == 88
    assert not set(CHART_VALUES) & NOT_COVERED


def test_resolver_rejects_unknown_fields() -> None:
    assert not _resolve("observability.nothing")
    assert not _resolve("nothing")
