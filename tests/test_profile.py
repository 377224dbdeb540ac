"""ProductionProfile and lint(): findings, thresholds, apply() never overriding the user."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from apim_selfhosted import DeploymentSpec, Finding, SpecError, Token
from apim_selfhosted.profile import RULES, ProductionProfile, lint

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
GW = {
    "subscription_id": "00000000-0000-0000-0000-000000000000",
    "resource_group": "rg1",
    "service_name": "contoso",
    "name": "gw1",
}
CLEAN: dict[str, Any] = {
    "gateway": GW,
    "namespace": "apim",
    "replicas": 3,
    "strategy": {"max_unavailable": 0, "max_surge": "25%"},
    "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
    "probes": {"liveness": {}},
    "config_backup": {"enabled": True},
    "observability": {
        "std_logs": {"format": "json", "color": False},
        "statsd": {"enabled": True, "endpoint": "udp://statsd:8125"},
    },
    "high_availability": {"enabled": True},
}


def spec(**kw: Any) -> DeploymentSpec:
    return DeploymentSpec.from_dict({**CLEAN, **kw})


def rules(findings: list[Finding], severity: str | None = None) -> set[str]:
    return {f.rule for f in findings if severity is None or f.severity == severity}


def test_production_example_lints_clean() -> None:
    assert lint(DeploymentSpec.from_file(EXAMPLES / "production.yaml")) == []


def test_clean_spec_is_clean() -> None:
    assert lint(spec()) == []


def test_portal_equivalent_example_explains_what_is_missing() -> None:
    findings = lint(DeploymentSpec.from_file(EXAMPLES / "portal-equivalent.yaml"))
    assert rules(findings, "error") == {
        "pinned-image-tag",
        "min-replicas",
        "resource-requests",
        "security-context",
    }
    assert {"config-backup", "high-availability", "local-metrics", "explicit-strategy"} <= rules(
        findings, "warning"
    )
    assert [f.severity for f in findings] == sorted(
        (f.severity for f in findings), key=["error", "warning", "info"].index
    )
    for f in findings:
        assert f.rule in RULES
        assert f.why == RULES[f.rule][1]
        assert f.message
        assert f.fix
        assert f.path


@pytest.mark.parametrize(
    ("change", "rule", "path"),
    [
        ({"replicas": 1}, "min-replicas", "replicas"),
        ({"replicas": None}, "min-replicas", "replicas"),
        ({"resources": None}, "resource-requests", "resources.requests"),
        (
            {"resources": {"requests": {"cpu": "1"}, "limits": {"memory": "1Gi"}}},
            "resource-requests",
            "resources.requests",
        ),
        ({"image": {"tag": "latest"}}, "pinned-image-tag", "image.tag"),
        ({"image": {"tag": "2.9.0-preview"}}, "pinned-image-tag", "image.tag"),
        ({"image": {"tag": "2.8.4"}}, "supported-version", "image.tag"),
        ({"image": {"tag": "1.99.0"}}, "supported-version", "image.tag"),
        ({"namespace": "default"}, "default-namespace", "namespace"),
        (
            {"config_backup": {"enabled": True, "access_mode": "ReadWriteOnce"}},
            "backup-access-mode",
            "config_backup.access_mode",
        ),
        ({"security_context": None}, "security-context", "security_context"),
        (
            {"security_context": {"run_as_non_root": False, "run_as_user": 0}},
            "security-context",
            "security_context",
        ),
        ({"security_context": {"fs_group": None}}, "security-context", "security_context"),
        (
            {
                "autoscaling": {"min_replicas": 3, "max_replicas": 6},
                "resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "1Gi"}},
            },
            "autoscaler-requests",
            "resources.requests",
        ),
        (
            {"autoscaling": {"min_replicas": 1, "max_replicas": 6}, "replicas": None},
            "autoscaler-min-replicas",
            "autoscaling.min_replicas",
        ),
    ],
)
def test_errors(change: dict[str, Any], rule: str, path: str) -> None:
    findings = lint(spec(**change))
    hits = [f for f in findings if f.rule == rule]
    assert hits, rules(findings)
    assert hits[0].severity == "error"
    assert hits[0].path == path


@pytest.mark.parametrize(
    ("change", "rule", "severity"),
    [
        ({"config_backup": {"enabled": False}}, "config-backup", "warning"),
        ({"strategy": {"max_unavailable": 1, "max_surge": 1}}, "max-unavailable", "warning"),
        ({"strategy": {"type": "Recreate"}}, "max-unavailable", "warning"),
        (
            {"observability": {"std_logs": {"format": "json", "color": False}}},
            "local-metrics",
            "warning",
        ),
        ({"high_availability": {"enabled": False}}, "high-availability", "warning"),
        ({"termination_grace_period_seconds": 5}, "termination-grace", "warning"),
        (
            {"autoscaling": {"min_replicas": 3, "max_replicas": 6}},
            "autoscaler-and-replicas",
            "warning",
        ),
        ({"probes": {}}, "liveness-probe", "info"),
        (
            {"observability": {"statsd": {"enabled": True, "endpoint": "udp://s:1"}}},
            "log-format",
            "info",
        ),
        ({"service": {"external_traffic_policy": "Cluster"}}, "external-traffic-policy", "info"),
        (
            {"auth": {"kind": "existing-secret", "secret_name": "gw1-token"}},
            "token-rotation",
            "info",
        ),
        (
            {
                "auth": {"kind": "workload-identity", "client_id": "c"},
                "service_account": {"create": False, "name": "sa"},
            },
            "workload-identity-service-account",
            "warning",
        ),
    ],
)
def test_warnings_and_infos(change: dict[str, Any], rule: str, severity: str) -> None:
    findings = lint(spec(**change))
    assert rule in rules(findings, severity), [str(f) for f in findings]
    assert not rules(findings, "error")


def test_explicit_strategy_is_required_only_when_asked() -> None:
    data = {k: v for k, v in CLEAN.items() if k != "strategy"}
    s = DeploymentSpec.from_dict(data)
    assert rules(lint(s)) == {"explicit-strategy"}
    assert lint(s, ProductionProfile(require_explicit_strategy=False)) == []


def test_profile_can_be_relaxed_and_tightened() -> None:
    s = spec(replicas=1, config_backup={"enabled": False})
    assert {"min-replicas", "config-backup"} <= rules(lint(s))
    relaxed = ProductionProfile(min_replicas=1, require_config_backup=False)
    assert lint(s, relaxed) == []
    tight = ProductionProfile(severity_overrides={"config-backup": "error"})
    assert "config-backup" in rules(lint(s, tight), "error")
    assert "config-backup" not in rules(
        lint(s, ProductionProfile(ignore=frozenset({"config-backup"})))
    )
    newer = ProductionProfile(latest_version="3.2.0")
    assert "supported-version" in rules(lint(spec(), newer), "error")
    assert ProductionProfile().supported_versions() == "2.9.x to 2.11.x"


def test_profile_refuses_bad_settings() -> None:
    with pytest.raises(ValidationError, match="unknown rules"):
        ProductionProfile(ignore=frozenset({"no-such-rule"}))
    with pytest.raises(ValidationError, match=r"major\.minor\.patch"):
        ProductionProfile(latest_version="v2")
    with pytest.raises(ValidationError, match="30 days"):
        ProductionProfile(min_token_validity=timedelta(days=31))
    with pytest.raises(ValidationError):
        ProductionProfile(min_replicas=0)
    assert ProductionProfile().min_token_validity == timedelta(days=7)


def test_token_validity() -> None:
    token = Token.parse("gw1&202611270418&c2ln")
    now = datetime(2026, 11, 25, tzinfo=UTC)
    findings = lint(spec(), token=token, now=now)
    (f,) = findings
    assert f.rule == "token-validity"
    assert f.severity == "error"
    assert token.fingerprint in f.message
    assert "c2ln" not in str(f)
    assert lint(spec(), token=token, now=datetime(2026, 11, 1, tzinfo=UTC)) == []
    expired = lint(spec(), token=token, now=datetime(2026, 12, 1, tzinfo=UTC))
    assert "has expired" in expired[0].message
    assert lint(spec(), token=token) == []  # no clock, no check


# --- apply ---------------------------------------------------------------------------------


def test_apply_fills_defaults_and_makes_the_minimal_spec_clean() -> None:
    minimal = DeploymentSpec.from_dict({"gateway": GW, "namespace": "apim"})
    applied = ProductionProfile().apply(minimal)
    assert applied.replicas == 2
    assert applied.resources is not None
    assert applied.resources.requests == {"cpu": "2", "memory": "2Gi"}
    assert applied.resources.limits == {"memory": "4Gi"}
    assert applied.config_backup.enabled is True
    assert applied.high_availability.enabled is True
    assert applied.probes.liveness is not None
    assert applied.probes.readiness is not None
    assert applied.observability.std_logs.format == "json"
    assert rules(lint(applied)) == {"local-metrics"}  # needs an endpoint only the user knows
    assert "strategy" in applied.model_fields_set
    assert applied.to_dict()["replicas"] == 2
    assert ProductionProfile().apply(applied) == applied


def test_apply_never_overrides_what_the_user_set() -> None:
    user = DeploymentSpec.from_dict(
        {
            "gateway": GW,
            "namespace": "apim",
            "replicas": 5,
            "resources": {"requests": {"cpu": "250m"}},
            "config_backup": {"enabled": False},
            "observability": {"std_logs": {"level": "warn"}},
            "security_context": None,
            "probes": {"liveness": None},
            "strategy": {"max_surge": 2},
            "image": {"tag": "v2"},
        }
    )
    applied = ProductionProfile().apply(user)
    assert applied.replicas == 5
    assert applied.resources is not None
    assert applied.resources.requests == {"cpu": "250m"}
    assert applied.config_backup.enabled is False
    assert applied.observability.std_logs.level == "warn"
    assert applied.observability.std_logs.format == "json"  # unset sibling is filled
    assert applied.security_context is None
    assert applied.probes.liveness is None
    assert applied.probes.startup is not None
    assert applied.strategy.max_surge == 2
    assert applied.strategy.max_unavailable == 0
    assert applied.image.tag == "v2"
    assert user.replicas == 5  # the input is unchanged (frozen)


def test_apply_leaves_replicas_to_an_autoscaler() -> None:
    s = DeploymentSpec.from_dict(
        {"gateway": GW, "namespace": "apim", "autoscaling": {"min_replicas": 3, "max_replicas": 9}}
    )
    applied = ProductionProfile().apply(s)
    assert "replicas" not in applied.model_fields_set
    assert "autoscaler-and-replicas" not in rules(lint(applied))


def test_finding_renders_in_terminal_and_notebook() -> None:
    f = lint(spec(replicas=1))[0]
    text = str(f)
    assert text.startswith("error   min-replicas  replicas: 1 replica(s)")
    assert "why: " in text
    assert "fix: " in text
    md = f._repr_markdown_()
    assert "**error**" in md
    assert "`min-replicas`" in md
    with pytest.raises(ValidationError):
        Finding(rule="x", severity="fatal", path="p", message="m", why="w", fix="f")


def test_profile_from_file(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text('{"min_replicas": 2, "min_token_validity": 864000, "ignore": ["local-logs"]}')
    p = ProductionProfile.from_file(path)
    assert p.min_replicas == 2
    assert p.min_token_validity == timedelta(days=10)
    assert p.ignore == frozenset({"local-logs"})
    with pytest.raises(SpecError, match="cannot read"):
        ProductionProfile.from_file(tmp_path / "missing.yaml")
    path.write_text("min_token_validity: [")
    with pytest.raises(SpecError, match="not valid YAML"):
        ProductionProfile.from_file(path)


def test_the_rule_table_is_read_only() -> None:
    # A caller's edit must not change what every later lint() reports in the process.
    table: Any = RULES
    with pytest.raises(TypeError):
        table["min-replicas"] = ("info", "changed")


def test_a_bad_profile_file_names_the_field_as_a_bad_spec_file_does(tmp_path: Path) -> None:
    typo = tmp_path / "typo.yaml"
    typo.write_text("min_replica: 2\n")
    with pytest.raises(SpecError) as info:
        ProductionProfile.from_file(typo)
    assert info.value.problems == (
        (
            "min_replica",
            "unknown field (not allowed); check the spelling against the fields "
            "of ProductionProfile",
        ),
    )
    listed = tmp_path / "list.yaml"
    listed.write_text("- min_replicas: 2\n")
    with pytest.raises(SpecError, match="must be a mapping, got list"):
        ProductionProfile.from_file(listed)
    as_json = tmp_path / "profile.json"
    as_json.write_text('{"min_replicas": 2}')
    assert ProductionProfile.from_file(as_json).min_replicas == 2
