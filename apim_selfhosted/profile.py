"""The production profile: the production considerations for the gateway, as data and as checks.

A :class:`ProductionProfile` holds the thresholds (replicas, support window, token validity ...).
:func:`lint` checks a spec against it and returns :class:`~apim_selfhosted.results.Finding` s;
:meth:`ProductionProfile.apply` fills the profile's defaults into the fields a user left unset.

Pure: no network, no clock (pass ``now`` to check a token).

Example:
    >>> from apim_selfhosted.models import DeploymentSpec, Gateway
    >>> spec = DeploymentSpec(gateway=Gateway(subscription_id="s", resource_group="rg",
    ...     service_name="contoso", name="gw1"), namespace="apim")
    >>> sorted({f.rule for f in lint(spec) if f.severity == "error"})
    ['min-replicas', 'resource-requests']
    >>> [f for f in lint(ProductionProfile().apply(spec)) if f.severity == "error"]
    []
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from apim_selfhosted.errors import SpecError
from apim_selfhosted.models import (
    DEFAULT_GATEWAY_VERSION,
    DeploymentSpec,
    ExistingSecretAuth,
    Token,
    WorkloadIdentityAuth,
    _invalid,
    _read_data_file,
    parse_semver,
)
from apim_selfhosted.results import Finding, Severity, sort_findings

logger = logging.getLogger(__name__)

__all__ = ["RULES", "ProductionProfile", "lint"]

_RULES: dict[str, tuple[Severity, str]] = {
    "min-replicas": (
        "error",
        "A single pod is a single point of failure: a node drain or crash stops all traffic.",
    ),
    "explicit-strategy": (
        "warning",
        "An explicit rollout strategy keeps capacity during upgrades and token rotations.",
    ),
    "max-unavailable": (
        "warning",
        "Taking pods down before new ones are ready drops capacity during every rollout.",
    ),
    "resource-requests": (
        "error",
        "Without requests the scheduler may pack gateways onto busy nodes and evict them first.",
    ),
    "memory-limit": (
        "info",
        "A memory limit stops a leaking pod from starving its node; set it at or above requests.",
    ),
    "pinned-image-tag": (
        "error",
        "Rolling tags (v2, latest, preview) change under you; only major.minor.patch is supported.",
    ),
    "supported-version": (
        "error",
        "Only the latest major and its recent minor releases get fixes and support.",
    ),
    "default-namespace": (
        "error",
        "The default namespace mixes workloads and RBAC; give the gateway its own namespace.",
    ),
    "config-backup": (
        "warning",
        "With a configuration backup the gateway starts with its last configuration while "
        "Azure is unreachable.",
    ),
    "backup-access-mode": (
        "error",
        "Several replicas mounting a ReadWriteOnce volume cannot all start on different nodes.",
    ),
    "local-metrics": (
        "warning",
        "Local metrics (StatsD or OpenTelemetry) show request rates and errors without Azure.",
    ),
    "local-logs": (
        "info",
        "Local logs keep request logs inside the cluster when the cloud link is down.",
    ),
    "log-format": (
        "info",
        "JSON logs without colour codes are what log collectors parse reliably.",
    ),
    "high-availability": (
        "warning",
        "A disruption budget and zone spread keep pods up through node drains and zone outages.",
    ),
    "security-context": (
        "error",
        "The gateway runs as UID 1001 without privileges; running as root widens any breach.",
    ),
    "liveness-probe": (
        "info",
        "A liveness probe restarts a hung gateway process; readiness alone never restarts it.",
    ),
    "token-rotation": (
        "info",
        "A token in a Secret someone else manages expires unless that someone rotates it.",
    ),
    "token-validity": (
        "error",
        "An expired token leaves pods Ready while they serve nothing; rotate before expiry.",
    ),
    "autoscaler-requests": (
        "error",
        "A utilisation target is a percentage of requests: without requests the HPA cannot act.",
    ),
    "autoscaler-min-replicas": (
        "error",
        "The autoscaler's minimum is the floor in production: below it, one pod can be left.",
    ),
    "autoscaler-and-replicas": (
        "warning",
        "With an autoscaler, replicas in the spec are ignored; remove them to avoid confusion.",
    ),
    "workload-identity-service-account": (
        "warning",
        "Workload identity needs the client-id annotation on the ServiceAccount the pod uses.",
    ),
    "external-traffic-policy": (
        "info",
        "externalTrafficPolicy Local keeps client IPs for policies and avoids an extra hop.",
    ),
    "termination-grace": (
        "warning",
        "The gateway needs time to finish in-flight requests when a pod stops.",
    ),
}

#: Every rule :func:`lint` knows, with its default severity and why it matters (read-only).
RULES: Mapping[str, tuple[Severity, str]] = MappingProxyType(_RULES)


class ProductionProfile(BaseModel):
    """The production considerations as data, with defaults a user can tighten or relax.

    Turn a check off by setting its threshold to ``None``/``False``; change how loud a rule is
    with ``severity_overrides`` (``{"config-backup": "error"}``) or drop rules with ``ignore``.

    Example:
        >>> p = ProductionProfile(min_replicas=2, ignore=frozenset({"local-metrics"}))
        >>> p.min_token_validity
        datetime.timedelta(days=7)
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_replicas: int = Field(
        default=2,
        ge=1,
        description="Fewest replicas (or HPA minimum): two, so that one pod can restart or "
        "move while the other serves; spread them over zones for more.",
    )
    require_explicit_strategy: bool = Field(
        default=True, description="The spec must set the rollout strategy itself."
    )
    require_zero_max_unavailable: bool = Field(
        default=True, description="RollingUpdate must keep all pods until new ones are ready."
    )
    require_resource_requests: bool = Field(
        default=True, description="CPU and memory requests must be set."
    )
    default_requests: dict[str, str] = Field(
        default_factory=lambda: {"cpu": "2", "memory": "2Gi"},
        description="Requests apply() fills in: the documented starting point of 2 cores and "
        "2 GiB per gateway pod, to be tuned from measured load.",
    )
    default_limits: dict[str, str] = Field(
        default_factory=lambda: {"memory": "4Gi"},
        description="Limits apply() fills in (memory only: a CPU limit throttles a gateway "
        "under load).",
    )
    require_pinned_tag: bool = Field(
        default=True, description="The image tag must be major.minor.patch."
    )
    latest_version: str = Field(
        default=DEFAULT_GATEWAY_VERSION,
        description="The newest gateway release the profile knows (major.minor.patch).",
    )
    supported_minor_versions: int = Field(
        default=3,
        ge=1,
        description="How many minor releases of the latest major are supported (latest included).",
    )
    forbid_default_namespace: bool = Field(
        default=True, description="Refuse the 'default' namespace."
    )
    require_config_backup: bool = Field(default=True, description="Want configuration backup.")
    require_local_metrics: bool = Field(
        default=True, description="Want StatsD or OpenTelemetry metrics."
    )
    require_high_availability: bool = Field(
        default=True, description="Want a PodDisruptionBudget and pod spreading."
    )
    require_security_context: bool = Field(
        default=True, description="Want non-root, no escalation, dropped capabilities."
    )
    min_termination_grace_seconds: int = Field(
        default=30, ge=0, description="Least terminationGracePeriodSeconds."
    )
    min_token_validity: timedelta = Field(
        default=timedelta(days=7),
        description="Rotate tokens with less validity left than this; verify warns below it.",
    )
    severity_overrides: dict[str, Severity] = Field(
        default_factory=dict, description="Per-rule severity changes."
    )
    ignore: frozenset[str] = Field(default_factory=frozenset, description="Rules not reported.")

    @field_validator("latest_version")
    @classmethod
    def _check_version(cls, value: str) -> str:
        if parse_semver(value) is None:
            raise ValueError(f"must be major.minor.patch, got {value!r}")
        return value

    @field_validator("severity_overrides", "ignore")
    @classmethod
    def _known_rules(cls, value: Any) -> Any:
        unknown = sorted(set(value) - set(RULES))
        if unknown:
            raise ValueError(f"unknown rules {unknown}; known rules: {sorted(RULES)}")
        return value

    @field_validator("min_token_validity")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0) or value > timedelta(days=30):
            raise ValueError("must be more than 0 and at most 30 days (a token's longest life)")
        return value

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> ProductionProfile:
        """Loads a profile from a YAML or JSON file (field names as in this class).

        ``min_token_validity`` takes seconds or an ISO 8601 duration such as ``P10D``.

        Args:
            path: The file.

        Returns:
            The profile.

        Raises:
            SpecError: The file is missing, not YAML/JSON, or not a valid profile.

        Example:
            >>> import tempfile, pathlib
            >>> p = pathlib.Path(tempfile.mkdtemp()) / "profile.yaml"
            >>> _ = p.write_text("min_replicas: 2\\nmin_token_validity: P10D\\n")
            >>> ProductionProfile.from_file(p).min_token_validity.days
            10
        """
        source = os.fspath(path)
        data = _read_data_file(source)
        if data is not None and not isinstance(data, dict):
            raise SpecError(
                f"{source}: a production profile must be a mapping, got {type(data).__name__}",
                source=source,
                problems=[("", "must be a mapping")],
            )
        try:
            return cls.model_validate(data or {})
        except ValidationError as exc:
            raise _invalid(
                exc,
                source=source,
                what="production profile",
                fields_hint="the fields of ProductionProfile",
            ) from exc

    def supported_versions(self) -> str:
        """The supported window as text, e.g. ``2.9.x to 2.11.x``.

        Returns:
            The oldest and newest supported minor release.

        Example:
            >>> ProductionProfile().supported_versions()
            '2.9.x to 2.11.x'
        """
        major, minor, _ = parse_semver(self.latest_version) or (0, 0, 0)
        oldest = max(0, minor - self.supported_minor_versions + 1)
        return f"{major}.{oldest}.x to {major}.{minor}.x"

    def defaults(self) -> list[tuple[tuple[str, ...], Any]]:
        """The ``(field path, value)`` pairs :meth:`apply` fills in when unset.

        Returns:
            Field paths (tuples of names) and JSON-compatible values.

        Example:
            >>> dict(ProductionProfile().defaults())[("replicas",)]
            2
        """
        return [
            (("replicas",), self.min_replicas),
            (("strategy", "type"), "RollingUpdate"),
            (("strategy", "max_unavailable"), 0),
            (("strategy", "max_surge"), "25%"),
            (("termination_grace_period_seconds",), max(60, self.min_termination_grace_seconds)),
            (
                ("resources",),
                {"requests": dict(self.default_requests), "limits": dict(self.default_limits)},
            ),
            (("image", "tag"), self.latest_version),
            (("probes", "readiness"), {}),
            (
                ("probes", "liveness"),
                {"period_seconds": 10, "timeout_seconds": 5, "failure_threshold": 6},
            ),
            (("probes", "startup"), {"period_seconds": 5, "failure_threshold": 60}),
            (("config_backup", "enabled"), True),
            (("observability", "std_logs", "format"), "json"),
            (("observability", "std_logs", "color"), False),
            (("high_availability", "enabled"), True),
            (("security_context",), {}),
        ]

    def apply(self, spec: DeploymentSpec) -> DeploymentSpec:
        """A copy of ``spec`` with the profile's defaults where the user left fields unset.

        A field counts as set when the user gave it (``model_fields_set``, at every level),
        including an explicit ``null``; set fields are never changed.

        Args:
            spec: The spec.

        Returns:
            A new spec; the defaults it gained count as set (they are saved by ``to_file``).

        Example:
            >>> from apim_selfhosted.models import DeploymentSpec, Gateway
            >>> spec = DeploymentSpec(gateway=Gateway(subscription_id="s", resource_group="rg",
            ...     service_name="contoso", name="gw1"), namespace="apim", replicas=5)
            >>> applied = ProductionProfile().apply(spec)
            >>> applied.replicas, applied.config_backup.enabled
            (5, True)
        """
        data = spec.to_dict()
        for path, value in self.defaults():
            if path == ("replicas",) and spec.autoscaling is not None:
                continue
            _fill(data, path, value)
        result = DeploymentSpec.model_validate(data)
        logger.debug("applied the production profile to the spec of gateway %s", spec.gateway.name)
        return result


def _fill(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = data
    for key in path[:-1]:
        if key not in node:
            node[key] = {}
        child = node[key]
        if not isinstance(child, dict):
            return  # the user set this part to null (or a scalar): leave it alone
        node = child
    if path[-1] not in node:
        node[path[-1]] = copy.deepcopy(value)


def _is_set(spec: Any, path: str) -> bool:
    node = spec
    for key in path.split("."):
        if node is None or key not in getattr(node, "model_fields_set", set()):
            return False
        node = getattr(node, key)
    return True


def lint(
    spec: DeploymentSpec,
    profile: ProductionProfile | None = None,
    *,
    token: Token | None = None,
    now: datetime | None = None,
) -> list[Finding]:
    """Checks a spec (and optionally its token) against the production profile.

    Args:
        spec: The spec.
        profile: The profile (default: ``ProductionProfile()``).
        token: A token to check against ``profile.min_token_validity`` (needs ``now``).
        now: The current time, timezone-aware, for the token check.

    Returns:
        Findings, errors first; an empty list means production-ready by this profile.

    Example:
        >>> from apim_selfhosted.models import DeploymentSpec, Gateway
        >>> spec = DeploymentSpec(gateway=Gateway(subscription_id="s", resource_group="rg",
        ...     service_name="contoso", name="gw1"), namespace="default", replicas=3)
        >>> [f.rule for f in lint(spec) if f.severity == "error"]
        ['default-namespace', 'resource-requests']
    """
    p = profile or ProductionProfile()
    found: list[Finding] = []

    def report(rule: str, path: str, message: str, fix: str) -> None:
        if rule in p.ignore:
            return
        severity, why = RULES[rule]
        found.append(
            Finding(
                rule=rule,
                severity=p.severity_overrides.get(rule, severity),
                path=path,
                message=message,
                why=why,
                fix=fix,
            )
        )

    # replicas and autoscaling
    hpa = spec.autoscaling
    if hpa is None:
        if spec.replicas is None:
            report(
                "min-replicas",
                "replicas",
                "replicas is null but no autoscaler is configured",
                f"Set replicas: {p.min_replicas} or configure autoscaling.",
            )
        elif spec.replicas < p.min_replicas:
            report(
                "min-replicas",
                "replicas",
                f"{spec.replicas} replica(s); the profile wants at least {p.min_replicas}",
                f"Set replicas: {p.min_replicas} (or more).",
            )
    else:
        if hpa.min_replicas < p.min_replicas:
            report(
                "autoscaler-min-replicas",
                "autoscaling.min_replicas",
                f"the autoscaler may scale down to {hpa.min_replicas}; the profile wants "
                f"at least {p.min_replicas}",
                f"Set autoscaling.min_replicas: {p.min_replicas}.",
            )
        if _is_set(spec, "replicas") and spec.replicas is not None:
            report(
                "autoscaler-and-replicas",
                "replicas",
                "replicas is set but the autoscaler owns the replica count",
                "Remove replicas (or set it to null).",
            )
        requests = spec.resources.requests if spec.resources else {}
        missing = [
            r
            for r, target in (
                ("cpu", hpa.target_cpu_utilization),
                ("memory", hpa.target_memory_utilization),
            )
            if target is not None and r not in requests
        ]
        if missing:
            report(
                "autoscaler-requests",
                "resources.requests",
                f"the autoscaler targets {', '.join(missing)} utilisation but no "
                f"{', '.join(missing)} request is set",
                "Set resources.requests for " + " and ".join(missing) + ".",
            )

    # strategy
    if p.require_explicit_strategy and not _is_set(spec, "strategy"):
        report(
            "explicit-strategy",
            "strategy",
            "the rollout strategy is left to defaults",
            "Set strategy: {type: RollingUpdate, max_unavailable: 0, max_surge: 25%}.",
        )
    if (
        p.require_zero_max_unavailable
        and spec.strategy.type == "RollingUpdate"
        and spec.strategy.max_unavailable not in (0, "0%")
    ):
        report(
            "max-unavailable",
            "strategy.max_unavailable",
            f"max_unavailable is {spec.strategy.max_unavailable}",
            "Set strategy.max_unavailable: 0 and use max_surge for speed.",
        )
    if spec.strategy.type == "Recreate":
        report(
            "max-unavailable",
            "strategy.type",
            "Recreate stops every pod before starting new ones",
            "Use strategy.type: RollingUpdate.",
        )
    if spec.termination_grace_period_seconds < p.min_termination_grace_seconds:
        report(
            "termination-grace",
            "termination_grace_period_seconds",
            f"{spec.termination_grace_period_seconds}s is less than "
            f"{p.min_termination_grace_seconds}s",
            "Set termination_grace_period_seconds: 60.",
        )

    # resources
    if p.require_resource_requests:
        requests = spec.resources.requests if spec.resources else {}
        missing = [r for r in ("cpu", "memory") if r not in requests]
        if missing:
            report(
                "resource-requests",
                "resources.requests",
                f"no {' or '.join(missing)} request",
                "Set resources.requests, e.g. {cpu: '1', memory: 1Gi}.",
            )
        if spec.resources is None or "memory" not in spec.resources.limits:
            report(
                "memory-limit",
                "resources.limits.memory",
                "no memory limit",
                "Set resources.limits.memory, e.g. 2Gi.",
            )

    # image
    version = spec.image.version
    if p.require_pinned_tag and version is None:
        report(
            "pinned-image-tag",
            "image.tag",
            f"tag {spec.image.tag!r} is not a major.minor.patch release",
            f"Pin a release, e.g. image.tag: {p.latest_version}.",
        )
    elif version is not None:
        latest = parse_semver(p.latest_version) or (0, 0, 0)
        oldest_minor = latest[1] - p.supported_minor_versions + 1
        if version[0] < latest[0] or (version[0] == latest[0] and version[1] < oldest_minor):
            report(
                "supported-version",
                "image.tag",
                f"{spec.image.tag} is outside the support window ({p.supported_versions()})",
                f"Upgrade to {p.latest_version}.",
            )

    # namespace
    if p.forbid_default_namespace and spec.namespace == "default":
        report(
            "default-namespace",
            "namespace",
            "the gateway is deployed to the 'default' namespace",
            "Use a dedicated namespace, e.g. namespace: apim-gateway.",
        )

    # configuration backup
    backup = spec.config_backup
    if p.require_config_backup and not backup.enabled:
        report(
            "config-backup",
            "config_backup.enabled",
            "configuration backup is off",
            "Set config_backup: {enabled: true} (a ReadWriteMany storage class for >1 replica).",
        )
    replicas = hpa.max_replicas if hpa else (spec.replicas or 0)
    if (
        backup.enabled
        and backup.existing_claim is None
        and backup.access_mode != "ReadWriteMany"
        and replicas > 1
    ):
        report(
            "backup-access-mode",
            "config_backup.access_mode",
            f"{backup.access_mode} with up to {replicas} replicas",
            "Use access_mode: ReadWriteMany with a storage class that supports it.",
        )

    # observability
    obs = spec.observability
    if p.require_local_metrics and not (obs.statsd.enabled or obs.opentelemetry.enabled):
        report(
            "local-metrics",
            "observability",
            "neither StatsD nor OpenTelemetry metrics are enabled",
            "Enable observability.opentelemetry or observability.statsd.",
        )
    if obs.local_logs.type == "none":
        report(
            "local-logs",
            "observability.local_logs.type",
            "local logs are off",
            "Set observability.local_logs.type: json (or another sink).",
        )
    if obs.std_logs.format != "json" or obs.std_logs.color:
        report(
            "log-format",
            "observability.std_logs",
            f"container logs are {obs.std_logs.format}"
            + (" with colour codes" if obs.std_logs.color else ""),
            "Set observability.std_logs: {format: json, color: false}.",
        )

    # high availability
    ha = spec.high_availability
    if p.require_high_availability and not ha.enabled:
        report(
            "high-availability",
            "high_availability.enabled",
            "no PodDisruptionBudget and no zone spread",
            "Set high_availability: {enabled: true}.",
        )

    # security
    sc = spec.security_context
    if p.require_security_context:
        if sc is None:
            report(
                "security-context",
                "security_context",
                "no security context: the pod may run as root with all capabilities",
                "Remove security_context: null to get the restricted defaults.",
            )
        else:
            problems = []
            if not sc.run_as_non_root:
                problems.append("run_as_non_root is false")
            if sc.run_as_user == 0:
                problems.append("run_as_user is 0 (root)")
            if sc.allow_privilege_escalation:
                problems.append("allow_privilege_escalation is true")
            if not sc.drop_all_capabilities:
                problems.append("capabilities are not dropped")
            if sc.seccomp_profile is None or sc.seccomp_profile == "Unconfined":
                problems.append("no RuntimeDefault seccomp profile")
            if backup.enabled and sc.fs_group is None:
                problems.append("no fs_group, so the backup volume may not be writable")
            if problems:
                report(
                    "security-context",
                    "security_context",
                    "; ".join(problems),
                    "Use the defaults: non-root UID 1001, fs_group 1001, no escalation, "
                    "drop ALL, RuntimeDefault seccomp.",
                )

    # probes
    if spec.probes.liveness is None:
        report(
            "liveness-probe",
            "probes.liveness",
            "no liveness probe",
            "Set probes.liveness: {} (the status endpoint).",
        )

    # service
    svc = spec.service
    if svc.type in ("LoadBalancer", "NodePort") and svc.external_traffic_policy == "Cluster":
        report(
            "external-traffic-policy",
            "service.external_traffic_policy",
            "Cluster hides client IPs from the gateway",
            "Set service.external_traffic_policy: Local.",
        )

    # auth
    auth = spec.auth
    if isinstance(auth, ExistingSecretAuth):
        report(
            "token-rotation",
            "auth",
            f"the token comes from Secret {auth.secret_name!r}, which this library does not rotate",
            "Use auth: {kind: gateway-token} or rotate that Secret before the token expires.",
        )
    if isinstance(auth, WorkloadIdentityAuth) and not spec.service_account.create:
        report(
            "workload-identity-service-account",
            "service_account",
            f"ServiceAccount {spec.service_account_name!r} is not managed here",
            "Annotate it with azure.workload.identity/client-id, or set "
            "service_account.create: true.",
        )

    # token
    if token is not None and now is not None:
        left = token.remaining(now)
        if token.expires_within(p.min_token_validity, now):
            state = "has expired" if left <= timedelta(0) else f"expires in {_human(left)}"
            report(
                "token-validity",
                "auth",
                f"the token (fingerprint {token.fingerprint}) {state}, less than "
                f"{_human(p.min_token_validity)}",
                "Rotate the token: apim-selfhosted rotate SPEC.",
            )
    return sort_findings(found)


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 86400:
        return f"{seconds // 86400}d {seconds % 86400 // 3600}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{max(seconds, 0) // 60}m"
