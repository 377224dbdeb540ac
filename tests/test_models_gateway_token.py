"""Gateway, AzureCloud, KeyType and Token: the names every other module codes against."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from apim_selfhosted import AzureCloud, Gateway, KeyType, Token, TokenError

SIG = "9A1GR1f5WIhFvFmzQG+abcdefghij/kBeu87DWad3tkasUXuvPL+MgzlwUHyg=="
SUB = "00000000-0000-0000-0000-000000000000"


def gw(**kw: object) -> Gateway:
    args: dict[str, object] = {
        "subscription_id": SUB,
        "resource_group": "rg1",
        "service_name": "apimService1",
        "name": "gw1",
    }
    args.update(kw)
    return Gateway.model_validate(args)


# --- AzureCloud ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cloud", "arm", "authority", "suffix"),
    [
        ("public", "https://management.azure.com", "login.microsoftonline.com", "azure-api.net"),
        ("china", "https://management.chinacloudapi.cn", "login.chinacloudapi.cn", "azure-api.cn"),
        (
            "usgov",
            "https://management.usgovcloudapi.net",
            "login.microsoftonline.us",
            "azure-api.us",
        ),
    ],
)
def test_clouds_name_their_endpoints(cloud: str, arm: str, authority: str, suffix: str) -> None:
    c = AzureCloud(cloud)
    assert c.arm_endpoint == arm
    assert c.credential_scope == f"{arm}/.default"
    assert c.authority_host == authority
    assert c.config_endpoint_suffix == f"configuration.{suffix}"
    assert gw(cloud=cloud).config_endpoint_url == f"https://apimService1.configuration.{suffix}"


# --- Gateway ------------------------------------------------------------------------------


def test_gateway_ids_and_endpoint() -> None:
    g = gw()
    base = f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.ApiManagement"
    assert g.service_resource_id == f"{base}/service/apimService1"
    assert g.resource_id == f"{base}/service/apimService1/gateways/gw1"
    assert g.config_endpoint_url == "https://apimService1.configuration.azure-api.net"
    assert g.cloud is AzureCloud.PUBLIC
    assert str(g) == "apimService1/gw1"


@pytest.mark.parametrize(
    "given",
    [
        "custom.example.com",
        "https://custom.example.com",
        "https://custom.example.com/",
        " custom.example.com ",
    ],
)
def test_config_endpoint_override_is_normalised(given: str) -> None:
    assert gw(config_endpoint=given).config_endpoint_url == "https://custom.example.com"


def test_v1_endpoint_is_refused_with_the_replacement() -> None:
    v1 = f"https://apimService1.management.azure-api.net/subscriptions/{SUB}/resourceGroups/rg1"
    with pytest.raises(ValidationError) as info:
        gw(config_endpoint=v1)
    text = str(info.value)
    assert "retired" in text
    assert "configuration.azure-api.net" in text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subscription_id", "a/b"),
        ("resource_group", "rg."),
        ("resource_group", ""),
        ("service_name", "1bad"),
        ("service_name", "x" * 51),
        ("name", "bad name"),
        ("name", "managed"),
        ("config_endpoint", "http://plain.example.com"),
        ("cloud", "mars"),
    ],
)
def test_bad_gateway_fields_are_named(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as info:
        gw(**{field: value})
    assert field in str(info.value)


def test_gateway_is_frozen_and_strict() -> None:
    g = gw()
    with pytest.raises(ValidationError):
        g.name = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        gw(unknown="x")


# --- KeyType ------------------------------------------------------------------------------


def test_key_type_other() -> None:
    assert KeyType.PRIMARY.other is KeyType.SECONDARY
    assert KeyType.SECONDARY.other is KeyType.PRIMARY
    assert KeyType("secondary") == "secondary"


# --- Token --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f"GatewayKey gw1&202611270418&{SIG}",
        f"gw1&202611270418&{SIG}",
        f"  gw1&202611270418&{SIG}\n",
        f'"GatewayKey gw1&202611270418&{SIG}"\n',
        f"'gw1&202611270418&{SIG}'",
        f"gatewaykey  gw1&202611270418&{SIG}",
    ],
)
def test_token_parse_both_forms(text: str) -> None:
    t = Token.parse(text)
    assert t.value.get_secret_value() == f"GatewayKey gw1&202611270418&{SIG}"
    assert t.expires_on == datetime(2026, 11, 27, 4, 18, tzinfo=UTC)
    assert t.expires_on.tzinfo is UTC
    assert t.gateway_id == "gw1"
    assert t.key_type is KeyType.PRIMARY


def test_token_forms_have_the_same_fingerprint() -> None:
    a = Token.parse(f"GatewayKey gw1&202611270418&{SIG}")
    b = Token.parse(f"gw1&202611270418&{SIG}")
    assert a.fingerprint == b.fingerprint
    assert re.fullmatch(r"[0-9a-f]{12}", a.fingerprint)  # 12 lower-case hex digits
    assert a.fingerprint != Token.parse(f"gw1&202611270418&x{SIG}").fingerprint


def test_token_never_shows_its_value() -> None:
    t = Token.parse(f"gw1&202611270418&{SIG}", key_type="secondary")
    for text in (repr(t), str(t), f"{t}", t.model_dump_json()):
        assert SIG not in text
    assert "secondary" in str(t)
    assert t.fingerprint in repr(t)


def test_token_remaining_and_expires_within() -> None:
    t = Token.parse(f"gw1&202611270418&{SIG}")
    now = datetime(2026, 11, 20, 4, 18, tzinfo=UTC)
    assert t.remaining(now) == timedelta(days=7)
    assert not t.expires_within(timedelta(days=7), now)
    assert t.expires_within(timedelta(days=7, seconds=1), now)
    assert t.remaining(datetime(2026, 11, 28, tzinfo=UTC)) < timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "GatewayKey ",
        f"gw1&{SIG}",
        f"gw1&20261127041&{SIG}",
        f"gw1&202613270418&{SIG}",
        "gw1&202611270418&",
        "gw1&202611270418&not base64!",
        f"&202611270418&{SIG}",
        f"gw1&202611270418&{SIG}&extra",
    ],
)
def test_malformed_tokens_are_refused_without_echo(text: str) -> None:
    with pytest.raises(TokenError) as info:
        Token.parse(text)
    assert SIG not in str(info.value)
    assert "malformed" in str(info.value)


@pytest.mark.parametrize("text", ["", "  \n", "GatewayKey ", "''"])
def test_an_empty_token_says_it_is_empty(text: str) -> None:
    with pytest.raises(TokenError, match="it is empty"):
        Token.parse(text)


def test_token_for_another_gateway_is_refused() -> None:
    with pytest.raises(TokenError, match="gw2") as info:
        Token.parse(f"gw2&202611270418&{SIG}", gateway=gw())
    assert SIG not in str(info.value)
    assert Token.parse(f"GW1&202611270418&{SIG}", gateway=gw()).gateway_id == "GW1"
    assert Token.parse(f"gw1&202611270418&{SIG}", gateway="gw1").gateway_id == "gw1"


def test_token_with_more_than_30_days_is_refused() -> None:
    now = datetime(2026, 10, 1, tzinfo=UTC)
    with pytest.raises(TokenError, match="30 days"):
        Token.parse(f"gw1&202611270418&{SIG}", now=now)
    ok = Token.parse(f"gw1&202610310000&{SIG}", now=now)
    assert ok.remaining(now) == timedelta(days=30)
    with pytest.raises(TokenError, match="aware"):
        Token.parse(f"gw1&202610310000&{SIG}", now=datetime(2026, 10, 1))


def test_token_bad_key_type() -> None:
    with pytest.raises(TokenError, match="primary"):
        Token.parse(f"gw1&202611270418&{SIG}", key_type="tertiary")


def test_token_constructor_normalises_and_checks() -> None:
    t = Token(value=f"gw1&202611270418&{SIG}", key_type=KeyType.SECONDARY)  # type: ignore[arg-type]
    assert t == Token.parse(f"gw1&202611270418&{SIG}", key_type="secondary")
    exact = datetime(2026, 11, 27, 4, 18, 30, tzinfo=UTC)
    assert Token(value=f"gw1&202611270418&{SIG}", expires_on=exact).expires_on == exact  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as info:
        Token(
            value=f"gw1&202611270418&{SIG}",  # type: ignore[arg-type]
            expires_on=datetime(2026, 12, 1, tzinfo=UTC),
        )
    assert SIG not in str(info.value)
    with pytest.raises(ValidationError) as info:
        Token(value=f"gw1&2026&{SIG}")  # type: ignore[arg-type]
    assert SIG not in str(info.value)
