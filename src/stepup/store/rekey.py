"""Queries of key-ring rotation (services/rekey.py): count sealed values per key id, read
a page of values sealed with another key than the active one, put one back sealed with
the active key — only if nobody changed it meanwhile — and the retired key ids.

They work on any (key id, ciphertext) pair of columns: the services name the pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, inspect, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from stepup.store.models import RetiredDataKey

Attr = InstrumentedAttribute[Any]


@dataclass(frozen=True)
class SealedRow:
    """One sealed value as read: its row's primary key, key id, ciphertext, and the
    values of the columns its associated data is made of."""

    key: tuple[Any, ...]
    kid: str
    ct: bytes
    binds: tuple[Any, ...]


def _primary_key(kid: Attr) -> tuple[ColumnElement[Any], ...]:
    return tuple(inspect(kid.class_).primary_key)


def _is_key(cols: tuple[ColumnElement[Any], ...], values: tuple[Any, ...]
            ) -> ColumnElement[bool]:
    return and_(*(c == v for c, v in zip(cols, values, strict=True)))


async def count_by_kid(db: AsyncSession, kid: Attr, ct: Attr) -> dict[str, int]:
    """How many values of this column each key id seals (an absent value counts for
    none: a destination dropped once sent)."""
    q = (select(kid, func.count()).where(kid.is_not(None), ct.is_not(None)).group_by(kid))
    return {str(k): int(n) for k, n in (await db.execute(q)).all()}


async def page_to_reseal(db: AsyncSession, kid: Attr, ct: Attr, binds: Sequence[Attr], *,
                         active: str, after: tuple[Any, ...] | None, limit: int
                         ) -> list[SealedRow]:
    """Up to ``limit`` values sealed with another key than ``active``, in primary-key
    order after ``after`` (so a value that cannot be resealed is passed, not read again).
    """
    pk = _primary_key(kid)
    q = select(*pk, kid, ct, *binds).where(kid.is_not(None), ct.is_not(None), kid != active)
    if after is not None:
        q = q.where(tuple_(*pk) > tuple_(*after) if len(pk) > 1 else pk[0] > after[0])
    rows = (await db.execute(q.order_by(*pk).limit(limit))).all()
    n = len(pk)
    return [SealedRow(key=tuple(r[:n]), kid=str(r[n]), ct=bytes(r[n + 1]),
                      binds=tuple(r[n + 2:])) for r in rows]


async def reseal(db: AsyncSession, kid: Attr, ct: Attr, row: SealedRow, new_kid: str,
                 new_ct: bytes) -> bool:
    """Replace the value read as ``row`` by ``new_ct`` sealed with ``new_kid``, only if
    the row still holds exactly what was read: a value the service rewrote meanwhile (it
    is then sealed with the active key already) stays as it is. True if replaced."""
    pk = _primary_key(kid)
    res = await db.execute(
        update(kid.class_)
        .where(_is_key(pk, row.key), kid == row.kid, ct == row.ct)
        .values({kid: new_kid, ct: new_ct})
        .execution_options(synchronize_session=False))
    return int(getattr(res, "rowcount", 0)) == 1


async def retired_kids(db: AsyncSession) -> list[str]:
    return list((await db.execute(select(RetiredDataKey.kid).order_by(RetiredDataKey.kid)))
                .scalars())


async def retire(db: AsyncSession, kid: str, when: datetime) -> bool:
    """Record ``kid`` as retired; False if it already was."""
    if await db.get(RetiredDataKey, kid) is not None:
        return False
    db.add(RetiredDataKey(kid=kid, retired_at=when))
    await db.flush()
    return True
