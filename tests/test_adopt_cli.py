"""``apim-selfhosted import`` and ``helm-values``: the shell face of adoption."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from apim_selfhosted.cli import main
from apim_selfhosted.models import DeploymentSpec
from apim_selfhosted.testing.kube.emulator import KubeEmulator

FIXTURES = Path(__file__).resolve().parent / "fixtures"
IDS = ["--subscription-id", "sub-1", "--resource-group", "rg-1"]


def test_import_helm_values_writes_a_spec_and_reports_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "spec.yaml"
    code = main(
        [
            "import",
            "--helm-values",
            str(FIXTURES / "helm" / "production.values.yaml"),
            "--release",
            "gw-prod",
            "--namespace",
            "apim-prod",
            *IDS,
            "-o",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    spec = DeploymentSpec.from_file(out)
    assert spec.replicas == 4
    assert spec.gateway.name == "gw-prod"
    assert "import of helm values" in captured.err
    assert "cHJvZC1zaWduYXR1cmU" not in captured.err + captured.out + out.read_text()


def test_import_manifests_with_placeholders_exits_1_and_says_why(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        [
            "import",
            "--manifests",
            str(FIXTURES / "adopt" / "portal-v2.yaml"),
            "--report-format",
            "json",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    spec = yaml.safe_load(captured.out)
    assert spec["gateway"]["subscription_id"] == "replace-me"
    report = json.loads(captured.err)
    assert report["ok"] is False
    assert report["token_found"] is True
    assert {i["path"] for i in report["issues"] if i["severity"] == "error"} == {
        "gateway.subscription_id",
        "gateway.resource_group",
    }
    assert "d2VzdC1zaWduYXR1cmU" not in captured.err + captured.out


@pytest.mark.parametrize(
    "args",
    [
        ["import", "--helm-values", "x.yaml"],
        ["import", "--from-cluster", "just-a-name"],
        ["import", "--manifests", "/nonexistent/file.yaml"],
        ["import"],
    ],
)
def test_bad_input_exits_64(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 64  # EX_USAGE, as every subcommand
    assert capsys.readouterr().err


@pytest.fixture(scope="module")
def emulator() -> Iterator[KubeEmulator]:
    with KubeEmulator(ready_delay=0.02) as kube:
        yield kube


def test_import_from_cluster(
    emulator: KubeEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from apim_selfhosted import KubernetesApplier

    docs = list(yaml.safe_load_all((FIXTURES / "adopt" / "portal-v2.yaml").read_text()))
    with KubernetesApplier.from_kubeconfig(str(emulator.kubeconfig_path)) as kube:
        kube.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "edge"}}])
        for doc in docs:
            doc["metadata"]["namespace"] = "edge"
        kube.apply(docs, field_manager="portal-user")
    out = tmp_path / "adopted.yaml"
    code = main(
        [
            "import",
            "--from-cluster",
            "edge/edge-west",
            "--kubeconfig",
            str(emulator.kubeconfig_path),
            *IDS,
            "-o",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert DeploymentSpec.from_file(out).gateway.name == "edge-west"
    assert "takeover by the next deploy" in captured.err
    assert "Deployment edge-west -> edge-west: taken-over" in captured.err
    assert "pods restart: no" in captured.err
    assert "portal-user" in captured.err


def test_helm_values_of_a_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(
        "gateway: {subscription_id: s1, resource_group: rg, service_name: contoso, name: gw1}\n"
        "namespace: apim\nreplicas: 2\n"
    )
    out = tmp_path / "values.yaml"
    assert main(["helm-values", str(spec_file), "-o", str(out)]) == 0
    values = yaml.safe_load(out.read_text())
    assert values["replicaCount"] == 2
    assert (
        values["gateway"]["configuration"]["uri"] == "https://contoso.configuration.azure-api.net"
    )
    assert "gateway.auth.key" in capsys.readouterr().err
