"""staff sign in as users of the hidden app ``staff``

Revision ID: 0012
Revises: 0011

Staff had their own password hash, authenticator seed (``totp_kid``/``totp_ct``, sealed
for ``staff-totp:<staff id>``), time step and sessions table. Each staff member is now
backed by a user of the built-in, hidden app ``staff`` (``staff.user_id``): the password
hash is copied (argon2 already), the seed becomes an enabled ``totp`` method protecting
login, sealed again for the method (``totp:<user id>:<method id>``) with the runtime's
key ring, and the last accepted time step goes with it, so no code used before works
again. Staff sessions end (the staff log in again); the old columns, the sessions table
and the staff lock counters go.

Alembic has no keys: ``stepup.store.migrate.upgrade`` hands over the runtime's
``DestinationSeal`` (config attribute ``destination_seal``), whose key ring re-seals the
seeds. Without it the migration refuses when a staff member has a seed, and changes
nothing.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

SEAL = "destination_seal"
SCRUB = "scrub"
STAFF_APP = "staff"


def _attributes() -> dict[str, Any]:
    config = op.get_context().config
    return config.attributes if config is not None else {}


def _keyring() -> Any:
    seal = _attributes().get(SEAL)
    if seal is None:
        raise RuntimeError(
            f"revision {revision} seals the staff authenticator seeds again for their new "
            "methods, and needs the key ring for it: upgrade with `stepup migrate` (or "
            "`stepup serve`), which use STEPUP_KEYRING and STEPUP_SECRET_KEY")
    return seal.keyring


def _staff_aad(staff_id: str) -> bytes:
    return f"staff-totp:{staff_id}".encode()


def _totp_aad(user_id: str, method_id: str) -> bytes:
    return f"totp:{user_id}:{method_id}".encode()


APPS = sa.table('apps', sa.column('id'), sa.column('name'), sa.column('display_name'),
                sa.column('url'), sa.column('sends_per_hour'), sa.column('webhook_url'),
                sa.column('webhook_secret_kid'), sa.column('webhook_secret_ct'),
                sa.column('notices'), sa.column('created_at', sa.DateTime(timezone=True)))
USERS = sa.table('users', sa.column('id'), sa.column('app_id'), sa.column('email'),
                 sa.column('email_verified'), sa.column('phone_verified'),
                 sa.column('verification_grade'), sa.column('password_hash'),
                 sa.column('pin_hash'), sa.column('external_id'), sa.column('must_enroll'),
                 sa.column('audit_head'), sa.column('language'), sa.column('created_at'))
METHODS = sa.table('methods', sa.column('id'), sa.column('user_id'), sa.column('type'),
                   sa.column('status'), sa.column('protects', sa.JSON),
                   sa.column('secret_kid'), sa.column('secret_ct'),
                   sa.column('destination_kid'), sa.column('destination_ct'),
                   sa.column('destination_hash'), sa.column('last_step'),
                   sa.column('created_at'), sa.column('enabled_at'),
                   sa.column('last_used_at'))
OLD_STAFF = sa.table('staff', sa.column('id'), sa.column('email'),
                     sa.column('password_hash'), sa.column('totp_kid'),
                     sa.column('totp_ct'), sa.column('totp_last_step'),
                     sa.column('created_at'), sa.column('user_id'))


def _ensure_staff_app() -> None:
    bind = op.get_bind()
    if bind.execute(sa.select(APPS.c.id).where(APPS.c.id == STAFF_APP)).first() is None:
        # Hidden: no key is ever made for it; its users hear no notices of StepUp's.
        bind.execute(sa.insert(APPS).values(
            id=STAFF_APP, name=STAFF_APP, display_name="StepUp support", url=None,
            sends_per_hour=None, webhook_url=None, webhook_secret_kid=None,
            webhook_secret_ct=None, notices=False, created_at=datetime.now(UTC)))


def _move_staff() -> bool:
    """A user (and a TOTP method) for each staff member; True when there was any."""
    bind = op.get_bind()
    rows = bind.execute(sa.select(OLD_STAFF)).all()
    if not rows:
        return False
    keyring: Any = _keyring() if any(r.totp_ct is not None for r in rows) else None
    _ensure_staff_app()
    for r in rows:
        user_id = secrets.token_hex(16)
        bind.execute(sa.insert(USERS).values(
            id=user_id, app_id=STAFF_APP, email=r.email, email_verified=True,
            phone_verified=False, verification_grade=0, password_hash=r.password_hash,
            pin_hash=None, external_id=None, must_enroll=False, audit_head=None,
            language='en', created_at=r.created_at))
        if r.totp_ct is not None:
            method_id = secrets.token_hex(16)
            secret = keyring.decrypt(r.totp_kid, r.totp_ct, _staff_aad(r.id))
            kid, ct = keyring.encrypt(secret, _totp_aad(user_id, method_id))
            bind.execute(sa.insert(METHODS).values(
                id=method_id, user_id=user_id, type='totp', status='enabled',
                protects={"login": True}, secret_kid=kid, secret_ct=ct,
                destination_kid=None, destination_ct=None, destination_hash=None,
                last_step=r.totp_last_step, created_at=r.created_at,
                enabled_at=r.created_at, last_used_at=None))
        bind.execute(sa.update(OLD_STAFF).where(OLD_STAFF.c.id == r.id)
                     .values(user_id=user_id, password_hash='', totp_kid=None,
                             totp_ct=None))
    return True


def upgrade() -> None:
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.add_column(sa.Column('user_id', sa.String(length=32), nullable=True))
    moved = _move_staff()
    # The staff lock counters (``staff-email:…``, ``staff-staff:…``): the user rules
    # count from now on.
    counters = sa.table('rate_counters', sa.column('key'))
    op.get_bind().execute(sa.delete(counters).where(counters.c.key.like('staff-%')))

    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_sessions_staff_id'))
    op.drop_table('staff_sessions')
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.alter_column('user_id', existing_type=sa.String(length=32), nullable=False)
        batch_op.create_unique_constraint('uq_staff_user_id', ['user_id'])
        batch_op.create_foreign_key('fk_staff_user_id', 'users', ['user_id'], ['id'],
                                    ondelete='CASCADE')
        batch_op.drop_column('totp_last_step')
        batch_op.drop_column('totp_ct')
        batch_op.drop_column('totp_kid')
        batch_op.drop_column('password_hash')
    if moved:
        # The seeds' old ciphertexts and the hashes were overwritten: SQLite rebuilds
        # the file so no free page keeps them.
        _attributes()[SCRUB] = True


def downgrade() -> None:
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_hash', sa.String(length=200), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('totp_kid', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('totp_ct', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
    op.create_table('staff_sessions',
                    sa.Column('id', sa.String(length=32), nullable=False),
                    sa.Column('token_hash', sa.LargeBinary(length=32), nullable=False),
                    sa.Column('staff_id', sa.String(length=32), nullable=False),
                    sa.Column('second_factor_at', sa.DateTime(timezone=True), nullable=True),
                    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
                    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
                    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], ondelete='CASCADE'),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('token_hash'))
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_sessions_staff_id'), ['staff_id'],
                              unique=False)
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(OLD_STAFF.c.id, OLD_STAFF.c.user_id, USERS.c.password_hash, METHODS.c.id,
                  METHODS.c.secret_kid, METHODS.c.secret_ct, METHODS.c.last_step)
        .select_from(OLD_STAFF.join(USERS, USERS.c.id == OLD_STAFF.c.user_id)
                     .outerjoin(METHODS, (METHODS.c.user_id == USERS.c.id)
                                & (METHODS.c.type == 'totp')
                                & (METHODS.c.status == 'enabled')))).all()
    keyring: Any = _keyring() if any(r[5] is not None for r in rows) else None
    for staff_id, user_id, password_hash, method_id, kid, ct, last_step in rows:
        values: dict[str, Any] = {"password_hash": password_hash or ''}
        if ct is not None:
            secret = keyring.decrypt(kid, ct, _totp_aad(user_id, method_id))
            values["totp_kid"], values["totp_ct"] = keyring.encrypt(secret,
                                                                    _staff_aad(staff_id))
            values["totp_last_step"] = last_step
        bind.execute(sa.update(OLD_STAFF).where(OLD_STAFF.c.id == staff_id).values(**values))
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.drop_constraint('fk_staff_user_id', type_='foreignkey')
        batch_op.drop_constraint('uq_staff_user_id', type_='unique')
        batch_op.drop_column('user_id')
    # The users of the app ``staff`` stay (with everything that hangs off them): nothing
    # before this revision reads them.
