"""The portal-equivalent example renders everything the portal's YAML carries, field by field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from apim_selfhosted import DeploymentSpec
from apim_selfhosted.rendering import render

ROOT = Path(__file__).resolve().parent.parent
PORTAL = list(
    yaml.safe_load_all((ROOT / "tests" / "fixtures" / "portal_generated_v2.yaml").read_text())
)

# Where the library differs from the portal on purpose, and why.
LABEL_MAPS = {
    # The portal labels and selects with `app: <name>`; the library uses the app.kubernetes.io
    # labels (checked separately below: the selectors select the same pods).
    "metadata.labels",
    "spec.selector",
    "spec.selector.matchLabels",
    "spec.template.metadata.labels",
}
DIFFERENT_VALUES = {
    # The library names itself as the deployment mechanism (issue: identify this library).
    "data.runtime.deployment.artifact.source",
    "data.runtime.deployment.mechanism",
    # Free text describing the headless Service.
    "metadata.annotations.azure.apim.kubernetes.io/notes",
}


def _compare(expected: Any, actual: Any, path: str, problems: list[str]) -> None:
    if path in LABEL_MAPS:
        return
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            problems.append(f"{path}: expected a mapping, got {actual!r}")
            return
        for key, value in expected.items():
            sub = f"{path}.{key}" if path else key
            if key not in actual:
                problems.append(f"{sub}: missing")
                continue
            _compare(value, actual[key], sub, problems)
    elif isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            problems.append(f"{path}: expected {len(expected)} items, got {actual!r}")
            return
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            _compare(e, a, f"{path}[{i}]", problems)
    elif path in DIFFERENT_VALUES:
        return
    elif path == "data.config.service.endpoint":
        # The portal writes the bare host; the library writes the https URL (both accepted).
        if actual != f"https://{expected}":
            problems.append(f"{path}: {actual!r} is not https://{expected}")
    elif expected != actual:
        problems.append(f"{path}: expected {expected!r}, got {actual!r}")


def test_portal_equivalent_example_carries_every_portal_field() -> None:
    spec = DeploymentSpec.from_file(ROOT / "examples" / "portal-equivalent.yaml")
    rendered = {(m["kind"], m["metadata"]["name"]): m for m in render(spec)}
    problems: list[str] = []
    for expected in PORTAL:
        key = (expected["kind"], expected["metadata"]["name"])
        assert key in rendered, f"{key} not rendered; have {sorted(rendered)}"
        _compare(expected, rendered[key], "", problems)
    assert problems == []


def test_portal_selectors_become_stable_library_selectors() -> None:
    spec = DeploymentSpec.from_file(ROOT / "examples" / "portal-equivalent.yaml")
    manifests = render(spec)
    deployment = next(m for m in manifests if m["kind"] == "Deployment")
    selector = deployment["spec"]["selector"]["matchLabels"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    for service in (m for m in manifests if m["kind"] == "Service"):
        assert service["spec"]["selector"] == selector
    # every object the portal labels is labelled by the library
    for expected in PORTAL:
        got = next(m for m in manifests if m["metadata"]["name"] == expected["metadata"]["name"])
        assert got["metadata"]["labels"]["app.kubernetes.io/instance"] == "edge-gw"


def test_the_comparison_catches_a_difference() -> None:
    problems: list[str] = []
    _compare({"spec": {"replicas": 1, "x": [1]}}, {"spec": {"replicas": 2}}, "", problems)
    assert problems == ["spec.replicas: expected 1, got 2", "spec.x: missing"]
