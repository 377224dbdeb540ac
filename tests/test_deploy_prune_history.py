"""A re-deploy keeps the token Secrets rotation keeps as history (for ``kubectl rollout undo``).

FakeApim over HTTPS and the KubeEmulator over HTTP, real SDK clients.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _deploy_env import Env, make_env

from apim_selfhosted import deploy, rotate
from apim_selfhosted.rendering import secret_name_in_use, token_secret_selector


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    yield from make_env()


def _token_secrets(env: Env, namespace: str, selector: str) -> set[str]:
    return {
        s["metadata"]["name"]
        for s in env.kube.list_objects("v1", "Secret", namespace, label_selector=selector)
    }


def test_redeploy_after_a_rotation_keeps_the_previous_token_secret(env: Env) -> None:
    spec = env.spec(replicas=1)
    first = deploy(
        spec, management=env.management, kube=env.kube, timeout=30, allow_lint_errors=True
    )
    assert first.ok, str(first)
    live = env.kube.get("apps/v1", "Deployment", spec.base_name, spec.namespace)
    assert live is not None
    before = secret_name_in_use(live)
    rotated = rotate(spec, management=env.management, kube=env.kube, force=True, timeout=30)
    assert rotated.outcome == "rotated", str(rotated)
    selector = token_secret_selector(spec)
    assert {before, rotated.new_secret} <= _token_secrets(env, spec.namespace, selector)

    again = deploy(
        spec, management=env.management, kube=env.kube, timeout=30, allow_lint_errors=True
    )

    assert again.ok, str(again)
    kept = _token_secrets(env, spec.namespace, selector)
    # The Secret of the revision before the rotation stays: `kubectl rollout undo` needs it.
    assert before in kept
    assert rotated.new_secret in kept
    assert not any(ref.kind == "Secret" for ref in again.pruned)
