"""passkeys: several per account

Revision ID: 0006
Revises: 0005

A user's passkeys move from the method row (one credential, sealed in its secret
columns) to a table of their own. A passkey made before keeps its sealed credential:
it takes the method row's id as its own, which is what the seal is bound to.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('passkeys',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=False),
    sa.Column('method_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('secret_kid', sa.String(length=40), nullable=False),
    sa.Column('secret_ct', sa.LargeBinary(), nullable=False),
    sa.Column('sign_count', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['method_id'], ['methods.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('passkeys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_passkeys_user_id'), ['user_id'], unique=False)
    op.execute(
        "INSERT INTO passkeys (id, user_id, method_id, name, secret_kid, secret_ct, "
        "sign_count, created_at, last_used_at) "
        "SELECT id, user_id, id, 'Passkey', secret_kid, secret_ct, COALESCE(last_step, 0), "
        "COALESCE(enabled_at, created_at), last_used_at FROM methods "
        "WHERE type = 'webauthn' AND status = 'enabled' AND secret_ct IS NOT NULL")
    op.execute("UPDATE methods SET secret_kid = NULL, secret_ct = NULL, last_step = NULL "
               "WHERE type = 'webauthn'")


def downgrade() -> None:
    with op.batch_alter_table('passkeys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_passkeys_user_id'))
    op.drop_table('passkeys')
