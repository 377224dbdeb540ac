"""Shared set-up for the deploy/verify end-to-end tests: FakeApim + KubeEmulator over HTTP(S).

Each test gets its own gateway name and namespace, so one FakeApim and one emulator serve a
whole module (starting them costs about a second).
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apim_selfhosted import (
    DeploymentSpec,
    KubernetesApplier,
    ManagementClient,
    ProgressEvent,
)
from apim_selfhosted.testing import FakeApim
from apim_selfhosted.testing.kube.emulator import KubeEmulator

SUBSCRIPTION = "00000000-0000-0000-0000-0000000000aa"
RESOURCE_GROUP = "rg-gateways"
SERVICE = "contoso"
CUSTOM_SERVICE = "fabrikam"
CUSTOM_CONFIG_HOST = "config.fabrikam.example"
IMAGE = "mcr.microsoft.com/azure-api-management/gateway"
KUBECTL = str(Path(sys.executable).with_name("kubectl"))

_counter = itertools.count(1)


@dataclass
class Env:
    """One FakeApim, one emulator and clients for both."""

    apim: FakeApim
    emulator: KubeEmulator
    management: ManagementClient
    kube: KubernetesApplier
    events: list[ProgressEvent] = field(default_factory=list)

    def spec(self, *, service: str = SERVICE, **values: Any) -> DeploymentSpec:
        """A spec for a fresh gateway in a fresh namespace (plus ``values``)."""
        n = next(_counter)
        data: dict[str, Any] = {
            "gateway": {
                "subscription_id": SUBSCRIPTION,
                "resource_group": RESOURCE_GROUP,
                "service_name": service,
                "name": f"gw{n}",
            },
            "namespace": f"apim-{n}",
            "create_namespace": True,
            "replicas": 2,
            "image": {"tag": "2.11.1"},
        }
        for key, value in values.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return DeploymentSpec.model_validate(data)

    def record(self, event: ProgressEvent) -> None:
        self.events.append(event)

    def kubectl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KUBECTL, "--kubeconfig", str(self.emulator.kubeconfig_path), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def make_env(*, assign_load_balancer: bool = True) -> Iterator[Env]:
    with (
        FakeApim() as apim,
        KubeEmulator(ready_delay=0.02, assign_load_balancer=assign_load_balancer) as emulator,
    ):
        apim.add_service(SUBSCRIPTION, RESOURCE_GROUP, SERVICE)
        apim.add_service(
            SUBSCRIPTION,
            RESOURCE_GROUP,
            CUSTOM_SERVICE,
            configuration_api_hostname=CUSTOM_CONFIG_HOST,
        )
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
