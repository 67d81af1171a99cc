"""The development outbox: messages are stored in the database and logged instead of
sent, and listed at ``/dev/outbox``. Refused in production (``config.check_production``)."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stepup.delivery.base import OutgoingMessage, Receipt
from stepup.domain.clock import Clock
from stepup.store import codes
from stepup.store.models import OutboxMessage

log = logging.getLogger("stepup.outbox")


class OutboxProvider:
    name = "outbox"

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock

    async def send(self, message: OutgoingMessage) -> Receipt:
        row = OutboxMessage(channel=message.channel, to=message.to, subject=message.subject,
                            body=message.body, created_at=self._clock.now())
        async with self._sessionmaker() as db:
            await codes.add_outbox(db, row)
            await db.commit()
        log.info("outbox %s to %s: %s", message.channel, message.to, message.body)
        return Receipt(self.name, str(row.id))
