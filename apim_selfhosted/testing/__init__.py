"""Local stand-ins for Azure API Management and Kubernetes, for tests, the demo and pipelines.

* ``FakeApim``: an HTTPS server that behaves like the ARM endpoints for APIM gateways and like
  Entra ID's token endpoint.
* ``KubeEmulator``: an HTTP Kubernetes API server that the ``kubernetes`` client and
  ``kubectl`` accept.

These need the ``testing`` extra: ``pip install 'apim-selfhosted[testing]'``.
The library itself never imports this package.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "FakeApim": "apim_selfhosted.testing.apim",
    "KubeEmulator": "apim_selfhosted.testing.kube.emulator",
    "KubeUser": "apim_selfhosted.testing.kube.emulator",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'apim_selfhosted.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
