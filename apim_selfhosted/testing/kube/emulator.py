"""``KubeEmulator``: a Kubernetes API server in the test process, for the client and kubectl.

It wires the object store, the controllers (deployment, replica set, "kubelet", load
balancers), the HTTP layer, RBAC and fault injection together, and writes a kubeconfig that the
``kubernetes`` client and ``kubectl`` accept as is.

Example:
    >>> from apim_selfhosted.testing import KubeEmulator
    >>> with KubeEmulator(controllers=False) as kube:  # doctest: +SKIP
    ...     from kubernetes import client
    ...     api = client.CoreV1Api(kube.api_client())
    ...     api.list_namespace().items[0].metadata.name
    'default'
"""

from __future__ import annotations

import base64
import inspect
import logging
import secrets
import shutil
import ssl
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

if TYPE_CHECKING:
    from apim_selfhosted.testing.kube.server import ApiServer, HttpServer, RequestRecord
    from apim_selfhosted.testing.kube.store import Store

logger = logging.getLogger(__name__)

ADMIN_USER = "kubernetes-admin"


@dataclass(frozen=True)
class KubeUser:
    """A user of the emulator with its bearer token and a kubeconfig of its own.

    Attributes:
        name: The user name RBAC sees.
        token: The bearer token (never shown in reprs).
        kubeconfig_path: A kubeconfig that authenticates as this user.
    """

    name: str
    token: SecretStr
    kubeconfig_path: Path


class KubeEmulator:
    """A Kubernetes API server on ``127.0.0.1`` with controllers, for tests and demos.

    Args:
        ready_delay: Seconds a new pod takes to become Ready (scripted behaviours may differ).
        assign_load_balancer: Give ``LoadBalancer`` Services an ingress IP (else pending).
        kube_version: The release to emulate (``major.minor``, 1.29 or later): the schemas
            used for validation and OpenAPI, and ``/version``.
        controllers: Run the controllers (deployments, replica sets, pods, load balancers).
        port: TCP port; 0 picks a free one.
        bookmark_interval: Seconds between ``BOOKMARK`` events on idle watches that allow them.
        history: How many changes watches can resume from (older: ``410 Gone``).
        clock: The time source (aware UTC datetimes) for timestamps.
        record_requests: Keep a record of every request (see :attr:`requests`).
        tls: Serve HTTPS with a throw-away CA written into the kubeconfig (kubectl only sends
            bearer tokens over TLS); False serves plain HTTP.

    Raises:
        ValueError: ``kube_version`` is not supported, or an option is out of range (the
            message names it and what is allowed).

    Example:
        >>> kube = KubeEmulator(kube_version="1.33", controllers=False)
        >>> kube.kube_version
        '1.33'
    """

    def __init__(
        self,
        *,
        ready_delay: float = 0.05,
        assign_load_balancer: bool = True,
        kube_version: str = "1.33",
        controllers: bool = True,
        port: int = 0,
        bookmark_interval: float = 1.0,
        history: int = 2000,
        clock: Callable[[], datetime] | None = None,
        record_requests: bool = True,
        tls: bool = True,
    ) -> None:
        from apim_selfhosted.testing.kube.schema import schema_dir

        schema_dir(kube_version)  # fail early on an unknown version
        if ready_delay < 0:
            raise ValueError(f"ready_delay must be >= 0 seconds, got {ready_delay!r}")
        if bookmark_interval <= 0:
            raise ValueError(f"bookmark_interval must be > 0 seconds, got {bookmark_interval!r}")
        if history < 1:
            raise ValueError(f"history must be >= 1 change, got {history!r}")
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be 0 (any free port) or 1-65535, got {port!r}")
        self.kube_version = kube_version
        self.ready_delay = ready_delay
        self.assign_load_balancer = assign_load_balancer
        self._run_controllers = controllers
        self._port = port
        self._bookmark_interval = bookmark_interval
        self._history = history
        self._clock = clock
        self._record_requests = record_requests
        self._use_tls = tls
        self._ca_pem: bytes | None = None
        self._http: HttpServer | None = None
        self._api: ApiServer | None = None
        self._store: Store | None = None
        self._controllers: Any = None
        self._dir: Path | None = None
        self._admin_token = secrets.token_urlsafe(24)
        self._users: dict[str, KubeUser] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        state = self.url if self._http is not None else "stopped"
        return f"KubeEmulator(kube_version={self.kube_version!r}, {state})"

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> KubeEmulator:
        """Starts the store, controllers and HTTP server and writes the kubeconfig.

        Returns:
            The emulator itself.
        """
        if self._http is not None:
            return self
        from apim_selfhosted.testing.kube.defaults import Defaulter
        from apim_selfhosted.testing.kube.openapi import Documents
        from apim_selfhosted.testing.kube.rbac import Authorizer
        from apim_selfhosted.testing.kube.schema import load_schemas
        from apim_selfhosted.testing.kube.server import ApiServer, HttpServer
        from apim_selfhosted.testing.kube.store import Store
        from apim_selfhosted.testing.kube.validation import Validator

        schemas = load_schemas(self.kube_version)
        store = Store(clock=self._clock, history=self._history)
        authorizer = Authorizer(store)
        authorizer.add_user(ADMIN_USER, token=self._admin_token, groups=("system:masters",))
        controllers = None
        if self._run_controllers:
            controllers = self._make_controllers(store)
        api = ApiServer(
            store=store,
            schemas=schemas,
            documents=Documents(schemas, kube_version=self.kube_version),
            validator=Validator(schemas),
            defaulter=Defaulter(),
            authorizer=authorizer,
            pod_log=controllers.pod_log if controllers is not None else None,
            bookmark_interval=self._bookmark_interval,
        )
        api.record_requests = self._record_requests
        http = HttpServer(api, port=self._port, ssl_context=self._tls())
        self._dir = Path(tempfile.mkdtemp(prefix="kube-emulator-"))
        self._store, self._api, self._http, self._controllers = store, api, http, controllers
        self._authorizer = authorizer
        self._write_kubeconfig(self._dir / "kubeconfig", ADMIN_USER, self._admin_token)
        http.start()
        if controllers is not None:
            controllers.start()
        logger.info("Kubernetes emulator %s serving at %s", self.kube_version, http.url)
        return self

    def _tls(self) -> ssl.SSLContext | None:
        if not self._use_tls:
            return None
        import trustme

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        self._ca_pem = ca.cert_pem.bytes()
        return context

    def _make_controllers(self, store: Store) -> Any:
        from apim_selfhosted.testing.kube.controller import Controllers

        params = inspect.signature(Controllers).parameters
        kwargs: dict[str, Any] = {"ready_delay": self.ready_delay}
        if "clock" in params:
            kwargs["clock"] = self._clock
        if "assign_load_balancer" in params:
            kwargs["assign_load_balancer"] = self.assign_load_balancer
        return Controllers(store, **kwargs)

    def stop(self) -> None:
        """Stops everything and removes the kubeconfig files."""
        if self._controllers is not None:
            self._controllers.stop()
        if self._http is not None:
            self._http.stop()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
        self._http = None
        self._dir = None

    def __enter__(self) -> KubeEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- where and who -----------------------------------------------------------------------

    def _running(self) -> HttpServer:
        if self._http is None:
            raise RuntimeError("the emulator is not running: use start() or a with block")
        return self._http

    @property
    def url(self) -> str:
        """The API server URL, e.g. ``http://127.0.0.1:41234``."""
        return self._running().url

    @property
    def kubeconfig_path(self) -> Path:
        """A kubeconfig for the admin user (may do anything)."""
        self._running()
        assert self._dir is not None
        return self._dir / "kubeconfig"

    @property
    def ca_pem(self) -> bytes | None:
        """The PEM of the CA that signed the server certificate (None without TLS)."""
        return self._ca_pem

    @property
    def admin_token(self) -> SecretStr:
        """The admin user's bearer token."""
        return SecretStr(self._admin_token)

    @property
    def store(self) -> Store:
        """The object store (for in-process inspection and setup)."""
        self._running()
        assert self._store is not None
        return self._store

    @property
    def api(self) -> ApiServer:
        """The HTTP layer (fault and request bookkeeping)."""
        self._running()
        assert self._api is not None
        return self._api

    @property
    def controllers(self) -> Any:
        """The controllers (None when started with ``controllers=False``)."""
        return self._controllers

    def _write_kubeconfig(self, path: Path, user: str, token: str) -> None:
        import yaml

        http = self._running()
        cluster: dict[str, Any] = {"server": http.url}
        if self._ca_pem is not None:
            cluster["certificate-authority-data"] = base64.b64encode(self._ca_pem).decode()
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kube-emulator", "cluster": cluster}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [
                {
                    "name": "kube-emulator",
                    "context": {"cluster": "kube-emulator", "user": user, "namespace": "default"},
                }
            ],
            "current-context": "kube-emulator",
            "preferences": {},
        }
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        path.chmod(0o600)

    def write_kubeconfig(self, path: str | Path, *, user: str | None = None) -> Path:
        """Writes a kubeconfig for the admin (or ``user``) to ``path``.

        Args:
            path: Where to write.
            user: A user added with :meth:`add_user`; None for the admin.

        Returns:
            The path.

        Raises:
            KeyError: Unknown user.
        """
        target = Path(path)
        if user is None:
            self._write_kubeconfig(target, ADMIN_USER, self._admin_token)
        else:
            known = self._users[user]
            self._write_kubeconfig(target, known.name, known.token.get_secret_value())
        return target

    def add_user(
        self,
        name: str,
        *,
        rules: Sequence[Mapping[str, Any]] = (),
        namespace: str | None = None,
        groups: Sequence[str] = (),
        token: str | None = None,
    ) -> KubeUser:
        """Adds a user authenticated by a bearer token, allowed what ``rules`` (and Roles) say.

        Args:
            name: User name (RoleBinding subjects of kind ``User`` refer to it).
            rules: RBAC ``PolicyRule`` dicts (``apiGroups``, ``resources``, ``verbs``,
                ``resourceNames``) granted directly.
            namespace: The namespace the rules apply in; None for cluster-wide.
            groups: Group names (``system:masters`` may do anything).
            token: The bearer token; random when omitted.

        Returns:
            The user, with a kubeconfig of its own.

        Raises:
            ValueError: A rule has no verbs, or the token is taken.

        Example:
            >>> kube = KubeEmulator(controllers=False).start()
            >>> ci = kube.add_user("ci", namespace="default", rules=[
            ...     {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}])
            >>> secret = ci.token.get_secret_value()
            >>> ci.kubeconfig_path.exists(), "token" in repr(ci), secret in repr(ci)
            (True, True, False)
            >>> kube.stop()
        """
        user = self._authorizer.add_user(
            name, token=token, rules=rules, namespace=namespace, groups=groups
        )
        secret = self._authorizer.token_of(user.name)
        assert self._dir is not None
        path = self._dir / f"kubeconfig-{len(self._users) + 1}"
        self._write_kubeconfig(path, name, secret)
        known = KubeUser(name, SecretStr(secret), path)
        self._users[name] = known
        return known

    def grant(
        self, name: str, rules: Sequence[Mapping[str, Any]], *, namespace: str | None = None
    ) -> KubeUser:
        """Grants more rules to a user (adds it if needed).

        Args:
            name: User name.
            rules: RBAC ``PolicyRule`` dicts.
            namespace: Where they apply; None for cluster-wide.

        Returns:
            The user.
        """
        if name in self._users:
            self._authorizer.add_user(name, rules=rules, namespace=namespace)
            return self._users[name]
        return self.add_user(name, rules=rules, namespace=namespace)

    def api_client(self, *, user: str | None = None) -> Any:
        """A ``kubernetes.client.ApiClient`` for the admin (or ``user``), without global state.

        Args:
            user: A user added with :meth:`add_user`; None for the admin.

        Returns:
            The ``ApiClient``.
        """
        from kubernetes import config

        path = self.kubeconfig_path if user is None else self._users[user].kubeconfig_path
        return config.new_client_from_config(config_file=str(path))  # type: ignore[no-untyped-call]

    # --- scripted behaviour and faults ------------------------------------------------------

    def script_pods(
        self,
        *,
        image: str | None = None,
        labels: Mapping[str, str] | None = None,
        behaviour: Any = None,
        **behaviour_fields: Any,
    ) -> None:
        """Scripts what pods matching ``image``/``labels`` do (``PodBehaviour`` fields).

        Args:
            image: Match pods whose (first) container uses this image.
            labels: Match pods carrying these labels.
            behaviour: A ``PodBehaviour``; or give its fields as keywords
                (``never_ready=True``, ``crash_loop=True``, ``image_pull_error=True``,
                ``ready_after=0.5``, ``log_lines=("...",)``).

        Raises:
            RuntimeError: The emulator runs without controllers.
        """
        if self._controllers is None:
            raise RuntimeError("script_pods needs the controllers (controllers=True)")
        from apim_selfhosted.testing.kube.controller import PodBehaviour

        if behaviour is None:
            if "log_lines" in behaviour_fields:
                behaviour_fields["log_lines"] = tuple(behaviour_fields["log_lines"])
            behaviour = PodBehaviour(**behaviour_fields)
        self._controllers.script(
            image=image, labels=dict(labels) if labels is not None else None, behaviour=behaviour
        )

    def inject_faults(
        self,
        *,
        status: int = 500,
        count: int = 1,
        verb: str | None = None,
        resource: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        message: str | None = None,
        retry_after: int = 1,
    ) -> None:
        """Makes the next ``count`` matching requests fail with ``status``.

        Args:
            status: 500 (``InternalError``), 429 (``TooManyRequests`` with ``Retry-After``),
                503, 504 or another code.
            count: How many requests fail.
            verb: Only this verb (``get``, ``list``, ``watch``, ``create``, ``update``,
                ``patch``, ``delete``, ``deletecollection``).
            resource: Only this resource (``deployments``, ``deployments.apps`` or
                ``deployments/status``).
            namespace: Only in this namespace.
            name: Only for this object name.
            message: The Status message.
            retry_after: Seconds for ``Retry-After`` on 429.

        Raises:
            ValueError: ``count`` < 1 or ``status`` is not an error code.
        """
        from apim_selfhosted.testing.kube.server import Fault

        if count < 1:
            raise ValueError("count must be >= 1")
        if not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error code (400-599)")
        self.api.add_fault(
            Fault(status, count, verb, resource, namespace, name, message, retry_after)
        )

    def drop_watches(self, resource: str | None = None, *, namespace: str | None = None) -> int:
        """Ends the open watch streams, as a restarting API server would.

        Args:
            resource: Only watches of this resource (``configmaps`` or ``deployments.apps``).
            namespace: Only watches of this namespace.

        Returns:
            How many watches were dropped.
        """
        return self.api.drop_watches(resource, namespace)

    def open_watches(self, resource: str | None = None, *, namespace: str | None = None) -> int:
        """How many watch streams are open (a client that hangs up is noticed within ~2 s).

        Args:
            resource: Only watches of this resource.
            namespace: Only watches of this namespace.

        Returns:
            The number of open watches.
        """
        return self.api.open_watches(resource, namespace)

    # --- counting ----------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request served so far (method, path, verb, resource, user, status, seconds)."""
        with self.api._lock:
            return list(self.api.records)

    def request_count(
        self, *, verb: str | None = None, resource: str | None = None, method: str | None = None
    ) -> int:
        """How many requests matched ``verb``/``resource`` (plural or key)/``method``."""
        return sum(
            1
            for r in self.requests
            if (verb is None or r.verb == verb)
            and (method is None or r.method == method)
            and (resource is None or resource in (r.resource, r.resource.split(".")[0]))
        )

    def reset_requests(self) -> None:
        """Forgets the recorded requests."""
        with self.api._lock:
            self.api.records.clear()

    def wait_idle(self, *, timeout: float = 5.0) -> bool:
        """Waits until the controllers have nothing left to do (True) or ``timeout`` passes."""
        if self._controllers is None:
            return True
        return bool(self._controllers.wait_idle(timeout=timeout))
