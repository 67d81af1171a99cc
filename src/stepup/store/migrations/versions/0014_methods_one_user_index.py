"""methods: one index on user_id, not two

Revision ID: 0014
Revises: 0013

The unique index of (user_id, type), which every lookup of a user's method goes
through, begins with user_id: it also answers "all this user's methods" and the cascade
from a deleted user, on SQLite and on PostgreSQL. ``ix_methods_user_id`` repeated it,
and every method written was written into both.
"""

from __future__ import annotations

from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_methods_user_id', table_name='methods')


def downgrade() -> None:
    op.create_index('ix_methods_user_id', 'methods', ['user_id'], unique=False)
