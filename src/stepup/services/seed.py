"""Bulk-created users with an authenticator app, for benchmarks (``stepup bench seed``).

Rows are written in batches with the same encryption as real enrolment (AES-GCM seed,
row-bound associated data), so a verification of a seeded user does exactly the work
of a real one. Users have no password or PIN: they are reached through the integration
API, as a portal's users are. Each has the first event of its audit chain,
``account.created``, as a real account has, from the address ``signed_up_from``
(127.0.0.1, where the benchmark runs): a seeded user's login is then a returning user's,
from the device the account was made on. With no address every login is from a new
device, and queues a "new device" notice.

``seed_login_flows`` stands in for the password step of the hosted login: it opens a
login flow for each of the first seeded users, as a passed password would, so the
benchmark can drive the second step (``POST /api/v1/login/verify``) alone.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert

from stepup.domain.hashing import new_id, new_token
from stepup.domain.policy import MethodStatus
from stepup.methods.totp import _aad as totp_aad
from stepup.methods.totp import new_secret
from stepup.services import apps, audit
from stepup.services.runtime import Actor, Runtime
from stepup.store.models import AuditEvent, LoginFlow, Method, User

BATCH = 5000
# Where the benchmark's requests come from, and so where its users signed up.
BENCH_ADDRESS = "127.0.0.1"


def _batches(total: int) -> Iterator[int]:
    done = 0
    while done < total:
        size = min(BATCH, total - done)
        yield size
        done += size


async def seed_totp_users(rt: Runtime, count: int, tokens_csv: Path, prefix: str = "bench",
                          app: str | None = None,
                          signed_up_from: str | None = BENCH_ADDRESS) -> int:
    """Create ``count`` users of the app named ``app`` (``default``, as a key made without
    ``--app``) with TOTP enabled (protecting login), each with its ``account.created``
    event from ``signed_up_from``; append ``id,secret`` lines to ``tokens_csv``. Returns
    how many were created."""
    app_id = (await apps.for_new_key(rt, Actor(name="cli"), app)).id
    signed_up = Actor(name="bench", ip=signed_up_from)
    now = rt.clock.now()
    run = secrets.token_hex(3)
    made = 0
    with tokens_csv.open("a") as out:
        for size in _batches(count):
            users, methods, events, lines = [], [], [], []
            for _ in range(size):
                uid, mid, secret = new_id(), new_id(), new_secret()
                kid, ct = rt.keyring.encrypt(secret.encode(), totp_aad(uid, mid))
                created = audit.first_of_chain(signed_up, "account.created", uid, now,
                                               via="bench")
                events.append(created)
                users.append({"id": uid, "app_id": app_id,
                              "email": f"{prefix}-{run}-{made}@bench.invalid",
                              "email_verified": False, "phone_verified": False,
                              "verification_grade": 0, "password_hash": None,
                              "pin_hash": None, "language": "en", "created_at": now,
                              "external_id": None, "must_enroll": False,
                              "audit_head": created["hash"]})
                methods.append({"id": mid, "user_id": uid, "type": "totp",
                                "status": MethodStatus.ENABLED,
                                "protects": {"login": True, "withdrawal": False},
                                "secret_kid": kid, "secret_ct": ct, "destination_kid": None,
                                "destination_ct": None, "destination_hash": None,
                                "last_step": None, "created_at": now, "enabled_at": now,
                                "last_used_at": None})
                lines.append(f"{uid},{secret}\n")
                made += 1
            async with rt.db() as db:
                await db.execute(insert(User), users)
                await db.execute(insert(Method), methods)
                await db.execute(insert(AuditEvent), events)
                await db.commit()
            out.writelines(lines)
    return made


async def seed_login_flows(rt: Runtime, tokens_csv: Path, flows_csv: Path, count: int) -> int:
    """Open a login flow (password passed) for each of the first ``count`` users of
    ``tokens_csv``; write ``login_token,secret`` lines to ``flows_csv``. The flows live
    ``login_token_minutes``, like real ones."""
    pairs: list[tuple[str, str]] = []
    with tokens_csv.open() as src:
        for line in src:
            if len(pairs) == count:
                break
            if line.strip():
                uid, secret = line.strip().split(",")[:2]
                pairs.append((uid, secret))
    now = rt.clock.now()
    expires = now + timedelta(minutes=rt.settings.login_token_minutes)
    with flows_csv.open("w") as out:
        for start in range(0, len(pairs), BATCH):
            rows, lines = [], []
            for uid, secret in pairs[start:start + BATCH]:
                token = new_token()
                rows.append({"id": new_id(), "token_hash": rt.hasher.token_hash(token),
                             "user_id": uid, "created_at": now, "expires_at": expires,
                             "used_at": None})
                lines.append(f"{token},{secret}\n")
            async with rt.db() as db:
                await db.execute(insert(LoginFlow), rows)
                await db.commit()
            out.writelines(lines)
    return len(pairs)
