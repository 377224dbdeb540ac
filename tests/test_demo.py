"""The demo: runs the whole flow against the stand-ins, says what it did, never prints a secret.

One run in process (keep-running, so the test can read the stand-ins' state: the tokens in the
cluster's Secrets, the gateway keys in API Management, the principal's client secret) and one
run of the installed ``apim-selfhosted`` command in a subprocess, poked at with kubectl and
stopped with Ctrl-C (SIGINT) as a user would.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from apim_selfhosted import ManagementClient, SpecError
from apim_selfhosted.cli import EXIT_BAD_INPUT, main
from apim_selfhosted.demo import DemoResult, StandIns, run_demo

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
KUBECTL = str(BIN / "kubectl")

KEY_LINES = (
    "[1/13] Start the stand-ins",
    "created: gateway contoso-apim/edge-gw-westeurope",
    "0 error(s), 0 warning(s), 0 info(s)",
    "+ Deployment apim-gateway/edge-gw",
    "deploy contoso-apim/edge-gw-westeurope to apim-gateway/edge-gw: ok (changed)",
    "verify contoso-apim/edge-gw-westeurope (apim-gateway/edge-gw): warning",
    "within the rotation horizon",
    "rotate contoso-apim/edge-gw-westeurope (apim-gateway/edge-gw): rotated",
    "during the rotation: never fewer than 3 of 3",
    "serving pods while it failed: never fewer than 3 of 3",
    "refused before anything was written",
    "min-replicas",
    "FAILED",
    "rolled back to the previous pod template",
    "after the rollback the Deployment runs mcr.microsoft.com/azure-api-management/gateway:2.11.1",
    "every step ended as expected",
)


def _secret_values(data: dict[str, Any]) -> set[str]:
    """Every token found in the Secrets (decoded), with and without the GatewayKey prefix."""
    values: set[str] = set()
    for secret in data["items"]:
        for encoded in (secret.get("data") or {}).values():
            text = base64.b64decode(encoded).decode().strip()
            if "&" in text:
                bare = text.removeprefix("GatewayKey ").strip()
                values.update({text, bare, bare.rsplit("&", 1)[-1]})
    return values


def _kubectl(kubeconfig: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KUBECTL, "--kubeconfig", kubeconfig, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class _Inspector:
    """The ``wait`` of a kept-running demo: collects what must never be printed."""

    def __init__(self) -> None:
        self.secrets: set[str] = set()
        self.token_status: dict[str, str] = {}
        self.env_mode: int | None = None
        self.env_keys: set[str] = set()

    def __call__(self, stand_ins: StandIns) -> None:
        apim, emulator, spec = stand_ins.apim, stand_ins.emulator, stand_ins.spec
        listed = _kubectl(
            str(emulator.kubeconfig_path), "get", "secrets", "-n", spec.namespace, "-o", "json"
        )
        assert listed.returncode == 0, listed.stderr
        tokens = _secret_values(json.loads(listed.stdout))
        for token in tokens:
            if token.count("&") == 2:
                self.token_status[token] = apim.validate_token(token).status
        self.secrets |= tokens
        with ManagementClient(
            apim.credential(), base_url=apim.url, connection_verify=str(apim.ca_path)
        ) as management:
            keys = management.list_keys(spec.gateway)
        self.secrets |= {
            keys.primary.get_secret_value(),
            keys.secondary.get_secret_value(),
            apim.principal.client_secret.get_secret_value(),
            emulator.admin_token.get_secret_value(),
        }
        self.env_mode = stand_ins.env_file.stat().st_mode & 0o777
        self.env_keys = set(re.findall(r"export (\w+)=", stand_ins.env_file.read_text()))


@pytest.fixture(scope="module")
def demo_run() -> tuple[DemoResult, str, _Inspector]:
    out = io.StringIO()
    inspector = _Inspector()
    result = run_demo(keep_running=True, out=out, wait=inspector)
    return result, out.getvalue(), inspector


def test_every_step_ends_as_expected(demo_run: tuple[DemoResult, str, _Inspector]) -> None:
    result, output, _ = demo_run
    assert result.ok, output
    assert result.exit_code == 0
    titles = [step.title for step in result.steps]
    assert titles == [
        "start FakeApim and KubeEmulator",
        "create the gateway in API Management",
        "lint against the production profile",
        "show the plan (dry run + diff)",
        "deploy",
        "verify the deployment",
        "fast-forward the clock",
        "verify again",
        "rotate the token (zero downtime)",
        "verify after the rotation",
        "deploy refuses a spec with lint errors",
        "deploy a never-ready image, roll back",
        "re-deploy the last good spec",
    ]
    outcomes = {step.title: step.outcome for step in result.steps}
    assert outcomes["verify the deployment"].startswith("ok")
    assert outcomes["verify again"].startswith("warning")
    assert "token" in outcomes["verify again"]
    assert outcomes["rotate the token (zero downtime)"].startswith("rotated")
    assert outcomes["deploy a never-ready image, roll back"].endswith("rolled back")
    assert outcomes["re-deploy the last good spec"] == "verify ok"


def test_output_shows_the_flow_and_a_summary(
    demo_run: tuple[DemoResult, str, _Inspector],
) -> None:
    _, output, _ = demo_run
    for line in KEY_LINES:
        assert line in output, line
    summary = output[output.index("Summary") :]
    assert summary.count("\n  ok    ") == 13
    assert "wall time" in summary
    # The order of the story.
    positions = [
        output.index(marker)
        for marker in (
            "[2/13]",
            "[4/13]",
            "[5/13]",
            "[8/13]",
            "[9/13]",
            "[12/13]",
            "[13/13]",
            "Summary",
        )
    ]
    assert positions == sorted(positions)


def test_no_token_key_or_secret_is_printed(
    demo_run: tuple[DemoResult, str, _Inspector],
) -> None:
    _, output, inspector = demo_run
    # Two tokens were issued (deploy, rotation); the one in use is still in the cluster's Secrets
    # (the first one's Secret is cleaned up by then), with and without the prefix.
    assert len(inspector.token_status) >= 2
    # No gateway token of any age appears, whether or not its Secret is still there.
    assert not re.search(r"edge-gw-westeurope&\d{12}&", output)
    assert "valid" in inspector.token_status.values()
    assert len(inspector.secrets) >= 7  # token (3 forms), 2 keys, principal, kube admin
    for secret in inspector.secrets:
        assert secret not in output
    assert "AZURE_CLIENT_SECRET=<in the file>" in output


def test_keep_running_prints_how_to_reach_the_stand_ins(
    demo_run: tuple[DemoResult, str, _Inspector],
) -> None:
    _, output, inspector = demo_run
    for text in ("kubeconfig:", "KUBECONFIG=", "AZURE_AUTHORITY_HOST=", "kubectl get", "Ctrl-C"):
        assert text in output
    assert inspector.env_mode == 0o600
    assert {"KUBECONFIG", "AZURE_CLIENT_SECRET", "APIM_ARM_ENDPOINT"} <= inspector.env_keys
    assert output.rstrip().endswith("stopping the stand-ins")


def test_a_bad_spec_is_refused_before_anything_starts(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("gateway: {name: gw1}\nnamespace: Apim\n")
    out = io.StringIO()
    with pytest.raises(SpecError, match=r"bad\.yaml"):
        run_demo(spec_path=bad, out=out)
    assert out.getvalue() == ""
    assert main(["demo", "--spec", str(tmp_path / "missing.yaml")]) == EXIT_BAD_INPUT


@pytest.mark.slow
def test_cli_entry_point_keep_running_kubectl_and_ctrl_c() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [str(BIN / "apim-selfhosted"), "demo", "--keep-running"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        output = "".join(lines)
        assert "every step ended as expected" in output, output
        kubeconfig = re.search(r"^kubeconfig:\s+(\S+)$", output, re.MULTILINE)
        assert kubeconfig is not None, output
        pods = _kubectl(kubeconfig[1], "get", "deployment", "edge-gw", "-n", "apim-gateway")
        assert pods.returncode == 0, pods.stderr
        assert re.search(r"edge-gw\s+3/3", pods.stdout), pods.stdout
        listed = _kubectl(kubeconfig[1], "get", "secrets", "-n", "apim-gateway", "-o", "json")
        tokens = _secret_values(json.loads(listed.stdout))
        assert tokens
        # The printed instructions work as printed: source the file, run the CLI and the script.
        shell = output[output.index("Or with the CLI and from a script") :]
        shell = shell[shell.index("\n") + 1 : shell.index("\nPress Ctrl-C")]
        commands = "\n".join(line.removeprefix("  ") for line in shell.splitlines())
        ran = subprocess.run(
            ["bash", "-euc", commands],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=ROOT,
            env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"},
        )
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert ran.stdout.count("verify contoso-apim/edge-gw-westeurope") == 2, ran.stdout
        assert "location 'demo-cluster'" in ran.stdout
        assert not any(token in ran.stdout + ran.stderr for token in tokens)
        process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output += rest
    assert process.returncode == 0, errors
    assert "stopping the stand-ins" in output
    for token in tokens:
        assert token not in output
        assert token not in errors


def test_a_spec_that_is_not_production_ready_fails_the_demo(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "--spec", str(ROOT / "examples" / "portal-equivalent.yaml")]) == 1
    out = capsys.readouterr().out
    assert "  FAIL  lint against the production profile     4 error(s)" in out
    assert "  FAIL  deploy                                  SpecError" in out
    assert "some steps did NOT end as expected" in out
    assert "Traceback" not in out


def test_the_demos_changed_specs_are_validated() -> None:
    # The demo's variants of the spec go through the same validation as a user's spec file.
    from apim_selfhosted.demo import _changed, _load_spec

    spec, _ = _load_spec(ROOT / "examples" / "production.yaml")
    assert spec.create_namespace
    assert _changed(spec, replicas=1).replicas == 1
    with pytest.raises(SpecError, match="replicas"):
        _changed(spec, replicas=-1)
