"""Delivering a code after the transaction that made it has committed.

Sending can take seconds; no database lock is held meanwhile. If the provider fails,
nothing is left half-done: the code is discarded, the send caps are refunded, a pending
enrollment is dropped, and the failure is audited (with the provider's reason, which the
user never sees).
"""

from __future__ import annotations

from stepup import metrics
from stepup.delivery.base import ProviderError
from stepup.domain.errors import DeliveryFailed, InvalidDestination
from stepup.methods import registry
from stepup.methods.base import ChallengeSent
from stepup.services import audit
from stepup.services.runtime import Actor, Runtime
from stepup.store import codes, queries


def channel_word(method_type: str) -> str:
    """The channel's word in an English detail ("by SMS"), from the method's descriptor."""
    d = registry.descriptor(method_type)
    return (d.channel_word if d is not None else None) or method_type


async def deliver(rt: Runtime, actor: Actor, user_id: str, method_type: str,
                  sent: ChallengeSent, purpose: str, *, drop_pending: bool = False
                  ) -> ChallengeSent:
    if sent.outgoing is None:
        return sent
    try:
        receipt = await rt.delivery.send(sent.outgoing)
    except ProviderError as exc:
        metrics.message(method_type, exc.provider, "failed")
        async with rt.db() as db:
            if sent.code_id:
                await codes.discard(db, sent.code_id)
            for key, window in sent.charges:
                await queries.rate_hit(db, key, window, -1)
            if drop_pending:
                row = await queries.get_method(db, user_id, method_type)
                if row is not None and row.status == "pending":
                    await queries.delete_method(db, row.id)
            await audit.record(db, rt.clock, actor, "delivery.failed", user_id,
                               method=method_type, purpose=purpose, provider=exc.provider,
                               reason=exc.reason, status=exc.status)
            await db.commit()
        word = channel_word(method_type)
        if exc.invalid_destination:
            raise InvalidDestination(situation="channel", values={"channel": word}) from exc
        raise DeliveryFailed(situation="channel", values={"channel": word}) from exc
    metrics.message(method_type, receipt.provider, "sent")
    async with rt.db() as db:
        if sent.code_id:
            await codes.mark_sent(db, sent.code_id, rt.clock.now())
        await audit.record(db, rt.clock, actor, "code.sent", user_id, method=method_type,
                           purpose=purpose, provider=receipt.provider)
        await db.commit()
    return sent
