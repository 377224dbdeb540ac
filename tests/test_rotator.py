"""render_rotator: the in-cluster CronJob, its identity and least-privilege roles (pure)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from apim_selfhosted import DeploymentSpec, SpecError, render_rotator
from apim_selfhosted.models import WorkloadIdentityAuth
from apim_selfhosted.rendering import render
from apim_selfhosted.rotation import (
    AZURE_REGENERATE_KEY_ACTION,
    AZURE_ROTATOR_ACTIONS,
    azure_rotator_role,
    lease_name,
    parse_duration,
    rotator_rules,
)

SCHEMA_DIR = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
VERSIONS = sorted(
    {
        p.name.removeprefix("v").removesuffix("-local-strict")
        for p in SCHEMA_DIR.glob("v1.*-local-strict")
        if tuple(int(x) for x in p.name[1:].split("-")[0].split(".")[:2]) >= (1, 29)
    },
    key=lambda v: tuple(int(x) for x in v.split(".")),
)
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
IMAGE = "example.org/apim-selfhosted:0.1.0"


def _spec(**values: Any) -> DeploymentSpec:
    data: dict[str, Any] = {
        "gateway": {
            "subscription_id": "00000000-0000-0000-0000-000000000000",
            "resource_group": "rg1",
            "service_name": "contoso",
            "name": "gw1",
        },
        "namespace": "apim",
    }
    data.update(values)
    return DeploymentSpec.model_validate(data)


def _by_kind(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["kind"]: m for m in manifests}


def test_schema_versions_found() -> None:
    assert VERSIONS[0].startswith("1.29.")
    assert len(VERSIONS) >= 5


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_validates_strictly(version: str) -> None:
    manifests = render_rotator(
        _spec(),
        image=IMAGE,
        identity=WorkloadIdentityAuth(client_id=CLIENT_ID, tenant_id="tenant-1"),
        regenerate_old_key=True,
        if_expiring_within=timedelta(days=7),
        image_pull_secrets=("acr-pull",),
    )
    for manifest in manifests:
        kubernetes_validate.validate(manifest, version, strict=True)


def test_cronjob_settings() -> None:
    cron = _by_kind(render_rotator(_spec(), image=IMAGE, identity=CLIENT_ID))["CronJob"]
    spec = cron["spec"]
    assert spec["schedule"] == "0 3 * * *"
    assert spec["timeZone"] == "Etc/UTC"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] == 600
    assert spec["successfulJobsHistoryLimit"] == 3
    assert spec["failedJobsHistoryLimit"] == 3
    job = spec["jobTemplate"]["spec"]
    assert job["activeDeadlineSeconds"] == 1800
    assert job["backoffLimit"] == 1
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["serviceAccountName"] == "gw1-rotator"
    container = pod["containers"][0]
    assert container["image"] == IMAGE
    assert container["command"] == ["apim-selfhosted"]
    assert container["args"][:3] == ["rotate", "/etc/apim-selfhosted/spec.yaml", "--in-cluster"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["volumes"] == [{"name": "spec", "configMap": {"name": "gw1-rotator-spec"}}]


def test_options_reach_the_command_line() -> None:
    cron = _by_kind(
        render_rotator(
            _spec(),
            image=IMAGE,
            identity=CLIENT_ID,
            schedule="17 * * * *",
            if_expiring_within=timedelta(days=10),
            regenerate_old_key=True,
            keep_history=4,
        )
    )["CronJob"]
    args = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[3:] == [
        "--if-expiring-within",
        "10d",
        "--regenerate-old-key",
        "--keep-history",
        "4",
    ]
    assert cron["spec"]["schedule"] == "17 * * * *"


def test_workload_identity() -> None:
    manifests = _by_kind(
        render_rotator(
            _spec(),
            image=IMAGE,
            identity=WorkloadIdentityAuth(client_id=CLIENT_ID, tenant_id="tenant-1"),
        )
    )
    sa = manifests["ServiceAccount"]
    assert sa["metadata"]["annotations"] == {
        "azure.workload.identity/client-id": CLIENT_ID,
        "azure.workload.identity/tenant-id": "tenant-1",
    }
    pod_labels = manifests["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["metadata"][
        "labels"
    ]
    assert pod_labels["azure.workload.identity/use"] == "true"


def test_role_is_namespaced_and_least_privilege() -> None:
    spec = _spec()
    manifests = _by_kind(render_rotator(spec, image=IMAGE, identity=CLIENT_ID))
    role, binding = manifests["Role"], manifests["RoleBinding"]
    assert role["metadata"]["namespace"] == "apim"
    assert role["rules"] == rotator_rules(spec)
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert granted == {
        ("apps", "deployments", "get"),
        ("apps", "deployments", "patch"),
        ("apps", "deployments", "watch"),
        ("apps", "replicasets", "get"),
        ("apps", "replicasets", "list"),
        ("", "pods", "list"),
        ("", "pods", "watch"),
        ("", "pods/log", "get"),
        ("", "secrets", "get"),
        ("", "secrets", "list"),
        ("", "secrets", "create"),
        ("", "secrets", "patch"),
        ("", "secrets", "delete"),
        ("coordination.k8s.io", "leases", "create"),
        ("coordination.k8s.io", "leases", "get"),
        ("coordination.k8s.io", "leases", "update"),
    }
    named = {
        rule["resources"][0]: rule["resourceNames"]
        for rule in role["rules"]
        if "resourceNames" in rule
    }
    assert named == {"deployments": ["gw1"], "leases": [lease_name(spec)]}
    watch = [r for r in role["rules"] if "watch" in r["verbs"] and "deployments" in r["resources"]]
    assert [r.get("resourceNames") for r in watch] == [["gw1"]]
    assert not any("*" in v for rule in role["rules"] for v in rule["verbs"] + rule["resources"])
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "gw1-rotator",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "gw1-rotator", "namespace": "apim"}
    ]


def test_labels_mark_the_rotator_component_so_the_pruner_skips_it() -> None:
    spec = _spec()
    manifests = render_rotator(spec, image=IMAGE, identity=CLIENT_ID)
    for manifest in manifests:
        labels = manifest["metadata"]["labels"]
        assert labels["app.kubernetes.io/component"] == "rotator"
        assert labels["app.kubernetes.io/managed-by"] == "apim-selfhosted"
        assert labels["apim-selfhosted.io/gateway"] == "gw1"
    gateway_components = {
        m["metadata"]["labels"].get("app.kubernetes.io/component") for m in render(spec)
    }
    assert "rotator" not in gateway_components
    names = {(m["kind"], m["metadata"]["name"]) for m in render(spec)}
    assert not names & {(m["kind"], m["metadata"]["name"]) for m in manifests}


def test_spec_travels_in_the_config_map_and_round_trips() -> None:
    spec = _spec(replicas=3)
    config_map = _by_kind(render_rotator(spec, image=IMAGE, identity=CLIENT_ID))["ConfigMap"]
    loaded = DeploymentSpec.from_dict(yaml.safe_load(config_map["data"]["spec.yaml"]))
    assert loaded == spec


def test_deterministic() -> None:
    first = render_rotator(_spec(), image=IMAGE, identity=CLIENT_ID)
    second = render_rotator(_spec(), image=IMAGE, identity=CLIENT_ID)
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"image": ""}, "image"),
        ({"image": "has space:1"}, "image"),
        ({"identity": ""}, "identity"),
        ({"identity": "my-identity"}, "identity"),
        ({"identity": WorkloadIdentityAuth(client_id="not-a-guid")}, "identity"),
        ({"schedule": "every day"}, "schedule"),
        ({"schedule": "0 3 * *"}, "schedule"),
        ({"schedule": "@sometimes"}, "schedule"),
        ({"schedule": "CRON_TZ=Europe/Berlin 0 3 * * *"}, "schedule"),
        ({"time_zone": "Nowhere/Atlantis"}, "time_zone"),
        ({"time_zone": "Local"}, "time_zone"),
        ({"time_zone": ""}, "time_zone"),
        ({"keep_history": -1}, "keep_history"),
        ({"backoff_limit": -2}, "backoff_limit"),
        ({"starting_deadline_seconds": 1}, "starting_deadline_seconds"),
        ({"active_deadline_seconds": 5}, "active_deadline_seconds"),
        ({"image_pull_secrets": ("Bad_Name",)}, "image_pull_secrets"),
    ],
)
def test_bad_input_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    options: dict[str, Any] = {"image": IMAGE, "identity": CLIENT_ID}
    options.update(kwargs)
    with pytest.raises(SpecError) as info:
        render_rotator(_spec(), **options)
    assert field in [p for p, _ in info.value.problems], info.value.problems
    assert field in str(info.value)


def test_a_tz_prefix_in_the_schedule_points_to_time_zone() -> None:
    # kube-apiserver refuses TZ=/CRON_TZ= in spec.schedule and asks for spec.timeZone instead.
    with pytest.raises(SpecError, match="time_zone="):
        render_rotator(_spec(), image=IMAGE, identity=CLIENT_ID, schedule="TZ=UTC 0 3 * * *")


def test_a_known_time_zone_is_rendered() -> None:
    cron = _by_kind(
        render_rotator(_spec(), image=IMAGE, identity=CLIENT_ID, time_zone="Europe/Berlin")
    )["CronJob"]
    assert cron["spec"]["timeZone"] == "Europe/Berlin"


def test_refuses_specs_without_library_managed_tokens() -> None:
    spec = _spec(auth={"kind": "workload-identity", "client_id": CLIENT_ID})
    with pytest.raises(SpecError, match=r"auth\.kind"):
        render_rotator(spec, image=IMAGE, identity=CLIENT_ID)


def test_azure_role_has_exactly_the_actions() -> None:
    spec = _spec()
    role = azure_rotator_role(spec)
    assert role["Actions"] == [
        "Microsoft.ApiManagement/service/gateways/read",
        "Microsoft.ApiManagement/service/gateways/generateToken/action",
    ]
    assert tuple(role["Actions"]) == AZURE_ROTATOR_ACTIONS
    assert role["AssignableScopes"] == [
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg1/providers/"
        "Microsoft.ApiManagement/service/contoso"
    ]
    assert role["IsCustom"] is True
    assert role["NotActions"] == role["DataActions"] == role["NotDataActions"] == []
    with_regen = azure_rotator_role(spec, regenerate_old_key=True)
    assert with_regen["Actions"][-1] == AZURE_REGENERATE_KEY_ACTION
    assert len(with_regen["Actions"]) == 3


def test_the_documented_role_matches_the_code() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "how-to" / "rotate.md").read_text()
    spec = DeploymentSpec.model_validate(
        {
            "gateway": {
                "subscription_id": "00000000-0000-0000-0000-000000000000",
                "resource_group": "my-rg",
                "service_name": "contoso",
                "name": "gw1",
            },
            "namespace": "apim",
        }
    )
    blocks = doc.split("```json")[1:]
    assert len(blocks) == 2
    for block in blocks:
        role = json.loads(block.split("```", 1)[0])
        regen = AZURE_REGENERATE_KEY_ACTION in role["Actions"]
        assert role == azure_rotator_role(spec, regenerate_old_key=regen)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("36h", timedelta(hours=36)),
        ("2w", timedelta(weeks=2)),
        ("90m", timedelta(minutes=90)),
        ("3600s", timedelta(hours=1)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["7", "d", "-1d", "1.5d", "7 days", "", "99999999999w"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)
