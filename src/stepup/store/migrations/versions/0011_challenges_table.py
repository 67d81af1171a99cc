"""the table of codes and passkey requests is named for what it holds: challenges

Revision ID: 0011
Revises: 0010

``oob_codes`` held the out-of-band codes and, since 0006, the passkey requests too: it
is ``challenges`` now, its lookup index ``ix_challenges_lookup`` (and on PostgreSQL its
primary and foreign key constraints are renamed with it). A sealed destination is bound
to its table's name (``dest:<table>:<row id>``): a code still waiting for delivery is
sealed again under the new name, with the runtime's ``DestinationSeal`` (as 0009; without
it the migration refuses when there is such a code, and changes nothing).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

SEAL = "destination_seal"
COLUMNS = ('user_id', 'channel', 'purpose')


def _seal() -> Any:
    config = op.get_context().config
    return config.attributes.get(SEAL) if config is not None else None


def _rename(old: str, new: str) -> None:
    op.drop_index(f'ix_{old}_lookup', table_name=old)
    _reseal(old, new)
    op.rename_table(old, new)
    op.create_index(f'ix_{new}_lookup', new, list(COLUMNS), unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        for suffix in ('pkey', 'user_id_fkey'):
            op.execute(f'ALTER TABLE {new} RENAME CONSTRAINT {old}_{suffix} TO {new}_{suffix}')


def _reseal(old: str, new: str) -> None:
    """Seal the destinations still waiting for delivery under the table's new name."""
    bind = op.get_bind()
    t = sa.table(old, sa.column('id'), sa.column('destination_kid'),
                 sa.column('destination_ct'))
    rows = bind.execute(sa.select(t.c.id, t.c.destination_kid, t.c.destination_ct)
                        .where(t.c.destination_ct.is_not(None))).all()
    if not rows:
        return
    seal = _seal()
    if seal is None:
        raise RuntimeError(
            f"revision {revision} seals the destinations of codes waiting for delivery "
            "under the table's new name, and needs the key ring for it: upgrade with "
            "`stepup migrate` (or `stepup serve`), which use STEPUP_KEYRING and "
            "STEPUP_SECRET_KEY")
    values = []
    for row_id, kid, ct in rows:
        new_kid, new_ct = seal.seal(new, row_id, seal.open(old, row_id, kid, ct))
        values.append({"_id": row_id, "destination_kid": new_kid, "destination_ct": new_ct})
    bind.execute(sa.update(t).where(t.c.id == sa.bindparam("_id")), values)


def upgrade() -> None:
    _rename('oob_codes', 'challenges')


def downgrade() -> None:
    _rename('challenges', 'oob_codes')
