"""``ManagementClient``: gateway tokens, keys and gateway resources through Azure Resource Manager.

The only module of the library that imports ``azure.*`` (on first use). It wraps
``azure-mgmt-apimanagement`` (api-version 2024-05-01) and any ``azure-identity`` credential:

* ``issue_token`` calls ``Gateway_GenerateToken`` and returns a :class:`~apim_selfhosted.Token`
  whose value carries the ``GatewayKey`` prefix the container expects;
* ``list_keys`` / ``regenerate_key`` manage the gateway's two keys (returned as ``SecretStr``);
* ``get_gateway`` / ``ensure_gateway`` / ``list_gateways`` / ``delete_gateway`` manage the
  gateway resource (``ensure_gateway`` uses the ETag, so a concurrent change is not overwritten);
* ``config_endpoint`` reads the configuration endpoint from the service (custom host names and
  sovereign clouds included).

Failures become the library's errors: 401 -> :class:`~apim_selfhosted.errors.AuthenticationError`,
403 -> :class:`~apim_selfhosted.errors.AuthorizationError` naming the missing action, 404 ->
:class:`~apim_selfhosted.errors.GatewayNotFoundError`, the rest ->
:class:`~apim_selfhosted.errors.ManagementError`. Throttling (429, honouring ``Retry-After``),
5xx and dropped connections are retried with exponential backoff, within a total time budget per
call (``timeout``). No token or key value is ever logged or put in an exception.

Example:
    >>> from apim_selfhosted.management import ManagementClient, ApimService
    >>> ApimService(subscription_id="00000000-0000-0000-0000-000000000000",
    ...             resource_group="rg1", service_name="contoso").resource_id.split("/")[-1]
    'contoso'
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from apim_selfhosted.errors import (
    AuthenticationError,
    AuthorizationError,
    GatewayNotFoundError,
    ManagementError,
    SpecError,
    TokenError,
)
from apim_selfhosted.models import MAX_TOKEN_VALIDITY, AzureCloud, Gateway, KeyType, Token

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.pipeline import PipelineRequest, PipelineResponse
    from azure.mgmt.apimanagement import ApiManagementClient

logger = logging.getLogger(__name__)

__all__ = [
    "ACTIONS",
    "ApimService",
    "EnsureResult",
    "GatewayInfo",
    "GatewayKeys",
    "ManagementClient",
]

#: The shortest token lifetime ``issue_token`` accepts.
MIN_TOKEN_TTL = timedelta(minutes=1)
#: HTTP statuses that are retried (with ``Retry-After`` when the server sends one).
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

_PREFIX = "Microsoft.ApiManagement/service"
#: The Azure RBAC action each operation needs (for role definitions and error messages;
#: read-only).
ACTIONS: Mapping[str, str] = MappingProxyType(
    {
        "get_gateway": f"{_PREFIX}/gateways/read",
        "list_gateways": f"{_PREFIX}/gateways/read",
        "ensure_gateway": f"{_PREFIX}/gateways/write",
        "delete_gateway": f"{_PREFIX}/gateways/delete",
        "issue_token": f"{_PREFIX}/gateways/generateToken/action",
        "list_keys": f"{_PREFIX}/gateways/listKeys/action",
        "regenerate_key": f"{_PREFIX}/gateways/regenerateKey/action",
        "config_endpoint": f"{_PREFIX}/read",
    }
)

_FROZEN = ConfigDict(frozen=True, extra="forbid")
_ACTION_RE = re.compile(r"perform action '([^']+)'")
_SCOPE_RE = re.compile(r"over scope '([^']+)'")


class ApimService(BaseModel):
    """An API Management service: where gateways live.

    Example:
        >>> svc = ApimService(subscription_id="00000000-0000-0000-0000-000000000000",
        ...                   resource_group="rg1", service_name="contoso")
        >>> svc.gateway("gw1").name
        'gw1'
    """

    model_config = _FROZEN

    subscription_id: str = Field(description="The Azure subscription id.")
    resource_group: str = Field(description="The resource group of the service.")
    service_name: str = Field(description="The API Management service name.")
    cloud: AzureCloud = Field(default=AzureCloud.PUBLIC, description="The Azure cloud.")

    @classmethod
    def of(cls, gateway: Gateway) -> ApimService:
        """The service a gateway belongs to.

        Args:
            gateway: The gateway.

        Returns:
            Its service.

        Example:
            >>> gw = Gateway(subscription_id="s1", resource_group="rg", service_name="contoso",
            ...              name="gw1")
            >>> ApimService.of(gw).service_name
            'contoso'
        """
        return cls(
            subscription_id=gateway.subscription_id,
            resource_group=gateway.resource_group,
            service_name=gateway.service_name,
            cloud=gateway.cloud,
        )

    def gateway(self, name: str) -> Gateway:
        """A gateway of this service.

        Args:
            name: The gateway id.

        Returns:
            The :class:`~apim_selfhosted.models.Gateway`.

        Example:
            >>> ApimService(subscription_id="s1", resource_group="rg",
            ...             service_name="contoso").gateway("gw2").resource_id.endswith("/gw2")
            True
        """
        return Gateway(
            subscription_id=self.subscription_id,
            resource_group=self.resource_group,
            service_name=self.service_name,
            name=name,
            cloud=self.cloud,
        )

    @property
    def resource_id(self) -> str:
        """The ARM id of the service."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.ApiManagement/service/{self.service_name}"
        )


class GatewayInfo(BaseModel):
    """A gateway resource as ARM returned it.

    Attributes:
        gateway: The gateway it describes.
        resource_id: Its ARM id.
        description: Its description, if any.
        location: ``locationData.name``, if any.
        city: ``locationData.city``, if any.
        district: ``locationData.district``, if any.
        country_or_region: ``locationData.countryOrRegion``, if any.
        etag: The entity tag (``None`` in list results, which carry none).

    Example:
        >>> gw = Gateway(subscription_id="s1", resource_group="rg", service_name="c", name="g")
        >>> GatewayInfo(gateway=gw, resource_id=gw.resource_id, location="dc1").location
        'dc1'
    """

    model_config = _FROZEN

    gateway: Gateway
    resource_id: str
    description: str | None = None
    location: str | None = None
    city: str | None = None
    district: str | None = None
    country_or_region: str | None = None
    etag: str | None = None

    def __str__(self) -> str:
        where = f"location {self.location!r}" if self.location else "no location"
        text = f"gateway {self.gateway} ({where}"
        if self.description:
            text += f", description {self.description!r}"
        return text + ")"


class GatewayKeys(BaseModel):
    """The two keys of a gateway. They are secrets: ``repr`` and ``str`` never show them.

    Example:
        >>> gw = Gateway(subscription_id="s1", resource_group="rg", service_name="c", name="g")
        >>> keys = GatewayKeys(gateway=gw, primary=SecretStr("p"), secondary=SecretStr("s"))
        >>> keys.get("secondary").get_secret_value(), "'p'" in repr(keys)
        ('s', False)
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    gateway: Gateway
    primary: SecretStr
    secondary: SecretStr
    etag: str | None = None

    def get(self, key_type: KeyType | str) -> SecretStr:
        """The key of a type.

        Args:
            key_type: ``primary`` or ``secondary``.

        Returns:
            The key.

        Raises:
            ValueError: Unknown key type.

        Example:
            >>> gw = Gateway(subscription_id="s1", resource_group="rg", service_name="c",
            ...              name="g")
            >>> GatewayKeys(gateway=gw, primary=SecretStr("p"),
            ...             secondary=SecretStr("s")).get("primary")
            SecretStr('**********')
        """
        return self.primary if KeyType(key_type) is KeyType.PRIMARY else self.secondary

    def __str__(self) -> str:
        return f"keys of gateway {self.gateway} (primary and secondary, values hidden)"


class EnsureResult(BaseModel):
    """What :meth:`ManagementClient.ensure_gateway` did.

    Attributes:
        gateway: The gateway resource after the call.
        action: ``created``, ``updated`` or ``unchanged``.

    Example:
        >>> gw = Gateway(subscription_id="s1", resource_group="rg", service_name="c", name="g")
        >>> result = EnsureResult(
        ...     gateway=GatewayInfo(gateway=gw, resource_id=gw.resource_id, location="dc1"),
        ...     action="unchanged")
        >>> result.changed, str(result)
        (False, "unchanged: gateway c/g (location 'dc1')")
    """

    model_config = _FROZEN

    gateway: GatewayInfo
    action: Literal["created", "updated", "unchanged"]

    @property
    def changed(self) -> bool:
        """Whether the call wrote anything."""
        return self.action != "unchanged"

    def __str__(self) -> str:
        return f"{self.action}: {self.gateway}"

    def _repr_markdown_(self) -> str:
        info = self.gateway
        return (
            f"**{self.action}** gateway `{info.gateway}`\n\n"
            f"| location | description |\n|---|---|\n"
            f"| {info.location or ''} | {info.description or ''} |"
        )


def _make_retry_policy(
    *,
    timeout: float,
    retry_total: int,
    backoff_factor: float,
    backoff_max: float,
) -> Any:
    """An azure-core policy that retries 429/5xx/dropped connections within a time budget."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        ServiceRequestError,
        ServiceResponseError,
    )
    from azure.core.pipeline.policies import HTTPPolicy

    class BoundedRetryPolicy(HTTPPolicy):  # type: ignore[type-arg]
        """Retries within a total time budget: never sleeps past it, never waits forever."""

        def __init__(self) -> None:
            super().__init__()
            self.timeout = timeout
            self.retry_total = retry_total
            self.backoff_factor = backoff_factor
            self.backoff_max = backoff_max

        def _backoff(self, attempt: int) -> float:
            return float(min(self.backoff_max, self.backoff_factor * (2 ** (attempt - 1))))

        def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
            options = request.context.options
            budget = float(options.pop("apim_timeout", None) or self.timeout)
            deadline = time.monotonic() + budget
            http = request.http_request
            where = f"{http.method} {urlsplit(http.url).path}"
            attempt = 0
            while True:
                remaining = deadline - time.monotonic()
                options["connection_timeout"] = max(0.001, min(remaining, 30.0))
                options["read_timeout"] = max(0.001, remaining)
                try:
                    response: PipelineResponse[Any, Any] = self.next.send(request)
                except ClientAuthenticationError:
                    raise
                except (ServiceRequestError, ServiceResponseError) as exc:
                    attempt += 1
                    delay = self._backoff(attempt)
                    if attempt > self.retry_total or time.monotonic() + delay >= deadline:
                        raise
                    logger.debug(
                        "%s: %s, retry %d in %.2fs", where, type(exc).__name__, attempt, delay
                    )
                    time.sleep(delay)
                    continue
                status = response.http_response.status_code
                if status not in RETRY_STATUSES:
                    return response
                attempt += 1
                hinted = _retry_after(response.http_response.headers.get("Retry-After"))
                delay = self._backoff(attempt) if hinted is None else hinted
                if attempt > self.retry_total or time.monotonic() + delay >= deadline:
                    logger.debug(
                        "%s: HTTP %d, giving up after %d attempt(s)", where, status, attempt
                    )
                    return response
                logger.debug("%s: HTTP %d, retry %d in %.2fs", where, status, attempt, delay)
                time.sleep(delay)

    return BoundedRetryPolicy()


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # "-0000": UTC without a stated source (RFC 5322)
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())


class ManagementClient:
    """Issues gateway tokens and manages gateway keys and resources through ARM.

    One ``azure-mgmt-apimanagement`` client is created per subscription, on first use, so one
    ``ManagementClient`` serves gateways in many subscriptions. Use it as a context manager (or
    call :meth:`close`) to close them.

    Args:
        credential: Any ``azure-identity`` credential, e.g. ``DefaultAzureCredential()``.
        cloud: The Azure cloud (decides the ARM endpoint and the token scope).
        base_url: Another ARM-compatible endpoint (default: the cloud's ARM endpoint).
        timeout: Default total time budget of one call in seconds, retries included.
        retry_total: How many times a throttled (429), failed (5xx) or dropped call is retried.
        retry_backoff_factor: Exponential backoff base in seconds (without ``Retry-After``).
        retry_backoff_max: The longest backoff in seconds.
        clock: Returns the current aware time (for token expiries); default the system clock.
        **client_kwargs: Passed to ``ApiManagementClient``, e.g. ``connection_verify=ca_path``,
            ``transport=``, ``credential_scopes=``, ``retry_policy=`` (replaces the bounded
            retry policy).

    Raises:
        SpecError: ``timeout`` or a retry option is out of range.

    Example:
        >>> from apim_selfhosted import ManagementClient
        >>> class NoCredential:
        ...     def get_token(self, *scopes, **kwargs): raise RuntimeError("not used")
        >>> with ManagementClient(NoCredential(), cloud="china") as client:
        ...     client.base_url
        'https://management.chinacloudapi.cn'
    """

    def __init__(
        self,
        credential: TokenCredential,
        *,
        cloud: AzureCloud | str = AzureCloud.PUBLIC,
        base_url: str | None = None,
        timeout: float = 60.0,
        retry_total: int = 6,
        retry_backoff_factor: float = 0.5,
        retry_backoff_max: float = 8.0,
        clock: Callable[[], datetime] | None = None,
        **client_kwargs: Any,
    ) -> None:
        problems: list[tuple[str, str]] = []
        if not timeout > 0:
            problems.append(("timeout", f"must be greater than 0 seconds, got {timeout!r}"))
        if retry_total < 0:
            problems.append(("retry_total", f"must be 0 or more, got {retry_total!r}"))
        if retry_backoff_factor < 0 or retry_backoff_max < 0:
            problems.append(("retry_backoff_factor", "backoff values must not be negative"))
        if client_kwargs.get("logging_enable"):
            problems.append(
                (
                    "logging_enable",
                    "would make azure-core log response bodies, which carry gateway tokens "
                    "and keys; leave it off",
                )
            )
        try:
            self.cloud = AzureCloud(cloud)
        except ValueError:
            problems.append(
                ("cloud", f"must be one of {[c.value for c in AzureCloud]}, got {cloud!r}")
            )
        if problems:
            raise SpecError(
                "invalid ManagementClient options: "
                + "; ".join(f"{field}: {msg}" for field, msg in problems),
                problems=problems,
            )
        self._credential = credential
        self.base_url = (base_url or self.cloud.arm_endpoint).rstrip("/")
        self.timeout = float(timeout)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._retry_total = retry_total
        self._backoff_factor = retry_backoff_factor
        self._backoff_max = retry_backoff_max
        self._client_kwargs = dict(client_kwargs)
        self._own_retry = "retry_policy" not in client_kwargs
        self._clients: dict[str, ApiManagementClient] = {}
        self._lock = threading.Lock()
        self._closed = False

    # ----------------------------------------------------------------- lifecycle

    def __enter__(self) -> ManagementClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the SDK clients (the credential belongs to the caller and stays open).

        Example:
            >>> class NoCredential:
            ...     def get_token(self, *scopes, **kwargs): raise RuntimeError("not used")
            >>> ManagementClient(NoCredential()).close()
        """
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
            self._closed = True
        for client in clients:
            client.close()

    def __repr__(self) -> str:
        return f"ManagementClient(base_url={self.base_url!r}, cloud={self.cloud.value!r})"

    def _client(self, subscription_id: str, cloud: AzureCloud | str) -> ApiManagementClient:
        cloud = AzureCloud(cloud)
        if cloud is not self.cloud:
            raise SpecError(
                f"the gateway is in the {cloud.value!r} cloud but this client talks to "
                f"{self.cloud.value!r} ({self.base_url}); create a ManagementClient with "
                f"cloud={cloud.value!r}",
                problems=[("cloud", f"must be {self.cloud.value!r} for this client")],
            )
        with self._lock:
            if self._closed:
                raise ManagementError("the ManagementClient is closed")
            client = self._clients.get(subscription_id.lower())
            if client is None:
                from azure.mgmt.apimanagement import ApiManagementClient

                kwargs = dict(self._client_kwargs)
                kwargs.setdefault("credential_scopes", [self.cloud.credential_scope])
                kwargs.setdefault(
                    "retry_policy",
                    _make_retry_policy(
                        timeout=self.timeout,
                        retry_total=self._retry_total,
                        backoff_factor=self._backoff_factor,
                        backoff_max=self._backoff_max,
                    ),
                )
                client = ApiManagementClient(
                    self._credential, subscription_id, base_url=self.base_url, **kwargs
                )
                self._clients[subscription_id.lower()] = client
                logger.debug("created an ARM client for subscription %s", subscription_id)
            return client

    def _options(self, timeout: float | None) -> dict[str, Any]:
        if timeout is not None and not timeout > 0:
            raise SpecError(
                f"timeout must be greater than 0 seconds, got {timeout!r}",
                problems=[("timeout", "must be greater than 0 seconds")],
            )
        budget = timeout or self.timeout
        # Our bounded retry policy reads "apim_timeout"; azure-core's own RetryPolicy (when the
        # caller passed retry_policy=) understands "timeout" as the same total budget.
        return {"apim_timeout": budget} if self._own_retry else {"timeout": budget}

    def _call(
        self,
        operation: str,
        fn: Callable[[], Any],
        *,
        gateway: Gateway | None,
        service: ApimService,
        timeout: float | None,
    ) -> Any:
        from azure.core.exceptions import (
            AzureError,
            ClientAuthenticationError,
            HttpResponseError,
            ServiceRequestTimeoutError,
            ServiceResponseTimeoutError,
        )

        budget = timeout or self.timeout
        subject = str(gateway) if gateway is not None else service.service_name
        try:
            return fn()
        except ClientAuthenticationError as exc:
            status = exc.status_code
            code = exc.error.code if exc.error else None
            detail = exc.error.message if exc.error else _first_line(exc.message)
            raise AuthenticationError(
                f"{operation} for {subject}: Azure refused the credentials"
                + (f" (HTTP {status}, {code})" if status else "")
                + f": {detail}",
                system="azure",
            ) from exc
        except HttpResponseError as exc:
            raise self._http_error(operation, exc, gateway, service, budget) from exc
        except (ServiceRequestTimeoutError, ServiceResponseTimeoutError) as exc:
            raise ManagementError(
                f"{operation} for {subject}: no answer from {self.base_url} within the "
                f"{budget:g} s budget ({type(exc).__name__})",
                code="Timeout",
            ) from exc
        except AzureError as exc:
            raise ManagementError(
                f"{operation} for {subject}: could not talk to {self.base_url} "
                f"({type(exc).__name__}; retried within the {budget:g} s budget)",
            ) from exc

    def _http_error(
        self,
        operation: str,
        exc: Any,
        gateway: Gateway | None,
        service: ApimService,
        budget: float,
    ) -> Exception:
        status: int | None = exc.status_code
        code: str | None = exc.error.code if exc.error else None
        detail: str = exc.error.message if exc.error else _first_line(exc.message)
        subject = str(gateway) if gateway is not None else service.service_name
        if status == 401:
            return AuthenticationError(
                f"{operation} for {subject}: Azure refused the credentials (HTTP 401, {code}): "
                f"{detail}",
                system="azure",
            )
        if status == 403:
            action_match = _ACTION_RE.search(detail)
            scope_match = _SCOPE_RE.search(detail)
            action = action_match.group(1) if action_match else ACTIONS[operation]
            resource = (
                scope_match.group(1)
                if scope_match
                else (gateway.resource_id if gateway is not None else service.resource_id)
            )
            return AuthorizationError(
                f"{operation} for {subject}: the credential lacks the permission '{action}' "
                f"on {resource}. Grant a role with this action (see docs/authentication.md).",
                system="azure",
                permission=action,
                resource=resource,
            )
        if status == 404:
            missing = "gateway"
            if (
                gateway is None
                or code in ("SubscriptionNotFound", "ResourceGroupNotFound")
                or ("Microsoft.ApiManagement/service/" in detail and "/gateways" not in detail)
            ):
                missing = "service"
            where = (
                f"resource group {service.resource_group!r} of subscription "
                f"{service.subscription_id}"
            )
            if missing == "service":
                message = (
                    f"API Management service {service.service_name!r} not found in {where} "
                    f"({code}: {detail})"
                )
            else:
                assert gateway is not None
                message = (
                    f"gateway {gateway.name!r} not found in API Management service "
                    f"{service.service_name!r} ({where})"
                )
            return GatewayNotFoundError(message, gateway=gateway or service, missing=missing)
        if status == 412:
            return ManagementError(
                f"{operation} for {subject}: the gateway changed since it was read (ETag "
                "mismatch); nothing was overwritten. Read it again and retry.",
                status=status,
                code=code,
            )
        if status in RETRY_STATUSES:
            return ManagementError(
                f"{operation} for {subject}: HTTP {status} ({code}) persisted through the "
                f"retries allowed within the {budget:g} s budget: {detail}",
                status=status,
                code=code,
            )
        return ManagementError(
            f"{operation} for {subject}: HTTP {status} ({code}): {detail}",
            status=status,
            code=code,
        )

    # ----------------------------------------------------------------- tokens and keys

    def issue_token(
        self,
        gateway: Gateway,
        *,
        key_type: KeyType | str = KeyType.PRIMARY,
        ttl: timedelta = timedelta(days=29),
        timeout: float | None = None,
    ) -> Token:
        """Issues a gateway token (``Gateway_GenerateToken``).

        Args:
            gateway: The gateway.
            key_type: The key that signs the token: ``primary`` or ``secondary``.
            ttl: How long the token is valid: from one minute to 30 days.
            timeout: Total time budget in seconds (default: the client's).

        Returns:
            The token, value in the container form ``GatewayKey <id>&<expiry>&<sig>``; its
            expiry is read from the token and checked against the one requested.

        Raises:
            TokenError: ``ttl`` or ``key_type`` is out of range (before any call), or the
                token that came back is malformed, for another gateway or has another expiry.
            AuthenticationError: The credential was refused.
            AuthorizationError: The credential lacks
                ``Microsoft.ApiManagement/service/gateways/generateToken/action``.
            GatewayNotFoundError: The service or the gateway does not exist.
            ManagementError: Any other failure, including exhausted retries.

        Example:
            >>> class NoCredential:
            ...     def get_token(self, *scopes, **kwargs): raise RuntimeError("not used")
            >>> gw = Gateway(subscription_id="00000000-0000-0000-0000-000000000000",
            ...              resource_group="rg1", service_name="contoso", name="gw1")
            >>> ManagementClient(NoCredential()).issue_token(gw, ttl=timedelta(days=31))
            Traceback (most recent call last):
            ...
            apim_selfhosted.errors.TokenError: ttl must be between 1 minute and 30 days...
        """
        kt = _key_type(key_type)
        if not isinstance(ttl, timedelta) or not MIN_TOKEN_TTL <= ttl <= MAX_TOKEN_VALIDITY:
            raise TokenError(f"ttl must be between 1 minute and 30 days, got {ttl}")
        now = self._clock()
        if now.tzinfo is None:
            raise TokenError("the client's clock must return timezone-aware datetimes")
        expiry = now.astimezone(UTC) + ttl
        client = self._client(gateway.subscription_id, gateway.cloud)

        def call() -> Any:
            from azure.mgmt.apimanagement.models import GatewayTokenRequestContract

            return client.gateway.generate_token(
                gateway.resource_group,
                gateway.service_name,
                gateway.name,
                GatewayTokenRequestContract(key_type=kt.value, expiry=expiry),
                **self._options(timeout),
            )

        result = self._call(
            "issue_token",
            call,
            gateway=gateway,
            service=ApimService.of(gateway),
            timeout=timeout,
        )
        raw = getattr(result, "value", None)
        if not isinstance(raw, str):
            raise TokenError(f"Gateway_GenerateToken for {gateway} returned no token value")
        token = Token.parse(raw, key_type=kt, gateway=gateway, now=now)
        requested = expiry.replace(second=0, microsecond=0)
        if abs(token.expires_on - requested) > timedelta(minutes=1):
            raise TokenError(
                f"the token for {gateway} expires {token.expires_on.isoformat()}, not at the "
                f"requested {requested.isoformat()}; refusing it"
            )
        logger.info(
            "issued a %s-key token for %s, expires %s, fingerprint %s",
            kt.value,
            gateway,
            token.expires_on.isoformat(),
            token.fingerprint,
        )
        return token

    def list_keys(self, gateway: Gateway, *, timeout: float | None = None) -> GatewayKeys:
        """Reads the gateway's two keys (``Gateway_ListKeys``).

        Args:
            gateway: The gateway.
            timeout: Total time budget in seconds.

        Returns:
            The keys as ``SecretStr`` and the gateway's ETag.

        Raises:
            AuthenticationError: The credential was refused.
            AuthorizationError: The credential lacks ``.../gateways/listKeys/action``.
            GatewayNotFoundError: The service or the gateway does not exist.
            ManagementError: Any other failure.

        Example:
            >>> ManagementClient.list_keys.__name__
            'list_keys'
        """
        client = self._client(gateway.subscription_id, gateway.cloud)
        result, headers = self._call(
            "list_keys",
            lambda: client.gateway.list_keys(
                gateway.resource_group,
                gateway.service_name,
                gateway.name,
                cls=lambda _resp, body, hdrs: (body, hdrs),
                **self._options(timeout),
            ),
            gateway=gateway,
            service=ApimService.of(gateway),
            timeout=timeout,
        )
        return GatewayKeys(
            gateway=gateway,
            primary=SecretStr(result.primary or ""),
            secondary=SecretStr(result.secondary or ""),
            etag=(headers or {}).get("ETag"),
        )

    def regenerate_key(
        self, gateway: Gateway, key_type: KeyType | str, *, timeout: float | None = None
    ) -> None:
        """Regenerates one gateway key (``Gateway_RegenerateKey``).

        Every token signed with that key stops working at once; gateways still using such a
        token lose their configuration connection. Rotate to tokens of the other key first.

        Args:
            gateway: The gateway.
            key_type: ``primary`` or ``secondary``.
            timeout: Total time budget in seconds.

        Raises:
            TokenError: Unknown ``key_type`` (before any call).
            AuthenticationError: The credential was refused.
            AuthorizationError: The credential lacks ``.../gateways/regenerateKey/action``.
            GatewayNotFoundError: The service or the gateway does not exist.
            ManagementError: Any other failure.

        Example:
            >>> class NoCredential:
            ...     def get_token(self, *scopes, **kwargs): raise RuntimeError("not used")
            >>> gw = Gateway(subscription_id="s1", resource_group="rg", service_name="c",
            ...              name="g")
            >>> ManagementClient(NoCredential()).regenerate_key(gw, "tertiary")
            Traceback (most recent call last):
            ...
            apim_selfhosted.errors.TokenError: key_type must be one of ['primary', 'secondary']...
        """
        kt = _key_type(key_type)
        client = self._client(gateway.subscription_id, gateway.cloud)

        def call() -> None:
            from azure.mgmt.apimanagement.models import GatewayKeyRegenerationRequestContract

            client.gateway.regenerate_key(
                gateway.resource_group,
                gateway.service_name,
                gateway.name,
                GatewayKeyRegenerationRequestContract(key_type=kt.value),
                **self._options(timeout),
            )

        self._call(
            "regenerate_key",
            call,
            gateway=gateway,
            service=ApimService.of(gateway),
            timeout=timeout,
        )
        logger.info("regenerated the %s key of %s", kt.value, gateway)

    # ----------------------------------------------------------------- gateway resources

    def get_gateway(self, gateway: Gateway, *, timeout: float | None = None) -> GatewayInfo:
        """Reads a gateway resource (``Gateway_Get``).

        Args:
            gateway: The gateway.
            timeout: Total time budget in seconds.

        Returns:
            The resource with its ETag.

        Raises:
            AuthenticationError: The credential was refused.
            AuthorizationError: The credential lacks ``.../gateways/read``.
            GatewayNotFoundError: The service or the gateway does not exist.
            ManagementError: Any other failure.

        Example:
            >>> ManagementClient.get_gateway.__name__
            'get_gateway'
        """
        client = self._client(gateway.subscription_id, gateway.cloud)
        body, headers = self._call(
            "get_gateway",
            lambda: client.gateway.get(
                gateway.resource_group,
                gateway.service_name,
                gateway.name,
                cls=lambda _resp, body, hdrs: (body, hdrs),
                **self._options(timeout),
            ),
            gateway=gateway,
            service=ApimService.of(gateway),
            timeout=timeout,
        )
        return _info(gateway, body, (headers or {}).get("ETag"))

    def ensure_gateway(
        self,
        gateway: Gateway,
        *,
        location: str,
        description: str | None = None,
        timeout: float | None = None,
    ) -> EnsureResult:
        """Creates the gateway resource, or updates it to the given location and description.

        Idempotent: nothing is written when the gateway already matches. An update sends the
        ETag that was read (``If-Match``), so a change made by someone else in between is not
        overwritten: the call fails with HTTP 412 instead.

        Args:
            gateway: The gateway.
            location: ``locationData.name`` (1-256 characters), e.g. the cluster's name.
            description: The description (at most 1000 characters); ``None`` keeps the
                current one (and creates the gateway without one).
            timeout: Total time budget in seconds, per HTTP call.

        Returns:
            What was done and the resource afterwards.

        Raises:
            SpecError: ``location`` or ``description`` is out of range (before any call).
            AuthenticationError: The credential was refused.
            AuthorizationError: The credential lacks ``.../gateways/read`` or ``/write``.
            GatewayNotFoundError: The service does not exist (``missing == "service"``).
            ManagementError: The gateway changed concurrently (``status == 412``), or any
                other failure.

        Example:
            >>> class NoCredential:
            ...     def get_token(self, *scopes, **kwargs): raise RuntimeError("not used")
            >>> gw = Gateway(subscription_id="s1", resource_group="rg", service_name="c",
            ...              name="g")
            >>> ManagementClient(NoCredential()).ensure_gateway(gw, location="")
            Traceback (most recent call last):
            ...
            apim_selfhosted.errors.SpecError: location: must be 1 to 256 characters, got 0
        """
        problems: list[tuple[str, str]] = []
        if not isinstance(location, str) or not 1 <= len(location) <= 256:
            got = len(location) if isinstance(location, str) else type(location).__name__
            problems.append(("location", f"must be 1 to 256 characters, got {got}"))
        if description is not None and len(description) > 1000:
            problems.append(
                ("description", f"must be at most 1000 characters, got {len(description)}")
            )
        if problems:
            raise SpecError(
                "; ".join(f"{field}: {msg}" for field, msg in problems), problems=problems
            )
        try:
            current: GatewayInfo | None = self.get_gateway(gateway, timeout=timeout)
        except GatewayNotFoundError as exc:
            if exc.missing != "gateway":
                raise
            current = None
        if current is not None and (
            current.location == location
            and (description is None or (current.description or None) == description)
        ):
            logger.debug("gateway %s is up to date", gateway)
            return EnsureResult(gateway=current, action="unchanged")
        client = self._client(gateway.subscription_id, gateway.cloud)

        def call() -> Any:
            from azure.mgmt.apimanagement.models import (
                GatewayContract,
                ResourceLocationDataContract,
            )

            loc = ResourceLocationDataContract(
                name=location,
                city=current.city if current else None,
                district=current.district if current else None,
                country_or_region=current.country_or_region if current else None,
            )
            extra: dict[str, Any] = {}
            if current is not None:
                extra["if_match"] = current.etag or "*"
            return client.gateway.create_or_update(
                gateway.resource_group,
                gateway.service_name,
                gateway.name,
                GatewayContract(
                    location_data=loc,
                    description=description
                    if description is not None
                    else (current.description if current else None),
                ),
                cls=lambda _resp, body, hdrs: (body, hdrs),
                **extra,
                **self._options(timeout),
            )

        body, headers = self._call(
            "ensure_gateway",
            call,
            gateway=gateway,
            service=ApimService.of(gateway),
            timeout=timeout,
        )
        action: Literal["created", "updated"] = "created" if current is None else "updated"
        logger.info("%s gateway %s (location %r)", action, gateway, location)
        return EnsureResult(
            gateway=_info(gateway, body, (headers or {}).get("ETag")), action=action
        )

    def list_gateways(
        self, service: ApimService | Gateway, *, timeout: float | None = None
    ) -> list[GatewayInfo]:
        """Lists the gateways of a service (``Gateway_ListByService``, every page).

        Args:
            service: The service, or any gateway of it.
            timeout: Total time budget in seconds, per page.

        Returns:
            The gateways (without ETags: list results carry none).

        Raises:
            AuthenticationError: The credential was refused.
            AuthorizationError: The credential lacks ``.../gateways/read``.
            GatewayNotFoundError: The service does not exist.
            ManagementError: Any other failure.

        Example:
            >>> ManagementClient.list_gateways.__name__
            'list_gateways'
        """
        svc = ApimService.of(service) if isinstance(service, Gateway) else service
        client = self._client(svc.subscription_id, svc.cloud)

        def call() -> list[GatewayInfo]:
            items = client.gateway.list_by_service(
                svc.resource_group, svc.service_name, **self._options(timeout)
            )
            return [_info(svc.gateway(str(item.name)), item, None) for item in items if item.name]

        infos: list[GatewayInfo] = self._call(
            "list_gateways", call, gateway=None, service=svc, timeout=timeout
        )
        return infos

    def delete_gateway(
        self, gateway: Gateway, *, etag: str | None = None, timeout: float | None = None
    ) -> bool:
        """Deletes a gateway resource (``Gateway_Delete``).

        Args:
            gateway: The gateway.
            etag: Delete only if the gateway still has this ETag (default: unconditionally).
            timeout: Total time budget in seconds.

        Returns:
            ``True`` if it was deleted, ``False`` if it did not exist.

        Raises:
            AuthenticationError: The credential was refused.
            AuthorizationError: The credential lacks ``.../gateways/delete``.
            GatewayNotFoundError: The service does not exist.
            ManagementError: The ETag did not match (``status == 412``) or another failure.

        Example:
            >>> ManagementClient.delete_gateway.__name__
            'delete_gateway'
        """
        client = self._client(gateway.subscription_id, gateway.cloud)
        status = self._call(
            "delete_gateway",
            lambda: client.gateway.delete(
                gateway.resource_group,
                gateway.service_name,
                gateway.name,
                if_match=etag or "*",
                cls=lambda resp, _body, _hdrs: resp.http_response.status_code,
                **self._options(timeout),
            ),
            gateway=gateway,
            service=ApimService.of(gateway),
            timeout=timeout,
        )
        deleted = bool(status == 200)
        logger.info("gateway %s %s", gateway, "deleted" if deleted else "did not exist")
        return deleted

    def config_endpoint(self, gateway: Gateway, *, timeout: float | None = None) -> str:
        """The configuration endpoint the gateway must use, read from the service.

        A custom host name of type ``ConfigurationApi`` wins; otherwise the endpoint is
        derived from the service's own gateway URL (``<name>.azure-api.net`` ->
        ``<name>.configuration.azure-api.net``), which also holds in sovereign clouds.

        Args:
            gateway: The gateway (its service is read).
            timeout: Total time budget in seconds.

        Returns:
            An https URL without a trailing slash.

        Raises:
            AuthenticationError: The credential was refused.
            AuthorizationError: The credential lacks ``Microsoft.ApiManagement/service/read``.
            GatewayNotFoundError: The service does not exist.
            ManagementError: Any other failure, or the service has no gateway URL.

        Example:
            >>> ManagementClient.config_endpoint.__name__
            'config_endpoint'
        """
        svc = ApimService.of(gateway)
        client = self._client(gateway.subscription_id, gateway.cloud)
        resource = self._call(
            "config_endpoint",
            lambda: client.api_management_service.get(
                gateway.resource_group, gateway.service_name, **self._options(timeout)
            ),
            gateway=None,
            service=svc,
            timeout=timeout,
        )
        for hostname in resource.hostname_configurations or []:
            if str(hostname.type).lower().endswith("configurationapi") and hostname.host_name:
                return f"https://{hostname.host_name}"
        host = urlsplit(resource.gateway_url or "").hostname
        if not host or "." not in host:
            raise ManagementError(
                f"config_endpoint for {gateway}: the service reports no gateway URL, so its "
                "configuration endpoint is unknown",
            )
        name, _, suffix = host.partition(".")
        return f"https://{name}.configuration.{suffix}"


def _key_type(value: KeyType | str) -> KeyType:
    try:
        return KeyType(value)
    except ValueError:
        raise TokenError(
            f"key_type must be one of {[k.value for k in KeyType]}, got {value!r}"
        ) from None


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else "no details"


def _info(gateway: Gateway, body: Any, etag: str | None) -> GatewayInfo:
    loc = getattr(body, "location_data", None)
    return GatewayInfo(
        gateway=gateway,
        resource_id=getattr(body, "id", None) or gateway.resource_id,
        description=getattr(body, "description", None),
        location=getattr(loc, "name", None),
        city=getattr(loc, "city", None),
        district=getattr(loc, "district", None),
        country_or_region=getattr(loc, "country_or_region", None),
        etag=etag,
    )
