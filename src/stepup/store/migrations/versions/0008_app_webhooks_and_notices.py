"""webhooks and notices per app

Revision ID: 0008
Revises: 0007

Each app may have its own webhook URL and secret (the secret sealed with the key ring)
and may turn StepUp's own security notices off for its users; deliveries record the
app they are for; open operations are found by their expiry (the expiry sweep).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('webhook_url', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('webhook_secret_kid', sa.String(length=40),
                                      nullable=True))
        batch_op.add_column(sa.Column('webhook_secret_ct', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('notices', sa.Boolean(), nullable=False,
                                      server_default=sa.true()))
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('app_id', sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f('ix_webhook_deliveries_app_id'), ['app_id'],
                              unique=False)
    with op.batch_alter_table('operations', schema=None) as batch_op:
        batch_op.create_index('ix_operations_open_expiry', ['status', 'expires_at'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('operations', schema=None) as batch_op:
        batch_op.drop_index('ix_operations_open_expiry')
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_deliveries_app_id'))
        batch_op.drop_column('app_id')
    with op.batch_alter_table('apps', schema=None) as batch_op:
        batch_op.drop_column('notices')
        batch_op.drop_column('webhook_secret_ct')
        batch_op.drop_column('webhook_secret_kid')
        batch_op.drop_column('webhook_url')
