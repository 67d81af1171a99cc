""""Forgot password?" answers before it looks the address up: the 202 goes out while the
per-account part (lookup, link, e-mail, audit) has not run, so the time of the answer
cannot tell whether an account exists; the per-address limit still refuses in the
answer itself."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from stepup.services import notifications
from stepup.store import queries
from stepup.store.models import AuditEvent, PasswordReset
from tests.api.conftest import StartStack
from tests.api.helpers import EMAIL, problem
from tests.api.oob_support import Stack
from tests.api.test_account_security import LINK, signed_in, text_of
from tests.support.answer_first import answer_first_client
from tests.support.blocking import Held


async def links(stack: Stack) -> int:
    async with stack.rt.db() as db:
        q = select(func.count()).select_from(PasswordReset)
        return int((await db.execute(q)).scalar_one())


async def requested(stack: Stack) -> int:
    async with stack.rt.db() as db:
        q = select(func.count()).where(AuditEvent.event == "password.reset_requested")
        return int((await db.execute(q)).scalar_one())


async def test_the_answer_goes_out_before_the_account_is_looked_up(
        start_stack: StartStack, monkeypatch: pytest.MonkeyPatch) -> None:
    stack = await start_stack(password_resets_per_email_per_hour=1)
    await signed_in(stack)
    held = Held(queries.get_user_by_email)
    monkeypatch.setattr(queries, "get_user_by_email", held)
    async with answer_first_client(stack.rt) as client:
        try:
            r = await asyncio.wait_for(
                client.post("/api/v1/password/forgot", json={"email": EMAIL}), 5)
            assert r.status_code == 202 and r.content == b""
            # The account part began after the answer and is held: nothing of it is
            # written yet.
            await asyncio.wait_for(held.started.wait(), 5)
            assert await links(stack) == 0 and await requested(stack) == 0
            # The request was counted in the answer, not later: the next is refused now.
            r = await asyncio.wait_for(
                client.post("/api/v1/password/forgot", json={"email": EMAIL}), 5)
            problem(r, 429, "rate_limited")
        finally:
            held.release.set()
    # Once it ran: one link, audited once, and its e-mail goes out.
    assert await links(stack) == 1 and await requested(stack) == 1
    await notifications.deliver_due(stack.rt)
    [mail] = [m for m in stack.mail_to(EMAIL) if "reset your password" in str(m["Subject"])]
    assert LINK.search(text_of(mail))
