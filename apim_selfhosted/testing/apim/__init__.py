"""``FakeApim``: an HTTPS fake of ARM (API Management gateways and services) and Entra ID.

See :class:`~apim_selfhosted.testing.apim._server.FakeApim` for the handle and
``docs/authentication.md`` for the roles it checks.

Example:
    >>> from apim_selfhosted.testing.apim import FakeApim, ROTATOR_ACTIONS
    >>> len(ROTATOR_ACTIONS)
    2
"""

from __future__ import annotations

from apim_selfhosted.testing.apim._faults import Fault, FaultKind, FaultRule
from apim_selfhosted.testing.apim._server import (
    API_VERSION,
    ROTATOR_ACTIONS,
    FakeApim,
    RecordedRequest,
)
from apim_selfhosted.testing.apim._state import FakePrincipal, TokenCheck

__all__ = [
    "API_VERSION",
    "ROTATOR_ACTIONS",
    "FakeApim",
    "FakePrincipal",
    "Fault",
    "FaultKind",
    "FaultRule",
    "RecordedRequest",
    "TokenCheck",
]
