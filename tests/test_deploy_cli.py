"""``apim-selfhosted deploy / verify / status`` against the KubeEmulator (token from a file)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from apim_selfhosted import DeploymentSpec
from apim_selfhosted.cli import EXIT_BAD_INPUT, commands, main
from apim_selfhosted.testing.kube.emulator import KubeEmulator

SIGNATURE = "Y2xpLXRlc3Qtc2lnbmF0dXJl"


@pytest.fixture(scope="module")
def emulator() -> Iterator[KubeEmulator]:
    with KubeEmulator(ready_delay=0.02) as emu:
        yield emu


_n = iter(range(1, 1000))


def _files(tmp_path: Path) -> tuple[Path, Path, datetime]:
    n = next(_n)
    spec = DeploymentSpec.model_validate(
        {
            "gateway": {
                "subscription_id": "00000000-0000-0000-0000-000000000001",
                "resource_group": "rg",
                "service_name": "contoso",
                "name": f"cli{n}",
            },
            "namespace": f"cli-{n}",
            "create_namespace": True,
            "replicas": 2,
            "image": {"tag": "2.11.1"},
        }
    )
    spec_path = tmp_path / "gateway.yaml"
    spec.to_file(spec_path)
    expires = (datetime.now(UTC) + timedelta(days=20)).replace(second=0, microsecond=0)
    token_path = tmp_path / "token.txt"
    token_path.write_text(f"GatewayKey cli{n}&{expires:%Y%m%d%H%M}&{SIGNATURE}\n")
    return spec_path, token_path, expires


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert SIGNATURE not in out + err
    return code, out, err


def test_deploy_status_verify(
    emulator: KubeEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, token, expires = _files(tmp_path)
    kc = ["--kubeconfig", str(emulator.kubeconfig_path)]
    code, out, err = _run(
        capsys, "deploy", str(spec), *kc, "--token-file", str(token), "--allow-lint-errors"
    )
    assert code == 0, out + err
    assert ": ok (changed)" in out
    assert "[rollout]" in err  # progress on stderr
    assert "[apply]" in err

    code, out, _ = _run(
        capsys, "deploy", str(spec), *kc, "--token-file", str(token), "--allow-lint-errors"
    )
    assert code == 0
    assert ": ok (no change)" in out

    code, out, _ = _run(capsys, "status", str(spec), *kc)
    assert code == 0
    assert "2/2 ready" in out
    assert "gateway:2.11.1" in out
    assert f"expires {expires:%Y-%m-%d %H:%M} UTC" in out

    code, out, _ = _run(capsys, "verify", str(spec), *kc)
    assert code == 0, out
    assert "✔ token" in out

    soon = (expires - timedelta(days=2)).isoformat()
    code, out, _ = _run(capsys, "verify", str(spec), *kc, "--at", soon)
    assert code == 2, out
    assert "! token" in out

    late = (expires + timedelta(hours=1)).isoformat()
    code, out, _ = _run(capsys, "verify", str(spec), *kc, "--at", late, "--format", "json")
    assert code == 1
    assert '"status": "failed"' in out


def test_force_takes_over_fields_another_manager_owns(
    emulator: KubeEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kubernetes.dynamic import DynamicClient

    spec_path, token, _ = _files(tmp_path)
    spec = DeploymentSpec.from_file(spec_path)
    deploy = ["deploy", str(spec_path), "--kubeconfig", str(emulator.kubeconfig_path)]
    deploy += ["--token-file", str(token), "--allow-lint-errors"]
    assert _run(capsys, *deploy)[0] == 0
    deployments = DynamicClient(emulator.api_client()).resources.get(
        api_version="apps/v1", kind="Deployment"
    )
    deployments.server_side_apply(
        body={
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": spec.base_name},
            "spec": {"replicas": 3},
        },
        name=spec.base_name,
        namespace=spec.namespace,
        field_manager="helm",
        force_conflicts=True,
    )
    code, out, err = _run(capsys, *deploy)
    assert code != 0
    assert "helm" in out + err
    code, out, err = _run(capsys, *deploy, "--force")
    assert code == 0, out + err
    live = deployments.get(name=spec.base_name, namespace=spec.namespace)
    assert live.spec.replicas == 2


def test_dry_run_with_diff_prints_the_plan(
    emulator: KubeEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, token, _ = _files(tmp_path)
    code, out, _ = _run(
        capsys,
        "deploy",
        str(spec),
        "--kubeconfig",
        str(emulator.kubeconfig_path),
        "--token-file",
        str(token),
        "--allow-lint-errors",
        "--dry-run",
        "--diff",
    )
    assert code == 0, out
    assert "+ Deployment" in out
    assert "to create" in out
    assert "(dry run)" in out
    code, out, _ = _run(capsys, "status", str(spec), "--kubeconfig", str(emulator.kubeconfig_path))
    assert code == 1
    assert "not deployed" in out


def test_lint_errors_and_unusable_kubeconfig_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, token, _ = _files(tmp_path)
    code, _, err = _run(
        capsys,
        "deploy",
        str(spec),
        "--kubeconfig",
        str(tmp_path / "missing"),
        "--token-file",
        str(token),
    )
    assert code == 3
    assert err.count("\n") == 1
    assert "kubeconfig" in err
    code, _, err = _run(capsys, "verify", str(spec), "--kubeconfig", str(tmp_path / "x"))
    assert code == 3


def test_lint_errors_refuse_the_deploy(
    emulator: KubeEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, token, _ = _files(tmp_path)
    kc = ["--kubeconfig", str(emulator.kubeconfig_path)]
    code, _, err = _run(capsys, "deploy", str(spec), *kc, "--token-file", str(token))
    assert code == EXIT_BAD_INPUT == 64
    assert "lint error" in err
    assert "--allow-lint-errors" in err


@pytest.mark.parametrize("name", sorted(commands()))
def test_usage_errors_exit_64_not_2_for_every_command(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # 2 means "verify: warnings only"; a mistyped command must be told apart from it.
    assert main([name, "--no-such-option"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "usage:" in err
    assert "error:" in err


def test_usage_errors_of_the_top_level_exit_64(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == EXIT_BAD_INPUT
    assert main(["no-such-command"]) == EXIT_BAD_INPUT
    assert main(["--help"]) == 0
    assert "64   bad input or usage" in capsys.readouterr().out


def test_bad_input_exits_64_and_warnings_2(
    emulator: KubeEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kc = ["--kubeconfig", str(emulator.kubeconfig_path)]
    code, _, err = _run(capsys, "verify", str(tmp_path / "missing.yaml"), *kc)
    assert code == EXIT_BAD_INPUT
    assert "missing.yaml" in err
    spec, _, _ = _files(tmp_path)
    code, _, err = _run(capsys, "verify", str(spec), *kc, "--at", "not-a-time")
    assert code == EXIT_BAD_INPUT
    assert "--at" in err
    code, out, _ = _run(capsys, "verify", "--help")
    assert code == 0
    assert "2    verify: warnings only" in out


@pytest.mark.parametrize(
    ("cloud", "authority"),
    [
        ("public", "login.microsoftonline.com"),
        ("china", "login.chinacloudapi.cn"),
        ("usgov", "login.microsoftonline.us"),
    ],
)
def test_azure_sign_in_goes_to_the_spec_cloud(
    cloud: str, authority: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.identity import DefaultAzureCredential

    from apim_selfhosted.cli_ops import _credential_options

    spec = DeploymentSpec.model_validate(
        {
            "gateway": {
                "subscription_id": "00000000-0000-0000-0000-000000000001",
                "resource_group": "rg",
                "service_name": "contoso",
                "name": "gw",
                "cloud": cloud,
            },
            "namespace": "apim",
        }
    )
    monkeypatch.delenv("AZURE_AUTHORITY_HOST", raising=False)
    options = _credential_options(spec)
    assert options == {"authority": authority}
    DefaultAzureCredential(**options).close()  # accepted as is (no sign-in happens here)
    # The environment's authority (workload identity, the demo's stand-in) is left to win.
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "https://127.0.0.1:1")
    assert _credential_options(spec) == {}
