"""Adopted specs render manifests that validate strictly, on the oldest and newest Kubernetes."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from apim_selfhosted.adoption import spec_from_manifests
from apim_selfhosted.helm import spec_from_helm_values
from apim_selfhosted.models import DeploymentSpec, Token
from apim_selfhosted.rendering import render

FIXTURES = Path(__file__).resolve().parent / "fixtures"
IDS = {"subscription_id": "sub-1", "resource_group": "rg-1"}
SCHEMAS = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
NEWEST = max(
    (
        p.name.removeprefix("v").removesuffix("-local-strict")
        for p in SCHEMAS.glob("v1.*-local-strict")
    ),
    key=lambda v: tuple(int(x) for x in v.split(".")),
)


def _adopted() -> list[tuple[str, DeploymentSpec, Token | None]]:
    out = []
    for path in sorted((FIXTURES / "helm").glob("*.values.yaml")):
        spec, report = spec_from_helm_values(
            yaml.safe_load(path.read_text()), release_name="r1", namespace="apim", **IDS
        )
        out.append((path.name, spec, report.token))
    for path in sorted((FIXTURES / "adopt").glob("*.yaml")):
        spec, _ = spec_from_manifests(path.read_text(), **IDS)
        out.append((path.name, spec, None))
    return out


@pytest.mark.parametrize("version", ["1.29.0", NEWEST])
@pytest.mark.parametrize(
    ("label", "spec", "token"), _adopted(), ids=lambda x: x if isinstance(x, str) else ""
)
def test_adopted_specs_render_valid_manifests(
    label: str, spec: DeploymentSpec, token: Token | None, version: str
) -> None:
    for manifest in render(spec, token):
        kubernetes_validate.validate(manifest, version, strict=True)
