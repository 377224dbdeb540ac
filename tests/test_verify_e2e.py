"""``verify`` catches each failure it claims to detect, against FakeApim and the KubeEmulator.

Among them the one readiness cannot show: an expired token while every pod is Ready.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from _deploy_env import Env, make_env

from apim_selfhosted import (
    DeploymentSpec,
    KubernetesApplier,
    VerificationError,
    VerifyReport,
    deploy,
    verify,
)


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    yield from make_env()


def _deployed(env: Env, **values: Any) -> tuple[DeploymentSpec, Any]:
    spec = env.spec(**values)
    result = deploy(
        spec, management=env.management, kube=env.kube, allow_lint_errors=True, timeout=30
    )
    assert result.ok, str(result)
    return spec, result


def _statuses(report: VerifyReport) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def test_healthy_gateway_is_ok_everywhere(env: Env) -> None:
    spec, _ = _deployed(env)
    report = verify(spec, kube=env.kube, management=env.management)
    assert _statuses(report) == {
        "objects": "ok",
        "rollout": "ok",
        "pods": "ok",
        "token": "ok",
        "token-key": "ok",
        "config-endpoint": "ok",
        "logs": "ok",
        "service": "ok",
    }
    assert report.ok
    assert report.exit_code == 0
    report.raise_for_failure()


def test_expired_token_fails_although_pods_are_ready(env: Env) -> None:
    spec, result = _deployed(env)
    after_expiry = result.token.expires_on + timedelta(minutes=1)
    report = verify(spec, kube=env.kube, now=after_expiry)
    statuses = _statuses(report)
    assert statuses["rollout"] == "ok"
    assert statuses["pods"] == "ok"
    assert statuses["token"] == "failed"
    token_check = report.check("token")
    assert "expired" in token_check.summary
    assert token_check.advice is not None
    assert "rotate" in token_check.advice
    assert report.exit_code == 1
    with pytest.raises(VerificationError, match="token"):
        report.raise_for_failure()
    assert result.token.value.get_secret_value() not in str(report) + report.model_dump_json()


def test_token_within_the_horizon_is_a_warning(env: Env) -> None:
    spec, result = _deployed(env)
    report = verify(spec, kube=env.kube, now=result.token.expires_on - timedelta(days=3))
    assert report.check("token").status == "warning"
    assert report.status == "warning"
    assert report.exit_code == 2
    assert report.ok


@pytest.mark.parametrize(
    ("line", "meaning"),
    [
        (
            "[Error] 2026-11-27T05:00:00Z ConfigurationApiV2NotAvailable: the endpoint does not "
            "serve configuration API v2",
            "v2",
        ),
        (
            "[Warn] configuration sync failed: 401 Unauthorized from "
            "https://contoso.configuration.azure-api.net",
            "401",
        ),
        ("[Error] heartbeat rejected with 403 Forbidden", "403"),
        ("[Error] The provided gateway token has expired", "expired"),
    ],
    ids=["v2-unavailable", "401", "403", "expired"],
)
def test_log_failures_are_found(env: Env, line: str, meaning: str) -> None:
    spec = env.spec()
    env.emulator.script_pods(
        labels={"app.kubernetes.io/instance": spec.base_name}, log_lines=(line,)
    )
    result = deploy(
        spec, management=env.management, kube=env.kube, allow_lint_errors=True, timeout=30
    )
    assert result.rollout is not None
    assert result.rollout.ok  # the pods are Ready: only the logs tell
    assert result.verify is not None
    check = result.verify.check("logs")
    assert check.status == "failed"
    assert meaning in check.summary
    assert any(line[:40] in e for e in check.evidence)
    assert not result.ok


def test_missing_and_drifted_objects(env: Env) -> None:
    spec, _ = _deployed(env, service="fabrikam")
    env.kube.delete("v1", "Service", spec.discovery_service_name, spec.namespace)
    env.kube.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": spec.config_map_name, "namespace": spec.namespace},
                "data": {"config.service.endpoint": "https://elsewhere.example"},
            }
        ],
        field_manager="someone-else",
        force=True,
    )
    report = verify(spec, kube=env.kube, management=env.management)
    objects = report.check("objects")
    assert objects.status == "failed"
    assert f"Service {spec.namespace}/{spec.discovery_service_name}" in objects.summary
    assert f"ConfigMap {spec.namespace}/{spec.config_map_name}" in objects.summary
    endpoint = report.check("config-endpoint")
    assert endpoint.status == "failed"
    assert "elsewhere.example" in endpoint.summary
    assert "config.fabrikam.example" in endpoint.summary  # what APIM says


def test_missing_token_secret(env: Env) -> None:
    spec, result = _deployed(env)
    secret = next(a for a in result.applied if a.kind == "Secret")
    env.kube.delete("v1", "Secret", secret.name, spec.namespace)
    report = verify(spec, kube=env.kube)
    assert report.check("token").status == "failed"
    assert "does not exist" in report.check("token").summary


def test_token_of_another_gateway(env: Env) -> None:
    spec, _ = _deployed(env)
    other = spec.model_copy(
        update={
            "gateway": spec.gateway.model_copy(update={"name": "another-gw"}),
            "name": spec.base_name,
        }
    )
    report = verify(other, kube=env.kube)
    token = report.check("token")
    assert token.status == "failed"
    assert "another-gw" in token.summary


def test_crash_loop_and_restarts(env: Env) -> None:
    spec = env.spec()
    env.emulator.script_pods(labels={"app.kubernetes.io/instance": spec.base_name}, crash_loop=True)
    result = deploy(
        spec,
        management=env.management,
        kube=env.kube,
        allow_lint_errors=True,
        timeout=30,
    )
    assert not result.ok
    assert result.rollout is not None
    assert result.rollout.outcome == "pods-failing"
    assert {p.reason for p in result.rollout.pod_problems} <= {"CrashLoopBackOff"}
    report = verify(spec, kube=env.kube)
    assert report.check("pods").status == "failed"
    assert report.check("rollout").status in ("failed", "warning")
    assert "CrashLoopBackOff" in " ".join(report.check("pods").evidence)


def test_missing_permission_skips_the_check_and_names_it(env: Env) -> None:
    spec, _ = _deployed(env)
    reader = env.emulator.add_user(
        f"reader-{spec.namespace}",
        namespace=spec.namespace,
        rules=[
            {
                "apiGroups": [""],
                "resources": ["pods", "secrets", "configmaps", "services", "serviceaccounts"],
                "verbs": ["get", "list", "watch"],
            },
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list"]},
        ],
    )
    # No "get pods/log": the log check is skipped and says which permission it needs.
    with KubernetesApplier.from_kubeconfig(str(reader.kubeconfig_path)) as kube:
        report = verify(spec, kube=kube)
    logs = report.check("logs")
    assert logs.status == "skipped"
    assert "get pods/log" in logs.summary
    assert logs.advice is not None
    assert "get pods/log" in logs.advice
    objects = report.check("objects")
    assert objects.status == "warning"  # the Namespace is cluster-scoped: not readable
    assert "get namespaces" in objects.summary
    assert report.check("token").status == "ok"


def test_unreachable_cluster_is_reported_not_raised(env: Env, tmp_path: Path) -> None:
    spec = env.spec()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"
    )
    with KubernetesApplier.from_kubeconfig(str(config)) as kube:
        kube._api.configuration.retries = 0
        report = verify(spec, kube=kube)
    assert report.status == "failed"
    assert "cannot reach" in report.check("objects").summary


def test_pending_load_balancer_is_a_warning() -> None:
    for env in make_env(assign_load_balancer=False):
        spec = env.spec()
        result = deploy(
            spec, management=env.management, kube=env.kube, allow_lint_errors=True, timeout=30
        )
        assert result.verify is not None
        service = result.verify.check("service")
        assert service.status == "warning"
        assert "pending" in service.summary
        assert result.ok  # warnings do not fail a deploy
