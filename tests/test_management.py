"""ManagementClient through the real azure-mgmt-apimanagement SDK and a real
ClientSecretCredential, against FakeApim over HTTPS: every method, error path and fault."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from apim_selfhosted import (
    AuthenticationError,
    AuthorizationError,
    Gateway,
    GatewayNotFoundError,
    KeyType,
    ManagementClient,
    ManagementError,
    SpecError,
    Token,
    TokenError,
)
from apim_selfhosted.management import ACTIONS, ApimService, GatewayKeys
from apim_selfhosted.testing import FakeApim
from apim_selfhosted.testing.apim import ROTATOR_ACTIONS

SUB = "11111111-2222-3333-4444-555555555555"
SUB2 = "99999999-2222-3333-4444-555555555555"
RG = "rg-gateways"
SVC = "contoso"
GENERATE = "Microsoft.ApiManagement/service/gateways/generateToken/action"


@pytest.fixture
def apim() -> Iterator[FakeApim]:
    with FakeApim(page_size=2) as fake:
        fake.add_service(SUB, RG, SVC)
        fake.add_gateway(SUB, RG, SVC, "gw1", description="first", location="dc-1")
        yield fake


@pytest.fixture
def gw() -> Gateway:
    return Gateway(subscription_id=SUB, resource_group=RG, service_name=SVC, name="gw1")


def _client(apim: FakeApim, credential: Any = None, **kwargs: Any) -> ManagementClient:
    options: dict[str, Any] = {"retry_backoff_factor": 0.01, "retry_backoff_max": 0.05}
    options.update(kwargs)
    return ManagementClient(
        credential or apim.credential(),
        base_url=apim.url,
        connection_verify=apim.ca_path,
        **options,
    )


@pytest.fixture
def client(apim: FakeApim) -> Iterator[ManagementClient]:
    with _client(apim) as mc:
        yield mc


# --------------------------------------------------------------------------- issue_token


def test_issue_token_returns_a_container_ready_token_the_service_accepts(
    apim: FakeApim, client: ManagementClient, gw: Gateway
) -> None:
    before = apim.now()
    token = client.issue_token(gw)
    assert isinstance(token, Token)
    assert token.value.get_secret_value().startswith("GatewayKey gw1&")
    assert token.key_type is KeyType.PRIMARY
    assert token.gateway_id == "gw1"
    expected = before + timedelta(days=29)
    assert abs(token.expires_on - expected) < timedelta(minutes=2)
    check = apim.validate_token(token)
    assert (check.status, check.key_type) == ("valid", "primary")


def test_issue_token_with_secondary_key_and_short_ttl(
    apim: FakeApim, client: ManagementClient, gw: Gateway
) -> None:
    token = client.issue_token(gw, key_type="secondary", ttl=timedelta(hours=2))
    assert token.key_type is KeyType.SECONDARY
    assert apim.validate_token(token).key_type == "secondary"
    apim.advance(timedelta(hours=3))
    assert apim.validate_token(token).status == "expired"


@pytest.mark.parametrize(
    "ttl", [timedelta(days=30, seconds=1), timedelta(seconds=59), timedelta(days=-1)]
)
def test_issue_token_refuses_a_ttl_out_of_range_before_calling(
    apim: FakeApim, client: ManagementClient, gw: Gateway, ttl: timedelta
) -> None:
    apim.reset_requests()
    with pytest.raises(TokenError, match="ttl must be between 1 minute and 30 days"):
        client.issue_token(gw, ttl=ttl)
    assert apim.request_count() == 0


def test_issue_token_refuses_an_unknown_key_type_before_calling(
    apim: FakeApim, client: ManagementClient, gw: Gateway
) -> None:
    apim.reset_requests()
    with pytest.raises(TokenError, match="key_type must be one of"):
        client.issue_token(gw, key_type="tertiary")
    assert apim.request_count() == 0


def test_issue_token_follows_an_injected_clock(apim: FakeApim, gw: Gateway) -> None:
    apim.advance(timedelta(days=45))
    with _client(apim, clock=apim.now) as mc:
        token = mc.issue_token(gw, ttl=timedelta(days=30))
    assert apim.validate_token(token).valid
    assert token.expires_on > datetime.now(UTC) + timedelta(days=60)


def test_issue_token_for_a_gateway_in_another_subscription(apim: FakeApim) -> None:
    apim.add_service(SUB2, RG, "fabrikam")
    apim.add_gateway(SUB2, RG, "fabrikam", "edge")
    other = Gateway(subscription_id=SUB2, resource_group=RG, service_name="fabrikam", name="edge")
    first = Gateway(subscription_id=SUB, resource_group=RG, service_name=SVC, name="gw1")
    with _client(apim) as mc:
        assert apim.validate_token(mc.issue_token(other)).valid
        assert apim.validate_token(mc.issue_token(first)).valid
        assert len(mc._clients) == 2


# --------------------------------------------------------------------------- keys


def test_list_keys_returns_secret_keys_and_the_etag(
    apim: FakeApim, client: ManagementClient, gw: Gateway
) -> None:
    keys = client.list_keys(gw)
    assert isinstance(keys, GatewayKeys)
    assert len(keys.primary.get_secret_value()) == 88
    assert keys.get(KeyType.SECONDARY) == keys.secondary
    assert keys.etag == apim.gateway_etag(gw)
    for text in (repr(keys), str(keys)):
        assert keys.primary.get_secret_value() not in text
        assert keys.secondary.get_secret_value() not in text


def test_regenerate_key_invalidates_tokens_of_that_key_only(
    apim: FakeApim, client: ManagementClient, gw: Gateway
) -> None:
    primary = client.issue_token(gw, key_type="primary")
    secondary = client.issue_token(gw, key_type="secondary")
    before = client.list_keys(gw)
    client.regenerate_key(gw, KeyType.PRIMARY)
    after = client.list_keys(gw)
    assert after.primary != before.primary
    assert after.secondary == before.secondary
    assert apim.validate_token(primary).status == "invalidated"
    assert apim.validate_token(secondary).valid
    with pytest.raises(TokenError):
        client.regenerate_key(gw, "both")


# --------------------------------------------------------------------------- gateway resources


def test_get_gateway_reads_description_location_and_etag(
    apim: FakeApim, client: ManagementClient, gw: Gateway
) -> None:
    info = client.get_gateway(gw)
    assert (info.description, info.location) == ("first", "dc-1")
    assert info.resource_id == gw.resource_id
    assert info.etag == apim.gateway_etag(gw)
    assert info.gateway == gw


def test_ensure_gateway_creates_then_is_idempotent_then_updates(
    apim: FakeApim, client: ManagementClient
) -> None:
    new = Gateway(subscription_id=SUB, resource_group=RG, service_name=SVC, name="edge-1")
    created = client.ensure_gateway(new, location="aks-west", description="edge")
    assert (created.action, created.changed) == ("created", True)
    assert created.gateway.etag == apim.gateway_etag(new)
    apim.reset_requests()
    same = client.ensure_gateway(new, location="aks-west", description="edge")
    assert same.action == "unchanged"
    assert apim.request_count("Gateway_CreateOrUpdate") == 0
    updated = client.ensure_gateway(new, location="aks-east", description="edge")
    assert updated.action == "updated"
    assert updated.gateway.location == "aks-east"
    assert client.get_gateway(new).location == "aks-east"
    # description=None keeps the current description
    assert client.ensure_gateway(new, location="aks-east").action == "unchanged"
    moved = client.ensure_gateway(new, location="aks-north")
    assert (moved.action, moved.gateway.description) == ("updated", "edge")
    renamed = client.ensure_gateway(new, location="aks-north", description="edge 2")
    assert (renamed.action, renamed.gateway.description) == ("updated", "edge 2")


def test_ensure_gateway_does_not_overwrite_a_concurrent_change(
    apim: FakeApim, client: ManagementClient, gw: Gateway
) -> None:
    apim.on_request(
        "Gateway_CreateOrUpdate", lambda: apim.touch_gateway(gw, description="someone else")
    )
    with pytest.raises(ManagementError, match="changed since it was read") as err:
        client.ensure_gateway(gw, location="dc-2", description="mine")
    assert (err.value.status, err.value.code) == (412, "PreconditionFailed")
    info = client.get_gateway(gw)
    assert (info.description, info.location) == ("someone else", "dc-1")


def test_ensure_gateway_validates_input_before_any_call(
    apim: FakeApim, client: ManagementClient, gw: Gateway
) -> None:
    apim.reset_requests()
    with pytest.raises(SpecError) as err:
        client.ensure_gateway(gw, location="x" * 257, description="d" * 1001)
    assert [field for field, _ in err.value.problems] == ["location", "description"]
    assert apim.request_count() == 0


def test_ensure_gateway_in_a_missing_service(apim: FakeApim, client: ManagementClient) -> None:
    lost = Gateway(subscription_id=SUB, resource_group=RG, service_name="gone", name="gw1")
    with pytest.raises(GatewayNotFoundError) as err:
        client.ensure_gateway(lost, location="dc")
    assert err.value.missing == "service"
    assert err.value.gateway == lost


def test_list_gateways_reads_every_page(apim: FakeApim, client: ManagementClient) -> None:
    for name in ("gw2", "gw3", "gw4", "gw5"):
        apim.add_gateway(SUB, RG, SVC, name, location=f"loc-{name}")
    service = ApimService(subscription_id=SUB, resource_group=RG, service_name=SVC)
    apim.reset_requests()
    infos = client.list_gateways(service)
    assert [i.gateway.name for i in infos] == ["gw1", "gw2", "gw3", "gw4", "gw5"]
    assert infos[3].location == "loc-gw4"
    assert apim.request_count("Gateway_ListByService") == 3
    gw = Gateway(subscription_id=SUB, resource_group=RG, service_name=SVC, name="gw1")
    assert len(client.list_gateways(gw)) == 5
    with pytest.raises(GatewayNotFoundError) as err:
        client.list_gateways(service.model_copy(update={"service_name": "gone"}))
    assert err.value.missing == "service"


def test_delete_gateway_reports_whether_it_existed_and_honours_the_etag(
    apim: FakeApim, client: ManagementClient, gw: Gateway
) -> None:
    with pytest.raises(ManagementError) as err:
        client.delete_gateway(gw, etag='"stale"')
    assert err.value.status == 412
    assert apim.has_gateway(gw)
    assert client.delete_gateway(gw, etag=apim.gateway_etag(gw)) is True
    assert client.delete_gateway(gw) is False
    assert not apim.has_gateway(gw)


def test_config_endpoint_is_read_from_the_service(apim: FakeApim, client: ManagementClient) -> None:
    apim.add_service(SUB, RG, "custom", configuration_api_hostname="config.contoso.example")
    plain = Gateway(subscription_id=SUB, resource_group=RG, service_name=SVC, name="gw1")
    custom = plain.model_copy(update={"service_name": "custom"})
    assert client.config_endpoint(plain) == "https://contoso.configuration.azure-api.net"
    assert client.config_endpoint(custom) == "https://config.contoso.example"


def test_sovereign_cloud_scope_and_config_endpoint() -> None:
    with FakeApim(audience="https://management.chinacloudapi.cn") as apim:
        apim.add_service(SUB, RG, SVC, hostname_suffix="azure-api.cn")
        apim.add_gateway(SUB, RG, SVC, "gw1")
        gw = Gateway(
            subscription_id=SUB, resource_group=RG, service_name=SVC, name="gw1", cloud="china"
        )
        with _client(apim, cloud="china") as mc:
            assert mc.config_endpoint(gw) == "https://contoso.configuration.azure-api.cn"
            assert apim.validate_token(mc.issue_token(gw)).valid
            public = Gateway(subscription_id=SUB, resource_group=RG, service_name=SVC, name="gw1")
            with pytest.raises(SpecError, match="cloud"):
                mc.issue_token(public)
        # A public-cloud client asks for the wrong scope: Entra ID refuses it.
        with _client(apim) as mc, pytest.raises(AuthenticationError, match="AADSTS500011"):
            mc.issue_token(public)


# --------------------------------------------------------------------------- errors


def test_wrong_secret_is_an_authentication_error(apim: FakeApim, gw: Gateway) -> None:
    from azure.identity import ClientSecretCredential

    bad = ClientSecretCredential(
        apim.tenant_id,
        apim.principal.client_id,
        "wrong-secret",
        authority=apim.authority,
        connection_verify=apim.ca_path,
        disable_instance_discovery=True,
    )
    with _client(apim, bad) as mc, pytest.raises(AuthenticationError) as err:
        mc.issue_token(gw)
    assert err.value.system == "azure"
    assert "wrong-secret" not in str(err.value)


def test_token_for_the_wrong_audience_is_an_authentication_error(gw: Gateway) -> None:
    with FakeApim(other_audiences=["https://graph.microsoft.com"]) as apim:
        apim.add_service(SUB, RG, SVC)
        apim.add_gateway(SUB, RG, SVC, "gw1")
        with (
            _client(apim, credential_scopes=["https://graph.microsoft.com/.default"]) as mc,
            pytest.raises(AuthenticationError, match="InvalidAuthenticationTokenAudience") as err,
        ):
            mc.issue_token(gw)
    assert err.value.__cause__ is not None


def test_arm_401_is_an_authentication_error(
    apim: FakeApim, client: ManagementClient, gw: Gateway
) -> None:
    apim.inject_fault("unauthorized", operation="Gateway_GenerateToken")
    with pytest.raises(AuthenticationError, match="HTTP 401"):
        client.issue_token(gw)


def test_least_privilege_role_issues_tokens_but_cannot_read_keys(
    apim: FakeApim, gw: Gateway
) -> None:
    rotator = apim.add_principal(actions=ROTATOR_ACTIONS)
    with _client(apim, apim.credential(rotator)) as mc:
        assert apim.validate_token(mc.issue_token(gw)).valid
        assert mc.get_gateway(gw).location == "dc-1"
        with pytest.raises(AuthorizationError) as err:
            mc.list_keys(gw)
        assert err.value.permission == "Microsoft.ApiManagement/service/gateways/listKeys/action"
        assert err.value.resource == gw.resource_id
        with pytest.raises(AuthorizationError) as regen:
            mc.regenerate_key(gw, "primary")
        assert regen.value.permission.endswith("/gateways/regenerateKey/action")
        with pytest.raises(AuthorizationError) as svc:
            mc.config_endpoint(gw)
        assert svc.value.permission == "Microsoft.ApiManagement/service/read"


def test_missing_generate_token_permission_names_the_action(apim: FakeApim, gw: Gateway) -> None:
    reader = apim.add_principal(actions=["Microsoft.ApiManagement/service/gateways/read"])
    with _client(apim, apim.credential(reader)) as mc, pytest.raises(AuthorizationError) as err:
        mc.issue_token(gw)
    assert err.value.permission == GENERATE
    assert GENERATE in str(err.value)


def test_forbidden_fault_is_an_authorization_error(
    apim: FakeApim, client: ManagementClient, gw: Gateway
) -> None:
    apim.inject_fault("forbidden", operation="Gateway_GenerateToken")
    with pytest.raises(AuthorizationError) as err:
        client.issue_token(gw)
    assert err.value.permission == GENERATE
    assert err.value.__cause__ is not None  # chained to the SDK's HttpResponseError


def test_missing_gateway_and_service_name_what_is_missing(
    apim: FakeApim, client: ManagementClient, gw: Gateway
) -> None:
    nope = gw.model_copy(update={"name": "nope"})
    with pytest.raises(GatewayNotFoundError) as err:
        client.issue_token(nope)
    assert (err.value.missing, err.value.gateway) == ("gateway", nope)
    assert "'nope'" in str(err.value)
    for lost in (
        gw.model_copy(update={"service_name": "gone"}),
        gw.model_copy(update={"resource_group": "rg-gone"}),
        gw.model_copy(update={"subscription_id": SUB2}),
    ):
        with pytest.raises(GatewayNotFoundError) as missing:
            client.get_gateway(lost)
        assert missing.value.missing == "service"
        assert isinstance(missing.value, LookupError)


# --------------------------------------------------------------------------- faults and retries


@pytest.mark.parametrize(
    ("kind", "extra"),
    [
        ("throttle", {"retry_after": 0}),
        ("server_error", {}),
        ("unavailable", {}),
        ("drop", {}),
    ],
)
def test_transient_faults_are_retried(
    apim: FakeApim, client: ManagementClient, gw: Gateway, kind: Any, extra: dict[str, Any]
) -> None:
    client.get_gateway(gw)  # credential warmed up
    apim.reset_requests()
    fault = apim.inject_fault(kind, operation="Gateway_GenerateToken", times=2, **extra)
    token = client.issue_token(gw)
    assert apim.validate_token(token).valid
    assert fault.hits == 2
    assert apim.request_count("Gateway_GenerateToken") == 3


def test_retries_stop_after_retry_total_with_the_last_status(apim: FakeApim, gw: Gateway) -> None:
    apim.inject_fault("unavailable", operation="Gateway_ListKeys", times=None)
    with _client(apim, retry_total=3) as mc:
        mc.get_gateway(gw)
        apim.reset_requests()
        with pytest.raises(ManagementError) as err:
            mc.list_keys(gw)
    assert (err.value.status, err.value.code) == (503, "ServiceUnavailable")
    assert apim.request_count("Gateway_ListKeys") == 4


def test_a_retry_after_beyond_the_budget_is_not_waited_for(
    apim: FakeApim, client: ManagementClient, gw: Gateway
) -> None:
    client.get_gateway(gw)
    apim.reset_requests()
    apim.inject_fault("throttle", operation="Gateway_GenerateToken", times=None, retry_after=3600)
    with pytest.raises(ManagementError) as err:
        client.issue_token(gw, timeout=5)
    assert err.value.status == 429
    assert "5 s budget" in str(err.value)
    assert apim.request_count("Gateway_GenerateToken") == 1


def test_a_retry_storm_stays_within_the_time_budget(apim: FakeApim, gw: Gateway) -> None:
    # Unlimited 429s with Retry-After: 0 and a huge retry count: only the budget ends it.
    apim.inject_fault("throttle", times=None, retry_after=0)
    with _client(apim, retry_total=1_000_000, timeout=0.5) as mc:
        with pytest.raises(ManagementError) as err:
            mc.issue_token(gw)
        assert err.value.status == 429
    storm = apim.request_count("Gateway_GenerateToken")
    assert 1 < storm < 1_000_000


def test_latency_beyond_the_timeout_is_a_management_error(
    apim: FakeApim, client: ManagementClient, gw: Gateway
) -> None:
    client.get_gateway(gw)
    apim.inject_fault("latency", operation="Gateway_Get", delay=1.0, times=None)
    with pytest.raises(ManagementError) as err:
        client.get_gateway(gw, timeout=0.3)
    assert err.value.status is None


def test_unreachable_endpoint_is_a_management_error(apim: FakeApim, gw: Gateway) -> None:
    credential = apim.credential()
    credential.get_token("https://management.azure.com/.default")
    with (
        ManagementClient(
            credential,
            base_url="https://127.0.0.1:9",
            connection_verify=apim.ca_path,
            timeout=1,
            retry_backoff_factor=0.01,
        ) as mc,
        pytest.raises(ManagementError) as err,
    ):
        mc.get_gateway(gw)
    assert "127.0.0.1:9" in str(err.value)


def test_azure_core_retry_policy_can_replace_the_bounded_one(apim: FakeApim, gw: Gateway) -> None:
    from azure.core.pipeline.policies import RetryPolicy

    apim.inject_fault("server_error", operation="Gateway_Get", times=1)
    with _client(apim, retry_policy=RetryPolicy(retry_backoff_factor=0.01)) as mc:
        assert mc.get_gateway(gw).location == "dc-1"


# --------------------------------------------------------------------------- options, lifecycle


def test_invalid_options_are_refused_with_field_names(apim: FakeApim) -> None:
    with pytest.raises(SpecError) as err:
        ManagementClient(
            apim.credential(), timeout=0, retry_total=-1, cloud="mars", logging_enable=True
        )
    fields = [field for field, _ in err.value.problems]
    assert fields == ["timeout", "retry_total", "logging_enable", "cloud"]


def test_a_closed_client_refuses_calls(apim: FakeApim, gw: Gateway) -> None:
    with _client(apim) as mc:
        mc.get_gateway(gw)
    with pytest.raises(ManagementError, match="closed"):
        mc.get_gateway(gw)
    with pytest.raises(SpecError, match="timeout"):
        _client(apim).get_gateway(gw, timeout=-1)


def test_repr_names_the_endpoint(apim: FakeApim) -> None:
    with _client(apim) as mc:
        assert repr(mc) == f"ManagementClient(base_url='{apim.url}', cloud='public')"


# --------------------------------------------------------------------------- secrets


def test_tokens_and_keys_never_reach_logs_reprs_or_errors(
    apim: FakeApim, gw: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    loggers = ["apim_selfhosted", "azure", "urllib3", "msal"]
    previous = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.DEBUG)
    secrets: list[str] = [apim.principal.client_secret.get_secret_value()]
    texts: list[str] = []
    try:
        with caplog.at_level(logging.DEBUG):
            apim.inject_fault("throttle", operation="Gateway_GenerateToken", retry_after=0)
            credential = apim.credential()
            with _client(apim, credential) as mc:
                token = mc.issue_token(gw)
                keys = mc.list_keys(gw)
                mc.regenerate_key(gw, "secondary")
                keys_after = mc.list_keys(gw)
                apim.inject_fault("server_error", operation="Gateway_ListKeys", times=None)
                try:
                    mc.list_keys(gw, timeout=0.5)
                except ManagementError as exc:
                    texts += [str(exc), repr(exc), str(exc.__cause__)]
                apim.clear_faults()
                rotator = apim.add_principal(actions=ROTATOR_ACTIONS)
                with _client(apim, apim.credential(rotator)) as limited:
                    try:
                        limited.list_keys(gw)
                    except AuthorizationError as exc:
                        texts += [str(exc), repr(exc), str(exc.__cause__)]
                other = gw.model_copy(update={"name": "gw-other"})
                try:
                    Token.parse(token.value.get_secret_value(), gateway=other)
                except TokenError as exc:
                    texts += [str(exc), repr(exc)]
        secrets += [
            credential.get_token("https://management.azure.com/.default").token,  # cached one
            token.value.get_secret_value(),
            token.value.get_secret_value().split("&")[-1],
            keys.primary.get_secret_value(),
            keys.secondary.get_secret_value(),
            keys_after.secondary.get_secret_value(),
        ]
        texts += [repr(token), str(token), repr(keys), str(keys), repr(keys_after)]
        texts += [record.getMessage() for record in caplog.records]
        texts += [repr(record.args) for record in caplog.records]
    finally:
        for name, level in previous.items():
            logging.getLogger(name).setLevel(level)
    assert len(caplog.records) > 10  # the loggers really were on
    assert any(r.name.startswith("azure") for r in caplog.records)
    assert any(r.name.startswith("apim_selfhosted") for r in caplog.records)
    for secret in secrets:
        for text in texts:
            assert secret not in text


def test_one_client_serves_many_threads(
    apim: FakeApim, client: ManagementClient, gw: Gateway
) -> None:
    import threading

    apim.inject_fault("throttle", operation="Gateway_GenerateToken", times=3, retry_after=0)
    tokens: list[Token] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                tokens.append(client.issue_token(gw, key_type="secondary"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(tokens) == 20
    assert all(apim.validate_token(t).valid for t in tokens)
    assert apim.request_count("Gateway_GenerateToken") == 23  # 20 + 3 throttled and retried


def test_the_action_table_is_read_only() -> None:
    # Error messages and role definitions read it: a caller's edit must not change them.
    table: Any = ACTIONS
    with pytest.raises(TypeError):
        table["issue_token"] = "*"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("5", 5.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # an HTTP-date in the past: retry now
        ("Wed, 21 Oct 2015 07:28:00 -0000", 0.0),  # parsed as a naive datetime: was a TypeError
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(
    header: str | None, expected: float | None
) -> None:
    from apim_selfhosted.management import _retry_after

    assert _retry_after(header) == expected
