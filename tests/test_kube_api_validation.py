"""KubeEmulator contract: validation (schemas, names, quantities, immutability) and defaulting.

Statements from the API concepts page (field validation: Strict/Warn/Ignore), "Object Names and
IDs" (DNS subdomain and label names), the Secret and ConfigMap pages (immutable, stringData),
the Service page (cluster IP, ports) and the Deployment page (selector, defaults).
"""

from __future__ import annotations

import itertools
import json
import warnings
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from apim_selfhosted.testing import KubeEmulator

_counter = itertools.count()


@pytest.fixture(scope="module")
def api(kube_emulator_module: KubeEmulator) -> client.ApiClient:
    return kube_emulator_module.api_client()


@pytest.fixture
def ns(api: client.ApiClient) -> str:
    name = f"val-{next(_counter)}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    return name


def _post(api: client.ApiClient, path: str, body: Any, **query: str) -> Any:
    from kubernetes.dynamic import DynamicClient

    return DynamicClient(api).request("POST", path, body=body, query_params=list(query.items()))


def _deployment(name: str = "d", **spec_extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "d"}},
        "template": {
            "metadata": {"labels": {"app": "d"}},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
        },
    }
    spec.update(spec_extra)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": spec}


def _body(exc: ApiException) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(exc.body)
    return out


def test_strict_field_validation_rejects_unknown_fields(api: client.ApiClient, ns: str) -> None:
    """fieldValidation=Strict fails the request with a strict decoding error for unknown fields."""
    body = _deployment(foo=1)
    with pytest.raises(ApiException) as info:
        _post(api, f"/apis/apps/v1/namespaces/{ns}/deployments", body, fieldValidation="Strict")
    assert info.value.status == 400
    assert _body(info.value)["message"] == 'strict decoding error: unknown field "spec.foo"'


def test_warn_field_validation_drops_unknown_fields_with_a_warning(
    api: client.ApiClient, ns: str
) -> None:
    """fieldValidation=Warn (the default) drops unknown fields and returns a Warning header."""
    body = _deployment("w")
    body["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    request = api.param_serialize(
        "POST",
        f"/apis/apps/v1/namespaces/{ns}/deployments",
        header_params={"Content-Type": "application/json", "Accept": "application/json"},
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*request)
    response.read()
    assert response.status == 201
    warning = response.getheader("Warning") or ""
    assert "unknown field" in warning
    assert "spec.template.spec.containers[0].imagePullPolcy" in warning
    stored = client.AppsV1Api(api).read_namespaced_deployment("w", ns)
    assert stored.spec.template.spec.containers[0].image_pull_policy == "IfNotPresent"


def test_wrong_type_is_invalid_with_a_field_cause(api: client.ApiClient, ns: str) -> None:
    """A value of the wrong type is rejected with 422 Invalid naming the field."""
    with pytest.raises(ApiException) as info:
        _post(api, f"/apis/apps/v1/namespaces/{ns}/deployments", _deployment(replicas="two"))
    body = _body(info.value)
    assert info.value.status == 422
    assert body["reason"] == "Invalid"
    cause = body["details"]["causes"][0]
    assert cause["field"] == "spec.replicas"
    assert cause["reason"] == "FieldValueTypeInvalid"
    assert "spec.replicas in body must be of type integer" in cause["message"]
    assert body["message"].startswith('Deployment.apps "d" is invalid: spec.replicas: ')


def test_invalid_name_uses_the_dns_subdomain_message(api: client.ApiClient, ns: str) -> None:
    """Most names must be DNS subdomains; the message says so and gives the regex."""
    core = client.CoreV1Api(api)
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map(ns, {"metadata": {"name": "Bad_Name"}})
    body = _body(info.value)
    assert info.value.status == 422
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    assert "a lowercase RFC 1123 subdomain must consist of" in body["message"]


def test_service_names_are_dns_1035_labels(api: client.ApiClient, ns: str) -> None:
    """Service names must be DNS-1035 labels (start with a letter)."""
    core = client.CoreV1Api(api)
    svc = {"metadata": {"name": "1svc"}, "spec": {"ports": [{"port": 80}]}}
    with pytest.raises(ApiException) as info:
        core.create_namespaced_service(ns, svc)
    assert "a DNS-1035 label must consist of" in _body(info.value)["message"]


def test_invalid_label_value(api: client.ApiClient, ns: str) -> None:
    """Label values must be 63 characters or fewer of the allowed characters."""
    core = client.CoreV1Api(api)
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map(
            ns, {"metadata": {"name": "l", "labels": {"app": "has space"}}}
        )
    assert "a valid label must be an empty string or consist of" in _body(info.value)["message"]


def test_invalid_quantity(api: client.ApiClient, ns: str) -> None:
    """Resource quantities must match the quantity syntax."""
    dep = _deployment()
    dep["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"memory": "1Gb"}}
    with pytest.raises(ApiException) as info:
        client.AppsV1Api(api).create_namespaced_deployment(ns, dep)
    cause = _body(info.value)["details"]["causes"][0]
    assert cause["field"] == "spec.template.spec.containers[0].resources.limits[memory]"
    assert "quantities must match the regular expression" in cause["message"]


def test_required_image(api: client.ApiClient, ns: str) -> None:
    """A container needs an image."""
    dep = _deployment()
    del dep["spec"]["template"]["spec"]["containers"][0]["image"]
    with pytest.raises(ApiException) as info:
        client.AppsV1Api(api).create_namespaced_deployment(ns, dep)
    cause = _body(info.value)["details"]["causes"][0]
    assert cause == {
        "reason": "FieldValueRequired",
        "message": "Required value",
        "field": "spec.template.spec.containers[0].image",
    }


def test_selector_must_match_template_labels(api: client.ApiClient, ns: str) -> None:
    """A Deployment's selector must match its pod template's labels."""
    dep = _deployment()
    dep["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(ApiException) as info:
        client.AppsV1Api(api).create_namespaced_deployment(ns, dep)
    assert "`selector` does not match template `labels`" in _body(info.value)["message"]


def test_deployment_selector_is_immutable(api: client.ApiClient, ns: str) -> None:
    """spec.selector of a Deployment cannot change after creation."""
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(ns, _deployment("im"))
    changed = _deployment("im")
    changed["spec"]["selector"] = {"matchLabels": {"app": "d", "x": "y"}}
    changed["spec"]["template"]["metadata"]["labels"]["x"] = "y"
    with pytest.raises(ApiException) as info:
        apps.replace_namespaced_deployment("im", ns, changed)
    body = _body(info.value)
    assert info.value.status == 422
    assert body["details"]["causes"][0]["field"] == "spec.selector"
    assert "field is immutable" in body["message"]


def test_immutable_secret_data_cannot_change(api: client.ApiClient, ns: str) -> None:
    """A Secret marked immutable rejects changes to its data."""
    core = client.CoreV1Api(api)
    core.create_namespaced_secret(
        ns, {"metadata": {"name": "s"}, "immutable": True, "stringData": {"k": "v"}}
    )
    with pytest.raises(ApiException) as info:
        core.patch_namespaced_secret("s", ns, {"stringData": {"k": "other"}})
    assert info.value.status == 422
    assert "field is immutable when `immutable` is set" in _body(info.value)["message"]


def test_secret_string_data_becomes_base64_data(api: client.ApiClient, ns: str) -> None:
    """stringData is write-only: merged into data base64-encoded; type defaults to Opaque."""
    core = client.CoreV1Api(api)
    out = core.create_namespaced_secret(
        ns, {"metadata": {"name": "sd"}, "data": {"a": "YQ=="}, "stringData": {"b": "bee"}}
    )
    assert out.data == {"a": "YQ==", "b": "YmVl"}
    assert out.type == "Opaque"
    assert out.string_data is None


def test_service_defaults(api: client.ApiClient, ns: str) -> None:
    """Services get a cluster IP, type ClusterIP, sessionAffinity None, TCP and targetPort=port."""
    core = client.CoreV1Api(api)
    svc = core.create_namespaced_service(
        ns, {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 8080}]}}
    )
    assert svc.spec.type == "ClusterIP"
    assert svc.spec.cluster_ip.startswith("10.")
    assert svc.spec.cluster_ips == [svc.spec.cluster_ip]
    assert svc.spec.session_affinity == "None"
    port = svc.spec.ports[0]
    assert (port.protocol, port.target_port) == ("TCP", 8080)


def test_service_cluster_ip_is_immutable(api: client.ApiClient, ns: str) -> None:
    """A Service's cluster IP cannot be changed once set."""
    core = client.CoreV1Api(api)
    core.create_namespaced_service(
        ns, {"metadata": {"name": "ip"}, "spec": {"ports": [{"port": 80}]}}
    )
    with pytest.raises(ApiException) as info:
        core.patch_namespaced_service("ip", ns, {"spec": {"clusterIP": "10.96.0.99"}})
    assert info.value.status == 422


def test_deployment_and_pod_template_defaults(api: client.ApiClient, ns: str) -> None:
    """Deployments default replicas, strategy, history, deadline and the pod template fields."""
    dep = _deployment("df")
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx"
    dep["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = {
        "httpGet": {"path": "/", "port": 80}
    }
    out = client.AppsV1Api(api).create_namespaced_deployment(ns, dep)
    spec = out.spec
    assert spec.replicas == 1
    assert spec.strategy.type == "RollingUpdate"
    assert (
        spec.strategy.rolling_update.max_surge,
        spec.strategy.rolling_update.max_unavailable,
    ) == (
        "25%",
        "25%",
    )
    assert (spec.revision_history_limit, spec.progress_deadline_seconds) == (10, 600)
    pod = spec.template.spec
    assert (pod.restart_policy, pod.dns_policy, pod.termination_grace_period_seconds) == (
        "Always",
        "ClusterFirst",
        30,
    )
    assert pod.scheduler_name == "default-scheduler"
    container = pod.containers[0]
    assert container.image_pull_policy == "Always"  # no tag means :latest
    assert container.termination_message_path == "/dev/termination-log"
    probe = container.readiness_probe
    assert (probe.timeout_seconds, probe.period_seconds) == (1, 10)
    assert (probe.success_threshold, probe.failure_threshold) == (1, 3)
    assert probe.http_get.scheme == "HTTP"


def test_validation_happens_before_anything_is_written(api: client.ApiClient, ns: str) -> None:
    """An invalid update leaves the stored object and its resourceVersion unchanged."""
    apps = client.AppsV1Api(api)
    before = apps.create_namespaced_deployment(ns, _deployment("nv"))
    with pytest.raises(ApiException), warnings.catch_warnings():
        apps.patch_namespaced_deployment("nv", ns, {"spec": {"replicas": -1}})
    after = apps.read_namespaced_deployment("nv", ns)
    assert after.spec.replicas == 1
    assert after.metadata.generation == before.metadata.generation


def _cron_job(name: str, schedule: str, **spec: Any) -> dict[str, Any]:
    pod = {"containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "OnFailure"}
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {"schedule": schedule, "jobTemplate": {"spec": {"template": {"spec": pod}}}} | spec,
    }


@pytest.mark.parametrize(
    "schedule", ["*/5 * * * *", "0 3 * * sun", "0 0 1-31/2 JAN-dec 1,3,5", "@hourly", "@daily"]
)
def test_cron_job_accepts_standard_schedules(api: client.ApiClient, ns: str, schedule: str) -> None:
    name = f"cj-{abs(hash(schedule)) % 10**8}"
    created = _post(api, f"/apis/batch/v1/namespaces/{ns}/cronjobs", _cron_job(name, schedule))
    assert created.spec.schedule == schedule


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        (
            {"schedule": "61 * * * *"},
            "spec.schedule",
            'Invalid value: "61 * * * *": end of range (61) above maximum (59): 61',
        ),
        (
            {"schedule": "every day"},
            "spec.schedule",
            'Invalid value: "every day": expected exactly 5 fields, found 2: [every day]',
        ),
        (
            {"schedule": "TZ=UTC 0 * * * *"},
            "spec.schedule",
            'Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, '
            "use timeZone field instead",
        ),
        (
            {"schedule": "0 * * * *", "timeZone": "Mars/Olympus"},
            "spec.timeZone",
            'Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus',
        ),
    ],
)
def test_cron_job_refuses_bad_schedules_and_time_zones(
    api: client.ApiClient, ns: str, spec: dict[str, Any], field: str, message: str
) -> None:
    schedule = spec.pop("schedule")
    with pytest.raises(ApiException) as info:
        _post(api, f"/apis/batch/v1/namespaces/{ns}/cronjobs", _cron_job("bad", schedule, **spec))
    assert info.value.status == 422
    causes = _body(info.value)["details"]["causes"]
    assert {"reason": "FieldValueInvalid", "message": message, "field": field} in causes
