"""Rotating the key ring that seals data at rest: ``stepup keys rotate-data`` and
``stepup keys retire-data KID``.

:data:`SEALED` lists every column sealed with the key ring — the key id column, the
ciphertext column, and the associated data that binds a value to its row. Each
associated-data function is the one its owner seals with (imported, never rewritten
here), so rotation opens and seals exactly as the owner does.

Rotation re-encrypts every value whose key id is not the active key's (the first of the
ring), column by column in pages of ``batch`` rows: a page is read without a write lock,
re-encrypted, and written back in one short transaction, each row by a conditional
UPDATE that changes it only if it still holds what was read. A value the serving process
rewrote meanwhile is sealed with the active key already, and is left alone; so rotation
runs while StepUp serves, and a second run goes on where the first stopped. Values whose
key is not in the ring (or does not open them) are counted and passed over.

A retired key id is recorded in ``retired_data_keys``; every process drops it from its
ring when it starts (:func:`apply_retirements`), so nothing decrypts with it again even
if it is still written in ``STEPUP_KEYRING``.

Where the ring comes from: ``STEPUP_KEYRING`` (the operator puts a new key first and
restarts), or in development the keys file in the data directory, which
:func:`add_dev_key` and :func:`retire` edit (atomically, 0600).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag

from stepup.config import ConfigurationError, Settings
from stepup.domain import sealing
from stepup.domain.errors import Conflict, NotFound
from stepup.domain.keyring import KeyRing, KeyRingError
from stepup.methods.totp import _aad as totp_aad
from stepup.methods.webauthn.ceremony import aad as passkey_aad
from stepup.services import audit
from stepup.services.idempotency import _aad as idempotency_aad
from stepup.services.receipts import _aad as receipt_key_aad
from stepup.services.runtime import Actor, Runtime, dev_keys_file
from stepup.services.webhooks import _aad as webhook_secret_aad
from stepup.store import rekey as store
from stepup.store.models import (
    App,
    Base,
    IdempotencyRecord,
    Method,
    Passkey,
    ReceiptKey,
)

log = logging.getLogger("stepup")

DEFAULT_BATCH = 500


@dataclass(frozen=True)
class SealedColumn:
    """One column sealed with the key ring."""

    kid: store.Attr  # the key id stored beside the ciphertext
    ct: store.Attr  # the ciphertext (nonce first)
    binds: tuple[store.Attr, ...]  # the columns the associated data is made of, in order
    aad: Callable[..., bytes]  # the owner's own associated-data function, given ``binds``

    @property
    def name(self) -> str:
        return f"{self.ct.class_.__tablename__}.{self.ct.key}"


def _destinations() -> tuple[SealedColumn, ...]:
    """The sealed destinations, as domain/sealing.py lists them: bound to their row id."""
    models = {m.class_.__tablename__: m.class_ for m in Base.registry.mappers}
    return tuple(SealedColumn(getattr(models[table], kid), getattr(models[table], ct),
                              (models[table].id,), partial(sealing.aad, table))
                 for table, kid, ct, _prefix in sealing.SEALED)


SEALED: tuple[SealedColumn, ...] = (
    SealedColumn(Method.secret_kid, Method.secret_ct, (Method.user_id, Method.id), totp_aad),
    SealedColumn(Passkey.secret_kid, Passkey.secret_ct, (Passkey.user_id, Passkey.id),
                 passkey_aad),
    SealedColumn(ReceiptKey.secret_kid, ReceiptKey.secret_ct, (ReceiptKey.kid,),
                 receipt_key_aad),
    SealedColumn(App.webhook_secret_kid, App.webhook_secret_ct, (App.id,),
                 webhook_secret_aad),
    SealedColumn(IdempotencyRecord.body_kid, IdempotencyRecord.body,
                 (IdempotencyRecord.scope, IdempotencyRecord.key), idempotency_aad),
    *_destinations(),
)


# --- retired keys ------------------------------------------------------------------------


async def apply_retirements(rt: Runtime) -> list[str]:
    """Drop the retired key ids from this process's ring (run when a process starts);
    the ids that were still configured are returned, each logged as a warning."""
    async with rt.read() as db:
        kids = await store.retired_kids(db)
    try:
        dropped = rt.keyring.retire(kids)
    except KeyRingError as exc:
        raise ConfigurationError(f"the key ring: {exc}") from exc
    for kid in dropped:
        log.warning("key %s of the key ring was retired (stepup keys retire-data) and "
                    "decrypts nothing: remove it from STEPUP_KEYRING", kid)
    return dropped


# --- counting ----------------------------------------------------------------------------


async def census(rt: Runtime, columns: Sequence[SealedColumn] = SEALED
                 ) -> dict[str, dict[str, int]]:
    """How many values each key id seals, per column."""
    async with rt.read() as db:
        return {c.name: await store.count_by_kid(db, c.kid, c.ct) for c in columns}


# --- rotation ----------------------------------------------------------------------------


@dataclass
class ColumnReport:
    """What one rotation did to one column."""

    name: str
    resealed: int = 0  # now sealed with the active key
    changed: int = 0  # rewritten (or removed) by someone else meanwhile: left as it is
    unknown: Counter[str] = field(default_factory=Counter)  # key id not in the ring
    unopened: int = 0  # its key did not open it (other key bytes, or a moved value)
    remaining: dict[str, int] = field(default_factory=dict)  # per key id, afterwards

    def merge(self, other: ColumnReport) -> None:
        self.resealed += other.resealed
        self.changed += other.changed
        self.unknown.update(other.unknown)
        self.unopened += other.unopened


@dataclass
class Rotation:
    active: str
    columns: list[ColumnReport]

    @property
    def left_behind(self) -> dict[str, int]:
        """Values still sealed with another key than the active one, per key id."""
        total: Counter[str] = Counter()
        for c in self.columns:
            total.update({k: n for k, n in c.remaining.items() if k != self.active})
        return dict(total)


async def read_page(rt: Runtime, column: SealedColumn, *, after: tuple[Any, ...] | None,
                    limit: int) -> list[store.SealedRow]:
    """The next ``limit`` values of ``column`` sealed with another key than the active one."""
    async with rt.read() as db:
        return await store.page_to_reseal(db, column.kid, column.ct, column.binds,
                                          active=rt.keyring.active_kid, after=after,
                                          limit=limit)


async def reseal_page(rt: Runtime, column: SealedColumn, rows: Sequence[store.SealedRow]
                      ) -> ColumnReport:
    """Seal ``rows`` (as read by :func:`read_page`) with the active key, in one short
    transaction; a row changed since it was read is left alone."""
    report = ColumnReport(column.name)
    sealed = []
    for row in rows:
        aad = column.aad(*row.binds)
        try:
            plain = rt.keyring.decrypt(row.kid, row.ct, aad)
        except KeyRingError:
            report.unknown[row.kid] += 1
            continue
        except InvalidTag:
            report.unopened += 1
            continue
        sealed.append((row, *rt.keyring.encrypt(plain, aad)))
    if sealed:
        async with rt.db() as db:
            for row, kid, ct in sealed:
                if await store.reseal(db, column.kid, column.ct, row, kid, ct):
                    report.resealed += 1
                else:
                    report.changed += 1
            await db.commit()
    return report


async def rotate_column(rt: Runtime, column: SealedColumn, batch: int = DEFAULT_BATCH
                        ) -> ColumnReport:
    report = ColumnReport(column.name)
    after = None
    while rows := await read_page(rt, column, after=after, limit=batch):
        after = rows[-1].key
        report.merge(await reseal_page(rt, column, rows))
    return report


async def rotate(rt: Runtime, actor: Actor, batch: int = DEFAULT_BATCH,
                 columns: Sequence[SealedColumn] = SEALED) -> Rotation:
    """Re-encrypt every sealed value with the active key (audited once, at the end)."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    await apply_retirements(rt)
    result = Rotation(rt.keyring.active_kid, [])
    for column in columns:
        report = await rotate_column(rt, column, batch)
        result.columns.append(report)
    counts = await census(rt, columns)
    for report in result.columns:
        report.remaining = counts[report.name]
    async with rt.db() as db:
        await audit.record(db, rt.clock, actor, "data_key.rotated", None,
                           active=result.active,
                           resealed={c.name: c.resealed for c in result.columns if c.resealed},
                           left_behind=result.left_behind)
        await db.commit()
    return result


# --- retirement --------------------------------------------------------------------------


@dataclass
class Retirement:
    kid: str
    newly: bool  # False: it was retired before
    dev_file: Path | None  # the development keys file it was removed from, if any


async def retire(rt: Runtime, actor: Actor, kid: str) -> Retirement:
    """Record ``kid`` as retired, if nothing is sealed with it and it is not the active
    key (Conflict otherwise, naming what is left); then drop it from the development keys
    file, if the ring comes from there."""
    if kid == rt.keyring.active_kid:
        raise Conflict(f"{kid} is the active key, which seals every new value: make "
                       "another key active first (`stepup keys rotate-data --new-key` with "
                       "the development keys file; with STEPUP_KEYRING, put a key from "
                       "`stepup keys new-data-key` first and restart), then rotate.")
    await apply_retirements(rt)
    # Counted without a write lock (whole columns are read); what may seal with the key
    # meanwhile is a process still running with it first, which step 3 of the runbook
    # (restart every process) rules out.
    left = {name: n for name, per_kid in (await census(rt)).items()
            if (n := per_kid.get(kid, 0))}
    if left:
        where = ", ".join(f"{name} {n}" for name, n in left.items())
        raise Conflict(f"{sum(left.values())} values are still sealed with {kid} "
                       f"({where}): run `stepup keys rotate-data` first.")
    async with rt.db() as db:
        already = kid in await store.retired_kids(db)
        if not already and kid not in rt.keyring.kids:
            raise NotFound(f"There is no key {kid} in the key ring "
                           f"(it holds {', '.join(rt.keyring.kids)}).")
        if not already:
            await store.retire(db, kid, rt.clock.now())
            await audit.record(db, rt.clock, actor, "data_key.retired", None, kid=kid)
        await db.commit()
    rt.keyring.retire([kid])
    return Retirement(kid, not already, _drop_dev_key(rt.settings, kid))


# --- the development keys file -------------------------------------------------------


def uses_dev_keys(settings: Settings) -> bool:
    """Whether the key ring comes from the keys file in the data directory."""
    return not settings.keyring


def next_dev_kid(ring: KeyRing) -> str:
    """``dev2``, ``dev3``...: never an id the ring holds or held (a retired one)."""
    numbers = [int(m.group(1)) for kid in (*ring.kids, *ring.retired)
               if (m := re.fullmatch(r"dev(\d+)", kid))]
    return f"dev{max([1, *numbers]) + 1}"


async def add_dev_key(rt: Runtime, actor: Actor) -> str:
    """Put a new key in front of the development keys file's ring and use it from now on
    in this process (others read it when they start). Its id: ``dev2``, ``dev3``..."""
    if not uses_dev_keys(rt.settings):
        raise ConfigurationError("STEPUP_KEYRING is set: put a new key first there "
                                 "(`stepup keys new-data-key` makes one) and restart")
    path = dev_keys_file(rt.settings)
    data = _read(path)
    kid, key = next_dev_kid(rt.keyring), os.urandom(32)
    in_file = KeyRing.parse(data["keyring"])
    in_file.add_first(kid, key)
    _write(path, {**data, "keyring": in_file.spec()})  # on disk before it seals anything
    rt.keyring.add_first(kid, key)
    async with rt.db() as db:
        await audit.record(db, rt.clock, actor, "data_key.added", None, kid=kid)
        await db.commit()
    return kid


def _drop_dev_key(settings: Settings, kid: str) -> Path | None:
    if not uses_dev_keys(settings):
        return None
    path = dev_keys_file(settings)
    data = _read(path)
    ring = KeyRing.parse(data["keyring"])
    if kid not in ring.kids:
        return None
    _write(path, {**data, "keyring": ring.without(kid).spec()})
    return path


def _read(path: Path) -> dict[str, str]:
    loaded: dict[str, str] = json.loads(path.read_text())
    return loaded


def _write(path: Path, data: dict[str, str]) -> None:
    """Replace the keys file atomically: a crash leaves the old file or the new one,
    never half of one, and the new one is on disk before anything is sealed with it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
