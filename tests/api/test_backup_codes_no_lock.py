"""A backup code is hashed (argon2) before the write transaction opens: while it is
being hashed, other writes of this worker and of other workers commit (SQLite holds one
write lock for the whole database). The check itself stays as strict: single use,
counted failures."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from stepup.domain.errors import CodeAlreadyUsed, InvalidCode
from stepup.services import login as login_service
from stepup.services import methods as methods_service
from stepup.services.runtime import Actor, Runtime
from stepup.store.models import User
from tests.api.helpers import enable_backup_codes, login_token, session_for, sign_up
from tests.support.blocking import slow_runtime, writes_commit_while_hashing


async def user_id(runtime: Runtime) -> str:
    async with runtime.db() as db:
        return str((await db.execute(select(User.id))).scalar_one())


async def test_login_with_a_backup_code_hashes_it_outside_the_write_lock(
        client: httpx.AsyncClient, runtime: Runtime) -> None:
    await sign_up(client)
    codes = await enable_backup_codes(client, await session_for(client))
    token = await login_token(client)
    slow, hasher = slow_runtime(runtime, "backup_code_hash")
    task = await writes_commit_while_hashing(runtime, hasher, login_service.verify(
        slow, Actor(ip="203.0.113.9"), token, "backup_codes", codes[0]))
    assert task.result().status == "authenticated"
    # Still single use: the same code again is a replay, not a second login.
    with pytest.raises(CodeAlreadyUsed):
        await login_service.verify(runtime, Actor(ip="203.0.113.9"),
                                   await login_token(client), "backup_codes", codes[0])


ManageCall = Callable[[Runtime, str, str], Awaitable[Any]]


@pytest.mark.parametrize("call", [
    lambda rt, uid, code: methods_service.disable(rt, Actor(), uid, "backup_codes", code),
    lambda rt, uid, code: methods_service.switch(rt, Actor(), uid, "backup_codes",
                                                 {"withdrawal": True}, code),
    lambda rt, uid, code: methods_service.regenerate_backup_codes(rt, Actor(), uid, code),
], ids=["disable", "switch", "regenerate"])
async def test_managing_with_a_backup_code_hashes_it_outside_the_write_lock(
        client: httpx.AsyncClient, runtime: Runtime, call: ManageCall) -> None:
    await sign_up(client)
    codes = await enable_backup_codes(client, await session_for(client))
    uid = await user_id(runtime)
    slow, hasher = slow_runtime(runtime, "backup_code_hash")
    task = await writes_commit_while_hashing(runtime, hasher, call(slow, uid, codes[0]))
    assert task.exception() is None


async def test_a_wrong_backup_code_is_still_refused_and_counted(
        client: httpx.AsyncClient, runtime: Runtime) -> None:
    await sign_up(client)
    await enable_backup_codes(client, await session_for(client))
    token = await login_token(client)
    slow, hasher = slow_runtime(runtime, "backup_code_hash")
    task = await writes_commit_while_hashing(runtime, hasher, login_service.verify(
        slow, Actor(ip="203.0.113.9"), token, "backup_codes", "abcde-12345"))
    assert isinstance(task.exception(), InvalidCode)
