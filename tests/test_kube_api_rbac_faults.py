"""KubeEmulator contract: authentication, RBAC, injected faults and request counting.

Statements from "Authenticating" (bearer tokens, 401 for unknown ones) and "Using RBAC
Authorization" (Roles, RoleBindings, resourceNames, subresources, the wording of 403), plus the
emulator's own fault-injection and counting features that tests of retrying clients rely on.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from apim_selfhosted.testing import KubeEmulator


@pytest.fixture(scope="module")
def kube(kube_emulator_module: KubeEmulator) -> KubeEmulator:
    core = client.CoreV1Api(kube_emulator_module.api_client())
    for name in ("team-a", "team-b"):
        core.create_namespace({"metadata": {"name": name}})
    return kube_emulator_module


def test_unknown_token_is_401(kube: KubeEmulator, tmp_path: Path) -> None:
    """A request with a bearer token the server does not know is 401 Unauthorized."""
    configuration = client.Configuration()
    configuration.host = kube.url
    ca = tmp_path / "ca.pem"
    ca.write_bytes(kube.ca_pem or b"")
    configuration.ssl_ca_cert = str(ca)
    configuration.api_key = {"BearerToken": "not-a-valid-token"}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    api = client.CoreV1Api(client.ApiClient(configuration))
    with pytest.raises(ApiException) as info:
        api.list_namespace()
    assert info.value.status == 401
    assert json.loads(info.value.body)["reason"] == "Unauthorized"


def test_inline_rules_allow_only_what_they_list(kube: KubeEmulator) -> None:
    """A user may do what a rule grants (verbs x resources in a namespace) and nothing else."""
    kube.add_user(
        "reader",
        namespace="team-a",
        rules=[{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
    )
    core = client.CoreV1Api(kube.api_client(user="reader"))
    assert core.list_namespaced_config_map("team-a").items is not None
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map("team-a", {"metadata": {"name": "x"}})
    assert info.value.status == 403
    assert json.loads(info.value.body)["message"] == (
        'configmaps is forbidden: User "reader" cannot create resource "configmaps" in API '
        'group "" in the namespace "team-a"'
    )
    with pytest.raises(ApiException) as other:
        core.list_namespaced_config_map("team-b")
    assert other.value.status == 403


def test_forbidden_message_at_cluster_scope(kube: KubeEmulator) -> None:
    """A denied cluster-scoped request says `at the cluster scope`."""
    kube.add_user("nobody")
    with pytest.raises(ApiException) as info:
        client.CoreV1Api(kube.api_client(user="nobody")).list_namespace()
    assert json.loads(info.value.body)["message"] == (
        'namespaces is forbidden: User "nobody" cannot list resource "namespaces" in API group '
        '"" at the cluster scope'
    )


def test_role_and_role_binding_objects_grant_access(kube: KubeEmulator) -> None:
    """A RoleBinding of a Role to a user grants the Role's rules in that namespace."""
    kube.add_user("deployer")
    rbac = client.RbacAuthorizationV1Api(kube.api_client())
    rbac.create_namespaced_role(
        "team-b",
        {
            "metadata": {"name": "deploy"},
            "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]}],
        },
    )
    apps = client.AppsV1Api(kube.api_client(user="deployer"))
    with pytest.raises(ApiException) as before:
        apps.list_namespaced_deployment("team-b")
    assert before.value.status == 403
    rbac.create_namespaced_role_binding(
        "team-b",
        {
            "metadata": {"name": "deploy"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deploy"},
            "subjects": [
                {"kind": "User", "name": "deployer", "apiGroup": "rbac.authorization.k8s.io"}
            ],
        },
    )
    assert apps.list_namespaced_deployment("team-b").items == []


def test_resource_names_and_subresources(kube: KubeEmulator) -> None:
    """resourceNames limits a rule to named objects; subresources are `resource/sub`."""
    admin = client.CoreV1Api(kube.api_client())
    for name in ("allowed", "other"):
        admin.create_namespaced_secret("team-a", {"metadata": {"name": name}})
    kube.add_user(
        "one-secret",
        namespace="team-a",
        rules=[
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "verbs": ["get"],
                "resourceNames": ["allowed"],
            },
            {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        ],
    )
    core = client.CoreV1Api(kube.api_client(user="one-secret"))
    assert core.read_namespaced_secret("allowed", "team-a").metadata.name == "allowed"
    with pytest.raises(ApiException) as info:
        core.read_namespaced_secret("other", "team-a")
    assert json.loads(info.value.body)["message"].startswith('secrets "other" is forbidden')
    with pytest.raises(ApiException) as pods:
        core.read_namespaced_pod("p", "team-a")
    assert pods.value.status == 403


def test_user_token_is_not_in_reprs(kube: KubeEmulator) -> None:
    """Tokens are secrets: they never appear in the user's repr."""
    user = kube.add_user("quiet")
    assert user.token.get_secret_value() not in repr(user)
    assert user.token.get_secret_value() not in repr(kube)


def test_injected_500_fails_the_next_matching_request_only(kube: KubeEmulator) -> None:
    """inject_faults makes the next N matching requests fail with a Status of that code."""
    core = client.CoreV1Api(kube.api_client())
    kube.inject_faults(status=500, count=1, verb="list", resource="configmaps")
    core.list_namespaced_secret("team-a")  # other resources are unaffected
    with pytest.raises(ApiException) as info:
        core.list_namespaced_config_map("team-a")
    assert info.value.status == 500
    assert json.loads(info.value.body)["reason"] == "InternalError"
    assert core.list_namespaced_config_map("team-a").items is not None


def test_injected_429_is_retried_by_the_client_after_retry_after(kube: KubeEmulator) -> None:
    """A 429 TooManyRequests says when to retry (Retry-After); the client's retry gets through."""
    core = client.CoreV1Api(kube.api_client())
    kube.reset_requests()
    kube.inject_faults(status=429, count=1, verb="get", resource="namespaces", retry_after=0)
    assert core.read_namespace("team-a").metadata.name == "team-a"
    assert [r.status for r in kube.requests if r.resource == "namespaces"] == [429, 200]


def test_injected_429_status_body(kube: KubeEmulator) -> None:
    """The 429 Status is TooManyRequests with details.retryAfterSeconds."""
    from apim_selfhosted.testing.kube.server import Request

    kube.inject_faults(status=429, count=1, verb="get", resource="namespaces", retry_after=7)
    token = kube.admin_token.get_secret_value()
    response = kube.api.handle(
        Request("GET", "/api/v1/namespaces/team-a", {}, {"authorization": f"Bearer {token}"}, b"")
    )
    body = json.loads(response.body)
    assert (response.status, response.headers["Retry-After"]) == (429, "7")
    assert (body["reason"], body["details"]["retryAfterSeconds"]) == ("TooManyRequests", 7)


def test_requests_are_counted(kube: KubeEmulator) -> None:
    """Every request is recorded with method, verb, resource, user and status."""
    core = client.CoreV1Api(kube.api_client())
    kube.reset_requests()
    core.list_namespaced_config_map("team-a")
    core.create_namespaced_config_map("team-a", {"metadata": {"name": "counted"}})
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("missing", "team-a")
    assert kube.request_count(resource="configmaps") == 3
    assert kube.request_count(verb="create") == 1
    records = [r for r in kube.requests if r.resource == "configmaps"]
    assert [r.status for r in records] == [200, 201, 404]
    assert {r.user for r in records} == {"kubernetes-admin"}


def test_inject_faults_rejects_bad_arguments(kube: KubeEmulator) -> None:
    """Bad fault specifications are refused before anything is queued."""
    with pytest.raises(ValueError, match="count"):
        kube.inject_faults(count=0)
    with pytest.raises(ValueError, match="status"):
        kube.inject_faults(status=200)


def test_apply_that_creates_needs_create_permission(kube: KubeEmulator) -> None:
    """A patch (server-side apply) that creates the object is also authorized for `create`."""
    from kubernetes.dynamic import DynamicClient

    kube.add_user(
        "patch-only",
        namespace="team-a",
        rules=[{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "patch"]}],
    )
    configmaps = DynamicClient(kube.api_client(user="patch-only")).resources.get(
        api_version="v1", kind="ConfigMap"
    )
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "by-apply"}}
    with pytest.raises(ApiException) as info:
        configmaps.server_side_apply(
            body=body, name="by-apply", namespace="team-a", field_manager="ci"
        )
    assert info.value.status == 403
    assert "cannot create resource" in json.loads(info.value.body)["message"]
    client.CoreV1Api(kube.api_client()).create_namespaced_config_map(
        "team-a", {"metadata": {"name": "by-apply"}}
    )
    out = configmaps.server_side_apply(
        body={**body, "data": {"k": "v"}}, name="by-apply", namespace="team-a", field_manager="ci"
    )
    assert out.data.k == "v"


def test_field_selector_on_the_name_counts_as_naming_the_object(kube: KubeEmulator) -> None:
    """list/watch with fieldSelector=metadata.name=<n> is authorized against resourceNames."""
    kube.add_user(
        "one-deployment",
        namespace="team-a",
        rules=[
            {
                "apiGroups": ["apps"],
                "resources": ["deployments"],
                "verbs": ["list", "watch"],
                "resourceNames": ["web"],
            }
        ],
    )
    apps = client.AppsV1Api(kube.api_client(user="one-deployment"))
    assert apps.list_namespaced_deployment("team-a", field_selector="metadata.name=web").items == []
    with pytest.raises(ApiException) as info:
        apps.list_namespaced_deployment("team-a")
    assert info.value.status == 403


def test_self_subject_access_review(kube: KubeEmulator) -> None:
    """A SelfSubjectAccessReview tells the requesting user whether RBAC allows an action."""
    kube.add_user(
        "reviewer",
        namespace="team-a",
        rules=[{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["patch"]}],
    )
    authz = client.AuthorizationV1Api(kube.api_client(user="reviewer"))

    def allowed(verb: str, namespace: str) -> bool:
        review = authz.create_self_subject_access_review(
            {
                "spec": {
                    "resourceAttributes": {
                        "group": "apps",
                        "resource": "deployments",
                        "verb": verb,
                        "namespace": namespace,
                    }
                }
            }
        )
        return bool(review.status.allowed)

    assert allowed("patch", "team-a")
    assert not allowed("delete", "team-a")
    assert not allowed("patch", "team-b")


def test_tokens_never_reach_the_logs(kube: KubeEmulator, caplog: pytest.LogCaptureFixture) -> None:
    """No log record of the emulator, at any level, contains a bearer token."""
    caplog.set_level("DEBUG", logger="apim_selfhosted")
    user = kube.add_user(
        "logged",
        namespace="team-a",
        rules=[{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
    )
    core = client.CoreV1Api(kube.api_client(user="logged"))
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("absent", "team-a")
    with pytest.raises(ApiException):
        core.list_namespace()
    text = caplog.text
    assert user.token.get_secret_value() not in text
    assert kube.admin_token.get_secret_value() not in text
