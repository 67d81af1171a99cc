"""SQLAlchemy models, one module per part of the schema; every model is importable from
here (``from stepup.store.models import User``). The schema itself is created by the
Alembic migrations.

- ``base``: the column types every model uses and the declarative base;
- ``accounts``: apps, users, sessions, login flows, remembered devices, password resets,
  support staff and recovery requests;
- ``methods``: authentication methods, passkeys, backup codes, challenges, guards and
  rate counters;
- ``portal``: API keys, stored idempotent answers, operations, receipt keys, webhooks;
- ``records``: the audit log, queued notices, the development outbox, retired key ids.
"""

from stepup.store.models.accounts import (
    PORTAL_APP_ID,
    STAFF_APP_ID,
    App,
    LoginFlow,
    PasswordReset,
    RecoveryRequest,
    RememberedDevice,
    Session,
    Staff,
    User,
)
from stepup.store.models.base import Base, MethodStatusType, UTCDateTime
from stepup.store.models.methods import (
    BackupCode,
    Challenge,
    Guard,
    Method,
    Passkey,
    RateCounter,
)
from stepup.store.models.portal import (
    ApiKey,
    IdempotencyRecord,
    Operation,
    ReceiptKey,
    WebhookDelivery,
)
from stepup.store.models.records import (
    AuditEvent,
    NotificationQueue,
    OutboxMessage,
    RetiredDataKey,
)

__all__ = [
    "PORTAL_APP_ID", "STAFF_APP_ID", "ApiKey", "App", "AuditEvent", "BackupCode", "Base",
    "Challenge", "Guard", "IdempotencyRecord", "LoginFlow", "Method", "MethodStatusType",
    "NotificationQueue", "Operation", "OutboxMessage", "Passkey", "PasswordReset",
    "RateCounter", "ReceiptKey", "RecoveryRequest", "RememberedDevice", "RetiredDataKey",
    "Session", "Staff", "UTCDateTime", "User", "WebhookDelivery",
]
