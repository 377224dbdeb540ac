"""The state behind ``FakeApim``: services, gateways, keys and principals.

Gateway tokens are made like API Management makes them: ``<gatewayId>&<yyyyMMddHHmm>&<sig>``
where ``sig`` is the base64 HMAC-SHA512 of ``"<gatewayId>\\n<yyyyMMddHHmm>"`` under the gateway
key. Regenerating a key keeps the old key in the gateway's history, so a token signed with it
is reported as ``invalidated`` rather than unknown.

Example:
    >>> key = "k" * 88
    >>> value = sign_gateway_token("gw1", "202611270418", key)
    >>> value.startswith("gw1&202611270418&"), verify_signature(value, key)
    (True, True)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, SecretStr

TokenStatus = Literal[
    "valid", "expired", "invalidated", "unknown_gateway", "bad_signature", "malformed"
]

#: Every action the fake knows, as Azure RBAC names them.
GATEWAY_READ = "Microsoft.ApiManagement/service/gateways/read"
GATEWAY_WRITE = "Microsoft.ApiManagement/service/gateways/write"
GATEWAY_DELETE = "Microsoft.ApiManagement/service/gateways/delete"
GATEWAY_GENERATE_TOKEN = "Microsoft.ApiManagement/service/gateways/generateToken/action"
GATEWAY_LIST_KEYS = "Microsoft.ApiManagement/service/gateways/listKeys/action"
GATEWAY_REGENERATE_KEY = "Microsoft.ApiManagement/service/gateways/regenerateKey/action"
SERVICE_READ = "Microsoft.ApiManagement/service/read"


def new_key() -> str:
    """A fresh gateway key: 64 random bytes, base64 (88 characters), as APIM's keys look.

    Returns:
        The key text.

    Example:
        >>> len(new_key())
        88
    """
    return base64.b64encode(secrets.token_bytes(64)).decode()


def _signature(gateway_id: str, stamp: str, key: str) -> str:
    digest = hmac.new(key.encode(), f"{gateway_id}\n{stamp}".encode(), hashlib.sha512).digest()
    return base64.b64encode(digest).decode()


def sign_gateway_token(gateway_id: str, stamp: str, key: str) -> str:
    """Makes a gateway token (bare ARM form, no ``GatewayKey`` prefix).

    Args:
        gateway_id: The gateway id as stored.
        stamp: The expiry, ``yyyyMMddHHmm`` UTC.
        key: The gateway key that signs it.

    Returns:
        ``<gatewayId>&<stamp>&<signature>``.

    Example:
        >>> sign_gateway_token("gw1", "202601010000", "key").count("&")
        2
    """
    return f"{gateway_id}&{stamp}&{_signature(gateway_id, stamp, key)}"


def verify_signature(value: str, key: str) -> bool:
    """Whether a bare token was signed with ``key``.

    Args:
        value: ``<gatewayId>&<stamp>&<signature>``.
        key: A gateway key.

    Returns:
        ``True`` if the signature matches.

    Example:
        >>> verify_signature(sign_gateway_token("gw1", "202601010000", "a"), "b")
        False
    """
    parts = value.split("&")
    if len(parts) != 3:
        return False
    return hmac.compare_digest(_signature(parts[0], parts[1], key), parts[2])


class TokenCheck(BaseModel):
    """What :meth:`FakeApim.validate_token` found out about a gateway token.

    Attributes:
        status: ``valid``, ``expired``, ``invalidated`` (signed with a key that was regenerated
            since), ``unknown_gateway``, ``bad_signature`` or ``malformed``.
        gateway_id: The gateway id written in the token, if it could be read.
        resource_id: The ARM id of the gateway that signed it, if found.
        key_type: ``primary`` or ``secondary``: the key that signed it, if found.
        expires_on: The expiry written in the token, if it could be read.

    Example:
        >>> TokenCheck(status="expired").valid
        False
        >>> str(TokenCheck(status="invalidated", gateway_id="gw1", key_type="primary"))
        'invalidated (gateway gw1, primary key)'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: TokenStatus
    gateway_id: str | None = None
    resource_id: str | None = None
    key_type: Literal["primary", "secondary"] | None = None
    expires_on: datetime | None = None

    @property
    def valid(self) -> bool:
        """``True`` when the gateway would accept the token now."""
        return self.status == "valid"

    def __str__(self) -> str:
        text = f"{self.status}"
        if self.gateway_id:
            text += f" (gateway {self.gateway_id}"
            if self.key_type:
                text += f", {self.key_type} key"
            if self.expires_on:
                text += f", expires {self.expires_on:%Y-%m-%d %H:%M} UTC"
            text += ")"
        return text


@dataclass
class GatewayState:
    """One gateway resource held by the fake (mutable, guarded by the fake's lock)."""

    name: str
    resource_id: str
    description: str | None = None
    location: dict[str, str] | None = None
    # The keys are secrets: kept out of repr (tracebacks, debug output of tests).
    primary: str = field(default_factory=new_key, repr=False)
    secondary: str = field(default_factory=new_key, repr=False)
    old_keys: list[tuple[str, str]] = field(default_factory=list, repr=False)
    version: int = 1

    @property
    def etag(self) -> str:
        """The entity tag, quoted as APIM sends it."""
        raw = base64.b64encode(self.version.to_bytes(8, "big")).decode()
        return f'"{raw}"'

    def key(self, key_type: str) -> str:
        """The current key of a type."""
        return self.primary if key_type == "primary" else self.secondary

    def regenerate(self, key_type: str) -> None:
        """Replaces a key; the old one goes to the history."""
        self.old_keys.append((key_type, self.key(key_type)))
        if key_type == "primary":
            self.primary = new_key()
        else:
            self.secondary = new_key()

    def to_json(self) -> dict[str, Any]:
        """The ARM representation (GatewayContract)."""
        properties: dict[str, Any] = {}
        if self.description is not None:
            properties["description"] = self.description
        if self.location is not None:
            properties["locationData"] = dict(self.location)
        return {
            "id": self.resource_id,
            "type": "Microsoft.ApiManagement/service/gateways",
            "name": self.name,
            "properties": properties,
        }


@dataclass
class ServiceState:
    """One API Management service held by the fake."""

    subscription_id: str
    resource_group: str
    name: str
    location: str
    hostname_suffix: str
    configuration_api_hostname: str | None
    sku: str
    gateways: dict[str, GatewayState] = field(default_factory=dict)

    @property
    def resource_id(self) -> str:
        """The ARM id of the service."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.ApiManagement/service/{self.name}"
        )

    def to_json(self) -> dict[str, Any]:
        """The ARM representation (ApiManagementServiceResource), the fields a client reads."""
        host = f"{self.name.lower()}.{self.hostname_suffix}"
        hostnames: list[dict[str, Any]] = [
            {
                "type": "Proxy",
                "hostName": host,
                "negotiateClientCertificate": False,
                "defaultSslBinding": True,
                "certificateSource": "BuiltIn",
            }
        ]
        if self.configuration_api_hostname:
            hostnames.append(
                {
                    "type": "ConfigurationApi",
                    "hostName": self.configuration_api_hostname,
                    "negotiateClientCertificate": False,
                    "defaultSslBinding": False,
                    "certificateSource": "Custom",
                }
            )
        return {
            "id": self.resource_id,
            "name": self.name,
            "type": "Microsoft.ApiManagement/service",
            "location": self.location,
            "etag": "AAAAAAAAAAA=",
            "sku": {"name": self.sku, "capacity": 1},
            "properties": {
                "publisherEmail": "admin@contoso.example",
                "publisherName": "Contoso",
                "provisioningState": "Succeeded",
                "targetProvisioningState": "",
                "createdAtUtc": "2024-01-01T00:00:00Z",
                "gatewayUrl": f"https://{host}",
                "gatewayRegionalUrl": f"https://{self.name.lower()}-{_region(self.location)}"
                f"-01.regional.{self.hostname_suffix}",
                "portalUrl": f"https://{self.name.lower()}.portal.{self.hostname_suffix}",
                "developerPortalUrl": f"https://{self.name.lower()}.developer.{self.hostname_suffix}",
                "managementApiUrl": f"https://{self.name.lower()}.management.{self.hostname_suffix}",
                "scmUrl": f"https://{self.name.lower()}.scm.{self.hostname_suffix}",
                "hostnameConfigurations": hostnames,
                "configurationApi": {"legacyApi": "Disabled"},
                "publicNetworkAccess": "Enabled",
                "virtualNetworkType": "None",
                "platformVersion": "stv2",
                "disableGateway": False,
            },
        }


def _region(location: str) -> str:
    return location.replace(" ", "").lower()


@dataclass
class PrincipalState:
    """A service principal the fake's Entra ID knows."""

    client_id: str
    client_secret: str = field(repr=False)
    object_id: str
    actions: tuple[str, ...] | None  # None: every action


class FakePrincipal(BaseModel):
    """A service principal registered in a :class:`FakeApim` (its client secret is a secret).

    Attributes:
        client_id: The application (client) id.
        client_secret: The client secret.
        object_id: The principal's object id (named in 403 messages).
        tenant_id: The tenant of the fake.
        actions: The actions it may perform (patterns with ``*``), ``None`` for all.

    Example:
        >>> p = FakePrincipal(client_id="a", client_secret=SecretStr("hunter2"), object_id="o",
        ...                   tenant_id="t", actions=None)
        >>> "hunter2" in repr(p)
        False
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    client_id: str
    client_secret: SecretStr
    object_id: str
    tenant_id: str
    actions: tuple[str, ...] | None


def action_allowed(actions: tuple[str, ...] | None, action: str) -> bool:
    """Whether an action list (Azure RBAC patterns, ``*`` wildcards) allows ``action``.

    Args:
        actions: Allowed actions, ``None`` for all.
        action: The action requested.

    Returns:
        ``True`` if one pattern matches (case-insensitive).

    Example:
        >>> action_allowed(("Microsoft.ApiManagement/service/gateways/*",), GATEWAY_READ)
        True
        >>> action_allowed((GATEWAY_READ,), GATEWAY_LIST_KEYS)
        False
    """
    if actions is None:
        return True
    import fnmatch

    return any(fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in actions)


def new_guid() -> str:
    """A random GUID string.

    Returns:
        e.g. ``'3f2504e0-4f89-11d3-9a0c-0305e82c3301'``.

    Example:
        >>> len(new_guid())
        36
    """
    return str(uuid.uuid4())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_jwt(claims: dict[str, Any], secret: bytes) -> str:
    """Makes an HS256 JWT (the fake's access tokens).

    Args:
        claims: The payload.
        secret: The signing secret.

    Returns:
        ``header.payload.signature``.

    Example:
        >>> decode_jwt(encode_jwt({"aud": "x"}, b"k"), b"k")
        {'aud': 'x'}
    """
    header = _b64url(json.dumps({"typ": "JWT", "alg": "HS256"}).encode())
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(sig)}"


def decode_jwt(token: str, secret: bytes) -> dict[str, Any] | None:
    """Checks an HS256 JWT made by :func:`encode_jwt` and returns its claims.

    Args:
        token: The JWT.
        secret: The signing secret.

    Returns:
        The claims, or ``None`` if the token is malformed or its signature does not match.

    Example:
        >>> decode_jwt(encode_jwt({"aud": "x"}, b"k"), b"other") is None
        True
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        expected = hmac.new(secret, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _b64url_decode(parts[2])):
            return None
        claims = json.loads(_b64url_decode(parts[1]))
    except (ValueError, TypeError):
        return None
    return claims if isinstance(claims, dict) else None


def parse_stamp(stamp: str) -> datetime | None:
    """Reads a ``yyyyMMddHHmm`` UTC stamp.

    Args:
        stamp: The text.

    Returns:
        The aware datetime, or ``None`` if it is not such a stamp.

    Example:
        >>> parse_stamp("202601020304").isoformat()
        '2026-01-02T03:04:00+00:00'
    """
    if len(stamp) != 12 or not stamp.isdigit():
        return None
    try:
        return datetime.strptime(stamp, "%Y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError:
        return None
