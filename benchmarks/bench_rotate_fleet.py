"""Fleet rotation benchmark: 100 gateways in 10 namespaces, FakeApim with 50 ms latency.

The stand-ins (KubeEmulator with its controllers, FakeApim) run in a child process, so the peak
memory measured here (``tracemalloc`` in this process) is the library's own: ``rotate_many``
with its clients, threads and results. For 1, 4 and 16 workers it prints the wall time, the
requests per gateway (Kubernetes API and ARM, counted by the servers) and the peak memory.

Each round forces a rotation of every gateway (a real rolling update of 2 replicas with
``maxUnavailable: 0``), with a distinct token validity so that every round issues new tokens.

Run: ``.venv/bin/python benchmarks/bench_rotate_fleet.py [--gateways 100] [--namespaces 10]
[--latency 0.05] [--workers 1 4 16]``
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
import tracemalloc
from datetime import timedelta
from multiprocessing.connection import Connection
from typing import Any

SUBSCRIPTION = "00000000-0000-0000-0000-00000000f1ee"
RESOURCE_GROUP = "rg-fleet"
SERVICE = "contoso"


def _spec_data(i: int, namespaces: int) -> dict[str, Any]:
    return {
        "gateway": {
            "subscription_id": SUBSCRIPTION,
            "resource_group": RESOURCE_GROUP,
            "service_name": SERVICE,
            "name": f"fleet-gw{i:03d}",
        },
        "namespace": f"fleet-{i % namespaces:02d}",
        "create_namespace": True,
        "replicas": 2,
        "strategy": {"max_unavailable": 0, "max_surge": 1},
        "image": {"tag": "2.11.1"},
    }


def _stand_ins(conn: Connection, gateways: int, namespaces: int, latency: float) -> None:
    """Child process: runs FakeApim and the KubeEmulator, deploys the fleet, counts requests."""
    from apim_selfhosted import DeploymentSpec, KubernetesApplier, Token
    from apim_selfhosted.rendering import render
    from apim_selfhosted.testing import FakeApim
    from apim_selfhosted.testing.kube.emulator import KubeEmulator

    with FakeApim() as apim, KubeEmulator(ready_delay=0.02, record_requests=True) as emulator:
        apim.add_service(SUBSCRIPTION, RESOURCE_GROUP, SERVICE)
        principal = apim.add_principal()
        with KubernetesApplier.from_kubeconfig(str(emulator.kubeconfig_path)) as kube:
            for i in range(gateways):
                spec = DeploymentSpec.model_validate(_spec_data(i, namespaces))
                apim.add_gateway(SUBSCRIPTION, RESOURCE_GROUP, SERVICE, spec.gateway.name)
                token = Token.parse(apim.issue_token(spec.gateway.resource_id))
                kube.apply(render(spec, token))
            for i in range(gateways):
                spec = DeploymentSpec.model_validate(_spec_data(i, namespaces))
                assert kube.wait_for_rollout(spec.base_name, spec.namespace, timeout=120).ok
        emulator.wait_idle(timeout=30)
        apim.inject_fault("latency", delay=latency, times=None)
        conn.send(
            {
                "kubeconfig": str(emulator.kubeconfig_path),
                "url": apim.url,
                "ca": str(apim.ca_path),
                "authority": apim.authority,
                "tenant": principal.tenant_id,
                "client_id": principal.client_id,
                "secret": principal.client_secret.get_secret_value(),
            }
        )
        while True:
            command = conn.recv()
            if command == "reset":
                emulator.wait_idle(timeout=30)
                emulator.reset_requests()
                apim.reset_requests()
                conn.send(None)
            elif command == "counts":
                conn.send((len(emulator.requests), apim.request_count(arm_only=True)))
            else:
                break


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateways", type=int, default=100)
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.05, help="FakeApim latency, seconds")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 16])
    args = parser.parse_args()

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(
        target=_stand_ins, args=(child, args.gateways, args.namespaces, args.latency)
    )
    started = time.perf_counter()
    proc.start()
    info = parent.recv()
    setup = time.perf_counter() - started

    from azure.identity import ClientSecretCredential

    from apim_selfhosted import DeploymentSpec, KubernetesApplier, ManagementClient, rotate_many

    specs = [
        DeploymentSpec.model_validate(_spec_data(i, args.namespaces)) for i in range(args.gateways)
    ]
    print(
        f"fleet: {args.gateways} gateways x 2 replicas in {args.namespaces} namespaces, "
        f"FakeApim latency {args.latency * 1000:.0f} ms per ARM call "
        f"(set-up {setup:.1f} s in a child process)"
    )
    print(
        f"{'workers':>7}  {'wall s':>7}  {'per gw s':>8}  {'k8s req/gw':>10}  "
        f"{'ARM req/gw':>10}  {'peak MiB':>8}  outcomes"
    )
    # Warm up outside the measurement: the SDKs are imported lazily on first use.
    warm_credential = ClientSecretCredential(
        info["tenant"],
        info["client_id"],
        info["secret"],
        authority=info["authority"],
        connection_verify=info["ca"],
        disable_instance_discovery=True,
    )
    with (
        ManagementClient(
            warm_credential, base_url=info["url"], connection_verify=info["ca"]
        ) as management,
        KubernetesApplier.from_kubeconfig(info["kubeconfig"]) as kube,
    ):
        management.get_gateway(specs[0].gateway)
        kube.get("apps/v1", "Deployment", specs[0].base_name, specs[0].namespace)
        rotate_many(specs[:1], management=management, kube=kube, timeout=120)  # not needed
    try:
        for round_no, workers in enumerate(args.workers):
            parent.send("reset")
            parent.recv()
            credential = ClientSecretCredential(
                info["tenant"],
                info["client_id"],
                info["secret"],
                authority=info["authority"],
                connection_verify=info["ca"],
                disable_instance_discovery=True,
            )
            tracemalloc.start()
            began = time.perf_counter()
            with (
                ManagementClient(
                    credential, base_url=info["url"], connection_verify=info["ca"]
                ) as management,
                KubernetesApplier.from_kubeconfig(info["kubeconfig"]) as kube,
            ):
                results = rotate_many(
                    specs,
                    management=management,
                    kube=kube,
                    max_workers=workers,
                    force=True,
                    token_ttl=timedelta(days=29 - round_no),
                    timeout=120,
                )
            wall = time.perf_counter() - began
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            parent.send("counts")
            kube_requests, arm_requests = parent.recv()
            outcomes: dict[str, int] = {}
            for result in results:
                outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
            n = len(specs)
            print(
                f"{workers:>7}  {wall:>7.1f}  {wall / n:>8.2f}  {kube_requests / n:>10.1f}  "
                f"{arm_requests / n:>10.1f}  {peak / 2**20:>8.1f}  "
                + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
            )
            failed = [r for r in results if not r.ok]
            for result in failed[:3]:
                print(f"    {result}")
    finally:
        parent.send("stop")
        proc.join(60)


if __name__ == "__main__":
    main()
