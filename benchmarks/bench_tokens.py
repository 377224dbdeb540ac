"""Benchmark: wall time and HTTP calls for issuing gateway tokens against FakeApim.

Run: ``.venv/bin/python benchmarks/bench_tokens.py [--count N] [--threads T]``.

Three runs of ``ManagementClient.issue_token`` through the real azure-mgmt-apimanagement client
and a real ``ClientSecretCredential``, over HTTPS to a local :class:`FakeApim`:

1. sequential, cold client (includes the credential's OpenID discovery and token request);
2. the same with ``T`` threads sharing one client;
3. sequential with 10 % of the GenerateToken calls throttled (429, ``Retry-After: 0``), to show
   what retries cost in HTTP calls.

Every token is checked with ``FakeApim.validate_token``. The figures are for the local fake:
they measure the library and SDK overhead, not Azure's latency.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from apim_selfhosted import Gateway, ManagementClient
from apim_selfhosted.testing import FakeApim

SUB = "00000000-0000-0000-0000-000000000000"


def run(
    label: str,
    count: int,
    *,
    threads: int = 1,
    prepare: Callable[[FakeApim], None] | None = None,
) -> None:
    """Issues ``count`` tokens and prints wall time, latency and HTTP calls."""
    with FakeApim(seed=1) as apim:
        apim.add_service(SUB, "rg-bench", "bench")
        apim.add_gateway(SUB, "rg-bench", "bench", "gw-bench")
        gateway = Gateway(
            subscription_id=SUB, resource_group="rg-bench", service_name="bench", name="gw-bench"
        )
        if prepare is not None:
            prepare(apim)
        latencies: list[float] = []
        tokens: list[object] = []
        lock = threading.Lock()
        with ManagementClient(
            apim.credential(),
            base_url=apim.url,
            connection_verify=apim.ca_path,
            retry_backoff_factor=0.01,
        ) as client:

            def work(n: int) -> None:
                for _ in range(n):
                    start = time.perf_counter()
                    token = client.issue_token(gateway, ttl=timedelta(days=7))
                    elapsed = time.perf_counter() - start
                    with lock:
                        latencies.append(elapsed)
                        tokens.append(token)

            share = [count // threads + (1 if i < count % threads else 0) for i in range(threads)]
            workers = [threading.Thread(target=work, args=(n,)) for n in share]
            wall_start = time.perf_counter()
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            wall = time.perf_counter() - wall_start
        assert len(tokens) == count
        assert all(apim.validate_token(t).valid for t in tokens)
        arm = apim.request_count(arm_only=True)
        total = apim.request_count()
        generate = apim.request_count("Gateway_GenerateToken")
        latencies.sort()
        p95 = latencies[max(0, int(len(latencies) * 0.95) - 1)]
        print(
            f"{label:<48} {count:>5} tokens  wall {wall:7.3f} s  "
            f"{count / wall:7.1f} tokens/s  median {statistics.median(latencies) * 1000:6.1f} ms  "
            f"p95 {p95 * 1000:6.1f} ms  HTTP calls {total:>4} "
            f"(ARM {arm}, GenerateToken {generate}, Entra ID {total - arm})"
        )


def main() -> None:
    """Parses the options and runs the three scenarios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="tokens per run (default 100)")
    parser.add_argument("--threads", type=int, default=8, help="threads of run 2 (default 8)")
    args = parser.parse_args()
    run("sequential (cold client)", args.count)
    run(f"{args.threads} threads, one client", args.count, threads=args.threads)
    run(
        "sequential, 10 % throttled (429, Retry-After 0)",
        args.count,
        prepare=lambda apim: apim.inject_fault(
            "throttle",
            operation="Gateway_GenerateToken",
            times=None,
            rate=0.1,
            retry_after=0,
        ),
    )


if __name__ == "__main__":
    main()
