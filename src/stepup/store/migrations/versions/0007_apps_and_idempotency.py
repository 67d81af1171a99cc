"""apps (tenants) and idempotency keys

Revision ID: 0007
Revises: 0006

Every user and every app key now belongs to one app. The built-in app ``portal`` holds
the people who signed up on StepUp's own pages; users that an API key created (their
``account.created`` event names an ``app:`` actor) and every existing app key move to
the app ``default``, made here when there is anything to put in it. The e-mail and the
external id are unique per app, no longer across all of StepUp.

On SQLite the users table is rebuilt; ``stepup.store.migrate`` turns foreign keys off
around the migration (dropping the old table would otherwise cascade to every row that
references a user) and checks them before committing.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    op.create_table('apps',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=120), nullable=False),
    sa.Column('url', sa.String(length=300), nullable=True),
    sa.Column('sends_per_hour', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name', name='uq_apps_name')
    )
    op.create_table('idempotency_keys',
    sa.Column('scope', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('status', sa.Integer(), nullable=True),
    sa.Column('content_type', sa.String(length=100), nullable=True),
    sa.Column('body_kid', sa.String(length=40), nullable=True),
    sa.Column('body', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'key')
    )
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.create_index('ix_idempotency_expires', ['expires_at'], unique=False)

    bind = op.get_bind()
    now = datetime.now(UTC)
    if bind.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)
    apps = sa.table('apps', sa.column('id'), sa.column('name'), sa.column('display_name'),
                    sa.column('created_at'))
    op.bulk_insert(apps, [{"id": "portal", "name": "portal", "display_name": "StepUp",
                           "created_at": now}])

    sqlite = bind.dialect.name == "sqlite"
    with op.batch_alter_table('users', schema=None,
                              naming_convention=NAMING if sqlite else None) as batch_op:
        batch_op.add_column(sa.Column('app_id', sa.String(length=32), nullable=False,
                                      server_default='portal'))
        batch_op.drop_index('ix_users_external_id')
        batch_op.drop_constraint('uq_users_email' if sqlite else 'users_email_key',
                                 type_='unique')
        batch_op.create_foreign_key('fk_users_app_id', 'apps', ['app_id'], ['id'])
        batch_op.create_unique_constraint('uq_users_app_email', ['app_id', 'email'])
        batch_op.create_unique_constraint('uq_users_app_external_id', ['app_id', 'external_id'])
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('app_id', sa.String(length=32), nullable=True))
        batch_op.create_foreign_key('fk_api_keys_app_id', 'apps', ['app_id'], ['id'])

    # Who goes to the app "default": users created through an API key, and app keys.
    made_by_keys = bind.execute(sa.text(
        "SELECT DISTINCT user_id FROM audit_events WHERE event = 'account.created' "
        "AND actor LIKE 'app:%' AND user_id IS NOT NULL")).scalars().all()
    app_keys = bind.execute(sa.text("SELECT count(*) FROM api_keys WHERE role = 'app'")
                            ).scalar_one()
    if made_by_keys or app_keys:
        default_id = secrets.token_hex(16)
        op.bulk_insert(apps, [{"id": default_id, "name": "default", "display_name": "StepUp",
                               "created_at": now}])
        bind.execute(sa.text("UPDATE api_keys SET app_id = :app WHERE role = 'app'"),
                     {"app": default_id})
        users = sa.table('users', sa.column('id'), sa.column('app_id'))
        ids = list(made_by_keys)
        for start in range(0, len(ids), 500):
            bind.execute(users.update().where(users.c.id.in_(ids[start:start + 500]))
                         .values(app_id=default_id))


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_constraint('fk_api_keys_app_id', type_='foreignkey')
        batch_op.drop_column('app_id')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint('uq_users_app_external_id', type_='unique')
        batch_op.drop_constraint('uq_users_app_email', type_='unique')
        batch_op.drop_constraint('fk_users_app_id', type_='foreignkey')
        batch_op.drop_column('app_id')
        batch_op.create_unique_constraint('uq_users_email' if sqlite else 'users_email_key',
                                          ['email'])
        batch_op.create_index('ix_users_external_id', ['external_id'], unique=True)
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_idempotency_expires')
    op.drop_table('idempotency_keys')
    op.drop_table('apps')
