"""The demo: the whole flow of the library on one machine, with no cloud account.

:func:`run_demo` starts the two local stand-ins of :mod:`apim_selfhosted.testing` in this
process (``FakeApim`` for Azure Resource Manager and Entra ID, ``KubeEmulator`` for a
Kubernetes API server with controllers) and drives them through the public API exactly as a
user would drive Azure and a cluster:

1. create the gateway resource in API Management (``ManagementClient.ensure_gateway``);
2. lint the production example (``lint``);
3. show what a deploy would change (``deploy(dry_run=True, diff=True)``);
4. deploy it (``deploy``) and verify it (``verify``: healthy);
5. fast-forward API Management's clock so the token nears expiry and verify again (a warning);
6. rotate the token with zero downtime (``rotate``) while counting the Ready pods, then verify;
7. break things on purpose: deploy refuses a spec with lint errors before writing anything,
   and a gateway image that never becomes ready fails the rollout, which is rolled back while
   the old pods keep serving;
8. print a one-screen summary.

The ``apim-selfhosted demo`` command (``./dev demo``) calls it. The demo needs the
``testing`` extra (``pip install 'apim-selfhosted[testing]'``); it is the one part of the
package that imports :mod:`apim_selfhosted.testing`, and only when it runs. It never prints a
token, a key or a client secret: tokens appear by fingerprint only.

Example:
    >>> result = run_demo(out=io.StringIO())  # doctest: +SKIP
    >>> result.ok  # doctest: +SKIP
    True
    >>> DemoStep(title="lint the production example", ok=True, outcome="0 errors").ok
    True
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from pydantic import BaseModel, ConfigDict, Field

from apim_selfhosted.errors import ApimSelfhostedError, SpecError

if TYPE_CHECKING:
    from apim_selfhosted.models import DeploymentSpec
    from apim_selfhosted.results import ProgressEvent

logger = logging.getLogger(__name__)

__all__ = ["DemoResult", "DemoStep", "StandIns", "find_example_spec", "run_demo"]

#: How far the demo moves API Management's clock: a 29-day token then has 6 days left, inside
#: the production profile's 7-day horizon.
FAST_FORWARD = timedelta(days=23)
#: The image tag the demo "upgrades" to on purpose: the emulator is told that its pods never
#: become ready (as with a broken build or a readiness probe that cannot pass).
BROKEN_TAG = "2.11.2"

#: The gateway's location in API Management (``locationData.name``).
LOCATION = "demo-cluster"

_EXAMPLE = Path("examples") / "production.yaml"
_WIDTH = 78


class DemoStep(BaseModel):
    """One step of the demo and how it ended.

    Example:
        >>> step = DemoStep(title="verify", ok=True, outcome="ok (7 checks)", seconds=0.2)
        >>> str(step)
        '  ok    verify                                  ok (7 checks)  0.2s'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str = Field(description="What the step does, in words.")
    ok: bool = Field(description="True when the step ended as the demo expects.")
    outcome: str = Field(description="How it ended, in a few words (never a secret).")
    seconds: float = Field(default=0.0, description="Wall time of the step.")

    def __str__(self) -> str:
        mark = "ok" if self.ok else "FAIL"
        return f"  {mark:<5} {self.title:<39} {self.outcome}  {self.seconds:.1f}s"


class DemoResult(BaseModel):
    """The steps of a demo run and its wall time.

    Example:
        >>> r = DemoResult(steps=(DemoStep(title="lint", ok=True, outcome="0 errors"),),
        ...                elapsed_seconds=1.5)
        >>> r.ok, r.exit_code
        (True, 0)
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: tuple[DemoStep, ...] = Field(default=(), description="The steps, in order.")
    elapsed_seconds: float = Field(default=0.0, description="Wall time of the whole demo.")

    @property
    def ok(self) -> bool:
        """True when every step ended as expected."""
        return bool(self.steps) and all(step.ok for step in self.steps)

    @property
    def exit_code(self) -> int:
        """0 when every step ended as expected, else 1."""
        return 0 if self.ok else 1

    def __str__(self) -> str:
        lines = ["Summary", *(str(step) for step in self.steps)]
        verdict = (
            "every step ended as expected" if self.ok else "some steps did NOT end as expected"
        )
        lines.append(f"{verdict}; wall time {self.elapsed_seconds:.1f}s")
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        rows = ["| | step | outcome | seconds |", "|---|---|---|---|"]
        for step in self.steps:
            mark = "✅" if step.ok else "❌"
            rows.append(f"| {mark} | {step.title} | {step.outcome} | {step.seconds:.1f} |")
        return "\n".join([f"**demo**: {self.elapsed_seconds:.1f}s", "", *rows])


@dataclass(frozen=True)
class StandIns:
    """The running stand-ins of a demo kept running (what ``run_demo``'s ``wait`` receives).

    Attributes:
        apim: The ``FakeApim``.
        emulator: The ``KubeEmulator``.
        spec: The spec the demo deployed (namespace created).
        env_file: The private file (mode 0600) with the environment settings to reach them.

    Example:
        >>> StandIns(apim=None, emulator=None, spec=None, env_file=Path("demo.env")).env_file
        PosixPath('demo.env')
    """

    apim: Any
    emulator: Any
    spec: Any
    env_file: Path


def find_example_spec(given: str | Path | None = None) -> Path | None:
    """Finds the production example spec the demo deploys.

    Args:
        given: A spec file to use instead; returned as is.

    Returns:
        ``given``, else ``examples/production.yaml`` in the working directory or in the source
        tree this package runs from, else ``None`` (the demo then builds a spec in code).

    Example:
        >>> find_example_spec("my-gateway.yaml")
        PosixPath('my-gateway.yaml')
    """
    if given is not None:
        return Path(given)
    for base in (Path.cwd(), Path(__file__).resolve().parent.parent):
        candidate = base / _EXAMPLE
        if candidate.is_file():
            return candidate
    return None


class _Printer:
    """Plain terminal output: numbered step headings and indented detail lines."""

    def __init__(self, out: TextIO, total: int) -> None:
        self.out = out
        self.total = total
        self.number = 0
        self.last_event = ""

    def line(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def heading(self, title: str) -> None:
        self.number += 1
        self.line()
        self.line(f"[{self.number}/{self.total}] {title}")

    def detail(self, text: str, indent: int = 6) -> None:
        pad = " " * indent
        for row in str(text).splitlines():
            self.line(pad + row)

    def event(self, event: ProgressEvent) -> None:
        # The results list each object applied and each verify check; show the rest as it
        # happens, without repeating a line the rollout watch reports twice in a row.
        if event.step == "verify" or (event.step == "apply" and "objects" not in event.message):
            return
        text = str(event)
        if text == self.last_event:
            return
        self.last_event = text
        self.detail(f"... {text}")


class _ServingPodCounter:
    """Counts serving pods of one gateway at every pod change in the emulator's store.

    A pod serves when it is Ready, not terminating, and the token its container started with
    is one API Management accepts (asked of the fake, as the configuration endpoint would).
    """

    def __init__(self, apim: Any, emulator: Any, namespace: str, instance: str) -> None:
        self.apim = apim
        self.emulator = emulator
        self.namespace = namespace
        self.instance = instance
        self.lock = threading.Lock()
        self.minimum: int | None = None
        self.pods_seen: set[str] = set()
        self._unsubscribe = emulator.store.subscribe(self._on_change)

    def _token_accepted(self, pod_name: str) -> bool:
        try:
            environment = self.emulator.controllers.pod_environment(self.namespace, pod_name)
        except Exception:  # not started yet, or gone: not serving
            return False
        value = environment.get("config.service.auth")
        return bool(value) and self.apim.validate_token(value).status == "valid"

    def serving(self) -> int:
        from apim_selfhosted.testing.kube.resources import by_key

        pods, _ = self.emulator.store.list(by_key("pods"), self.namespace)
        count = 0
        for pod in pods:
            meta = pod.get("metadata") or {}
            if (meta.get("labels") or {}).get("app.kubernetes.io/instance") != self.instance:
                continue
            with self.lock:
                self.pods_seen.add(meta.get("name", ""))
            if meta.get("deletionTimestamp"):
                continue
            conditions = (pod.get("status") or {}).get("conditions") or []
            ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
            if ready and self._token_accepted(meta.get("name", "")):
                count += 1
        return count

    def _on_change(self, event_type: str, rt: Any, obj: Mapping[str, Any]) -> None:
        if getattr(rt, "plural", None) != "pods":
            return
        if (obj.get("metadata") or {}).get("namespace") != self.namespace:
            return
        value = self.serving()
        with self.lock:
            self.minimum = value if self.minimum is None else min(self.minimum, value)

    def close(self) -> None:
        self._unsubscribe()


def _load_spec(path: Path | None) -> tuple[DeploymentSpec, str]:
    from apim_selfhosted.models import DeploymentSpec, Gateway
    from apim_selfhosted.profile import ProductionProfile

    if path is not None:
        spec = DeploymentSpec.from_file(path)
        source = str(path)
    else:
        base = DeploymentSpec(
            gateway=Gateway(
                subscription_id="00000000-0000-0000-0000-000000000000",
                resource_group="rg-apim-prod",
                service_name="contoso-apim",
                name="edge-gw-westeurope",
            ),
            namespace="apim-gateway",
        )
        spec = ProductionProfile().apply(base)
        source = "a built-in spec with the production profile applied"
    # The emulator starts empty: let the deploy create the namespace too.
    return _changed(spec, create_namespace=True), source


def _changed(spec: DeploymentSpec, **fields: Any) -> DeploymentSpec:
    """A copy of ``spec`` with ``fields`` replaced, validated as a user's spec file would be.

    ``model_copy(update=...)`` skips validation, so a demo change could pass unchecked.
    """
    from apim_selfhosted.models import DeploymentSpec

    return DeploymentSpec.from_dict({**spec.to_dict(), **fields}, source="demo")


def _wait_for_interrupt(stand_ins: StandIns) -> None:
    """Waits for Ctrl-C (SIGINT) or SIGTERM; both end the wait cleanly."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        stop.wait()
        return

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(1.0):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_demo(
    *,
    spec_path: str | Path | None = None,
    keep_running: bool = False,
    out: TextIO | None = None,
    ready_delay: float = 0.05,
    rollout_timeout: float = 4.0,
    wait: Callable[[StandIns], None] | None = None,
) -> DemoResult:
    """Runs the demo against in-process stand-ins and prints its progress.

    Args:
        spec_path: The spec to deploy (default: ``examples/production.yaml``, see
            :func:`find_example_spec`). Its gateway ids are created in the fake API
            Management; its namespace is created in the emulator.
        keep_running: After the summary, leave both stand-ins up, print the kubeconfig and the
            environment settings to use them, and wait until ``wait`` returns (default: until
            Ctrl-C).
        out: Where to print (default: standard output).
        ready_delay: Seconds the emulator's pods take to become Ready.
        rollout_timeout: Seconds the broken deploy waits for its rollout before giving up.
        wait: With ``keep_running``: called with the :class:`StandIns` while they are up; the
            demo stops them when it returns (default: wait for Ctrl-C).

    Returns:
        The :class:`DemoResult` (``result.ok``: every step ended as expected).

    Raises:
        SpecError: ``spec_path`` is not a valid spec, or the ``testing`` extra is missing.

    Example:
        >>> run_demo(out=io.StringIO()).ok  # doctest: +SKIP
        True
    """
    out = out or sys.stdout
    try:
        from apim_selfhosted.testing import FakeApim, KubeEmulator
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise SpecError(
            "the demo needs the stand-ins of the 'testing' extra: "
            "pip install 'apim-selfhosted[testing]'",
            problems=[("testing", "install apim-selfhosted[testing]")],
        ) from exc
    from apim_selfhosted.kube import KubernetesApplier
    from apim_selfhosted.management import ManagementClient

    started = time.monotonic()
    spec, source = _load_spec(find_example_spec(spec_path))
    printer = _Printer(out, total=13)
    steps: list[DemoStep] = []
    printer.line("apim-selfhosted demo: deploy, verify and rotate a self-hosted gateway")
    printer.line("against local stand-ins of Azure API Management and Kubernetes.")
    printer.line("Everything runs in this process; no cloud account, no cluster, no network.")

    with ExitStack() as stack:
        step_started = time.monotonic()
        printer.heading("Start the stand-ins")
        apim = stack.enter_context(FakeApim())
        emulator = stack.enter_context(KubeEmulator(ready_delay=ready_delay))
        ids = spec.gateway
        apim.add_service(ids.subscription_id, ids.resource_group, ids.service_name)
        printer.detail(f"FakeApim (ARM + Entra ID):      {apim.url}")
        printer.detail(f"KubeEmulator (Kubernetes {emulator.kube_version}):  {emulator.url}")
        printer.detail(
            f"API Management service:         {ids.service_name} in {ids.resource_group}"
        )
        management = stack.enter_context(
            ManagementClient(
                apim.credential(),
                base_url=apim.url,
                connection_verify=str(apim.ca_path),
                clock=apim.now,
                retry_backoff_factor=0.01,
                retry_backoff_max=0.05,
            )
        )
        kube = stack.enter_context(KubernetesApplier.from_kubeconfig(str(emulator.kubeconfig_path)))
        steps.append(
            DemoStep(
                title="start FakeApim and KubeEmulator",
                ok=True,
                outcome="listening on 127.0.0.1",
                seconds=time.monotonic() - step_started,
            )
        )

        flow = _Flow(printer, steps, spec, source, apim, emulator, management, kube)
        flow.run(rollout_timeout=rollout_timeout)

        result = DemoResult(
            steps=tuple(steps), elapsed_seconds=round(time.monotonic() - started, 2)
        )
        printer.line()
        printer.line("=" * _WIDTH)
        printer.line(str(result))
        printer.line("=" * _WIDTH)
        if keep_running:
            env_file = _print_connection(printer, spec, apim, emulator, stack)
            (wait or _wait_for_interrupt)(
                StandIns(apim=apim, emulator=emulator, spec=spec, env_file=env_file)
            )
            printer.line("stopping the stand-ins")
    return result


class _Flow:
    """The demo's steps after the stand-ins are up (one method per step)."""

    def __init__(
        self,
        printer: _Printer,
        steps: list[DemoStep],
        spec: DeploymentSpec,
        source: str,
        apim: Any,
        emulator: Any,
        management: Any,
        kube: Any,
    ) -> None:
        self.p = printer
        self.steps = steps
        self.spec = spec
        self.source = source
        self.apim = apim
        self.emulator = emulator
        self.management = management
        self.kube = kube

    def counter(self) -> _ServingPodCounter:
        return _ServingPodCounter(
            self.apim, self.emulator, self.spec.namespace, self.spec.base_name
        )

    def record(self, title: str, ok: bool, outcome: str, started: float) -> None:
        self.steps.append(
            DemoStep(title=title, ok=ok, outcome=outcome, seconds=time.monotonic() - started)
        )

    def run(self, *, rollout_timeout: float) -> None:
        for step in (
            self.create_gateway,
            self.lint,
            self.plan,
            self.deploy,
            lambda: self.verify("verify the deployment", expect="ok"),
            self.fast_forward,
            lambda: self.verify("verify again", expect="warning"),
            self.rotate,
            lambda: self.verify("verify after the rotation", expect="ok"),
        ):
            step()
        self.break_it(rollout_timeout=rollout_timeout)

    def guarded(self, title: str, started: float, run: Callable[[], None]) -> None:
        try:
            run()
        except ApimSelfhostedError as exc:
            self.p.detail(f"unexpected error: {type(exc).__name__}: {exc}")
            self.record(title, False, f"{type(exc).__name__}", started)

    def create_gateway(self) -> None:
        title = "create the gateway in API Management"
        started = time.monotonic()
        self.p.heading(f"Create gateway '{self.spec.gateway.name}' in API Management")

        def run() -> None:
            result = self.management.ensure_gateway(
                self.spec.gateway,
                location=LOCATION,
                description="Self-hosted gateway of the apim-selfhosted demo",
            )
            self.p.detail(str(result))
            endpoint = self.management.config_endpoint(self.spec.gateway)
            self.p.detail(f"configuration endpoint: {endpoint}")
            self.record(title, result.gateway is not None, result.action, started)

        self.guarded(title, started, run)

    def lint(self) -> None:
        from apim_selfhosted.profile import lint

        title = "lint against the production profile"
        started = time.monotonic()
        self.p.heading("Lint the spec against the production profile")
        self.p.detail(f"spec: {self.source}")
        findings = lint(self.spec)
        for finding in findings:
            self.p.detail(str(finding))
        counts = {s: sum(f.severity == s for f in findings) for s in ("error", "warning", "info")}
        summary = (
            f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info(s)"
        )
        self.p.detail(summary)
        self.record(title, counts["error"] == 0, summary, started)

    def plan(self) -> None:
        from apim_selfhosted.steps import deploy

        title = "show the plan (dry run + diff)"
        started = time.monotonic()
        self.p.heading("Show what a deploy would change (dry run, diff)")

        def run() -> None:
            result = deploy(
                self.spec,
                management=self.management,
                kube=self.kube,
                dry_run=True,
                diff=True,
                location=LOCATION,
                now=self.apim.now(),
            )
            plan = result.plan
            if plan is None:
                self.record(title, False, "no plan", started)
                return
            self.p.detail(str(plan))
            outcome = f"{plan.count('create')} to create, {plan.count('update')} to update"
            self.record(title, result.dry_run and plan.changed, outcome, started)

        self.guarded(title, started, run)

    def deploy(self) -> None:
        from apim_selfhosted.steps import deploy

        title = "deploy"
        started = time.monotonic()
        self.p.heading(f"Deploy {self.spec.replicas} replicas to namespace '{self.spec.namespace}'")

        def run() -> None:
            result = deploy(
                self.spec,
                management=self.management,
                kube=self.kube,
                timeout=60,
                now=self.apim.now(),
                on_event=self.p.event,
            )
            self.p.detail(str(result))
            rollout = result.rollout
            outcome = (
                f"{len(result.applied)} objects, rollout {rollout.outcome if rollout else '?'}"
            )
            self.record(title, result.ok and result.token_issued, outcome, started)

        self.guarded(title, started, run)

    def verify(self, title: str, *, expect: str) -> None:
        from apim_selfhosted.steps import verify

        started = time.monotonic()
        now = self.apim.now()
        self.p.heading(f"{title[0].upper()}{title[1:]} (as of {now:%Y-%m-%d %H:%M} UTC)")

        def run() -> None:
            report = verify(self.spec, kube=self.kube, management=self.management, now=now)
            self.p.detail(str(report))
            outcome = f"{report.status} ({len(report.checks)} checks)"
            if report.warnings:
                outcome += ": " + ", ".join(c.name for c in report.warnings)
            self.record(title, report.status == expect, outcome, started)

        self.guarded(title, started, run)

    def fast_forward(self) -> None:
        title = "fast-forward the clock"
        started = time.monotonic()
        self.p.heading(f"Fast-forward API Management's clock by {FAST_FORWARD.days} days")
        before = self.apim.now()
        after = self.apim.advance(FAST_FORWARD)
        self.p.detail(f"{before:%Y-%m-%d %H:%M} UTC -> {after:%Y-%m-%d %H:%M} UTC")
        self.p.detail("the gateway token (valid 29 days) now has about 6 days left,")
        self.p.detail("inside the production profile's 7-day rotation horizon")
        self.record(title, after > before, f"+{FAST_FORWARD.days} days", started)

    def rotate(self) -> None:
        from apim_selfhosted.rotation import rotate

        title = "rotate the token (zero downtime)"
        started = time.monotonic()
        self.p.heading("Rotate the token with zero downtime")
        counter = self.counter()
        before = counter.serving()

        def run() -> None:
            try:
                result = rotate(
                    self.spec,
                    management=self.management,
                    kube=self.kube,
                    now=self.apim.now(),
                    timeout=60,
                    on_event=self.p.event,
                )
            finally:
                counter.close()
            self.p.detail(str(result))
            minimum = counter.minimum if counter.minimum is not None else before
            self.p.detail(
                f"serving pods (Ready, with a token API Management accepts) during the "
                f"rotation: never fewer than {minimum} of {before} ({len(counter.pods_seen)} "
                "pods seen)"
            )
            ok = result.outcome == "rotated" and result.ok and minimum >= before >= 1
            self.record(title, ok, f"{result.outcome}, never < {minimum} serving pods", started)

        self.guarded(title, started, run)

    def break_it(self, *, rollout_timeout: float) -> None:
        from apim_selfhosted.steps import deploy, verify

        title = "deploy refuses a spec with lint errors"
        started = time.monotonic()
        self.p.heading("Break it on purpose (1): a spec that fails the production profile")
        bad = _changed(self.spec, replicas=1)
        self.p.detail("changed replicas 3 -> 1 and deployed:")
        try:
            deploy(
                bad,
                management=self.management,
                kube=self.kube,
                location=LOCATION,
                now=self.apim.now(),
            )
        except SpecError as exc:
            self.p.detail(f"refused before anything was written: {exc}")
            self.record(title, True, "refused (SpecError)", started)
        else:
            self.p.detail("the deploy was NOT refused")
            self.record(title, False, "not refused", started)

        title = "deploy a never-ready image, roll back"
        started = time.monotonic()
        broken = _changed(
            self.spec, image={**self.spec.to_dict().get("image", {}), "tag": BROKEN_TAG}
        )
        self.p.heading("Break it on purpose (2): upgrade to an image whose pods never become ready")
        self.emulator.script_pods(image=broken.image.reference, never_ready=True)
        self.p.detail(f"image {broken.image.reference}: the emulator keeps its pods not Ready")
        counter = self.counter()
        before = counter.serving()

        def run() -> None:
            try:
                result = deploy(
                    broken,
                    management=self.management,
                    kube=self.kube,
                    timeout=rollout_timeout,
                    location=LOCATION,
                    diff=True,
                    now=self.apim.now(),
                    on_event=self.p.event,
                )
            finally:
                counter.close()
            if result.plan is not None:
                self.p.detail("the change it tried:")
                self.p.detail(str(result.plan), indent=8)
            self.p.detail(str(result))
            minimum = counter.minimum if counter.minimum is not None else counter.serving()
            self.p.detail(f"serving pods while it failed: never fewer than {minimum} of {before}")
            report = verify(
                self.spec, kube=self.kube, management=self.management, now=self.apim.now()
            )
            live = self.kube.get("apps/v1", "Deployment", self.spec.base_name, self.spec.namespace)
            running = live["spec"]["template"]["spec"]["containers"][0]["image"] if live else "?"
            self.p.detail(f"after the rollback the Deployment runs {running}")
            self.p.detail("verify with the last good spec, right after the rollback:")
            self.p.detail(str(report))
            serving = all(report.check(name).status == "ok" for name in ("rollout", "pods"))
            ok = (
                not result.ok
                and result.rolled_back
                and minimum >= before >= 1
                and serving
                and running == self.spec.image.reference
            )
            reason = result.rollout.outcome if result.rollout else "no rollout"
            self.record(title, ok, f"failed ({reason}), rolled back", started)

        self.guarded(title, started, run)
        self.redeploy()

    def redeploy(self) -> None:
        from apim_selfhosted.steps import deploy

        title = "re-deploy the last good spec"
        started = time.monotonic()
        self.p.heading("Re-deploy the last good spec")

        def run() -> None:
            result = deploy(
                self.spec,
                management=self.management,
                kube=self.kube,
                timeout=60,
                location=LOCATION,
                now=self.apim.now(),
                on_event=self.p.event,
            )
            self.p.detail(str(result))
            status = result.verify.status if result.verify is not None else "not verified"
            self.record(title, result.ok and status == "ok", f"verify {status}", started)

        self.guarded(title, started, run)


def _print_connection(
    printer: _Printer, spec: DeploymentSpec, apim: Any, emulator: Any, stack: ExitStack
) -> Path:
    """Writes the settings to reach the stand-ins to a private file and explains them."""
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="apim-demo-")))
    env_file = folder / "demo.env"
    spec_file = folder / "spec.yaml"
    spec.to_file(spec_file)
    principal = apim.principal
    settings = {
        "KUBECONFIG": str(emulator.kubeconfig_path),
        "AZURE_TENANT_ID": principal.tenant_id,
        "AZURE_CLIENT_ID": principal.client_id,
        "AZURE_CLIENT_SECRET": principal.client_secret.get_secret_value(),
        "AZURE_AUTHORITY_HOST": apim.authority,
        "APIM_ARM_ENDPOINT": apim.url,
        "APIM_CA_FILE": str(apim.ca_path),
        "REQUESTS_CA_BUNDLE": str(apim.ca_path),
        "APIM_DEMO_SPEC": str(spec_file),
    }
    fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.writelines(f"export {key}='{value}'\n" for key, value in settings.items())
    shown = {k: v for k, v in settings.items() if k != "AZURE_CLIENT_SECRET"}
    p = printer
    p.line()
    p.line("The stand-ins keep running until you press Ctrl-C.")
    p.line()
    p.line(f"kubeconfig:  {emulator.kubeconfig_path}")
    p.line(f"environment: {env_file}  (mode 0600; holds the fake principal's client secret)")
    for key, value in shown.items():
        p.line(f"  {key}={value}")
    p.line("  AZURE_CLIENT_SECRET=<in the file>")
    p.line()
    p.line("Poke at the cluster with kubectl:")
    p.line(f"  export KUBECONFIG={emulator.kubeconfig_path}")
    p.line(f"  kubectl get deployments,pods,services,secrets -n {spec.namespace}")
    p.line(f"  kubectl rollout history deployment/{spec.base_name} -n {spec.namespace}")
    p.line()
    p.line("Or with the CLI and from a script, in another shell:")
    p.line(f"  . {env_file}")
    p.line(
        "  apim-selfhosted verify $APIM_DEMO_SPEC "
        "--arm-endpoint $APIM_ARM_ENDPOINT --ca-file $APIM_CA_FILE"
    )
    for row in _SCRIPT.splitlines():
        p.line("  " + row)
    p.line()
    p.line("Press Ctrl-C to stop.")
    return env_file


_SCRIPT = """\
python - <<'EOF'
import os
from azure.identity import ClientSecretCredential
from apim_selfhosted import DeploymentSpec, KubernetesApplier, ManagementClient, verify
env = os.environ
cred = ClientSecretCredential(env["AZURE_TENANT_ID"], env["AZURE_CLIENT_ID"],
    env["AZURE_CLIENT_SECRET"], authority=env["AZURE_AUTHORITY_HOST"],
    connection_verify=env["APIM_CA_FILE"], disable_instance_discovery=True)
spec = DeploymentSpec.from_file(env["APIM_DEMO_SPEC"])
with ManagementClient(cred, base_url=env["APIM_ARM_ENDPOINT"],
                      connection_verify=env["APIM_CA_FILE"]) as apim, \\
     KubernetesApplier.from_kubeconfig() as kube:
    print(apim.get_gateway(spec.gateway))
    print(verify(spec, kube=kube, management=apim))
EOF"""
