"""Pins the public surface of the package root (as httpx does)."""

from __future__ import annotations

import subprocess
import sys

import apim_selfhosted


def test_all_is_sorted_and_matches_the_lazy_exports() -> None:
    assert apim_selfhosted.__all__ == sorted(apim_selfhosted.__all__)
    assert set(apim_selfhosted.__all__) == {*apim_selfhosted._EXPORTS, "__version__"}


def test_every_exported_name_resolves_and_is_documented() -> None:
    for name in apim_selfhosted.__all__:
        value = getattr(apim_selfhosted, name)
        if name != "__version__":
            assert value.__doc__, f"{name} has no docstring"


def test_import_is_light() -> None:
    code = (
        "import sys, apim_selfhosted;"
        "heavy = [m for m in sys.modules if m.startswith(('kubernetes', 'azure'))];"
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


def test_exported_functions_are_not_shadowed_by_submodules() -> None:
    # A submodule named like an exported function would replace it on the package once imported
    # (Python binds the submodule as a package attribute), so no module may share such a name.
    code = (
        "import importlib, pkgutil, inspect, apim_selfhosted as a;"
        "mods = pkgutil.walk_packages(a.__path__, 'apim_selfhosted.');"
        "[importlib.import_module(m.name) for m in mods if '.testing' not in m.name];"
        "bad = [n for n in a.__all__ if inspect.ismodule(getattr(a, n))];"
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
