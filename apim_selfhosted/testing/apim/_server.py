"""``FakeApim``: an HTTPS stand-in for ARM (API Management gateways and services) and Entra ID.

It serves, on ``https://127.0.0.1:<port>`` with a ``trustme`` certificate:

* ARM, api-version 2024-05-01: ``ApiManagementService_Get`` and the gateway operations
  ``Gateway_Get``, ``Gateway_GetEntityTag`` (HEAD), ``Gateway_CreateOrUpdate`` (ETag / If-Match),
  ``Gateway_Update``, ``Gateway_Delete`` (If-Match), ``Gateway_ListByService`` (paging through
  ``nextLink``), ``Gateway_GenerateToken``, ``Gateway_ListKeys`` (ETag header) and
  ``Gateway_RegenerateKey``. Every request is checked as ARM checks it: api-version, bearer token
  (signature, expiry, audience, tenant), subscription id, the caller's allowed actions (403
  ``AuthorizationFailed`` naming the action and scope), resource existence, body shape per the
  2024-05-01 spec. Errors use ARM's envelope ``{"error": {"code", "message"}}``.
* Entra ID: OpenID metadata (``/<tenant>/v2.0/.well-known/openid-configuration``), instance
  discovery (``/common/discovery/instance``) and the client-credentials token endpoint
  (``/<tenant>/oauth2/v2.0/token``), so that an unmodified ``ClientSecretCredential`` whose
  ``authority`` is the fake gets its access tokens from it.

Faults (latency, 429, 500, 503, dropped connections, 401, 403) can be injected per operation,
for the next N calls or at a rate. A settable clock drives token expiry and the 30-day limit.

Example:
    >>> from apim_selfhosted.testing import FakeApim
    >>> with FakeApim() as apim:  # doctest: +SKIP
    ...     apim.add_service("00000000-0000-0000-0000-000000000000", "rg1", "contoso")
    ...     apim.add_gateway("00000000-0000-0000-0000-000000000000", "rg1", "contoso", "gw1")
    ...     apim.validate_token(apim.issue_token(apim.gateway_id(
    ...         "00000000-0000-0000-0000-000000000000", "rg1", "contoso", "gw1"))).status
    'valid'
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import secrets
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr

from apim_selfhosted.testing.apim._faults import ENTRA_OPERATIONS, Fault, FaultKind, FaultRule
from apim_selfhosted.testing.apim._state import (
    GATEWAY_DELETE,
    GATEWAY_GENERATE_TOKEN,
    GATEWAY_LIST_KEYS,
    GATEWAY_READ,
    GATEWAY_REGENERATE_KEY,
    GATEWAY_WRITE,
    SERVICE_READ,
    FakePrincipal,
    GatewayState,
    PrincipalState,
    ServiceState,
    TokenCheck,
    action_allowed,
    decode_jwt,
    encode_jwt,
    new_guid,
    parse_stamp,
    sign_gateway_token,
    verify_signature,
)

logger = logging.getLogger(__name__)

API_VERSION = "2024-05-01"
MAX_TOKEN_VALIDITY = timedelta(days=30)
_GUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_ARM_RE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)"
    r"(?:/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.ApiManagement/service/(?P<svc>[^/]+)"
    r"(?:/(?P<coll>[^/]+)(?:/(?P<gw>[^/]+)(?:/(?P<act>[^/]+))?)?)?)?/?$",
    re.IGNORECASE,
)
_GATEWAY_ID_FORBIDDEN = set("*#&+:<>?/\\%")
_ACCESS_TOKEN_LIFETIME = 3599

# (method, shape) -> (operation id, RBAC action)
_GATEWAY_OPERATIONS: dict[str, tuple[str, str]] = {
    "GET": ("Gateway_Get", GATEWAY_READ),
    "HEAD": ("Gateway_GetEntityTag", GATEWAY_READ),
    "PUT": ("Gateway_CreateOrUpdate", GATEWAY_WRITE),
    "PATCH": ("Gateway_Update", GATEWAY_WRITE),
    "DELETE": ("Gateway_Delete", GATEWAY_DELETE),
}
_GATEWAY_ACTIONS: dict[str, tuple[str, str]] = {
    "generatetoken": ("Gateway_GenerateToken", GATEWAY_GENERATE_TOKEN),
    "listkeys": ("Gateway_ListKeys", GATEWAY_LIST_KEYS),
    "regeneratekey": ("Gateway_RegenerateKey", GATEWAY_REGENERATE_KEY),
}

#: The least-privilege action set of a token rotator.
ROTATOR_ACTIONS = (GATEWAY_READ, GATEWAY_GENERATE_TOKEN)


class RecordedRequest(BaseModel):
    """One request the fake served (no bodies, no headers: nothing secret).

    Example:
        >>> RecordedRequest(method="GET", path="/x", operation=None, status=404).status
        404
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: str
    path: str
    operation: str | None
    status: int | None
    client_id: str | None = None


class _ArmError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        target: str | None = None,
        headers: dict[str, str] | None = None,
        oauth: str | None = None,
    ) -> None:
        super().__init__(message)
        self.oauth = oauth
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        if self.oauth is not None:
            return {"error": self.oauth, "error_description": self.message}
        if self.target is not None:
            return {
                "error": {
                    "code": self.code,
                    "message": "One or more fields contain incorrect values:",
                    "details": [
                        {"code": self.code, "target": self.target, "message": self.message}
                    ],
                }
            }
        return {"error": {"code": self.code, "message": self.message}}


class _DroppedError(Exception):
    pass


def _validation(target: str, message: str) -> _ArmError:
    return _ArmError(400, "ValidationError", message, target=target)


def _gateway_key(name: str) -> str:
    return name.lower()


class FakeApim:
    """An HTTPS fake of ARM (API Management gateways and services) and of Entra ID.

    Use it as a context manager (or call :meth:`start` / :meth:`stop`). A default service
    principal that may do everything is created; :meth:`credential` returns a real
    ``azure.identity.ClientSecretCredential`` that obtains tokens from the fake.

    Args:
        tenant_id: The Entra ID tenant (default: a random GUID).
        audience: The ARM audience tokens must be issued for (default public cloud
            ``https://management.azure.com``; use ``https://management.chinacloudapi.cn``
            etc. to stand in for a sovereign cloud).
        clock: A function returning the current aware time; default the system clock.
            :meth:`advance` moves the fake's time forward on top of it.
        other_audiences: Further resources the fake's Entra ID issues tokens for (e.g.
            ``https://graph.microsoft.com``); ARM refuses such tokens with 401
            ``InvalidAuthenticationTokenAudience``, as it refuses any token not issued for it.
        page_size: How many gateways a ``Gateway_ListByService`` page holds.
        seed: Seed for the random choices of rate-based faults.
        host: The address to listen on.

    Example:
        >>> apim = FakeApim(page_size=2)
        >>> apim.page_size, apim.url is None
        (2, True)
    """

    def __init__(
        self,
        *,
        tenant_id: str | None = None,
        audience: str = "https://management.azure.com",
        clock: Callable[[], datetime] | None = None,
        other_audiences: Iterable[str] = (),
        page_size: int = 100,
        seed: int | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {page_size}")
        self.tenant_id = tenant_id or new_guid()
        self.audience = audience.rstrip("/")
        self.other_audiences = tuple(a.rstrip("/") for a in other_audiences)
        self.page_size = page_size
        self.host = host
        self._clock = clock or (lambda: datetime.now(UTC))
        self._offset = timedelta(0)
        self._seed = seed
        self._lock = threading.RLock()
        self._jwt_secret = secrets.token_bytes(32)
        self._services: dict[tuple[str, str, str], ServiceState] = {}
        self._principals: dict[str, PrincipalState] = {}
        self._faults: list[Fault] = []
        self._hooks: dict[int, Callable[[], None]] = {}
        self._requests: list[RecordedRequest] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._connections: set[socket.socket] = set()
        self.url: str | None = None
        self.ca_path: str | None = None
        self.principal = self.add_principal()

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> FakeApim:
        """Starts the HTTPS server on an ephemeral port.

        Returns:
            ``self``, with :attr:`url` and :attr:`ca_path` set.

        Raises:
            RuntimeError: It is already running.

        Example:
            >>> FakeApim().start().stop()  # doctest: +SKIP
        """
        import trustme

        if self._server is not None:
            raise RuntimeError("FakeApim is already running")
        ca = trustme.CA()
        cert = ca.issue_cert(self.host, "localhost", "127.0.0.1")
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-apim-")
        ca_file = Path(self._tmp.name) / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        fake = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def finish_request(self, request: Any, client_address: Any) -> None:
                # TLS handshake in the connection's own thread, not in the accept loop.
                try:
                    tls = context.wrap_socket(request, server_side=True)
                except (OSError, ssl.SSLError):
                    return
                with fake._lock:
                    fake._connections.add(tls)
                try:
                    _Handler(tls, client_address, self)
                except (OSError, ssl.SSLError):
                    pass
                finally:
                    with fake._lock:
                        fake._connections.discard(tls)
                    with contextlib.suppress(OSError):
                        tls.close()

        class _Handler(_RequestHandler):
            apim = fake

        self._server = Server((self.host, 0), _Handler)
        port = self._server.server_address[1]
        self.url = f"https://{self.host}:{port}"
        self.ca_path = str(ca_file)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-apim",
            daemon=True,
        )
        self._thread.start()
        logger.debug("FakeApim listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stops the server, closes open connections and removes the CA file.

        Example:
            >>> FakeApim().stop()  # stopping a fake that never started is fine
        """
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> FakeApim:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def authority(self) -> str:
        """The Entra ID authority to give a credential (``https://127.0.0.1:<port>``)."""
        if self.url is None:
            raise RuntimeError("FakeApim is not running: use 'with FakeApim() as apim:'")
        return self.url

    # ----------------------------------------------------------------- clock

    def now(self) -> datetime:
        """The fake's current time (the clock plus every :meth:`advance`).

        Returns:
            An aware UTC datetime.

        Example:
            >>> FakeApim().now().tzinfo is not None
            True
        """
        with self._lock:
            return self._clock().astimezone(UTC) + self._offset

    def advance(self, delta: timedelta) -> datetime:
        """Moves the fake's time forward (tokens expire, the 30-day window moves).

        Access tokens of the fake's Entra ID are checked against the real clock, so a
        credential keeps working after the fake's time jumps.

        Args:
            delta: How far to move; must not be negative.

        Returns:
            The new current time.

        Raises:
            ValueError: ``delta`` is negative.

        Example:
            >>> apim = FakeApim(clock=lambda: datetime(2026, 1, 1, tzinfo=UTC))
            >>> apim.advance(timedelta(days=31)).isoformat()
            '2026-02-01T00:00:00+00:00'
        """
        if delta < timedelta(0):
            raise ValueError("delta must not be negative: the fake's clock only moves forward")
        with self._lock:
            self._offset += delta
        return self.now()

    # ----------------------------------------------------------------- principals

    def add_principal(
        self,
        *,
        actions: Iterable[str] | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
    ) -> FakePrincipal:
        """Registers a service principal (an app with a client secret) in the fake's tenant.

        Args:
            actions: The Azure RBAC actions it may perform (``*`` wildcards allowed, e.g.
                ``Microsoft.ApiManagement/service/gateways/*``); ``None`` for every action.
            client_id: Its application id (default: a random GUID).
            client_secret: Its secret (default: random).

        Returns:
            The principal (its secret is a ``SecretStr``).

        Example:
            >>> p = FakeApim().add_principal(actions=ROTATOR_ACTIONS)
            >>> p.actions[1].rsplit("/", 2)[-2]
            'generateToken'
        """
        state = PrincipalState(
            client_id=client_id or new_guid(),
            client_secret=client_secret or secrets.token_urlsafe(30),
            object_id=new_guid(),
            actions=None if actions is None else tuple(actions),
        )
        with self._lock:
            self._principals[state.client_id.lower()] = state
        return self._public_principal(state)

    def set_actions(
        self, principal: FakePrincipal | str, actions: Iterable[str] | None
    ) -> FakePrincipal:
        """Changes what a principal may do (like editing its role assignment).

        Args:
            principal: The principal or its client id.
            actions: The allowed actions, ``None`` for all.

        Returns:
            The updated principal.

        Raises:
            KeyError: No such principal.

        Example:
            >>> apim = FakeApim()
            >>> apim.set_actions(apim.principal, ["*/read"]).actions
            ('*/read',)
        """
        client_id = principal if isinstance(principal, str) else principal.client_id
        with self._lock:
            state = self._principals[client_id.lower()]
            state.actions = None if actions is None else tuple(actions)
            return self._public_principal(state)

    def _public_principal(self, state: PrincipalState) -> FakePrincipal:
        return FakePrincipal(
            client_id=state.client_id,
            client_secret=SecretStr(state.client_secret),
            object_id=state.object_id,
            tenant_id=self.tenant_id,
            actions=state.actions,
        )

    def credential(self, principal: FakePrincipal | None = None, **kwargs: Any) -> Any:
        """A real ``azure.identity.ClientSecretCredential`` that gets its tokens from the fake.

        Args:
            principal: Whose credential (default: :attr:`principal`, allowed everything).
            **kwargs: More keyword arguments for ``ClientSecretCredential``.

        Returns:
            The credential (authority and CA pointed at the fake, instance discovery off).

        Example:
            >>> with FakeApim() as apim:  # doctest: +SKIP
            ...     apim.credential().get_token("https://management.azure.com/.default").token[:2]
            'ey'
        """
        from azure.identity import ClientSecretCredential

        who = principal or self.principal
        options: dict[str, Any] = {
            "authority": self.authority,
            "connection_verify": self.ca_path,
            "disable_instance_discovery": True,
        }
        options.update(kwargs)
        return ClientSecretCredential(
            who.tenant_id, who.client_id, who.client_secret.get_secret_value(), **options
        )

    # ----------------------------------------------------------------- resources

    def add_service(
        self,
        subscription_id: str,
        resource_group: str,
        service_name: str,
        *,
        location: str = "West Europe",
        hostname_suffix: str = "azure-api.net",
        configuration_api_hostname: str | None = None,
        sku: str = "Developer",
    ) -> str:
        """Creates an API Management service (and its subscription and resource group).

        Args:
            subscription_id: A GUID, as ARM requires.
            resource_group: The resource group name.
            service_name: The service name.
            location: Its Azure region.
            hostname_suffix: DNS suffix of its default host names: ``azure-api.net`` (public),
                ``azure-api.cn`` (China), ``azure-api.us`` (US Government).
            configuration_api_hostname: A custom host name of type ``ConfigurationApi``.
            sku: The SKU name.

        Returns:
            The service's ARM id.

        Raises:
            ValueError: The subscription id is not a GUID.

        Example:
            >>> FakeApim().add_service("00000000-0000-0000-0000-000000000000", "rg1", "contoso")
            '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg1/providers/Microsoft.ApiManagement/service/contoso'
        """
        if not _GUID_RE.match(subscription_id):
            raise ValueError(f"subscription_id must be a GUID, got {subscription_id!r}")
        state = ServiceState(
            subscription_id=subscription_id,
            resource_group=resource_group,
            name=service_name,
            location=location,
            hostname_suffix=hostname_suffix,
            configuration_api_hostname=configuration_api_hostname,
            sku=sku,
        )
        with self._lock:
            self._services[self._service_key(subscription_id, resource_group, service_name)] = state
        return state.resource_id

    def add_gateway(
        self,
        subscription_id: str,
        resource_group: str,
        service_name: str,
        name: str,
        *,
        description: str | None = None,
        location: str = "on-premises",
    ) -> str:
        """Creates a self-hosted gateway in a service (test set-up, no HTTP).

        Args:
            subscription_id: The service's subscription.
            resource_group: The service's resource group.
            service_name: The service name.
            name: The gateway id.
            description: Its description.
            location: ``locationData.name``.

        Returns:
            The gateway's ARM id.

        Raises:
            KeyError: The service does not exist.

        Example:
            >>> apim = FakeApim()
            >>> _ = apim.add_service("00000000-0000-0000-0000-000000000000", "rg1", "contoso")
            >>> apim.add_gateway("00000000-0000-0000-0000-000000000000", "rg1", "contoso",
            ...                  "gw1").rsplit("/", 2)[1:]
            ['gateways', 'gw1']
        """
        with self._lock:
            service = self._services[
                self._service_key(subscription_id, resource_group, service_name)
            ]
            gateway = GatewayState(
                name=name,
                resource_id=f"{service.resource_id}/gateways/{name}",
                description=description,
                location={"name": location},
            )
            service.gateways[_gateway_key(name)] = gateway
            return gateway.resource_id

    @staticmethod
    def gateway_id(subscription_id: str, resource_group: str, service_name: str, name: str) -> str:
        """The ARM id of a gateway.

        Args:
            subscription_id: Subscription.
            resource_group: Resource group.
            service_name: Service.
            name: Gateway id.

        Returns:
            ``/subscriptions/.../gateways/<name>``.

        Example:
            >>> FakeApim.gateway_id("s", "rg", "svc", "gw").endswith("/service/svc/gateways/gw")
            True
        """
        return (
            f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
            f"/providers/Microsoft.ApiManagement/service/{service_name}/gateways/{name}"
        )

    @staticmethod
    def _service_key(subscription_id: str, resource_group: str, name: str) -> tuple[str, str, str]:
        return (subscription_id.lower(), resource_group.lower(), name.lower())

    def _find_gateway(self, gateway: Any) -> GatewayState:
        if isinstance(gateway, str):
            match = _ARM_RE.match(gateway)
            if not match or not match["gw"]:
                raise KeyError(f"not a gateway resource id: {gateway!r}")
            sub, rg, svc, name = match["sub"], match["rg"], match["svc"], match["gw"]
        else:
            sub, rg, svc, name = (
                gateway.subscription_id,
                gateway.resource_group,
                gateway.service_name,
                gateway.name,
            )
        service = self._services.get(self._service_key(sub, rg, svc))
        if service is None or _gateway_key(name) not in service.gateways:
            raise KeyError(f"no gateway {svc}/{name} in the fake")
        return service.gateways[_gateway_key(name)]

    def has_gateway(self, gateway: Any) -> bool:
        """Whether a gateway exists.

        Args:
            gateway: Its ARM id, or an object with ``subscription_id``, ``resource_group``,
                ``service_name`` and ``name`` (such as :class:`apim_selfhosted.models.Gateway`).

        Returns:
            ``True`` if it exists.

        Example:
            >>> FakeApim().has_gateway(FakeApim.gateway_id("s", "rg", "svc", "gw"))
            False
        """
        with self._lock:
            try:
                self._find_gateway(gateway)
            except KeyError:
                return False
            return True

    def gateway_etag(self, gateway: Any) -> str:
        """The current ETag of a gateway (quoted).

        Args:
            gateway: Its ARM id or a ``Gateway``-like object.

        Returns:
            The entity tag.

        Raises:
            KeyError: No such gateway.

        Example:
            >>> apim = FakeApim()
            >>> _ = apim.add_service("00000000-0000-0000-0000-000000000000", "rg1", "contoso")
            >>> gid = apim.add_gateway("00000000-0000-0000-0000-000000000000", "rg1",
            ...                        "contoso", "gw1")
            >>> apim.gateway_etag(gid).startswith('"')
            True
        """
        with self._lock:
            return self._find_gateway(gateway).etag

    def touch_gateway(self, gateway: Any, *, description: str | None = None) -> str:
        """Changes a gateway as another writer would (new ETag), to test concurrency control.

        Args:
            gateway: Its ARM id or a ``Gateway``-like object.
            description: A new description (default: unchanged).

        Returns:
            The new ETag.

        Raises:
            KeyError: No such gateway.

        Example:
            >>> apim = FakeApim()
            >>> _ = apim.add_service("00000000-0000-0000-0000-000000000000", "rg1", "contoso")
            >>> gid = apim.add_gateway("00000000-0000-0000-0000-000000000000", "rg1",
            ...                        "contoso", "gw1")
            >>> before = apim.gateway_etag(gid)
            >>> apim.touch_gateway(gid) != before
            True
        """
        with self._lock:
            state = self._find_gateway(gateway)
            if description is not None:
                state.description = description
            state.version += 1
            return state.etag

    def issue_token(
        self, gateway: Any, *, key_type: str = "primary", expiry: datetime | None = None
    ) -> str:
        """Makes a gateway token directly (no HTTP), e.g. to seed a cluster's Secret.

        Args:
            gateway: Its ARM id or a ``Gateway``-like object.
            key_type: ``primary`` or ``secondary``.
            expiry: When it expires (default: 29 days from the fake's now).

        Returns:
            The bare token ``<gatewayId>&<yyyyMMddHHmm>&<sig>`` (no ``GatewayKey`` prefix).

        Raises:
            KeyError: No such gateway.
            ValueError: Unknown key type.

        Example:
            >>> apim = FakeApim()
            >>> _ = apim.add_service("00000000-0000-0000-0000-000000000000", "rg1", "contoso")
            >>> gid = apim.add_gateway("00000000-0000-0000-0000-000000000000", "rg1",
            ...                        "contoso", "gw1")
            >>> apim.validate_token(apim.issue_token(gid)).status
            'valid'
        """
        if key_type not in ("primary", "secondary"):
            raise ValueError(f"key_type must be 'primary' or 'secondary', got {key_type!r}")
        when = expiry or self.now() + timedelta(days=29)
        with self._lock:
            state = self._find_gateway(gateway)
            return sign_gateway_token(
                state.name, when.astimezone(UTC).strftime("%Y%m%d%H%M"), state.key(key_type)
            )

    def regenerate_key(self, gateway: Any, key_type: str) -> None:
        """Regenerates a gateway key directly (no HTTP), invalidating its tokens.

        Args:
            gateway: Its ARM id or a ``Gateway``-like object.
            key_type: ``primary`` or ``secondary``.

        Raises:
            KeyError: No such gateway.
            ValueError: Unknown key type.

        Example:
            >>> apim = FakeApim()
            >>> _ = apim.add_service("00000000-0000-0000-0000-000000000000", "rg1", "contoso")
            >>> gid = apim.add_gateway("00000000-0000-0000-0000-000000000000", "rg1",
            ...                        "contoso", "gw1")
            >>> token = apim.issue_token(gid)
            >>> apim.regenerate_key(gid, "primary")
            >>> apim.validate_token(token).status
            'invalidated'
        """
        if key_type not in ("primary", "secondary"):
            raise ValueError(f"key_type must be 'primary' or 'secondary', got {key_type!r}")
        with self._lock:
            self._find_gateway(gateway).regenerate(key_type)

    def validate_token(self, value: str | SecretStr | Any) -> TokenCheck:
        """Checks a gateway token as the configuration endpoint would.

        Args:
            value: The token, with or without the ``GatewayKey `` prefix; a ``SecretStr`` or an
                object with a ``value`` ``SecretStr`` (such as :class:`apim_selfhosted.Token`).

        Returns:
            A :class:`TokenCheck`: ``valid``, ``expired``, ``invalidated`` (its key was
            regenerated), ``unknown_gateway``, ``bad_signature`` or ``malformed``.

        Example:
            >>> FakeApim().validate_token("GatewayKey gw1&202601010000&c2ln").status
            'unknown_gateway'
            >>> FakeApim().validate_token("nonsense").status
            'malformed'
        """
        if hasattr(value, "value") and isinstance(value.value, SecretStr):
            value = value.value
        text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        text = text.strip()
        if text.lower().startswith("gatewaykey "):
            text = text[len("gatewaykey ") :].strip()
        parts = text.split("&")
        if len(parts) != 3 or not parts[0] or not parts[2]:
            return TokenCheck(status="malformed")
        expires_on = parse_stamp(parts[1])
        if expires_on is None:
            return TokenCheck(status="malformed", gateway_id=parts[0])
        found = False
        with self._lock:
            now = self.now()
            for service in self._services.values():
                state = service.gateways.get(_gateway_key(parts[0]))
                if state is None:
                    continue
                found = True
                base = {
                    "gateway_id": parts[0],
                    "resource_id": state.resource_id,
                    "expires_on": expires_on,
                }
                for key_type in ("primary", "secondary"):
                    if verify_signature(text, state.key(key_type)):
                        status = "valid" if expires_on > now else "expired"
                        return TokenCheck(status=status, key_type=key_type, **base)
                for key_type, old in state.old_keys:
                    if verify_signature(text, old):
                        return TokenCheck(status="invalidated", key_type=key_type, **base)
        if not found:
            return TokenCheck(status="unknown_gateway", gateway_id=parts[0], expires_on=expires_on)
        return TokenCheck(status="bad_signature", gateway_id=parts[0], expires_on=expires_on)

    # ----------------------------------------------------------------- faults

    def inject_fault(
        self,
        kind: FaultKind,
        *,
        operation: str | None = None,
        times: int | None = 1,
        rate: float | None = None,
        delay: float = 0.0,
        retry_after: int | None = None,
    ) -> Fault:
        """Makes the next matching calls fail (or slow down).

        Args:
            kind: ``latency``, ``throttle`` (429), ``server_error`` (500), ``unavailable``
                (503), ``drop`` (connection closed without an answer), ``unauthorized`` (401)
                or ``forbidden`` (403).
            operation: The operation id (``Gateway_GenerateToken``, ``Gateway_ListKeys``,
                ``Gateway_Get``, ``ApiManagementService_Get``, ``Entra_Token`` ...); ``None`` for
                every ARM operation.
            times: For how many matching calls; ``None`` for no limit.
            rate: Probability per matching call (``None``: every one).
            delay: Seconds of latency (``latency``).
            retry_after: ``Retry-After`` seconds for ``throttle`` (default 1) and ``unavailable``.

        Returns:
            The installed :class:`Fault` (see ``.hits``, ``.remaining``, ``.remove()``).

        Example:
            >>> apim = FakeApim()
            >>> apim.inject_fault("throttle", operation="Gateway_GenerateToken", times=3).remaining
            3
        """
        rule = FaultRule(
            kind=kind,
            operation=operation,
            times=times,
            rate=rate,
            delay=delay,
            retry_after=retry_after,
        )
        with self._lock:
            fault = Fault(rule, seed=None if self._seed is None else self._seed + len(self._faults))
            self._faults.append(fault)
        return fault

    def on_request(
        self, operation: str, callback: Callable[[], None], *, times: int | None = 1
    ) -> Fault:
        """Runs ``callback`` when a matching request arrives, before it is served.

        For deterministic race tests: e.g. change a gateway (:meth:`touch_gateway`) between
        the client's read and its conditional write.

        Args:
            operation: The operation id, e.g. ``Gateway_CreateOrUpdate``.
            callback: Called with no arguments in the server thread.
            times: For how many matching calls; ``None`` for no limit.

        Returns:
            The installed hook (a :class:`Fault` of kind ``latency`` with no delay).

        Example:
            >>> apim = FakeApim()
            >>> apim.on_request("Gateway_Get", lambda: None).remaining
            1
        """
        fault = self.inject_fault("latency", operation=operation, times=times)
        with self._lock:
            self._hooks[id(fault)] = callback
        return fault

    def clear_faults(self) -> None:
        """Removes every injected fault.

        Example:
            >>> apim = FakeApim(); _ = apim.inject_fault("drop"); apim.clear_faults()
        """
        with self._lock:
            for fault in self._faults:
                fault.remove()
            self._faults.clear()
            self._hooks.clear()

    # ----------------------------------------------------------------- request log

    @property
    def requests(self) -> tuple[RecordedRequest, ...]:
        """Every request served so far, oldest first."""
        with self._lock:
            return tuple(self._requests)

    def request_count(self, operation: str | None = None, *, arm_only: bool = False) -> int:
        """How many requests were served.

        Args:
            operation: Count only this operation id (case-insensitive).
            arm_only: Leave out the Entra ID requests.

        Returns:
            The number of requests.

        Example:
            >>> FakeApim().request_count()
            0
        """
        with self._lock:
            return sum(
                1
                for r in self._requests
                if (operation is None or (r.operation or "").lower() == operation.lower())
                and not (arm_only and r.operation in ENTRA_OPERATIONS)
            )

    def reset_requests(self) -> None:
        """Forgets the request log.

        Example:
            >>> FakeApim().reset_requests()
        """
        with self._lock:
            self._requests.clear()

    # ----------------------------------------------------------------- request handling

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _take_fault(self, operation: str | None) -> Fault | None:
        with self._lock:
            faults = list(self._faults)
        for fault in faults:
            if fault.take(operation):
                return fault
        return None

    def _authenticate(self, header: str | None) -> PrincipalState:
        challenge = {
            "WWW-Authenticate": (
                f'Bearer authorization_uri="{self.url}/{self.tenant_id}", '
                'error="invalid_token", error_description="The authentication failed"'
            )
        }
        if not header:
            raise _ArmError(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
                headers=challenge,
            )
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _ArmError(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is provided in an invalid "
                "format.",
                headers=challenge,
            )
        claims = decode_jwt(token.strip(), self._jwt_secret)
        if claims is None:
            raise _ArmError(
                401,
                "InvalidAuthenticationToken",
                "The access token is invalid.",
                headers=challenge,
            )
        if claims.get("exp", 0) <= time.time():
            raise _ArmError(
                401,
                "ExpiredAuthenticationToken",
                "The access token expiry UTC time is earlier than current UTC time.",
                headers=challenge,
            )
        aud = str(claims.get("aud", ""))
        if aud.rstrip("/") != self.audience:
            raise _ArmError(
                401,
                "InvalidAuthenticationTokenAudience",
                f"The access token has been obtained for wrong audience or resource '{aud}'. It "
                f"should exactly match with one of the allowed audiences '{self.audience}/',"
                f"'{self.audience}'.",
                headers=challenge,
            )
        if claims.get("tid") != self.tenant_id:
            raise _ArmError(
                401,
                "InvalidAuthenticationTokenTenant",
                f"The access token is from the wrong issuer '{claims.get('iss')}'.",
                headers=challenge,
            )
        with self._lock:
            principal = self._principals.get(str(claims.get("appid", "")).lower())
        if principal is None:
            raise _ArmError(
                401, "InvalidAuthenticationToken", "The access token is invalid.", headers=challenge
            )
        return principal

    def _authorize(self, principal: PrincipalState, action: str, scope: str) -> None:
        if not action_allowed(principal.actions, action):
            raise _forbidden(principal, action, scope)

    def _route(self, method: str, path: str) -> tuple[str | None, str | None, re.Match[str] | None]:
        match = _ARM_RE.match(path)
        if match is None:
            return None, None, None
        if match["svc"] is None:
            return None, None, match
        if match["coll"] is None:
            return (
                ("ApiManagementService_Get", SERVICE_READ, match)
                if method == "GET"
                else (None, None, match)
            )
        if match["coll"].lower() != "gateways":
            return None, None, match
        if match["gw"] is None:
            return (
                ("Gateway_ListByService", GATEWAY_READ, match)
                if method == "GET"
                else (None, None, match)
            )
        if match["act"] is None:
            op = _GATEWAY_OPERATIONS.get(method)
            return (op[0], op[1], match) if op else (None, None, match)
        act = _GATEWAY_ACTIONS.get(match["act"].lower())
        if act and method == "POST":
            return act[0], act[1], match
        return None, None, match

    def _arm(
        self,
        method: str,
        raw_path: str,
        query: dict[str, list[str]],
        headers: Any,
        body: bytes,
        operation: str | None,
        action: str | None,
        match: re.Match[str] | None,
    ) -> tuple[int, Any, dict[str, str], str | None]:
        """Serves one ARM request: (status, JSON body or None, headers, client id)."""
        principal = self._authenticate(headers.get("Authorization"))
        versions = query.get("api-version")
        if not versions:
            raise _ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if versions[-1] != API_VERSION:
            raise _ArmError(
                400,
                "InvalidApiVersionParameter",
                f"The api-version '{versions[-1]}' is invalid. The supported versions are "
                f"'{API_VERSION}'.",
            )
        if match is None:
            raise _ArmError(
                404, "NotFound", f"The requested path '{urlsplit(raw_path).path}' was not found."
            )
        sub = unquote(match["sub"])
        if not _GUID_RE.match(sub):
            raise _ArmError(
                400,
                "InvalidSubscriptionId",
                f"The provided subscription identifier '{sub}' is malformed or invalid.",
            )
        with self._lock:
            known_sub = any(key[0] == sub.lower() for key in self._services)
        if not known_sub:
            raise _ArmError(
                404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found."
            )
        if operation is None or action is None:
            if match["svc"] is not None and method not in ("GET", "PUT", "PATCH", "DELETE", "POST"):
                raise _ArmError(405, "MethodNotAllowed", f"The method '{method}' is not allowed.")
            raise _ArmError(
                404,
                "InvalidResourceType",
                "The resource type could not be found in the namespace "
                f"'Microsoft.ApiManagement' for api version '{API_VERSION}'.",
            )
        rg, svc = unquote(match["rg"]), unquote(match["svc"])
        scope = urlsplit(raw_path).path.rstrip("/")
        if match["act"]:
            scope = scope.rsplit("/", 1)[0]
        self._authorize(principal, action, unquote(scope))
        with self._lock:
            has_rg = any(key[:2] == (sub.lower(), rg.lower()) for key in self._services)
            service = self._services.get(self._service_key(sub, rg, svc))
        if not has_rg:
            raise _ArmError(
                404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found."
            )
        if service is None:
            raise _ArmError(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.ApiManagement/service/{svc}' under resource group "
                f"'{rg}' was not found. For more details please go to "
                "https://aka.ms/ARMResourceNotFoundFix",
            )
        if operation == "ApiManagementService_Get":
            return 200, service.to_json(), {}, principal.client_id
        if operation == "Gateway_ListByService":
            return (*self._list_gateways(service, query, raw_path), principal.client_id)
        gateway_id = unquote(match["gw"])
        self._check_gateway_id(gateway_id)
        handler = getattr(self, f"_op_{operation.split('_', 1)[1].lower()}")
        status, payload, out_headers = handler(service, gateway_id, headers, body)
        return status, payload, out_headers, principal.client_id

    @staticmethod
    def _check_gateway_id(gateway_id: str) -> None:
        if not 1 <= len(gateway_id) <= 80:
            raise _validation("gatewayId", "gatewayId must be between 1 and 80 characters long.")
        if gateway_id.lower() == "managed":
            raise _validation("gatewayId", "gatewayId must not have value 'managed'.")
        bad = sorted(set(gateway_id) & _GATEWAY_ID_FORBIDDEN)
        if bad:
            raise _validation("gatewayId", f"gatewayId must not contain {''.join(bad)!r}.")

    def _list_gateways(
        self, service: ServiceState, query: dict[str, list[str]], raw_path: str
    ) -> tuple[int, Any, dict[str, str]]:
        if "$filter" in query:
            raise _ArmError(
                400, "ValidationError", "FakeApim does not implement $filter on gateways."
            )
        try:
            top = int(query["$top"][-1]) if "$top" in query else None
            skip = int(query["$skip"][-1]) if "$skip" in query else 0
        except ValueError:
            raise _validation("$top", "$top and $skip must be integers.") from None
        if top is not None and top < 1:
            raise _validation("$top", "$top must be greater than or equal to 1.")
        if skip < 0:
            raise _validation("$skip", "$skip must be greater than or equal to 0.")
        with self._lock:
            items = sorted(service.gateways.values(), key=lambda g: g.name.lower())
            size = min(top or self.page_size, self.page_size)
            page = [g.to_json() for g in items[skip : skip + size]]
        result: dict[str, Any] = {"value": page, "count": len(items)}
        if skip + size < len(items):
            params = {"api-version": API_VERSION, "$skip": str(skip + size)}
            if top is not None:
                params["$top"] = str(top)
            path = quote(urlsplit(raw_path).path)
            result["nextLink"] = f"{self.url}{path}?{urlencode(params, safe='$')}"
        return 200, result, {}

    def _read_json(self, body: bytes) -> dict[str, Any]:
        try:
            data = json.loads(body or b"null")
        except ValueError as exc:
            raise _ArmError(
                400,
                "InvalidRequestContent",
                f"The request content was invalid and could not be deserialized: {exc}.",
            ) from None
        if not isinstance(data, dict):
            raise _ArmError(
                400,
                "InvalidRequestContent",
                "The request content was invalid and could not be deserialized: expected a JSON "
                "object.",
            )
        return data

    def _gateway(self, service: ServiceState, gateway_id: str) -> GatewayState:
        state = service.gateways.get(_gateway_key(gateway_id))
        if state is None:
            raise _ArmError(404, "ResourceNotFound", "Gateway not found.")
        return state

    def _op_get(self, service: ServiceState, gateway_id: str, headers: Any, body: bytes) -> Any:
        with self._lock:
            state = self._gateway(service, gateway_id)
            return 200, state.to_json(), {"ETag": state.etag}

    def _op_getentitytag(
        self, service: ServiceState, gateway_id: str, headers: Any, body: bytes
    ) -> Any:
        with self._lock:
            state = self._gateway(service, gateway_id)
            return 200, None, {"ETag": state.etag}

    @staticmethod
    def _check_properties(data: dict[str, Any], *, partial: bool) -> dict[str, Any]:
        props = data.get("properties", {})
        if props is None:
            props = {}
        if not isinstance(props, dict):
            raise _validation("properties", "properties must be an object.")
        out: dict[str, Any] = {}
        if "description" in props and props["description"] is not None:
            desc = props["description"]
            if not isinstance(desc, str):
                raise _validation("description", "description must be a string.")
            if len(desc) > 1000:
                raise _validation(
                    "description", "description must be at most 1000 characters long."
                )
            out["description"] = desc
        if "locationData" in props and props["locationData"] is not None:
            loc = props["locationData"]
            if not isinstance(loc, dict):
                raise _validation("locationData", "locationData must be an object.")
            if not isinstance(loc.get("name"), str) or not loc["name"]:
                raise _validation(
                    "locationData.name", "locationData.name is required (a non-empty string)."
                )
            clean: dict[str, str] = {}
            for field_name in ("name", "city", "district", "countryOrRegion"):
                value = loc.get(field_name)
                if value is None:
                    continue
                if not isinstance(value, str) or len(value) > 256:
                    raise _validation(
                        f"locationData.{field_name}",
                        f"locationData.{field_name} must be a string of at most 256 characters.",
                    )
                clean[field_name] = value
            out["locationData"] = clean
        return out

    def _op_createorupdate(
        self, service: ServiceState, gateway_id: str, headers: Any, body: bytes
    ) -> Any:
        props = self._check_properties(self._read_json(body), partial=False)
        if_match = headers.get("If-Match")
        with self._lock:
            state = service.gateways.get(_gateway_key(gateway_id))
            if if_match is not None and (
                state is None or (if_match.strip() != "*" and if_match.strip() != state.etag)
            ):
                raise _precondition_failed()
            created = state is None
            if state is None:
                state = GatewayState(
                    name=gateway_id, resource_id=f"{service.resource_id}/gateways/{gateway_id}"
                )
                service.gateways[_gateway_key(gateway_id)] = state
            else:
                state.version += 1
            state.description = props.get("description")
            state.location = props.get("locationData")
            return (201 if created else 200), state.to_json(), {"ETag": state.etag}

    def _op_update(self, service: ServiceState, gateway_id: str, headers: Any, body: bytes) -> Any:
        data = self._read_json(body)
        props = self._check_properties(data, partial=True)
        if_match = headers.get("If-Match")
        if if_match is None:
            raise _validation("If-Match", "The If-Match header is required.")
        with self._lock:
            state = self._gateway(service, gateway_id)
            if if_match.strip() not in ("*", state.etag):
                raise _precondition_failed()
            if "description" in props:
                state.description = props["description"]
            if "locationData" in props:
                state.location = props["locationData"]
            state.version += 1
            return 200, state.to_json(), {"ETag": state.etag}

    def _op_delete(self, service: ServiceState, gateway_id: str, headers: Any, body: bytes) -> Any:
        if_match = headers.get("If-Match")
        if if_match is None:
            raise _validation("If-Match", "The If-Match header is required.")
        with self._lock:
            state = service.gateways.get(_gateway_key(gateway_id))
            if state is None:
                return 204, None, {}
            if if_match.strip() not in ("*", state.etag):
                raise _precondition_failed()
            del service.gateways[_gateway_key(gateway_id)]
            return 200, None, {}

    @staticmethod
    def _key_type(data: dict[str, Any]) -> str:
        key_type = data.get("keyType")
        if key_type is None:
            raise _validation("keyType", "keyType is required: 'primary' or 'secondary'.")
        if not isinstance(key_type, str) or key_type.lower() not in ("primary", "secondary"):
            raise _validation(
                "keyType", f"keyType must be 'primary' or 'secondary', got {key_type!r}."
            )
        return key_type.lower()

    def _op_generatetoken(
        self, service: ServiceState, gateway_id: str, headers: Any, body: bytes
    ) -> Any:
        data = self._read_json(body)
        key_type = self._key_type(data)
        raw = data.get("expiry")
        if raw is None:
            raise _validation("expiry", "expiry is required (an ISO 8601 date-time).")
        try:
            expiry = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
        except ValueError:
            raise _validation("expiry", f"expiry is not an ISO 8601 date-time: {raw!r}.") from None
        if expiry.tzinfo is None:
            expiry = expiry.replace(tzinfo=UTC)
        now = self.now()
        if expiry <= now:
            raise _validation("expiry", "expiry must be in the future.")
        if expiry > now + MAX_TOKEN_VALIDITY:
            raise _validation(
                "expiry", "expiry must be at most 30 days from now (maximum token expiry)."
            )
        with self._lock:
            state = self._gateway(service, gateway_id)
            value = sign_gateway_token(
                state.name, expiry.astimezone(UTC).strftime("%Y%m%d%H%M"), state.key(key_type)
            )
        return 200, {"value": value}, {}

    def _op_listkeys(
        self, service: ServiceState, gateway_id: str, headers: Any, body: bytes
    ) -> Any:
        with self._lock:
            state = self._gateway(service, gateway_id)
            return (
                200,
                {"primary": state.primary, "secondary": state.secondary},
                {"ETag": state.etag},
            )

    def _op_regeneratekey(
        self, service: ServiceState, gateway_id: str, headers: Any, body: bytes
    ) -> Any:
        key_type = self._key_type(self._read_json(body))
        with self._lock:
            self._gateway(service, gateway_id).regenerate(key_type)
        return 204, None, {}

    # ----------------------------------------------------------------- Entra ID

    def _entra(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[str | None, int, Any, str | None]:
        """Serves an Entra ID request: (operation, status, JSON body, client id)."""
        parts = [p for p in path.split("/") if p]
        if method == "GET" and parts[:3] == ["common", "discovery", "instance"]:
            tenant_hint = self.tenant_id
            auth_endpoint = query.get("authorization_endpoint", [""])[-1]
            ep_parts = [p for p in urlsplit(auth_endpoint).path.split("/") if p]
            if ep_parts:
                tenant_hint = ep_parts[0]
            host = urlsplit(self.authority).netloc
            return (
                "Entra_InstanceDiscovery",
                200,
                {
                    "tenant_discovery_endpoint": (
                        f"{self.url}/{tenant_hint}/v2.0/.well-known/openid-configuration"
                    ),
                    "api-version": "1.1",
                    "metadata": [
                        {"preferred_network": host, "preferred_cache": host, "aliases": [host]}
                    ],
                },
                None,
            )
        if (
            method == "GET"
            and len(parts) == 4
            and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]
        ):
            tenant = parts[0]
            if not self._tenant_ok(tenant):
                return (
                    "Entra_OpenIdConfiguration",
                    400,
                    _aad_error(
                        "invalid_tenant",
                        90002,
                        f"Tenant '{tenant}' not found. Check to make sure you have the correct "
                        "tenant ID and are signing into the correct cloud.",
                    ),
                    None,
                )
            base = f"{self.url}/{self.tenant_id}"
            return (
                "Entra_OpenIdConfiguration",
                200,
                {
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                    "token_endpoint_auth_methods_supported": [
                        "client_secret_post",
                        "private_key_jwt",
                        "client_secret_basic",
                    ],
                    "jwks_uri": f"{base}/discovery/v2.0/keys",
                    "response_modes_supported": ["query", "fragment", "form_post"],
                    "subject_types_supported": ["pairwise"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "response_types_supported": ["code", "id_token", "code id_token"],
                    "scopes_supported": ["openid", "profile", "email", "offline_access"],
                    "issuer": f"{base}/v2.0",
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                    "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                    "tenant_region_scope": "EU",
                    "cloud_instance_name": urlsplit(self.authority).netloc,
                },
                None,
            )
        if method == "POST" and len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"]:
            return self._token_endpoint(parts[0], body)
        return None, 404, _aad_error("not_found", 0, "The requested endpoint was not found."), None

    def _tenant_ok(self, tenant: str) -> bool:
        return tenant.lower() in (self.tenant_id.lower(), "organizations", "common")

    def _token_endpoint(self, tenant: str, body: bytes) -> tuple[str, int, Any, str | None]:
        op = "Entra_Token"
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if not self._tenant_ok(tenant):
            return (
                op,
                400,
                _aad_error("invalid_tenant", 90002, f"Tenant '{tenant}' not found."),
                None,
            )
        if form.get("grant_type") != "client_credentials":
            return (
                op,
                400,
                _aad_error(
                    "unsupported_grant_type",
                    70003,
                    "The app requested an unsupported grant type "
                    f"'{form.get('grant_type')}'; this fake supports 'client_credentials'.",
                ),
                None,
            )
        client_id = form.get("client_id", "")
        with self._lock:
            principal = self._principals.get(client_id.lower())
        if principal is None:
            return (
                op,
                400,
                _aad_error(
                    "unauthorized_client",
                    700016,
                    f"Application with identifier '{client_id}' was not found in the directory "
                    f"'{self.tenant_id}'.",
                ),
                None,
            )
        if not secrets.compare_digest(
            form.get("client_secret", "").encode(), principal.client_secret.encode()
        ):
            return (
                op,
                401,
                _aad_error(
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request "
                    "is "
                    f"the client secret value, not the client secret ID, for a secret added to app "
                    f"'{client_id}'.",
                ),
                client_id,
            )
        scopes = form.get("scope", "").split()
        resource = next((s[: -len("/.default")] for s in scopes if s.endswith("/.default")), None)
        known = (self.audience, *self.other_audiences)
        if resource is None or resource.rstrip("/") not in known:
            return (
                op,
                400,
                _aad_error(
                    "invalid_scope",
                    500011,
                    f"The resource principal named {resource or form.get('scope', '')} was not "
                    f"found in the tenant named {self.tenant_id}.",
                ),
                client_id,
            )
        now = int(time.time())
        claims = {
            "aud": resource,
            "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": now + _ACCESS_TOKEN_LIFETIME,
            "appid": principal.client_id,
            "oid": principal.object_id,
            "sub": principal.object_id,
            "tid": self.tenant_id,
            "idtyp": "app",
            "ver": "1.0",
        }
        return (
            op,
            200,
            {
                "token_type": "Bearer",
                "expires_in": _ACCESS_TOKEN_LIFETIME,
                "ext_expires_in": _ACCESS_TOKEN_LIFETIME,
                "access_token": encode_jwt(claims, self._jwt_secret),
            },
            client_id,
        )


def _aad_error(error: str, code: int, description: str) -> dict[str, Any]:
    return {
        "error": error,
        "error_description": f"AADSTS{code}: {description}",
        "error_codes": [code],
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
        "trace_id": new_guid(),
        "correlation_id": new_guid(),
    }


def _precondition_failed() -> _ArmError:
    return _ArmError(
        412,
        "PreconditionFailed",
        "Resource was modified since last retrieval. Refresh entity and try again.",
    )


def _forbidden(principal: PrincipalState, action: str, scope: str) -> _ArmError:
    return _ArmError(
        403,
        "AuthorizationFailed",
        f"The client '{principal.client_id}' with object id '{principal.object_id}' does not "
        f"have authorization to perform action '{action}' over scope '{scope}' or the scope is "
        "invalid. If access was recently granted, please refresh your credentials.",
    )


_FAULT_ERRORS: dict[str, tuple[int, str, str]] = {
    "throttle": (
        429,
        "TooManyRequests",
        "The request is being throttled as the limit has been reached for operation type. "
        "Please retry after the time in the Retry-After header.",
    ),
    "server_error": (500, "InternalServerError", "An internal server error occurred."),
    "unavailable": (503, "ServiceUnavailable", "The service is temporarily unavailable."),
    "unauthorized": (401, "InvalidAuthenticationToken", "The access token is invalid."),
}


_OAUTH_ERRORS: dict[str, str] = {
    "throttle": "temporarily_unavailable",
    "server_error": "server_error",
    "unavailable": "temporarily_unavailable",
    "unauthorized": "invalid_client",
}


class _RequestHandler(BaseHTTPRequestHandler):
    apim: FakeApim
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out without a delayed-ACK stall
    server_version = "FakeApim/1.0"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("FakeApim %s", format % args)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        apim = self.apim
        split = urlsplit(self.path)
        query = parse_qs(split.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        is_arm = split.path.lower().startswith("/subscriptions/")
        client_id: str | None = None
        operation: str | None = None
        head = method == "HEAD"
        try:
            if is_arm:
                operation, action, match = apim._route(method, split.path)
            else:
                operation, action, match = _entra_operation(method, split.path), None, None
            fault = apim._take_fault(operation)
            if fault is not None:
                self._apply_fault(fault, operation, action, split.path)
            if is_arm:
                status, payload, headers, client_id = apim._arm(
                    method, self.path, query, self.headers, body, operation, action, match
                )
            else:
                operation, status, payload, client_id = apim._entra(method, split.path, query, body)
                headers = {}
        except _ArmError as err:
            status, payload, headers = err.status, err.body(), err.headers
        except _DroppedError:
            # Recorded before the connection closes, so a client never sees it unrecorded.
            self._record(method, split.path, operation, None, client_id)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._record(method, split.path, operation, status, client_id)
        self._send(status, payload, headers, head=head)

    def _record(
        self,
        method: str,
        path: str,
        operation: str | None,
        status: int | None,
        client_id: str | None,
    ) -> None:
        self.apim._record(
            RecordedRequest(
                method=method, path=path, operation=operation, status=status, client_id=client_id
            )
        )

    def _apply_fault(
        self, fault: Fault, operation: str | None, action: str | None, path: str
    ) -> None:
        rule = fault.rule
        if rule.kind == "latency":
            with self.apim._lock:
                hook = self.apim._hooks.get(id(fault))
            if hook is not None:
                hook()
            if rule.delay:
                time.sleep(rule.delay)
            return
        if rule.kind == "drop":
            raise _DroppedError()
        if rule.kind == "forbidden":
            principal = PrincipalState(
                client_id="00000000-0000-0000-0000-000000000000",
                client_secret="",
                object_id="00000000-0000-0000-0000-000000000000",
                actions=(),
            )
            auth = self.headers.get("Authorization", "")
            claims = decode_jwt(auth.partition(" ")[2].strip(), self.apim._jwt_secret) or {}
            principal.client_id = str(claims.get("appid", principal.client_id))
            principal.object_id = str(claims.get("oid", principal.object_id))
            raise _forbidden(principal, action or "*", path.rstrip("/"))
        status, code, message = _FAULT_ERRORS[rule.kind]
        headers: dict[str, str] = {}
        if rule.kind == "throttle":
            headers["Retry-After"] = str(1 if rule.retry_after is None else rule.retry_after)
        elif rule.kind == "unavailable" and rule.retry_after is not None:
            headers["Retry-After"] = str(rule.retry_after)
        if operation in ENTRA_OPERATIONS:
            # Entra ID answers in OAuth's error format, not ARM's.
            raise _ArmError(status, code, message, headers=headers, oauth=_OAUTH_ERRORS[rule.kind])
        raise _ArmError(status, code, message, headers=headers)

    def _send(self, status: int, payload: Any, headers: dict[str, str], *, head: bool) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("x-ms-request-id", new_guid())
        self.send_header("Content-Length", "0" if head else str(len(data)))
        self.end_headers()
        if data and not head:
            self.wfile.write(data)


def _entra_operation(method: str, path: str) -> str | None:
    parts = [p for p in path.split("/") if p]
    if parts[:3] == ["common", "discovery", "instance"]:
        return "Entra_InstanceDiscovery"
    if len(parts) == 4 and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
        return "Entra_OpenIdConfiguration"
    if len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"]:
        return "Entra_Token"
    return None
