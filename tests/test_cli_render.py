"""The apim-selfhosted command: render, lint, schema, the interim demo and the registry."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from apim_selfhosted import DeploymentSpec, Token
from apim_selfhosted.cli import EXIT_BAD_INPUT, command, commands, main
from apim_selfhosted.rendering import token_secret_name

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = str(ROOT / "examples" / "production.yaml")
PORTAL = str(ROOT / "examples" / "portal-equivalent.yaml")
SIG = "c2VjcmV0LXNpZ25hdHVyZQ=="


def token_text(gateway: str = "edge-gw-westeurope", stamp: str = "209912310000") -> str:
    return f"GatewayKey {gateway}&{stamp}&{SIG}\n"


def fresh_token_text(gateway: str = "edge-gw-westeurope") -> str:
    from datetime import UTC, datetime, timedelta

    stamp = (datetime.now(UTC) + timedelta(days=20)).strftime("%Y%m%d%H%M")
    return token_text(gateway, stamp)


def test_render_without_token(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", PORTAL]) == 0
    out, err = capsys.readouterr()
    docs = list(yaml.safe_load_all(out))
    assert [d["kind"] for d in docs] == ["ConfigMap", "Deployment", "Service", "Service"]
    assert "edge-gw-token" in err


def test_render_with_token_redacts_unless_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token_file = tmp_path / "token.txt"
    token_file.write_text(fresh_token_text())
    assert main(["render", PRODUCTION, "--token-file", str(token_file)]) == 0
    out, err = capsys.readouterr()
    assert SIG not in out + err
    secret = next(d for d in yaml.safe_load_all(out) if d["kind"] == "Secret")
    assert secret["data"]["value"] == "<redacted>"
    assert "--reveal-secrets" in err
    spec = DeploymentSpec.from_file(PRODUCTION)
    token = Token.parse(token_file.read_text())
    assert secret["metadata"]["name"] == token_secret_name(spec, token)

    target = tmp_path / "out.yaml"
    args = ["render", PRODUCTION, "--token-file", str(token_file), "--reveal-secrets", "-o"]
    assert main([*args, str(target)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert SIG not in err
    secret = next(d for d in yaml.safe_load_all(target.read_text()) if d["kind"] == "Secret")
    assert secret["data"]["value"] != "<redacted>"


def test_render_warns_about_an_expired_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "old.txt"
    path.write_text(token_text(stamp="202001010000"))
    assert main(["render", PRODUCTION, "--token-file", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "warning: the token expired on 2020-01-01 00:00 UTC" in err
    assert SIG not in out + err
    path.write_text(fresh_token_text())
    assert main(["render", PRODUCTION, "--token-file", str(path)]) == 0
    assert "expired" not in capsys.readouterr().err


def test_render_refuses_bad_tokens_without_echo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = {
        "other.txt": fresh_token_text("someone-else"),
        "long.txt": token_text(),  # valid until 2099: more than 30 days
        "junk.txt": f"not a token {SIG}",
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        assert main(["render", PRODUCTION, "--token-file", str(path)]) == EXIT_BAD_INPUT
        out, err = capsys.readouterr()
        assert out == ""
        assert name in err
        assert SIG not in err
    assert (
        main(["render", PRODUCTION, "--token-file", str(tmp_path / "missing.txt")])
        == EXIT_BAD_INPUT
    )
    assert "cannot read" in capsys.readouterr().err


def test_bad_spec_is_bad_input_with_field_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(Path(PRODUCTION).read_text().replace("replicas: 3", "replicas: lots"))
    for cmd in ("render", "lint"):
        assert main([cmd, str(bad)]) == EXIT_BAD_INPUT
        err = capsys.readouterr().err
        assert str(bad) in err
        assert "replicas" in err


def test_lint_text_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", PRODUCTION]) == 0
    assert "0 error(s), 0 warning(s), 0 info(s)" in capsys.readouterr().out
    assert main(["lint", PORTAL]) == 1
    out = capsys.readouterr().out
    assert "pinned-image-tag" in out
    assert "why:" in out
    assert main(["lint", PORTAL, "--production-defaults"]) == 1  # the v2 tag stays the user's
    assert "pinned-image-tag" in capsys.readouterr().out


def test_lint_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", PORTAL, "--format", "json"]) == 1
    findings = json.loads(capsys.readouterr().out)
    assert {"rule", "severity", "path", "message", "why", "fix"} == set(findings[0])
    assert findings[0]["severity"] == "error"
    assert main(["lint", PRODUCTION, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_lint_checks_a_token_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import UTC, datetime, timedelta

    soon = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y%m%d%H%M")
    path = tmp_path / "t.txt"
    path.write_text(token_text(stamp=soon))
    assert main(["lint", PRODUCTION, "--token-file", str(path)]) == 1
    out = capsys.readouterr().out
    assert "token-validity" in out
    assert SIG not in out
    path.write_text(fresh_token_text())
    assert main(["lint", PRODUCTION, "--token-file", str(path)]) == 0


def test_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "DeploymentSpec"
    assert set(schema["required"]) == {"gateway", "namespace"}
    target = tmp_path / "schema.json"
    assert main(["schema", "-o", str(target)]) == 0
    assert json.loads(target.read_text()) == schema


def test_help_and_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("render", "lint", "schema", "demo"):
        assert name in out
    assert main([]) == EXIT_BAD_INPUT
    assert main(["render"]) == EXIT_BAD_INPUT
    assert main(["lint", PRODUCTION, "--format", "xml"]) == EXIT_BAD_INPUT


def test_registry_lets_other_modules_add_and_replace_commands(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from apim_selfhosted import cli

    before = cli._COMMANDS.copy()
    try:

        def configure(p: argparse.ArgumentParser) -> None:
            p.add_argument("--name", default="world")

        @command("greet", help="say hello", configure=configure)
        def greet(args: argparse.Namespace) -> int:
            print(f"hello {args.name}")
            return 0

        @command("demo", help="a replacement demo", configure=lambda p: None)
        def other_demo(args: argparse.Namespace) -> int:
            print("the full demo")
            return 0

        assert "greet" in commands()
        assert main(["greet", "--name", "apim"]) == 0
        assert capsys.readouterr().out == "hello apim\n"
        assert main(["demo"]) == 0
        assert capsys.readouterr().out == "the full demo\n"
    finally:
        cli._COMMANDS.clear()
        cli._COMMANDS.update(before)


def test_python_dash_m_and_console_script() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "apim_selfhosted", "lint", PRODUCTION],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert "0 error(s)" in proc.stdout
    script = Path(sys.executable).parent / "apim-selfhosted"
    if script.exists():
        proc = subprocess.run(
            [str(script), "--version"], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("apim-selfhosted ")


def test_render_reads_the_token_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO(fresh_token_text()))
    assert main(["render", PRODUCTION, "--token-file", "-"]) == 0
    out, err = capsys.readouterr()
    assert any(d["kind"] == "Secret" for d in yaml.safe_load_all(out))
    assert SIG not in out + err
    monkeypatch.setattr(sys, "stdin", io.StringIO("junk"))
    assert main(["render", PRODUCTION, "--token-file", "-"]) == EXIT_BAD_INPUT
    assert "<stdin>: malformed" in capsys.readouterr().err


def test_lint_with_a_profile_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    relaxed = tmp_path / "profile.yaml"
    relaxed.write_text(
        "min_replicas: 1\nrequire_pinned_tag: false\nrequire_resource_requests: false\n"
        "require_security_context: false\n"
    )
    assert main(["lint", PORTAL, "--profile", str(relaxed)]) == 0
    capsys.readouterr()
    assert main(["lint", PORTAL, "--profile", str(relaxed), "--min-replicas", "3"]) == 1
    assert "min-replicas" in capsys.readouterr().out
    assert (
        main(["lint", PORTAL, "--profile", str(relaxed), "--min-replicas", "0"]) == EXIT_BAD_INPUT
    )
    captured = capsys.readouterr()
    assert "--min-replicas: must be 1 or more" in captured.err
    assert captured.out == ""
    bad = tmp_path / "bad.yaml"
    bad.write_text("min_replicas: none\nignore: [no-such-rule]\n")
    assert main(["lint", PORTAL, "--profile", str(bad)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "bad.yaml: invalid production profile" in err
    assert "min_replicas" in err
    assert "no-such-rule" in err
