"""Real delivery through the API: Twilio (SMS, WhatsApp), Meta WhatsApp Cloud API and
SMTP, the localised texts they carry, and what a provider failure leaves behind: a
plain 502, nothing enabled, nothing counted, the reason in the log and the audit trail."""

from __future__ import annotations

import logging
import socket
import time

import pytest

from stepup.config import Settings
from tests.api.conftest import StartStack
from tests.api.helpers import (
    EMAIL,
    login_token,
    method_view,
    problem,
    session_for,
    sign_up,
    verify,
)
from tests.api.oob_support import (
    EMAIL_FROM,
    RU_MOBILE,
    TWILIO_FROM,
    TWILIO_SID,
    TWILIO_TOKEN,
    TWILIO_WA_FROM,
    UK_MOBILE,
    Stack,
    closed_port,
    production_settings,
)
from tests.support.providers import ProviderServer, Scripted


async def user(stack: Stack, language: str = "en", email: str = EMAIL) -> str:
    r = await stack.client.post("/api/v1/accounts", json={
        "email": email, "password": "violet-harbour-7-lanterns", "pin": "417293",
        "language": language})
    assert r.status_code == 201, r.text
    return await session_for(stack.client, email)


# --- what is sent, and how ------------------------------------------------------------


async def test_twilio_sms_request(stack: Stack) -> None:
    token = await user(stack)
    await stack.enroll(token, "sms", phone=RU_MOBILE)
    (req,) = stack.api.received
    assert req.path == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    assert req.basic_auth == (TWILIO_SID, TWILIO_TOKEN)
    assert req.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert req.form["To"] == RU_MOBILE and req.form["From"] == TWILIO_FROM


async def test_twilio_whatsapp_request(stack: Stack) -> None:
    token = await user(stack)
    await stack.enroll(token, "whatsapp", phone=UK_MOBILE)
    (req,) = stack.api.received
    assert req.path == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    assert req.basic_auth == (TWILIO_SID, TWILIO_TOKEN)
    assert req.form["To"] == f"whatsapp:{UK_MOBILE}"
    assert req.form["From"] == f"whatsapp:{TWILIO_WA_FROM}"
    assert "StepUp Test" in req.form["Body"] and "to enable WhatsApp codes" in req.form["Body"]


async def test_sms_text_names_service_and_purpose_and_ends_with_the_autofill_line(
        stack: Stack) -> None:
    token = await user(stack)
    await stack.enroll(token, "sms", phone=RU_MOBILE)
    body = stack.sms_to(RU_MOBILE)[-1]
    code = stack.last_code("sms", RU_MOBILE)
    lines = body.splitlines()
    assert lines[-1] == f"@testserver #{code}"
    assert lines[0] == f"StepUp Test: {code} is your security code to enable SMS codes."
    assert "5 minutes" in body
    assert "http" not in body.lower() and "www." not in body.lower()
    await stack.confirm(token, "sms", code)
    stack.clock.advance(61)
    lt = await login_token(stack.client)
    await stack.login_challenge(lt, "sms")
    body = stack.sms_to(RU_MOBILE)[-1]
    assert "to log in" in body and "http" not in body.lower()
    assert body.splitlines()[-1] == f"@testserver #{stack.last_code('sms', RU_MOBILE)}"


async def test_russian_user_gets_russian_messages(stack: Stack) -> None:
    token = await user(stack, language="ru")
    await stack.enable(token, "sms", RU_MOBILE, phone=RU_MOBILE)
    body = stack.sms_to(RU_MOBILE)[-1]
    code = body.splitlines()[-1].split("#")[1]
    assert body.splitlines()[0] == (
        f"StepUp Test: {code} — ваш код подтверждения для включения СМС-кодов."), body
    assert "Никому его не сообщайте" in body
    assert body.splitlines()[-1] == f"@testserver #{code}"
    assert "security code" not in body and "http" not in body

    r = await stack.enroll(token, "email")
    assert r.status_code == 202
    (mail,) = stack.mail_to(EMAIL)
    assert mail["Subject"].startswith("Код подтверждения StepUp Test")
    plain = mail.get_body(preferencelist=("plain",))
    assert plain is not None and "ваш код подтверждения" in plain.get_content()

    stack.clock.advance(61)
    lt = await login_token(stack.client)
    await stack.login_challenge(lt, "sms")
    assert "для входа" in stack.sms_to(RU_MOBILE)[-1]


async def test_email_has_text_and_html_from_the_configured_sender(stack: Stack) -> None:
    token = await user(stack)
    await stack.enroll(token, "email")
    (mail,) = stack.mail_to(EMAIL)
    assert mail["From"] == EMAIL_FROM
    assert mail["Subject"] == "StepUp Test security code to enable e-mail codes"
    plain = mail.get_body(preferencelist=("plain",))
    html = mail.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    code = stack.last_code("email", EMAIL)
    assert code in plain.get_content() and code in html.get_content()
    assert "<p>" in html.get_content()
    assert mail.get_content_type() == "multipart/alternative"


async def test_meta_whatsapp_sends_the_authentication_template(
        start_stack: StartStack, api: ProviderServer) -> None:
    stack = await start_stack(whatsapp_provider="meta", meta_access_token="EAAB",
                              meta_phone_number_id="1055", meta_template="stepup_code",
                              meta_base_url=api.url)
    token = await user(stack, language="ru")
    r = await stack.enroll(token, "whatsapp", phone=UK_MOBILE)
    assert r.status_code == 202, r.text
    (req,) = stack.api.received
    assert req.path == "/1055/messages"
    assert req.headers["authorization"] == "Bearer EAAB"
    body = req.json
    assert body["messaging_product"] == "whatsapp" and body["type"] == "template"
    assert body["to"] == UK_MOBILE.lstrip("+")
    assert body["template"]["name"] == "stepup_code"
    assert body["template"]["language"] == {"code": "ru"}
    params = [c["parameters"][0]["text"] for c in body["template"]["components"]]
    assert len(params) == 2 and params[0] == params[1] and params[0].isdigit()
    r = await stack.confirm(token, "whatsapp", params[0])
    assert r.status_code == 200 and r.json()["enabled"] is True, r.text
    # Logging in through the same template; SMS still goes to Twilio.
    stack.clock.advance(61)
    lt = await login_token(stack.client)
    assert (await stack.login_challenge(lt, "whatsapp")).status_code == 202
    code = stack.api.received[-1].json["template"]["components"][0]["parameters"][0]["text"]
    assert (await verify(stack.client, lt, "whatsapp", code)).status_code == 200
    assert not any(r.path.endswith("Messages.json") for r in stack.api.received)


# --- failures -------------------------------------------------------------------------


def no_provider_internals(body: dict[str, object], *words: str) -> None:
    assert set(body) <= {"type", "title", "status", "detail", "code", "retryable"}, body
    text = f"{body['title']} {body['detail']}".lower()
    for word in ("twilio", "meta", "smtp", "http", "21211", "131026", "535", "503",
                 "fbtrace", *words):
        assert word.lower() not in text, (word, body)


async def test_provider_4xx_gives_a_plain_502_and_leaves_nothing_half_done(
        start_stack: StartStack, caplog: pytest.LogCaptureFixture) -> None:
    stack = await start_stack(sends_per_destination_per_hour=1, sends_per_account_per_hour=1,
                              sends_per_ip_per_hour=1)
    token = await user(stack)
    stack.api.script.append(ProviderServer.twilio_error(
        400, 21606, "The 'From' phone number provided is not a valid message-capable number"))
    with caplog.at_level(logging.WARNING, logger="stepup.delivery"):
        r = await stack.enroll(token, "sms", phone=RU_MOBILE)
    body = problem(r, 502, "delivery_failed")
    assert body["detail"] == ("We could not send the code by SMS right now. Nothing was "
                              "changed: please try again in a few minutes, or use another "
                              "method.")
    assert body["retryable"] is True
    no_provider_internals(body, "21606")
    assert "21606" in caplog.text  # the provider's error is logged
    assert len(stack.api.received) == 1  # never a retry on a 4xx
    (event,) = await stack.audit("delivery.failed")
    assert event.data["provider"] == "twilio" and event.data["status"] == 400
    assert "21606" in event.data["reason"] and event.data["method"] == "sms"
    assert await stack.audit("code.sent") == []
    # Nothing enabled, nothing pending, no code kept.
    view = await method_view(stack.client, token, "sms")
    assert view["enabled"] is False and view["pending"] is False
    assert await stack.codes() == []
    # Neither the cooldown nor the caps (all set to 1) block an immediate retry.
    r = await stack.enroll(token, "sms", phone=RU_MOBILE)
    assert r.status_code == 202, r.text
    r = await stack.confirm(token, "sms", stack.last_code("sms", RU_MOBILE))
    assert r.status_code == 200, r.text
    me = await stack.me(token)
    assert me["verification_grade"] == 1


@pytest.mark.parametrize("answer", [Scripted(503, {"message": "Service unavailable"}),
                                    Scripted(500, {}),
                                    ProviderServer.twilio_error(401, 20003, "Authenticate"),
                                    ProviderServer.twilio_error(429, 20429, "Too Many")])
async def test_provider_errors_are_answered_502_without_retry(stack: Stack,
                                                              answer: Scripted) -> None:
    token = await user(stack)
    stack.api.script.append(answer)
    body = problem(await stack.enroll(token, "whatsapp", phone=UK_MOBILE), 502,
                   "delivery_failed")
    no_provider_internals(body, "20003", "20429", "whatsapp:")
    assert "WhatsApp" in body["detail"]
    assert len(stack.api.received) == 1
    assert (await method_view(stack.client, token, "whatsapp"))["pending"] is False
    (event,) = await stack.audit("delivery.failed")
    assert event.data["status"] == answer.status


async def test_a_provider_that_does_not_answer_times_out_in_5_seconds(stack: Stack) -> None:
    token = await user(stack)
    stack.api.script.append(Scripted(201, {"sid": "SMlate"}, delay=6.5))
    started = time.monotonic()
    r = await stack.enroll(token, "sms", phone=RU_MOBILE)
    # It waited the 5 s our provider timeout allows; and it did stop there: had our
    # timeout not fired, the late 201 would have enabled the method instead of the 502
    # below. (No tighter upper bound: the rest of the request's work, under a loaded CI
    # machine, is not what this test measures.)
    assert time.monotonic() - started > 4.5
    no_provider_internals(problem(r, 502, "delivery_failed"))
    assert len(stack.api.received) == 1  # it may have the message: no second send
    (event,) = await stack.audit("delivery.failed")
    assert "5 s" in event.data["reason"]
    assert (await method_view(stack.client, token, "sms"))["pending"] is False


async def test_an_unreachable_provider_gives_502(start_stack: StartStack) -> None:
    stack = await start_stack(twilio_base_url=f"http://127.0.0.1:{closed_port()}")
    token = await user(stack)
    body = problem(await stack.enroll(token, "sms", phone=RU_MOBILE), 502, "delivery_failed")
    no_provider_internals(body, "connect", "refused", "127.0.0.1")
    (event,) = await stack.audit("delivery.failed")
    assert "cannot connect" in event.data["reason"]


async def test_smtp_refusing_the_login_gives_502(start_stack: StartStack) -> None:
    stack = await start_stack()
    broken = await start_stack(smtp_url=stack.smtp.url("mailer", "wrong"))
    token = await user(stack)
    body = problem(await broken.enroll(token, "email"), 502, "delivery_failed")
    no_provider_internals(body, "authentication")
    assert "e-mail" in body["detail"]
    (event,) = await stack.audit("delivery.failed")
    assert event.data["provider"] == "smtp" and event.data["status"] == 535
    assert stack.mail_to(EMAIL) == []  # (the sign-up's verification went out before)
    assert (await method_view(stack.client, token, "email"))["pending"] is False
    # The working server straight after: no cooldown, no cap spent.
    assert (await stack.enroll(token, "email")).status_code == 202


async def test_a_mail_server_that_does_not_answer_times_out_in_5_seconds(
        start_stack: StartStack) -> None:
    with socket.socket() as silent:  # accepts the connection, never says hello
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        stack = await start_stack(smtp_url=f"smtp://127.0.0.1:{port}")
        token = await user(stack)
        started = time.monotonic()
        r = await stack.enroll(token, "email")
        assert 4.5 < time.monotonic() - started < 6.5
    no_provider_internals(problem(r, 502, "delivery_failed"), "timed out")
    assert (await method_view(stack.client, token, "email"))["pending"] is False


async def test_unreachable_smtp_gives_502(start_stack: StartStack) -> None:
    stack = await start_stack(smtp_url=f"smtp://127.0.0.1:{closed_port()}")
    token = await user(stack)
    body = problem(await stack.enroll(token, "email"), 502, "delivery_failed")
    no_provider_internals(body, "127.0.0.1")


async def test_a_failed_login_code_keeps_the_previous_one_and_allows_a_retry(
        stack: Stack) -> None:
    token = await user(stack)
    await stack.enable(token, "sms", RU_MOBILE, phone=RU_MOBILE)
    stack.clock.advance(61)
    lt = await login_token(stack.client)
    assert (await stack.login_challenge(lt, "sms")).status_code == 202
    first = stack.last_code("sms", RU_MOBILE)
    stack.clock.advance(61)
    stack.api.script.append(Scripted(503, {"message": "down"}))
    body = problem(await stack.login_challenge(lt, "sms"), 502, "delivery_failed")
    no_provider_internals(body)
    # The failed resend changed nothing: the code the user already has still works.
    r = await verify(stack.client, lt, "sms", first)
    assert r.status_code == 200, r.text
    # And a retry is not held back by the cooldown.
    lt = await login_token(stack.client)
    assert (await stack.login_challenge(lt, "sms")).status_code == 202


async def test_a_failed_manage_code_leaves_the_method_as_it_was(stack: Stack) -> None:
    token = await user(stack)
    await stack.enable(token, "whatsapp", UK_MOBILE, phone=UK_MOBILE)
    stack.clock.advance(61)
    stack.api.script.append(Scripted(500, {}))
    problem(await stack.manage_challenge(token, "whatsapp"), 502, "delivery_failed")
    view = await method_view(stack.client, token, "whatsapp")
    assert view["enabled"] is True and view["protects"]["login"] is True
    r = await stack.manage_challenge(token, "whatsapp")
    assert r.status_code == 202, r.text
    r = await stack.disable(token, "whatsapp", stack.last_code("whatsapp", UK_MOBILE))
    assert r.status_code == 200 and r.json()["enabled"] is False


async def test_meta_error_gives_a_plain_502(start_stack: StartStack,
                                           api: ProviderServer) -> None:
    stack = await start_stack(whatsapp_provider="meta", meta_access_token="EAAB",
                              meta_phone_number_id="1055", meta_base_url=api.url)
    token = await user(stack)
    stack.api.script.append(ProviderServer.meta_error(400, 131000, "Something went wrong"))
    body = problem(await stack.enroll(token, "whatsapp", phone=UK_MOBILE), 502,
                   "delivery_failed")
    no_provider_internals(body, "something went wrong", "oauth", "131000")
    (event,) = await stack.audit("delivery.failed")
    assert event.data["provider"] == "meta" and "131000" in event.data["reason"]


# --- a destination that cannot receive: permanent, never "try again" -------------------


@pytest.mark.parametrize(("channel", "answer"), [
    ("sms", ProviderServer.twilio_error(400, 21211, "The 'To' number is not valid")),
    ("sms", ProviderServer.twilio_error(400, 21614, "'To' number is not a mobile number")),
    ("whatsapp", ProviderServer.twilio_error(400, 63003, "Channel could not find To"))])
async def test_a_number_the_provider_says_cannot_receive_is_a_422(
        stack: Stack, channel: str, answer: Scripted) -> None:
    token = await user(stack)
    stack.api.script.append(answer)
    r = await stack.enroll(token, channel, phone=UK_MOBILE)
    body = problem(r, 422, "invalid_destination")
    assert body["retryable"] is False
    no_provider_internals(body, str(answer.body["code"]), "whatsapp:")
    # Nothing half-done, as for any failed delivery; the reason is audited.
    assert (await method_view(stack.client, token, channel))["pending"] is False
    assert await stack.codes() == []
    (event,) = await stack.audit("delivery.failed")
    assert str(answer.body["code"]) in event.data["reason"]


async def test_meta_undeliverable_is_a_422(start_stack: StartStack,
                                          api: ProviderServer) -> None:
    stack = await start_stack(whatsapp_provider="meta", meta_access_token="EAAB",
                              meta_phone_number_id="1055", meta_base_url=api.url)
    token = await user(stack)
    stack.api.script.append(ProviderServer.meta_error(400, 131026, "Message undeliverable"))
    body = problem(await stack.enroll(token, "whatsapp", phone=UK_MOBILE), 422,
                   "invalid_destination")
    no_provider_internals(body, "undeliverable", "oauth")


async def test_a_mailbox_the_server_refuses_is_a_422(stack: Stack) -> None:
    token = await user(stack)
    stack.smtp.inbox.refused.add("gone@example.com")
    body = problem(await stack.enroll(token, "email", email="gone@example.com"), 422,
                   "invalid_destination")
    assert "e-mail" in body["detail"] and body["retryable"] is False
    (event,) = await stack.audit("delivery.failed")
    assert event.data["provider"] == "smtp" and event.data["status"] == 550
    assert (await method_view(stack.client, token, "email"))["pending"] is False
    # Another address works at once.
    assert (await stack.enroll(token, "email", email="jane.doe@example.com")).status_code == 202


async def test_a_channel_without_a_provider_fails_clearly_in_production(
        start_stack: StartStack, settings: Settings) -> None:
    stack = await start_stack(settings_obj=production_settings(settings))
    await sign_up(stack.client)
    token = await session_for(stack.client)
    for channel, params in (("sms", {"phone": RU_MOBILE}), ("email", {})):
        body = problem(await stack.enroll(token, channel, **params), 502, "delivery_failed")
        no_provider_internals(body, "outbox", "configured")
        assert (await method_view(stack.client, token, channel))["pending"] is False
    assert stack.sent_count() == 0
