"""Zero-downtime rotation of gateway tokens, in process and as an in-cluster CronJob.

A gateway reads its token only when its container starts, and a token lives at most 30 days.
:func:`rotate` makes renewing it a boring step that is safe to run every hour:

1. It reads the token in use from the cluster (Deployment pod template, then the Secret it
   references, parsed and checked against the gateway) and decides with
   ``only_if_expiring_within`` (default: the production profile's horizon) whether anything
   needs doing. When not, it returns ``outcome="not-needed"`` after two reads and no write.
2. It takes a ``coordination.k8s.io`` Lease named ``<base>-token-rotation`` (holder identity and
   duration, created or taken over with optimistic concurrency) and reads the token again
   under it. A second rotation of the same gateway at the same time finds the Lease held and
   returns ``outcome="yielded"``; a Lease whose holder crashed is taken over after its duration.
3. It issues a new token from the *other* key (primary and secondary alternate), creates an
   immutable, content-named Secret for it and points the pod template at it. Only the token
   reference (and two token annotations) change, under the field manager
   ``apim-selfhosted-rotator`` with ``force`` (handed back to ``deploy``'s field manager
   afterwards when ``deploy`` made the Deployment): the Deployment rolls its pods with its own
   RollingUpdate (``maxUnavailable``/``maxSurge``), so the number of ready pods holding a valid
   token never drops below ``replicas - maxUnavailable``. A gateway made by the portal's YAML
   (Secret ``<gw>-token``, key ``value``) or the Helm chart (key ``gateway-key``) is adopted the
   same way: its first rotation moves it onto a library-managed Secret with a rolling update.
4. It waits for the rollout and verifies the new pods (they run the new Secret, are Ready, and
   their logs show no authentication failures). If they do not become ready, it points the
   template back at the previous Secret (still there, untouched) and reports why.
5. Once verified, it deletes older token Secrets beyond ``keep_history`` (never one a pod or a
   live ReplicaSet references), and with ``regenerate_old_key=True`` regenerates the key of the
   old token, which invalidates it, but only after no pod references the old Secret any more.

:func:`render_rotator` renders the same job as a CronJob with least privilege: a ServiceAccount
for Azure workload identity, a Role with exactly the verbs rotation uses in the namespace, and
the Azure custom role (:func:`azure_rotator_role`) with only ``gateways/read`` and
``gateways/generateToken/action`` (plus ``regenerateKey/action`` when asked).

Example:
    >>> from apim_selfhosted.models import DeploymentSpec, Gateway
    >>> spec = DeploymentSpec(gateway=Gateway(subscription_id="s1", resource_group="rg",
    ...     service_name="contoso", name="gw1"), namespace="apim")
    >>> [m["kind"] for m in render_rotator(spec, image="example.org/apim-selfhosted:0.1.0",
    ...                                    identity="11111111-2222-3333-4444-555555555555")]
    ['ServiceAccount', 'Role', 'RoleBinding', 'ConfigMap', 'CronJob']
    >>> lease_name(spec)
    'gw1-token-rotation'
"""

from __future__ import annotations

import copy
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from apim_selfhosted.errors import (
    ApimSelfhostedError,
    KubernetesError,
    RotationError,
    SpecError,
)
from apim_selfhosted.models import (
    DeploymentSpec,
    GatewayTokenAuth,
    KeyType,
    Token,
    WorkloadIdentityAuth,
    check_dns1123_subdomain,
)
from apim_selfhosted.rendering import token_reference
from apim_selfhosted.results import Check, ProgressEvent, RolloutStatus

if TYPE_CHECKING:
    from apim_selfhosted.kube import KubernetesApplier
    from apim_selfhosted.management import ManagementClient
    from apim_selfhosted.profile import ProductionProfile
    from apim_selfhosted.steps import ClusterState

logger = logging.getLogger(__name__)

__all__ = [
    "AZURE_REGENERATE_KEY_ACTION",
    "AZURE_ROTATOR_ACTIONS",
    "ROTATOR_COMPONENT",
    "ROTATOR_FIELD_MANAGER",
    "RotateOutcome",
    "RotateResult",
    "azure_rotator_role",
    "lease_name",
    "parse_duration",
    "render_rotator",
    "rotate",
    "rotate_many",
    "rotator_rules",
]

#: The field manager rotation applies the token reference with.
ROTATOR_FIELD_MANAGER = "apim-selfhosted-rotator"
#: ``app.kubernetes.io/component`` of the rotator's objects (the pruner leaves them alone).
ROTATOR_COMPONENT = "rotator"
#: The Azure actions a rotator needs: read the gateway, issue tokens.
AZURE_ROTATOR_ACTIONS: tuple[str, ...] = (
    "Microsoft.ApiManagement/service/gateways/read",
    "Microsoft.ApiManagement/service/gateways/generateToken/action",
)
#: The extra Azure action for ``regenerate_old_key=True``.
AZURE_REGENERATE_KEY_ACTION = "Microsoft.ApiManagement/service/gateways/regenerateKey/action"

RotateOutcome = Literal["rotated", "not-needed", "yielded", "rolled-back", "failed"]
EventCallback = Callable[[ProgressEvent], None]

_AUTH_ENV = "config.service.auth"
_LEASE_API = "coordination.k8s.io/v1"
_SPEC_MOUNT = "/etc/apim-selfhosted"
_SPEC_FILE = "spec.yaml"
_DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _emit(on_event: EventCallback | None, step: str, message: str, **data: Any) -> None:
    logger.info("%s: %s", step, message)
    if on_event is not None:
        on_event(ProgressEvent(step=step, message=message, data=data))


def _real_now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------------------ results


class RotateResult(BaseModel):
    """What a rotation did, and why.

    ``outcome`` is one of ``rotated`` (a new token is in place and verified), ``not-needed``
    (the token in use is valid beyond the horizon), ``yielded`` (another rotation of this
    gateway holds the Lease), ``rolled-back`` (the new pods did not become ready or failed
    verification; the previous Secret is back in place) or ``failed`` (nothing usable was
    done; ``reason`` says why). Tokens are carried as :class:`~apim_selfhosted.models.Token`:
    their values never appear in ``str``, ``repr`` or JSON dumps.

    Example:
        >>> r = RotateResult(gateway="contoso/gw1", namespace="apim", name="gw1",
        ...                  outcome="yielded", reason="rotation held by rotator-7")
        >>> r.ok, r.changed
        (True, False)
        >>> print(r)
        rotate contoso/gw1 (apim/gw1): yielded: rotation held by rotator-7
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    gateway: str = Field(description="The gateway as '<service>/<gateway>'.")
    namespace: str = Field(description="The namespace of the gateway's Deployment.")
    name: str = Field(description="The Deployment's name.")
    outcome: RotateOutcome = Field(
        description="rotated, not-needed, yielded, rolled-back or failed."
    )
    reason: str = Field(default="", description="Why this outcome, in words.")
    old_token: Token | None = Field(default=None, description="The token found in use.")
    new_token: Token | None = Field(default=None, description="The token issued, if any.")
    old_secret: str | None = Field(default=None, description="The Secret the pods used before.")
    new_secret: str | None = Field(default=None, description="The Secret the pods use now.")
    adopted: bool = Field(
        default=False,
        description="True when a Secret not made by this library (portal, Helm) was replaced.",
    )
    rollout: RolloutStatus | None = Field(default=None, description="The rotation's rollout.")
    rollback: RolloutStatus | None = Field(default=None, description="The rollback's rollout.")
    checks: tuple[Check, ...] = Field(default=(), description="Verification of the new pods.")
    deleted_secrets: tuple[str, ...] = Field(
        default=(), description="Older token Secrets deleted (beyond the history)."
    )
    regenerated_key: KeyType | None = Field(
        default=None, description="The key regenerated (the old token's), if any."
    )
    lease_holder: str | None = Field(
        default=None, description="Who held the rotation Lease (when yielded)."
    )
    notes: tuple[str, ...] = Field(default=(), description="Warnings and remarks.")
    elapsed_seconds: float = Field(default=0.0, description="Wall time of the rotation.")

    @property
    def ok(self) -> bool:
        """True unless the rotation rolled back, failed or a check failed (yielding is fine)."""
        if any(check.status == "failed" for check in self.checks):
            return False
        return self.outcome in ("rotated", "not-needed", "yielded")

    @property
    def changed(self) -> bool:
        """True when a new token went into service."""
        return self.outcome == "rotated"

    def raise_for_failure(self) -> None:
        """Raises when the rotation rolled back or failed.

        Raises:
            RotationError: With this result as ``.result``.

        Example:
            >>> RotateResult(gateway="c/g", namespace="n", name="g",
            ...              outcome="not-needed").raise_for_failure()
        """
        if not self.ok:
            failed = [c.summary for c in self.checks if c.status == "failed"]
            detail = "; ".join([self.reason, *failed]) if self.reason else "; ".join(failed)
            raise RotationError(f"rotation of {self.gateway} {self.outcome}: {detail}", result=self)

    def __str__(self) -> str:
        head = f"rotate {self.gateway} ({self.namespace}/{self.name}): {self.outcome}"
        if self.reason:
            head += f": {self.reason}"
        lines = [head]
        if self.old_token is not None:
            lines.append(f"  before: {_describe(self.old_token)} in Secret {self.old_secret}")
        if self.new_token is not None:
            lines.append(f"  new:    {_describe(self.new_token)} in Secret {self.new_secret}")
        if self.adopted:
            lines.append("  adopted a Secret made outside this library (portal or Helm)")
        if self.rollout is not None:
            lines.append("  " + str(self.rollout).replace("\n", "\n  "))
        if self.rollback is not None:
            lines.append("  rollback " + str(self.rollback).replace("\n", "\n  "))
        lines.extend(f"  {check}" for check in self.checks)
        lines.extend(f"  deleted old Secret {name}" for name in self.deleted_secrets)
        if self.regenerated_key is not None:
            lines.append(f"  regenerated the {self.regenerated_key.value} key (old token invalid)")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        lines = str(self).splitlines()
        out = [f"**{lines[0]}**", ""]
        out.extend(f"- {line.strip()}" for line in lines[1:])
        return "\n".join(out)


def _describe(token: Token) -> str:
    return (
        f"{token.key_type.value} key, expires {token.expires_on:%Y-%m-%d %H:%M} UTC, "
        f"fingerprint {token.fingerprint}"
    )


# ------------------------------------------------------------------------------ roles


def lease_name(spec: DeploymentSpec) -> str:
    """The name of the Lease that serialises rotations of a gateway: ``<base>-token-rotation``.

    Args:
        spec: The gateway's spec.

    Returns:
        The Lease name (in the spec's namespace).

    Example:
        >>> from apim_selfhosted.models import DeploymentSpec, Gateway
        >>> lease_name(DeploymentSpec(gateway=Gateway(subscription_id="s", resource_group="rg",
        ...     service_name="contoso", name="gw1"), namespace="apim"))
        'gw1-token-rotation'
    """
    return f"{spec.base_name}-token-rotation"


def rotator_rules(spec: DeploymentSpec) -> list[dict[str, Any]]:
    """The Kubernetes RBAC rules rotation needs in the gateway's namespace, and nothing more.

    * ``deployments``: ``get``, ``patch`` and ``watch`` the gateway's Deployment, by name (a
      watch with ``fieldSelector=metadata.name=<name>`` is authorized against
      ``resourceNames``), to read and change the token reference and follow the rollout;
    * ``replicasets``: ``get``/``list`` to tell old pods from new ones and Secrets in use;
    * ``pods``: ``list``/``watch`` to follow the rollout and to know when no pod uses the old
      token; ``pods/log`` ``get`` to verify the new pods authenticated;
    * ``secrets``: ``get`` the token in use, ``create``/``patch`` (server-side apply) the new
      immutable Secret, ``list``/``delete`` to clean up old token Secrets;
    * ``leases``: ``create`` the rotation Lease, ``get``/``update`` it by name.

    Args:
        spec: The gateway's spec.

    Returns:
        ``PolicyRule`` dicts for a namespaced ``Role``.

    Example:
        >>> from apim_selfhosted.models import DeploymentSpec, Gateway
        >>> rules = rotator_rules(DeploymentSpec(gateway=Gateway(subscription_id="s",
        ...     resource_group="rg", service_name="contoso", name="gw1"), namespace="apim"))
        >>> sorted({r for rule in rules for r in rule["resources"]})
        ['deployments', 'leases', 'pods', 'pods/log', 'replicasets', 'secrets']
    """
    return [
        {
            "apiGroups": ["apps"],
            "resources": ["deployments"],
            "resourceNames": [spec.base_name],
            "verbs": ["get", "patch", "watch"],
        },
        {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get", "list"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "verbs": ["get", "list", "create", "patch", "delete"],
        },
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [lease_name(spec)],
            "verbs": ["get", "update"],
        },
    ]


def azure_rotator_role(
    spec: DeploymentSpec,
    *,
    regenerate_old_key: bool = False,
    name: str = "API Management gateway token rotator",
) -> dict[str, Any]:
    """The Azure custom role definition a rotator needs, scoped to the gateway's service.

    Create it with ``az role definition create --role-definition @role.json`` and assign it to
    the rotator's identity on the API Management service.

    Args:
        spec: The gateway's spec (its service is the assignable scope).
        regenerate_old_key: Also allow ``gateways/regenerateKey/action``.
        name: The role's name.

    Returns:
        The role definition, as ``az role definition create`` takes it.

    Example:
        >>> from apim_selfhosted.models import DeploymentSpec, Gateway
        >>> role = azure_rotator_role(DeploymentSpec(gateway=Gateway(subscription_id="s",
        ...     resource_group="rg", service_name="contoso", name="gw1"), namespace="apim"))
        >>> [a.rsplit("/", 2)[-2:] for a in role["Actions"]]
        [['gateways', 'read'], ['generateToken', 'action']]
    """
    actions = list(AZURE_ROTATOR_ACTIONS)
    if regenerate_old_key:
        actions.append(AZURE_REGENERATE_KEY_ACTION)
    return {
        "Name": name,
        "IsCustom": True,
        "Description": "Reads self-hosted gateways and issues their tokens"
        + (", and regenerates the key of a replaced token." if regenerate_old_key else "."),
        "Actions": actions,
        "NotActions": [],
        "DataActions": [],
        "NotDataActions": [],
        "AssignableScopes": [spec.gateway.service_resource_id],
    }


# ------------------------------------------------------------------------------ the CronJob


def parse_duration(text: str) -> timedelta:
    """Reads a duration such as ``7d``, ``36h``, ``90m``, ``2w`` or ``3600s``.

    Args:
        text: A whole number followed by one of ``s``, ``m``, ``h``, ``d``, ``w``.

    Returns:
        The duration.

    Raises:
        ValueError: The text is not of that form.

    Example:
        >>> parse_duration("7d")
        datetime.timedelta(days=7)
    """
    match = _DURATION_RE.match(text)
    if not match:
        raise ValueError(
            f"invalid duration {text!r}: use a whole number and a unit s, m, h, d or w "
            "(e.g. 7d, 36h)"
        )
    try:
        return timedelta(seconds=int(match.group(1)) * _DURATION_UNITS[match.group(2)])
    except OverflowError:
        raise ValueError(f"invalid duration {text!r}: too long") from None


def _format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit in ("d", "h", "m"):
        size = _DURATION_UNITS[unit]
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_CRON_FIELD_RE = re.compile(r"^[0-9*/,\-A-Za-z?LW#]+$")


def _check_schedule(schedule: str) -> str:
    text = schedule.strip()
    if "TZ" in text:  # checked first: kube-apiserver refuses these before parsing the fields
        raise SpecError(
            "schedule: set the time zone with time_zone=, not TZ= or CRON_TZ= in the schedule",
            problems=[("schedule", "no TZ=/CRON_TZ= prefix")],
        )
    if text.startswith("@"):
        if text in (
            "@yearly",
            "@annually",
            "@monthly",
            "@weekly",
            "@daily",
            "@midnight",
            "@hourly",
        ):
            return text
        raise SpecError(
            f"schedule {schedule!r}: unknown macro; use @hourly, @daily, @weekly, @monthly, "
            "@yearly or five cron fields",
            problems=[("schedule", "five cron fields or a macro such as @daily")],
        )
    fields = text.split()
    if len(fields) != 5 or not all(_CRON_FIELD_RE.match(f) for f in fields):
        raise SpecError(
            f"schedule {schedule!r}: expected five cron fields 'minute hour day-of-month month "
            "day-of-week' (e.g. '0 3 * * *')",
            problems=[("schedule", "five cron fields, e.g. '0 3 * * *'")],
        )
    return text


def _check_time_zone(time_zone: str) -> str:
    """``time_zone`` as kube-apiserver accepts it for a CronJob's ``timeZone``.

    The API server refuses ``Local`` and any name missing from its IANA time zone database
    (``spec.timeZone: Invalid value: ...: unknown time zone``). Here the check uses the local
    time zone database; where Python finds none, only ``Local`` and blanks are refused.
    """
    import zoneinfo

    problem = ("time_zone", "an IANA time zone name such as 'Etc/UTC' or 'Europe/Berlin'")
    name = time_zone.strip() if isinstance(time_zone, str) else ""
    known = zoneinfo.available_timezones()
    if (
        not name
        or name == "Local"
        or any(c.isspace() for c in name)
        or (known and name not in known)
    ):
        raise SpecError(
            f"time_zone {time_zone!r}: unknown time zone; use an IANA name such as 'Etc/UTC' "
            "or 'Europe/Berlin' (the CronJob's spec.timeZone)",
            problems=[problem],
        )
    return name


def render_rotator(
    spec: DeploymentSpec,
    *,
    image: str,
    identity: WorkloadIdentityAuth | str,
    schedule: str = "0 3 * * *",
    time_zone: str = "Etc/UTC",
    if_expiring_within: timedelta | None = None,
    regenerate_old_key: bool = False,
    keep_history: int = 2,
    starting_deadline_seconds: int = 600,
    active_deadline_seconds: int = 1800,
    backoff_limit: int = 1,
    successful_jobs_history_limit: int = 3,
    failed_jobs_history_limit: int = 3,
    image_pull_secrets: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The in-cluster rotator: ServiceAccount, Role, RoleBinding, ConfigMap and CronJob.

    The CronJob runs ``apim-selfhosted rotate /etc/apim-selfhosted/spec.yaml --in-cluster`` on
    ``schedule`` with ``concurrencyPolicy: Forbid`` (and the rotation Lease besides), a
    starting deadline, an active deadline, a backoff limit and history limits. Its pods use the
    ServiceAccount ``<base>-rotator``, annotated for Azure workload identity
    (``azure.workload.identity/client-id``) and labelled ``azure.workload.identity/use: "true"``
    so that ``DefaultAzureCredential`` picks up the federated token. The Role grants exactly
    :func:`rotator_rules` in the gateway's namespace. The spec travels in a ConfigMap. Every
    object is labelled with ``app.kubernetes.io/component: rotator``.

    Args:
        spec: The gateway's spec (library-managed token auth).
        image: An image with ``apim-selfhosted`` installed (its console script on ``PATH``).
        identity: The user-assigned managed identity (or app) federated with the
            ServiceAccount: a :class:`~apim_selfhosted.models.WorkloadIdentityAuth` or its
            client id.
        schedule: Five cron fields (default: every day at 03:00).
        time_zone: The CronJob's ``timeZone``.
        if_expiring_within: Rotate when the token expires within this (default: the profile's).
        regenerate_old_key: Pass ``--regenerate-old-key`` (the Azure role then needs
            ``regenerateKey/action``).
        keep_history: How many previous token Secrets to keep.
        starting_deadline_seconds: ``startingDeadlineSeconds``.
        active_deadline_seconds: The Job's ``activeDeadlineSeconds``.
        backoff_limit: The Job's ``backoffLimit``.
        successful_jobs_history_limit: ``successfulJobsHistoryLimit``.
        failed_jobs_history_limit: ``failedJobsHistoryLimit``.
        image_pull_secrets: Pull secrets for ``image``.

    Returns:
        The manifests, in apply order.

    Raises:
        SpecError: The spec does not use library-managed tokens, or an argument is out of
            range (the message names it).

    Example:
        >>> from apim_selfhosted.models import DeploymentSpec, Gateway
        >>> spec = DeploymentSpec(gateway=Gateway(subscription_id="s1", resource_group="rg",
        ...     service_name="contoso", name="gw1"), namespace="apim")
        >>> cron = render_rotator(spec, image="example.org/rotator:1.0",
        ...                       identity="11111111-2222-3333-4444-555555555555")[-1]
        >>> cron["spec"]["concurrencyPolicy"], cron["spec"]["schedule"]
        ('Forbid', '0 3 * * *')
    """
    from apim_selfhosted.rendering import object_labels

    problems: list[tuple[str, str]] = []
    if not isinstance(spec.auth, GatewayTokenAuth):
        problems.append(("auth.kind", "rotation manages tokens of auth.kind 'gateway-token'"))
    if not isinstance(image, str) or not image.strip() or any(c.isspace() for c in image):
        problems.append(("image", "an image reference with apim-selfhosted installed"))
    if isinstance(identity, str):
        if not identity.strip():
            problems.append(("identity", "the client id of the workload identity"))
        else:
            identity = WorkloadIdentityAuth(client_id=identity.strip())
    elif not isinstance(identity, WorkloadIdentityAuth):
        problems.append(("identity", "a WorkloadIdentityAuth or a client id string"))
    if isinstance(identity, WorkloadIdentityAuth) and not _GUID_RE.match(identity.client_id):
        # Entra client ids are GUIDs; anything else only fails at 03:00 inside the CronJob.
        problems.append(("identity", "the managed identity's client id, a GUID"))
    for field_name, value, low in (
        ("keep_history", keep_history, 0),
        ("starting_deadline_seconds", starting_deadline_seconds, 10),
        ("active_deadline_seconds", active_deadline_seconds, 60),
        ("backoff_limit", backoff_limit, 0),
        ("successful_jobs_history_limit", successful_jobs_history_limit, 0),
        ("failed_jobs_history_limit", failed_jobs_history_limit, 0),
    ):
        if not isinstance(value, int) or value < low:
            problems.append((field_name, f"an integer >= {low}"))
    if problems:
        raise SpecError(
            "cannot render the rotator: " + "; ".join(f"{p}: {m}" for p, m in problems),
            problems=problems,
        )
    assert isinstance(identity, WorkloadIdentityAuth)
    schedule = _check_schedule(schedule)
    time_zone = _check_time_zone(time_zone)
    for secret in image_pull_secrets:
        try:
            check_dns1123_subdomain(secret, what="image_pull_secrets")
        except ValueError as exc:
            raise SpecError(str(exc), problems=[("image_pull_secrets", str(exc))]) from exc

    import yaml

    name = f"{spec.base_name}-rotator"
    namespace = spec.namespace
    labels = object_labels(spec, component=ROTATOR_COMPONENT)

    def meta(obj_name: str, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"name": obj_name, "namespace": namespace, "labels": dict(labels)}
        out.update(extra)
        return out

    sa_annotations = {"azure.workload.identity/client-id": identity.client_id}
    if identity.tenant_id:
        sa_annotations["azure.workload.identity/tenant-id"] = identity.tenant_id
    args = ["rotate", f"{_SPEC_MOUNT}/{_SPEC_FILE}", "--in-cluster"]
    if if_expiring_within is not None:
        args += ["--if-expiring-within", _format_duration(if_expiring_within)]
    if regenerate_old_key:
        args.append("--regenerate-old-key")
    args += ["--keep-history", str(keep_history)]
    pod_labels = {**labels, "azure.workload.identity/use": "true"}
    pod_spec: dict[str, Any] = {
        "serviceAccountName": name,
        "automountServiceAccountToken": True,
        "restartPolicy": "Never",
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "rotator",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["apim-selfhosted"],
                "args": args,
                "resources": {
                    "requests": {"cpu": "50m", "memory": "128Mi"},
                    "limits": {"memory": "256Mi"},
                },
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [{"name": "spec", "mountPath": _SPEC_MOUNT, "readOnly": True}],
            }
        ],
        "volumes": [{"name": "spec", "configMap": {"name": f"{name}-spec"}}],
    }
    if image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": s} for s in image_pull_secrets]
    spec_text = yaml.safe_dump(spec.to_dict(), sort_keys=False, default_flow_style=False)
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": meta(name, annotations=sa_annotations),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta(name),
            "rules": rotator_rules(spec),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta(name),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta(f"{name}-spec"),
            "data": {_SPEC_FILE: spec_text},
        },
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": meta(name),
            "spec": {
                "schedule": schedule,
                "timeZone": time_zone,
                "concurrencyPolicy": "Forbid",
                "startingDeadlineSeconds": starting_deadline_seconds,
                "successfulJobsHistoryLimit": successful_jobs_history_limit,
                "failedJobsHistoryLimit": failed_jobs_history_limit,
                "suspend": False,
                "jobTemplate": {
                    "metadata": {"labels": dict(labels)},
                    "spec": {
                        "backoffLimit": backoff_limit,
                        "activeDeadlineSeconds": active_deadline_seconds,
                        "template": {
                            "metadata": {"labels": pod_labels},
                            "spec": pod_spec,
                        },
                    },
                },
            },
        },
    ]


# ------------------------------------------------------------------------------ waiting


def _wait_for_pods(
    kube: KubernetesApplier,
    namespace: str,
    selector: str,
    done: Callable[[list[dict[str, Any]]], bool],
    *,
    timeout: float,
) -> bool:
    """Lists the pods, then watches them until ``done(pods)`` or ``timeout``; True when done.

    The pods known from the list stay known until the watch reports them deleted, so ``done``
    never sees fewer pods than exist (a pod deleted between the list and the watch is caught
    by one last list at the end).
    """
    pods = {
        p["metadata"]["name"]: p
        for p in kube.list_objects("v1", "Pod", namespace, label_selector=selector)
    }
    if done(list(pods.values())):
        return True
    for event in kube.watch("v1", "Pod", namespace, label_selector=selector, timeout=timeout):
        obj = event.get("object") or {}
        name = (obj.get("metadata") or {}).get("name")
        if event.get("type") == "DELETED":
            pods.pop(name, None)
        else:
            pods[name] = obj
        if done(list(pods.values())):
            return True
    return done(kube.list_objects("v1", "Pod", namespace, label_selector=selector))


# ------------------------------------------------------------------------------ the Lease


def _micro_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def _default_identity() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _acquire_lease(
    kube: KubernetesApplier,
    spec: DeploymentSpec,
    *,
    identity: str,
    duration: int,
    labels: Mapping[str, str],
) -> tuple[dict[str, Any] | None, str | None]:
    """Takes the rotation Lease. Returns (lease, None) when taken, (None, holder) when not."""
    name, namespace = lease_name(spec), spec.namespace
    now = _real_now()
    body: dict[str, Any] = {
        "apiVersion": _LEASE_API,
        "kind": "Lease",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "holderIdentity": identity,
            "leaseDurationSeconds": duration,
            "acquireTime": _micro_time(now),
            "renewTime": _micro_time(now),
            "leaseTransitions": 0,
        },
    }
    live = kube.get(_LEASE_API, "Lease", name, namespace)
    if live is None:
        try:
            return kube.create(body, field_manager=ROTATOR_FIELD_MANAGER), None
        except KubernetesError as exc:
            if exc.code != 409:
                raise
            live = kube.get(_LEASE_API, "Lease", name, namespace) or {}
            return None, str((live.get("spec") or {}).get("holderIdentity") or "another rotator")
    lease_spec = live.get("spec") or {}
    holder = lease_spec.get("holderIdentity")
    renewed = _parse_time(lease_spec.get("renewTime")) or _parse_time(lease_spec.get("acquireTime"))
    held_for = int(lease_spec.get("leaseDurationSeconds") or 0)
    if holder and holder != identity and renewed is not None:
        if renewed + timedelta(seconds=held_for) > now:
            return None, str(holder)
        logger.info("lease %s/%s of %s expired; taking it over", namespace, name, holder)
    body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
    body["spec"]["leaseTransitions"] = int(lease_spec.get("leaseTransitions") or 0) + (
        1 if holder and holder != identity else 0
    )
    try:
        return kube.replace(body, field_manager=ROTATOR_FIELD_MANAGER), None
    except KubernetesError as exc:
        if exc.code != 409:
            raise
        live = kube.get(_LEASE_API, "Lease", name, namespace) or {}
        return None, str((live.get("spec") or {}).get("holderIdentity") or "another rotator")


def _release_lease(kube: KubernetesApplier, lease: Mapping[str, Any]) -> None:
    body = copy.deepcopy(dict(lease))
    body["metadata"] = {
        k: v
        for k, v in body["metadata"].items()
        if k in ("name", "namespace", "labels", "resourceVersion")
    }
    spec = dict(body.get("spec") or {})
    spec.pop("holderIdentity", None)
    spec["leaseDurationSeconds"] = 1
    body["spec"] = spec
    try:
        kube.replace(body, field_manager=ROTATOR_FIELD_MANAGER)
    except KubernetesError as exc:
        # Someone took an expired lease over, or it was deleted: theirs now.
        logger.warning("could not release the rotation lease: %s", exc)


# ------------------------------------------------------------------------------ the patch


def _token_patch(
    spec: DeploymentSpec,
    container: str,
    secret: str,
    key: str,
    annotations: Mapping[str, str],
) -> dict[str, Any]:
    """A server-side apply body that sets only the token reference (and token annotations)."""
    template: dict[str, Any] = {
        "spec": {
            "containers": [
                {
                    "name": container,
                    "env": [
                        {
                            "name": _AUTH_ENV,
                            "valueFrom": {"secretKeyRef": {"name": secret, "key": key}},
                        }
                    ],
                }
            ]
        }
    }
    if annotations:
        template["metadata"] = {"annotations": dict(annotations)}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": spec.base_name, "namespace": spec.namespace},
        "spec": {"template": template},
    }


def _token_annotations(token: Token) -> dict[str, str]:
    from apim_selfhosted.rendering import ANNOTATION_TOKEN_EXPIRES_ON, LABEL_TOKEN_FINGERPRINT

    return {
        LABEL_TOKEN_FINGERPRINT: token.fingerprint,
        ANNOTATION_TOKEN_EXPIRES_ON: token.expires_on.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _previous_annotations(deployment: Mapping[str, Any]) -> dict[str, str]:
    from apim_selfhosted.rendering import ANNOTATION_TOKEN_EXPIRES_ON, LABEL_TOKEN_FINGERPRINT

    found = (((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}).get(
        "annotations"
    ) or {}
    return {
        k: str(found[k])
        for k in (LABEL_TOKEN_FINGERPRINT, ANNOTATION_TOKEN_EXPIRES_ON)
        if k in found
    }


def _selector(deployment: Mapping[str, Any]) -> str:
    match = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(match.items()))


def _pod_secrets(pod: Mapping[str, Any]) -> set[str]:
    from apim_selfhosted.kube import secret_names_in_template

    return secret_names_in_template({"spec": pod.get("spec") or {}})


def _is_ready(pod: Mapping[str, Any]) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def _merge_fields(into: dict[str, Any], more: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(into)
    for key, value in more.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge_fields(dict(out[key]), value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _hand_back_fields(kube: KubernetesApplier, spec: DeploymentSpec) -> bool:
    """Moves the rotator's fields of a library-deployed Deployment to ``deploy``'s manager.

    Rotation applies only the token reference, under its own field manager and with ``force``.
    When ``deploy`` (field manager ``apim-selfhosted``) made the Deployment, the fields are then
    handed back, so that ``deploy`` owns the whole object again, as if it had rotated, and can
    change the token reference later without a conflict. This is how kubectl migrates field
    ownership (it rewrites ``metadata.managedFields`` with a JSON patch guarded by the
    resourceVersion). Returns whether anything was handed back.
    """
    from apim_selfhosted.kube import DEFAULT_FIELD_MANAGER

    live = kube.get("apps/v1", "Deployment", spec.base_name, spec.namespace)
    if live is None:
        return False
    entries = list((live.get("metadata") or {}).get("managedFields") or [])
    mine = [e for e in entries if e.get("manager") == ROTATOR_FIELD_MANAGER]
    target = next(
        (
            e
            for e in entries
            if e.get("manager") == DEFAULT_FIELD_MANAGER
            and e.get("operation") == "Apply"
            and not e.get("subresource")
        ),
        None,
    )
    if not mine or target is None:
        return False
    merged = dict(target)
    fields: dict[str, Any] = dict(target.get("fieldsV1") or {})
    for entry in mine:
        fields = _merge_fields(fields, entry.get("fieldsV1") or {})
    merged["fieldsV1"] = fields
    new_entries = [merged if e is target else e for e in entries if e not in mine]
    patch = [
        {
            "op": "test",
            "path": "/metadata/resourceVersion",
            "value": live["metadata"]["resourceVersion"],
        },
        {"op": "replace", "path": "/metadata/managedFields", "value": new_entries},
    ]
    try:
        kube.patch(
            "apps/v1",
            "Deployment",
            spec.base_name,
            spec.namespace,
            patch,
            patch_type="json",
            field_manager=ROTATOR_FIELD_MANAGER,
        )
    except KubernetesError as exc:
        # Changed meanwhile: leave ownership as it is (a later deploy may need force).
        logger.info("could not hand the token fields back to %s: %s", DEFAULT_FIELD_MANAGER, exc)
        return False
    return True


# ------------------------------------------------------------------------------ verification


def _verify_new_pods(
    kube: KubernetesApplier,
    spec: DeploymentSpec,
    deployment: Mapping[str, Any],
    new_secret: str,
    new_token: Token,
) -> tuple[Check, ...]:
    from apim_selfhosted.kube import pod_problems
    from apim_selfhosted.steps import LOG_FAILURE_PATTERNS, read_cluster_state

    checks: list[Check] = []
    state = read_cluster_state(spec, kube=kube)
    if state.token is not None and state.token.fingerprint == new_token.fingerprint:
        checks.append(
            Check(
                name="token",
                status="ok",
                summary=f"the Deployment reads the new token from Secret {state.secret_name}",
            )
        )
    else:
        checks.append(
            Check(
                name="token",
                status="failed",
                summary="the Deployment does not read the new token: "
                + (state.token_problem or f"it reads Secret {state.secret_name}"),
                advice="another writer changed the Deployment; run the rotation again",
            )
        )
    live = state.deployment or deployment
    desired = int((live.get("spec") or {}).get("replicas", 1) or 0)
    pods = [
        p
        for p in kube.list_objects("v1", "Pod", spec.namespace, label_selector=_selector(live))
        if not (p.get("metadata") or {}).get("deletionTimestamp")
    ]
    on_new = [p for p in pods if new_secret in _pod_secrets(p)]
    ready = [p for p in on_new if _is_ready(p)]
    problems = [problem for p in on_new for problem in pod_problems(p)]
    evidence = tuple(
        f"pod {p['metadata']['name']}: {'Ready' if _is_ready(p) else 'not ready'}" for p in on_new
    )
    if problems or len(ready) < desired:
        checks.append(
            Check(
                name="pods",
                status="failed",
                summary=f"{len(ready)} of {desired} pods run the new token and are Ready",
                evidence=evidence + tuple(str(p) for p in problems),
                advice="look at the pods' events and logs",
            )
        )
    else:
        checks.append(
            Check(
                name="pods",
                status="ok",
                summary=f"{len(ready)} of {desired} pods run the new token and are Ready",
                evidence=evidence,
            )
        )
    failures: list[str] = []
    for pod in on_new:
        pod_name = pod["metadata"]["name"]
        try:
            text = kube.pod_log(pod_name, spec.namespace, tail_lines=200)
        except KubernetesError as exc:
            failures.append(f"pod {pod_name}: log not readable ({exc.reason or exc})")
            continue
        for check_name, pattern, meaning, _advice in LOG_FAILURE_PATTERNS:
            if pattern.search(text):
                failures.append(f"pod {pod_name}: {meaning} ({check_name})")
    unreadable = all("log not readable" in f for f in failures)
    if failures and not unreadable:
        checks.append(
            Check(
                name="logs",
                status="failed",
                summary="the new pods log configuration or authentication failures",
                evidence=tuple(failures),
                advice="check that the token belongs to this gateway and its key is current",
            )
        )
    elif failures:
        checks.append(
            Check(
                name="logs",
                status="skipped",
                summary="the pod logs could not be read",
                evidence=tuple(failures),
            )
        )
    else:
        checks.append(
            Check(name="logs", status="ok", summary="no authentication failures in the logs")
        )
    return tuple(checks)


# ------------------------------------------------------------------------------ clean-up


def _secrets_in_use(
    kube: KubernetesApplier, namespace: str, deployment: Mapping[str, Any]
) -> set[str]:
    from apim_selfhosted.kube import secret_names_in_template

    names = secret_names_in_template((deployment.get("spec") or {}).get("template") or {})
    for rs in kube.list_objects(
        "apps/v1", "ReplicaSet", namespace, label_selector=_selector(deployment)
    ):
        status = rs.get("status") or {}
        if (rs.get("spec") or {}).get("replicas", 0) or status.get("replicas", 0):
            names |= secret_names_in_template((rs.get("spec") or {}).get("template") or {})
    return names


def _clean_up(
    kube: KubernetesApplier,
    spec: DeploymentSpec,
    deployment: Mapping[str, Any],
    *,
    current: str,
    keep_history: int,
) -> tuple[str, ...]:
    from apim_selfhosted.rendering import LABEL_TOKEN_EXPIRES, token_secret_selector

    secrets = kube.list_objects(
        "v1", "Secret", spec.namespace, label_selector=token_secret_selector(spec)
    )
    in_use = _secrets_in_use(kube, spec.namespace, deployment) | {current}

    def order(secret: Mapping[str, Any]) -> tuple[str, int, str]:
        # Newest first by creation; resourceVersion (etcd's revision in practice) breaks ties
        # within a second, then the expiry.
        meta = secret.get("metadata") or {}
        rv = str(meta.get("resourceVersion", ""))
        return (
            str(meta.get("creationTimestamp", "")),
            int(rv) if rv.isdigit() else 0,
            str((meta.get("labels") or {}).get(LABEL_TOKEN_EXPIRES, "")),
        )

    older = sorted(
        (s for s in secrets if s["metadata"]["name"] not in in_use), key=order, reverse=True
    )
    deleted = []
    for secret in older[keep_history:]:
        name = secret["metadata"]["name"]
        if kube.delete("v1", "Secret", name, spec.namespace):
            deleted.append(name)
    return tuple(deleted)


# ------------------------------------------------------------------------------ rotate


def rotate(
    spec: DeploymentSpec,
    *,
    management: ManagementClient,
    kube: KubernetesApplier,
    only_if_expiring_within: timedelta | None = None,
    force: bool = False,
    now: datetime | None = None,
    regenerate_old_key: bool = False,
    token_ttl: timedelta = timedelta(days=29),
    timeout: float = 600.0,
    keep_history: int = 2,
    holder_identity: str | None = None,
    lease_duration: int | None = None,
    profile: ProductionProfile | None = None,
    on_event: EventCallback | None = None,
) -> RotateResult:
    """Rotates a gateway's token without downtime, if (and only if) it needs it.

    See the module documentation for the steps. Safe to run every hour: when the token in use
    is valid for longer than ``only_if_expiring_within`` nothing is written (outcome
    ``not-needed``) and only the Deployment and its token Secret are read.

    Args:
        spec: The gateway's spec (``auth.kind: gateway-token``).
        management: The Azure client (needs ``gateways/read`` and
            ``gateways/generateToken/action``; ``regenerateKey/action`` with
            ``regenerate_old_key``).
        kube: The cluster client.
        only_if_expiring_within: Rotate only when the token in use expires within this
            (default: ``profile.min_token_validity``, 7 days).
        force: Rotate even when the token is still valid long enough.
        now: The time to judge the token by (default: the clock).
        regenerate_old_key: After success, regenerate the old token's key (invalidating the
            old token) once no pod references the old Secret.
        token_ttl: Validity of the new token (at most 30 days).
        timeout: Seconds to wait for the rollout (and again for a rollback).
        keep_history: How many previous token Secrets to keep (for manual rollbacks).
        holder_identity: Who this rotation is, in the Lease (default: host, pid, random).
        lease_duration: Seconds the Lease is held at most (default ``2 * timeout + 120``).
        profile: The production profile (default ``ProductionProfile()``).
        on_event: Progress callback.

    Returns:
        The :class:`RotateResult`; a rollback or a failure to verify is reported, not raised
        (``result.raise_for_failure()`` raises).

    Raises:
        SpecError: The spec does not use library-managed tokens, or an option is out of range
            (before anything is written).
        AuthorizationError, AuthenticationError: Azure or Kubernetes refused a call (the
            message names the missing permission).
        GatewayNotFoundError: The gateway does not exist in API Management.
        ManagementError, KubernetesError: Other failures.

    Example:
        >>> result = rotate(spec, management=mgmt, kube=kube)  # doctest: +SKIP
        >>> result.outcome  # doctest: +SKIP
        'not-needed'
    """
    started = time.monotonic()
    problems: list[tuple[str, str]] = []
    if not isinstance(spec, DeploymentSpec):
        raise SpecError(
            f"spec must be a DeploymentSpec, got {type(spec).__name__}",
            problems=[("spec", "a DeploymentSpec (DeploymentSpec.from_file(path))")],
        )
    if not isinstance(spec.auth, GatewayTokenAuth):
        problems.append(
            (
                "auth.kind",
                f"rotation manages tokens of auth.kind 'gateway-token', not {spec.auth.kind!r}",
            )
        )
    if keep_history < 0:
        problems.append(("keep_history", "an integer >= 0"))
    if timeout <= 0:
        problems.append(("timeout", "a number of seconds > 0"))
    if only_if_expiring_within is not None and only_if_expiring_within < timedelta(0):
        problems.append(("only_if_expiring_within", "a duration >= 0"))
    if not timedelta(minutes=1) <= token_ttl <= timedelta(days=30):
        problems.append(("token_ttl", "between one minute and 30 days"))
    if lease_duration is not None and lease_duration < 1:
        problems.append(("lease_duration", "seconds >= 1"))
    if now is not None and now.tzinfo is None:
        problems.append(("now", "a timezone-aware datetime"))
    if problems:
        raise SpecError(
            "cannot rotate: " + "; ".join(f"{p}: {m}" for p, m in problems), problems=problems
        )
    from apim_selfhosted.profile import ProductionProfile
    from apim_selfhosted.rendering import object_labels
    from apim_selfhosted.steps import read_cluster_state

    profile = profile or ProductionProfile()
    horizon = (
        only_if_expiring_within
        if only_if_expiring_within is not None
        else profile.min_token_validity
    )
    identity = holder_identity or _default_identity()
    duration = lease_duration or int(2 * timeout + 120)
    base = {"gateway": str(spec.gateway), "namespace": spec.namespace, "name": spec.base_name}

    def finish(outcome: RotateOutcome, reason: str, **fields: Any) -> RotateResult:
        result = RotateResult(
            outcome=outcome,
            reason=reason,
            elapsed_seconds=round(time.monotonic() - started, 3),
            **base,
            **fields,
        )
        _emit(on_event, "rotate", f"{spec.gateway}: {outcome}: {reason}", outcome=outcome)
        return result

    # Decide before taking the Lease: the hourly "nothing to do" costs two reads, no write.
    state = read_cluster_state(spec, kube=kube)
    verdict, why = _decide(spec, state, horizon, force, now or _real_now())
    if verdict is not None:
        found = token_reference(state.deployment) if state.deployment else None
        return finish(
            verdict, why, old_token=state.token, old_secret=found.secret if found else None
        )
    lease, holder = _acquire_lease(
        kube,
        spec,
        identity=identity,
        duration=duration,
        labels=object_labels(spec, component=ROTATOR_COMPONENT),
    )
    if lease is None:
        return finish(
            "yielded",
            f"another rotation of this gateway is running (Lease {lease_name(spec)} held by "
            f"{holder})",
            lease_holder=holder,
        )
    _emit(on_event, "lease", f"took Lease {spec.namespace}/{lease_name(spec)} as {identity}")
    try:
        return _rotate_locked(
            spec,
            management=management,
            kube=kube,
            horizon=horizon,
            force=force,
            now=now,
            regenerate_old_key=regenerate_old_key,
            token_ttl=token_ttl,
            timeout=timeout,
            keep_history=keep_history,
            on_event=on_event,
            finish=finish,
        )
    finally:
        _release_lease(kube, lease)


def _decide(
    spec: DeploymentSpec,
    state: ClusterState,
    horizon: timedelta,
    force: bool,
    current_time: datetime,
) -> tuple[RotateOutcome | None, str]:
    """(``failed``/``not-needed``, why) when nothing is to be done, else (None, why rotate)."""
    if state.deployment is None:
        return (
            "failed",
            f"no Deployment {spec.namespace}/{spec.base_name}: deploy the gateway first "
            "(`apim-selfhosted deploy SPEC`)",
        )
    if token_reference(state.deployment) is None:
        return (
            "failed",
            f"Deployment {spec.namespace}/{spec.base_name} does not read {_AUTH_ENV} from a "
            "Secret; nothing to rotate",
        )
    old = state.token
    if old is None:
        return None, state.token_problem or "no readable token in use"
    if old.gateway_id.lower() != spec.gateway.name.lower():
        return None, (
            f"the token in use belongs to gateway {old.gateway_id!r}, not {spec.gateway.name!r}"
        )
    if old.remaining(current_time) <= timedelta(0):
        return None, f"the token in use expired on {old.expires_on:%Y-%m-%d %H:%M} UTC"
    days = old.remaining(current_time).total_seconds() / 86400
    if old.expires_within(horizon, current_time):
        return None, (
            f"the token in use expires in {days:.1f} days, within {_format_duration(horizon)}"
        )
    if force:
        return None, "rotation forced"
    return (
        "not-needed",
        f"the token in use is valid for {days:.1f} more days (rotation horizon "
        f"{_format_duration(horizon)})",
    )


def _rotate_locked(
    spec: DeploymentSpec,
    *,
    management: ManagementClient,
    kube: KubernetesApplier,
    horizon: timedelta,
    force: bool,
    now: datetime | None,
    regenerate_old_key: bool,
    token_ttl: timedelta,
    timeout: float,
    keep_history: int,
    on_event: EventCallback | None,
    finish: Callable[..., RotateResult],
) -> RotateResult:
    from apim_selfhosted.kube import DEFAULT_FIELD_MANAGER
    from apim_selfhosted.rendering import (
        LABEL_MANAGED_BY,
        MANAGED_BY,
        token_secret,
    )
    from apim_selfhosted.steps import (
        issuing_key_fingerprint,
        read_cluster_state,
        with_key_fingerprint,
    )

    current_time = now or _real_now()
    # Read again under the Lease: another rotation may have finished just before.
    state = read_cluster_state(spec, kube=kube)
    verdict, reason_to_rotate = _decide(spec, state, horizon, force, current_time)
    if verdict is not None:
        found_ref = token_reference(state.deployment) if state.deployment else None
        return finish(
            verdict,
            reason_to_rotate,
            old_token=state.token,
            old_secret=found_ref.secret if found_ref else None,
        )
    assert state.deployment is not None
    found = token_reference(state.deployment)
    assert found is not None
    container, old_secret, old_key = found
    old = state.token
    notes: list[str] = []
    secret_obj = kube.get("v1", "Secret", old_secret, spec.namespace) or {}
    old_labels = (secret_obj.get("metadata") or {}).get("labels") or {}
    adopted = old_labels.get(LABEL_MANAGED_BY) != MANAGED_BY
    from apim_selfhosted.rendering import LABEL_KEY_TYPE

    old_key_known = LABEL_KEY_TYPE in old_labels
    strategy = (state.deployment.get("spec") or {}).get("strategy") or {}
    if strategy.get("type") == "Recreate":
        notes.append(
            "the Deployment uses the Recreate strategy: its pods are all replaced at once "
            "(set strategy RollingUpdate for zero downtime)"
        )
    new_key = old.key_type.other if old is not None else KeyType.PRIMARY
    _emit(on_event, "token", f"{reason_to_rotate}; issuing a token from the {new_key.value} key")
    management.get_gateway(spec.gateway)
    new = management.issue_token(spec.gateway, key_type=new_key, ttl=token_ttl)
    # Recorded so that verify can tell when this key is regenerated (None without listKeys).
    secret = with_key_fingerprint(
        token_secret(spec, new), issuing_key_fingerprint(management, spec.gateway, new_key)
    )
    new_secret = secret["metadata"]["name"]
    common: dict[str, Any] = {
        "old_token": old,
        "new_token": new,
        "old_secret": old_secret,
        "new_secret": new_secret,
        "adopted": adopted,
    }
    _emit(on_event, "apply", f"creating Secret {spec.namespace}/{new_secret}")
    # The Secret is exactly what `deploy` renders for this token: apply it under deploy's field
    # manager, so that a later deploy (new image tag -> new version label) owns what it changes.
    kube.apply([secret], field_manager=DEFAULT_FIELD_MANAGER)
    previous_annotations = _previous_annotations(state.deployment)
    patch = _token_patch(spec, container, new_secret, "value", _token_annotations(new))
    _emit(on_event, "apply", f"pointing Deployment {spec.namespace}/{spec.base_name} at it")
    try:
        kube.apply([patch], field_manager=ROTATOR_FIELD_MANAGER, force=True)
    except ApimSelfhostedError:
        # Nothing references the new Secret: remove it (best effort) and report the cause.
        try:
            kube.delete("v1", "Secret", new_secret, spec.namespace)
        except ApimSelfhostedError:
            logger.debug("could not delete the unused Secret %s", new_secret, exc_info=True)
        raise
    back = _token_patch(spec, container, old_secret, old_key, previous_annotations)
    checks: tuple[Check, ...] = ()
    failure: str | None = None
    try:
        rollout = kube.wait_for_rollout(
            spec.base_name, spec.namespace, timeout=timeout, on_event=on_event
        )
        if not rollout.ok:
            failure = f"the new pods did not become ready: {rollout.message or rollout.outcome}"
        else:
            checks = _verify_new_pods(kube, spec, state.deployment, new_secret, new)
            failed = [c for c in checks if c.status == "failed"]
            if failed:
                failure = "verification failed: " + "; ".join(c.summary for c in failed)
    except ApimSelfhostedError as exc:
        # Could not follow the rollout (permissions, API server gone): do not leave an
        # unverified token in place. Point back at the previous Secret, best effort.
        _emit(on_event, "rollback", f"{exc}; pointing the pods back at Secret {old_secret}")
        try:
            kube.apply([back], field_manager=ROTATOR_FIELD_MANAGER, force=True)
        except ApimSelfhostedError:
            logger.warning("could not point %s back at %s", spec.base_name, old_secret)
        raise
    if failure is not None:
        _emit(on_event, "rollback", f"{failure}; pointing the pods back at Secret {old_secret}")
        kube.apply([back], field_manager=ROTATOR_FIELD_MANAGER, force=True)
        rollback = kube.wait_for_rollout(
            spec.base_name, spec.namespace, timeout=timeout, on_event=on_event
        )
        _hand_back_fields(kube, spec)
        if rollback.ok:
            live = kube.get("apps/v1", "Deployment", spec.base_name, spec.namespace) or {}
            if new_secret not in _secrets_in_use(kube, spec.namespace, live):
                kube.delete("v1", "Secret", new_secret, spec.namespace)
            reason = f"{failure}; rolled back to Secret {old_secret}"
        else:
            reason = f"{failure}; the rollback did not complete either: {rollback.message}"
        return finish(
            "rolled-back",
            reason,
            rollout=rollout,
            rollback=rollback,
            checks=checks,
            notes=tuple(notes),
            **common,
        )
    _hand_back_fields(kube, spec)
    live = kube.get("apps/v1", "Deployment", spec.base_name, spec.namespace) or state.deployment
    deleted = _clean_up(kube, spec, live, current=new_secret, keep_history=keep_history)
    regenerated: KeyType | None = None
    if regenerate_old_key:
        if old is None:
            notes.append("no old token was readable, so no key was regenerated")
        elif old.gateway_id.lower() != spec.gateway.name.lower():
            notes.append("the old token belonged to another gateway; no key was regenerated")
        elif old.key_type == new.key_type:
            notes.append("the old and new tokens share a key; it was not regenerated")
        else:
            selector = _selector(live)
            gone = _wait_for_pods(
                kube,
                spec.namespace,
                selector,
                lambda pods: not any(old_secret in _pod_secrets(p) for p in pods),
                timeout=timeout,
            )
            if not gone:
                notes.append(
                    f"pods still referenced Secret {old_secret} after {timeout:g} s; the "
                    f"{old.key_type.value} key was not regenerated (run again)"
                )
            else:
                _emit(on_event, "key", f"regenerating the {old.key_type.value} key")
                try:
                    management.regenerate_key(spec.gateway, old.key_type)
                except ApimSelfhostedError as exc:
                    # The new token is in place and verified; only the clean-up failed.
                    checks = (
                        *checks,
                        Check(
                            name="regenerate-key",
                            status="failed",
                            summary=f"the {old.key_type.value} key was not regenerated: {exc}",
                            advice="grant Microsoft.ApiManagement/service/gateways/"
                            "regenerateKey/action, or drop regenerate_old_key",
                        ),
                    )
                else:
                    regenerated = old.key_type
                    checks = (
                        *checks,
                        Check(
                            name="regenerate-key",
                            status="ok",
                            summary=f"regenerated the {old.key_type.value} key once no pod "
                            f"referenced Secret {old_secret}; the old token is invalid",
                        ),
                    )
                if regenerated is not None and not old_key_known:
                    notes.append(
                        f"the old Secret did not say which key signed its token; assumed "
                        f"{old.key_type.value} (the new token uses {new.key_type.value})"
                    )
    return finish(
        "rotated",
        reason_to_rotate,
        rollout=rollout,
        checks=checks,
        deleted_secrets=deleted,
        regenerated_key=regenerated,
        notes=tuple(notes),
        **common,
    )


# ------------------------------------------------------------------------------ a fleet


def rotate_many(
    specs: Iterable[DeploymentSpec],
    *,
    management: ManagementClient,
    kube: KubernetesApplier | None = None,
    kube_for: Callable[[DeploymentSpec], KubernetesApplier] | None = None,
    max_workers: int = 4,
    on_result: Callable[[RotateResult], None] | None = None,
    only_if_expiring_within: timedelta | None = None,
    force: bool = False,
    now: datetime | None = None,
    regenerate_old_key: bool = False,
    token_ttl: timedelta = timedelta(days=29),
    timeout: float = 600.0,
    keep_history: int = 2,
    holder_identity: str | None = None,
    lease_duration: int | None = None,
    profile: ProductionProfile | None = None,
    on_event: EventCallback | None = None,
) -> list[RotateResult]:
    """Rotates many gateways concurrently: one result per gateway, no failure stops the others.

    Args:
        specs: The gateways' specs (any namespaces; any clusters with ``kube_for``).
        management: The Azure client (one client serves every subscription).
        kube: The cluster client for every spec; or
        kube_for: A function giving the cluster client for a spec (e.g. by cluster name).
        max_workers: How many rotations run at once.
        on_result: Called with each result as it completes (from a worker thread).
        only_if_expiring_within: As for :func:`rotate`, for every gateway.
        force: As for :func:`rotate`.
        now: As for :func:`rotate`.
        regenerate_old_key: As for :func:`rotate`.
        token_ttl: As for :func:`rotate`.
        timeout: As for :func:`rotate`, per gateway.
        keep_history: As for :func:`rotate`.
        holder_identity: As for :func:`rotate` (each gateway has its own Lease).
        lease_duration: As for :func:`rotate`.
        profile: As for :func:`rotate`.
        on_event: As for :func:`rotate`; called from the worker threads.

    Returns:
        The results in the order of ``specs``; an exception in one rotation becomes a result
        with ``outcome="failed"`` and the error in ``reason``.

    Raises:
        ValueError: Neither or both of ``kube`` and ``kube_for``, or ``max_workers`` < 1
            (before anything runs).

    Example:
        >>> rotate_many([], management=None, kube=None, kube_for=lambda s: None)
        []
    """
    items = list(specs)
    if (kube is None) == (kube_for is None):
        raise ValueError("pass exactly one of kube= or kube_for=")
    if not isinstance(max_workers, int) or max_workers < 1:
        raise ValueError(f"max_workers must be an integer >= 1, got {max_workers!r}")

    def one(spec: DeploymentSpec) -> RotateResult:
        started = time.monotonic()
        try:
            client = kube if kube is not None else kube_for(spec)  # type: ignore[misc]
            assert client is not None
            result = rotate(
                spec,
                management=management,
                kube=client,
                only_if_expiring_within=only_if_expiring_within,
                force=force,
                now=now,
                regenerate_old_key=regenerate_old_key,
                token_ttl=token_ttl,
                timeout=timeout,
                keep_history=keep_history,
                holder_identity=holder_identity,
                lease_duration=lease_duration,
                profile=profile,
                on_event=on_event,
            )
        except Exception as exc:  # one gateway's failure must not stop the others
            logger.warning("rotation of %s failed: %s", getattr(spec, "gateway", spec), exc)
            gateway = getattr(spec, "gateway", None)
            result = RotateResult(
                gateway=str(gateway) if gateway is not None else "<invalid spec>",
                namespace=str(getattr(spec, "namespace", "")),
                name=str(getattr(spec, "base_name", "")),
                outcome="failed",
                reason=f"{type(exc).__name__}: {exc}",
                elapsed_seconds=round(time.monotonic() - started, 3),
            )
        if on_result is not None:
            on_result(result)
        return result

    if not items:
        return []
    with ThreadPoolExecutor(
        max_workers=min(max_workers, len(items)), thread_name_prefix="rotate"
    ) as pool:
        return list(pool.map(one, items))
