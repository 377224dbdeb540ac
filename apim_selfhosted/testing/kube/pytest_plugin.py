"""pytest fixtures for the Kubernetes emulator.

Register the plugin in a ``conftest.py``::

    pytest_plugins = ["apim_selfhosted.testing.kube.pytest_plugin"]

and ask for the fixtures:

* ``kube_emulator``: a running :class:`~apim_selfhosted.testing.KubeEmulator` for one test,
  with controllers and a 20 ms ready delay.
* ``kube_emulator_module``: one emulator shared by the tests of a module (faster; tests must
  use their own namespaces).

Example:
    >>> callable(kube_emulator) and callable(kube_emulator_module)
    True
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from apim_selfhosted.testing.kube.emulator import KubeEmulator


@pytest.fixture
def kube_emulator() -> Iterator[KubeEmulator]:
    """A running KubeEmulator for one test (stopped afterwards)."""
    with KubeEmulator(ready_delay=0.02) as kube:
        yield kube


@pytest.fixture(scope="module")
def kube_emulator_module() -> Iterator[KubeEmulator]:
    """A running KubeEmulator shared by the tests of one module."""
    with KubeEmulator(ready_delay=0.02) as kube:
        yield kube
