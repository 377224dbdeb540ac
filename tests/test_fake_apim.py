"""FakeApim against ARM's and Entra ID's documented behaviour, over HTTPS.

The checks go through the unmodified ``azure-mgmt-apimanagement`` client and a real
``ClientSecretCredential``; where a check needs a request the SDK would never send (no
api-version, no bearer token, a malformed body), plain ``requests`` talks to the fake.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.policies import RetryPolicy
from azure.mgmt.apimanagement import ApiManagementClient
from azure.mgmt.apimanagement.models import (
    GatewayContract,
    GatewayKeyRegenerationRequestContract,
    GatewayTokenRequestContract,
    ResourceLocationDataContract,
)

from apim_selfhosted.testing import FakeApim
from apim_selfhosted.testing.apim import ROTATOR_ACTIONS

SUB = "11111111-2222-3333-4444-555555555555"
RG = "rg-gateways"
SVC = "contoso"
SCOPE = "https://management.azure.com/.default"
GW_PATH = (
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ApiManagement/service/{SVC}"
)


@pytest.fixture
def apim() -> Iterator[FakeApim]:
    with FakeApim(page_size=2, seed=7) as fake:
        fake.add_service(SUB, RG, SVC)
        fake.add_gateway(SUB, RG, SVC, "gw1", description="first")
        yield fake


@pytest.fixture
def sdk(apim: FakeApim) -> Iterator[ApiManagementClient]:
    # No retries: these tests look at single responses.
    client = ApiManagementClient(
        apim.credential(),
        SUB,
        base_url=apim.url,
        connection_verify=apim.ca_path,
        retry_policy=RetryPolicy.no_retries(),
    )
    yield client
    client.close()


def _bearer(apim: FakeApim, principal: Any = None) -> dict[str, str]:
    token = apim.credential(principal).get_token(SCOPE).token
    return {"Authorization": f"Bearer {token}"}


def _raw(apim: FakeApim, method: str, path: str, **kwargs: Any) -> requests.Response:
    assert apim.url is not None
    return requests.request(method, apim.url + path, verify=apim.ca_path, timeout=10, **kwargs)


def _expiry(apim: FakeApim, days: float = 29) -> datetime:
    return apim.now() + timedelta(days=days)


# --------------------------------------------------------------------------- Entra ID


def test_client_secret_credential_gets_a_token_from_the_fake(apim: FakeApim) -> None:
    token = apim.credential().get_token(SCOPE)
    assert token.token.count(".") == 2
    assert token.expires_on > datetime.now(UTC).timestamp()
    assert apim.request_count("Entra_OpenIdConfiguration") == 1
    assert apim.request_count("Entra_Token") == 1


def test_wrong_client_secret_is_refused_like_entra_id(apim: FakeApim) -> None:
    from azure.identity import ClientSecretCredential

    cred = ClientSecretCredential(
        apim.tenant_id,
        apim.principal.client_id,
        "not-the-secret",
        authority=apim.authority,
        connection_verify=apim.ca_path,
        disable_instance_discovery=True,
    )
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        cred.get_token(SCOPE)


def test_unknown_client_and_foreign_audience_are_refused(apim: FakeApim) -> None:
    from azure.identity import ClientSecretCredential

    stranger = ClientSecretCredential(
        apim.tenant_id,
        "99999999-0000-0000-0000-000000000000",
        "x",
        authority=apim.authority,
        connection_verify=apim.ca_path,
        disable_instance_discovery=True,
    )
    with pytest.raises(ClientAuthenticationError, match="AADSTS700016"):
        stranger.get_token(SCOPE)
    with pytest.raises(ClientAuthenticationError, match="AADSTS500011"):
        apim.credential().get_token("api://unknown-resource/.default")


def test_arm_refuses_a_token_issued_for_another_audience() -> None:
    with FakeApim(other_audiences=["https://graph.microsoft.com"]) as fake:
        fake.add_service(SUB, RG, SVC)
        graph = fake.credential().get_token("https://graph.microsoft.com/.default").token
        response = _raw(
            fake,
            "GET",
            GW_PATH,
            params={"api-version": "2024-05-01"},
            headers={"Authorization": f"Bearer {graph}"},
        )
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "InvalidAuthenticationTokenAudience"
    assert "https://graph.microsoft.com" in error["message"]


def test_openid_metadata_and_instance_discovery(apim: FakeApim) -> None:
    meta = _raw(apim, "GET", f"/{apim.tenant_id}/v2.0/.well-known/openid-configuration").json()
    assert meta["token_endpoint"] == f"{apim.url}/{apim.tenant_id}/oauth2/v2.0/token"
    assert meta["issuer"].endswith("/v2.0")
    unknown = _raw(apim, "GET", "/not-a-tenant/v2.0/.well-known/openid-configuration")
    assert unknown.status_code == 400
    assert unknown.json()["error"] == "invalid_tenant"
    disc = _raw(
        apim,
        "GET",
        "/common/discovery/instance",
        params={
            "api-version": "1.1",
            "authorization_endpoint": f"{apim.url}/t1/oauth2/v2.0/authorize",
        },
    ).json()
    assert disc["tenant_discovery_endpoint"].endswith("/t1/v2.0/.well-known/openid-configuration")


# --------------------------------------------------------------------------- ARM request checks


def test_missing_and_wrong_api_version_are_400_with_arm_codes(apim: FakeApim) -> None:
    headers = _bearer(apim)
    missing = _raw(apim, "GET", f"{GW_PATH}/gateways/gw1", headers=headers)
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "MissingApiVersionParameter"
    wrong = _raw(
        apim,
        "GET",
        f"{GW_PATH}/gateways/gw1",
        headers=headers,
        params={"api-version": "2021-08-01"},
    )
    assert wrong.status_code == 400
    assert wrong.json()["error"]["code"] == "InvalidApiVersionParameter"
    assert "2024-05-01" in wrong.json()["error"]["message"]


def test_requests_without_a_valid_bearer_token_are_401(apim: FakeApim) -> None:
    params = {"api-version": "2024-05-01"}
    none = _raw(apim, "GET", f"{GW_PATH}/gateways/gw1", params=params)
    assert none.status_code == 401
    assert none.json()["error"]["code"] == "AuthenticationFailed"
    assert none.headers["WWW-Authenticate"].startswith("Bearer ")
    forged = _raw(
        apim,
        "GET",
        f"{GW_PATH}/gateways/gw1",
        params=params,
        headers={"Authorization": "Bearer eyJhbGciOiJub25lIn0.e30.c2ln"},
    )
    assert forged.status_code == 401
    assert forged.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_token_for_another_fake_is_refused(apim: FakeApim) -> None:
    with FakeApim() as other:
        foreign = _bearer(other)
    response = _raw(
        apim,
        "GET",
        f"{GW_PATH}/gateways/gw1",
        params={"api-version": "2024-05-01"},
        headers=foreign,
    )
    assert response.status_code == 401


def test_audience_of_a_sovereign_cloud_fake() -> None:
    china = "https://management.chinacloudapi.cn"
    with FakeApim(audience=china) as fake:
        fake.add_service(SUB, RG, SVC, hostname_suffix="azure-api.cn")
        with pytest.raises(ClientAuthenticationError, match="AADSTS500011"):
            fake.credential().get_token(SCOPE)
        client = ApiManagementClient(
            fake.credential(),
            SUB,
            base_url=fake.url,
            connection_verify=fake.ca_path,
            credential_scopes=[f"{china}/.default"],
        )
        with client:
            service = client.api_management_service.get(RG, SVC)
        assert service.gateway_url == "https://contoso.azure-api.cn"


def test_malformed_subscription_and_missing_resources_are_arm_404s(
    apim: FakeApim, sdk: ApiManagementClient
) -> None:
    headers = _bearer(apim)
    params = {"api-version": "2024-05-01"}
    bad = _raw(apim, "GET", GW_PATH.replace(SUB, "not-a-guid"), params=params, headers=headers)
    assert bad.json()["error"]["code"] == "InvalidSubscriptionId"
    other_sub = GW_PATH.replace(SUB, "00000000-0000-0000-0000-00000000abcd")
    assert (
        _raw(apim, "GET", other_sub, params=params, headers=headers).json()["error"]["code"]
        == "SubscriptionNotFound"
    )
    with pytest.raises(ResourceNotFoundError) as rg_missing:
        sdk.gateway.get("rg-missing", SVC, "gw1")
    assert rg_missing.value.error is not None
    assert rg_missing.value.error.code == "ResourceGroupNotFound"
    with pytest.raises(ResourceNotFoundError) as svc_missing:
        sdk.gateway.get(RG, "other", "gw1")
    assert svc_missing.value.error is not None
    assert "Microsoft.ApiManagement/service/other" in svc_missing.value.error.message
    with pytest.raises(ResourceNotFoundError) as gw_missing:
        sdk.gateway.get(RG, SVC, "nope")
    assert gw_missing.value.error is not None
    assert gw_missing.value.error.code == "ResourceNotFound"


def test_paths_are_case_insensitive_and_unknown_routes_404(apim: FakeApim) -> None:
    headers = _bearer(apim)
    params = {"api-version": "2024-05-01"}
    upper = GW_PATH.replace("resourceGroups", "RESOURCEGROUPS").replace(RG, RG.upper())
    assert (
        _raw(apim, "GET", f"{upper}/gateways/GW1", params=params, headers=headers).status_code
        == 200
    )
    assert _raw(apim, "GET", f"{GW_PATH}/apis", params=params, headers=headers).status_code == 404
    managed = _raw(apim, "GET", f"{GW_PATH}/gateways/managed", params=params, headers=headers)
    assert managed.json()["error"]["details"][0]["target"] == "gatewayId"


# --------------------------------------------------------------------------- gateway operations


def test_get_returns_the_contract_and_an_etag(apim: FakeApim, sdk: ApiManagementClient) -> None:
    body, headers = sdk.gateway.get(RG, SVC, "gw1", cls=lambda _r, b, h: (b, h))
    assert body.name == "gw1"
    assert body.description == "first"
    assert body.id == f"{GW_PATH}/gateways/gw1"
    assert headers["ETag"] == apim.gateway_etag(body.id)
    assert sdk.gateway.get_entity_tag(RG, SVC, "gw1") is True


def test_create_or_update_creates_201_then_updates_200_with_new_etag(
    apim: FakeApim, sdk: ApiManagementClient
) -> None:
    contract = GatewayContract(
        description="edge", location_data=ResourceLocationDataContract(name="dc-1", city="Oslo")
    )
    statuses: list[int] = []

    def keep(resp: Any, body: Any, headers: Any) -> Any:
        statuses.append(resp.http_response.status_code)
        return body, headers

    _, first = sdk.gateway.create_or_update(RG, SVC, "gw2", contract, cls=keep)
    _, second = sdk.gateway.create_or_update(
        RG, SVC, "gw2", contract, if_match=first["ETag"], cls=keep
    )
    assert statuses == [201, 200]
    assert first["ETag"] != second["ETag"]
    got = sdk.gateway.get(RG, SVC, "gw2")
    assert got.location_data.city == "Oslo"


def test_if_match_mismatch_is_412_and_nothing_changes(
    apim: FakeApim, sdk: ApiManagementClient
) -> None:
    stale = apim.gateway_etag(f"{GW_PATH}/gateways/gw1")
    apim.touch_gateway(f"{GW_PATH}/gateways/gw1")
    contract = GatewayContract(
        description="mine", location_data=ResourceLocationDataContract(name="x")
    )
    with pytest.raises(HttpResponseError) as err:
        sdk.gateway.create_or_update(RG, SVC, "gw1", contract, if_match=stale)
    assert err.value.status_code == 412
    assert err.value.error is not None
    assert err.value.error.code == "PreconditionFailed"
    assert sdk.gateway.get(RG, SVC, "gw1").description == "first"
    with pytest.raises(HttpResponseError) as missing:
        sdk.gateway.create_or_update(RG, SVC, "new-one", contract, if_match=stale)
    assert missing.value.status_code == 412


@pytest.mark.parametrize(
    ("properties", "target"),
    [
        ({"locationData": {"city": "Oslo"}}, "locationData.name"),
        ({"locationData": {"name": ""}}, "locationData.name"),
        ({"locationData": {"name": "x" * 257}}, "locationData.name"),
        ({"description": "d" * 1001}, "description"),
        ({"description": 5}, "description"),
    ],
)
def test_create_body_is_validated_per_spec(
    apim: FakeApim, properties: dict[str, Any], target: str
) -> None:
    response = _raw(
        apim,
        "PUT",
        f"{GW_PATH}/gateways/gw9",
        params={"api-version": "2024-05-01"},
        headers=_bearer(apim),
        json={"properties": properties},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "ValidationError"
    assert error["details"][0]["target"] == target
    assert not apim.has_gateway(f"{GW_PATH}/gateways/gw9")


def test_unparseable_body_is_invalid_request_content(apim: FakeApim) -> None:
    response = _raw(
        apim,
        "POST",
        f"{GW_PATH}/gateways/gw1/generateToken",
        params={"api-version": "2024-05-01"},
        headers={**_bearer(apim), "Content-Type": "application/json"},
        data=b"{not json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidRequestContent"


def test_delete_needs_a_matching_if_match_and_is_204_when_absent(
    apim: FakeApim, sdk: ApiManagementClient
) -> None:
    gid = f"{GW_PATH}/gateways/gw1"
    with pytest.raises(HttpResponseError) as err:
        sdk.gateway.delete(RG, SVC, "gw1", if_match='"stale"')
    assert err.value.status_code == 412
    no_header = _raw(
        apim,
        "DELETE",
        f"{GW_PATH}/gateways/gw1",
        params={"api-version": "2024-05-01"},
        headers=_bearer(apim),
    )
    assert no_header.status_code == 400
    codes: list[int] = []
    sdk.gateway.delete(
        RG,
        SVC,
        "gw1",
        if_match=apim.gateway_etag(gid),
        cls=lambda r, *_: codes.append(r.http_response.status_code),
    )
    sdk.gateway.delete(
        RG, SVC, "gw1", if_match="*", cls=lambda r, *_: codes.append(r.http_response.status_code)
    )
    assert codes == [200, 204]
    assert not apim.has_gateway(gid)


def test_list_by_service_pages_through_next_link(apim: FakeApim, sdk: ApiManagementClient) -> None:
    for name in ("gw2", "gw3", "gw4", "gw5"):
        apim.add_gateway(SUB, RG, SVC, name)
    apim.reset_requests()
    names = [g.name for g in sdk.gateway.list_by_service(RG, SVC)]
    assert names == ["gw1", "gw2", "gw3", "gw4", "gw5"]
    assert apim.request_count("Gateway_ListByService") == 3
    filtered = _raw(
        apim,
        "GET",
        f"{GW_PATH}/gateways",
        params={"api-version": "2024-05-01", "$filter": "name eq 'gw1'"},
        headers=_bearer(apim),
    )
    assert filtered.status_code == 400


def test_generate_token_signs_with_the_requested_key_and_expiry(
    apim: FakeApim, sdk: ApiManagementClient
) -> None:
    expiry = datetime(2030, 1, 1, 12, 34, 56, tzinfo=UTC)
    with FakeApim(clock=lambda: datetime(2029, 12, 20, tzinfo=UTC)) as fake:
        fake.add_service(SUB, RG, SVC)
        fake.add_gateway(SUB, RG, SVC, "gw1")
        client = ApiManagementClient(
            fake.credential(), SUB, base_url=fake.url, connection_verify=fake.ca_path
        )
        with client:
            value = client.gateway.generate_token(
                RG, SVC, "gw1", GatewayTokenRequestContract(key_type="secondary", expiry=expiry)
            ).value
        gateway_id, stamp, _sig = value.split("&")
        assert (gateway_id, stamp) == ("gw1", "203001011234")
        check = fake.validate_token(value)
        assert (check.status, check.key_type) == ("valid", "secondary")


@pytest.mark.parametrize(
    ("body", "target"),
    [
        ({"expiry": "2030-01-01T00:00:00Z"}, "keyType"),
        ({"keyType": "tertiary", "expiry": "2030-01-01T00:00:00Z"}, "keyType"),
        ({"keyType": "primary"}, "expiry"),
        ({"keyType": "primary", "expiry": "soon"}, "expiry"),
    ],
)
def test_generate_token_body_is_validated(
    apim: FakeApim, body: dict[str, Any], target: str
) -> None:
    response = _raw(
        apim,
        "POST",
        f"{GW_PATH}/gateways/gw1/generateToken",
        params={"api-version": "2024-05-01"},
        headers=_bearer(apim),
        json=body,
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["target"] == target


def test_generate_token_refuses_more_than_30_days_or_the_past(
    apim: FakeApim, sdk: ApiManagementClient
) -> None:
    for expiry in (_expiry(apim, 30.01), _expiry(apim, -1)):
        with pytest.raises(HttpResponseError) as err:
            sdk.gateway.generate_token(
                RG, SVC, "gw1", GatewayTokenRequestContract(key_type="primary", expiry=expiry)
            )
        assert err.value.status_code == 400
        assert "expiry" in str(err.value)
    ok = sdk.gateway.generate_token(
        RG, SVC, "gw1", GatewayTokenRequestContract(key_type="primary", expiry=_expiry(apim, 29.99))
    )
    assert apim.validate_token(ok.value).valid


def test_list_keys_returns_both_keys_and_the_etag(apim: FakeApim, sdk: ApiManagementClient) -> None:
    keys, headers = sdk.gateway.list_keys(RG, SVC, "gw1", cls=lambda _r, b, h: (b, h))
    assert len(keys.primary) == 88
    assert keys.primary != keys.secondary
    assert headers["ETag"] == apim.gateway_etag(f"{GW_PATH}/gateways/gw1")


def test_regenerate_key_invalidates_tokens_of_that_key_only(
    apim: FakeApim, sdk: ApiManagementClient
) -> None:
    def token(key_type: str) -> str:
        request = GatewayTokenRequestContract(key_type=key_type, expiry=_expiry(apim))
        return str(sdk.gateway.generate_token(RG, SVC, "gw1", request).value)

    primary, secondary = token("primary"), token("secondary")
    before = sdk.gateway.list_keys(RG, SVC, "gw1")
    codes: list[int] = []
    sdk.gateway.regenerate_key(
        RG,
        SVC,
        "gw1",
        GatewayKeyRegenerationRequestContract(key_type="primary"),
        cls=lambda r, *_: codes.append(r.http_response.status_code),
    )
    after = sdk.gateway.list_keys(RG, SVC, "gw1")
    assert codes == [204]
    assert after.primary != before.primary
    assert after.secondary == before.secondary
    assert apim.validate_token(primary).status == "invalidated"
    assert apim.validate_token(secondary).status == "valid"
    assert apim.validate_token(token("primary")).status == "valid"


def test_service_get_reports_gateway_url_and_custom_configuration_host(apim: FakeApim) -> None:
    apim.add_service(SUB, RG, "custom", configuration_api_hostname="config.contoso.example")
    client = ApiManagementClient(
        apim.credential(), SUB, base_url=apim.url, connection_verify=apim.ca_path
    )
    with client:
        plain = client.api_management_service.get(RG, SVC)
        custom = client.api_management_service.get(RG, "custom")
    assert plain.gateway_url == "https://contoso.azure-api.net"
    assert [h.type for h in plain.hostname_configurations] == ["Proxy"]
    assert plain.provisioning_state == "Succeeded"
    config = [h.host_name for h in custom.hostname_configurations if h.type == "ConfigurationApi"]
    assert config == ["config.contoso.example"]


# --------------------------------------------------------------------------- tokens and clock


def test_validate_token_accepts_prefix_secretstr_and_reports_every_state(apim: FakeApim) -> None:
    from pydantic import SecretStr

    gid = f"{GW_PATH}/gateways/gw1"
    value = apim.issue_token(gid, expiry=_expiry(apim, 1))
    assert apim.validate_token(value).valid
    assert apim.validate_token(f"GatewayKey {value}").valid
    assert apim.validate_token(SecretStr(value)).valid
    name, stamp, sig = value.split("&")
    assert apim.validate_token(f"{name}&{stamp}&{sig[:-4]}AAA=").status == "bad_signature"
    assert apim.validate_token(f"other&{stamp}&{sig}").status == "unknown_gateway"
    assert apim.validate_token(f"{name}&2030-01-01&{sig}").status == "malformed"
    apim.advance(timedelta(days=2))
    expired = apim.validate_token(value)
    assert (expired.status, expired.resource_id) == ("expired", gid)


def test_advance_moves_the_30_day_window(apim: FakeApim, sdk: ApiManagementClient) -> None:
    later = apim.advance(timedelta(days=40))
    result = sdk.gateway.generate_token(
        RG,
        SVC,
        "gw1",
        GatewayTokenRequestContract(key_type="primary", expiry=later + timedelta(days=29)),
    )
    assert apim.validate_token(result.value).valid
    with pytest.raises(ValueError, match="negative"):
        apim.advance(timedelta(seconds=-1))


# --------------------------------------------------------------------------- roles


def test_least_privilege_principal_gets_arm_authorization_failed(apim: FakeApim) -> None:
    rotator = apim.add_principal(actions=ROTATOR_ACTIONS)
    client = ApiManagementClient(
        apim.credential(rotator), SUB, base_url=apim.url, connection_verify=apim.ca_path
    )
    with client:
        assert client.gateway.get(RG, SVC, "gw1").name == "gw1"
        client.gateway.generate_token(
            RG, SVC, "gw1", GatewayTokenRequestContract(key_type="primary", expiry=_expiry(apim))
        )
        with pytest.raises(HttpResponseError) as err:
            client.gateway.list_keys(RG, SVC, "gw1")
        with pytest.raises(HttpResponseError) as missing:
            client.gateway.list_keys(RG, SVC, "does-not-exist")
    assert err.value.status_code == 403
    assert err.value.error is not None
    assert err.value.error.code == "AuthorizationFailed"
    message = err.value.error.message
    assert f"The client '{rotator.client_id}' with object id '{rotator.object_id}'" in message
    assert "'Microsoft.ApiManagement/service/gateways/listKeys/action'" in message
    assert f"over scope '{GW_PATH}/gateways/gw1'" in message
    assert missing.value.status_code == 403  # authorization comes before existence


def test_set_actions_with_wildcards(apim: FakeApim) -> None:
    reader = apim.add_principal(actions=["Microsoft.ApiManagement/service/gateways/*"])
    client = ApiManagementClient(
        apim.credential(reader), SUB, base_url=apim.url, connection_verify=apim.ca_path
    )
    with client:
        assert client.gateway.list_keys(RG, SVC, "gw1").primary
        apim.set_actions(reader, ["*/read"])
        with pytest.raises(HttpResponseError) as err:
            client.gateway.list_keys(RG, SVC, "gw1")
        assert err.value.status_code == 403
        assert client.api_management_service.get(RG, SVC).name == SVC


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("throttle", 429, "TooManyRequests"),
        ("server_error", 500, "InternalServerError"),
        ("unavailable", 503, "ServiceUnavailable"),
        ("unauthorized", 401, "InvalidAuthenticationToken"),
        ("forbidden", 403, "AuthorizationFailed"),
    ],
)
def test_error_faults_hit_the_chosen_operation_for_n_calls(
    apim: FakeApim, sdk: ApiManagementClient, kind: Any, status: int, code: str
) -> None:
    fault = apim.inject_fault(kind, operation="Gateway_ListKeys", times=2, retry_after=3)
    assert sdk.gateway.get(RG, SVC, "gw1").name == "gw1"  # other operations are untouched
    for _ in range(2):
        with pytest.raises(HttpResponseError) as err:
            sdk.gateway.list_keys(RG, SVC, "gw1")
        assert err.value.status_code == status
        assert err.value.error is not None
        assert err.value.error.code == code
        if kind in ("throttle", "unavailable"):
            assert err.value.response is not None
            assert err.value.response.headers["Retry-After"] == "3"
    assert sdk.gateway.list_keys(RG, SVC, "gw1").primary
    assert (fault.hits, fault.remaining) == (2, 0)


def test_forbidden_fault_names_the_operation_action(
    apim: FakeApim, sdk: ApiManagementClient
) -> None:
    apim.inject_fault("forbidden", operation="Gateway_GenerateToken")
    with pytest.raises(HttpResponseError) as err:
        sdk.gateway.generate_token(
            RG, SVC, "gw1", GatewayTokenRequestContract(key_type="primary", expiry=_expiry(apim))
        )
    assert "gateways/generateToken/action" in str(err.value)


def test_dropped_connection_is_a_transport_error(apim: FakeApim, sdk: ApiManagementClient) -> None:
    apim.inject_fault("drop", operation="Gateway_Get")
    with pytest.raises((ServiceRequestError, ServiceResponseError)):
        sdk.gateway.get(RG, SVC, "gw1")
    assert sdk.gateway.get(RG, SVC, "gw1").name == "gw1"
    statuses = [r.status for r in apim.requests if r.operation == "Gateway_Get"]
    assert statuses == [None, 200]


def test_latency_fault_delays_but_serves(apim: FakeApim, sdk: ApiManagementClient) -> None:
    fault = apim.inject_fault("latency", operation="Gateway_Get", delay=0.01, times=None)
    assert sdk.gateway.get(RG, SVC, "gw1").name == "gw1"
    assert sdk.gateway.get(RG, SVC, "gw1").name == "gw1"
    assert fault.hits == 2
    assert fault.remaining is None


def test_rate_faults_follow_the_seeded_probability(
    apim: FakeApim, sdk: ApiManagementClient
) -> None:
    never = apim.inject_fault("server_error", operation="Gateway_Get", times=None, rate=0.0)
    for _ in range(3):
        sdk.gateway.get(RG, SVC, "gw1")
    assert never.hits == 0
    never.remove()
    half = apim.inject_fault("server_error", operation="Gateway_Get", times=20, rate=0.5)
    failures = 0
    for _ in range(20):
        try:
            sdk.gateway.get(RG, SVC, "gw1")
        except HttpResponseError:
            failures += 1
    assert failures == half.hits
    assert 0 < failures < 20


def test_entra_token_fault_breaks_the_credential(apim: FakeApim) -> None:
    fault = apim.inject_fault("server_error", operation="Entra_Token", times=None)
    with pytest.raises(ClientAuthenticationError):
        apim.credential(retry_total=0).get_token(SCOPE)
    assert fault.hits >= 1
    fault.remove()
    apim.inject_fault("throttle", operation="Entra_Token", retry_after=0)
    answer = _raw(apim, "POST", f"/{apim.tenant_id}/oauth2/v2.0/token", data={"x": "y"})
    assert (answer.status_code, answer.json()["error"]) == (429, "temporarily_unavailable")
    assert apim.credential().get_token(SCOPE).token


def test_fault_on_every_arm_operation_leaves_entra_alone(
    apim: FakeApim, sdk: ApiManagementClient
) -> None:
    apim.inject_fault("unavailable", times=1)
    with pytest.raises(HttpResponseError) as err:
        sdk.gateway.get(RG, SVC, "gw1")  # the credential's token requests were not hit
    assert err.value.status_code == 503
    apim.clear_faults()


def test_on_request_hook_runs_before_the_request_is_served(
    apim: FakeApim, sdk: ApiManagementClient
) -> None:
    gid = f"{GW_PATH}/gateways/gw1"
    etag = apim.gateway_etag(gid)
    apim.on_request("Gateway_CreateOrUpdate", lambda: apim.touch_gateway(gid))
    with pytest.raises(HttpResponseError) as err:
        sdk.gateway.create_or_update(
            RG,
            SVC,
            "gw1",
            GatewayContract(location_data=ResourceLocationDataContract(name="x")),
            if_match=etag,
        )
    assert err.value.status_code == 412


# --------------------------------------------------------------------------- concurrency, counting


def test_concurrent_token_requests_are_served_and_counted(
    apim: FakeApim, sdk: ApiManagementClient
) -> None:
    sdk.gateway.get(RG, SVC, "gw1")  # credential warmed up
    apim.reset_requests()
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(5):
                request = GatewayTokenRequestContract(key_type="primary", expiry=_expiry(apim))
                results.append(str(sdk.gateway.generate_token(RG, SVC, "gw1", request).value))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 30
    assert all(apim.validate_token(v).valid for v in results)
    assert apim.request_count("Gateway_GenerateToken") == 30
    assert apim.request_count(arm_only=True) == 30


def test_start_twice_and_authority_before_start() -> None:
    fake = FakeApim()
    with pytest.raises(RuntimeError, match="not running"):
        _ = fake.authority
    with fake, pytest.raises(RuntimeError, match="already running"):
        fake.start()
    with pytest.raises(ValueError, match="GUID"):
        fake.add_service("sub", RG, SVC)
    with pytest.raises(ValueError, match="page_size"):
        FakeApim(page_size=0)


def test_patch_update_merges_properties_under_if_match(
    apim: FakeApim, sdk: ApiManagementClient
) -> None:
    gid = f"{GW_PATH}/gateways/gw1"
    etag = apim.gateway_etag(gid)
    updated = sdk.gateway.update(
        RG, SVC, "gw1", if_match=etag, parameters=GatewayContract(description="patched")
    )
    assert updated.description == "patched"
    assert updated.location_data.name == "on-premises"  # untouched
    with pytest.raises(HttpResponseError) as err:
        sdk.gateway.update(RG, SVC, "gw1", if_match=etag, parameters=GatewayContract())
    assert err.value.status_code == 412


def test_head_of_a_missing_gateway_is_404(sdk: ApiManagementClient) -> None:
    with pytest.raises(ResourceNotFoundError):
        sdk.gateway.get_entity_tag(RG, SVC, "nope")


def test_top_and_skip_select_a_page(apim: FakeApim) -> None:
    for name in ("gw2", "gw3"):
        apim.add_gateway(SUB, RG, SVC, name)
    page = _raw(
        apim,
        "GET",
        f"{GW_PATH}/gateways",
        params={"api-version": "2024-05-01", "$top": "1", "$skip": "1"},
        headers=_bearer(apim),
    ).json()
    assert [g["name"] for g in page["value"]] == ["gw2"]
    assert "$skip=2" in page["nextLink"]
    assert page["count"] == 3
    bad = _raw(
        apim,
        "GET",
        f"{GW_PATH}/gateways",
        params={"api-version": "2024-05-01", "$top": "0"},
        headers=_bearer(apim),
    )
    assert bad.status_code == 400


def test_the_fakes_internal_state_keeps_keys_and_secrets_out_of_repr() -> None:
    # Tracebacks and test debug output print these objects; the keys must not show.
    from apim_selfhosted.testing.apim._state import GatewayState, PrincipalState

    gateway = GatewayState(name="gw1", resource_id="/x/gateways/gw1")
    gateway.regenerate("primary")
    shown = repr(gateway)
    assert "gw1" in shown
    for secret in (gateway.primary, gateway.secondary, *(k for _, k in gateway.old_keys)):
        assert secret not in shown
    principal = PrincipalState(
        client_id="app", client_secret="hunter2-secret", object_id="o", actions=None
    )
    assert "hunter2-secret" not in repr(principal)
