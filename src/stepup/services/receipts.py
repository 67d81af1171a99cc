"""Signed receipts: a compact JWS (EdDSA, Ed25519) for every confirmed operation.

A receipt is addressed to the app the user belongs to (``aud``: the app's id; ``portal``
for people who signed up on StepUp's own pages) and expires (``exp``) after
``receipt_ttl_seconds``, so a receipt meant for one portal, or an old one replayed, is
refused by any standard JWT check.

Keys live in the database, the private half encrypted with the key ring, so every
worker signs with the same key. ``stepup keys rotate-receipts`` makes a new key the
signer and keeps the old ones published (``/.well-known/jwks.json``) until retired.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from sqlalchemy.ext.asyncio import AsyncSession

from stepup.domain import jws
from stepup.domain.errors import NotFound
from stepup.domain.hashing import new_id
from stepup.services.runtime import Runtime
from stepup.store import operations as store
from stepup.store.models import Operation, ReceiptKey, User


def _aad(kid: str) -> bytes:
    return f"receipt-key:{kid}".encode()


async def new_key(rt: Runtime, db: AsyncSession) -> ReceiptKey:
    kid = f"r-{rt.clock.now():%Y%m%d}-{new_id()[:8]}"
    private = Ed25519PrivateKey.generate()
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    secret_kid, secret_ct = rt.keyring.encrypt(raw, _aad(kid))
    await store.deactivate_receipt_keys(db)
    row = ReceiptKey(kid=kid, secret_kid=secret_kid, secret_ct=secret_ct,
                     public_jwk=jws.public_jwk(private.public_key(), kid),
                     created_at=rt.clock.now(), active=True, retired_at=None)
    db.add(row)
    await db.flush()
    return row


async def _signer(rt: Runtime, db: AsyncSession) -> tuple[str, Ed25519PrivateKey]:
    row = await store.active_receipt_key(db) or await new_key(rt, db)
    raw = rt.keyring.decrypt(row.secret_kid, row.secret_ct, _aad(row.kid))
    return row.kid, Ed25519PrivateKey.from_private_bytes(raw)


def claims(rt: Runtime, op: Operation, user: User, method: str, when: datetime
           ) -> dict[str, Any]:
    """What a receipt says; ``details`` are the canonical ones the create call answered."""
    if user.id != op.user_id:
        raise ValueError("a receipt names the operation's own user")
    iat = int(when.timestamp())
    return {
        "iss": rt.settings.public_url,
        "aud": user.app_id,
        "sub": op.user_id,
        "jti": op.receipt_id,
        "iat": iat,
        "exp": iat + rt.settings.receipt_ttl_seconds,
        "confirmed_at": when.isoformat().replace("+00:00", "Z"),
        "operation": {"id": op.id, "type": op.type, "details": op.details,
                      "digest": op.digest},
        "method": method,
    }


async def sign(rt: Runtime, db: AsyncSession, payload: dict[str, Any]) -> str:
    kid, key = await _signer(rt, db)
    return jws.sign(payload, key, kid)


async def jwks(rt: Runtime) -> dict[str, Any]:
    async with rt.db() as db:
        keys = await store.published_receipt_keys(db)
        if not keys:
            keys = [await new_key(rt, db)]
            await db.commit()
        # Newest first; the kid breaks ties (one clock tick), so that every worker
        # serves the same bytes and so the same ETag.
        ordered = sorted(keys, key=lambda k: (k.created_at, k.kid), reverse=True)
        return {"keys": [dict(k.public_jwk) for k in ordered]}


def jwks_document(body: dict[str, Any]) -> tuple[bytes, str]:
    """The JWKS as served, and its strong ETag (a hash of exactly those bytes)."""
    raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return raw, f'"{hashlib.sha256(raw).hexdigest()[:32]}"'


async def rotate(rt: Runtime) -> str:
    async with rt.db() as db:
        row = await new_key(rt, db)
        await db.commit()
        return row.kid


async def retire(rt: Runtime, kid: str) -> None:
    async with rt.db() as db:
        if not await store.retire_receipt_key(db, kid, rt.clock.now()):
            raise NotFound("No published, inactive receipt key with this id (the active key "
                           "cannot be retired: rotate first).")
        await db.commit()
