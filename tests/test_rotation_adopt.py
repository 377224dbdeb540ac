"""Adopting gateways deployed the portal's way (kubectl) or by the Helm chart, without downtime.

The portal's instructions create the token Secret with ``kubectl create secret generic`` (key
``value``) and the rest with ``kubectl apply -f`` (client-side apply); the Helm chart keeps the
token under the key ``gateway-key``. The first rotation moves either onto a library-managed,
content-named Secret with the Deployment's own rolling update.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from _rotation_env import Env, Invariant, make_env

from apim_selfhosted import DeploymentSpec, rotate
from apim_selfhosted.rendering import secret_name_in_use, token_secret_name

KUBECTL = str(Path(sys.executable).with_name("kubectl"))


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    yield from make_env()


def _kubectl(env: Env, *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(
        [KUBECTL, "--kubeconfig", str(env.emulator.kubeconfig_path), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _gateway_deployment(
    *, name: str, namespace: str, labels: dict[str, str], secret: str, key: str, replicas: int
) -> dict[str, Any]:
    """A Deployment shaped like the portal's / the chart's (written for these tests)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"},
            },
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 60,
                    "containers": [
                        {
                            "name": name,
                            "image": "mcr.microsoft.com/azure-api-management/gateway:v2",
                            "ports": [
                                {"name": "http", "containerPort": 8080},
                                {"name": "https", "containerPort": 8081},
                            ],
                            "readinessProbe": {
                                "httpGet": {
                                    "path": "/status-0123456789abcdef",
                                    "port": "http",
                                    "scheme": "HTTP",
                                },
                                "initialDelaySeconds": 0,
                                "periodSeconds": 5,
                                "failureThreshold": 3,
                                "successThreshold": 1,
                            },
                            "env": [
                                {
                                    "name": "config.service.auth",
                                    "valueFrom": {"secretKeyRef": {"name": secret, "key": key}},
                                }
                            ],
                            "envFrom": [{"configMapRef": {"name": f"{name}-env"}}],
                        }
                    ],
                },
            },
        },
    }


def _config_map(name: str, namespace: str, gateway: DeploymentSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{name}-env", "namespace": namespace},
        "data": {"config.service.endpoint": gateway.gateway.config_endpoint_url},
    }


def _adopt_and_check(env: Env, spec: DeploymentSpec, name: str, old_secret: str) -> None:
    watcher = Invariant(env, spec.namespace)
    try:
        result = rotate(spec, management=env.management, kube=env.kube, force=True, timeout=30)
    finally:
        watcher.close()
    assert result.outcome == "rotated", str(result)
    assert result.adopted
    assert result.old_secret == old_secret
    assert result.new_token is not None
    assert result.new_secret == token_secret_name(spec, result.new_token)
    deployment = env.kube.get("apps/v1", "Deployment", name, spec.namespace)
    assert deployment is not None
    assert secret_name_in_use(deployment) == result.new_secret
    # Nothing else of the Deployment changed: selector, labels, image, probes are theirs.
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "mcr.microsoft.com/azure-api-management/gateway:v2"
    assert container["envFrom"] == [{"configMapRef": {"name": f"{name}-env"}}]
    # maxUnavailable 0: every serving pod kept serving (2 replicas) throughout.
    assert watcher.samples
    assert watcher.minimum is not None
    assert watcher.minimum >= 2, watcher.samples
    assert watcher.serving() == 2
    # Their Secret stays (not ours to delete); the Lease is released.
    assert env.kube.get("v1", "Secret", old_secret, spec.namespace) is not None
    # A second rotation is an ordinary one now, from the other key.
    again = rotate(spec, management=env.management, kube=env.kube, force=True, timeout=30)
    assert again.outcome == "rotated", str(again)
    assert not again.adopted
    assert again.new_token is not None
    assert again.new_token.key_type != result.new_token.key_type


def test_adopts_a_portal_deployment_without_downtime(env: Env) -> None:
    spec = env.spec(replicas=2)
    name, namespace = spec.base_name, spec.namespace
    token = env.token(spec)
    _kubectl(env, "create", "namespace", namespace)
    # The portal's command for the token Secret.
    _kubectl(
        env,
        "create",
        "secret",
        "generic",
        f"{name}-token",
        "-n",
        namespace,
        f"--from-literal=value={token.value.get_secret_value()}",
    )
    manifests = [
        _config_map(name, namespace, spec),
        _gateway_deployment(
            name=name,
            namespace=namespace,
            labels={"app": name},
            secret=f"{name}-token",
            key="value",
            replicas=2,
        ),
    ]
    _kubectl(env, "apply", "-f", "-", stdin=yaml.safe_dump_all(manifests))
    assert env.kube.wait_for_rollout(name, namespace, timeout=30).ok
    _adopt_and_check(env, spec, name, f"{name}-token")
    # kubectl still works with the adopted Deployment.
    out = _kubectl(env, "rollout", "status", f"deployment/{name}", "-n", namespace)
    assert "successfully rolled out" in out


def test_adopts_a_helm_deployment_without_downtime(env: Env) -> None:
    base = env.spec(replicas=2)
    release = f"{base.gateway.name}-rel"
    name = f"{release}-azure-api-management-gateway"
    spec = DeploymentSpec.model_validate({**base.model_dump(), "name": name})
    namespace = spec.namespace
    token = env.token(spec)
    labels = {
        "app.kubernetes.io/name": "azure-api-management-gateway",
        "app.kubernetes.io/instance": release,
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"{name}-token", "namespace": namespace, "labels": labels},
        "type": "Opaque",
        "stringData": {"gateway-key": token.value.get_secret_value()},
    }
    manifests = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        secret,
        _config_map(name, namespace, spec),
        _gateway_deployment(
            name=name,
            namespace=namespace,
            labels=labels,
            secret=f"{name}-token",
            key="gateway-key",
            replicas=2,
        ),
    ]
    # Helm 3 writes with its own field manager.
    _kubectl(env, "create", "--field-manager=helm", "-f", "-", stdin=yaml.safe_dump_all(manifests))
    assert env.kube.wait_for_rollout(name, namespace, timeout=30).ok
    _adopt_and_check(env, spec, name, f"{name}-token")
    managers = {
        entry["manager"]
        for entry in env.kube.get("apps/v1", "Deployment", name, namespace)["metadata"][
            "managedFields"
        ]
    }
    assert {"helm", "apim-selfhosted-rotator"} <= managers


def test_kubectl_rollout_undo_returns_to_the_previous_secret(env: Env) -> None:
    spec = env.spec(replicas=2)
    old = env.token(spec)
    env.deploy(spec, old)
    result = rotate(spec, management=env.management, kube=env.kube, force=True, timeout=30)
    assert result.outcome == "rotated", str(result)
    # The previous Secret is kept (history), so kubectl's own rollback works.
    _kubectl(env, "rollout", "undo", f"deployment/{spec.base_name}", "-n", spec.namespace)
    assert env.kube.wait_for_rollout(spec.base_name, spec.namespace, timeout=30).ok
    live = env.kube.get("apps/v1", "Deployment", spec.base_name, spec.namespace)
    assert live is not None
    assert secret_name_in_use(live) == token_secret_name(spec, old)
    # And the next rotation starts from there (the restored token is the one in use).
    again = rotate(spec, management=env.management, kube=env.kube, force=True, timeout=30)
    assert again.outcome == "rotated", str(again)
    assert again.old_token is not None
    assert again.old_token.fingerprint == old.fingerprint
