"""Benchmarks of the KubeEmulator: server-side apply throughput, watch latency, a fleet rollout.

Run: ``.venv/bin/python benchmarks/bench_kube_emulator.py [--applies N] [--fleet N]``

Prints:

* server-side apply requests/second (creates, changing re-applies and no-op re-applies) with
  the official ``kubernetes`` client over HTTPS;
* the latency from the last pod of a Deployment turning Ready (seen in process by a store
  subscription) to an HTTP watcher seeing the Deployment available;
* a fleet of N gateway-like Deployments applied at once: time until all are available and the
  CPU seconds the process spent.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from typing import Any

from kubernetes import client, watch
from kubernetes.dynamic import DynamicClient

from apim_selfhosted.testing import KubeEmulator
from apim_selfhosted.testing.kube.resources import by_key


def deployment(
    name: str, *, replicas: int = 1, image: str = "gateway:2.9", note: str = ""
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}, "annotations": {"note": note}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "gateway",
                            "image": image,
                            "ports": [{"containerPort": 8080}, {"containerPort": 8081}],
                            "env": [{"name": "config.service.endpoint", "value": "x.example"}],
                            "readinessProbe": {
                                "httpGet": {"path": "/status-0123456789abcdef", "port": 8080}
                            },
                            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
                        }
                    ]
                },
            },
        },
    }


def bench_apply(kube: KubeEmulator, count: int) -> None:
    dyn = DynamicClient(kube.api_client())
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")

    def run(label: str, make: Any) -> None:
        start = time.perf_counter()
        for i in range(count):
            body = make(i)
            deployments.server_side_apply(
                body=body,
                name=body["metadata"]["name"],
                namespace="default",
                field_manager="bench",
                force_conflicts=True,
            )
        elapsed = time.perf_counter() - start
        print(f"  {label:<28} {count / elapsed:8.1f} req/s  ({elapsed * 1000 / count:.2f} ms each)")

    print(f"server-side apply, {count} requests each:")
    run("create (apply new)", lambda i: deployment(f"a{i}"))
    run("re-apply with a change", lambda i: deployment(f"a{i}", note="changed"))
    run("re-apply unchanged (no-op)", lambda i: deployment(f"a{i}", note="changed"))


def bench_ready_to_watch(kube: KubeEmulator, rounds: int) -> None:
    core_ready: dict[str, float] = {}
    pod_rt = by_key("pods")

    def on_change(event: str, rt: Any, obj: dict[str, Any]) -> None:
        if rt is not pod_rt:
            return
        conditions = (obj.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            app = (obj["metadata"].get("labels") or {}).get("app", "")
            core_ready.setdefault(app, time.perf_counter())

    unsubscribe = kube.store.subscribe(on_change)
    apps = client.AppsV1Api(kube.api_client())
    latencies = []
    try:
        for i in range(rounds):
            name = f"lat{i}"
            rv = apps.list_namespaced_deployment("default").metadata.resource_version
            seen: list[float] = []
            w = watch.Watch()

            def consume(
                name: str = name, rv: str = rv, seen: list[float] = seen, w: watch.Watch = w
            ) -> None:
                for ev in w.stream(
                    apps.list_namespaced_deployment,
                    "default",
                    resource_version=rv,
                    timeout_seconds=30,
                    field_selector=f"metadata.name={name}",
                ):
                    status = ev["object"].status
                    if status and status.available_replicas == 1:
                        seen.append(time.perf_counter())
                        w.stop()

            thread = threading.Thread(target=consume)
            thread.start()
            time.sleep(0.05)  # let the watch connect (benchmark only)
            apps.create_namespaced_deployment("default", deployment(name))
            thread.join(30)
            if seen and name in core_ready:
                latencies.append((seen[0] - core_ready[name]) * 1000)
    finally:
        unsubscribe()
    if latencies:
        print(
            f"pod Ready -> watcher sees Deployment available ({len(latencies)} rounds): "
            f"median {statistics.median(latencies):.1f} ms, max {max(latencies):.1f} ms"
        )


def bench_fleet(kube: KubeEmulator, size: int) -> None:
    dyn = DynamicClient(kube.api_client())
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    client.CoreV1Api(kube.api_client()).create_namespace({"metadata": {"name": "fleet"}})
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(size):
        body = deployment(f"gw{i}", replicas=2)
        deployments.server_side_apply(
            body=body, name=f"gw{i}", namespace="fleet", field_manager="bench"
        )
    applied = time.perf_counter() - wall0
    apps = client.AppsV1Api(kube.api_client())
    while True:
        items = apps.list_namespaced_deployment("fleet").items
        if all((d.status and d.status.available_replicas) == 2 for d in items):
            break
        time.sleep(0.05)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    print(
        f"fleet of {size} Deployments x 2 pods: applied in {applied:.2f} s, all available after "
        f"{wall:.2f} s, {cpu:.2f} CPU s in this process"
    )
    time.sleep(1.0)
    idle0 = time.process_time()
    time.sleep(2.0)
    print(f"  idle CPU with the fleet running: {(time.process_time() - idle0) / 2.0 * 100:.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--applies", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--fleet", type=int, default=100)
    args = parser.parse_args()
    with KubeEmulator(ready_delay=0.02, record_requests=False) as kube:
        bench_apply(kube, args.applies)
        bench_ready_to_watch(kube, args.rounds)
        bench_fleet(kube, args.fleet)


if __name__ == "__main__":
    main()
