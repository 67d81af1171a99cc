"""Verifying the account e-mail: one message with a 6-digit code and a link, sent at
sign-up and again on request; either one, used once within 24 hours, proves the address
is the user's.

Only a verified account e-mail may receive the code that confirms a withdrawal when no
method is switched on for it (domain/policy.completers): until then a code sent there
would go to an address nobody proved was theirs.

The code is an ordinary out-of-band code of the e-mail method for the purpose
``verify:email`` — the same resend cooldown, hourly send caps, wrong-try limit and method
lock as every other code — that lives as long as the link. The link is a challenge of
its own (channel ``email-link``): 256 random bits, stored only as an HMAC, bound to the
address it was sent to, single use. Whichever is used first retires the other. Following
the link only shows a page; the address is verified by that page's POST (mail scanners
follow GETs).
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from stepup.delivery.email_verification import verification_message
from stepup.domain.destinations import mask
from stepup.domain.errors import (
    Conflict,
    DomainError,
    EmailAlreadyVerified,
    InvalidCode,
)
from stepup.domain.hashing import new_id
from stepup.domain.policy import Completer, Purpose
from stepup.methods import registry
from stepup.methods.base import ChallengeSent
from stepup.services import audit, challenges, notifications
from stepup.services.runtime import Actor, Runtime, user_or_not_found
from stepup.services.verification import check_code
from stepup.store import codes, queries
from stepup.store import email_verification as store
from stepup.store.models import Challenge, User

log = logging.getLogger("stepup.email_verification")

PURPOSE = Purpose.verify_email()
LINK_CHANNEL = "email-link"
TTL_HOURS = 24
TTL = timedelta(hours=TTL_HOURS)
LINK_PATH = "/email/verify/"
EVENT = "account.email_verified"


def _mail() -> str:
    mail = challenges.registered().account_email
    if mail is None:  # no method sends to e-mail addresses: nothing can be verified
        raise Conflict("No method sends e-mail here, so the address cannot be verified.")
    return mail


async def send(rt: Runtime, actor: Actor, user_id: str, *, capped: bool = True
               ) -> ChallengeSent:
    """Send a new code and link to the account e-mail (the older ones stop working once
    the new message is out). Refused when the address is already verified.

    ``capped=False`` (the sign-up's own message): not counted against the hourly send
    caps — one per new account, so the sign-up limit per network already bounds it, and
    it must not spend a new user's first codes; the resend cooldown still applies."""
    mail = _mail()
    async with rt.db() as db:
        user = await user_or_not_found(db, user_id)
        if user.email_verified:
            raise EmailAlreadyVerified()
        row = challenges.method_row(rt, user, Completer(mail))
        sent = await registry.get(mail).challenge(rt.method_context(db, actor), user, row,
                                                  PURPOSE)
        assert sent is not None and sent.outgoing is not None and sent.outgoing.code
        assert sent.code_id is not None
        if not capped:
            for key, window in sent.charges:
                await queries.rate_hit(db, key, window, -1)
            sent.charges = []
        now = rt.clock.now()
        await store.set_expiry(db, sent.code_id, now + TTL)  # as long as the link
        token = secrets.token_urlsafe(32)
        link = Challenge(id=new_id(), user_id=user.id, channel=LINK_CHANNEL,
                         destination_hash=row.destination_hash, purpose=PURPOSE.value,
                         created_at=now, expires_at=now + TTL, sent_at=None, used_at=None,
                         attempts=0)
        link.code_hash = rt.hasher.mac(LINK_CHANNEL, link.id, token)
        db.add(link)
        await db.commit()
    address = rt.settings.public_url.rstrip("/") + LINK_PATH + f"{link.id}.{token}"
    sent.outgoing = verification_message(
        to=sent.outgoing.to, code=sent.outgoing.code, link=address, language=user.language,
        issuer=rt.adapter.issuer(None), hours=TTL_HOURS, reference=sent.code_id)
    sent.expires_in = int(TTL.total_seconds())
    try:
        sent = await challenges.deliver(rt, actor, user.id, mail, sent, PURPOSE.value)
    except DomainError:
        async with rt.db() as db:  # the code was discarded: so is its link
            await codes.discard(db, link.id)
            await db.commit()
        raise
    async with rt.db() as db:
        await codes.mark_sent(db, link.id, rt.clock.now())  # retires the older links
        await db.commit()
    return sent


async def send_at_signup(rt: Runtime, actor: Actor, user: User) -> ChallengeSent | None:
    """The first message, right after the account is created. The account exists
    whatever happens here: a refused or failed send is logged, and the portal's banner
    (or ``POST /me/email/verification``) sends it again."""
    try:
        return await send(rt, actor, user.id, capped=False)
    except DomainError as err:
        log.warning("the e-mail verification message for user %s was not sent: %s",
                    user.id, err.code)
        return None


async def confirm_code(rt: Runtime, actor: Actor, user_id: str, code: str) -> None:
    """Verify the account e-mail with the code from the message. Already verified: done,
    nothing checked or recorded (the state asked for is the state)."""
    mail = _mail()
    async with rt.db() as db:
        user = await user_or_not_found(db, user_id)
        if user.email_verified:
            return
        row = challenges.method_row(rt, user, Completer(mail))
        await check_code(rt, db, actor, user, row, code, PURPOSE)
        await _verified(rt, db, actor, user, via="code")
        await db.commit()


async def waiting(rt: Runtime, user_id: str) -> bool:
    """Whether a message sent to verify the address can still be used (its link is live):
    the page then asks for its code rather than offering to send one."""
    async with rt.read() as db:
        link = await codes.current(db, user_id, LINK_CHANNEL, PURPOSE.value)
        return link is not None and link.expires_at > rt.clock.now()


def _split(token: str) -> tuple[str, str]:
    link_id, _sep, secret = token.partition(".")
    if len(token) > 200 or not link_id or not secret:
        raise InvalidCode(situation="email_link")
    return link_id, secret


async def _live_link(rt: Runtime, db: AsyncSession, token: str) -> tuple[Challenge, User]:
    """The link's row and its user, or InvalidCode: unknown, wrong, used, replaced,
    expired, or sent to an address the account no longer has."""
    link_id, secret = _split(token)
    row = await store.get_link(db, link_id, LINK_CHANNEL)
    user = await queries.get_user(db, row.user_id) if row is not None else None
    if row is None or user is None or \
            not rt.hasher.mac_ok(row.code_hash, LINK_CHANNEL, row.id, secret) or \
            row.used_at is not None or row.expires_at <= rt.clock.now() or \
            not rt.destinations.same(row.destination_hash, rt.destinations.hash(user.email)):
        raise InvalidCode(situation="email_link")
    return row, user


async def link_address(rt: Runtime, token: str) -> str:
    """The masked address a live link verifies (the page shown before its button)."""
    async with rt.read() as db:
        _row, user = await _live_link(rt, db, token)
        return mask("email", user.email)


async def confirm_link(rt: Runtime, actor: Actor, token: str) -> str:
    """Verify the account e-mail with the link from the message (the page's POST);
    answers the masked address."""
    async with rt.db() as db:
        row, user = await _live_link(rt, db, token)
        if not await codes.consume(db, row.id, 1, rt.clock.now()):
            raise InvalidCode(situation="email_link")  # a racing click won
        if not user.email_verified:
            await _verified(rt, db, actor, user, via="link")
        await db.commit()
        return mask("email", user.email)


async def _verified(rt: Runtime, db: AsyncSession, actor: Actor, user: User, *, via: str
                    ) -> None:
    user.email_verified = True
    await store.retire_open(db, user.id, (_mail(), LINK_CHANNEL), PURPOSE.value,
                            rt.clock.now())
    await audit.record(db, rt.clock, actor, "account.email_verified", user.id, via=via)
    await notifications.notify(rt, db, user, EVENT, actor=actor)
