"""``KubernetesApplier.wait_for_rollout`` against the emulator's deployment controller.

Watch-based waiting: success, ProgressDeadlineExceeded, pods that cannot start, timeout, a watch
dropped mid-rollout (resumed from the last resourceVersion) and one resumed from a version the
server no longer keeps (410 Gone: started over).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from apim_selfhosted import (
    DeploymentSpec,
    Gateway,
    KubernetesApplier,
    KubernetesError,
    ProgressEvent,
    Token,
)
from apim_selfhosted.rendering import render
from apim_selfhosted.testing.kube.emulator import KubeEmulator

TOKEN = Token.parse("GatewayKey gw1&203001010000&c2lnbmF0dXJl")
IMAGE = "mcr.microsoft.com/azure-api-management/gateway"


@pytest.fixture(scope="module")
def emulator() -> Iterator[KubeEmulator]:
    with KubeEmulator(ready_delay=0.02, history=20) as emu:
        yield emu


@pytest.fixture
def kube(emulator: KubeEmulator) -> Iterator[KubernetesApplier]:
    with KubernetesApplier.from_kubeconfig(str(emulator.kubeconfig_path)) as applier:
        yield applier


_n = iter(range(1, 1000))


def _manifests(tag: str = "2.11.1", **deployment_spec: Any) -> tuple[str, list[dict[str, Any]]]:
    namespace = f"roll-{next(_n)}"
    spec = DeploymentSpec.model_validate(
        {
            "gateway": Gateway(
                subscription_id="s1", resource_group="rg", service_name="contoso", name="gw1"
            ),
            "namespace": namespace,
            "create_namespace": True,
            "replicas": 2,
            "image": {"tag": tag},
        }
    )
    manifests = render(spec, TOKEN)
    for manifest in manifests:
        if manifest["kind"] == "Deployment":
            manifest["spec"].update(deployment_spec)
    return namespace, manifests


def _with_tag(manifests: list[dict[str, Any]], tag: str) -> list[dict[str, Any]]:
    out = copy.deepcopy(manifests)
    for manifest in out:
        if manifest["kind"] == "Deployment":
            container = manifest["spec"]["template"]["spec"]["containers"][0]
            container["image"] = f"{IMAGE}:{tag}"
    return out


def test_waits_until_complete_and_reports_progress(kube: KubernetesApplier) -> None:
    namespace, manifests = _manifests()
    kube.apply(manifests)
    events: list[ProgressEvent] = []
    status = kube.wait_for_rollout("gw1", namespace, timeout=20, on_event=events.append)
    assert status.ok
    assert (status.updated_replicas, status.available_replicas, status.replicas) == (2, 2, 2)
    assert status.observed_generation == status.generation
    assert events
    assert events[-1].data["available"] == 2


def test_progress_deadline_exceeded(emulator: KubeEmulator, kube: KubernetesApplier) -> None:
    namespace, manifests = _manifests(progressDeadlineSeconds=1)
    kube.apply(manifests)
    assert kube.wait_for_rollout("gw1", namespace, timeout=20).ok
    emulator.script_pods(image=f"{IMAGE}:2.11.80", never_ready=True)
    kube.apply(_with_tag(manifests, "2.11.80"))
    status = kube.wait_for_rollout("gw1", namespace, timeout=20)
    assert status.outcome == "progress-deadline-exceeded"
    assert "progressing" in status.message.lower() or "deadline" in status.message.lower()
    assert not status.ok


def test_crash_loop_is_named(emulator: KubeEmulator, kube: KubernetesApplier) -> None:
    namespace, manifests = _manifests()
    kube.apply(manifests)
    assert kube.wait_for_rollout("gw1", namespace, timeout=20).ok
    emulator.script_pods(image=f"{IMAGE}:2.11.81", crash_loop=True)
    kube.apply(_with_tag(manifests, "2.11.81"))
    status = kube.wait_for_rollout("gw1", namespace, timeout=20)
    assert status.outcome == "pods-failing"
    assert status.pod_problems
    assert status.pod_problems[0].reason == "CrashLoopBackOff"
    assert status.pod_problems[0].pod in status.message


def test_missing_secret_is_a_config_error(kube: KubernetesApplier) -> None:
    namespace, manifests = _manifests()
    without_secret = [m for m in manifests if m["kind"] != "Secret"]
    kube.apply(without_secret)
    status = kube.wait_for_rollout("gw1", namespace, timeout=20)
    assert status.outcome == "pods-failing"
    assert {p.reason for p in status.pod_problems} == {"CreateContainerConfigError"}


def test_timeout(emulator: KubeEmulator, kube: KubernetesApplier) -> None:
    namespace, manifests = _manifests(tag="2.11.82")
    emulator.script_pods(image=f"{IMAGE}:2.11.82", never_ready=True)
    kube.apply(manifests)
    status = kube.wait_for_rollout("gw1", namespace, timeout=0.5)
    assert status.outcome == "timeout"
    assert status.ready_replicas == 0


def test_missing_deployment_raises(kube: KubernetesApplier) -> None:
    with pytest.raises(KubernetesError):
        kube.wait_for_rollout("nope", "default", timeout=0.5)


def test_dropped_watch_resumes(emulator: KubeEmulator, kube: KubernetesApplier) -> None:
    namespace, manifests = _manifests(tag="2.11.83")
    emulator.script_pods(image=f"{IMAGE}:2.11.83", ready_after=1.0)
    kube.apply(manifests)
    dropped: list[int] = []
    # The pods take a second to get ready; drop the watches while the rollout is under way.
    timer = threading.Timer(0.4, lambda: dropped.append(emulator.drop_watches()))
    timer.start()
    try:
        status = kube.wait_for_rollout("gw1", namespace, timeout=20)
    finally:
        timer.cancel()
    assert dropped
    assert dropped[0] >= 1
    assert status.ok
    assert status.watch_restarts >= 1


def test_expired_resource_version_starts_over(
    emulator: KubeEmulator, kube: KubernetesApplier
) -> None:
    namespace, manifests = _manifests(tag="2.11.84")
    emulator.script_pods(image=f"{IMAGE}:2.11.84", ready_after=1.5)
    kube.apply(manifests)
    churned: list[bool] = []

    def churn_then_drop() -> None:
        # More changes than the emulator keeps (history=20), then drop the watches: resuming
        # from the last seen resourceVersion gets 410 Gone and the watcher starts over.
        kube.apply(
            [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": f"churn-{i}", "namespace": namespace},
                    "data": {"i": str(i)},
                }
                for i in range(30)
            ]
        )
        emulator.drop_watches()
        churned.append(True)

    timer = threading.Timer(0.2, churn_then_drop)
    timer.start()
    try:
        status = kube.wait_for_rollout("gw1", namespace, timeout=20)
    finally:
        timer.join()
    assert churned
    assert status.ok
    assert status.watch_restarts >= 1
    # initial watch, the resume that got 410 Gone, and the fresh watch that started over
    watches = [
        r
        for r in emulator.requests
        if r.verb == "watch" and r.path == f"/apis/apps/v1/namespaces/{namespace}/deployments"
    ]
    assert len(watches) >= 3
