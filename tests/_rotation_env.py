"""Shared set-up of the rotation tests: FakeApim + KubeEmulator, and the serving-pods watcher.

Each test gets its own gateway and namespace, so one FakeApim and one emulator serve a module.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from apim_selfhosted import (
    DeploymentSpec,
    KubernetesApplier,
    ManagementClient,
    ProgressEvent,
    Token,
)
from apim_selfhosted.rendering import render
from apim_selfhosted.testing import FakeApim
from apim_selfhosted.testing.kube.emulator import KubeEmulator

SUBSCRIPTION = "00000000-0000-0000-0000-0000000000bb"
RESOURCE_GROUP = "rg-rotation"
SERVICE = "contoso"
_counter = itertools.count(1)


@dataclass
class Env:
    apim: FakeApim
    emulator: KubeEmulator
    management: ManagementClient
    kube: KubernetesApplier
    events: list[ProgressEvent] = field(default_factory=list)

    def spec(self, **values: Any) -> DeploymentSpec:
        n = next(_counter)
        data: dict[str, Any] = {
            "gateway": {
                "subscription_id": SUBSCRIPTION,
                "resource_group": RESOURCE_GROUP,
                "service_name": SERVICE,
                "name": f"rgw{n}",
            },
            "namespace": f"rot-{n}",
            "create_namespace": True,
            "replicas": 3,
            "strategy": {"max_unavailable": 1, "max_surge": 1},
            "image": {"tag": "2.11.1"},
        }
        data.update(values)
        spec = DeploymentSpec.model_validate(data)
        self.apim.add_gateway(SUBSCRIPTION, RESOURCE_GROUP, SERVICE, spec.gateway.name)
        return spec

    def token(
        self, spec: DeploymentSpec, *, key_type: str = "primary", expiry: datetime | None = None
    ) -> Token:
        raw = self.apim.issue_token(spec.gateway.resource_id, key_type=key_type, expiry=expiry)
        return Token.parse(raw, key_type=key_type)

    def deploy(self, spec: DeploymentSpec, token: Token) -> None:
        self.kube.apply(render(spec, token))
        assert self.kube.wait_for_rollout(spec.base_name, spec.namespace, timeout=30).ok

    def record(self, event: ProgressEvent) -> None:
        self.events.append(event)


def make_env() -> Iterator[Env]:
    with FakeApim() as apim, KubeEmulator(ready_delay=0.02) as emulator:
        apim.add_service(SUBSCRIPTION, RESOURCE_GROUP, SERVICE)
        with (
            ManagementClient(
                apim.credential(),
                base_url=apim.url,
                connection_verify=str(apim.ca_path),
                retry_backoff_factor=0.01,
                retry_backoff_max=0.05,
            ) as management,
            KubernetesApplier.from_kubeconfig(str(emulator.kubeconfig_path)) as kube,
        ):
            yield Env(apim=apim, emulator=emulator, management=management, kube=kube)


class Invariant:
    """Counts serving pods (Ready, not terminating, valid token) at every store change."""

    def __init__(self, env: Env, namespace: str) -> None:
        self.env = env
        self.namespace = namespace
        self.minimum: int | None = None
        self.samples: list[int] = []
        self.lock = threading.Lock()
        self._unsubscribe = env.emulator.store.subscribe(self._on_change)

    def serving(self) -> int:
        from apim_selfhosted.testing.kube.resources import by_key

        pods, _ = self.env.emulator.store.list(by_key("pods"), self.namespace)
        count = 0
        for pod in pods:
            if pod["metadata"].get("deletionTimestamp"):
                continue
            ready = any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (pod.get("status") or {}).get("conditions") or []
            )
            if not ready:
                continue
            try:
                environment = self.env.emulator.controllers.pod_environment(
                    self.namespace, pod["metadata"]["name"]
                )
            except Exception:
                continue
            value = environment.get("config.service.auth")
            if value and self.env.apim.validate_token(value).status == "valid":
                count += 1
        return count

    def _on_change(self, event_type: str, rt: Any, obj: dict[str, Any]) -> None:
        if rt.plural != "pods" or obj["metadata"].get("namespace") != self.namespace:
            return
        value = self.serving()
        with self.lock:
            self.samples.append(value)
            self.minimum = value if self.minimum is None else min(self.minimum, value)

    def close(self) -> None:
        self._unsubscribe()
