"""SQLAlchemy models. The schema itself is created by the Alembic migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from stepup.domain.policy import MethodStatus


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every database (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class MethodStatusType(TypeDecorator[MethodStatus]):
    """A method's status: stored as its value ("pending", "enabled"), read as the enum."""

    impl = String(10)
    cache_ok = True

    def process_bind_param(self, value: MethodStatus | str | None, dialect: Dialect
                           ) -> str | None:
        return None if value is None else MethodStatus(value).value

    def process_result_value(self, value: str | None, dialect: Dialect
                             ) -> MethodStatus | None:
        return None if value is None else MethodStatus(value)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(),
                                                     dict[str, Any]: JSON,
                                                     list[str]: JSON}


# The built-in app of the people who sign up on StepUp's own pages.
PORTAL_APP_ID = "portal"
# The built-in, hidden app of the support staff: each staff member signs in as a user of
# it (services/staff.py). No API key belongs to it, so no portal ever sees these users.
STAFF_APP_ID = "staff"


class App(Base):
    """A portal that embeds StepUp (a tenant): its API keys see only its users.

    ``portal`` is built in: StepUp's own pages and the people who sign up there.
    """

    __tablename__ = "apps"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    url: Mapped[str | None] = mapped_column(String(300))
    # Codes sent per hour for all of the app's users together (None: the setting).
    sends_per_hour: Mapped[int | None] = mapped_column(Integer)
    # Where its webhooks go (None: STEPUP_WEBHOOK_URL), and their signing secret, sealed
    # with the key ring (it must be read to sign, so it is encrypted, not hashed).
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    webhook_secret_kid: Mapped[str | None] = mapped_column(String(40))
    webhook_secret_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    # False: StepUp sends its users no security notices of its own (the portal tells
    # them, from the webhook events); the recovery notices go out whatever this says.
    notices: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class User(Base):
    __tablename__ = "users"
    # The same e-mail (or external id) may belong to one user in each app.
    __table_args__ = (UniqueConstraint("app_id", "email", name="uq_users_app_email"),
                      UniqueConstraint("app_id", "external_id", name="uq_users_app_external_id"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id"), default=PORTAL_APP_ID)
    email: Mapped[str] = mapped_column(String(320))
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    phone_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    verification_grade: Mapped[int] = mapped_column(Integer, default=0)
    # Both may be absent for users a portal created through the integration API.
    password_hash: Mapped[str | None] = mapped_column(String(200))
    pin_hash: Mapped[str | None] = mapped_column(String(200))
    external_id: Mapped[str | None] = mapped_column(String(200))
    # After a support reset: the next login must enrol a method before anything else.
    must_enroll: Mapped[bool] = mapped_column(Boolean, default=False)
    # Head of this account's audit hash chain (see AuditEvent).
    audit_head: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8), default="en")
    created_at: Mapped[datetime]


class Session(Base):
    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))


class LoginFlow(Base):
    """A password that passed, waiting for its second factor (the ``login_token``)."""

    __tablename__ = "login_flows"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class Method(Base):
    """One authentication method of a user; ``pending`` until enrollment is confirmed."""

    __tablename__ = "methods"
    __table_args__ = (UniqueConstraint("user_id", "type"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(20))
    status: Mapped[MethodStatus] = mapped_column(MethodStatusType())
    protects: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secret_kid: Mapped[str | None] = mapped_column(String(40))
    secret_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Where codes go (a phone, an e-mail address), sealed with the key ring for this row
    # (domain/sealing.py), and its keyed hash, which the send caps and codes compare.
    destination_kid: Mapped[str | None] = mapped_column(String(40))
    destination_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    destination_hash: Mapped[str | None] = mapped_column(String(64))
    # TOTP: the last accepted time step; any step at or before it is refused forever.
    last_step: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    enabled_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class Passkey(Base):
    """One passkey (WebAuthn credential) of a user's ``webauthn`` method.

    Its credential id and public key are sealed with the key ring, bound to this row;
    the signature counter only grows.
    """

    __tablename__ = "passkeys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    method_id: Mapped[str] = mapped_column(ForeignKey("methods.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(60))
    secret_kid: Mapped[str] = mapped_column(String(40))
    secret_ct: Mapped[bytes] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]


class BackupCode(Base):
    __tablename__ = "backup_codes"
    __table_args__ = (Index("ix_backup_codes_user_unused", "user_id", "used_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    set_id: Mapped[str] = mapped_column(String(32))
    # One random salt per set: a typed code is hashed once and compared with the set.
    salt: Mapped[bytes] = mapped_column(LargeBinary(16))
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class Guard(Base):
    """Consecutive failures and the lock they led to, per user and scope."""

    __tablename__ = "guards"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    scope: Mapped[str] = mapped_column(String(40), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    level: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None]


class RateCounter(Base):
    """Fixed-window counters (password throttling, send caps), shared by all workers."""

    __tablename__ = "rate_counters"
    __table_args__ = (Index("ix_rate_counters_window_start", "window_start"),)

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    user_id: Mapped[str | None] = mapped_column(String(32), index=True)
    actor: Mapped[str] = mapped_column(String(80))
    event: Mapped[str] = mapped_column(String(60))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    # Tamper evidence: each row of an account's chain (or of the chain of events with no
    # account) stores the hash of the row before it and the hash of its own canonical
    # content together with that link.
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    # Role app: the one app whose users the key sees; support keys have none.
    app_id: Mapped[str | None] = mapped_column(ForeignKey("apps.id"))
    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    # What the key may do (role app): users, methods, verify, operations.
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    rate_per_minute: Mapped[int] = mapped_column(Integer, default=6000)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Challenge(Base):
    """A challenge issued for one purpose: a security code sent by SMS, e-mail or
    WhatsApp, or a passkey request (channel ``webauthn``, its random bytes).

    Stored as an HMAC (keyed with the server key, bound to the row id): a 6-digit code
    is not worth a slow hash, but without the key the table reveals nothing.
    """

    __tablename__ = "challenges"
    __table_args__ = (Index("ix_challenges_lookup", "user_id", "channel", "purpose"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(20))
    # The destination sealed for this row until the code is out (then NULL); its keyed
    # hash stays, so a code is still bound to the destination it went to. A passkey
    # request (channel webauthn) has neither.
    destination_kid: Mapped[str | None] = mapped_column(String(40))
    destination_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    destination_hash: Mapped[str | None] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(80))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    used_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class OutboxMessage(Base):
    """What the development outbox 'sent' (never used in production)."""

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(20))
    to: Mapped[str] = mapped_column(String(320), index=True)
    subject: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class Operation(Base):
    """A protected operation (a withdrawal): PIN, then a security code bound to it."""

    __tablename__ = "operations"
    # The expiry sweep looks for open operations past their time (services/webhooks).
    __table_args__ = (Index("ix_operations_open_expiry", "status", "expires_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(40))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    digest: Mapped[str] = mapped_column(String(64))
    # pin_required → code_required → confirmed; or expired / cancelled
    status: Mapped[str] = mapped_column(String(20))
    created_by: Mapped[str] = mapped_column(String(80))  # "user" or "app:<key id>"
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    pin_verified_at: Mapped[datetime | None]
    confirmed_at: Mapped[datetime | None]
    method: Mapped[str | None] = mapped_column(String(20))
    receipt_id: Mapped[str | None] = mapped_column(String(32))
    receipt: Mapped[str | None] = mapped_column(Text)


class ReceiptKey(Base):
    """Ed25519 keys that sign receipts; the private half encrypted with the key ring."""

    __tablename__ = "receipt_keys"

    kid: Mapped[str] = mapped_column(String(40), primary_key=True)
    secret_kid: Mapped[str] = mapped_column(String(40))
    secret_ct: Mapped[bytes] = mapped_column(LargeBinary)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    retired_at: Mapped[datetime | None]


class RememberedDevice(Base):
    """"Remember this device": skips the second factor of login only, never an operation."""

    __tablename__ = "remembered_devices"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    user_agent: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]


class WebhookDelivery(Base):
    """A signed notification to the portal, retried until it is accepted or given up."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_due", "delivered_at", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # The app of the user it is about (None: no app, as for events of no user).
    app_id: Mapped[str | None] = mapped_column(String(32), index=True)
    event: Mapped[str] = mapped_column(String(60))
    url: Mapped[str] = mapped_column(String(500))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(300))


class NotificationQueue(Base):
    """A security notice to send (e-mail, SMS), written with the change it tells about."""

    __tablename__ = "notification_queue"
    __table_args__ = (Index("ix_notification_due", "sent_at", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(60))
    channel: Mapped[str] = mapped_column(String(20))
    # The recipient sealed for this row while the notice waits; NULL once it is sent
    # (or given up).
    destination_kid: Mapped[str | None] = mapped_column(String(40))
    destination_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    language: Mapped[str] = mapped_column(String(8))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(300))


class Staff(Base):
    """Support staff (``support`` or ``supervisor``). Each is backed by a user of the
    hidden app ``staff`` (``user_id``): the password, the methods, the locks and the
    sessions are that user's, so staff log in through the same machinery as everyone."""

    __tablename__ = "staff"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         unique=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]


class RecoveryRequest(Base):
    """A request to reset two-factor authentication (seed 004, option 2).

    requested → checked (support recorded the identity checks) → approved by a
    supervisor other than the checker → completed when the waiting period ends; or
    rejected / cancelled (by the user, any verified contact, or staff).
    """

    __tablename__ = "recovery_requests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    description: Mapped[str] = mapped_column(Text)
    contact: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    ip: Mapped[str | None] = mapped_column(String(64))
    checks: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    checked_by: Mapped[str | None] = mapped_column(String(32))
    checked_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(32))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(Text)
    effective_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    cancelled_by: Mapped[str | None] = mapped_column(String(80))


class IdempotencyRecord(Base):
    """The stored answer to a POST sent with an ``Idempotency-Key``: a retry with the
    same key and body gets it back instead of doing the work twice.

    ``scope`` is the API key that sent it; ``fingerprint`` the hash of the method, path
    and body. ``running`` until the answer is stored; a ``lease_until`` in the past means
    the first call died, and a retry may take over.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_expires", "expires_at"),)

    scope: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(10))  # running | done
    status: Mapped[int | None] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String(100))
    # The answer's body, sealed with the key ring (it may hold a TOTP secret or backup
    # codes): ``body_kid`` names the key.
    body_kid: Mapped[str | None] = mapped_column(String(40))
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    lease_until: Mapped[datetime]
    expires_at: Mapped[datetime]


class RetiredDataKey(Base):
    """A key id of the key ring retired by ``stepup keys retire-data``: nothing was
    sealed with it any more, and no process decrypts with it again (services/rekey.py)."""

    __tablename__ = "retired_data_keys"

    kid: Mapped[str] = mapped_column(String(40), primary_key=True)
    retired_at: Mapped[datetime]


class PasswordReset(Base):
    """A "Forgot password?" link (services/account_security.py): only a SHA-256 of its
    random token is kept; single use (``used_at``), and spent too when a newer link is
    asked for or the password changes."""

    __tablename__ = "password_resets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
