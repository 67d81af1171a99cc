"""What StepUp writes down: the audit log, the security notices to send, the development
outbox, and the retired key ids of the key ring."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from stepup.store.models.base import Base

# The events that make a device "known" to an account (services/devices.py): a login or
# the sign-up from it. Their own index (below) holds only these rows, and the query
# (store/audit.py) names them by this same condition, as a partial index requires.
ORIGIN_EVENTS = ("login.succeeded", "account.created")
ORIGIN_ROWS = text("event IN ({})".format(", ".join(f"'{e}'" for e in ORIGIN_EVENTS)))


class AuditEvent(Base):
    __tablename__ = "audit_events"
    # A login's new-device check reads the account's origins since a date: through the
    # user_id index alone it read every event the account ever had (each verification,
    # each change) to find its few logins, so a login cost more the longer the account's
    # history. This partial index holds the origin events only, by account and time; the
    # query names the same events as constants, as a partial index requires.
    __table_args__ = (Index("ix_audit_events_origins", "user_id", "created_at",
                            sqlite_where=ORIGIN_ROWS, postgresql_where=ORIGIN_ROWS),)

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


class RetiredDataKey(Base):
    """A key id of the key ring retired by ``stepup keys retire-data``: nothing was
    sealed with it any more, and no process decrypts with it again (services/rekey.py)."""

    __tablename__ = "retired_data_keys"

    kid: Mapped[str] = mapped_column(String(40), primary_key=True)
    retired_at: Mapped[datetime]
