"""Printable backup codes (seed 000, seed 003).

A set of codes is shown once. Each code is stored as argon2id(HMAC(server key, code))
with one random salt per set, so checking a typed code costs one hash whatever the set
size, and is consumed by one conditional UPDATE. A new set replaces every old code.
A code of the current set typed again after it was used answers ``code_already_used``
(a retry, not a guess); a code of no set is a wrong code.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from stepup.domain.codes import format_backup_code, new_backup_code, normalise_backup_code, same
from stepup.domain.errors import CodeAlreadyUsed, InvalidCode
from stepup.domain.hashing import Hasher, new_id
from stepup.domain.policy import MethodStatus, Purpose
from stepup.methods.base import (
    N_,
    ChallengeSent,
    CodesIssued,
    Descriptor,
    EnrollmentStart,
    InputHints,
    MethodContext,
    MethodView,
    Verified,
    row_view,
)
from stepup.store import codes, queries
from stepup.store.models import BackupCode, User
from stepup.store.models import Method as MethodRow


class BackupCodesMethod:
    type = "backup_codes"
    login_fallback = True

    async def issue_set(self, ctx: MethodContext, user: User) -> list[str]:
        """Replace the user's codes with a new set; returns the codes, formatted."""
        await codes.delete_backup_codes(ctx.db, user.id)
        fresh = [new_backup_code() for _ in range(ctx.settings.backup_code_count)]
        salt = secrets.token_bytes(16)
        set_id = new_id()
        now = ctx.clock.now()
        for code in fresh:
            digest = await ctx.run_cpu(ctx.hasher.backup_code_hash, code, salt)
            ctx.db.add(BackupCode(id=new_id(), user_id=user.id, set_id=set_id, salt=salt,
                                  code_hash=digest, created_at=now, used_at=None))
        await ctx.db.flush()
        return [format_backup_code(c) for c in fresh]

    async def codes_left(self, db: AsyncSession, user_id: str) -> int:
        return await codes.count_unused_backup_codes(db, user_id)

    async def begin_enrollment(self, ctx: MethodContext, user: User, params: dict[str, Any]
                               ) -> EnrollmentStart:
        row = await queries.get_method(ctx.db, user.id, self.type)
        now = ctx.clock.now()
        if row is None:
            row = MethodRow(id=new_id(), user_id=user.id, type=self.type,
                            status=MethodStatus.ENABLED, protects={}, created_at=now,
                            enabled_at=now)
            ctx.db.add(row)
        codes = await self.issue_set(ctx, user)
        return EnrollmentStart(CodesIssued(codes), enabled=True)

    async def confirm_enrollment(self, ctx: MethodContext, user: User, row: MethodRow,
                                 proof: str) -> None:
        return None  # enabled at once: the codes are the proof of possession

    async def challenge(self, ctx: MethodContext, user: User, row: MethodRow,
                        purpose: Purpose) -> ChallengeSent | None:
        return None

    async def proof_salts(self, db: AsyncSession, user_id: str) -> Sequence[bytes]:
        return [stored.salt for stored in await codes.backup_codes(db, user_id)]

    def proof_hash(self, hasher: Hasher, proof: str, salt: bytes) -> bytes | None:
        code = normalise_backup_code(proof)
        return None if code is None else hasher.backup_code_hash(code, salt)

    async def verify(self, ctx: MethodContext, user: User, row: MethodRow, proof: str,
                     purpose: Purpose) -> Verified:
        code = normalise_backup_code(proof)
        if code is None:
            raise InvalidCode("A backup code has 10 letters and digits, like abcde-12345.")
        # Used codes too: one typed again must be told apart from a guess.
        stored_set = await codes.backup_codes(ctx.db, user.id)
        # Hashed before the transaction opened; a set issued since then (a race) is
        # hashed here, the one case that still hashes under the write lock.
        by_salt: dict[bytes, bytes] = dict(ctx.prepared)
        match = None
        for stored in stored_set:
            if stored.salt not in by_salt:
                by_salt[stored.salt] = await ctx.run_cpu(ctx.hasher.backup_code_hash, code,
                                                         stored.salt)
            # Compare with every code, not stopping at a match: constant time per set.
            if same(by_salt[stored.salt], stored.code_hash):
                match = stored
        unused = sum(1 for stored in stored_set if stored.used_at is None)
        if match is None:
            raise InvalidCode(None if unused else "You have no unused backup codes left.")
        if match.used_at is not None or not await codes.consume_backup_code(
                ctx.db, match.id, ctx.clock.now()):
            # Used before, or by a racing request just now: the same code sent twice.
            raise CodeAlreadyUsed("This backup code was already used: enter another one.")
        row.last_used_at = ctx.clock.now()
        left = unused - 1
        return Verified(notes={"remaining": left,
                               "low": left <= ctx.settings.backup_codes_warn_at})

    async def disable(self, ctx: MethodContext, user: User, row: MethodRow) -> None:
        await codes.delete_backup_codes(ctx.db, user.id)
        await queries.delete_method(ctx.db, row.id)

    async def describe(self, ctx: MethodContext, user: User, row: MethodRow | None
                       ) -> MethodView:
        enabled = row is not None and row.status == MethodStatus.ENABLED
        remaining = await codes.count_unused_backup_codes(ctx.db, user.id) if enabled else None
        return row_view(ctx.settings, self.type, row, remaining=remaining)


DESCRIPTOR = Descriptor(
    type="backup_codes", order=50,
    name=N_("Backup codes"), notice_name=N_("Backup codes"),
    blurb=N_("Ten single-use codes to print and keep in a safe place, for when your other "
             "methods are out of reach."),
    login_fallback=True, proof_label=N_("Backup code"),
    disable_intro=N_("Enter one of your backup codes, and then click Disable. All your "
                     "backup codes will stop working."),
    code_hint=N_("10 letters and digits, for example abcde-12345. Each code works once."),
    hints=InputHints(inputmode="text", maxlength=24, autocapitalize=False),
    templates=Path(__file__).parent / "templates",
    # Whole sentences about this method (base.SENTENCES): its name is never spliced in.
    sentences={
        "enable": N_("Enable backup codes"),
        "disable": N_("Disable backup codes"),
        "enabled": N_("Backup codes are enabled."),
        "disabled": N_("Backup codes are disabled."),
        "switched": N_("The protection settings of backup codes were saved."),
        "notice_enabled": N_("Backup codes were enabled on your account."),
        "notice_disabled": N_("Backup codes were disabled on your account."),
        "notice_switched": N_("Protection settings changed for backup codes. Protected now: "
                              "%(protects)s."),
        "notice_locked": N_("Backup codes are locked for %(duration)s after too many wrong "
                            "attempts."),
        "switch_on": N_("Once this is on, you will be asked for a backup code when you confirm "
                        "this operation."),
        "switch_off": N_("A backup code will no longer be asked for on this operation."),
    },
)
METHOD = BackupCodesMethod()
