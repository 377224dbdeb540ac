"""``deploy`` end to end: FakeApim over HTTPS and the KubeEmulator over HTTP, real SDK clients.

Covers: a fresh deploy; a re-run that changes nothing; changes of replicas, image tag and
resources; a pod template that never gets ready (the old pods keep serving, the template is
restored); image pull failures named with the pod; 403 on one resource; FakeApim answering 503
for a while; a dropped watch; a half-applied state repaired by the next run; dry run, diff,
lint refusal and the configuration endpoint read from APIM. ``kubectl`` against the emulator
must agree with what ``deploy`` reports.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from _deploy_env import CUSTOM_CONFIG_HOST, CUSTOM_SERVICE, IMAGE, Env, make_env

from apim_selfhosted import (
    AuthorizationError,
    DeploymentSpec,
    FieldConflictError,
    KubernetesApplier,
    ProgressEvent,
    SpecError,
    deploy,
)
from apim_selfhosted.rendering import token_secret_selector


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    yield from make_env()


@pytest.fixture(autouse=True)
def _clear(env: Env) -> Iterator[None]:
    env.events.clear()
    yield
    env.apim.clear_faults()


def _deploy(env: Env, spec: DeploymentSpec, **options: Any) -> Any:
    options.setdefault("timeout", 30.0)
    options.setdefault("allow_lint_errors", True)
    return deploy(spec, management=env.management, kube=env.kube, on_event=env.record, **options)


def _pods(env: Env, spec: DeploymentSpec) -> list[dict[str, Any]]:
    return env.kube.list_objects(
        "v1", "Pod", spec.namespace, label_selector=f"app.kubernetes.io/instance={spec.base_name}"
    )


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def test_fresh_deploy_runs_a_verified_gateway(env: Env) -> None:
    spec = env.spec()
    result = _deploy(env, spec)
    assert result.ok, str(result)
    assert result.changed
    assert result.token_issued
    assert {a.action for a in result.applied} == {"created"}
    assert result.rollout is not None
    assert result.rollout.outcome == "complete"
    assert result.rollout.ready_replicas == 2
    assert result.verify is not None
    # The LoadBalancer address is assigned on its own timer (as on a real cluster): right after
    # the rollout it may still be pending, which is a warning and nothing else.
    for check in result.verify.checks:
        if check.name == "service" and check.status == "warning":
            assert "pending" in check.summary, str(result.verify)
        else:
            assert check.status == "ok", str(result.verify)
    # The gateway exists in APIM and the token in the cluster is one APIM accepts.
    assert env.apim.has_gateway(spec.gateway)
    secret = env.kube.list_objects(
        "v1", "Secret", spec.namespace, label_selector=token_secret_selector(spec)
    )
    assert len(secret) == 1
    value = base64.b64decode(secret[0]["data"]["value"]).decode()
    assert env.apim.validate_token(value).status == "valid"
    assert result.token is not None
    assert value not in str(result) + repr(result) + result._repr_markdown_()
    # Progress was reported for every phase, without the token.
    steps = {e.step for e in env.events}
    assert {"validate", "gateway", "token", "apply", "rollout", "verify"} <= steps
    assert all(value.split("&")[-1] not in str(e) + repr(e.data) for e in env.events)


def test_kubectl_agrees_with_deploy(env: Env) -> None:
    spec = env.spec(replicas=3)
    result = _deploy(env, spec)
    assert result.ok
    status = env.kubectl("rollout", "status", f"deployment/{spec.base_name}", "-n", spec.namespace)
    assert status.returncode == 0, status.stderr
    assert "successfully rolled out" in status.stdout
    ready = env.kubectl(
        "get",
        "deployment",
        spec.base_name,
        "-n",
        spec.namespace,
        "-o",
        "jsonpath={.status.readyReplicas}/{.spec.replicas}",
    )
    assert ready.stdout == "3/3"
    assert result.rollout is not None
    assert f"{result.rollout.ready_replicas}/{result.rollout.desired_replicas}" == ready.stdout


def test_redeploy_unchanged_changes_nothing(env: Env) -> None:
    spec = env.spec()
    first = _deploy(env, spec)
    assert first.ok
    second = _deploy(env, spec)
    assert second.ok
    assert not second.token_issued
    assert second.token is not None
    assert first.token is not None
    assert second.token.fingerprint == first.token.fingerprint
    assert {a.action for a in second.applied} == {"unchanged"}, str(second)
    assert not second.changed
    assert "no change" in str(second)
    assert second.pruned == ()


@pytest.mark.parametrize(
    ("change", "check", "changed_kinds"),
    [
        ({"replicas": 3}, lambda d: d["spec"]["replicas"] == 3, {"Deployment"}),
        (
            {"image": {"tag": "2.11.2"}},
            lambda d: d["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":2.11.2"),
            # app.kubernetes.io/version follows the image tag on every object
            {"Namespace", "ServiceAccount", "Secret", "ConfigMap", "Deployment", "Service"},
        ),
        (
            {"resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}},
            lambda d: (
                d["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
                == {"cpu": "250m", "memory": "256Mi"}
            ),
            {"Deployment"},
        ),
    ],
    ids=["replicas", "image-tag", "resources"],
)
def test_changes_roll_out(
    env: Env, change: dict[str, Any], check: Any, changed_kinds: set[str]
) -> None:
    spec = env.spec()
    assert _deploy(env, spec).ok
    data = spec.model_dump()
    for key, value in change.items():
        data[key] = {**data[key], **value} if isinstance(data.get(key), dict) else value
    changed_spec = DeploymentSpec.model_validate(data)
    result = _deploy(env, changed_spec)
    assert result.ok, str(result)
    assert {a.kind for a in result.applied if a.action == "changed"} == changed_kinds
    live = env.kube.get("apps/v1", "Deployment", spec.base_name, spec.namespace)
    assert live is not None
    assert check(live)
    assert result.rollout is not None
    assert result.rollout.ok
    assert result.rollout.updated_replicas == live["spec"]["replicas"]


def test_never_ready_template_fails_and_old_pods_keep_serving(env: Env) -> None:
    spec = env.spec()
    assert _deploy(env, spec).ok
    old_pods = {p["metadata"]["name"] for p in _pods(env, spec)}
    env.emulator.script_pods(image=f"{IMAGE}:2.11.90", never_ready=True)
    broken = spec.model_copy(update={"image": spec.image.model_copy(update={"tag": "2.11.90"})})
    result = _deploy(env, broken, timeout=1.5)
    assert not result.ok
    assert result.rollout is not None
    assert result.rollout.outcome == "timeout"
    assert result.rolled_back
    assert "did not complete" in (result.error or "")
    with pytest.raises(Exception, match="rollout"):
        result.raise_for_failure()
    live = env.kube.get("apps/v1", "Deployment", spec.base_name, spec.namespace)
    assert live is not None
    assert live["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":2.11.1")
    ready_old = {p["metadata"]["name"] for p in _pods(env, spec) if _ready(p)}
    assert old_pods <= ready_old  # the same pods served all along
    status = env.kubectl("rollout", "status", f"deployment/{spec.base_name}", "-n", spec.namespace)
    assert status.returncode == 0


def test_image_pull_failure_names_the_pod_and_kubectl_agrees(env: Env) -> None:
    spec = env.spec()
    assert _deploy(env, spec).ok
    env.emulator.script_pods(image=f"{IMAGE}:2.11.91", image_pull_error=True)
    broken = spec.model_copy(update={"image": spec.image.model_copy(update={"tag": "2.11.91"})})
    result = _deploy(env, broken, rollback_on_failure=False)
    assert result.rollout is not None
    assert result.rollout.outcome == "pods-failing"
    assert not result.rolled_back
    (problem, *_) = result.rollout.pod_problems
    assert problem.reason in ("ErrImagePull", "ImagePullBackOff")
    assert problem.pod.startswith(f"{spec.base_name}-")
    assert problem.pod in str(result)
    # kubectl sees the same: the rollout is not complete, the old pods are still ready.
    status = env.kubectl(
        "rollout",
        "status",
        f"deployment/{spec.base_name}",
        "-n",
        spec.namespace,
        "--timeout=1s",
    )
    assert status.returncode != 0
    assert sum(1 for p in _pods(env, spec) if _ready(p)) == 2


def test_lint_errors_refuse_before_anything_is_written(env: Env) -> None:
    spec = env.spec(namespace="default", create_namespace=False, replicas=1)
    with pytest.raises(SpecError) as info:
        deploy(spec, management=env.management, kube=env.kube)
    assert info.value.problems
    assert "lint" in str(info.value)
    assert not env.apim.has_gateway(spec.gateway)
    assert env.kube.get("apps/v1", "Deployment", spec.base_name, "default") is None


def test_dry_run_writes_nothing_anywhere(env: Env) -> None:
    spec = env.spec()
    result = _deploy(env, spec, dry_run=True, diff=True)
    assert result.dry_run
    assert not result.token_issued
    assert all(a.dry_run for a in result.applied)
    assert result.plan is not None
    assert result.plan.count("create") == len(result.plan.items)
    assert not env.apim.has_gateway(spec.gateway)
    assert env.kube.get("v1", "Namespace", spec.namespace) is None


def test_dry_run_plan_lists_what_the_deploy_applies_with_the_token_secret_redacted(
    env: Env,
) -> None:
    spec = env.spec()
    planned = _deploy(env, spec, dry_run=True, diff=True)
    assert planned.plan is not None
    kinds = sorted(i.kind for i in planned.plan.items)
    assert "Secret" in kinds
    assert sorted(a.kind for a in planned.applied) == kinds
    result = _deploy(env, spec)
    assert result.ok, str(result)
    assert sorted(a.kind for a in result.applied) == kinds
    (secret,) = [i for i in planned.plan.items if i.kind == "Secret"]
    assert "GatewayKey" not in str(secret) + repr(secret)
    assert "&" not in str(planned.plan)


def test_diff_shows_what_a_change_would_do(env: Env) -> None:
    spec = env.spec()
    assert _deploy(env, spec).ok
    result = _deploy(env, spec.model_copy(update={"replicas": 4}), dry_run=True, diff=True)
    assert result.plan is not None
    (update,) = [i for i in result.plan.items if i.action == "update"]
    assert [(c.path, c.before, c.after) for c in update.changes] == [("spec.replicas", 2, 4)]
    live = env.kube.get("apps/v1", "Deployment", spec.base_name, spec.namespace)
    assert live is not None
    assert live["spec"]["replicas"] == 2


def test_config_endpoint_comes_from_apim(env: Env) -> None:
    spec = env.spec(service=CUSTOM_SERVICE)
    result = _deploy(env, spec)
    assert result.ok, str(result)
    cm = env.kube.get("v1", "ConfigMap", spec.config_map_name, spec.namespace)
    assert cm is not None
    assert CUSTOM_CONFIG_HOST in cm["data"]["config.service.endpoint"]
    assert result.verify is not None
    assert result.verify.check("config-endpoint").status == "ok"


def test_apim_unavailable_for_a_while_is_retried(env: Env) -> None:
    spec = env.spec()
    fault = env.apim.inject_fault(
        "unavailable", operation="Gateway_GenerateToken", times=2, retry_after=0
    )
    result = _deploy(env, spec)
    assert result.ok, str(result)
    assert fault.hits == 2


def test_403_on_one_resource_names_the_permission(env: Env) -> None:
    spec = env.spec(create_namespace=False)
    env.kube.apply(
        [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": spec.namespace}}]
    )
    user = env.emulator.add_user(
        f"ci-{spec.namespace}",
        namespace=spec.namespace,
        rules=[
            {"apiGroups": [""], "resources": ["*"], "verbs": ["*"]},
            {
                "apiGroups": ["apps"],
                "resources": ["deployments", "replicasets"],
                "verbs": ["get", "list", "watch"],
            },
        ],
    )
    with (
        KubernetesApplier.from_kubeconfig(str(user.kubeconfig_path)) as limited,
        pytest.raises(AuthorizationError) as info,
    ):
        deploy(spec, management=env.management, kube=limited, allow_lint_errors=True)
    assert info.value.permission == "patch deployments.apps"
    assert info.value.namespace == spec.namespace
    # Half-applied: the objects before the Deployment exist. The next run (with enough
    # rights) repairs it; one token Secret is left (an orphan would have been pruned).
    assert env.kube.get("v1", "ConfigMap", spec.config_map_name, spec.namespace) is not None
    result = _deploy(env, spec)
    assert result.ok, str(result)
    secrets = env.kube.list_objects(
        "v1", "Secret", spec.namespace, label_selector=token_secret_selector(spec)
    )
    assert len(secrets) == 1
    assert result.verify is not None
    assert result.verify.ok


def test_dropped_watch_is_resumed(env: Env) -> None:
    spec = env.spec()
    env.emulator.script_pods(labels={"app.kubernetes.io/instance": spec.base_name}, ready_after=1.0)
    dropped: list[int] = []

    def on_event(event: ProgressEvent) -> None:
        # Once the rollout is being watched, drop the watches (as an API server restart would).
        if event.step == "rollout" and not dropped:
            timer = threading.Timer(0.3, lambda: dropped.append(env.emulator.drop_watches()))
            timer.daemon = True
            timer.start()
            dropped.append(-1)

    result = deploy(
        spec,
        management=env.management,
        kube=env.kube,
        allow_lint_errors=True,
        timeout=30,
        on_event=on_event,
    )
    assert len(dropped) == 2
    assert dropped[1] >= 1
    assert result.ok, str(result)
    assert result.rollout is not None
    assert result.rollout.watch_restarts >= 1


def test_token_never_logged(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    spec = env.spec()
    with caplog.at_level(logging.DEBUG):
        result = _deploy(env, spec)
    assert result.token is not None
    value = result.token.value.get_secret_value()
    signature = value.rsplit("&", 1)[-1]
    assert caplog.records
    for record in caplog.records:
        assert signature not in record.getMessage()
    assert signature not in str(result) + result.model_dump_json()


def test_rerun_issues_no_token_and_writes_nothing(env: Env) -> None:
    spec = env.spec()
    assert _deploy(env, spec).ok
    env.apim.reset_requests()
    env.emulator.reset_requests()
    again = _deploy(env, spec)
    assert again.ok
    assert env.apim.request_count("Gateway_GenerateToken") == 0
    writes = [r for r in env.emulator.requests if r.verb in ("create", "update", "delete")]
    assert writes == []
    assert not again.changed


def test_objects_the_spec_drops_are_pruned_by_the_next_deploy(env: Env) -> None:
    spec = env.spec(network_policy={})
    first = _deploy(env, spec)
    assert first.ok
    assert env.kube.get("networking.k8s.io/v1", "NetworkPolicy", spec.base_name, spec.namespace)
    record = env.kube.get("apps/v1", "Deployment", spec.base_name, spec.namespace)
    assert record is not None
    entries = record["metadata"]["annotations"]["apim-selfhosted.io/applied-objects"].split(",")
    assert f"networking.k8s.io/v1:NetworkPolicy:{spec.base_name}" in entries
    plain = spec.model_copy(update={"network_policy": None})
    result = _deploy(env, plain)
    assert result.ok, str(result)
    assert [str(r) for r in result.pruned] == [f"NetworkPolicy {spec.namespace}/{spec.base_name}"]
    assert (
        env.kube.get("networking.k8s.io/v1", "NetworkPolicy", spec.base_name, spec.namespace)
        is None
    )
    assert _deploy(env, plain).pruned == ()


def test_fields_left_with_the_rotator_are_taken_back(env: Env) -> None:
    spec = env.spec()
    assert _deploy(env, spec).ok
    env.kube.apply(
        [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": spec.base_name, "namespace": spec.namespace},
                "spec": {"replicas": 3},
            }
        ],
        field_manager="apim-selfhosted-rotator",
        force=True,
    )
    result = _deploy(env, spec)
    assert result.ok, str(result)
    live = env.kube.get("apps/v1", "Deployment", spec.base_name, spec.namespace)
    assert live is not None
    assert live["spec"]["replicas"] == 2
    assert any("taking fields back" in e.message for e in env.events)


def test_fields_of_another_manager_stop_the_deploy(env: Env) -> None:
    spec = env.spec()
    assert _deploy(env, spec).ok
    env.kube.apply(
        [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": spec.base_name, "namespace": spec.namespace},
                "spec": {"replicas": 3},
            }
        ],
        field_manager="platform-team",
        force=True,
    )
    with pytest.raises(FieldConflictError) as info:
        _deploy(env, spec)
    assert info.value.managers == ("platform-team",)
    assert _deploy(env, spec, force=True).ok


def test_an_existing_gateway_is_left_as_it_is(env: Env) -> None:
    spec = env.spec()
    gw = spec.gateway
    env.apim.add_gateway(
        gw.subscription_id,
        gw.resource_group,
        gw.service_name,
        gw.name,
        description="made in the portal",
        location="Seattle DC 4",
    )
    result = _deploy(env, spec, location="somewhere else")
    assert result.ok, str(result)
    info = env.management.get_gateway(gw)
    assert (info.location, info.description) == ("Seattle DC 4", "made in the portal")
