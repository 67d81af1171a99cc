"""Each app has its own budget of codes sent per hour, for all its users together; the
per-IP cap counts the end user's address the portal forwards (``StepUp-End-User-IP``),
never the portal's own server."""

from __future__ import annotations

import httpx

from stepup.domain.clock import FrozenClock
from stepup.services import apikeys, apps
from stepup.services.runtime import Actor, Runtime
from stepup.store import queries
from tests.api.conftest import StartStack
from tests.api.helpers import auth, problem
from tests.api.oob_support import Stack
from tests.support.providers import Scripted

PORTAL_IP = "198.51.100.10"  # the portal's own server, the address StepUp sees
END_USER_IP = "203.0.113.7"
NUMBERS = [f"+7916{n:07d}" for n in range(1234560, 1234560 + 30)]


async def app_key(runtime: Runtime, app: str | None = None, sends_per_hour: int | None = None
                  ) -> tuple[str, str]:
    """A key of the app named ``app`` (made now), else of ``default``; (key, app id)."""
    if app is not None:
        await apps.create(runtime, Actor(name="test"), app, sends_per_hour=sends_per_hour)
    row, key = await apikeys.create(runtime, "p", "app", Actor(name="test"), app=app)
    assert row.app_id is not None
    return key, row.app_id


class Portal:
    """A portal calling the integration API for its users, one phone number each."""

    def __init__(self, stack: Stack, key: str, end_user_ip: str | None = None,
                 first_number: int = 0) -> None:
        self.stack = stack
        self.headers = {**auth(key), **({"StepUp-End-User-IP": end_user_ip}
                                        if end_user_ip else {})}
        self.first_number = first_number
        self.users: dict[str, str] = {}  # user id -> phone

    async def post(self, path: str, body: dict[str, str], end_user_ip: str | None = None
                   ) -> httpx.Response:
        headers = dict(self.headers)
        if end_user_ip:
            headers["StepUp-End-User-IP"] = end_user_ip
        return await self.stack.client.post(f"/api/v1/users{path}", json=body, headers=headers)

    async def new_user(self) -> str:
        n = len(self.users)
        r = await self.post("", {"email": f"user{n}@example.com", "external_id": f"c-{n}"})
        assert r.status_code == 201, r.text
        uid = str(r.json()["id"])
        self.users[uid] = NUMBERS[self.first_number + n]
        return uid

    async def enrol(self, uid: str, **kw: str) -> httpx.Response:
        """Start SMS (one code sent); on success, confirm it with that code."""
        phone = self.users[uid]
        r = await self.post(f"/{uid}/methods/sms/enrollment", {"phone": phone}, **kw)
        if r.status_code == 202:
            done = await self.post(f"/{uid}/methods/sms/enrollment/confirm",
                                   {"code": self.stack.last_code("sms", phone)}, **kw)
            assert done.status_code == 200, done.text
        return r

    async def challenge(self, uid: str, **kw: str) -> httpx.Response:
        return await self.post(f"/{uid}/challenge", {"method": "sms", "purpose": "login"},
                               **kw)


async def counter(stack: Stack, key: str) -> int:
    async with stack.rt.db() as db:
        window = stack.clock.now().replace(minute=0, second=0, microsecond=0)
        return await queries.rate_value(db, key, window)


async def test_the_portals_own_address_is_never_capped(start_stack: StartStack,
                                                       runtime: Runtime) -> None:
    stack = await start_stack(ip=PORTAL_IP)
    key, _ = await app_key(runtime)
    portal = Portal(stack, key)
    for _ in range(25):  # 50 codes from one server, past the 20 per IP and hour
        uid = await portal.new_user()
        assert (await portal.enrol(uid)).status_code == 202
        r = await portal.challenge(uid)
        assert r.status_code == 202, r.text
    assert len(stack.api.received) == 50
    assert await counter(stack, f"send-ip:{PORTAL_IP}") == 0


async def test_the_end_users_address_is_capped(start_stack: StartStack,
                                               runtime: Runtime) -> None:
    stack = await start_stack(ip=PORTAL_IP)
    key, _ = await app_key(runtime)
    portal = Portal(stack, key, end_user_ip=END_USER_IP)
    for _ in range(10):  # two codes each: 20, the cap of one address
        uid = await portal.new_user()
        assert (await portal.enrol(uid)).status_code == 202
        assert (await portal.challenge(uid)).status_code == 202
    uid = await portal.new_user()
    r = await portal.enrol(uid)  # the 21st code to one end user's address
    problem(r, 429, "send_cap_reached")
    assert 1 <= int(r.headers["Retry-After"]) <= 3601
    assert len(stack.api.received) == 20
    # Another person behind the same portal is not held back.
    assert (await portal.enrol(uid, end_user_ip="203.0.113.8")).status_code == 202
    assert await counter(stack, f"send-ip:{END_USER_IP}") == 20


async def test_an_app_has_its_own_hourly_budget(start_stack: StartStack, runtime: Runtime,
                                                clock: FrozenClock) -> None:
    stack = await start_stack(ip=PORTAL_IP)
    key, _ = await app_key(runtime, "small", sends_per_hour=3)
    small = Portal(stack, key)
    first, second = await small.new_user(), await small.new_user()
    assert (await small.enrol(first)).status_code == 202
    assert (await small.challenge(first)).status_code == 202
    assert (await small.enrol(second)).status_code == 202
    # The fourth code of the hour, for another user: over the app's budget.
    r = await small.challenge(second)
    problem(r, 429, "send_cap_reached")
    assert int(r.headers["Retry-After"]) == 3601  # the clock stands at 12:00:00
    assert len(stack.api.received) == 3
    # Another app's users are not held back by it.
    other = Portal(stack, (await app_key(runtime))[0], first_number=10)
    uid = await other.new_user()
    assert (await other.enrol(uid)).status_code == 202
    # The next hour, a new budget.
    clock.advance(3600)
    assert (await small.challenge(second)).status_code == 202


async def test_a_failed_delivery_refunds_the_app_budget(start_stack: StartStack,
                                                        runtime: Runtime) -> None:
    stack = await start_stack(ip=PORTAL_IP)
    key, app_id = await app_key(runtime, "small", sends_per_hour=2)
    small = Portal(stack, key)
    first, second = await small.new_user(), await small.new_user()
    assert (await small.enrol(first)).status_code == 202
    stack.api.script.append(Scripted(503, {"message": "down"}))
    problem(await small.challenge(first), 502, "delivery_failed")
    assert await counter(stack, f"send-app:{app_id}") == 1  # refunded
    # So the budget of two still has room for a second code, and only then is spent.
    assert (await small.challenge(first)).status_code == 202
    problem(await small.enrol(second), 429, "send_cap_reached")
