"""Benchmark: import time of the package and time to render and lint 1,000 specs.

Run: ``.venv/bin/python benchmarks/bench_render.py [--count N]``. Each import is timed in a fresh
interpreter (best of 5); rendering includes ``to_yaml`` so the figure covers what ``render``
on the command line does.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

IMPORT_SNIPPETS = {
    "import apim_selfhosted": "import apim_selfhosted",
    "+ models, render, profile (first use)": (
        "import apim_selfhosted; from apim_selfhosted import render, lint, DeploymentSpec"
    ),
}


def time_import(code: str, *, repeat: int = 5) -> float:
    """Best wall time, in seconds, of running ``code`` in a fresh interpreter (minus startup)."""
    probe = "import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"
    best = float("inf")
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", probe.format(code=code)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        best = min(best, float(out))
    return best


def specs(count: int) -> list[object]:
    """``count`` different production-like specs."""
    from apim_selfhosted import DeploymentSpec

    base = {
        "subscription_id": "00000000-0000-0000-0000-000000000000",
        "resource_group": "rg-apim",
        "service_name": "contoso-apim",
    }
    out = []
    for i in range(count):
        out.append(
            DeploymentSpec.model_validate(
                {
                    "gateway": {**base, "name": f"gw-{i}"},
                    "namespace": f"apim-{i % 7}",
                    "replicas": 3 + i % 3,
                    "strategy": {"max_unavailable": 0, "max_surge": "25%"},
                    "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
                    "config_backup": {"enabled": i % 2 == 0},
                    "high_availability": {"enabled": True},
                    "observability": {
                        "opentelemetry": {"enabled": True, "collector_uri": "http://otel:4317"}
                    },
                    "network_policy": {} if i % 3 == 0 else None,
                }
            )
        )
    return out


def main() -> None:
    """Prints the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1000, help="specs to render and lint")
    args = parser.parse_args()

    for label, code in IMPORT_SNIPPETS.items():
        print(f"{label:<45} {time_import(code) * 1000:8.1f} ms")

    from apim_selfhosted import Token, lint, render, to_yaml

    t0 = time.perf_counter()
    batch = specs(args.count)
    t_validate = time.perf_counter() - t0

    def timed(with_yaml: bool) -> tuple[float, float, int]:
        runs = []
        manifests = 0
        for _ in range(3):
            t0 = time.perf_counter()
            manifests = 0
            for spec in batch:
                name = spec.gateway.name  # type: ignore[attr-defined]
                token = Token.parse(f"{name}&202611270418&c2lnbmF0dXJl")
                rendered = render(spec, token)  # type: ignore[arg-type]
                if with_yaml:
                    to_yaml(rendered)
                lint(spec)  # type: ignore[arg-type]
                manifests += len(rendered)
            runs.append(time.perf_counter() - t0)
        return min(runs), statistics.median(runs), manifests

    print(f"{'validate ' + str(args.count) + ' specs':<45} {t_validate * 1000:8.1f} ms")
    for with_yaml in (False, True):
        best, median, manifests = timed(with_yaml)
        label = f"render{' + to_yaml' if with_yaml else ''} + lint {args.count} specs"
        print(
            f"{label:<45} {best * 1000:8.1f} ms  (best of 3, median {median * 1000:.1f} ms; "
            f"{best / args.count * 1e6:.0f} µs per spec, {manifests} manifests)"
        )


if __name__ == "__main__":
    main()
