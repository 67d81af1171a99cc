"""audit_events: a partial index of the origin events, by account and time

Revision ID: 0016
Revises: 0015

A login's new-device check reads the account's logins and sign-up since a date. Through
``ix_audit_events_user_id`` alone that read every event of the account, its whole
history, to find the few that count; this index holds only those events
(``models.records.ORIGIN_EVENTS``), so the check reads what it needs however long the
history is. Building it reads the audit table once; on PostgreSQL, writes to the table
wait for it meanwhile, so a large deployment may build it beforehand with ``CREATE INDEX
CONCURRENTLY`` (docs/deployment.md, "Upgrades"): the migration then finds it made.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

# As written here, not imported: a migration keeps the schema of its own day.
_ORIGIN_ROWS = sa.text("event IN ('login.succeeded', 'account.created')")


def upgrade() -> None:
    op.create_index('ix_audit_events_origins', 'audit_events', ['user_id', 'created_at'],
                    unique=False, if_not_exists=True,
                    sqlite_where=_ORIGIN_ROWS, postgresql_where=_ORIGIN_ROWS)


def downgrade() -> None:
    op.drop_index('ix_audit_events_origins', table_name='audit_events')
