"""The pure core (models, render, profile) imports neither Azure nor Kubernetes code."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module", ["apim_selfhosted.models", "apim_selfhosted.rendering", "apim_selfhosted.profile"]
)
def test_pure_modules_stay_light(module: str) -> None:
    code = (
        f"import sys, {module};"
        "heavy = [m for m in sys.modules if m.startswith(('kubernetes', 'azure'))];"
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
