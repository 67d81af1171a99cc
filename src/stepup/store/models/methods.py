"""A user's authentication methods, the codes and challenges they check, and the guards
and counters that limit guessing and sending."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from stepup.domain.policy import MethodStatus
from stepup.store.models.base import Base, MethodStatusType


class Method(Base):
    """One authentication method of a user; ``pending`` until enrollment is confirmed."""

    __tablename__ = "methods"
    # The unique index begins with user_id: it serves "this user's methods" and the
    # cascade from users too, so user_id has no index of its own (migration 0014).
    __table_args__ = (UniqueConstraint("user_id", "type"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
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
