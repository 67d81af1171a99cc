"""Signed receipts: compact JWS (EdDSA, Ed25519) verified with an independent JOSE
library (joserfc) against the keys published at ``/.well-known/jwks.json``; key
rotation keeps old receipts verifiable until their key is retired."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import BadSignatureError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from stepup.domain.clock import FrozenClock
from stepup.domain.errors import NotFound
from stepup.services import receipts
from stepup.services.runtime import Runtime
from tests.api.helpers import session_for, sign_up, totp_now
from tests.api.ops_support import WITHDRAWAL, confirm, past_pin, totp_for_withdrawal

# RFC 9864 prefers "Ed25519" to "EdDSA"; the receipts are specified with "EdDSA".
pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

JWKS = "/.well-known/jwks.json"


async def jwks(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get(JWKS)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def verify(client: httpx.AsyncClient, receipt: str) -> jwt.Token:
    keys = KeySet.import_key_set(await jwks(client))  # type: ignore[arg-type]
    return jwt.decode(receipt, keys, algorithms=["EdDSA"])


class Confirmer:
    """A user with TOTP protecting withdrawal, confirming withdrawals one by one."""

    def __init__(self, client: httpx.AsyncClient, clock: FrozenClock) -> None:
        self.client, self.clock = client, clock

    async def setup(self) -> Confirmer:
        self.user_id = str((await sign_up(self.client))["id"])
        self.token = await session_for(self.client)
        self.secret = await totp_for_withdrawal(self.client, self.token, self.clock)
        return self

    async def receipt(self, **details: str) -> tuple[str, str]:
        op_id = await past_pin(self.client, self.token, **details)
        r = await confirm(self.client, self.token, op_id, "totp",
                          totp_now(self.secret, self.clock))
        assert r.status_code == 200, r.text
        self.clock.advance(30)
        return op_id, str(r.json()["receipt"])


@pytest.fixture
async def confirmer(client: httpx.AsyncClient, clock: FrozenClock) -> Confirmer:
    return await Confirmer(client, clock).setup()


async def test_a_receipt_verifies_with_the_published_keys(client: httpx.AsyncClient,
                                                          clock: FrozenClock,
                                                          confirmer: Confirmer) -> None:
    confirmed_at = clock.now()
    op_id, receipt = await confirmer.receipt()
    token = await verify(client, receipt)
    assert token.header["alg"] == "EdDSA"
    assert token.header["kid"] in {k["kid"] for k in (await jwks(client))["keys"]}

    claims = token.claims
    assert claims["iss"] == "http://testserver"
    assert claims["sub"] == confirmer.user_id
    assert claims["jti"] and isinstance(claims["jti"], str)
    assert claims["iat"] == int(confirmed_at.timestamp())
    assert datetime.fromisoformat(claims["confirmed_at"].replace("Z", "+00:00")) == confirmed_at
    assert claims["method"] == "totp"
    operation = claims["operation"]
    assert operation["id"] == op_id and operation["type"] == "withdrawal"
    assert operation["details"] == WITHDRAWAL
    assert len(operation["digest"]) == 64


async def test_every_receipt_has_its_own_id(client: httpx.AsyncClient,
                                            confirmer: Confirmer) -> None:
    ids = set()
    for amount in ("1", "1"):  # the same details twice are two operations
        _op, receipt = await confirmer.receipt(amount=amount)
        ids.add((await verify(client, receipt)).claims["jti"])
    assert len(ids) == 2


async def test_the_jwks_holds_public_keys_only(client: httpx.AsyncClient) -> None:
    first = await jwks(client)  # made on first use
    assert len(first["keys"]) == 1
    key = first["keys"][0]
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and key["alg"] == "EdDSA"
    assert key["use"] == "sig" and key["kid"]
    assert "d" not in key
    assert len(base64.urlsafe_b64decode(key["x"] + "=")) == 32
    assert await jwks(client) == first  # stable across calls


async def test_a_changed_receipt_does_not_verify(client: httpx.AsyncClient,
                                                 confirmer: Confirmer) -> None:
    _op, receipt = await confirmer.receipt()
    header, payload, signature = receipt.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["operation"]["details"]["amount"] = "250"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(BadSignatureError):
        await verify(client, f"{header}.{forged}.{signature}")


async def test_rotation_keeps_old_receipts_valid_until_retired(
        client: httpx.AsyncClient, runtime: Runtime, confirmer: Confirmer) -> None:
    _op, old_receipt = await confirmer.receipt()
    old_kid = (await verify(client, old_receipt)).header["kid"]

    new_kid = await receipts.rotate(runtime)
    assert new_kid != old_kid
    kids = [k["kid"] for k in (await jwks(client))["keys"]]
    assert set(kids) == {old_kid, new_kid}

    # The old receipt still verifies; the active key cannot be retired.
    assert (await verify(client, old_receipt)).header["kid"] == old_kid
    with pytest.raises(NotFound):
        await receipts.retire(runtime, new_kid)
    with pytest.raises(NotFound):
        await receipts.retire(runtime, "r-unknown")

    await receipts.retire(runtime, old_kid)
    assert [k["kid"] for k in (await jwks(client))["keys"]] == [new_kid]
    with pytest.raises((InvalidKeyIdError, JoseError)):
        await verify(client, old_receipt)
    with pytest.raises(NotFound):
        await receipts.retire(runtime, old_kid)  # once


async def test_new_receipts_carry_the_new_kid(client: httpx.AsyncClient, runtime: Runtime,
                                              confirmer: Confirmer) -> None:
    _op, before = await confirmer.receipt()
    new_kid = await receipts.rotate(runtime)
    _op, after = await confirmer.receipt()
    token = await verify(client, after)
    assert token.header["kid"] == new_kid
    assert (await verify(client, before)).header["kid"] != new_kid
    # A second rotation: three keys published, the newest signs.
    newest = await receipts.rotate(runtime)
    assert len((await jwks(client))["keys"]) == 3
    _op, third = await confirmer.receipt()
    assert (await verify(client, third)).header["kid"] == newest
