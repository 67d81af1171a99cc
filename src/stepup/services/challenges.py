"""The one challenge path, and the policy's answer as the services use it.

Login, operations, managing a method and the integration API each say how to find what
is being completed (``Target``: the user, the completer the policy chose, the purpose);
``issue`` then asks the method for a challenge, commits, and delivers the code after
the transaction that made it has committed.

Sending can take seconds; no database lock is held meanwhile. If the provider fails,
nothing is left half-done: the code is discarded, the send caps are refunded, a pending
enrollment is dropped, and the failure is audited (with the provider's reason, which the
user never sees).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache

from sqlalchemy.ext.asyncio import AsyncSession

from stepup import metrics
from stepup.delivery.base import ProviderError
from stepup.domain import policy
from stepup.domain.errors import DeliveryFailed, DomainError, InvalidDestination, NoCodeSent
from stepup.domain.policy import Completer, MethodStatus, Purpose, Refusal, Registered
from stepup.methods import registry
from stepup.methods.base import ChallengeSent, IssuesCodeSets
from stepup.services import audit
from stepup.services.runtime import Actor, Runtime
from stepup.store import codes, queries
from stepup.store.models import Method as MethodRow
from stepup.store.models import User

NO_CODE = "This method does not send codes: enter the code it shows."


@dataclass(frozen=True)
class Target:
    """What a challenge is for: the user, the way the policy let them complete the
    purpose, and the purpose itself."""

    user: User
    completer: Completer[MethodRow]
    purpose: Purpose


@cache
def registered() -> Registered:
    """What the policy needs to know of the registry (fixed at import: methods/registry.py
    lists every method once), made once."""
    methods = registry.available()
    return Registered(types=frozenset(m.type for m in methods),
                      login_fallbacks=frozenset(m.type for m in methods if m.login_fallback),
                      account_email=registry.sending_to("email"))


async def spent_sets(db: AsyncSession, user: User, rows: Iterable[MethodRow]) -> set[str]:
    """The types of the user's enabled sets of codes that have none left."""
    spent: set[str] = set()
    for row in rows:
        method = registry.find(row.type)
        if row.status == MethodStatus.ENABLED and isinstance(method, IssuesCodeSets) and \
                await method.codes_left(db, user.id) == 0:
            spent.add(row.type)
    return spent


def choose(answer: Sequence[Completer[MethodRow]], rows: Iterable[MethodRow],
           method_type: str, refuse: Callable[[Refusal], DomainError]
           ) -> Completer[MethodRow]:
    """The completer of ``method_type`` in the policy's ``answer``, or the caller's
    error for the policy's reason to refuse it."""
    chosen = policy.pick(answer, rows, method_type)
    if isinstance(chosen, Refusal):
        raise refuse(chosen)
    return chosen


def method_row(rt: Runtime, user: User, completer: Completer[MethodRow]) -> MethodRow:
    """The row the method reads: the user's own, or for the account's e-mail address a
    row made for this call and never stored, holding that address sealed like any other
    destination (so the method reads it the same way)."""
    if completer.row is not None:
        return completer.row
    row = MethodRow(id=f"account-email-{user.id}", user_id=user.id, type=completer.type,
                    status=MethodStatus.ENABLED, protects={},
                    destination_hash=rt.destinations.hash(user.email),
                    created_at=user.created_at)
    rt.destinations.put(row, user.email)
    return row


async def issue(rt: Runtime, actor: Actor, find: Callable[[AsyncSession], Awaitable[Target]],
                *, no_code: str = NO_CODE) -> ChallengeSent:
    """Find the target in one transaction (``find`` refuses what the policy refuses),
    ask its method for a challenge, commit, and deliver. A method that sends nothing
    (its proof is shown by the method itself) answers ``NoCodeSent`` (``no_code``)."""
    async with rt.db() as db:
        target = await find(db)
        row = method_row(rt, target.user, target.completer)
        sent = await registry.get(row.type).challenge(rt.method_context(db, actor),
                                                      target.user, row, target.purpose)
        if sent is None:
            raise NoCodeSent(no_code)
        await db.commit()
    return await deliver(rt, actor, target.user.id, row.type, sent, target.purpose.value)


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
                if row is not None and row.status == MethodStatus.PENDING:
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
