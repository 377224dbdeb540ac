"""Chart values -> spec -> render gives what the chart's templates give, object by object.

The expected manifests in ``tests/fixtures/helm/*.chart.yaml`` were written by hand from reading
chart 1.15.1's templates (no Helm binary here). Both sides are reduced to what the objects *do*
(``_essence``): which settings the gateway gets, which Secret value it reads, the container,
pod, Services and budget, with Kubernetes' defaults filled in and references resolved, so object
names and tool labels drop out. Every remaining difference must be listed in ``EXPECTED`` with the
report entry that tells the user about it: a difference the report does not mention fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from _manifest_essence import essence

from apim_selfhosted.helm import spec_from_helm_values
from apim_selfhosted.rendering import render

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "helm"

EXAMPLES = {
    # name: (release, namespace)
    "token": ("edge", "apim"),
    "workload-identity": ("wi", "apim"),
    "entra-app": ("entra", "apim"),
    "production": ("gw-prod", "apim-prod"),
}


def _load(name: str, suffix: str) -> Any:
    text = (FIXTURES / f"{name}.{suffix}.yaml").read_text()
    return list(yaml.safe_load_all(text)) if suffix == "chart" else yaml.safe_load(text)


# Differences between the chart and the library that remain after reduction, per example:
# essence key -> (report path that must explain it, the library's value, the chart's value).
EXPECTED: dict[str, dict[str, tuple[str, Any, Any]]] = {
    "token": {
        "other spread": ("highAvailability", ["kubernetes.io/hostname"], []),
    },
    "workload-identity": {
        "other spread": ("highAvailability", ["kubernetes.io/hostname"], []),
        "settings": (
            "gateway.auth.type",
            {"config.service.auth.azureAd.clientId": "00000000-0000-0000-0000-000000000000"},
            {},
        ),
    },
    "entra-app": {
        "other spread": ("highAvailability", ["kubernetes.io/hostname"], []),
    },
    "production": {
        "other spread": ("highAvailability", ["kubernetes.io/hostname"], []),
        "services": (
            "service.annotations",
            {},
            {"service.beta.kubernetes.io/azure-load-balancer-internal": "true"},
        ),
    },
}


def _dict_difference(
    ours: dict[str, Any], theirs: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    only_ours = {k: v for k, v in ours.items() if theirs.get(k) != v}
    only_theirs = {k: v for k, v in theirs.items() if ours.get(k) != v}
    return only_ours, only_theirs


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_values_to_spec_renders_what_the_chart_renders(example: str) -> None:
    release, namespace = EXAMPLES[example]
    values = _load(example, "values")
    spec, report = spec_from_helm_values(
        values,
        release_name=release,
        namespace=namespace,
        subscription_id="00000000-0000-0000-0000-000000000000",
        resource_group="rg-apim",
    )
    assert report.ok, str(report)
    ours = essence(render(spec, report.token))
    theirs = essence(_load(example, "chart"))
    expected = EXPECTED[example]
    for key in sorted(set(ours) | set(theirs)):
        if key not in expected:
            assert ours[key] == theirs[key], f"{example}: {key} differs"
            continue
        path, our_part, their_part = expected[key]
        assert report.by_path(path), f"{example}: the report does not explain {key} ({path})"
        if key == "settings":
            assert _dict_difference(ours[key], theirs[key]) == (our_part, their_part)
        elif key == "services":
            assert ours[key]["live"] == theirs[key]["live"]
            ann = _dict_difference(
                ours[key]["discovery"]["annotations"], theirs[key]["discovery"]["annotations"]
            )
            assert ann == (our_part, their_part)
        elif key == "security":
            assert ours[key]["pod"] == theirs[key]["pod"]
            assert _dict_difference(ours[key]["container"], theirs[key]["container"]) == (
                our_part,
                their_part,
            )
        else:
            assert (ours[key], theirs[key]) == (our_part, their_part)


def test_the_comparison_notices_a_changed_value() -> None:
    """The reduction keeps what matters: a changed chart value shows up as a difference."""
    release, namespace = EXAMPLES["production"]
    values = _load("production", "values")
    values["observability"]["statsD"]["sampling"] = 0.25
    values["resources"]["limits"]["memory"] = "2Gi"
    spec, report = spec_from_helm_values(
        values, release_name=release, namespace=namespace, subscription_id="s", resource_group="r"
    )
    ours = essence(render(spec, report.token))
    theirs = essence(_load("production", "chart"))
    assert ours["settings"]["telemetry.metrics.local.statsd.sampling"] == "0.25"
    assert theirs["settings"]["telemetry.metrics.local.statsd.sampling"] == "0.5"
    assert ours["resources"] != theirs["resources"]


def test_the_token_from_values_is_the_secret_the_gateway_reads() -> None:
    spec, report = spec_from_helm_values(
        _load("token", "values"), release_name="edge", namespace="apim"
    )
    assert report.token is not None
    assert report.token.gateway_id == "edge-gw"
    assert spec.gateway.name == "edge-gw"
    secret_text = "ZmFrZS1zaWduYXR1cmU="
    assert secret_text not in repr(spec) + str(report) + repr(report) + str(spec.to_dict())
