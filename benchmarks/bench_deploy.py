"""Benchmark: one gateway deploy on the KubeEmulator, ``deploy()`` versus the portal's kubectl way.

For each way it prints the Kubernetes API requests made, the ARM requests made, the wall time,
and the time from the last gateway pod turning Ready to the tool returning. Both ways deploy the
same rendered manifests into a fresh, pre-created namespace:

* ``deploy()``: ensure the gateway in APIM, read the configuration endpoint, issue a token,
  server-side apply (one GET + one PATCH per object), watch the rollout, prune, verify.
* the portal's way: ``kubectl create secret generic <gw>-token --from-literal=value=...``,
  ``kubectl apply -f gateway.yaml`` and ``kubectl rollout status deployment/<gw>`` (the token
  is copied from the portal by hand: no ARM call counted, but no verification either).
  kubectl runs once with an empty discovery cache (a fresh machine or CI job) and once warm.

A watcher with its own user records when each pod turns Ready; its requests are not counted.

Run: ``.venv/bin/python benchmarks/bench_deploy.py [--replicas N] [--ready-delay SECONDS]``
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from apim_selfhosted import (
    DeploymentSpec,
    KubernetesApplier,
    ManagementClient,
    ProgressEvent,
    deploy,
    render,
    to_yaml,
)
from apim_selfhosted.testing import FakeApim
from apim_selfhosted.testing.kube.emulator import KubeEmulator

SUBSCRIPTION = "00000000-0000-0000-0000-0000000000be"
KUBECTL = str(Path(sys.executable).with_name("kubectl"))
OBSERVER = "bench-observer"


@dataclass
class Figures:
    way: str
    kube_requests: int
    arm_requests: int
    wall: float
    ready_to_return: float | None
    ready_to_rollout_done: float | None = None
    notes: str = ""


class ReadyWatcher:
    """Records, per namespace, when the last gateway pod turned Ready (its own user)."""

    def __init__(self, emulator: KubeEmulator) -> None:
        from kubernetes import client, watch

        emulator.add_user(
            OBSERVER, rules=[{"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]}]
        )
        self._api = client.CoreV1Api(emulator.api_client(user=OBSERVER))
        self._watch = watch.Watch()
        self.last_ready: dict[str, float] = {}
        self._ready: set[str] = set()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._observe()
        except Exception:
            if not self._stopped:  # the emulator closing the stream at the end is expected
                raise

    def _observe(self) -> None:
        for event in self._watch.stream(self._api.list_pod_for_all_namespaces, timeout_seconds=600):
            pod = event["object"]
            conditions = pod.status.conditions or [] if pod.status else []
            ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
            key = f"{pod.metadata.namespace}/{pod.metadata.name}"
            if ready and key not in self._ready:
                self._ready.add(key)
                self.last_ready[pod.metadata.namespace] = time.monotonic()

    def stop(self) -> None:
        self._stopped = True
        self._watch.stop()


def _spec(n: int, replicas: int) -> DeploymentSpec:
    return DeploymentSpec.model_validate(
        {
            "gateway": {
                "subscription_id": SUBSCRIPTION,
                "resource_group": "rg",
                "service_name": "contoso",
                "name": f"bench{n}",
            },
            "namespace": f"bench-{n}",
            "replicas": replicas,
            "image": {"tag": "2.11.1"},
        }
    )


def _counted(emulator: KubeEmulator) -> int:
    return sum(1 for r in emulator.requests if r.user != OBSERVER)


def _precreate(kube: KubernetesApplier, namespace: str) -> None:
    kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}])


def library_way(
    apim: FakeApim, emulator: KubeEmulator, watcher: ReadyWatcher, replicas: int, n: int
) -> Figures:
    spec = _spec(n, replicas)
    with (
        KubernetesApplier.from_kubeconfig(str(emulator.kubeconfig_path)) as kube,
        ManagementClient(
            apim.credential(), base_url=apim.url, connection_verify=str(apim.ca_path)
        ) as management,
    ):
        _precreate(kube, spec.namespace)
        rollout_done: list[float] = []

        def on_event(event: ProgressEvent) -> None:
            if event.step == "rollout" and "successfully rolled out" in event.message:
                rollout_done.append(time.monotonic())

        emulator.reset_requests()
        apim.reset_requests()
        start = time.monotonic()
        result = deploy(
            spec,
            management=management,
            kube=kube,
            allow_lint_errors=True,
            timeout=120,
            on_event=on_event,
        )
        end = time.monotonic()
    assert result.ok, str(result)
    ready = watcher.last_ready.get(spec.namespace)
    return Figures(
        way="deploy()",
        kube_requests=_counted(emulator),
        arm_requests=apim.request_count(arm_only=True),
        wall=end - start,
        ready_to_return=None if ready is None else end - ready,
        ready_to_rollout_done=(
            None if ready is None or not rollout_done else rollout_done[-1] - ready
        ),
        notes="gateway ensured, token issued, rollout watched, pruned, verified "
        f"({len(result.verify.checks) if result.verify else 0} checks)",
    )


def kubectl_way(
    apim: FakeApim,
    emulator: KubeEmulator,
    watcher: ReadyWatcher,
    replicas: int,
    n: int,
    cache_dir: Path,
    label: str,
) -> Figures:
    spec = _spec(n, replicas)
    # The portal's user creates the gateway and copies its token by hand (not counted).
    apim.add_gateway(SUBSCRIPTION, "rg", "contoso", spec.gateway.name)
    value = f"GatewayKey {apim.issue_token(spec.gateway)}"
    manifests = render(spec)  # no token: reads Secret <gw>-token, key value, like the portal
    workdir = Path(tempfile.mkdtemp(prefix="bench-kubectl-"))
    yaml_path = workdir / "gateway.yaml"
    yaml_path.write_text(to_yaml(manifests))
    with KubernetesApplier.from_kubeconfig(str(emulator.kubeconfig_path)) as kube:
        _precreate(kube, spec.namespace)
    base = [KUBECTL, "--kubeconfig", str(emulator.kubeconfig_path), "--cache-dir", str(cache_dir)]
    commands = [
        [
            *base,
            "create",
            "secret",
            "generic",
            spec.untokened_secret_name,
            f"--from-literal=value={value}",
            "--type=Opaque",
            "-n",
            spec.namespace,
        ],
        [*base, "apply", "-f", str(yaml_path), "-n", spec.namespace],
        [
            *base,
            "rollout",
            "status",
            f"deployment/{spec.base_name}",
            "-n",
            spec.namespace,
            "--timeout=120s",
        ],
    ]
    emulator.reset_requests()
    start = time.monotonic()
    notes = "token copied by hand; no gateway check, no verification"
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0 and "create" in command and "codec" in done.stderr:
            # The emulator does not take kubectl's protobuf bodies yet: make the same Secret
            # with kubectl on the client side and apply it (one request more than the portal).
            made = subprocess.run(
                [*command, "--dry-run=client", "-o", "yaml"],
                capture_output=True,
                text=True,
                check=True,
            )
            done = subprocess.run(
                [*base, "apply", "-f", "-"],
                input=made.stdout,
                capture_output=True,
                text=True,
                check=False,
            )
            notes += "; Secret via apply (emulator lacks protobuf)"
        if done.returncode != 0:
            raise RuntimeError(f"{command[5:7]} failed: {done.stderr.strip()}")
    end = time.monotonic()
    ready = watcher.last_ready.get(spec.namespace)
    return Figures(
        way=f"kubectl ({label})",
        kube_requests=_counted(emulator),
        arm_requests=0,
        wall=end - start,
        ready_to_return=None if ready is None else end - ready,
        notes=notes,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--ready-delay", type=float, default=0.2)
    args = parser.parse_args(argv)
    rows: list[Figures] = []
    with (
        FakeApim() as apim,
        KubeEmulator(ready_delay=args.ready_delay) as emulator,
        tempfile.TemporaryDirectory() as cold_cache,
    ):
        apim.add_service(SUBSCRIPTION, "rg", "contoso")
        watcher = ReadyWatcher(emulator)
        try:
            rows.append(library_way(apim, emulator, watcher, args.replicas, 1))
            rows.append(
                kubectl_way(apim, emulator, watcher, args.replicas, 2, Path(cold_cache), "cold")
            )
            rows.append(
                kubectl_way(apim, emulator, watcher, args.replicas, 3, Path(cold_cache), "warm")
            )
            rows.append(library_way(apim, emulator, watcher, args.replicas, 4))
        finally:
            watcher.stop()
    print(
        f"one gateway, {args.replicas} replicas, pods Ready {args.ready_delay:g} s after start "
        "(KubeEmulator), FakeApim over HTTPS"
    )
    print(
        f"{'way':<16} {'kube reqs':>9} {'ARM reqs':>8} {'wall s':>8} {'Ready->return s':>16} "
        f"{'Ready->rollout seen s':>21}"
    )
    for row in rows:
        latency = "-" if row.ready_to_return is None else f"{row.ready_to_return:.3f}"
        seen = (
            "-"
            if row.ready_to_rollout_done is None
            else f"{max(row.ready_to_rollout_done, 0.0):.3f}"
        )
        print(
            f"{row.way:<16} {row.kube_requests:>9} {row.arm_requests:>8} {row.wall:>8.3f} "
            f"{latency:>16} {seen:>21}   {row.notes}"
        )
    print(
        "Ready->return includes, for deploy(), pruning and the verification checks (3 pod logs "
        "read; ListKeys, once to record and once to check the token's key); kubectl returns as "
        "soon as rollout status is satisfied and checks nothing. "
        "Ready->rollout seen: the library's watch versus an independent observer's (0 = within "
        "the observer's own delivery delay)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
