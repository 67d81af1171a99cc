"""Telegram codes on the portal's pages in Russian: the methods page, the two set-up
steps, the outbox in development, and a Telegram code that enables the method."""

from __future__ import annotations

import httpx

from stepup.domain.clock import FrozenClock
from stepup.services.runtime import Runtime
from tests.pages.helpers import PIN, check, get, redirected_to, section, sign_up, submit
from tests.pages.test_oob import E164, MASKED, PHONE, last_code


async def test_telegram_in_russian(client: httpx.AsyncClient, runtime: Runtime,
                                   clock: FrozenClock) -> None:
    await sign_up(client, language="ru")
    html = await get(client, "/settings/methods")
    telegram = section(html, "telegram")
    assert "Telegram" in telegram and "Коды подтверждения в Telegram." in telegram
    assert 'href="/settings/methods/telegram/enable"' in telegram
    # After WhatsApp, before the backup codes.
    assert html.index('id="method-whatsapp"') < html.index('id="method-telegram"') < \
        html.index('id="method-backup_codes"')

    html = await get(client, "/settings/methods/telegram/enable")
    assert "Введите номер мобильного телефона, к которому привязан Telegram" in html
    html = check(await submit(client, html, "/settings/methods/telegram/enable",
                              phone=PHONE, pin=PIN))
    assert MASKED in html and E164 not in html
    assert "Шестизначный код из отправленного вам сообщения Telegram." in html

    outbox = await get(client, "/dev/outbox", params={"to": E164})
    assert "<dd>Telegram</dd>" in outbox and "для включения кодов в Telegram" in outbox

    r = await submit(client, html, "/settings/methods/telegram/confirm",
                     code=await last_code(runtime, E164))
    html = await get(client, redirected_to(r, "/settings/methods?done=enabled&method=telegram"))
    assert "Telegram" in html
    assert 'class="switch switch-on"' in section(html, "telegram")  # it protects login
