"""retired data keys

Revision ID: 0010
Revises: 0009

``stepup keys retire-data KID`` records here a key id of the key ring that nothing is
sealed with any more (``stepup keys rotate-data`` moved every value to the active key);
every process drops a retired key from its ring when it starts, so it decrypts nothing
again, even if it is still written in ``STEPUP_KEYRING``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('retired_data_keys',
    sa.Column('kid', sa.String(length=40), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('kid')
    )


def downgrade() -> None:
    op.drop_table('retired_data_keys')
