"""The typed models a user writes: the gateway, its tokens and how it runs in a cluster.

Everything here is pure: no network, no clock (pass ``now`` in), no Azure or Kubernetes import.

Example:
    >>> from apim_selfhosted.models import Gateway
    >>> gw = Gateway(subscription_id="00000000-0000-0000-0000-000000000000",
    ...              resource_group="rg1", service_name="contoso", name="gw1")
    >>> gw.config_endpoint_url
    'https://contoso.configuration.azure-api.net'
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from apim_selfhosted.errors import TokenError

logger = logging.getLogger(__name__)

__all__ = ["AzureCloud", "Gateway", "KeyType", "Token"]

#: The longest validity Azure API Management gives a gateway token.
MAX_TOKEN_VALIDITY = timedelta(days=30)
# Clock skew tolerated when checking the 30-day limit against a caller's ``now``.
_TOKEN_SKEW = timedelta(minutes=5)


class AzureCloud(StrEnum):
    """The Azure cloud an API Management service lives in.

    The cloud decides the ARM endpoint, the Entra ID authority and the suffix of the gateway's
    configuration endpoint.

    Example:
        >>> AzureCloud.CHINA.arm_endpoint
        'https://management.chinacloudapi.cn'
        >>> AzureCloud.PUBLIC.credential_scope
        'https://management.azure.com/.default'
    """

    PUBLIC = "public"
    CHINA = "china"
    USGOV = "usgov"

    @property
    def arm_endpoint(self) -> str:
        """The Azure Resource Manager endpoint, without a trailing slash."""
        return _CLOUD_ARM[self]

    @property
    def credential_scope(self) -> str:
        """The OAuth scope a credential asks for to call ARM (``<arm>/.default``)."""
        return f"{self.arm_endpoint}/.default"

    @property
    def authority_host(self) -> str:
        """The Entra ID (Azure AD) authority host name, e.g. ``login.microsoftonline.com``."""
        return _CLOUD_AUTHORITY[self]

    @property
    def config_endpoint_suffix(self) -> str:
        """The DNS suffix of v2 configuration endpoints, e.g. ``configuration.azure-api.net``."""
        return _CLOUD_CONFIG_SUFFIX[self]


_CLOUD_ARM = {
    AzureCloud.PUBLIC: "https://management.azure.com",
    AzureCloud.CHINA: "https://management.chinacloudapi.cn",
    AzureCloud.USGOV: "https://management.usgovcloudapi.net",
}
_CLOUD_AUTHORITY = {
    AzureCloud.PUBLIC: "login.microsoftonline.com",
    AzureCloud.CHINA: "login.chinacloudapi.cn",
    AzureCloud.USGOV: "login.microsoftonline.us",
}
_CLOUD_CONFIG_SUFFIX = {
    AzureCloud.PUBLIC: "configuration.azure-api.net",
    AzureCloud.CHINA: "configuration.azure-api.cn",
    AzureCloud.USGOV: "configuration.azure-api.us",
}

_FROZEN = ConfigDict(frozen=True, extra="forbid")

# ARM naming rules (documented limits of the resource providers).
_SUBSCRIPTION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
_RESOURCE_GROUP_RE = re.compile(r"^[-\w.()]{0,89}[-\w()]$")
_SERVICE_NAME_RE = re.compile(r"^[A-Za-z](?:[A-Za-z0-9-]{0,48}[A-Za-z0-9])?$")
_GATEWAY_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,78}[A-Za-z0-9_])?$")
_HOST_RE = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(?::[0-9]{1,5})?$"
)


class Gateway(BaseModel):
    """A self-hosted gateway resource in an Azure API Management service.

    Example:
        >>> gw = Gateway(subscription_id="00000000-0000-0000-0000-000000000000",
        ...              resource_group="rg1", service_name="contoso", name="gw1")
        >>> gw.resource_id.endswith("/service/contoso/gateways/gw1")
        True
        >>> Gateway(subscription_id="s1", resource_group="rg", service_name="contoso",
        ...         name="gw1", cloud="china").config_endpoint_url
        'https://contoso.configuration.azure-api.cn'
    """

    model_config = _FROZEN

    subscription_id: str = Field(description="The Azure subscription id of the APIM service.")
    resource_group: str = Field(description="The resource group of the APIM service.")
    service_name: str = Field(description="The name of the API Management service.")
    name: str = Field(description="The gateway id in API Management (the gateway resource name).")
    config_endpoint: str | None = Field(
        default=None,
        description=(
            "Override of the v2 configuration endpoint, as a host name or an https URL "
            "(default: <service_name>.<cloud's configuration suffix>). v1 endpoints "
            "(*.management.azure-api.net/subscriptions/...) are refused: they were retired."
        ),
    )
    cloud: AzureCloud = Field(
        default=AzureCloud.PUBLIC,
        description="The Azure cloud: public, china or usgov.",
    )

    @field_validator("subscription_id")
    @classmethod
    def _check_subscription(cls, value: str) -> str:
        if not _SUBSCRIPTION_RE.match(value):
            raise ValueError("must be a subscription id (letters, digits and '-', e.g. a GUID)")
        return value

    @field_validator("resource_group")
    @classmethod
    def _check_resource_group(cls, value: str) -> str:
        if not _RESOURCE_GROUP_RE.match(value):
            raise ValueError(
                "must be 1-90 characters of letters, digits, '_', '-', '.', '(' or ')' "
                "and must not end with '.'"
            )
        return value

    @field_validator("service_name")
    @classmethod
    def _check_service_name(cls, value: str) -> str:
        if not _SERVICE_NAME_RE.match(value):
            raise ValueError(
                "must be 1-50 characters of letters, digits and '-', start with a letter "
                "and end with a letter or digit"
            )
        return value

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _GATEWAY_NAME_RE.match(value):
            raise ValueError(
                "must be 1-80 characters of letters, digits, '.', '_' or '-', starting with "
                "a letter or digit"
            )
        if value.lower() == "managed":
            raise ValueError("'managed' is reserved for the managed gateway")
        return value

    @field_validator("config_endpoint")
    @classmethod
    def _check_config_endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        text = value.strip()
        lowered = text.lower()
        if ".management.azure-api." in lowered or "/subscriptions/" in lowered:
            raise ValueError(
                "v1 configuration endpoints (<name>.management.azure-api.net/subscriptions/...) "
                "were retired in 2023; use the v2 endpoint <service>.configuration.azure-api.net"
            )
        host = text
        if lowered.startswith("https://"):
            host = text[len("https://") :]
        elif "://" in lowered:
            raise ValueError("must be a host name or an https:// URL")
        host = host.rstrip("/")
        if not _HOST_RE.match(host):
            raise ValueError(
                "must be a host name such as contoso.configuration.azure-api.net "
                "(optionally with https:// and a port)"
            )
        return f"https://{host}"

    @property
    def config_endpoint_url(self) -> str:
        """The v2 configuration endpoint the container connects to (an https URL)."""
        if self.config_endpoint is not None:
            return self.config_endpoint
        return f"https://{self.service_name}.{self.cloud.config_endpoint_suffix}"

    @property
    def service_resource_id(self) -> str:
        """The ARM id of the API Management service."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.ApiManagement/service/{self.service_name}"
        )

    @property
    def resource_id(self) -> str:
        """The ARM id of the gateway resource."""
        return f"{self.service_resource_id}/gateways/{self.name}"

    def __str__(self) -> str:
        return f"{self.service_name}/{self.name}"


class KeyType(StrEnum):
    """Which of the gateway's two keys signs a token.

    Example:
        >>> KeyType.PRIMARY.other
        <KeyType.SECONDARY: 'secondary'>
    """

    PRIMARY = "primary"
    SECONDARY = "secondary"

    @property
    def other(self) -> KeyType:
        """The other key: rotation signs new tokens with it before regenerating this one."""
        return KeyType.SECONDARY if self is KeyType.PRIMARY else KeyType.PRIMARY


_TOKEN_PREFIX = "GatewayKey "  # noqa: S105 (a scheme name, not a secret)
_SIGNATURE_RE = re.compile(r"^[A-Za-z0-9+/=_-]+$")


def _split_token(text: str) -> tuple[str, str, datetime]:
    """Splits a token into (full container form, gateway id, expiry); never echoes the token."""
    body = text.strip()
    if body.lower().startswith(_TOKEN_PREFIX.lower()):
        body = body[len(_TOKEN_PREFIX) :].strip()
    parts = body.split("&")
    if len(parts) != 3:
        raise TokenError(
            "malformed gateway token: expected '[GatewayKey ]<gatewayId>&<yyyyMMddHHmm>&"
            f"<signature>' (3 parts separated by '&'), got {len(parts)} part(s)"
        )
    gateway_id, stamp, signature = parts
    if not gateway_id or any(c.isspace() for c in gateway_id):
        raise TokenError("malformed gateway token: the gateway id part is empty or has spaces")
    if not (len(stamp) == 12 and stamp.isdigit()):
        raise TokenError(
            "malformed gateway token: the expiry part must be 12 digits (yyyyMMddHHmm, UTC)"
        )
    try:
        expires_on = datetime.strptime(stamp, "%Y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError as exc:
        raise TokenError(
            "malformed gateway token: the expiry part is not a valid yyyyMMddHHmm date"
        ) from exc
    if not signature or not _SIGNATURE_RE.match(signature):
        raise TokenError("malformed gateway token: the signature part is empty or not base64")
    return f"{_TOKEN_PREFIX}{body}", gateway_id, expires_on


class Token(BaseModel):
    """A gateway token, in the form the container reads from ``config.service.auth``.

    ``value`` always holds the full container form ``GatewayKey <gatewayId>&<yyyyMMddHHmm>&<sig>``
    (the bare ARM form is accepted and prefixed). ``repr``/``str`` never show it; use
    :attr:`fingerprint` to refer to a token in logs and reports.

    Example:
        >>> from datetime import datetime, timedelta, UTC
        >>> t = Token.parse("gw1&202611270418&c2lnbmF0dXJl")
        >>> t.expires_on.isoformat(), t.gateway_id, t.key_type.value
        ('2026-11-27T04:18:00+00:00', 'gw1', 'primary')
        >>> "c2lnbmF0dXJl" in repr(t) + str(t)
        False
        >>> t.remaining(datetime(2026, 11, 26, 4, 18, tzinfo=UTC))
        datetime.timedelta(days=1)
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    value: SecretStr = Field(
        description="The token as the container wants it: 'GatewayKey <id>&<expiry>&<sig>'."
    )
    key_type: KeyType = Field(
        default=KeyType.PRIMARY, description="The gateway key that signed the token."
    )
    expires_on: datetime = Field(
        description="When the token expires (aware, UTC); read from the token when omitted."
    )

    @model_validator(mode="before")
    @classmethod
    def _normalize(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        raw = data.get("value")
        if isinstance(raw, SecretStr):
            raw = raw.get_secret_value()
        if not isinstance(raw, str):
            return data
        full, _, embedded = _split_token(raw)
        out = dict(data)
        out["value"] = SecretStr(full)
        given = out.get("expires_on")
        if given is None:
            out["expires_on"] = embedded
        elif isinstance(given, datetime):
            if given.tzinfo is None:
                raise TokenError("expires_on must be timezone-aware (UTC)")
            if abs(given.astimezone(UTC) - embedded) >= timedelta(minutes=1):
                raise TokenError(
                    f"expires_on ({given.isoformat()}) does not match the expiry inside the "
                    f"token ({embedded.isoformat()})"
                )
        return out

    @field_validator("expires_on")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must be timezone-aware (UTC)")
        return value.astimezone(UTC)

    @classmethod
    def parse(
        cls,
        text: str,
        *,
        key_type: KeyType | str = KeyType.PRIMARY,
        gateway: Gateway | str | None = None,
        now: datetime | None = None,
    ) -> Token:
        """Reads a token in the container form (``GatewayKey ...``) or the bare ARM form.

        Args:
            text: The token; surrounding whitespace is ignored.
            key_type: The key that signed it (a token does not say; the caller knows).
            gateway: When given, the token must belong to this gateway (or gateway id).
            now: When given, a token with more than 30 days of validity left is refused.

        Returns:
            The token, with ``expires_on`` read from the token itself.

        Raises:
            TokenError: The token is malformed, belongs to another gateway, or lives longer than
                API Management allows. The message never contains the token.

        Example:
            >>> Token.parse("GatewayKey gw1&202611270418&c2ln", gateway="gw1").gateway_id
            'gw1'
            >>> Token.parse("gw2&202611270418&c2ln", gateway="gw1")
            Traceback (most recent call last):
            ...
            apim_selfhosted.errors.TokenError: the token belongs to gateway 'gw2', not 'gw1'
        """
        if not isinstance(text, str):
            raise TokenError(f"a gateway token must be a string, got {type(text).__name__}")
        full, gateway_id, expires_on = _split_token(text)
        if gateway is not None:
            expected = gateway.name if isinstance(gateway, Gateway) else gateway
            if gateway_id.lower() != expected.lower():
                raise TokenError(f"the token belongs to gateway {gateway_id!r}, not {expected!r}")
        if now is not None:
            if now.tzinfo is None:
                raise TokenError("now must be timezone-aware")
            if expires_on - now > MAX_TOKEN_VALIDITY + _TOKEN_SKEW:
                raise TokenError(
                    f"the token is valid until {expires_on.isoformat()}, more than 30 days "
                    "from now; API Management never issues such tokens"
                )
        try:
            kt = KeyType(key_type)
        except ValueError:
            raise TokenError(
                f"key_type must be one of {[k.value for k in KeyType]}, got {key_type!r}"
            ) from None
        return cls(value=SecretStr(full), key_type=kt, expires_on=expires_on)

    @property
    def gateway_id(self) -> str:
        """The gateway id the token was issued for (its first segment)."""
        return self.value.get_secret_value()[len(_TOKEN_PREFIX) :].split("&", 1)[0]

    @property
    def fingerprint(self) -> str:
        """A short, non-secret id of the token (12 hex digits of its SHA-256), for logs."""
        return hashlib.sha256(self.value.get_secret_value().encode()).hexdigest()[:12]

    def remaining(self, now: datetime) -> timedelta:
        """Time left until expiry (negative once expired).

        Args:
            now: The current time, timezone-aware.

        Returns:
            ``expires_on - now``.

        Example:
            >>> from datetime import datetime, UTC
            >>> Token.parse("gw1&202611270418&c2ln").remaining(
            ...     datetime(2026, 11, 27, 4, 0, tzinfo=UTC))
            datetime.timedelta(seconds=1080)
        """
        return self.expires_on - now

    def expires_within(self, delta: timedelta, now: datetime) -> bool:
        """Whether the token expires within ``delta`` of ``now`` (or has expired).

        Args:
            delta: The horizon, e.g. a profile's ``min_token_validity``.
            now: The current time, timezone-aware.

        Returns:
            ``True`` when less than ``delta`` of validity is left.

        Example:
            >>> from datetime import datetime, timedelta, UTC
            >>> Token.parse("gw1&202611270418&c2ln").expires_within(
            ...     timedelta(days=7), datetime(2026, 11, 25, tzinfo=UTC))
            True
        """
        return self.remaining(now) < delta

    def __repr_args__(self) -> Any:
        yield "gateway_id", self.gateway_id
        yield "key_type", self.key_type.value
        yield "expires_on", self.expires_on.isoformat()
        yield "fingerprint", self.fingerprint

    def __str__(self) -> str:
        return (
            f"gateway token for {self.gateway_id} ({self.key_type.value} key, "
            f"expires {self.expires_on:%Y-%m-%d %H:%M} UTC, fingerprint {self.fingerprint})"
        )
