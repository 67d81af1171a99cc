"""What a portal's integration works with: its API keys and their stored answers, protected
operations and the keys that sign their receipts, and the webhooks sent to it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from stepup.store.models.base import Base


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
