"""Token rotation end to end: FakeApim (HTTPS ARM) and the KubeEmulator over real HTTP.

The emulator's store is watched in process at every committed change: the number of pods that
are Ready, not terminating, and whose container started with a token FakeApim accepts must never
drop below ``replicas - maxUnavailable`` during a rotation.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _rotation_env import Env, Invariant, make_env

from apim_selfhosted import (
    KubernetesApplier,
    ProgressEvent,
    RotateResult,
    RotationError,
    rotate,
)
from apim_selfhosted.rendering import token_secret_name
from apim_selfhosted.rotation import lease_name


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    yield from make_env()


def _secret_value(env: Env, namespace: str, name: str) -> str:
    secret = env.kube.get("v1", "Secret", name, namespace)
    assert secret is not None
    return base64.b64decode(secret["data"]["value"]).decode()


def test_rotation_keeps_enough_ready_pods_with_valid_tokens(env: Env) -> None:
    spec = env.spec()
    old = env.token(spec, key_type="primary")
    env.deploy(spec, old)
    watcher = Invariant(env, spec.namespace)
    assert watcher.serving() == 3
    try:
        result = rotate(
            spec,
            management=env.management,
            kube=env.kube,
            force=True,
            timeout=30,
            on_event=env.record,
        )
    finally:
        watcher.close()
    assert result.outcome == "rotated", str(result)
    assert result.ok
    assert result.changed
    assert result.new_token is not None
    assert result.old_token is not None
    assert result.new_token.key_type.value == "secondary"  # the other key
    assert result.new_secret == token_secret_name(spec, result.new_token)
    assert result.old_secret == token_secret_name(spec, old)
    assert [c.status for c in result.checks] == ["ok", "ok", "ok"], str(result)
    # At every step: replicas (3) - maxUnavailable (1) serving pods at least.
    assert watcher.samples, "the watcher saw no pod changes"
    assert watcher.minimum is not None
    assert watcher.minimum >= 2, watcher.samples
    # All pods now run the new token, which FakeApim accepts.
    assert watcher.serving() == 3
    live_env = [
        env.emulator.controllers.pod_environment(spec.namespace, p["metadata"]["name"])
        for p in env.kube.list_objects("v1", "Pod", spec.namespace)
        if not p["metadata"].get("deletionTimestamp")
    ]
    assert {e["config.service.auth"] for e in live_env} == {
        result.new_token.value.get_secret_value()
    }
    # The previous Secret is kept (history), the Lease is released.
    assert env.kube.get("v1", "Secret", result.old_secret, spec.namespace) is not None
    lease = env.kube.get("coordination.k8s.io/v1", "Lease", lease_name(spec), spec.namespace)
    assert lease is not None
    assert not lease["spec"].get("holderIdentity")
    # Never a token in the result's text forms or the events.
    for text in (str(result), repr(result), result.model_dump_json(), *map(str, env.events)):
        assert old.value.get_secret_value() not in text
        assert result.new_token.value.get_secret_value() not in text


def test_not_needed_when_valid_beyond_horizon_and_safe_to_rerun(env: Env) -> None:
    spec = env.spec(replicas=1)
    token = env.token(spec)
    env.deploy(spec, token)
    before = env.apim.request_count("Gateway_GenerateToken")
    env.emulator.reset_requests()
    result = rotate(spec, management=env.management, kube=env.kube, timeout=30)
    assert result.outcome == "not-needed", str(result)
    # Hourly-safe: two reads (Deployment, Secret), no write, not even the Lease.
    assert [(r.method, r.resource.split(".")[0]) for r in env.emulator.requests] == [
        ("GET", "deployments"),
        ("GET", "secrets"),
    ]
    assert "valid for" in result.reason
    assert env.apim.request_count("Gateway_GenerateToken") == before
    # With a horizon beyond the token's life, it rotates.
    rotated = rotate(
        spec,
        management=env.management,
        kube=env.kube,
        only_if_expiring_within=timedelta(days=30),
        timeout=30,
    )
    assert rotated.outcome == "rotated", str(rotated)
    assert "within 30d" in rotated.reason


def test_expired_token_is_rotated(env: Env) -> None:
    spec = env.spec(replicas=2)
    expired = env.token(spec, expiry=datetime.now(UTC) - timedelta(hours=2))
    env.deploy(spec, expired)
    result = rotate(spec, management=env.management, kube=env.kube, timeout=30)
    assert result.outcome == "rotated", str(result)
    assert "expired" in result.reason
    assert result.new_token is not None
    assert env.apim.validate_token(result.new_token).status == "valid"
    assert env.apim.validate_token(expired).status == "expired"


def test_clock_injection_decides(env: Env) -> None:
    spec = env.spec(replicas=1)
    token = env.token(spec)  # 29 days
    env.deploy(spec, token)
    later = datetime.now(UTC) + timedelta(days=25)
    result = rotate(spec, management=env.management, kube=env.kube, now=later, timeout=30)
    assert result.outcome == "rotated", str(result)
    assert "expires in" in result.reason


def test_failed_rollout_rolls_back_to_previous_secret(env: Env) -> None:
    spec = env.spec(replicas=2, image={"repository": "example.org/never-ready", "tag": "1.0.0"})
    old = env.token(spec)
    env.emulator.script_pods(image="example.org/never-ready", ready_after=0.02)
    env.deploy(spec, old)
    env.emulator.script_pods(image="example.org/never-ready", never_ready=True)

    def heal_when_rolling_back(event: ProgressEvent) -> None:
        # Pods started for the rollback (old template, scaled back up) become ready again.
        if event.step == "rollback":
            env.emulator.script_pods(image="example.org/never-ready", ready_after=0.02)

    watcher = Invariant(env, spec.namespace)
    try:
        result = rotate(
            spec,
            management=env.management,
            kube=env.kube,
            force=True,
            timeout=1.5,
            on_event=heal_when_rolling_back,
        )
    finally:
        env.emulator.script_pods(image="example.org/never-ready", ready_after=0.02)
        watcher.close()
    # replicas (2) - maxUnavailable (1): the old pods kept serving through failure and rollback.
    assert watcher.samples
    assert watcher.minimum is not None
    assert watcher.minimum >= 1, watcher.samples
    assert result.outcome == "rolled-back", str(result)
    assert not result.ok
    assert "did not become ready" in result.reason
    assert f"rolled back to Secret {result.old_secret}" in result.reason
    assert result.rollback is not None
    assert result.rollback.ok
    deployment = env.kube.get("apps/v1", "Deployment", spec.base_name, spec.namespace)
    assert deployment is not None
    from apim_selfhosted.rendering import secret_name_in_use

    assert secret_name_in_use(deployment) == token_secret_name(spec, old)
    # The unused new Secret is gone, the old pods still serve.
    assert result.new_secret is not None
    assert env.kube.get("v1", "Secret", result.new_secret, spec.namespace) is None
    with pytest.raises(RotationError) as info:
        result.raise_for_failure()
    assert info.value.result is result


def test_regenerate_old_key_only_after_the_rollout(env: Env) -> None:
    spec = env.spec(replicas=2)
    old = env.token(spec, key_type="primary")
    env.deploy(spec, old)
    seen: list[tuple[str, str]] = []

    def check_during_rollout(event: ProgressEvent) -> None:
        if event.step == "rollout":
            seen.append((event.message, env.apim.validate_token(old).status))

    result = rotate(
        spec,
        management=env.management,
        kube=env.kube,
        force=True,
        regenerate_old_key=True,
        timeout=30,
        on_event=check_during_rollout,
    )
    assert result.outcome == "rotated", str(result)
    assert result.regenerated_key is not None
    assert result.regenerated_key.value == "primary"
    assert seen
    assert all(status == "valid" for _, status in seen), seen
    assert env.apim.validate_token(old).status == "invalidated"
    assert result.new_token is not None
    assert env.apim.validate_token(result.new_token).status == "valid"
    # No pod references the old Secret any more.
    for pod in env.kube.list_objects("v1", "Pod", spec.namespace):
        names = {
            (e.get("valueFrom") or {}).get("secretKeyRef", {}).get("name")
            for c in pod["spec"]["containers"]
            for e in c.get("env") or []
        }
        assert result.old_secret not in names


def test_new_pods_that_log_authentication_failures_are_rolled_back(env: Env) -> None:
    # Ready is not enough: a gateway whose token is refused stays Ready and serves nothing.
    repo = "example.org/auth-refused"
    spec = env.spec(replicas=2, image={"repository": repo, "tag": "1.0.0"})
    old = env.token(spec)
    env.deploy(spec, old)

    def refuse_the_new_pods(event: ProgressEvent) -> None:
        if event.step == "apply" and "creating Secret" in event.message:
            env.emulator.script_pods(
                image=repo, log_lines=("Configuration sync failed: 401 Unauthorized",)
            )
        elif event.step == "rollback":
            env.emulator.script_pods(image=repo)

    try:
        result = rotate(
            spec,
            management=env.management,
            kube=env.kube,
            force=True,
            timeout=10,
            on_event=refuse_the_new_pods,
        )
    finally:
        env.emulator.script_pods(image=repo)
    assert result.outcome == "rolled-back", str(result)
    assert "verification failed" in result.reason
    logs = next(c for c in result.checks if c.name == "logs")
    assert logs.status == "failed"
    assert any("(unauthorized)" in line for line in logs.evidence), logs.evidence
    assert f"rolled back to Secret {result.old_secret}" in result.reason
    deployment = env.kube.get("apps/v1", "Deployment", spec.base_name, spec.namespace)
    assert deployment is not None
    from apim_selfhosted.rendering import secret_name_in_use

    assert secret_name_in_use(deployment) == token_secret_name(spec, old)


def test_the_old_key_is_not_regenerated_while_a_pod_still_uses_its_token(env: Env) -> None:
    # A finalizer keeps one old pod Terminating after the rollout: it still runs with the old
    # token, so regenerating the old key now would cut it off mid-drain.
    spec = env.spec(replicas=2)
    old = env.token(spec, key_type="primary")
    env.deploy(spec, old)
    lingering = env.kube.list_objects("v1", "Pod", spec.namespace)[0]["metadata"]["name"]
    env.kube.patch(
        "v1", "Pod", lingering, spec.namespace, {"metadata": {"finalizers": ["test/hold"]}}
    )
    try:
        result = rotate(
            spec,
            management=env.management,
            kube=env.kube,
            force=True,
            regenerate_old_key=True,
            timeout=3,
        )
        pod = env.kube.get("v1", "Pod", lingering, spec.namespace)
    finally:
        env.kube.patch("v1", "Pod", lingering, spec.namespace, {"metadata": {"finalizers": None}})
    assert pod is not None
    assert pod["metadata"].get("deletionTimestamp")
    assert result.outcome == "rotated", str(result)
    assert result.regenerated_key is None
    assert "was not regenerated" in " ".join(result.notes)
    assert env.apim.validate_token(old).status == "valid"


def test_second_rotation_at_the_same_time_yields(env: Env) -> None:
    spec = env.spec(replicas=2)
    env.deploy(spec, env.token(spec))
    second: list[RotateResult] = []

    def start_second(event: ProgressEvent) -> None:
        if event.step == "rollout" and not second:
            second.append(
                rotate(
                    spec,
                    management=env.management,
                    kube=env.kube,
                    force=True,
                    holder_identity="rotator-b",
                    timeout=30,
                )
            )

    first = rotate(
        spec,
        management=env.management,
        kube=env.kube,
        force=True,
        holder_identity="rotator-a",
        timeout=30,
        on_event=start_second,
    )
    assert first.outcome == "rotated", str(first)
    assert len(second) == 1
    assert second[0].outcome == "yielded", str(second[0])
    assert second[0].lease_holder == "rotator-a"
    assert second[0].ok
    assert not second[0].changed
    # Once released, the next one proceeds.
    third = rotate(spec, management=env.management, kube=env.kube, force=True, timeout=30)
    assert third.outcome == "rotated", str(third)


def test_many_rotators_racing_for_the_lease_only_one_wins(env: Env) -> None:
    from apim_selfhosted.rendering import object_labels
    from apim_selfhosted.rotation import _acquire_lease

    spec = env.spec(replicas=1)
    barrier = threading.Barrier(6)
    won: list[str] = []

    def contend(i: int) -> None:
        with KubernetesApplier.from_kubeconfig(str(env.emulator.kubeconfig_path)) as kube:
            barrier.wait()
            lease, _holder = _acquire_lease(
                kube, spec, identity=f"r{i}", duration=60, labels=object_labels(spec)
            )
            if lease is not None:
                won.append(f"r{i}")

    env.kube.apply(
        [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": spec.namespace}}]
    )
    threads = [threading.Thread(target=contend, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(won) == 1, won


def test_expired_lease_of_a_crashed_rotator_is_taken_over(env: Env) -> None:
    spec = env.spec(replicas=1)
    env.deploy(spec, env.token(spec))
    stale = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    env.kube.apply(
        [
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": lease_name(spec), "namespace": spec.namespace},
                "spec": {
                    "holderIdentity": "crashed-rotator",
                    "leaseDurationSeconds": 60,
                    "acquireTime": stale,
                    "renewTime": stale,
                },
            }
        ]
    )
    result = rotate(spec, management=env.management, kube=env.kube, force=True, timeout=30)
    assert result.outcome == "rotated", str(result)
    lease = env.kube.get("coordination.k8s.io/v1", "Lease", lease_name(spec), spec.namespace)
    assert lease is not None
    assert lease["spec"]["leaseTransitions"] == 1


def test_history_keeps_configured_number_of_old_secrets(env: Env) -> None:
    from apim_selfhosted.rendering import token_secret_selector

    spec = env.spec(replicas=1)
    env.deploy(spec, env.token(spec))
    results = [
        # Distinct validities: two tokens from one key with the same expiry minute are equal.
        rotate(
            spec,
            management=env.management,
            kube=env.kube,
            force=True,
            keep_history=1,
            token_ttl=timedelta(days=20 + i),
            timeout=30,
        )
        for i in range(3)
    ]
    assert [r.outcome for r in results] == ["rotated"] * 3
    names = {
        s["metadata"]["name"]
        for s in env.kube.list_objects(
            "v1", "Secret", spec.namespace, label_selector=token_secret_selector(spec)
        )
    }
    assert names == {results[-1].new_secret, results[-1].old_secret}
    assert any(r.deleted_secrets for r in results)  # something older was removed
    # Keys alternate: primary -> secondary -> primary -> secondary.
    assert [r.new_token.key_type.value for r in results if r.new_token] == [
        "secondary",
        "primary",
        "secondary",
    ]


def test_no_deployment_is_a_clear_failure(env: Env) -> None:
    spec = env.spec(replicas=1)
    env.kube.apply(
        [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": spec.namespace}}]
    )
    result = rotate(spec, management=env.management, kube=env.kube, timeout=5)
    assert result.outcome == "failed"
    assert "deploy the gateway first" in result.reason


def test_bad_options_are_refused_before_anything_is_written(env: Env) -> None:
    from apim_selfhosted import SpecError

    spec = env.spec(replicas=1)
    before = len(env.emulator.requests)
    with pytest.raises(SpecError) as info:
        rotate(
            spec,
            management=env.management,
            kube=env.kube,
            keep_history=-1,
            token_ttl=timedelta(days=31),
        )
    fields = [p for p, _ in info.value.problems]
    assert fields == ["keep_history", "token_ttl"]
    assert len(env.emulator.requests) == before


def test_no_token_in_logs(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    spec = env.spec(replicas=1)
    old = env.token(spec)
    env.deploy(spec, old)
    with caplog.at_level(logging.DEBUG):
        result = rotate(spec, management=env.management, kube=env.kube, force=True, timeout=30)
    assert result.new_token is not None
    text = "\n".join(r.getMessage() for r in caplog.records)
    signature = old.value.get_secret_value().rsplit("&", 1)[1]
    new_signature = result.new_token.value.get_secret_value().rsplit("&", 1)[1]
    assert signature not in text
    assert new_signature not in text


def test_rotate_many_one_result_per_gateway_and_failures_do_not_stop_others(env: Env) -> None:
    from apim_selfhosted import DeploymentSpec, rotate_many

    specs = []
    for i in range(4):
        spec = env.spec(replicas=1, namespace=f"fleet-{i % 2}")
        env.deploy(spec, env.token(spec))
        specs.append(spec)
    missing = env.spec(replicas=1, namespace="fleet-0")  # no Deployment in the cluster
    entra = DeploymentSpec.model_validate(
        {
            **specs[0].model_dump(),
            "auth": {
                "kind": "entra-app",
                "tenant_id": "t",
                "client_id": "c",
                "client_secret": {"name": "s", "key": "k"},
            },
        }
    )
    fleet = [specs[0], missing, specs[1], entra, specs[2], specs[3]]
    seen: list[str] = []
    results = rotate_many(
        fleet,
        management=env.management,
        kube=env.kube,
        max_workers=3,
        force=True,
        timeout=30,
        on_result=lambda r: seen.append(r.gateway),
    )
    assert [r.gateway for r in results] == [str(s.gateway) for s in fleet]
    assert [r.outcome for r in results] == [
        "rotated",
        "failed",
        "rotated",
        "failed",
        "rotated",
        "rotated",
    ], "\n".join(map(str, results))
    assert "deploy the gateway first" in results[1].reason
    assert "SpecError" in results[3].reason
    assert "auth.kind" in results[3].reason
    assert sorted(seen) == sorted(r.gateway for r in results)


def test_rotate_many_with_a_client_per_cluster(env: Env) -> None:
    from apim_selfhosted import rotate_many

    specs = [env.spec(replicas=1) for _ in range(3)]
    for spec in specs:
        env.deploy(spec, env.token(spec))
    clients: dict[str, KubernetesApplier] = {}

    def kube_for(spec: object) -> KubernetesApplier:
        key = getattr(spec, "namespace", "")
        if key not in clients:
            clients[key] = KubernetesApplier.from_kubeconfig(str(env.emulator.kubeconfig_path))
        return clients[key]

    try:
        results = rotate_many(
            specs, management=env.management, kube_for=kube_for, force=True, timeout=30
        )
    finally:
        for client in clients.values():
            client.close()
    assert [r.outcome for r in results] == ["rotated"] * 3
    assert len(clients) == 3
    with pytest.raises(ValueError, match="exactly one of kube= or kube_for="):
        rotate_many(specs, management=env.management)
    with pytest.raises(TypeError, match="regenerate"):  # a typo fails before anything runs
        rotate_many(specs, management=env.management, kube=env.kube, regenerate=True)  # type: ignore[call-arg]


def test_waiting_for_old_pods_follows_a_watch_until_they_are_gone(env: Env) -> None:
    from apim_selfhosted.rotation import _wait_for_pods

    spec = env.spec(replicas=2)
    env.deploy(spec, env.token(spec))
    selector = "app.kubernetes.io/instance=" + spec.base_name
    pods = env.kube.list_objects("v1", "Pod", spec.namespace, label_selector=selector)
    victim = pods[0]["metadata"]["name"]
    calls: list[int] = []

    def gone(current: list[dict[str, Any]]) -> bool:
        calls.append(len(current))
        if len(calls) == 1:  # first look (the list): delete it now, the watch must see it go
            threading.Thread(
                target=env.kube.delete, args=("v1", "Pod", victim, spec.namespace)
            ).start()
        return all(p["metadata"]["name"] != victim for p in current)

    assert _wait_for_pods(env.kube, spec.namespace, selector, gone, timeout=30)
    assert len(calls) > 1  # decided on watch events, not on the first list
    assert env.kube.get("v1", "Pod", victim, spec.namespace) is None


def test_deploy_after_a_rotation_keeps_the_new_token(env: Env) -> None:
    from apim_selfhosted import deploy
    from apim_selfhosted.rendering import secret_name_in_use

    spec = env.spec(replicas=2)
    first = deploy(
        spec, management=env.management, kube=env.kube, timeout=30, allow_lint_errors=True
    )
    assert first.ok, str(first)
    rotated = rotate(spec, management=env.management, kube=env.kube, force=True, timeout=30)
    assert rotated.outcome == "rotated", str(rotated)
    # The token reference was handed back to deploy's field manager (as kubectl migrates
    # ownership): the rotator keeps no fields of a Deployment that deploy made.
    live = env.kube.get("apps/v1", "Deployment", spec.base_name, spec.namespace)
    assert live is not None
    managers = {e["manager"] for e in live["metadata"]["managedFields"]}
    assert "apim-selfhosted-rotator" not in managers, managers
    assert "apim-selfhosted" in managers
    again = deploy(
        spec, management=env.management, kube=env.kube, timeout=30, allow_lint_errors=True
    )
    assert again.ok, str(again)
    assert again.token is not None
    assert rotated.new_token is not None
    assert again.token.fingerprint == rotated.new_token.fingerprint  # reused, not re-issued
    live = env.kube.get("apps/v1", "Deployment", spec.base_name, spec.namespace)
    assert live is not None
    assert secret_name_in_use(live) == rotated.new_secret


def test_deploy_with_a_new_image_tag_after_a_rotation(env: Env) -> None:
    from apim_selfhosted import DeploymentSpec, deploy

    spec = env.spec(replicas=2)
    assert deploy(
        spec, management=env.management, kube=env.kube, timeout=30, allow_lint_errors=True
    ).ok
    rotated = rotate(spec, management=env.management, kube=env.kube, force=True, timeout=30)
    assert rotated.outcome == "rotated", str(rotated)
    upgraded = DeploymentSpec.model_validate(
        {**spec.model_dump(), "image": {**spec.image.model_dump(), "tag": "2.11.2"}}
    )
    result = deploy(
        upgraded, management=env.management, kube=env.kube, timeout=30, allow_lint_errors=True
    )
    assert result.ok, str(result)
    secret = env.kube.get("v1", "Secret", rotated.new_secret or "", spec.namespace)
    assert secret is not None
    assert secret["metadata"]["labels"]["app.kubernetes.io/version"] == "2.11.2"


def test_deploy_issuing_a_new_token_after_a_rotation(env: Env) -> None:
    from apim_selfhosted import deploy
    from apim_selfhosted.rendering import secret_name_in_use

    spec = env.spec(replicas=2)
    assert deploy(
        spec, management=env.management, kube=env.kube, timeout=30, allow_lint_errors=True
    ).ok
    rotated = rotate(spec, management=env.management, kube=env.kube, force=True, timeout=30)
    assert rotated.outcome == "rotated", str(rotated)
    # 25 days later the rotated token is within the horizon: deploy issues a new one itself.
    later = datetime.now(UTC) + timedelta(days=25)
    result = deploy(
        spec,
        management=env.management,
        kube=env.kube,
        timeout=30,
        allow_lint_errors=True,
        now=later,
        run_verify=False,
    )
    assert result.ok, str(result)
    assert result.token_issued
    live = env.kube.get("apps/v1", "Deployment", spec.base_name, spec.namespace)
    assert live is not None
    assert secret_name_in_use(live) != rotated.new_secret


def test_a_token_of_another_gateway_is_replaced(env: Env) -> None:
    from apim_selfhosted.rotation import _token_patch

    spec = env.spec(replicas=1)
    other = env.spec(replicas=1)
    env.deploy(spec, env.token(spec))
    foreign = env.token(other)
    env.kube.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "copied-token", "namespace": spec.namespace},
                "stringData": {"value": foreign.value.get_secret_value()},
            },
            _token_patch(spec, spec.base_name, "copied-token", "value", {}),
        ],
        field_manager="someone-else",
        force=True,
    )
    assert env.kube.wait_for_rollout(spec.base_name, spec.namespace, timeout=30).ok
    result = rotate(
        spec, management=env.management, kube=env.kube, regenerate_old_key=True, timeout=30
    )
    assert result.outcome == "rotated", str(result)
    assert f"belongs to gateway {other.gateway.name!r}" in result.reason
    assert result.regenerated_key is None
    assert "another gateway" in " ".join(result.notes)
    assert env.apim.validate_token(foreign).status == "valid"  # not ours to invalidate


def test_the_new_token_secret_records_the_issuing_keys_fingerprint(env: Env) -> None:
    from apim_selfhosted import verify
    from apim_selfhosted.steps import ANNOTATION_KEY_FINGERPRINT, issuing_key_fingerprint

    spec = env.spec(replicas=1)
    env.deploy(spec, env.token(spec, key_type="primary"))
    result = rotate(spec, management=env.management, kube=env.kube, force=True, timeout=30)
    assert result.outcome == "rotated", str(result)
    assert result.new_secret is not None
    assert result.new_token is not None
    secret = env.kube.get("v1", "Secret", result.new_secret, spec.namespace)
    assert secret is not None
    expected = issuing_key_fingerprint(env.management, spec.gateway, "secondary")
    assert expected is not None
    assert secret["metadata"]["annotations"][ANNOTATION_KEY_FINGERPRINT] == expected
    report = verify(spec, kube=env.kube, management=env.management)
    assert report.check("token-key").status == "ok", str(report)
