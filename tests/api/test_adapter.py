"""The operator adapter (STEPUP_ADAPTER) and the one catalogue of error texts, seen from
outside: the API's ``detail`` and the pages tell the same text, and an operator's adapter
changes a text, the issuer, the QR code and refuses a disable — through the API and on
the pages alike."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import ClassVar
from urllib.parse import parse_qs, unquote, urlparse

import httpx
import pytest

from stepup.adapter import Adapter
from stepup.config import Settings
from stepup.domain.clock import FrozenClock
from stepup.domain.texts import ERRORS
from stepup.i18n import translations
from stepup.store.models import App, User
from tests.api.helpers import PIN, auth, enable_totp, problem, session_for, totp_now
from tests.pages import helpers as pages

ENROLL = "/api/v1/me/methods/totp/enrollment"
PIN_TEXT = "That PIN is not the one you chose (words of Acme)."
REQUIRED_RU = "Acme требует приложение-аутентификатор: его нельзя отключить."
QR = '<svg xmlns="http://www.w3.org/2000/svg" data-operator="acme"><desc>{}</desc></svg>'


class AcmeAdapter(Adapter):
    """What an operator writes: its own words for one error, its brand in authenticator
    apps, its own QR code, and a rule that the authenticator app stays on."""

    error_messages: ClassVar[Mapping[str, str]] = {"pin_invalid": PIN_TEXT}

    def error_text(self, key: str, default: str, lang: str) -> str:
        if key == "method_required" and lang == "ru":
            return REQUIRED_RU
        return super().error_text(key, default, lang)

    def issuer(self, app: App | None) -> str:
        return "Acme Bank"

    def totp_qr_svg(self, uri: str) -> str:
        return QR.format(escape(uri))

    def may_disable(self, user: User, method_type: str) -> bool:
        return method_type != "totp"


@pytest.fixture
def settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The test settings, with the adapter named the way an operator names it."""
    monkeypatch.setenv("STEPUP_ADAPTER", f"{__name__}:AcmeAdapter")
    return Settings(data_dir=settings.data_dir, database_url=settings.database_url,
                    issuer=settings.issuer, public_url=settings.public_url)


async def test_the_adapter_is_the_one_named_in_the_configuration(settings: Settings,
                                                                  runtime: object) -> None:
    assert settings.adapter == f"{__name__}:AcmeAdapter"
    assert type(runtime.adapter) is AcmeAdapter  # type: ignore[attr-defined]


async def test_the_issuer_and_the_qr_code_come_from_the_adapter(
        client: httpx.AsyncClient) -> None:
    await pages.sign_up(client)  # a page session (cookie); the API's token next
    token = await session_for(client)
    r = await client.post(ENROLL, json={"pin": PIN}, headers=auth(token))
    assert r.status_code == 200, r.text
    body = r.json()
    uri = body["otpauth_uri"]
    assert parse_qs(urlparse(uri).query)["issuer"] == ["Acme Bank"]
    assert unquote(urlparse(uri).path).startswith("/Acme Bank:")
    assert body["qr_svg"] == QR.format(escape(uri))

    html = await pages.get(client, "/settings/methods/totp/enable")
    html = pages.check(await pages.submit(client, html, "/settings/methods/totp/enable",
                                          pin=PIN))
    assert 'data-operator="acme"' in html and "issuer=Acme%20Bank" in html
    assert "Issuer: Acme Bank" in html  # what the page says is what the app shows


async def test_an_overridden_text_is_the_api_detail_and_the_page_message(
        client: httpx.AsyncClient) -> None:
    await pages.sign_up(client)  # a page session (cookie); the API's token next
    token = await session_for(client)
    r = await client.post(ENROLL, json={"pin": "999999"}, headers=auth(token))
    assert problem(r, 400, "pin_invalid")["detail"] == PIN_TEXT
    # Every language: the operator's words replace StepUp's.
    r = await client.post(ENROLL, json={"pin": "999999"},
                          headers={**auth(token), "Accept-Language": "ru"})
    assert problem(r, 400, "pin_invalid")["detail"] == PIN_TEXT

    html = await pages.get(client, "/settings/methods/totp/enable")
    r = await pages.submit(client, html, "/settings/methods/totp/enable", pin="999999")
    assert escape(PIN_TEXT) in pages.check(r, 400)


async def test_the_adapter_refuses_a_disable_in_the_api_and_on_the_page(
        client: httpx.AsyncClient, clock: FrozenClock) -> None:
    await pages.sign_up(client)  # a page session (cookie); the API's token next
    token = await session_for(client)
    secret = await enable_totp(client, token, clock)
    r = await client.post("/api/v1/me/methods/totp/disable",
                          json={"code": totp_now(secret, clock)}, headers=auth(token))
    body = problem(r, 409, "method_required")
    assert body["detail"] == ERRORS["method_required"].message
    assert body["retryable"] is False
    r = await client.post("/api/v1/me/methods/totp/disable",
                          json={"code": totp_now(secret, clock)},
                          headers={**auth(token), "Accept-Language": "ru"})
    assert problem(r, 409, "method_required")["detail"] == REQUIRED_RU
    assert r.headers["content-language"] == "ru"

    # The refusal spent no code: the same code still proves the method.
    r = await client.patch("/api/v1/me/methods/totp",
                           json={"code": totp_now(secret, clock), "protects": {"login": True}},
                           headers=auth(token))
    assert r.status_code == 200, r.text
    clock.advance(30)

    html = await pages.get(client, "/settings/methods/totp/disable")
    r = await pages.submit(client, html, "/settings/methods/totp/disable",
                           code=totp_now(secret, clock))
    assert escape(ERRORS["method_required"].message) in pages.check(r, 409)
    r = await client.get("/api/v1/me/methods", headers=auth(token))
    assert any(m["type"] == "totp" and m["enabled"] for m in r.json()["methods"]), r.json()


async def test_the_api_and_the_page_tell_one_catalogue_text(
        client: httpx.AsyncClient) -> None:
    """Without an override: the same entry, in English and in Russian, in both."""
    await pages.sign_up(client, language="ru")
    token = await session_for(client)
    ru = translations("ru").gettext(ERRORS["invalid_code"].message)
    assert ru != ERRORS["invalid_code"].message
    r = await client.post("/api/v1/me/methods/backup_codes/enrollment", json={"pin": PIN},
                          headers=auth(token))
    assert r.status_code == 201, r.text
    r = await client.post("/api/v1/me/methods/backup_codes/disable",
                          json={"code": "zzzzz-zzzzz"}, headers=auth(token))
    assert problem(r, 400, "invalid_code")["detail"] == ERRORS["invalid_code"].message
    r = await client.post("/api/v1/me/methods/backup_codes/disable",
                          json={"code": "zzzzz-zzzzz"},
                          headers={**auth(token), "Accept-Language": "ru;q=0.9, en;q=0.1"})
    assert problem(r, 400, "invalid_code")["detail"] == ru

    html = await pages.get(client, "/settings/methods/backup_codes/disable")
    r = await pages.submit(client, html, "/settings/methods/backup_codes/disable",
                           code="zzzzz-zzzzz")
    assert escape(ru) in pages.check(r, 400)
