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
import ipaddress
import json
import logging
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from apim_selfhosted.errors import SpecError, TokenError

if TYPE_CHECKING:
    from apim_selfhosted.adoption import ImportReport

logger = logging.getLogger(__name__)

__all__ = [
    "Auth",
    "Autoscaling",
    "AzureCloud",
    "ConfigBackup",
    "Dapr",
    "DeploymentSpec",
    "DnsConfig",
    "DnsOption",
    "EntraAppAuth",
    "ExistingObjects",
    "ExistingSecretAuth",
    "Gateway",
    "GatewayTokenAuth",
    "HighAvailability",
    "HostAlias",
    "HttpProbe",
    "ImageSettings",
    "KeyType",
    "LocalLogs",
    "NetworkPolicySettings",
    "Observability",
    "OpenTelemetry",
    "Probes",
    "ProxySettings",
    "Resources",
    "RolloutStrategy",
    "SecretKeyRef",
    "SecurityContext",
    "ServiceAccountSettings",
    "ServiceSettings",
    "StatsD",
    "StdLogs",
    "TlsSettings",
    "Token",
    "Toleration",
    "WorkloadIdentityAuth",
]

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
#: The largest value of a Kubernetes int32 field (replicas, probe settings, ...): the API server
#: refuses a larger number when it decodes the object.
_INT32_MAX = 2**31 - 1

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
    if len(body) >= 2 and body[0] == body[-1] and body[0] in "'\"":
        body = body[1:-1].strip()  # pasted with the quotes of the portal's kubectl command
    if body.lower().startswith(_TOKEN_PREFIX.lower()):
        body = body[len(_TOKEN_PREFIX) :].strip()
    if not body or body.lower() == _TOKEN_PREFIX.strip().lower():
        raise TokenError("malformed gateway token: it is empty (a token file with nothing in it?)")
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


# ---------------------------------------------------------------------------------------------
# Kubernetes name rules, as the API server applies them.
# ---------------------------------------------------------------------------------------------

_DNS1123_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN_RE = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_LABEL_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUANTITY_RE = re.compile(r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|[numkMGTPE]i?|Ki)?$")
_INT_OR_PERCENT_RE = re.compile(r"^[0-9]+%$")
_SEMVER_RE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")

#: Longest base name: "<base>-instance-discovery" must stay a 63-character DNS-1035 label and
#: the rotator's CronJob "<base>-rotator" within the 52 characters a CronJob name may have (the
#: chart truncates its discovery Service name to 44 for the same reason).
MAX_BASE_NAME = 44


def check_dns1123_label(value: str, *, what: str = "name") -> str:
    """Checks a Kubernetes DNS-1123 label (namespaces, most object names).

    Args:
        value: The name.
        what: What the name is, for the message.

    Returns:
        The name, unchanged.

    Raises:
        ValueError: The name breaks the rule; the message says the rule.

    Example:
        >>> check_dns1123_label("apim")
        'apim'
        >>> check_dns1123_label("Apim")
        Traceback (most recent call last):
        ...
        ValueError: invalid name 'Apim': a DNS-1123 label must consist of lower case ...
    """
    if len(value) > 63 or not _DNS1123_LABEL_RE.match(value):
        raise ValueError(
            f"invalid {what} {value!r}: a DNS-1123 label must consist of lower case alphanumeric "
            "characters or '-', start and end with an alphanumeric character, and be at most "
            "63 characters (regex [a-z0-9]([-a-z0-9]*[a-z0-9])?)"
        )
    return value


def check_dns1123_subdomain(value: str, *, what: str = "name") -> str:
    """Checks a Kubernetes DNS-1123 subdomain (Secret, ConfigMap, ServiceAccount names ...).

    Args:
        value: The name.
        what: What the name is, for the message.

    Returns:
        The name, unchanged.

    Raises:
        ValueError: The name breaks the rule.

    Example:
        >>> check_dns1123_subdomain("my.secret-1")
        'my.secret-1'
    """
    if len(value) > 253 or not _DNS1123_SUBDOMAIN_RE.match(value):
        raise ValueError(
            f"invalid {what} {value!r}: a DNS-1123 subdomain must consist of lower case "
            "alphanumeric characters, '-' or '.', start and end with an alphanumeric character, "
            "and be at most 253 characters"
        )
    return value


def check_label_key(key: str) -> str:
    """Checks a label or annotation key (``[prefix/]name``) as the API server does.

    Args:
        key: The key.

    Returns:
        The key, unchanged.

    Raises:
        ValueError: The key is not a qualified name.

    Example:
        >>> check_label_key("app.kubernetes.io/name")
        'app.kubernetes.io/name'
    """
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _DNS1123_SUBDOMAIN_RE.match(prefix)):
        raise ValueError(f"invalid key {key!r}: the prefix must be a DNS-1123 subdomain")
    if not name or len(name) > 63 or not _LABEL_NAME_RE.match(name):
        raise ValueError(
            f"invalid key {key!r}: the name part must be at most 63 characters of alphanumerics, "
            "'-', '_' or '.', starting and ending with an alphanumeric character"
        )
    return key


def check_label_value(value: str) -> str:
    """Checks a label value as the API server does.

    Args:
        value: The value.

    Returns:
        The value, unchanged.

    Raises:
        ValueError: The value breaks the rule.

    Example:
        >>> check_label_value("2.11.1")
        '2.11.1'
    """
    if len(value) > 63 or not _LABEL_VALUE_RE.match(value):
        raise ValueError(
            f"invalid label value {value!r}: at most 63 characters of alphanumerics, '-', '_' "
            "or '.', starting and ending with an alphanumeric character (or empty)"
        )
    return value


def _check_labels(value: dict[str, str]) -> dict[str, str]:
    for k, v in value.items():
        check_label_key(k)
        check_label_value(v)
    return value


def _check_annotations(value: dict[str, str]) -> dict[str, str]:
    for k in value:
        check_label_key(k)
    return value


def _check_quantity(value: str) -> str:
    if not _QUANTITY_RE.match(value):
        raise ValueError(
            f"invalid quantity {value!r}: use a Kubernetes quantity such as 500m, 2, 256Mi or 1Gi"
        )
    return value


def _check_int_or_percent(value: int | str) -> int | str:
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must be a non-negative integer or a percentage such as '25%'")
        return value
    if not _INT_OR_PERCENT_RE.match(value):
        raise ValueError(
            f"must be a non-negative integer or a percentage such as '25%', got {value!r}"
        )
    return value


def _check_ip(value: str, *, what: str = "IP address") -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"invalid {what} {value!r}: must be an IPv4 or IPv6 address") from None
    return value


def _check_cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"invalid CIDR {value!r}: use e.g. 10.0.0.0/8") from None
    return value


def _check_keys(value: dict[str, Any], allowed: set[str], what: str) -> dict[str, Any]:
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ValueError(f"{what}: unknown keys {unknown}; allowed: {sorted(allowed)}")
    return value


def parse_semver(tag: str) -> tuple[int, int, int] | None:
    """Reads ``major.minor.patch`` from an image tag, or ``None`` for any other tag.

    Args:
        tag: An image tag such as ``2.11.1``, ``v2`` or ``latest``.

    Returns:
        The three numbers, or ``None`` when the tag is not pinned to a patch release.

    Example:
        >>> parse_semver("2.11.1"), parse_semver("v2")
        ((2, 11, 1), None)
    """
    m = _SEMVER_RE.match(tag)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


# ---------------------------------------------------------------------------------------------
# The parts of a DeploymentSpec.
# ---------------------------------------------------------------------------------------------

#: The official image repository.
GATEWAY_IMAGE = "mcr.microsoft.com/azure-api-management/gateway"
_REPO_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REGISTRY_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
#: An image repository as the distribution reference grammar (which the kubelet uses) allows it.
_REPOSITORY_RE = re.compile(
    rf"^(?:{_REGISTRY_LABEL}(?:\.{_REGISTRY_LABEL})*(?::[0-9]+)?/)?"
    rf"{_REPO_PATH_PART}(?:/{_REPO_PATH_PART})*$"
)
#: The gateway version this library's defaults were written for (Helm chart 1.15.1's app version).
DEFAULT_GATEWAY_VERSION = "2.11.1"
#: The HTTP path the gateway answers for probes.
STATUS_PATH = "/status-0123456789abcdef"


class _Part(BaseModel):
    model_config = _FROZEN


class ImageSettings(_Part):
    """Which gateway image runs and how it is pulled.

    Example:
        >>> ImageSettings().reference
        'mcr.microsoft.com/azure-api-management/gateway:2.11.1'
    """

    repository: str = Field(default=GATEWAY_IMAGE, description="The image repository.")
    tag: str = Field(
        default=DEFAULT_GATEWAY_VERSION,
        description="The image tag; production wants a pinned major.minor.patch tag.",
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$",
    )
    digest: str | None = Field(
        default=None,
        description="Optional digest (sha256:...) pinning the exact image.",
        pattern=r"^sha256:[a-f0-9]{64}$",
    )
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        default="IfNotPresent", description="The container's imagePullPolicy."
    )
    pull_secrets: tuple[str, ...] = Field(
        default=(), description="Names of Secrets holding registry credentials (imagePullSecrets)."
    )

    @field_validator("repository")
    @classmethod
    def _check_repo(cls, value: str) -> str:
        # The kubelet refuses a reference outside this grammar (InvalidImageName): the pods would
        # never start. A tag or digest here would end up twice in the reference.
        if len(value) > 255 or not _REPOSITORY_RE.match(value):
            raise ValueError(
                "must be an image repository without tag or digest, such as "
                f"{GATEWAY_IMAGE} (a registry host, then lower-case path parts of letters, "
                "digits and single '.', '_', '__' or '-' separators); put the tag in image.tag"
            )
        return value

    @field_validator("pull_secrets")
    @classmethod
    def _check_pull_secrets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            check_dns1123_subdomain(name, what="pull secret name")
        return value

    @property
    def reference(self) -> str:
        """The full image reference for the container."""
        ref = f"{self.repository}:{self.tag}"
        return f"{ref}@{self.digest}" if self.digest else ref

    @property
    def version(self) -> tuple[int, int, int] | None:
        """``(major, minor, patch)`` when the tag is pinned, else ``None``."""
        return parse_semver(self.tag)


class RolloutStrategy(_Part):
    """How the Deployment replaces pods.

    The default (no pod down, a quarter extra) is the portal's: capacity never drops.

    Example:
        >>> RolloutStrategy().max_surge
        '25%'
    """

    type: Literal["RollingUpdate", "Recreate"] = Field(
        default="RollingUpdate", description="RollingUpdate (no downtime) or Recreate."
    )
    max_unavailable: int | str = Field(
        default=0, description="RollingUpdate maxUnavailable: a count or a percentage."
    )
    max_surge: int | str = Field(
        default="25%", description="RollingUpdate maxSurge: a count or a percentage."
    )

    @field_validator("max_unavailable", "max_surge")
    @classmethod
    def _check_counts(cls, value: int | str) -> int | str:
        return _check_int_or_percent(value)

    @model_validator(mode="after")
    def _not_both_zero(self) -> RolloutStrategy:
        if (
            self.type == "RollingUpdate"
            and self.max_unavailable in (0, "0%")
            and (self.max_surge in (0, "0%"))
        ):
            raise ValueError("max_unavailable and max_surge cannot both be 0")
        return self


class Resources(_Part):
    """CPU and memory requests and limits of the gateway container.

    Example:
        >>> Resources(requests={"cpu": "500m", "memory": "512Mi"}).requests["cpu"]
        '500m'
    """

    requests: dict[str, str] = Field(
        default_factory=dict, description="Requested resources, e.g. {cpu: 500m, memory: 512Mi}."
    )
    limits: dict[str, str] = Field(
        default_factory=dict, description="Resource limits, e.g. {memory: 1Gi}."
    )

    @field_validator("requests", "limits")
    @classmethod
    def _check(cls, value: dict[str, str]) -> dict[str, str]:
        for k, v in value.items():
            check_label_key(k)
            _check_quantity(str(v))
        return {k: str(v) for k, v in value.items()}


class HttpProbe(_Part):
    """An HTTP probe on the gateway's status endpoint.

    Example:
        >>> HttpProbe().path
        '/status-0123456789abcdef'
    """

    path: str = Field(default=STATUS_PATH, description="HTTP path probed.")
    port: str | int = Field(default="http", description="Container port name or number.")
    scheme: Literal["HTTP", "HTTPS"] = Field(default="HTTP", description="HTTP or HTTPS.")
    initial_delay_seconds: int = Field(
        default=0, ge=0, le=_INT32_MAX, description="initialDelaySeconds."
    )
    period_seconds: int = Field(default=5, ge=1, le=_INT32_MAX, description="periodSeconds.")
    timeout_seconds: int = Field(default=1, ge=1, le=_INT32_MAX, description="timeoutSeconds.")
    failure_threshold: int = Field(default=3, ge=1, le=_INT32_MAX, description="failureThreshold.")
    success_threshold: int = Field(default=1, ge=1, le=_INT32_MAX, description="successThreshold.")


class Probes(_Part):
    """The container's probes. The portal sets only a readiness probe.

    The status endpoint keeps answering even when the gateway cannot reach its configuration
    endpoint, so probes prove the process is up, not that the gateway is healthy.

    Example:
        >>> Probes().liveness is None
        True
    """

    readiness: HttpProbe | None = Field(
        default_factory=HttpProbe, description="Readiness probe (the portal's by default)."
    )
    liveness: HttpProbe | None = Field(default=None, description="Liveness probe, if any.")
    startup: HttpProbe | None = Field(default=None, description="Startup probe, if any.")


class HostAlias(_Part):
    """An /etc/hosts entry in the pod (e.g. for a private configuration endpoint).

    Example:
        >>> HostAlias(ip="10.0.0.4", hostnames=("contoso.configuration.azure-api.net",)).ip
        '10.0.0.4'
    """

    ip: str = Field(description="The IP address.")
    hostnames: tuple[str, ...] = Field(min_length=1, description="Host names for that address.")

    @field_validator("ip")
    @classmethod
    def _check_ip(cls, value: str) -> str:
        return _check_ip(value)


class DnsOption(_Part):
    """A resolver option in the pod's dnsConfig.

    Example:
        >>> DnsOption(name="ndots", value="2").value
        '2'
    """

    name: str = Field(description="Option name, e.g. ndots.")
    value: str | None = Field(default=None, description="Option value, if any.")


class DnsConfig(_Part):
    """The pod's dnsConfig.

    Example:
        >>> DnsConfig(nameservers=("10.0.0.10",)).nameservers
        ('10.0.0.10',)
    """

    nameservers: tuple[str, ...] = Field(default=(), description="DNS servers.")

    @field_validator("nameservers")
    @classmethod
    def _check_servers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for server in value:
            _check_ip(server, what="nameserver")
        if len(value) > 3:
            raise ValueError("at most 3 nameservers")
        return value

    searches: tuple[str, ...] = Field(default=(), description="Search domains.")
    options: tuple[DnsOption, ...] = Field(default=(), description="Resolver options.")


class ProxySettings(_Part):
    """Egress HTTP(S) proxy for calls to backends (HTTP_PROXY, HTTPS_PROXY, NO_PROXY).

    Example:
        >>> ProxySettings(https="http://proxy:3128").https
        'http://proxy:3128'
    """

    http: str | None = Field(default=None, description="Proxy for outbound HTTP.")
    https: str | None = Field(default=None, description="Proxy for outbound HTTPS.")
    bypass: str | None = Field(
        default=None, description="Comma-separated hosts that bypass the proxy (NO_PROXY)."
    )


class ConfigBackup(_Part):
    """Keeps a copy of the last configuration on a volume so the gateway can start offline.

    Example:
        >>> ConfigBackup(enabled=True).size
        '50Mi'
    """

    enabled: bool = Field(default=False, description="Mount a PVC at /apim/config.")
    existing_claim: str | None = Field(
        default=None, description="Use this existing PVC instead of creating one."
    )
    storage_class: str | None = Field(
        default=None,
        description="Storage class of the new PVC: unset = cluster default, '' = none.",
    )
    size: str = Field(default="50Mi", description="Size of the new PVC.")
    access_mode: Literal["ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"] = Field(
        default="ReadWriteMany",
        description="Access mode of the new PVC; more than one replica needs ReadWriteMany.",
    )

    @field_validator("size")
    @classmethod
    def _check_size(cls, value: str) -> str:
        return _check_quantity(value)

    @field_validator("existing_claim")
    @classmethod
    def _check_claim(cls, value: str | None) -> str | None:
        return None if value is None else check_dns1123_subdomain(value, what="claim name")


class StdLogs(_Part):
    """Container (standard output) logs.

    Example:
        >>> StdLogs().level
        'info'
    """

    format: Literal["none", "text", "json"] = Field(default="text", description="Log format.")
    level: Literal["all", "debug", "info", "warn", "error", "fatal"] = Field(
        default="info", description="Lowest level written."
    )
    color: bool = Field(default=True, description="Use ANSI colours.")


class LocalLogs(_Part):
    """Local logs: where the gateway sends request logs inside the cluster.

    Example:
        >>> LocalLogs().type
        'auto'
    """

    type: Literal["none", "auto", "localsyslog", "rfc5424", "journal", "json", "forward"] = Field(
        default="auto", description="Local log sink type."
    )
    localsyslog_endpoint: str | None = Field(default=None, description="localsyslog endpoint.")
    localsyslog_facility: int | None = Field(
        default=None, ge=0, le=23, description="localsyslog facility code."
    )
    rfc5424_endpoint: str | None = Field(default=None, description="rfc5424 endpoint.")
    rfc5424_facility: int | None = Field(
        default=None, ge=0, le=23, description="rfc5424 facility code."
    )
    journal_endpoint: str | None = Field(default=None, description="journal endpoint.")
    json_endpoint: str | None = Field(
        default="127.0.0.1:8888", description="UDP endpoint (or path) for JSON logs."
    )


class StatsD(_Part):
    """Local metrics pushed to a StatsD server.

    Example:
        >>> StatsD(enabled=True, endpoint="udp://statsd:8125").tag_format
        'dogStatsD'
    """

    enabled: bool = Field(default=False, description="Push StatsD metrics.")
    endpoint: str | None = Field(default=None, description="StatsD endpoint, udp://host:port.")
    sampling: float = Field(default=1.0, ge=0, le=1, description="Sampling rate, 0 to 1.")
    tag_format: Literal["none", "librato", "dogStatsD", "influxDB"] = Field(
        default="dogStatsD", description="Tagging format."
    )

    @model_validator(mode="after")
    def _endpoint_required(self) -> StatsD:
        if self.enabled and not self.endpoint:
            raise ValueError("endpoint is required when StatsD is enabled")
        return self


class OpenTelemetry(_Part):
    """Metrics (and system metrics) pushed to an OpenTelemetry collector.

    Example:
        >>> OpenTelemetry(enabled=True, collector_uri="http://otel:4317").system_metrics
        False
    """

    enabled: bool = Field(default=False, description="Push OpenTelemetry metrics.")
    collector_uri: str | None = Field(default=None, description="Collector URI (gRPC or HTTP).")
    histogram_buckets: tuple[float, ...] = Field(
        default=(), description="Histogram bucket bounds in milliseconds (empty = gateway's)."
    )
    system_metrics: bool = Field(default=False, description="Also collect CPU/memory metrics.")

    @model_validator(mode="after")
    def _uri_required(self) -> OpenTelemetry:
        if self.enabled and not self.collector_uri:
            raise ValueError("collector_uri is required when OpenTelemetry is enabled")
        return self


class Observability(_Part):
    """Logs and metrics settings of the gateway.

    Example:
        >>> Observability().azure_monitor_metrics
        True
    """

    std_logs: StdLogs = Field(default_factory=StdLogs, description="Container logs.")
    local_logs: LocalLogs = Field(default_factory=LocalLogs, description="Local logs.")
    statsd: StatsD = Field(default_factory=StatsD, description="StatsD metrics.")
    opentelemetry: OpenTelemetry = Field(
        default_factory=OpenTelemetry, description="OpenTelemetry metrics."
    )
    azure_monitor_metrics: bool = Field(
        default=True, description="Send metrics to Azure Monitor (telemetry.metrics.cloud)."
    )


class TlsSettings(_Part):
    """Allowed TLS cipher suites (empty = the gateway's defaults).

    Example:
        >>> TlsSettings().server_cipher_suites
        ()
    """

    server_cipher_suites: tuple[str, ...] = Field(
        default=(), description="Suites allowed for client-to-gateway TLS."
    )
    client_cipher_suites: tuple[str, ...] = Field(
        default=(), description="Suites allowed for gateway-to-backend TLS."
    )


class ServiceSettings(_Part):
    """The live-traffic Service and the headless instance-discovery Service.

    Defaults follow the portal: a LoadBalancer on 80/443 with ``externalTrafficPolicy: Local``.

    Example:
        >>> ServiceSettings().type, ServiceSettings().http_port
        ('LoadBalancer', 80)
    """

    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        default="LoadBalancer", description="Service type of the live-traffic Service."
    )
    http_port: int = Field(default=80, ge=1, le=65535, description="Service port for HTTP.")
    https_port: int = Field(default=443, ge=1, le=65535, description="Service port for HTTPS.")
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Annotations of the live-traffic Service."
    )
    external_traffic_policy: Literal["Cluster", "Local"] = Field(
        default="Local",
        description="externalTrafficPolicy (LoadBalancer/NodePort only); Local keeps client IPs.",
    )
    load_balancer_ip: str | None = Field(default=None, description="Requested load balancer IP.")
    load_balancer_source_ranges: tuple[str, ...] = Field(
        default=(), description="CIDRs allowed to reach the load balancer."
    )
    allocate_load_balancer_node_ports: bool | None = Field(
        default=None, description="allocateLoadBalancerNodePorts (LoadBalancer only)."
    )
    instance_sync_port: int = Field(
        default=4290, ge=1, le=65535, description="Discovery Service port for rate-limit sync."
    )
    instance_heartbeat_port: int = Field(
        default=4291, ge=1, le=65535, description="Discovery Service port for heartbeats."
    )

    @field_validator("annotations")
    @classmethod
    def _check_annotations(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_annotations(value)

    @field_validator("load_balancer_ip")
    @classmethod
    def _check_lb_ip(cls, value: str | None) -> str | None:
        return None if value is None else _check_ip(value, what="load balancer IP")

    @field_validator("load_balancer_source_ranges")
    @classmethod
    def _check_ranges(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in value:
            _check_cidr(cidr)
        return value


class HighAvailability(_Part):
    """Disruption budget and spreading of pods over zones and nodes.

    Example:
        >>> HighAvailability(enabled=True).max_unavailable
        '25%'
    """

    enabled: bool = Field(default=False, description="Render a PodDisruptionBudget and spread.")
    max_unavailable: int | str = Field(
        default="25%", description="PodDisruptionBudget maxUnavailable (count or percentage)."
    )
    spread: Literal["zone-topology", "anti-affinity"] = Field(
        default="zone-topology",
        description="zone topology spread constraints, or preferred pod anti-affinity.",
    )
    when_unsatisfiable: Literal["ScheduleAnyway", "DoNotSchedule"] = Field(
        default="ScheduleAnyway", description="What the scheduler does when it cannot spread."
    )

    @field_validator("max_unavailable")
    @classmethod
    def _check_budget(cls, value: int | str) -> int | str:
        return _check_int_or_percent(value)


class Toleration(_Part):
    """A pod toleration.

    Example:
        >>> Toleration(key="dedicated", value="apim", effect="NoSchedule").operator
        'Equal'
    """

    key: str | None = Field(default=None, description="Taint key (none = all keys).")
    operator: Literal["Equal", "Exists"] = Field(default="Equal", description="Equal or Exists.")
    value: str | None = Field(default=None, description="Taint value.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect (none = all)."
    )
    toleration_seconds: int | None = Field(default=None, description="For NoExecute only.")

    @model_validator(mode="after")
    def _check(self) -> Toleration:
        if self.operator == "Exists" and self.value:
            raise ValueError("value must be empty when operator is Exists")
        if self.key is None and self.operator != "Exists":
            raise ValueError("operator must be Exists when key is empty")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError("toleration_seconds needs effect NoExecute")
        return self

    def to_manifest(self) -> dict[str, Any]:
        """The toleration as it goes into a pod spec (camelCase keys, unset ones left out).

        Returns:
            A ``core/v1`` Toleration.

        Example:
            >>> Toleration(key="dedicated", value="apim", effect="NoSchedule").to_manifest()
            {'key': 'dedicated', 'operator': 'Equal', 'value': 'apim', 'effect': 'NoSchedule'}
        """
        fields = {
            "key": self.key,
            "operator": self.operator,
            "value": self.value,
            "effect": self.effect,
            "tolerationSeconds": self.toleration_seconds,
        }
        return {k: v for k, v in fields.items() if v is not None}


class SecurityContext(_Part):
    """Pod and container security settings. The defaults are the restricted profile.

    ``readOnlyRootFilesystem`` is not offered: the gateway writes to its file system.

    Example:
        >>> SecurityContext().run_as_user
        1001
    """

    run_as_non_root: bool = Field(default=True, description="Refuse to run as root.")
    run_as_user: int | None = Field(default=1001, ge=0, description="UID (the image's is 1001).")
    run_as_group: int | None = Field(default=None, ge=0, description="GID, if any.")
    fs_group: int | None = Field(
        default=1001, ge=0, description="fsGroup: makes the backup volume writable (1001)."
    )
    fs_group_change_policy: Literal["OnRootMismatch", "Always"] | None = Field(
        default=None, description="fsGroupChangePolicy."
    )
    allow_privilege_escalation: bool = Field(default=False, description="allowPrivilegeEscalation.")
    drop_all_capabilities: bool = Field(default=True, description="Drop all Linux capabilities.")
    seccomp_profile: Literal["RuntimeDefault", "Unconfined"] | None = Field(
        default="RuntimeDefault", description="Seccomp profile type."
    )

    @model_validator(mode="before")
    @classmethod
    def _no_read_only_root(cls, data: Any) -> Any:
        if isinstance(data, dict) and "read_only_root_filesystem" in data:
            raise ValueError(
                "read_only_root_filesystem: the gateway does not support a read-only root file "
                "system (it writes to it); remove the field"
            )
        return data


class ServiceAccountSettings(_Part):
    """The pod's ServiceAccount.

    Example:
        >>> ServiceAccountSettings().create
        True
    """

    create: bool = Field(default=True, description="Create a ServiceAccount for the gateway.")
    name: str | None = Field(
        default=None, description="Its name (default: the base name; required if create=false)."
    )
    annotations: dict[str, str] = Field(default_factory=dict, description="SA annotations.")
    labels: dict[str, str] = Field(default_factory=dict, description="Extra SA labels.")
    automount_token: bool = Field(
        default=False,
        description="Mount a Kubernetes API token in the pod (the gateway needs none).",
    )

    @field_validator("annotations")
    @classmethod
    def _check_annotations(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_annotations(value)

    @field_validator("labels")
    @classmethod
    def _check_labels(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_labels(value)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        return None if value is None else check_dns1123_subdomain(value, what="service account")


class Dapr(_Part):
    """Dapr sidecar integration (pod annotations).

    Example:
        >>> Dapr(enabled=True, app_id="gw").config
        'tracing'
    """

    enabled: bool = Field(default=False, description="Inject the Dapr sidecar.")
    app_id: str | None = Field(default=None, description="dapr.io/app-id.")
    config: str = Field(default="tracing", description="dapr.io/config.")
    log_as_json: bool = Field(default=True, description="dapr.io/log-as-json.")
    log_level: Literal["debug", "info", "warn", "error"] = Field(
        default="info", description="dapr.io/log-level."
    )


class Autoscaling(_Part):
    """A HorizontalPodAutoscaler; the Deployment then leaves ``replicas`` to it.

    Example:
        >>> Autoscaling(min_replicas=3, max_replicas=10).target_cpu_utilization
        70
    """

    min_replicas: int = Field(default=2, ge=1, le=_INT32_MAX, description="Fewest replicas.")
    max_replicas: int = Field(default=10, ge=1, le=_INT32_MAX, description="Most replicas.")
    target_cpu_utilization: int | None = Field(
        default=70, ge=1, le=100, description="Average CPU utilisation target (% of requests)."
    )
    target_memory_utilization: int | None = Field(
        default=None, ge=1, le=100, description="Average memory utilisation target."
    )
    scale_down_stabilization_seconds: int = Field(
        default=300, ge=0, le=3600, description="Scale-down stabilisation window."
    )

    @model_validator(mode="after")
    def _check(self) -> Autoscaling:
        if self.max_replicas < self.min_replicas:
            raise ValueError("max_replicas must be >= min_replicas")
        if self.target_cpu_utilization is None and self.target_memory_utilization is None:
            raise ValueError("set target_cpu_utilization and/or target_memory_utilization")
        return self


class NetworkPolicySettings(_Part):
    """A NetworkPolicy: traffic ports open to the given peers, sync between gateway pods.

    Example:
        >>> NetworkPolicySettings().restrict_egress
        False
    """

    ingress_from: tuple[dict[str, Any], ...] = Field(
        default=(),
        description="NetworkPolicyPeer objects allowed to reach 8080/8081 (empty = anyone).",
    )
    restrict_egress: bool = Field(
        default=False,
        description="Also limit egress: DNS, HTTPS (configuration, Azure Monitor), gateway sync.",
    )
    egress_to: tuple[dict[str, Any], ...] = Field(
        default=(), description="Extra NetworkPolicyEgressRule objects (backends) when restricted."
    )

    @field_validator("ingress_from")
    @classmethod
    def _check_peers(cls, value: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
        for peer in value:
            _check_keys(peer, {"podSelector", "namespaceSelector", "ipBlock"}, "peer")
        return value

    @field_validator("egress_to")
    @classmethod
    def _check_rules(cls, value: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
        for rule in value:
            _check_keys(rule, {"to", "ports"}, "egress rule")
        return value


# ---------------------------------------------------------------------------------------------
# How the gateway authenticates to its configuration endpoint (a tagged union on ``kind``).
# ---------------------------------------------------------------------------------------------


class SecretKeyRef(_Part):
    """A key in an existing Kubernetes Secret.

    Example:
        >>> SecretKeyRef(name="entra", key="client-secret").key
        'client-secret'
    """

    name: str = Field(description="Secret name.")
    key: str = Field(description="Key in the Secret.", pattern=r"^[-._a-zA-Z0-9]{1,253}$")

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return check_dns1123_subdomain(value, what="secret name")


class GatewayTokenAuth(_Part):
    """Gateway token in a Secret that this library creates and rotates (the default).

    Example:
        >>> GatewayTokenAuth().kind
        'gateway-token'
    """

    kind: Literal["gateway-token"] = Field(default="gateway-token", description="Discriminator.")


class ExistingSecretAuth(_Part):
    """Gateway token read from a Secret someone else manages.

    The portal's command creates Secret ``<gateway>-token`` with key ``value``; the Helm chart
    uses key ``gateway-key``. The value must be the full ``GatewayKey ...`` form.

    Example:
        >>> ExistingSecretAuth(secret_name="gw1-token").key
        'value'
    """

    kind: Literal["existing-secret"] = Field(
        default="existing-secret", description="Discriminator."
    )
    secret_name: str = Field(description="Name of the Secret holding the token.")
    key: str = Field(
        default="value", description="Key of the token in the Secret.", pattern=r"^[-._a-zA-Z0-9]+$"
    )

    @field_validator("secret_name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return check_dns1123_subdomain(value, what="secret name")


class EntraAppAuth(_Part):
    """Microsoft Entra ID application (client secret or certificate in an existing Secret).

    Example:
        >>> EntraAppAuth(tenant_id="t", client_id="c",
        ...              client_secret=SecretKeyRef(name="entra", key="secret")).kind
        'entra-app'
    """

    kind: Literal["entra-app"] = Field(default="entra-app", description="Discriminator.")
    tenant_id: str = Field(min_length=1, description="Entra ID tenant id.")
    client_id: str = Field(min_length=1, description="Application (client) id.")
    client_secret: SecretKeyRef | None = Field(
        default=None, description="Where the client secret is (an existing Secret key)."
    )
    certificate_secret: str | None = Field(
        default=None,
        description="An existing Secret with the client certificate (key 'certificate.pfx'), "
        "mounted read-only at /apim/certificates.",
    )
    certificate_key: str = Field(
        default="certificate.pfx", description="Key of the certificate file in that Secret."
    )
    authority: str | None = Field(
        default=None, description="Authority URL (default: the cloud's login host + tenant)."
    )

    @model_validator(mode="after")
    def _one_credential(self) -> EntraAppAuth:
        if (self.client_secret is None) == (self.certificate_secret is None):
            raise ValueError("set exactly one of client_secret or certificate_secret")
        return self


class WorkloadIdentityAuth(_Part):
    """Microsoft Entra Workload ID (federated identity for the pod's ServiceAccount).

    Needs gateway image 2.11.0 or later and the workload identity webhook in the cluster.

    Example:
        >>> WorkloadIdentityAuth(client_id="c").kind
        'workload-identity'
    """

    kind: Literal["workload-identity"] = Field(
        default="workload-identity", description="Discriminator."
    )
    client_id: str = Field(min_length=1, description="Client id of the federated identity.")
    tenant_id: str | None = Field(default=None, description="Tenant id, if not the webhook's.")


Auth = Annotated[
    GatewayTokenAuth | ExistingSecretAuth | EntraAppAuth | WorkloadIdentityAuth,
    Field(discriminator="kind"),
]


# ---------------------------------------------------------------------------------------------
# The spec.
# ---------------------------------------------------------------------------------------------


class ExistingObjects(_Part):
    """The identity of objects another tool made, kept so that a deploy takes them over in place.

    A Deployment's selector cannot change, and a change to its pod template restarts every pod.
    When a gateway made by the portal's YAML, the Helm chart or by hand is adopted (see
    :func:`apim_selfhosted.adoption.adopt`), this records what the library must keep as it is:
    the object names, the selector and the pod template's labels and annotations.
    :func:`apim_selfhosted.rendering.render` then renders with those, adds the library's labels to
    the objects' metadata only (never to the pod template) and adds the config-hash annotation
    only when the settings really change (see ``config_hash``). The Deployment keeps the spec's
    ``name``, which adopt sets to the live Deployment's name.

    Example:
        >>> existing = ExistingObjects(selector={"app": "gw1"}, pod_labels={"app": "gw1"},
        ...     container="gw1", config_map="gw1-env")
        >>> existing.live_service is None
        True
        >>> ExistingObjects(selector={"app": "gw1"}, pod_labels={})
        Traceback (most recent call last):
        ...
        pydantic_core._pydantic_core.ValidationError: 1 validation error for ExistingObjects
        ...
    """

    container: str | None = Field(
        default=None, description="Name of the gateway container (default: the base name)."
    )
    config_map: str | None = Field(
        default=None, description="Name of the settings ConfigMap (default: <base>-env)."
    )
    live_service: str | None = Field(
        default=None, description="Name of the live-traffic Service (default: <base>-live-traffic)."
    )
    discovery_service: str | None = Field(
        default=None,
        description="Name of the headless discovery Service (default: <base>-instance-discovery).",
    )
    selector: dict[str, str] = Field(
        description="The Deployment's spec.selector.matchLabels (immutable); also the selector "
        "of the Services, PodDisruptionBudget, NetworkPolicy and pod spreading."
    )
    pod_labels: dict[str, str] = Field(
        description="The pod template's labels, kept exactly (must include the selector)."
    )
    pod_annotations: dict[str, str] = Field(
        default_factory=dict, description="The pod template's annotations, kept exactly."
    )
    config_hash: str | None = Field(
        default=None,
        description="Hash of the gateway settings the adopted spec renders "
        "(apim_selfhosted.rendering.settings_hash). While the rendered settings hash the same, the "
        "pod template gets no config-hash annotation; when they differ it gets one, and the pods "
        "roll to read the new settings. None: always add the annotation.",
    )

    @field_validator("container", "discovery_service", "live_service")
    @classmethod
    def _check_label_names(cls, value: str | None) -> str | None:
        return None if value is None else check_dns1123_label(value)

    @field_validator("config_map")
    @classmethod
    def _check_subdomain(cls, value: str | None) -> str | None:
        return None if value is None else check_dns1123_subdomain(value, what="config map name")

    @field_validator("selector", "pod_labels")
    @classmethod
    def _check_label_map(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_labels(value)

    @field_validator("pod_annotations")
    @classmethod
    def _check_annotation_map(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_annotations(value)

    @model_validator(mode="after")
    def _check_selector(self) -> ExistingObjects:
        if not self.selector:
            raise ValueError("selector: a Deployment selector needs at least one label")
        missing = {k: v for k, v in self.selector.items() if self.pod_labels.get(k) != v}
        if missing:
            raise ValueError(
                f"pod_labels: must contain every selector label; missing or different: {missing}"
            )
        return self


def _default_base_name(gateway_name: str) -> str:
    base = re.sub(r"[^a-z0-9-]+", "-", gateway_name.lower()).strip("-")
    return base


class DeploymentSpec(BaseModel):
    """Everything needed to run one self-hosted gateway in a Kubernetes cluster.

    Only ``gateway`` and ``namespace`` are required; every other field has a default that
    renders the portal's deployment with a restricted security context. Field names in files are
    the Python names (snake_case). See :class:`apim_selfhosted.profile.ProductionProfile` for the
    production defaults and checks.

    Example:
        >>> spec = DeploymentSpec(
        ...     gateway=Gateway(subscription_id="s1", resource_group="rg", service_name="contoso",
        ...                     name="gw1"),
        ...     namespace="apim")
        >>> spec.base_name, spec.replicas, spec.auth.kind
        ('gw1', 1, 'gateway-token')
    """

    model_config = _FROZEN

    gateway: Gateway = Field(description="The gateway resource in API Management.")
    namespace: str = Field(description="Namespace to deploy into (a DNS-1123 label).")
    create_namespace: bool = Field(default=False, description="Also render the Namespace.")
    name: str | None = Field(
        default=None,
        description="Base name of the Kubernetes objects (default: from the gateway name); "
        f"a DNS-1035 label of at most {MAX_BASE_NAME} characters.",
    )
    auth: Auth = Field(
        default_factory=GatewayTokenAuth,
        description="How the gateway authenticates: kind gateway-token, existing-secret, "
        "entra-app or workload-identity.",
    )
    image: ImageSettings = Field(default_factory=ImageSettings, description="The image.")
    replicas: int | None = Field(
        default=1,
        ge=0,
        le=_INT32_MAX,
        description="Replica count; null leaves it to an autoscaler.",
    )
    strategy: RolloutStrategy = Field(
        default_factory=RolloutStrategy, description="Deployment update strategy."
    )
    termination_grace_period_seconds: int = Field(
        default=60, ge=0, description="Time for in-flight requests to finish on shutdown."
    )
    min_ready_seconds: int = Field(
        default=0, ge=0, le=_INT32_MAX, description="Deployment minReadySeconds."
    )
    progress_deadline_seconds: int = Field(
        default=600,
        ge=1,
        le=_INT32_MAX,
        description="Deployment progressDeadlineSeconds: how long a rollout may make no "
        "progress before it counts as failed.",
    )
    resources: Resources | None = Field(default=None, description="Requests and limits.")
    probes: Probes = Field(default_factory=Probes, description="Container probes.")
    dns_policy: Literal["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"] | None = (
        Field(default=None, description="Pod dnsPolicy (unset = ClusterFirst).")
    )
    dns_config: DnsConfig | None = Field(default=None, description="Pod dnsConfig.")
    host_aliases: tuple[HostAlias, ...] = Field(default=(), description="/etc/hosts entries.")
    proxy: ProxySettings = Field(default_factory=ProxySettings, description="Egress proxy.")
    config_backup: ConfigBackup = Field(
        default_factory=ConfigBackup, description="Configuration backup volume."
    )
    observability: Observability = Field(
        default_factory=Observability, description="Logs and metrics."
    )
    tls: TlsSettings = Field(default_factory=TlsSettings, description="TLS cipher suites.")
    additional_settings: dict[str, str] = Field(
        default_factory=dict,
        description="Further gateway settings (ConfigMap keys) not modelled here.",
    )
    service: ServiceSettings = Field(
        default_factory=ServiceSettings, description="Live-traffic and discovery Services."
    )
    high_availability: HighAvailability = Field(
        default_factory=HighAvailability, description="PodDisruptionBudget and pod spreading."
    )
    priority_class_name: str | None = Field(default=None, description="Pod priorityClassName.")
    node_selector: dict[str, str] = Field(default_factory=dict, description="Pod nodeSelector.")
    tolerations: tuple[Toleration, ...] = Field(default=(), description="Pod tolerations.")
    affinity: dict[str, Any] = Field(
        default_factory=dict, description="Pod affinity (Kubernetes Affinity object)."
    )
    security_context: SecurityContext | None = Field(
        default_factory=SecurityContext,
        description="Pod and container security settings (null = none, like the portal).",
    )
    service_account: ServiceAccountSettings = Field(
        default_factory=ServiceAccountSettings, description="The pod's ServiceAccount."
    )
    common_labels: dict[str, str] = Field(
        default_factory=dict, description="Labels added to every object."
    )
    common_annotations: dict[str, str] = Field(
        default_factory=dict, description="Annotations added to every object."
    )
    deployment_annotations: dict[str, str] = Field(
        default_factory=dict, description="Annotations of the Deployment only."
    )
    pod_labels: dict[str, str] = Field(default_factory=dict, description="Extra pod labels.")
    pod_annotations: dict[str, str] = Field(
        default_factory=dict, description="Extra pod annotations."
    )
    dapr: Dapr = Field(default_factory=Dapr, description="Dapr sidecar integration.")
    autoscaling: Autoscaling | None = Field(
        default=None, description="A HorizontalPodAutoscaler (replicas then left to it)."
    )
    network_policy: NetworkPolicySettings | None = Field(
        default=None, description="A NetworkPolicy for the gateway pods."
    )
    existing: ExistingObjects | None = Field(
        default=None,
        description="Objects another tool made that deploy takes over in place (names, "
        "selector, pod template labels/annotations); set by adopt. None: the library's own.",
    )

    @field_validator("namespace")
    @classmethod
    def _check_namespace(cls, value: str) -> str:
        return check_dns1123_label(value, what="namespace")

    @field_validator("name")
    @classmethod
    def _check_base_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if len(value) > MAX_BASE_NAME or not _DNS1035_LABEL_RE.match(value):
            raise ValueError(
                f"invalid name {value!r}: must be a DNS-1035 label (lower case alphanumerics "
                f"or '-', starting with a letter) of at most {MAX_BASE_NAME} characters, so "
                "that '<name>-instance-discovery' is a valid Service name"
            )
        return value

    @field_validator("affinity")
    @classmethod
    def _check_affinity(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _check_keys(value, {"nodeAffinity", "podAffinity", "podAntiAffinity"}, "affinity")

    @field_validator("common_labels", "pod_labels", "node_selector")
    @classmethod
    def _check_label_maps(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_labels(value)

    @field_validator("common_annotations", "deployment_annotations", "pod_annotations")
    @classmethod
    def _check_annotation_maps(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_annotations(value)

    @field_validator("priority_class_name")
    @classmethod
    def _check_priority(cls, value: str | None) -> str | None:
        return None if value is None else check_dns1123_subdomain(value, what="priority class")

    @model_validator(mode="after")
    def _check_whole(self) -> DeploymentSpec:
        if self.name is None:
            derived = _default_base_name(self.gateway.name)
            if len(derived) > MAX_BASE_NAME or not _DNS1035_LABEL_RE.match(derived):
                raise ValueError(
                    f"name: the gateway name {self.gateway.name!r} does not make a valid "
                    f"Kubernetes base name ({derived!r}); set 'name' to a DNS-1035 label of at "
                    f"most {MAX_BASE_NAME} characters"
                )
        reserved = {k for k in self.additional_settings if k in RESERVED_SETTINGS}
        if reserved:
            raise ValueError(
                f"additional_settings: {sorted(reserved)} are set by the library from typed "
                "fields; use those fields instead"
            )
        if isinstance(self.auth, WorkloadIdentityAuth):
            version = self.image.version
            if version is not None and version < (2, 11, 0):
                raise ValueError(
                    "auth: workload identity needs gateway image 2.11.0 or later, "
                    f"image.tag is {self.image.tag}"
                )
            if not self.service_account.create and self.service_account.name is None:
                raise ValueError(
                    "service_account.name: workload identity needs a ServiceAccount; set "
                    "service_account.create=true or name an existing one"
                )
        return self

    # --- names of the rendered objects ----------------------------------------------------

    @property
    def base_name(self) -> str:
        """The base name of every rendered object (``name`` or derived from the gateway)."""
        return self.name if self.name is not None else _default_base_name(self.gateway.name)

    @property
    def config_map_name(self) -> str:
        """Name of the ConfigMap with the gateway settings (``<base>-env``, as the portal)."""
        if self.existing is not None and self.existing.config_map is not None:
            return self.existing.config_map
        return f"{self.base_name}-env"

    @property
    def live_service_name(self) -> str:
        """Name of the live-traffic Service (``<base>-live-traffic``)."""
        if self.existing is not None and self.existing.live_service is not None:
            return self.existing.live_service
        return f"{self.base_name}-live-traffic"

    @property
    def discovery_service_name(self) -> str:
        """Name of the headless instance-discovery Service (``<base>-instance-discovery``)."""
        if self.existing is not None and self.existing.discovery_service is not None:
            return self.existing.discovery_service
        return f"{self.base_name}-instance-discovery"

    @property
    def service_account_name(self) -> str | None:
        """The ServiceAccount the pods run as (``None``: the namespace's default)."""
        if self.service_account.name is not None:
            return self.service_account.name
        return self.base_name if self.service_account.create else None

    @property
    def pvc_name(self) -> str | None:
        """The PVC for configuration backup, if backup is enabled."""
        if not self.config_backup.enabled:
            return None
        return self.config_backup.existing_claim or f"{self.base_name}-config-backup"

    @property
    def untokened_secret_name(self) -> str:
        """Secret the Deployment reads when rendered without a token (``<base>-token``).

        That is the name the portal's ``kubectl create secret generic <gw>-token`` makes.
        """
        return f"{self.base_name}-token"

    # --- files ----------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<input>") -> DeploymentSpec:
        """Validates a plain mapping, raising :class:`SpecError` with every problem.

        Args:
            data: The spec as loaded from YAML/JSON.
            source: Where it came from, for the message.

        Returns:
            The spec.

        Raises:
            SpecError: The data is not a valid spec; ``problems`` lists field paths.

        Example:
            >>> DeploymentSpec.from_dict({"namespace": "apim"})
            Traceback (most recent call last):
            ...
            apim_selfhosted.errors.SpecError: <input>: invalid deployment spec:
              gateway: Field required
        """
        if not isinstance(data, dict):
            raise SpecError(
                f"{source}: a deployment spec must be a mapping, got {type(data).__name__}",
                source=source,
                problems=[("", "must be a mapping")],
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise _invalid(exc, source=source, what="deployment spec") from exc

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> DeploymentSpec:
        """Loads a spec from a YAML or JSON file.

        Args:
            path: The file (``.json`` is read as JSON, anything else as YAML).

        Returns:
            The spec.

        Raises:
            SpecError: The file is missing, unreadable, not YAML/JSON or not a valid spec; the
                message names the file and each field path with what is allowed.

        Example:
            >>> import tempfile, pathlib
            >>> p = pathlib.Path(tempfile.mkdtemp()) / "spec.yaml"
            >>> _ = p.write_text("gateway: {subscription_id: s1, resource_group: rg, "
            ...                  "service_name: contoso, name: gw1}\\nnamespace: apim\\n")
            >>> DeploymentSpec.from_file(p).namespace
            'apim'
        """
        source = os.fspath(path)
        return cls.from_dict(_read_data_file(source), source=source)

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain data, keeping only the fields that were set explicitly.

        Unset fields stay out so that a saved spec keeps tracking the library's defaults and
        :meth:`ProductionProfile.apply` can still tell what the user chose.

        Returns:
            JSON-compatible data.

        Example:
            >>> DeploymentSpec(gateway=Gateway(subscription_id="s1", resource_group="rg",
            ...     service_name="contoso", name="gw1"), namespace="apim").to_dict()["namespace"]
            'apim'
        """
        return self.model_dump(mode="json", exclude_unset=True)

    def to_file(self, path: str | os.PathLike[str]) -> None:
        """Saves the spec (explicit fields only) as YAML, or JSON when the name ends ``.json``.

        Args:
            path: The file to write.

        Raises:
            SpecError: The file cannot be written.

        Example:
            >>> import tempfile, pathlib
            >>> spec = DeploymentSpec(gateway=Gateway(subscription_id="s1", resource_group="rg",
            ...     service_name="contoso", name="gw1"), namespace="apim")
            >>> p = pathlib.Path(tempfile.mkdtemp()) / "spec.json"
            >>> spec.to_file(p)
            >>> DeploymentSpec.from_file(p) == spec
            True
        """
        import yaml

        target = os.fspath(path)
        data = self.to_dict()
        if target.endswith(".json"):
            text = json.dumps(data, indent=2, sort_keys=False) + "\n"
        else:
            text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
        try:
            with open(target, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            raise SpecError(f"{target}: cannot write: {exc.strerror}", source=target) from exc

    # --- adoption (apim_selfhosted.helm / apim_selfhosted.adoption) ---------------------------

    @classmethod
    def from_helm_values(
        cls,
        values: Mapping[str, Any],
        *,
        release_name: str,
        namespace: str,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        gateway_name: str | None = None,
    ) -> tuple[DeploymentSpec, ImportReport]:
        """The spec for a gateway installed with the official Helm chart 1.15.1.

        Delegates to :func:`apim_selfhosted.helm.spec_from_helm_values`.

        Args:
            values: The chart values (as in ``-f values.yaml``).
            release_name: The Helm release name.
            namespace: The release namespace.
            subscription_id: The APIM service's subscription (else a reported placeholder).
            resource_group: The APIM service's resource group (else a reported placeholder).
            gateway_name: The gateway's name in APIM (default: from the values or the token).

        Returns:
            The spec and the report of values that did not map one-to-one.

        Raises:
            SpecError: Values the chart itself refuses, or an invalid result.

        Example:
            >>> spec, report = DeploymentSpec.from_helm_values(
            ...     {"gateway": {"name": "gw1", "configuration": {"uri": "contoso.configuration"
            ...      ".azure-api.net"}}}, release_name="gw1", namespace="apim",
            ...     subscription_id="s1", resource_group="rg")
            >>> spec.replicas, report.ok
            (3, True)
        """
        from apim_selfhosted.helm import spec_from_helm_values

        return spec_from_helm_values(
            values,
            release_name=release_name,
            namespace=namespace,
            subscription_id=subscription_id,
            resource_group=resource_group,
            gateway_name=gateway_name,
        )

    def to_helm_values(self) -> tuple[dict[str, Any], ImportReport]:
        """Values for the official Helm chart 1.15.1 that deploy this gateway.

        Delegates to :func:`apim_selfhosted.helm.spec_to_helm_values`.

        Returns:
            The values that differ from the chart's defaults, and a report of what the chart
            cannot express. Tokens are never written.

        Example:
            >>> spec = DeploymentSpec(gateway=Gateway(subscription_id="s1", resource_group="rg",
            ...     service_name="contoso", name="gw1"), namespace="apim")
            >>> values, report = spec.to_helm_values()
            >>> values["gateway"]["configuration"]["uri"]
            'https://contoso.configuration.azure-api.net'
        """
        from apim_selfhosted.helm import spec_to_helm_values

        return spec_to_helm_values(self)

    @classmethod
    def from_manifests(
        cls,
        yaml_text: str,
        *,
        namespace: str | None = None,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        gateway_name: str | None = None,
    ) -> tuple[DeploymentSpec, ImportReport]:
        """The spec for a gateway deployed from Kubernetes YAML (the portal's, or kubectl's).

        Delegates to :func:`apim_selfhosted.adoption.spec_from_manifests`.

        Args:
            yaml_text: The YAML documents.
            namespace: The namespace (default: the objects' own, else ``default``).
            subscription_id: The APIM service's subscription (else a reported placeholder).
            resource_group: The APIM service's resource group (else a reported placeholder).
            gateway_name: The gateway's name in APIM (default: from the settings, the token or
                the Deployment's name).

        Returns:
            The spec and the report of what did not map one-to-one.

        Raises:
            SpecError: Invalid YAML, no gateway Deployment or no configuration endpoint.

        Example:
            >>> DeploymentSpec.from_manifests("kind: ConfigMap\\nmetadata: {name: x}\\n")
            Traceback (most recent call last):
            ...
            apim_selfhosted.errors.SpecError: no gateway Deployment found: ...
        """
        from apim_selfhosted.adoption import spec_from_manifests

        return spec_from_manifests(
            yaml_text,
            namespace=namespace,
            subscription_id=subscription_id,
            resource_group=resource_group,
            gateway_name=gateway_name,
        )


#: ConfigMap keys the library derives from typed fields (not allowed in additional_settings).
RESERVED_SETTINGS = frozenset(
    {
        "config.service.endpoint",
        "config.service.auth",
        "config.service.auth.azureAd.tenantId",
        "config.service.auth.azureAd.clientId",
        "config.service.auth.azureAd.clientSecret",
        "config.service.auth.azureAd.certificatePath",
        "config.service.auth.azureAd.authority",
        "neighborhood.host",
        "runtime.deployment.artifact.source",
        "runtime.deployment.artifact.version",
        "runtime.deployment.mechanism",
        "runtime.deployment.orchestrator.type",
        "gateway.name",
        "telemetry.metrics.cloud",
        "telemetry.logs.std",
        "telemetry.logs.std.level",
        "telemetry.logs.std.color",
        "telemetry.logs.local",
        "telemetry.metrics.local",
    }
)


_AUTH_TAGS = frozenset({"gateway-token", "existing-secret", "entra-app", "workload-identity"})


def _loc(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    previous: int | str | None = None
    for item in loc:
        if previous == "auth" and item in _AUTH_TAGS:
            previous = item
            continue  # pydantic names the union member; the user wrote only "auth.<field>"
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
        previous = item
    return "".join(parts)


def _error_message(err: Any, *, fields_hint: str) -> str:
    msg = str(err.get("msg", "invalid"))
    if err.get("type") == "extra_forbidden":
        return f"unknown field (not allowed); check the spelling against {fields_hint}"
    return msg.removeprefix("Value error, ")


def _read_data_file(source: str) -> Any:
    """The data in a YAML or JSON file (``.json`` is read as JSON, anything else as YAML).

    Raises:
        SpecError: The file cannot be read or is not YAML/JSON; the message names it.
    """
    import yaml

    try:
        with open(source, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise SpecError(f"{source}: cannot read: {exc.strerror}", source=source) from exc
    try:
        return json.loads(text) if source.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise SpecError(f"{source}: not valid YAML/JSON: {exc}", source=source) from exc


def _invalid(
    exc: ValidationError,
    *,
    source: str,
    what: str,
    fields_hint: str = "`apim-selfhosted schema`",
) -> SpecError:
    """A :class:`SpecError` listing each field path of ``exc`` with what is allowed there."""
    problems = [
        (_loc(err["loc"]), _error_message(err, fields_hint=fields_hint)) for err in exc.errors()
    ]
    lines = "\n".join(f"  {path or '<root>'}: {msg}" for path, msg in problems)
    return SpecError(f"{source}: invalid {what}:\n{lines}", source=source, problems=problems)
