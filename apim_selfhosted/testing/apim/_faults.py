"""Fault injection rules for :class:`~apim_selfhosted.testing.FakeApim`.

A rule says what goes wrong (``kind``), for which operation (``None``: every ARM operation) and
how often: for the next ``times`` matching calls, at a ``rate`` (a probability per call), or
both (the first ``times`` matching calls, each with probability ``rate``).

Example:
    >>> rule = FaultRule(kind="throttle", operation="Gateway_GenerateToken", times=2)
    >>> rule.matches("Gateway_GenerateToken"), rule.matches("Gateway_Get")
    (True, False)
"""

from __future__ import annotations

import random
import threading
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FaultKind = Literal[
    "latency",
    "throttle",
    "server_error",
    "unavailable",
    "drop",
    "unauthorized",
    "forbidden",
]
"""What an injected fault does.

* ``latency``: waits ``delay`` seconds, then serves the request normally.
* ``throttle``: 429 ``TooManyRequests`` with a ``Retry-After`` header.
* ``server_error``: 500 ``InternalServerError``.
* ``unavailable``: 503 ``ServiceUnavailable`` (with ``Retry-After`` if ``retry_after`` is set).
* ``drop``: closes the connection without answering.
* ``unauthorized``: 401 ``InvalidAuthenticationToken``.
* ``forbidden``: 403 ``AuthorizationFailed`` naming the operation's action.
"""

#: Pseudo operation names for the Entra ID endpoints (usable in ``FaultRule.operation``).
ENTRA_OPERATIONS = ("Entra_Token", "Entra_OpenIdConfiguration", "Entra_InstanceDiscovery")


class FaultRule(BaseModel):
    """One fault injection rule.

    Args:
        kind: What goes wrong (see :data:`FaultKind`).
        operation: The operation id it applies to (``Gateway_GenerateToken``,
            ``Gateway_ListKeys``, ``ApiManagementService_Get``, ``Entra_Token`` ...); ``None``
            applies it to every ARM operation (not to the Entra ID endpoints).
        times: How many matching calls it affects; ``None`` for no limit.
        rate: Probability (0-1) that a matching call is affected; ``None`` means always.
        delay: For ``latency``: seconds to wait before answering.
        retry_after: For ``throttle`` and ``unavailable``: the ``Retry-After`` header in seconds.

    Example:
        >>> FaultRule(kind="latency", delay=0.01, rate=0.5, times=None).times is None
        True
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: FaultKind
    operation: str | None = None
    times: int | None = Field(default=1, ge=1)
    rate: float | None = Field(default=None, ge=0.0, le=1.0)
    delay: float = Field(default=0.0, ge=0.0, le=60.0)
    retry_after: int | None = Field(default=None, ge=0)

    def matches(self, operation: str | None) -> bool:
        """Whether this rule applies to ``operation``.

        Args:
            operation: The operation id of the request (``None`` for an unknown route).

        Returns:
            ``True`` if the rule is for this operation, or for every ARM operation and this is one.

        Example:
            >>> FaultRule(kind="drop").matches("Entra_Token")
            False
        """
        if self.operation is None:
            return operation is not None and operation not in ENTRA_OPERATIONS
        return operation is not None and operation.lower() == self.operation.lower()


class Fault:
    """A fault rule installed in a running fake, with its counters.

    Returned by :meth:`FakeApim.inject_fault`; call :meth:`remove` to take it out early.

    Example:
        >>> f = Fault(FaultRule(kind="server_error", times=1), seed=1)
        >>> f.take("Gateway_Get"), f.take("Gateway_Get"), f.hits, f.remaining
        (True, False, 1, 0)
    """

    def __init__(self, rule: FaultRule, *, seed: int | None = None) -> None:
        self.rule = rule
        self.hits = 0
        self.removed = False
        self._seen = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    @property
    def remaining(self) -> int | None:
        """How many more calls it may affect (``None``: unlimited)."""
        if self.rule.times is None:
            return None
        with self._lock:
            return 0 if self.removed else max(0, self.rule.times - self._seen)

    def take(self, operation: str | None) -> bool:
        """Decides whether this call is affected, and counts it.

        Args:
            operation: The operation id of the current request.

        Returns:
            ``True`` if the fault applies to this call.

        Example:
            >>> Fault(FaultRule(kind="drop", times=None, rate=0.0)).take("Gateway_Get")
            False
        """
        if not self.rule.matches(operation):
            return False
        with self._lock:
            if self.removed:
                return False
            if self.rule.times is not None and self._seen >= self.rule.times:
                return False
            self._seen += 1
            if self.rule.rate is not None and self._random.random() >= self.rule.rate:
                return False
            self.hits += 1
            return True

    def remove(self) -> None:
        """Stops this fault from affecting further calls.

        Example:
            >>> f = Fault(FaultRule(kind="drop"))
            >>> f.remove(); f.take("Gateway_Get")
            False
        """
        with self._lock:
            self.removed = True

    def __repr__(self) -> str:
        return (
            f"Fault(kind={self.rule.kind!r}, operation={self.rule.operation!r}, "
            f"hits={self.hits}, remaining={self.remaining!r})"
        )
