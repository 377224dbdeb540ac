"""Rotation with exactly the rendered Kubernetes Role and the documented Azure role, and less.

The rotator runs as the ServiceAccount ``<base>-rotator`` (a bearer token the emulator maps to
``system:serviceaccount:<ns>:<base>-rotator``), bound by the RoleBinding that
``render_rotator`` renders; Azure calls use a FakeApim principal holding only the actions of
``azure_rotator_role``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from _rotation_env import Env, make_env

from apim_selfhosted import (
    AuthorizationError,
    DeploymentSpec,
    KubernetesApplier,
    ManagementClient,
    render_rotator,
    rotate,
)
from apim_selfhosted.rendering import secret_name_in_use, token_secret_selector
from apim_selfhosted.rotation import azure_rotator_role

IDENTITY = "11111111-2222-3333-4444-555555555555"


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    yield from make_env()


def _setup(
    env: Env, *, rules: list[dict[str, Any]] | None = None, regenerate: bool = False
) -> tuple[DeploymentSpec, KubernetesApplier, ManagementClient]:
    spec = env.spec(replicas=2)
    env.deploy(spec, env.token(spec))
    manifests = render_rotator(spec, image="example.org/rotator:1.0", identity=IDENTITY)
    if rules is not None:
        role = next(m for m in manifests if m["kind"] == "Role")
        role["rules"] = rules
    env.kube.apply(manifests)
    user = env.emulator.add_user(f"system:serviceaccount:{spec.namespace}:{spec.base_name}-rotator")
    kube = KubernetesApplier.from_kubeconfig(str(user.kubeconfig_path))
    actions = azure_rotator_role(spec, regenerate_old_key=regenerate)["Actions"]
    principal = env.apim.add_principal(actions=actions)
    management = ManagementClient(
        env.apim.credential(principal),
        base_url=env.apim.url,
        connection_verify=str(env.apim.ca_path),
        retry_backoff_factor=0.01,
        retry_backoff_max=0.05,
    )
    return spec, kube, management


def test_rotation_succeeds_with_exactly_the_rendered_roles(env: Env) -> None:
    spec, kube, management = _setup(env)
    with kube, management:
        first = rotate(spec, management=management, kube=kube, force=True, timeout=30)
        assert first.outcome == "rotated", str(first)
        assert [c.status for c in first.checks] == ["ok", "ok", "ok"], str(first)
        second = rotate(
            spec, management=management, kube=kube, force=True, keep_history=0, timeout=30
        )
        assert second.outcome == "rotated", str(second)
        assert second.deleted_secrets  # list + delete of old token Secrets allowed
        assert rotate(spec, management=management, kube=kube, timeout=30).outcome == ("not-needed")


def test_regenerating_needs_the_extra_azure_action(env: Env) -> None:
    spec, kube, management = _setup(env)
    with kube, management:
        result = rotate(
            spec,
            management=management,
            kube=kube,
            force=True,
            regenerate_old_key=True,
            timeout=30,
        )
    assert result.outcome == "rotated", str(result)
    assert not result.ok  # the new token is in place, but the old key was not regenerated
    check = next(c for c in result.checks if c.name == "regenerate-key")
    assert check.status == "failed"
    assert "regenerateKey/action" in check.summary
    assert result.old_token is not None
    assert env.apim.validate_token(result.old_token).status == "valid"

    spec, kube, management = _setup(env, regenerate=True)
    with kube, management:
        result = rotate(
            spec,
            management=management,
            kube=kube,
            force=True,
            regenerate_old_key=True,
            timeout=30,
        )
    assert result.ok, str(result)
    assert result.old_token is not None
    assert env.apim.validate_token(result.old_token).status == "invalidated"


@pytest.mark.parametrize(
    ("actions", "missing"),
    [
        (["Microsoft.ApiManagement/service/gateways/read"], "generateToken/action"),
        (
            ["Microsoft.ApiManagement/service/gateways/generateToken/action"],
            "gateways/read",
        ),
    ],
)
def test_less_than_the_azure_role_fails_clearly(env: Env, actions: list[str], missing: str) -> None:
    spec, kube, _ = _setup(env)
    principal = env.apim.add_principal(actions=actions)
    with (
        kube,
        ManagementClient(
            env.apim.credential(principal),
            base_url=env.apim.url,
            connection_verify=str(env.apim.ca_path),
            retry_backoff_factor=0.01,
            retry_backoff_max=0.05,
        ) as management,
    ):
        before = env.kube.get("apps/v1", "Deployment", spec.base_name, spec.namespace)
        with pytest.raises(AuthorizationError) as info:
            rotate(spec, management=management, kube=kube, force=True, timeout=30)
    assert info.value.system == "azure"
    assert missing in info.value.permission
    after = env.kube.get("apps/v1", "Deployment", spec.base_name, spec.namespace)
    assert before is not None
    assert after is not None
    assert after["metadata"]["generation"] == before["metadata"]["generation"]


def _without(rules: list[dict[str, Any]], resource: str, verb: str) -> list[dict[str, Any]]:
    out = []
    for rule in copy.deepcopy(rules):
        if resource in rule["resources"] and verb in rule["verbs"]:
            rule["verbs"] = [v for v in rule["verbs"] if v != verb]
            if not rule["verbs"]:
                continue
        out.append(rule)
    return out


_ROLE_ENTRIES = [
    ("deployments", "get"),
    ("deployments", "patch"),
    ("deployments", "watch"),
    ("replicasets", "list"),
    ("pods", "list"),
    ("pods", "watch"),
    ("secrets", "get"),
    ("secrets", "list"),
    ("secrets", "create"),
    ("secrets", "patch"),
    ("secrets", "delete"),
    ("leases", "create"),
    ("leases", "get"),
    ("leases", "update"),
]


@pytest.mark.parametrize(("resource", "verb"), _ROLE_ENTRIES)
def test_each_verb_of_the_role_is_needed(env: Env, resource: str, verb: str) -> None:
    spec, kube, management = _setup(env)
    role = next(
        m
        for m in render_rotator(spec, image="example.org/rotator:1.0", identity=IDENTITY)
        if m["kind"] == "Role"
    )
    reduced = _without(role["rules"], resource, verb)
    assert reduced != role["rules"], f"{verb} {resource} is not in the Role"
    role["rules"] = reduced
    env.kube.apply([role])
    # keep_history=0: the clean-up deletes the previous Secret, so every verb is exercised.
    with kube, management, pytest.raises(AuthorizationError) as info:
        rotate(
            spec,
            management=management,
            kube=kube,
            force=True,
            keep_history=0,
            timeout=10,
        )
    assert info.value.system == "kubernetes"
    # The API server's words name the verb it refused (a create-by-apply is refused "create").
    assert f'cannot {verb} resource "{resource}"' in str(info.value), str(info.value)
    # The Deployment still points at a Secret that exists.
    live = env.kube.get("apps/v1", "Deployment", spec.base_name, spec.namespace)
    assert live is not None
    in_use = secret_name_in_use(live)
    assert in_use is not None
    assert env.kube.get("v1", "Secret", in_use, spec.namespace) is not None
    secrets = env.kube.list_objects(
        "v1", "Secret", spec.namespace, label_selector=token_secret_selector(spec)
    )
    assert len(secrets) <= 2


def test_replicasets_get_is_needed_to_judge_failing_pods(env: Env) -> None:
    spec = env.spec(replicas=2, image={"repository": "example.org/crashy", "tag": "1.0.0"})
    env.emulator.script_pods(image="example.org/crashy", ready_after=0.02)
    env.deploy(spec, env.token(spec))
    manifests = render_rotator(spec, image="example.org/rotator:1.0", identity=IDENTITY)
    role = next(m for m in manifests if m["kind"] == "Role")
    role["rules"] = _without(role["rules"], "replicasets", "get")
    env.kube.apply(manifests)
    user = env.emulator.add_user(f"system:serviceaccount:{spec.namespace}:{spec.base_name}-rotator")
    principal = env.apim.add_principal(actions=azure_rotator_role(spec)["Actions"])
    env.emulator.script_pods(image="example.org/crashy", crash_loop=True)
    try:
        with (
            KubernetesApplier.from_kubeconfig(str(user.kubeconfig_path)) as kube,
            ManagementClient(
                env.apim.credential(principal),
                base_url=env.apim.url,
                connection_verify=str(env.apim.ca_path),
            ) as management,
            pytest.raises(AuthorizationError) as info,
        ):
            rotate(spec, management=management, kube=kube, force=True, timeout=10)
    finally:
        env.emulator.script_pods(image="example.org/crashy", ready_after=0.02)
    assert "replicasets" in info.value.permission
    # Interrupted after the switch: the pods were pointed back at the previous Secret.
    live = env.kube.get("apps/v1", "Deployment", spec.base_name, spec.namespace)
    assert live is not None
    old_secret = secret_name_in_use(live)
    assert old_secret is not None
    assert old_secret.startswith(f"{spec.base_name}-token-")
    assert env.kube.wait_for_rollout(spec.base_name, spec.namespace, timeout=30).ok
