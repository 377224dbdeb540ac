"""KubernetesApplier pieces that need no API server: kubeconfig errors, rollout rules, results."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from apim_selfhosted import (
    Applied,
    Check,
    ClusterUnreachableError,
    DeployResult,
    KubernetesApplier,
    Plan,
    RolloutStatus,
    Token,
    VerificationError,
    VerifyReport,
)
from apim_selfhosted.kube import applied_configuration, object_path, pod_problems, rollout_state
from apim_selfhosted.results import FieldChange, PlannedChange, PodProblem


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _kubeconfig(tmp_path: Path, server: str) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {{server: "{server}"}}
users:
- name: u
  user: {{token: not-a-real-token}}
contexts:
- name: ctx
  context: {{cluster: c, user: u}}
current-context: ctx
"""
    )
    return path


def test_missing_kubeconfig_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ClusterUnreachableError) as info:
        KubernetesApplier.from_kubeconfig(str(tmp_path / "nope"))
    assert "\n" not in str(info.value)
    assert "kubeconfig" in str(info.value)


def test_unknown_context_is_named(tmp_path: Path) -> None:
    path = _kubeconfig(tmp_path, "http://127.0.0.1:1")
    with pytest.raises(ClusterUnreachableError) as info:
        KubernetesApplier.from_kubeconfig(str(path), context="elsewhere")
    assert "elsewhere" in str(info.value)


def test_refused_connection_is_one_line_and_hides_the_token(tmp_path: Path) -> None:
    port = _free_port()
    path = _kubeconfig(tmp_path, f"http://127.0.0.1:{port}")
    with KubernetesApplier.from_kubeconfig(str(path)) as kube:
        kube._api.configuration.retries = 0
        with pytest.raises(ClusterUnreachableError) as info:
            kube.get("v1", "ConfigMap", "x", "apim")
    text = str(info.value)
    assert "\n" not in text
    assert f"127.0.0.1:{port}" in text
    assert "refused" in text
    assert "not-a-real-token" not in text


def test_from_kubeconfig_does_not_touch_the_default_configuration(tmp_path: Path) -> None:
    from kubernetes.client import Configuration

    before = Configuration.get_default_copy().host
    path = _kubeconfig(tmp_path, "https://10.9.8.7:6443")
    with KubernetesApplier.from_kubeconfig(str(path)) as kube:
        assert kube.host == "https://10.9.8.7:6443"
    assert Configuration.get_default_copy().host == before


def test_object_paths() -> None:
    assert (
        object_path(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": "gw", "namespace": "apim"},
            }
        )
        == "/apis/policy/v1/namespaces/apim/poddisruptionbudgets/gw"
    )
    with pytest.raises(ValueError, match=r"metadata\.namespace"):
        object_path({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})
    with pytest.raises(ValueError, match="Widget"):
        object_path({"apiVersion": "v1", "kind": "Widget", "metadata": {"name": "s"}})


def _deployment(generation: int, observed: int, **status: int) -> dict[str, object]:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": 3},
        "status": {"observedGeneration": observed, **status},
    }


@pytest.mark.parametrize(
    ("deployment", "state"),
    [
        (_deployment(2, 1, replicas=3, updatedReplicas=3, availableReplicas=3), "waiting"),
        (_deployment(2, 2, replicas=4, updatedReplicas=3, availableReplicas=3), "waiting"),
        (_deployment(2, 2, replicas=3, updatedReplicas=2, availableReplicas=3), "waiting"),
        (_deployment(2, 2, replicas=3, updatedReplicas=3, availableReplicas=2), "waiting"),
        (_deployment(2, 2, replicas=3, updatedReplicas=3, availableReplicas=3), "complete"),
    ],
)
def test_rollout_rule_is_kubectls(deployment: dict[str, object], state: str) -> None:
    assert rollout_state(deployment)[0] == state


def test_progress_deadline_ends_the_rollout() -> None:
    dep = _deployment(2, 2, replicas=4, updatedReplicas=1, availableReplicas=3)
    dep["status"]["conditions"] = [  # type: ignore[index]
        {
            "type": "Progressing",
            "status": "False",
            "reason": "ProgressDeadlineExceeded",
            "message": 'ReplicaSet "gw-abc" has timed out progressing.',
        }
    ]
    assert rollout_state(dep) == (
        "progress-deadline-exceeded",
        'ReplicaSet "gw-abc" has timed out progressing.',
    )


def test_pod_problems_name_the_pod_and_reason() -> None:
    pod = {
        "metadata": {"name": "gw-1"},
        "status": {
            "containerStatuses": [
                {
                    "name": "gw",
                    "restartCount": 4,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                },
                {"name": "side", "restartCount": 0, "state": {"running": {}}},
            ]
        },
    }
    (problem,) = pod_problems(pod)
    assert (problem.pod, problem.container, problem.reason, problem.restart_count) == (
        "gw-1",
        "gw",
        "CrashLoopBackOff",
        4,
    )
    assert pod_problems({"metadata": {"name": "x"}, "status": {}}) == []


def test_results_render_for_terminal_and_notebook() -> None:
    plan = Plan(
        items=(
            PlannedChange(
                api_version="apps/v1",
                kind="Deployment",
                namespace="apim",
                name="gw",
                action="update",
                changes=(FieldChange(path="spec.replicas", before=1, after=3),),
            ),
            PlannedChange(
                api_version="v1",
                kind="Secret",
                namespace="apim",
                name="gw-token-x",
                action="create",
            ),
        )
    )
    assert "spec.replicas: 1 -> 3" in str(plan)
    assert "| Deployment apim/gw | update |" in plan._repr_markdown_()
    status = RolloutStatus(
        name="gw",
        namespace="apim",
        outcome="pods-failing",
        message="pods cannot start",
        pod_problems=(PodProblem(pod="gw-2", container="gw", reason="ImagePullBackOff"),),
    )
    assert not status.ok
    assert "gw-2" in str(status)
    assert "ImagePullBackOff" in status._repr_markdown_()


def test_reports_never_show_the_token_value() -> None:
    token = Token.parse("GatewayKey gw1&203001010000&c2VjcmV0LXNpZ25hdHVyZQ==")
    result = DeployResult(
        gateway="contoso/gw1",
        namespace="apim",
        name="gw1",
        token=token,
        token_issued=True,
        applied=(
            Applied(
                api_version="v1",
                kind="Secret",
                namespace="apim",
                name="gw1-token-x",
                action="created",
            ),
        ),
    )
    for text in (str(result), repr(result), result._repr_markdown_(), result.model_dump_json()):
        assert "c2VjcmV0LXNpZ25hdHVyZQ" not in text
    assert result.changed
    assert result.ok


def test_verify_report_exit_codes_and_raise() -> None:
    at = datetime(2026, 11, 27, tzinfo=UTC)

    def report(*statuses: str) -> VerifyReport:
        return VerifyReport(
            gateway="c/g",
            namespace="n",
            name="g",
            checked_at=at,
            checks=tuple(
                Check(name=f"c{i}", status=s, summary="x")  # type: ignore[arg-type]
                for i, s in enumerate(statuses)
            ),
        )

    assert report("ok", "skipped").exit_code == 0
    assert report("ok", "warning").exit_code == 2
    failed = report("warning", "failed")
    assert failed.exit_code == 1
    assert not failed.ok
    with pytest.raises(VerificationError) as info:
        failed.raise_for_failure()
    assert info.value.report is failed
    assert "c1" in str(info.value)
    assert "| ✘ | c1 |" in failed._repr_markdown_()


def test_invalid_secret_values_are_redacted_from_errors() -> None:
    from apim_selfhosted.kube import _api_error

    body = {
        "kind": "Status",
        "code": 422,
        "reason": "Invalid",
        "message": 'Secret "gw" is invalid: data[value]: Invalid value: "R2F0ZXdheUtleQ==": x',
        "details": {
            "causes": [{"field": "data[value]", "message": 'Invalid value: "R2F0ZXdheUtleQ==": x'}]
        },
    }
    err = _api_error(422, body, verb="patch", resource="secrets", namespace="apim", name="gw")
    text = str(err) + repr(err.causes) + repr(err.status)
    assert "R2F0ZXdheUtleQ" not in text
    assert err.causes == (("data[value]", 'Invalid value: "<redacted>": x'),)


def test_in_cluster_outside_a_pod_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    with pytest.raises(ClusterUnreachableError) as info:
        KubernetesApplier.in_cluster()
    assert "not running inside a Kubernetes pod" in str(info.value)
    assert "\n" not in str(info.value)


def test_applied_configuration_follows_keyed_lists_sets_and_atomic_values() -> None:
    live = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "gw",
            "namespace": "apim",
            "labels": {"mine": "1", "theirs": "2"},
            "managedFields": [
                {
                    "manager": "apim-selfhosted",
                    "operation": "Apply",
                    "fieldsV1": {
                        "f:metadata": {"f:labels": {"f:mine": {}}},
                        "f:spec": {
                            "f:template": {
                                "f:spec": {
                                    "f:containers": {
                                        'k:{"name":"gw"}': {
                                            ".": {},
                                            "f:image": {},
                                            "f:ports": {
                                                'k:{"containerPort":8080,"protocol":"TCP"}': {
                                                    ".": {},
                                                    "f:containerPort": {},
                                                }
                                            },
                                        }
                                    },
                                    "f:finalizers": {'v:"a"': {}},
                                    "f:args": {},
                                }
                            }
                        },
                    },
                },
                {"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {}}},
                {
                    "manager": "apim-selfhosted",
                    "operation": "Update",
                    "subresource": "status",
                    "fieldsV1": {"f:status": {"f:x": {}}},
                },
            ],
        },
        "spec": {
            "replicas": 3,
            "template": {
                "spec": {
                    "containers": [
                        {"name": "sidecar", "image": "s:1"},
                        {
                            "name": "gw",
                            "image": "g:2",
                            "imagePullPolicy": "IfNotPresent",
                            "ports": [
                                {"containerPort": 8080, "protocol": "TCP", "name": "http"},
                                {"containerPort": 8081, "protocol": "TCP"},
                            ],
                        },
                    ],
                    "finalizers": ["a", "b"],
                    "args": ["--x", "--y"],
                }
            },
        },
        "status": {"x": 1},
    }
    config = applied_configuration(live)
    assert config == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "gw", "namespace": "apim", "labels": {"mine": "1"}},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "gw",
                            "image": "g:2",
                            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                        }
                    ],
                    "finalizers": ["a"],
                    "args": ["--x", "--y"],  # an atomic list is owned as a whole
                }
            }
        },
    }
    assert applied_configuration(live, field_manager="kubectl") is None  # no Apply entry


def test_steps_reads_the_token_reference_through_render() -> None:
    """One reader of the ``config.service.auth`` Secret reference: ``render.token_reference``."""
    import inspect

    from apim_selfhosted import steps

    source = inspect.getsource(steps)
    assert "secretKeyRef" not in source
    assert "token_reference(" in source
