"""What a receipt promises a portal: it is addressed to the user's app (``aud``), it
expires (``exp``, ``receipt_ttl_seconds`` after ``iat``), its ``operation.details`` are
exactly the canonical details the create call answered, and the JWKS that verifies it is
cacheable (``Cache-Control``, a strong ``ETag``, 304 on ``If-None-Match``).

Every receipt is checked with an independent JOSE library (joserfc), as a portal would."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidClaimError
from joserfc.jwk import KeySet
from sqlalchemy import select

from stepup.config import Settings
from stepup.domain.clock import FrozenClock
from stepup.services import apikeys, receipts
from stepup.services.runtime import Actor, Runtime
from stepup.store.models import PORTAL_APP_ID, ApiKey, App, User
from tests.api.helpers import PIN, auth, session_for, sign_up, totp_now
from tests.api.ops_support import (
    DESTINATION,
    app_with,
    confirm,
    pin,
    start,
    totp_for_withdrawal,
)

# RFC 9864 prefers "Ed25519" to "EdDSA"; the receipts are specified with "EdDSA".
pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

JWKS = "/.well-known/jwks.json"
USERS = "/api/v1/users"
ISSUER = "http://testserver"
# As a portal's user might type it; StepUp answers (and signs) the canonical form.
TYPED = {"amount": "0.10", "currency": "btc", "destination": DESTINATION}
CANONICAL = {"amount": "0.1", "currency": "BTC", "destination": DESTINATION}


async def decode(client: httpx.AsyncClient, receipt: str) -> dict[str, Any]:
    """Signature checked against the published keys (joserfc); the claims, unvalidated."""
    r = await client.get(JWKS)
    assert r.status_code == 200, r.text
    keys = KeySet.import_key_set(r.json())
    return dict(jwt.decode(receipt, keys, algorithms=["EdDSA"]).claims)


def registry(audience: str, now: int) -> jwt.JWTClaimsRegistry:
    """The claims check the integration guide tells a portal to make."""
    return jwt.JWTClaimsRegistry(now=now, iss={"essential": True, "value": ISSUER},
                                 aud={"essential": True, "value": audience},
                                 exp={"essential": True})


def unix(clock: FrozenClock) -> int:
    return int(clock.now().timestamp())


# --- a portal's user, driven through the integration API only ---------------------------

class AppUser:
    """A user created with an app key, TOTP (enrolled on their behalf) protecting
    withdrawal; withdrawals are created, PIN-checked and confirmed by the portal."""

    def __init__(self, client: httpx.AsyncClient, key: str, clock: FrozenClock) -> None:
        self.client, self.key, self.clock = client, key, clock

    async def setup(self, external_id: str = "client-1") -> AppUser:
        r = await self.client.post(USERS, headers=auth(self.key), json={
            "email": f"{external_id}@example.com", "external_id": external_id, "pin": PIN})
        assert r.status_code == 201, r.text
        self.id = str(r.json()["id"])
        r = await self.post("methods/totp/enrollment", {"pin": PIN})
        assert r.status_code == 200, r.text
        self.secret = parse_qs(urlparse(r.json()["otpauth_uri"]).query)["secret"][0]
        r = await self.post("methods/totp/enrollment/confirm", {"code": self.code()})
        assert r.status_code == 200 and r.json()["enabled"], r.text
        self.clock.advance(30)
        r = await self.client.patch(f"{USERS}/{self.id}/methods/totp", headers=auth(self.key),
                                    json={"protects": {"withdrawal": True},
                                          "code": self.code()})
        assert r.status_code == 200, r.text
        self.clock.advance(30)
        return self

    def code(self) -> str:
        return totp_now(self.secret, self.clock)

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post(f"{USERS}/{self.id}/{path}", json=body,
                                      headers=auth(self.key))

    async def create(self, details: dict[str, Any]) -> dict[str, Any]:
        r = await self.post("operations", {"type": "withdrawal", "details": details})
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def receipt(self, details: dict[str, Any] | None = None
                      ) -> tuple[dict[str, Any], str]:
        """(the create answer, the receipt) of a confirmed withdrawal."""
        created = await self.create(details or CANONICAL)
        r = await self.post(f"operations/{created['id']}/pin", {"pin": PIN})
        assert r.status_code == 200 and r.json()["status"] == "code_required", r.text
        r = await self.post("verify", {"method": "totp", "code": self.code(),
                                       "purpose": created["id"]})
        assert r.status_code == 200 and r.json()["valid"] is True, r.text
        return created, str(r.json()["receipt"])


async def new_app_key(rt: Runtime) -> str:
    _row, token = await apikeys.create(rt, "portal", "app", Actor(name="test"))
    return token


async def app_of(rt: Runtime, user_id: str, key: str) -> str:
    """The user's app id, as stored, checked against the key's app (``default``)."""
    async with rt.db() as db:
        user_app = (await db.execute(select(User.app_id).where(User.id == user_id))
                    ).scalar_one()
        key_hash = hashlib.sha256(key.encode()).digest()
        key_app = (await db.execute(select(ApiKey.app_id).where(ApiKey.key_hash == key_hash))
                   ).scalar_one()
        default = (await db.execute(select(App.id).where(App.name == "default"))).scalar_one()
    assert user_app == key_app == default != PORTAL_APP_ID
    return str(user_app)


@pytest.fixture
async def app_user(client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
                   ) -> AppUser:
    return await AppUser(client, await new_app_key(runtime), clock).setup()


# --- aud and exp ---------------------------------------------------------------------------

async def test_an_app_users_receipt_is_addressed_to_the_app_and_expires(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock, app_user: AppUser
) -> None:
    confirmed_at = unix(clock)
    created, receipt = await app_user.receipt()
    claims = await decode(client, receipt)
    app_id = await app_of(runtime, app_user.id, app_user.key)

    assert claims["aud"] == app_id
    assert claims["sub"] == app_user.id and claims["operation"]["id"] == created["id"]
    assert claims["iat"] == confirmed_at
    assert claims["exp"] - claims["iat"] == 600
    assert set(claims) == {"iss", "aud", "sub", "jti", "iat", "exp", "confirmed_at",
                           "operation", "method"}

    registry(app_id, unix(clock)).validate(claims)  # as the guide checks it, now
    clock.advance(599)
    registry(app_id, unix(clock)).validate(claims)
    with pytest.raises(InvalidClaimError):  # meant for another portal
        registry(PORTAL_APP_ID, unix(clock)).validate(claims)
    clock.advance(1)  # exp itself: no longer
    with pytest.raises(ExpiredTokenError):
        registry(app_id, unix(clock)).validate(claims)
    clock.advance(3600)
    with pytest.raises(ExpiredTokenError):
        registry(app_id, unix(clock)).validate(claims)


async def test_the_receipt_lifetime_is_configurable(
        settings: Settings, runtime: Runtime, clock: FrozenClock) -> None:
    async with app_with(settings, clock, receipt_ttl_seconds=90) as (client, rt):
        user = await AppUser(client, await new_app_key(rt), clock).setup()
        _created, receipt = await user.receipt()
        claims = await decode(client, receipt)
        assert claims["exp"] - claims["iat"] == 90
        app_id = await app_of(rt, user.id, user.key)
        clock.advance(89)
        registry(app_id, unix(clock)).validate(claims)
        clock.advance(1)
        with pytest.raises(ExpiredTokenError):
            registry(app_id, unix(clock)).validate(claims)


async def test_a_self_registered_users_receipt_is_addressed_to_the_portal(
        client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    user_id = str((await sign_up(client))["id"])
    token = await session_for(client)
    secret = await totp_for_withdrawal(client, token, clock)
    r = await start(client, token, TYPED)
    assert r.status_code == 201, r.text
    created = r.json()
    assert (await pin(client, token, created["id"])).status_code == 200
    r = await confirm(client, token, created["id"], "totp", totp_now(secret, clock))
    assert r.status_code == 200, r.text

    claims = await decode(client, r.json()["receipt"])
    async with runtime.db() as db:
        stored = (await db.execute(select(User.app_id).where(User.id == user_id))).scalar_one()
    assert claims["aud"] == stored == PORTAL_APP_ID == "portal"
    assert claims["exp"] - claims["iat"] == 600
    registry(PORTAL_APP_ID, unix(clock)).validate(claims)
    # The hosted pages' user: the same canonical details in the answer and the receipt.
    assert created["details"] == CANONICAL
    assert claims["operation"]["details"] == created["details"]


# --- canonical details -----------------------------------------------------------------------

async def test_the_create_answer_gives_the_details_the_receipt_carries(
        client: httpx.AsyncClient, app_user: AppUser) -> None:
    created, receipt = await app_user.receipt(TYPED)
    assert created["details"] == CANONICAL
    assert created["summary"] == f"0.1 BTC to {DESTINATION}"
    claims = await decode(client, receipt)
    assert claims["operation"]["details"] == created["details"]  # exactly: the guide's check

    r = await client.get(f"{USERS}/{app_user.id}/operations/{created['id']}",
                         headers=auth(app_user.key))
    assert r.status_code == 200 and r.json()["details"] == CANONICAL, r.text


@pytest.mark.parametrize(("typed", "canonical"), [
    ({"amount": "100.00", "currency": "usd"}, {"amount": "100", "currency": "USD"}),
    ({"amount": "0.12345670", "currency": " Btc "}, {"amount": "0.1234567", "currency": "BTC"}),
    ({"amount": "007", "currency": "JPY"}, {"amount": "7", "currency": "JPY"}),
    ({"amount": "1.5", "currency": "eth"}, {"amount": "1.5", "currency": "ETH"}),
])
async def test_amounts_and_currencies_are_answered_canonical(
        client: httpx.AsyncClient, app_user: AppUser, typed: dict[str, str],
        canonical: dict[str, str]) -> None:
    created = await app_user.create({**typed, "destination": f"  {DESTINATION} "})
    assert created["details"] == {**canonical, "destination": DESTINATION}
    r = await client.get(f"{USERS}/{app_user.id}/operations/{created['id']}",
                         headers=auth(app_user.key))
    assert r.json()["details"] == created["details"]


async def test_the_openapi_says_how_details_are_written(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()["components"]["schemas"]
    text = schema["OperationOut"]["properties"]["details"]["description"]
    for words in ("canonical", "decimal string", "no exponent", "trailing zeros",
                  "decimal places", "upper-case"):
        assert words in text, words


# --- the JWKS is cacheable -------------------------------------------------------------------

async def test_the_jwks_is_cacheable_with_a_strong_etag(client: httpx.AsyncClient,
                                                        runtime: Runtime) -> None:
    r = await client.get(JWKS)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "public, max-age=300"
    assert r.headers["content-type"].startswith("application/json")
    etag = r.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 10  # strong: no W/
    assert "d" not in r.json()["keys"][0]
    for _ in range(4):  # every worker serves the same bytes and ETag
        again = await client.get(JWKS)
        assert again.headers["etag"] == etag and again.content == r.content

    for tag in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        nm = await client.get(JWKS, headers={"If-None-Match": tag})
        assert nm.status_code == 304, (tag, nm.status_code)
        assert nm.content == b""
        assert nm.headers["etag"] == etag
        assert nm.headers["cache-control"] == "public, max-age=300"
    other = await client.get(JWKS, headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.content == r.content

    # A rotation publishes a new key: a new ETag, and the old one no longer matches.
    new_kid = await receipts.rotate(runtime)
    rotated = await client.get(JWKS, headers={"If-None-Match": etag})
    assert rotated.status_code == 200
    assert rotated.headers["etag"] != etag
    assert new_kid in {k["kid"] for k in rotated.json()["keys"]}
    assert len(rotated.json()["keys"]) == 2
    same = await client.get(JWKS, headers={"If-None-Match": rotated.headers["etag"]})
    assert same.status_code == 304


async def test_other_answers_stay_uncached(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.headers["cache-control"] == "no-store"
