"""The token is bound to the key that issued it: a regenerated key makes ``verify`` fail.

API Management offers no operation that validates a gateway token, so the library records a
fingerprint of the issuing key on the token Secret and compares it with the current key
(``ListKeys``). FakeApim over HTTPS, the KubeEmulator over HTTP, real SDK clients.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from _deploy_env import Env, make_env

from apim_selfhosted import DeploymentSpec, ManagementClient, deploy, verify
from apim_selfhosted.steps import (
    ANNOTATION_KEY_FINGERPRINT,
    issuing_key_fingerprint,
    key_fingerprint,
    with_key_fingerprint,
)

LIST_KEYS = "Microsoft.ApiManagement/service/gateways/listKeys/action"
# Everything deploy needs, but not listKeys (like the least-privilege rotator role).
NO_LIST_KEYS = (
    "*/read",
    "Microsoft.ApiManagement/service/gateways/write",
    "Microsoft.ApiManagement/service/gateways/generateToken/action",
)


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    yield from make_env()


def _deploy(env: Env, spec: DeploymentSpec, **options: Any) -> Any:
    options.setdefault("timeout", 30.0)
    options.setdefault("allow_lint_errors", True)
    options.setdefault("management", env.management)
    return deploy(spec, kube=env.kube, **options)


def _token_secret(env: Env, spec: DeploymentSpec, result: Any) -> dict[str, Any]:
    from apim_selfhosted.rendering import token_secret_name

    secret = env.kube.get("v1", "Secret", token_secret_name(spec, result.token), spec.namespace)
    assert secret is not None
    return secret


def _restricted(env: Env, actions: tuple[str, ...]) -> ManagementClient:
    principal = env.apim.add_principal(actions=actions)
    return ManagementClient(
        env.apim.credential(principal),
        base_url=env.apim.url,
        connection_verify=str(env.apim.ca_path),
        retry_backoff_factor=0.01,
        retry_backoff_max=0.05,
    )


def test_fingerprint_is_short_and_not_the_key() -> None:
    key = "k" * 88
    fingerprint = key_fingerprint(key)
    assert fingerprint == hashlib.sha256(key.encode()).hexdigest()[:16]
    assert len(fingerprint) == 16
    assert key not in fingerprint
    assert key_fingerprint("k" * 87 + "l") != fingerprint
    secret = {"metadata": {"name": "s", "annotations": {"a": "1"}}}
    annotated = with_key_fingerprint(secret, fingerprint)
    assert annotated["metadata"]["annotations"] == {
        "a": "1",
        ANNOTATION_KEY_FINGERPRINT: fingerprint,
    }
    assert secret["metadata"]["annotations"] == {"a": "1"}  # not changed in place
    assert with_key_fingerprint(secret, None) == secret


def test_regenerated_key_fails_verify_although_pods_are_ready(env: Env) -> None:
    spec = env.spec()
    result = _deploy(env, spec)
    assert result.ok, str(result)
    key_type = result.token.key_type.value
    keys = env.management.list_keys(spec.gateway)
    annotations = _token_secret(env, spec, result)["metadata"]["annotations"]
    assert annotations[ANNOTATION_KEY_FINGERPRINT] == key_fingerprint(keys.get(key_type))
    assert result.verify is not None
    assert result.verify.check("token-key").status == "ok"

    env.apim.regenerate_key(spec.gateway, key_type)
    report = verify(spec, kube=env.kube, management=env.management)
    check = report.check("token-key")
    assert check.status == "failed", str(report)
    assert "regenerated" in check.summary
    assert "rotate" in (check.advice or "")
    assert report.check("rollout").status == "ok"  # the pods are Ready all the same
    assert report.check("pods").status == "ok"
    assert not report.ok
    # Without management nothing can be compared: no such check.
    assert "token-key" not in {c.name for c in verify(spec, kube=env.kube).checks}


def test_redeploy_keeps_the_fingerprint_and_changes_nothing(env: Env) -> None:
    spec = env.spec()
    first = _deploy(env, spec)
    assert first.ok
    again = _deploy(env, spec)
    assert again.ok
    assert not again.changed, str(again)
    annotations = _token_secret(env, spec, again)["metadata"]["annotations"]
    assert ANNOTATION_KEY_FINGERPRINT in annotations


def test_without_list_keys_deploy_works_and_the_check_is_skipped(env: Env) -> None:
    spec = env.spec()
    with _restricted(env, NO_LIST_KEYS) as management:
        assert issuing_key_fingerprint(management, spec.gateway, "primary") is None
        result = _deploy(env, spec, management=management)
        assert result.ok, str(result)
        annotations = _token_secret(env, spec, result)["metadata"].get("annotations") or {}
        assert ANNOTATION_KEY_FINGERPRINT not in annotations
        report = verify(spec, kube=env.kube, management=management)
    check = report.check("token-key")
    assert check.status == "skipped"
    assert "no fingerprint" in check.summary
    assert report.ok, str(report)


def test_list_keys_forbidden_at_verify_names_the_permission(env: Env) -> None:
    spec = env.spec()
    assert _deploy(env, spec).ok
    with _restricted(env, NO_LIST_KEYS) as management:
        report = verify(spec, kube=env.kube, management=management)
    check = report.check("token-key")
    assert check.status == "skipped"
    assert "listKeys" in check.summary
    assert report.ok, str(report)


def test_no_key_in_logs_or_report(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    spec = env.spec()
    caplog.set_level(logging.DEBUG)
    result = _deploy(env, spec)
    keys = env.management.list_keys(spec.gateway)
    report = verify(spec, kube=env.kube, management=env.management)
    text = caplog.text + str(result) + str(report) + repr(report)
    for key in (keys.primary.get_secret_value(), keys.secondary.get_secret_value()):
        assert key not in text
