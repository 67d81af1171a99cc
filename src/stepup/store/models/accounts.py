"""Apps and their users: sessions, login flows, remembered devices, password resets, the
support staff and the requests to reset two-factor authentication."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from stepup.store.models.base import Base

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
