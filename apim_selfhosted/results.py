"""Typed results of the library's steps: findings, applied objects, plans, rollouts, reports.

Every result is a frozen pydantic model that reads well in a terminal (``str()``) and in a
notebook (``_repr_markdown_``). No result ever shows a secret value.

Example:
    >>> from apim_selfhosted.results import Check
    >>> print(Check(name="rollout", status="ok", summary="2/2 replicas ready"))
    ✔ rollout: 2/2 replicas ready
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field

from apim_selfhosted.errors import RolloutError, VerificationError
from apim_selfhosted.models import Token

# --------------------------------------------------------------------------------------------
# Results of applying, deploying and verifying (issue 5). Every class is frozen and renders in a
# terminal (``__str__``) and in a notebook (``_repr_markdown_``). Secret values never appear:
# tokens are carried as :class:`~apim_selfhosted.models.Token` (a ``SecretStr`` inside) and
# Secret data in plans is redacted.
# --------------------------------------------------------------------------------------------

_REDACTED = "<redacted>"

ApplyAction = Literal["created", "changed", "unchanged"]
PlanAction = Literal["create", "update", "unchanged", "delete"]
CheckStatus = Literal["ok", "warning", "failed", "skipped"]
RolloutOutcome = Literal["complete", "progress-deadline-exceeded", "pods-failing", "timeout"]

_STATUS_RANK: dict[str, int] = {"ok": 0, "skipped": 0, "warning": 1, "failed": 2}
_STATUS_MARK: dict[str, str] = {"ok": "✔", "warning": "!", "failed": "✘", "skipped": "-"}


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


class ObjectRef(BaseModel):
    """Names one Kubernetes object: API version, kind, namespace and name.

    Example:
        >>> str(ObjectRef(api_version="apps/v1", kind="Deployment", namespace="apim", name="gw"))
        'Deployment apim/gw'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_version: str = Field(description="The object's apiVersion, e.g. 'apps/v1'.")
    kind: str = Field(description="The object's kind, e.g. 'Deployment'.")
    name: str = Field(description="metadata.name.")
    namespace: str | None = Field(
        default=None, description="metadata.namespace (None if cluster-scoped)."
    )

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"


class Applied(BaseModel):
    """What a server-side apply did to one object.

    Example:
        >>> a = Applied(api_version="v1", kind="ConfigMap", namespace="apim", name="gw-env",
        ...             action="unchanged", resource_version="42")
        >>> str(a)
        'ConfigMap apim/gw-env: unchanged'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_version: str = Field(description="The object's apiVersion.")
    kind: str = Field(description="The object's kind.")
    name: str = Field(description="metadata.name.")
    namespace: str | None = Field(default=None, description="metadata.namespace, if namespaced.")
    action: ApplyAction = Field(description="created, changed or unchanged.")
    resource_version: str | None = Field(
        default=None, description="The resourceVersion the server returned."
    )
    dry_run: bool = Field(default=False, description="True when nothing was persisted.")

    @property
    def ref(self) -> ObjectRef:
        """The object this result is about."""
        return ObjectRef(
            api_version=self.api_version, kind=self.kind, name=self.name, namespace=self.namespace
        )

    def __str__(self) -> str:
        suffix = " (dry run)" if self.dry_run else ""
        return f"{self.ref}: {self.action}{suffix}"


class FieldChange(BaseModel):
    """One field that an apply would change. Secret values are shown as ``<redacted>``.

    Example:
        >>> str(FieldChange(path="spec.replicas", before=1, after=2))
        'spec.replicas: 1 -> 2'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(description="Dotted field path; list items as [index].")
    before: Any = Field(default=None, description="The live value (None when absent).")
    after: Any = Field(default=None, description="The value after the apply (None when removed).")

    def __str__(self) -> str:
        return f"{self.path}: {_short(self.before)} -> {_short(self.after)}"


def _short(value: Any) -> str:
    if value is None:
        return "(none)"
    text = json.dumps(value, sort_keys=True, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."


class PlannedChange(BaseModel):
    """What an apply would do to one object, with the changed fields.

    Example:
        >>> c = PlannedChange(api_version="apps/v1", kind="Deployment", namespace="apim",
        ...                   name="gw", action="update",
        ...                   changes=(FieldChange(path="spec.replicas", before=1, after=2),))
        >>> print(c)
        ~ Deployment apim/gw
            spec.replicas: 1 -> 2
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_version: str = Field(description="The object's apiVersion.")
    kind: str = Field(description="The object's kind.")
    name: str = Field(description="metadata.name.")
    namespace: str | None = Field(default=None, description="metadata.namespace, if namespaced.")
    action: PlanAction = Field(description="create, update, unchanged or delete.")
    changes: tuple[FieldChange, ...] = Field(default=(), description="Changed fields (updates).")

    @property
    def ref(self) -> ObjectRef:
        """The object this change is about."""
        return ObjectRef(
            api_version=self.api_version, kind=self.kind, name=self.name, namespace=self.namespace
        )

    def __str__(self) -> str:
        mark = {"create": "+", "update": "~", "unchanged": "=", "delete": "-"}[self.action]
        lines = [f"{mark} {self.ref}"]
        lines.extend(f"    {change}" for change in self.changes)
        return "\n".join(lines)


class Plan(BaseModel):
    """What an apply would change in the cluster (``KubernetesApplier.diff``).

    Example:
        >>> plan = Plan(items=(PlannedChange(api_version="v1", kind="ConfigMap",
        ...                                  namespace="apim", name="gw-env", action="create"),))
        >>> plan.changed, str(plan)
        (True, '+ ConfigMap apim/gw-env\\n1 to create, 0 to update, 0 unchanged, 0 to delete')
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    items: tuple[PlannedChange, ...] = Field(default=(), description="One entry per object.")

    @property
    def changed(self) -> bool:
        """True when applying would create, update or delete anything."""
        return any(item.action != "unchanged" for item in self.items)

    def count(self, action: PlanAction) -> int:
        """How many objects get ``action``.

        Args:
            action: create, update, unchanged or delete.

        Returns:
            The number of planned changes with that action.

        Example:
            >>> Plan().count("create")
            0
        """
        return sum(1 for item in self.items if item.action == action)

    def summary(self) -> str:
        """One line: how many objects are created, updated, unchanged and deleted.

        Returns:
            The summary line.

        Example:
            >>> Plan().summary()
            '0 to create, 0 to update, 0 unchanged, 0 to delete'
        """
        return (
            f"{self.count('create')} to create, {self.count('update')} to update, "
            f"{self.count('unchanged')} unchanged, {self.count('delete')} to delete"
        )

    def __str__(self) -> str:
        lines = [str(item) for item in self.items if item.action != "unchanged"]
        lines.append(self.summary())
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        rows = ["| object | action | changes |", "|---|---|---|"]
        for item in self.items:
            changes = "<br>".join(_md_escape(str(c)) for c in item.changes)
            rows.append(f"| {_md_escape(str(item.ref))} | {item.action} | {changes} |")
        return "\n".join([f"**Plan**: {self.summary()}", "", *rows])


class PodProblem(BaseModel):
    """A pod whose container cannot start, with the kubelet's reason.

    Example:
        >>> str(PodProblem(pod="gw-5d8f-abcde", container="gw", reason="ImagePullBackOff",
        ...                message="Back-off pulling image"))
        'pod gw-5d8f-abcde container gw: ImagePullBackOff (Back-off pulling image)'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    pod: str = Field(description="The pod's name.")
    container: str = Field(description="The container's name.")
    reason: str = Field(description="ErrImagePull, ImagePullBackOff, CrashLoopBackOff, ...")
    message: str = Field(default="", description="The kubelet's message, if any.")
    restart_count: int = Field(default=0, description="The container's restartCount.")

    def __str__(self) -> str:
        detail = f" ({self.message})" if self.message else ""
        return f"pod {self.pod} container {self.container}: {self.reason}{detail}"


class RolloutStatus(BaseModel):
    """How a Deployment's rollout ended (``KubernetesApplier.wait_for_rollout``).

    Success follows ``kubectl rollout status``: the controller observed the latest generation,
    every replica runs the new template and is available, and no old replica is left.

    Example:
        >>> s = RolloutStatus(name="gw", namespace="apim", outcome="complete", replicas=2,
        ...                   updated_replicas=2, ready_replicas=2, available_replicas=2)
        >>> s.ok, str(s)
        (True, 'rollout of apim/gw: complete (2/2 updated, 2 ready, 2 available)')
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="The Deployment's name.")
    namespace: str = Field(description="The Deployment's namespace.")
    outcome: RolloutOutcome = Field(
        description="complete, progress-deadline-exceeded, pods-failing or timeout."
    )
    message: str = Field(default="", description="Why the rollout ended, in words.")
    revision: str | None = Field(default=None, description="deployment.kubernetes.io/revision.")
    generation: int = Field(default=0, description="metadata.generation.")
    observed_generation: int = Field(default=0, description="status.observedGeneration.")
    desired_replicas: int = Field(default=0, description="spec.replicas.")
    replicas: int = Field(default=0, description="status.replicas (old and new pods).")
    updated_replicas: int = Field(default=0, description="status.updatedReplicas.")
    ready_replicas: int = Field(default=0, description="status.readyReplicas.")
    available_replicas: int = Field(default=0, description="status.availableReplicas.")
    pod_problems: tuple[PodProblem, ...] = Field(
        default=(), description="Pods of the new template that cannot start."
    )
    watch_restarts: int = Field(
        default=0, description="How often a dropped or expired watch was resumed."
    )
    elapsed_seconds: float = Field(default=0.0, description="Time spent waiting.")

    @property
    def ok(self) -> bool:
        """True when the rollout completed."""
        return self.outcome == "complete"

    def __str__(self) -> str:
        text = (
            f"rollout of {self.namespace}/{self.name}: {self.outcome} "
            f"({self.updated_replicas}/{self.replicas} updated, {self.ready_replicas} ready, "
            f"{self.available_replicas} available)"
        )
        if self.message and not self.ok:
            text += f": {self.message}"
        for problem in self.pod_problems:
            text += f"\n  {problem}"
        return text

    def _repr_markdown_(self) -> str:
        lines = [f"**{_md_escape(str(self).splitlines()[0])}**"]
        lines.extend(f"- {_md_escape(str(p))}" for p in self.pod_problems)
        return "\n".join(lines)


class Check(BaseModel):
    """One verification check: status, the evidence seen and what to do about it.

    Example:
        >>> c = Check(name="token", status="warning", summary="token expires in 3 days",
        ...           advice="run `apim-selfhosted rotate`")
        >>> str(c)
        '! token: token expires in 3 days -> run `apim-selfhosted rotate`'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="Short id of the check, e.g. 'rollout' or 'token'.")
    status: CheckStatus = Field(description="ok, warning, failed or skipped.")
    summary: str = Field(description="One line: what was found.")
    evidence: tuple[str, ...] = Field(default=(), description="What was observed, line by line.")
    advice: str | None = Field(default=None, description="What to do, when not ok.")

    def __str__(self) -> str:
        text = f"{_STATUS_MARK[self.status]} {self.name}: {self.summary}"
        if self.advice and self.status in ("warning", "failed"):
            text += f" -> {self.advice}"
        return text


class VerifyReport(BaseModel):
    """The result of ``verify``: one :class:`Check` per aspect of a running gateway.

    ``verify`` never raises for what it finds; :meth:`raise_for_failure` does.

    Example:
        >>> from datetime import datetime, UTC
        >>> r = VerifyReport(gateway="contoso/gw1", namespace="apim", name="gw1",
        ...                  checked_at=datetime(2026, 11, 27, tzinfo=UTC),
        ...                  checks=(Check(name="rollout", status="ok", summary="2/2 ready"),))
        >>> r.ok, r.status, r.exit_code
        (True, 'ok', 0)
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    gateway: str = Field(description="The gateway as '<service>/<gateway>'.")
    namespace: str = Field(description="The namespace checked.")
    name: str = Field(description="The Deployment's name.")
    checked_at: datetime = Field(description="The time the checks used as 'now' (aware).")
    checks: tuple[Check, ...] = Field(default=(), description="The checks, in order.")

    @property
    def status(self) -> CheckStatus:
        """The worst status among the checks (``ok`` when there are none)."""
        worst = "ok"
        for check in self.checks:
            if _STATUS_RANK[check.status] > _STATUS_RANK[worst]:
                worst = check.status
        return cast(CheckStatus, worst)

    @property
    def ok(self) -> bool:
        """True when no check failed (warnings allowed)."""
        return self.status != "failed"

    @property
    def failed(self) -> tuple[Check, ...]:
        """The failed checks."""
        return tuple(c for c in self.checks if c.status == "failed")

    @property
    def warnings(self) -> tuple[Check, ...]:
        """The checks with warnings."""
        return tuple(c for c in self.checks if c.status == "warning")

    @property
    def exit_code(self) -> int:
        """The CLI's exit code: 0 healthy, 1 a check failed, 2 warnings only."""
        return {"ok": 0, "failed": 1, "warning": 2}[self.status]

    def check(self, name: str) -> Check:
        """The check called ``name``.

        Args:
            name: The check's id.

        Returns:
            The check.

        Raises:
            KeyError: No check has that name.

        Example:
            >>> from datetime import datetime, UTC
            >>> VerifyReport(gateway="c/g", namespace="n", name="g",
            ...              checked_at=datetime(2026, 1, 1, tzinfo=UTC)).check("token")
            Traceback (most recent call last):
            ...
            KeyError: 'no check named token'
        """
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(f"no check named {name}")

    def raise_for_failure(self) -> None:
        """Raises when a check failed.

        Raises:
            VerificationError: At least one check failed; ``.report`` is this report.

        Example:
            >>> from datetime import datetime, UTC
            >>> VerifyReport(gateway="c/g", namespace="n", name="g",
            ...              checked_at=datetime(2026, 1, 1, tzinfo=UTC)).raise_for_failure()
        """
        if not self.ok:
            names = ", ".join(c.name for c in self.failed)
            raise VerificationError(
                f"gateway {self.gateway} in namespace {self.namespace} failed checks: {names}",
                report=self,
            )

    def __str__(self) -> str:
        head = f"verify {self.gateway} ({self.namespace}/{self.name}): {self.status}"
        return "\n".join([head, *(f"  {c}" for c in self.checks)])

    def _repr_markdown_(self) -> str:
        rows = [
            f"**verify {_md_escape(self.gateway)}** ({self.namespace}/{self.name}): "
            f"**{self.status}**",
            "",
            "| | check | finding | advice |",
            "|---|---|---|---|",
        ]
        for c in self.checks:
            rows.append(
                f"| {_STATUS_MARK[c.status]} | {c.name} | {_md_escape(c.summary)} | "
                f"{_md_escape(c.advice or '')} |"
            )
        return "\n".join(rows)


class ProgressEvent(BaseModel):
    """A progress event of a long step (deploy, rollout, verify), for CLIs and notebooks.

    Example:
        >>> str(ProgressEvent(step="rollout", message="2/3 replicas updated"))
        '[rollout] 2/3 replicas updated'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    step: str = Field(description="validate, gateway, token, render, apply, rollout, ...")
    message: str = Field(description="What happened, in words (never a secret).")
    data: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, description="Structured details (counts, names)."
    )

    def __str__(self) -> str:
        return f"[{self.step}] {self.message}"


class DeployResult(BaseModel):
    """What ``deploy`` did: applied objects, the rollout, the verification.

    Example:
        >>> r = DeployResult(gateway="contoso/gw1", namespace="apim", name="gw1",
        ...                  applied=(Applied(api_version="v1", kind="ConfigMap",
        ...                                   namespace="apim", name="gw1-env",
        ...                                   action="unchanged"),))
        >>> r.ok, r.changed
        (True, False)
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    gateway: str = Field(description="The gateway as '<service>/<gateway>'.")
    namespace: str = Field(description="The namespace deployed to.")
    name: str = Field(description="The Deployment's name.")
    dry_run: bool = Field(default=False, description="True when nothing was persisted.")
    applied: tuple[Applied, ...] = Field(default=(), description="One entry per object.")
    plan: Plan | None = Field(default=None, description="The diff, when asked for.")
    rollout: RolloutStatus | None = Field(default=None, description="How the rollout ended.")
    verify: VerifyReport | None = Field(default=None, description="The checks after rollout.")
    token: Token | None = Field(
        default=None, description="The token in use (its value is a SecretStr, never shown)."
    )
    token_issued: bool = Field(default=False, description="True when a new token was issued.")
    pruned: tuple[ObjectRef, ...] = Field(default=(), description="Objects deleted as obsolete.")
    rolled_back: bool = Field(
        default=False, description="True when a failed rollout was rolled back."
    )
    restored: tuple[ObjectRef, ...] = Field(
        default=(), description="Objects the rollback returned to their state before the deploy."
    )
    removed: tuple[ObjectRef, ...] = Field(
        default=(), description="Objects the failed deploy had created, deleted by the rollback."
    )
    error: str | None = Field(default=None, description="Why the deploy failed, if it did.")
    elapsed_seconds: float = Field(default=0.0, description="Wall time of the deploy.")

    @property
    def changed(self) -> bool:
        """True when anything in the cluster was created, changed or deleted."""
        return bool(self.pruned) or any(a.action != "unchanged" for a in self.applied)

    @property
    def ok(self) -> bool:
        """True when the deploy succeeded (rollout complete, verification not failed)."""
        if self.error is not None:
            return False
        if self.rollout is not None and not self.rollout.ok:
            return False
        return self.verify is None or self.verify.ok

    def raise_for_failure(self) -> None:
        """Raises when the deploy failed.

        Raises:
            RolloutError: The rollout did not complete (``.rollout`` says why).
            VerificationError: The gateway runs but a check failed.

        Example:
            >>> DeployResult(gateway="c/g", namespace="n", name="g").raise_for_failure()
        """
        if self.rollout is not None and not self.rollout.ok:
            raise RolloutError(self.error or str(self.rollout), rollout=self.rollout)
        if self.verify is not None:
            self.verify.raise_for_failure()
        if self.error is not None:
            raise RolloutError(self.error, rollout=self.rollout)

    def __str__(self) -> str:
        state = "ok" if self.ok else "FAILED"
        what = "dry run" if self.dry_run else ("changed" if self.changed else "no change")
        lines = [f"deploy {self.gateway} to {self.namespace}/{self.name}: {state} ({what})"]
        lines.extend(f"  {a}" for a in self.applied)
        lines.extend(f"  {ref}: pruned" for ref in self.pruned)
        if self.token is not None:
            issued = "issued" if self.token_issued else "reused"
            lines.append(
                f"  token {issued}: {self.token.key_type.value} key, expires "
                f"{self.token.expires_on:%Y-%m-%d %H:%M} UTC (fingerprint {self.token.fingerprint})"
            )
        if self.rollout is not None:
            lines.append("  " + str(self.rollout).replace("\n", "\n  "))
        if self.rolled_back:
            lines.append("  rolled back to the previous pod template and objects")
            lines.extend(f"  {ref}: restored" for ref in self.restored)
            lines.extend(f"  {ref}: removed" for ref in self.removed)
        if self.error:
            lines.append(f"  error: {self.error}")
        if self.verify is not None:
            lines.append("  " + str(self.verify).replace("\n", "\n  "))
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        parts = [f"**{_md_escape(str(self).splitlines()[0])}**", ""]
        if self.applied:
            parts.append("| object | action |")
            parts.append("|---|---|")
            parts.extend(f"| {_md_escape(str(a.ref))} | {a.action} |" for a in self.applied)
        if self.rollout is not None:
            parts += ["", self.rollout._repr_markdown_()]
        if self.rolled_back:
            parts += [
                "",
                "Rolled back to the previous pod template and objects "
                f"({len(self.restored)} restored, {len(self.removed)} removed); "
                "the old pods kept serving.",
            ]
        if self.error:
            parts += ["", f"**Error**: {_md_escape(self.error)}"]
        if self.verify is not None:
            parts += ["", self.verify._repr_markdown_()]
        return "\n".join(parts)


# --------------------------------------------------------------------------------------------
# Findings of the production profile (issue 2).
# --------------------------------------------------------------------------------------------

Severity = Literal["error", "warning", "info"]
_SEVERITY_RANK: dict[str, int] = {"error": 0, "warning": 1, "info": 2}


class Finding(BaseModel):
    """One thing :func:`~apim_selfhosted.profile.lint` has to say about a spec.

    Example:
        >>> f = Finding(rule="min-replicas", severity="error", path="replicas",
        ...             message="1 replica; the profile wants at least 3",
        ...             why="One pod is a single point of failure.",
        ...             fix="Set replicas: 3 (or more).")
        >>> print(f)
        error   min-replicas  replicas: 1 replica; the profile wants at least 3
                why: One pod is a single point of failure.
                fix: Set replicas: 3 (or more).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str = Field(description="Stable rule id, e.g. 'min-replicas'.")
    severity: Severity = Field(description="'error' (blocks production), 'warning' or 'info'.")
    path: str = Field(description="Dotted field path in the spec, e.g. 'image.tag'.")
    message: str = Field(description="What is wrong, in this spec's terms.")
    why: str = Field(description="Why it matters, in one line.")
    fix: str = Field(description="How to fix it.")

    def __str__(self) -> str:
        pad = " " * 8
        return (
            f"{self.severity:<7} {self.rule}  {self.path}: {self.message}\n"
            f"{pad}why: {self.why}\n{pad}fix: {self.fix}"
        )

    def _repr_markdown_(self) -> str:
        return (
            f"**{self.severity}** `{self.rule}` at `{self.path}`: {_md_escape(self.message)}  \n"
            f"*Why:* {_md_escape(self.why)}  \n*Fix:* {_md_escape(self.fix)}"
        )


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Orders findings errors first, then warnings, then infos, each by field path.

    Args:
        findings: Findings in any order.

    Returns:
        A new, sorted list.

    Example:
        >>> a = Finding(rule="r", severity="info", path="b", message="m", why="w", fix="f")
        >>> b = Finding(rule="r", severity="error", path="a", message="m", why="w", fix="f")
        >>> [f.severity for f in sort_findings([a, b])]
        ['error', 'info']
    """
    return sorted(findings, key=lambda f: (_SEVERITY_RANK[f.severity], f.path, f.rule))


def findings_markdown(findings: list[Finding]) -> str:
    """A Markdown table of findings, for notebooks and reports.

    Args:
        findings: The findings.

    Returns:
        A table with severity, rule, field, message and fix (or a line saying none).

    Example:
        >>> findings_markdown([])
        'No findings: the spec meets the production profile.'
    """
    if not findings:
        return "No findings: the spec meets the production profile."
    rows = ["| severity | rule | field | message | fix |", "|---|---|---|---|---|"]
    for f in findings:
        message, fix = _md_escape(f.message), _md_escape(f.fix)
        rows.append(f"| {f.severity} | `{f.rule}` | `{f.path}` | {message} | {fix} |")
    return "\n".join(rows)


class GatewayStatus(BaseModel):
    """A one-screen summary of a deployed gateway (``apim-selfhosted status``).

    Example:
        >>> print(GatewayStatus(gateway="contoso/gw1", namespace="apim", name="gw1",
        ...                     exists=False))
        gateway contoso/gw1 in apim/gw1: not deployed
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    gateway: str = Field(description="The gateway as '<service>/<gateway>'.")
    namespace: str = Field(description="The namespace.")
    name: str = Field(description="The Deployment's name.")
    exists: bool = Field(description="Whether the Deployment exists.")
    image: str | None = Field(default=None, description="The gateway container's image.")
    desired_replicas: int = Field(default=0, description="spec.replicas.")
    ready_replicas: int = Field(default=0, description="status.readyReplicas.")
    updated_replicas: int = Field(default=0, description="status.updatedReplicas.")
    available_replicas: int = Field(default=0, description="status.availableReplicas.")
    revision: str | None = Field(default=None, description="The Deployment's revision.")
    rollout: str | None = Field(default=None, description="Rollout state, as kubectl says it.")
    last_rollout: str | None = Field(
        default=None, description="When the rollout last progressed (Progressing condition)."
    )
    token: Token | None = Field(default=None, description="The token in use (value hidden).")
    token_remaining_days: float | None = Field(
        default=None, description="Days of validity left at the time of the status."
    )
    token_problem: str | None = Field(
        default=None, description="Why no token could be read, if so."
    )

    def __str__(self) -> str:
        head = f"gateway {self.gateway} in {self.namespace}/{self.name}"
        if not self.exists:
            return f"{head}: not deployed"
        lines = [
            head,
            f"  image     {self.image}",
            f"  replicas  {self.ready_replicas}/{self.desired_replicas} ready, "
            f"{self.updated_replicas} updated, {self.available_replicas} available",
            f"  rollout   revision {self.revision or '-'}, {self.rollout or '-'}"
            + (f" (last progress {self.last_rollout})" if self.last_rollout else ""),
        ]
        if self.token is not None:
            lines.append(
                f"  token     {self.token.key_type.value} key, expires "
                f"{self.token.expires_on:%Y-%m-%d %H:%M} UTC ({self.token_remaining_days} days "
                f"left), fingerprint {self.token.fingerprint}"
            )
        elif self.token_problem:
            lines.append(f"  token     {self.token_problem}")
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return "```\n" + str(self) + "\n```"
