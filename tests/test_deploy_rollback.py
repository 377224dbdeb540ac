"""A failed deploy is rolled back as a whole: the cluster ends as the last good deploy left it.

FakeApim over HTTPS and the KubeEmulator over HTTP, real SDK clients. The failed deploy changes
the image (its pods never become ready), the ConfigMap (TLS settings), adds a
PodDisruptionBudget and a NetworkPolicy and issues a new token; after the rollback every object
the good deploy applied must be back as it was, the new objects gone, and ``verify`` with the
last good spec healthy.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _deploy_env import IMAGE, Env, make_env

from apim_selfhosted import DeploymentSpec, deploy, verify
from apim_selfhosted.kube import _normalized, applied_configuration
from apim_selfhosted.rendering import token_secret_selector


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    yield from make_env()


def _deploy(env: Env, spec: DeploymentSpec, **options: Any) -> Any:
    options.setdefault("timeout", 30.0)
    options.setdefault("allow_lint_errors", True)
    return deploy(spec, management=env.management, kube=env.kube, on_event=env.record, **options)


def _snapshot(env: Env, spec: DeploymentSpec) -> dict[tuple[str, str], dict[str, Any]]:
    """Every object of the gateway (by kind and name), without what the server manages."""
    selector = f"app.kubernetes.io/instance={spec.base_name}"
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for api_version, kind in (
        ("v1", "Secret"),
        ("v1", "ConfigMap"),
        ("apps/v1", "Deployment"),
        ("v1", "Service"),
        ("policy/v1", "PodDisruptionBudget"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
    ):
        for obj in env.kube.list_objects(
            api_version, kind, spec.namespace, label_selector=selector
        ):
            body = _normalized(obj)
            body.pop("status", None)
            if kind == "Deployment":  # the controller's revision counter moves on rollback
                body["metadata"].get("annotations", {}).pop(
                    "deployment.kubernetes.io/revision", None
                )
            out[(kind, obj["metadata"]["name"])] = body
    return out


def test_a_failed_deploy_returns_every_object_to_the_last_good_deploy(env: Env) -> None:
    good = env.spec()
    first = _deploy(env, good)
    assert first.ok, str(first)
    before = _snapshot(env, good)

    broken_tag = "2.11.95"
    env.emulator.script_pods(image=f"{IMAGE}:{broken_tag}", never_ready=True)
    broken = DeploymentSpec.model_validate(
        {
            **good.to_dict(),
            "image": {"tag": broken_tag},
            "tls": {"server_cipher_suites": ["TLS_AES_256_GCM_SHA384"]},
            "high_availability": {"enabled": True},
            "network_policy": {},
        }
    )
    # Seen from 25 days later, the token is within the rotation horizon: a new one is issued.
    later = datetime.now(UTC) + timedelta(days=25)
    result = _deploy(env, broken, timeout=1.5, now=later)
    assert not result.ok
    assert result.token_issued
    assert result.rolled_back, result.error
    assert "rolled back to the previous pod template and objects" in (result.error or "")
    removed = {(r.kind, r.name) for r in result.removed}
    assert ("PodDisruptionBudget", good.base_name) in removed
    assert ("NetworkPolicy", good.base_name) in removed
    assert any(kind == "Secret" for kind, _ in removed)  # the token the failed deploy issued
    # The old token's Secret was not touched (the new token has a Secret of its own).
    assert {r.kind for r in result.restored} >= {"ConfigMap", "Deployment", "Service"}

    # Exactly the objects of the good deploy, with the same content (labels, data, template).
    assert _snapshot(env, good) == before
    tokens = env.kube.list_objects(
        "v1", "Secret", good.namespace, label_selector=token_secret_selector(good)
    )
    assert len(tokens) == 1

    report = verify(good, kube=env.kube, management=env.management)
    assert report.check("objects").status == "ok", str(report)
    assert report.ok, str(report)
    # And the next deploy of the good spec has nothing to do.
    again = _deploy(env, good)
    assert again.ok, str(again)
    assert not again.changed, str(again)


def test_without_rollback_the_failed_state_stays_for_inspection(env: Env) -> None:
    good = env.spec()
    assert _deploy(env, good).ok
    broken_tag = "2.11.96"
    env.emulator.script_pods(image=f"{IMAGE}:{broken_tag}", never_ready=True)
    broken = good.model_copy(update={"image": good.image.model_copy(update={"tag": broken_tag})})
    result = _deploy(env, broken, timeout=1.0, rollback_on_failure=False)
    assert not result.rolled_back
    assert not result.restored
    assert not result.removed
    config_map = env.kube.get("v1", "ConfigMap", good.config_map_name, good.namespace)
    assert config_map is not None
    assert config_map["metadata"]["labels"]["app.kubernetes.io/version"] == broken_tag
    report = verify(good, kube=env.kube)
    assert report.check("objects").status == "failed"


def test_applied_configuration_reads_back_what_deploy_applied(env: Env) -> None:
    from apim_selfhosted.rendering import render

    spec = env.spec()
    result = _deploy(env, spec)
    assert result.ok
    rendered = {m["kind"]: m for m in render(spec, result.token) if m["kind"] == "ConfigMap"}
    live = env.kube.get("v1", "ConfigMap", spec.config_map_name, spec.namespace)
    assert live is not None
    config = applied_configuration(live)
    assert config is not None
    assert config["data"] == rendered["ConfigMap"]["data"]
    assert config["metadata"]["labels"] == rendered["ConfigMap"]["metadata"]["labels"]
    assert applied_configuration(live, field_manager="someone-else") is None
