"""method destinations sealed with the key ring

Revision ID: 0009
Revises: 0008

Phones and e-mail addresses of methods, codes and queued notices were stored in clear.
Each now lives as AES-GCM ciphertext bound to its row (``destination_kid``,
``destination_ct``), with a keyed hash (``destination_hash``) where the send caps and
the codes compare destinations; a code's or a notice's ciphertext is dropped once it
was sent. The send caps counted per destination under keys that named it
(``send-dest:+7916…``): they count under its keyed hash now.

Alembic has no keys: ``stepup.store.migrate.upgrade`` hands over the runtime's
``DestinationSeal`` (config attribute ``destination_seal``). Without it the migration
refuses when there is anything to seal. The clear values are overwritten before the
columns go; on SQLite the migrate step then rebuilds the file (``scrub``), so no old
page keeps them.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

SEAL = "destination_seal"
SCRUB = "scrub"
COUNTER = "send-dest:"
HEX = frozenset("0123456789abcdef")


def _attributes() -> dict[str, Any]:
    config = op.get_context().config
    return config.attributes if config is not None else {}


def _table(name: str, *cols: str) -> sa.TableClause:
    return sa.table(name, *(sa.column(c) for c in cols))


def upgrade() -> None:
    with op.batch_alter_table('methods', schema=None) as batch_op:
        batch_op.add_column(sa.Column('destination_kid', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('destination_ct', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('destination_hash', sa.String(length=64),
                                      nullable=True))
    with op.batch_alter_table('oob_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('destination_kid', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('destination_ct', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('destination_hash', sa.String(length=64),
                                      nullable=True))
    with op.batch_alter_table('notification_queue', schema=None) as batch_op:
        batch_op.add_column(sa.Column('destination_kid', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('destination_ct', sa.LargeBinary(), nullable=True))

    attributes = _attributes()
    seal = attributes.get(SEAL)
    changed = _seal_rows(seal)
    changed = _hash_counters(seal) or changed
    if changed:
        attributes[SCRUB] = True

    with op.batch_alter_table('methods', schema=None) as batch_op:
        batch_op.drop_column('destination')
    with op.batch_alter_table('oob_codes', schema=None) as batch_op:
        batch_op.drop_column('destination')
    with op.batch_alter_table('notification_queue', schema=None) as batch_op:
        batch_op.drop_column('destination')


def _needs_seal(seal: Any) -> Any:
    if seal is None:
        raise RuntimeError(
            "revision 0009 seals the phones and e-mail addresses stored in clear, and "
            "needs the key ring for it: upgrade with `stepup migrate` (or `stepup serve`), "
            "which use STEPUP_KEYRING and STEPUP_SECRET_KEY")
    return seal


def _seal_rows(seal: Any) -> bool:
    """Seal every destination in clear; True when there was any."""
    bind = op.get_bind()
    changed = False
    methods = _table('methods', 'id', 'destination', 'destination_kid', 'destination_ct',
                     'destination_hash')
    found = bind.execute(sa.select(methods.c.id, methods.c.destination)
                         .where(methods.c.destination.is_not(None))).all()
    if found:
        seal = _needs_seal(seal)
        values = []
        for row_id, destination in found:
            kid, ct = seal.seal('methods', row_id, destination)
            values.append({"_id": row_id, "destination_kid": kid, "destination_ct": ct,
                           "destination_hash": seal.hash(destination), "destination": None})
        bind.execute(sa.update(methods).where(methods.c.id == sa.bindparam("_id")), values)
        changed = True

    codes = _table('oob_codes', 'id', 'channel', 'destination', 'sent_at', 'destination_kid',
                   'destination_ct', 'destination_hash')
    # Passkey requests (webauthn) share the table and named no destination.
    codes_found = bind.execute(
        sa.select(codes.c.id, codes.c.destination, codes.c.sent_at)
        .where(codes.c.destination != '', codes.c.channel != 'webauthn')).all()
    if codes_found:
        seal = _needs_seal(seal)
        values = []
        for row_id, destination, sent_at in codes_found:
            # A code that went out needs its destination no more, only its hash.
            kid, ct = (None, None) if sent_at is not None else seal.seal('oob_codes', row_id,
                                                                         destination)
            values.append({"_id": row_id, "destination_kid": kid, "destination_ct": ct,
                           "destination_hash": seal.hash(destination), "destination": ''})
        bind.execute(sa.update(codes).where(codes.c.id == sa.bindparam("_id")), values)
        changed = True

    notices = _table('notification_queue', 'id', 'destination', 'sent_at', 'next_attempt_at',
                     'destination_kid', 'destination_ct')
    notices_found = bind.execute(
        sa.select(notices.c.id, notices.c.destination, notices.c.sent_at,
                  notices.c.next_attempt_at)
        .where(notices.c.destination != '')).all()
    if notices_found:
        seal = _needs_seal(seal)
        values = []
        for row_id, destination, sent_at, next_attempt_at in notices_found:
            done = sent_at is not None or next_attempt_at is None  # sent, or given up
            kid, ct = (None, None) if done else seal.seal('notification_queue', row_id,
                                                          destination)
            values.append({"_id": row_id, "destination_kid": kid, "destination_ct": ct,
                           "destination": ''})
        bind.execute(sa.update(notices).where(notices.c.id == sa.bindparam("_id")), values)
        changed = True
    return changed


def _hash_counters(seal: Any) -> bool:
    """The per-destination send counters count under the keyed hash from now on."""
    bind = op.get_bind()
    counters = _table('rate_counters', 'key', 'window_start', 'count')
    rows = bind.execute(sa.select(counters.c.key, counters.c.window_start, counters.c.count)
                        .where(counters.c.key.like(COUNTER + '%'))).all()
    clear = [r for r in rows if not _is_hash(r.key[len(COUNTER):])]
    if not clear:
        return False
    seal = _needs_seal(seal)
    totals: dict[tuple[str, Any], int] = defaultdict(int)
    for key, window, count in clear:
        totals[(COUNTER + seal.hash(key[len(COUNTER):]), window)] += count
    bind.execute(sa.delete(counters).where(counters.c.key == sa.bindparam("_key"),
                                           counters.c.window_start == sa.bindparam("_w")),
                 [{"_key": key, "_w": window} for key, window, _ in clear])
    bind.execute(sa.insert(counters), [{"key": key, "window_start": window, "count": count}
                                       for (key, window), count in totals.items()])
    return True


def _is_hash(value: str) -> bool:
    return len(value) == 64 and set(value) <= HEX


def downgrade() -> None:
    with op.batch_alter_table('methods', schema=None) as batch_op:
        batch_op.add_column(sa.Column('destination', sa.String(length=320), nullable=True))
    with op.batch_alter_table('oob_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('destination', sa.String(length=320), nullable=False,
                                      server_default=''))
    with op.batch_alter_table('notification_queue', schema=None) as batch_op:
        batch_op.add_column(sa.Column('destination', sa.String(length=320), nullable=False,
                                      server_default=''))

    bind = op.get_bind()
    seal = _attributes().get(SEAL)
    for name in ('methods', 'oob_codes', 'notification_queue'):
        t = _table(name, 'id', 'destination', 'destination_kid', 'destination_ct')
        rows = bind.execute(sa.select(t.c.id, t.c.destination_kid, t.c.destination_ct)
                            .where(t.c.destination_ct.is_not(None))).all()
        if rows:
            seal = _needs_seal(seal)
            bind.execute(sa.update(t).where(t.c.id == sa.bindparam("_id")),
                         [{"_id": row_id, "destination": seal.open(name, row_id, kid, ct)}
                          for row_id, kid, ct in rows])

    with op.batch_alter_table('notification_queue', schema=None) as batch_op:
        batch_op.drop_column('destination_ct')
        batch_op.drop_column('destination_kid')
    with op.batch_alter_table('oob_codes', schema=None) as batch_op:
        batch_op.drop_column('destination_hash')
        batch_op.drop_column('destination_ct')
        batch_op.drop_column('destination_kid')
    with op.batch_alter_table('methods', schema=None) as batch_op:
        batch_op.drop_column('destination_hash')
        batch_op.drop_column('destination_ct')
        batch_op.drop_column('destination_kid')
