"""Runs the examples in every module's docstrings (doctest), so they stay true to the code."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import apim_selfhosted


def _modules() -> list[str]:
    names = [apim_selfhosted.__name__]
    for info in pkgutil.walk_packages(apim_selfhosted.__path__, prefix="apim_selfhosted."):
        names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
