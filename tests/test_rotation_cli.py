"""``apim-selfhosted rotate`` and ``apim-selfhosted rotator`` (the emulator as the cluster).

The paths that reach Azure run through the library in test_rotation.py (the CLI takes its Azure
credential from DefaultAzureCredential, which these tests do not point at FakeApim); here the
CLI decides from the cluster alone: not needed, nothing deployed, bad input, manifests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from apim_selfhosted import DeploymentSpec, KubernetesApplier, Token
from apim_selfhosted.cli import EXIT_BAD_INPUT, main
from apim_selfhosted.rendering import render
from apim_selfhosted.testing.kube.emulator import KubeEmulator

SIGNATURE = "cm90YXRpb24tY2xpLXNpZ25hdHVyZQ=="
CLIENT_ID = "11111111-2222-3333-4444-555555555555"


@pytest.fixture(scope="module")
def emulator() -> Iterator[KubeEmulator]:
    with KubeEmulator(ready_delay=0.02) as emu:
        yield emu


_n = iter(range(1, 1000))


def _spec_file(tmp_path: Path) -> tuple[DeploymentSpec, Path]:
    n = next(_n)
    spec = DeploymentSpec.model_validate(
        {
            "gateway": {
                "subscription_id": "00000000-0000-0000-0000-000000000002",
                "resource_group": "rg",
                "service_name": "contoso",
                "name": f"rcli{n}",
            },
            "namespace": f"rcli-{n}",
            "create_namespace": True,
            "replicas": 1,
            "image": {"tag": "2.11.1"},
        }
    )
    path = tmp_path / "gateway.yaml"
    spec.to_file(path)
    return spec, path


def _deploy(emulator: KubeEmulator, spec: DeploymentSpec, days: int) -> Token:
    expires = datetime.now(UTC) + timedelta(days=days)
    token = Token.parse(f"GatewayKey {spec.gateway.name}&{expires:%Y%m%d%H%M}&{SIGNATURE}")
    with KubernetesApplier.from_kubeconfig(str(emulator.kubeconfig_path)) as kube:
        kube.apply(render(spec, token))
        assert kube.wait_for_rollout(spec.base_name, spec.namespace, timeout=30).ok
    return token


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert SIGNATURE not in out + err
    return code, out, err


def test_rotate_not_needed_exits_0(
    emulator: KubeEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, path = _spec_file(tmp_path)
    _deploy(emulator, spec, days=20)
    code, out, err = _run(
        capsys, "rotate", str(path), "--kubeconfig", str(emulator.kubeconfig_path)
    )
    assert code == 0, out + err
    assert ": not-needed: the token in use is valid for 20.0 more days" in out
    assert "[rotate]" in err  # progress on stderr
    code, out, _ = _run(
        capsys,
        "rotate",
        str(path),
        "--kubeconfig",
        str(emulator.kubeconfig_path),
        "--format",
        "json",
        "--quiet",
        "--if-expiring-within",
        "2d",
    )
    assert code == 0
    data = json.loads(out)
    assert data["outcome"] == "not-needed"
    assert data["old_token"]["value"] == "**********"


def test_rotate_without_a_deployment_exits_1(
    emulator: KubeEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, path = _spec_file(tmp_path)
    code, out, _ = _run(
        capsys, "rotate", str(path), "--kubeconfig", str(emulator.kubeconfig_path), "-q"
    )
    assert code == 1
    assert "failed: no Deployment" in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--if-expiring-within", "soon"], "--if-expiring-within"),
        (["--keep-history", "-1"], "--keep-history"),
        (["--at", "tomorrow"], "--at"),
    ],
)
def test_rotate_bad_input_exits_with_bad_input(
    emulator: KubeEmulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    needle: str,
) -> None:
    _, path = _spec_file(tmp_path)
    before = len(emulator.requests)
    code, _, err = _run(
        capsys, "rotate", str(path), "--kubeconfig", str(emulator.kubeconfig_path), *args
    )
    assert code == EXIT_BAD_INPUT
    assert needle in err
    assert len(emulator.requests) == before  # refused before talking to the cluster


def test_rotator_prints_manifests_and_the_azure_role(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, path = _spec_file(tmp_path)
    code, out, _ = _run(
        capsys,
        "rotator",
        str(path),
        "--image",
        "example.org/apim-selfhosted:0.1.0",
        "--client-id",
        "11111111-2222-3333-4444-555555555555",
        "--schedule",
        "30 * * * *",
        "--if-expiring-within",
        "7d",
    )
    assert code == 0
    docs = list(yaml.safe_load_all(out))
    assert [d["kind"] for d in docs] == [
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "CronJob",
    ]
    cron = docs[-1]
    assert cron["spec"]["schedule"] == "30 * * * *"
    args = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--if-expiring-within" in args
    target = tmp_path / "role.json"
    code, out, _ = _run(
        capsys,
        "rotator",
        str(path),
        "--image",
        "x:1",
        "--client-id",
        "c",
        "--azure-role",
        "--regenerate-old-key",
        "-o",
        str(target),
    )
    assert code == 0
    role = json.loads(target.read_text())
    assert role["Actions"][-1].endswith("gateways/regenerateKey/action")
    assert role["AssignableScopes"] == [spec.gateway.service_resource_id]


def test_rotator_bad_schedule_exits_with_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, path = _spec_file(tmp_path)
    code, _, err = _run(
        capsys,
        "rotator",
        str(path),
        "--image",
        "x:1",
        "--client-id",
        CLIENT_ID,
        "--schedule",
        "daily",
    )
    assert code == EXIT_BAD_INPUT
    assert "schedule" in err


def test_rotate_yields_to_a_rotation_in_progress_exits_0(
    emulator: KubeEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from apim_selfhosted.rotation import lease_name

    spec, path = _spec_file(tmp_path)
    _deploy(emulator, spec, days=3)  # within the 7-day horizon: a rotation is due
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with KubernetesApplier.from_kubeconfig(str(emulator.kubeconfig_path)) as kube:
        kube.apply(
            [
                {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": lease_name(spec), "namespace": spec.namespace},
                    "spec": {
                        "holderIdentity": "rotator-cronjob-28712345-abcde",
                        "leaseDurationSeconds": 600,
                        "acquireTime": now,
                        "renewTime": now,
                    },
                }
            ]
        )
    code, out, _ = _run(
        capsys, "rotate", str(path), "--kubeconfig", str(emulator.kubeconfig_path), "-q"
    )
    assert code == 0
    assert ": yielded: another rotation of this gateway is running" in out
    assert "rotator-cronjob-28712345-abcde" in out


def test_rotator_refuses_a_client_id_that_is_not_a_guid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, path = _spec_file(tmp_path)
    out_file = tmp_path / "rotator.yaml"
    code, _, err = _run(
        capsys,
        "rotator",
        str(path),
        "--image",
        "x:1",
        "--client-id",
        "my-identity",
        "-o",
        str(out_file),
    )
    assert code == EXIT_BAD_INPUT
    assert "identity: the managed identity's client id, a GUID" in err
    assert not out_file.exists()


def test_rotator_refuses_an_empty_client_id_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, path = _spec_file(tmp_path)
    code, out, err = _run(capsys, "rotator", str(path), "--image", "x:1", "--client-id", " ")
    assert code == EXIT_BAD_INPUT
    assert err.startswith("error: --client-id: must be the client id")
    assert out == ""
