"""Security codes sent out of band: every method that sends codes (SMS, e-mail, …)
shares this module.

A code is 6 digits from ``secrets``, stored as an HMAC, valid ``code_ttl_seconds``,
bound to one purpose and destination, and dead after ``code_max_attempts`` wrong tries
or one success. Sends are capped per destination, account, the end user's IP and the
user's app (its hourly budget), and the channels billed per message
(``Descriptor.billed``) by the operator's hourly budget for all apps, with a resend
cooldown; every counter lives in the database. The code just accepted, typed again
while it would still be valid, answers ``code_already_used``: a retry or a double
submit, never counted as a guess.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from stepup import metrics
from stepup.delivery import operator
from stepup.delivery.messages import billed, billed_channels, code_message
from stepup.domain import destinations
from stepup.domain.codes import new_numeric_code, normalise_numeric_code
from stepup.domain.errors import (
    CodeAlreadyUsed,
    CodeExpired,
    InvalidCode,
    ResendTooSoon,
    SendCapReached,
)
from stepup.domain.hashing import new_id
from stepup.domain.policy import Purpose
from stepup.methods.base import (
    ChallengeSent,
    CodeSent,
    EnrollmentStart,
    MethodContext,
    MethodView,
    Verified,
    pending_row,
    row_view,
    speaks_for,
)
from stepup.store import apps, codes, notices, queries
from stepup.store.models import Challenge, User
from stepup.store.models import Method as MethodRow

log = logging.getLogger("stepup.methods")

HOUR = 3600
# The counter of STEPUP_SMS_BUDGET_PER_HOUR, shared by every billed channel (the key
# kept its first name).
BUDGET_KEY = "send-budget:sms+whatsapp"
BUDGET_WARN_PERCENT = 80


def _hour_window(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0)


class OobMethod:
    login_fallback = False

    def __init__(self, channel: str) -> None:
        self.type = channel

    # --- destinations ------------------------------------------------------------------

    def destination(self, ctx: MethodContext, user: User, params: dict[str, Any]) -> str:
        s = ctx.settings
        if self.type == "email":
            return destinations.normalise_email_address(params.get("email") or user.email)
        return destinations.normalise_phone(params.get("phone") or "",
                                            default_region=s.default_phone_region,
                                            allowed_regions=s.phone_countries,
                                            allow=s.phone_allow)

    def _hash(self, ctx: MethodContext, code_id: str, code: str) -> str:
        return ctx.hasher.mac("oob-code", code_id, code)

    async def _charge_budget(self, ctx: MethodContext, window: datetime, retry: int
                             ) -> tuple[str, datetime]:
        """Count one message against the operator's budget of billed codes; at 80 % warn the
        operator, once per hour: the notice's own counter, in this same transaction, says
        whether this send is the one that crossed."""
        s = ctx.settings
        budget = s.sms_budget_per_hour
        used = await queries.rate_hit(ctx.db, BUDGET_KEY, window)
        if used > budget:
            metrics.sms_budget(used, budget, "refused")
            raise SendCapReached(f"Too many codes were sent by {billed_channels()} this "
                                 "hour: try again later, or use another method.",
                                 retry_after=retry)
        metrics.sms_budget(used, budget, "charged")
        if used * 100 >= budget * BUDGET_WARN_PERCENT and \
                await queries.rate_hit(ctx.db, f"{BUDGET_KEY}-notice", window) == 1:
            log.warning("%d of the %d codes by %s of the hour from %s are used "
                        "(STEPUP_SMS_BUDGET_PER_HOUR): codes will be refused at the budget",
                        used, budget, billed_channels(), window.isoformat())
            if s.operator_email:
                now = ctx.clock.now()
                await notices.enqueue(ctx.db, ctx.destinations, now, user_id=None,
                                      kind=operator.BUDGET_KIND, channel="email",
                                      to=s.operator_email, language="en",
                                      data={"used": used, "budget": budget,
                                            "window": window.isoformat()})
        return BUDGET_KEY, window

    # --- the protocol ------------------------------------------------------------------

    async def begin_enrollment(self, ctx: MethodContext, user: User, params: dict[str, Any]
                               ) -> EnrollmentStart:
        destination = self.destination(ctx, user, params)
        row = await pending_row(ctx, user, self.type,
                                already_enabled="This method is already enabled. Disable it first.")
        ctx.destinations.put(row, destination)
        row.destination_hash = ctx.destinations.hash(destination)
        await ctx.db.flush()
        sent = await self.challenge(ctx, user, row, Purpose.enroll(self.type))
        assert sent is not None
        return EnrollmentStart(CodeSent(sent.sent_to, sent.expires_in, sent.resend_in),
                               challenge=sent)

    async def confirm_enrollment(self, ctx: MethodContext, user: User, row: MethodRow,
                                 proof: str) -> None:
        # A code that reached the destination proves it belongs to the user.
        if self.type == "sms":
            user.phone_verified = True
            user.verification_grade = max(user.verification_grade, 1)  # seed 001
        elif self.type == "email" and ctx.destinations.read(row) == user.email:
            user.email_verified = True

    async def challenge(self, ctx: MethodContext, user: User, row: MethodRow,
                        purpose: Purpose) -> ChallengeSent | None:
        s = ctx.settings
        now = ctx.clock.now()
        destination = ctx.destinations.read(row)
        assert destination is not None and row.destination_hash is not None
        # Per purpose: enabling SMS must not make the first login code wait a minute.
        # The hourly caps, not the cooldown, are what stop a flood.
        last = await codes.latest_sent(ctx.db, user.id, self.type, purpose.value)
        if last is not None and last.created_at + timedelta(
                seconds=s.resend_cooldown_seconds) > now:
            wait = last.created_at + timedelta(seconds=s.resend_cooldown_seconds) - now
            raise ResendTooSoon(retry_after=max(1, int(wait.total_seconds() + 0.999)))
        window = _hour_window(now)
        # Per destination under its keyed hash: the counters never name a phone.
        caps = [(f"send-dest:{row.destination_hash}", s.sends_per_destination_per_hour),
                (f"send-user:{user.id}", s.sends_per_account_per_hour)]
        if ctx.ip:  # the end user's address; a portal's own server is never counted
            caps.append((f"send-ip:{ctx.ip}", s.sends_per_ip_per_hour))
        # The app's budget for all its users together. Counted last: every send of the
        # app goes through this one counter row, so its lock is taken as late as it can be.
        app = await apps.get_app(ctx.db, user.app_id)
        budget = (app.sends_per_hour if app is not None and app.sends_per_hour
                  else s.sends_per_app_per_hour)
        caps.append((f"send-app:{user.app_id}", budget))
        retry = int((window + timedelta(seconds=HOUR) - now).total_seconds()) + 1
        charges = []
        for key, limit in caps:
            # Count first, then compare: the upsert holds the counter's row until commit,
            # so racing requests cannot all pass a read-only check. A refusal rolls the
            # whole transaction back, so it spends nothing.
            if await queries.rate_hit(ctx.db, key, window) > limit:
                raise SendCapReached(retry_after=retry)
            charges.append((key, window))
        if s.sms_budget_per_hour and billed(self.type):
            # The operator's budget for all apps together, the hottest row of all: last.
            charges.append(await self._charge_budget(ctx, window, retry))
        code = new_numeric_code(6)
        code_id = new_id()
        # Sealed until it is out (store/codes.mark_sent drops it); the hash stays, binding
        # the code to the destination it went to.
        issued = Challenge(id=code_id, user_id=user.id, channel=self.type,
                          destination_hash=row.destination_hash, purpose=purpose.value,
                          code_hash=self._hash(ctx, code_id, code), created_at=now,
                          expires_at=now + timedelta(seconds=s.code_ttl_seconds),
                          sent_at=None, used_at=None, attempts=0)
        ctx.destinations.put(issued, destination)
        ctx.db.add(issued)
        await ctx.db.flush()
        _, address = speaks_for(s, app)
        issuer = ctx.adapter.issuer(app)  # the name the user knows (the operator may say)
        outgoing = code_message(channel=self.type, to=destination, code=code,
                                purpose=purpose.value, language=user.language,
                                issuer=issuer, public_url=address,
                                ttl_minutes=max(1, s.code_ttl_seconds // 60),
                                details=purpose.details, reference=code_id,
                                ttl_seconds=s.code_ttl_seconds)
        return ChallengeSent(sent_to=destinations.mask(self.type, destination),
                             expires_in=s.code_ttl_seconds,
                             resend_in=s.resend_cooldown_seconds, outgoing=outgoing,
                             code_id=code_id, charges=charges)

    async def verify(self, ctx: MethodContext, user: User, row: MethodRow, proof: str,
                     purpose: Purpose) -> Verified:
        s = ctx.settings
        live = await codes.current(ctx.db, user.id, self.type, purpose.value)
        if live is None or not ctx.destinations.same(live.destination_hash,
                                                     row.destination_hash):
            await self._refuse_replay(ctx, user, row, proof, purpose)
            raise InvalidCode("No code was sent for this step, or it was already used: ask "
                              "for a new code.")
        if live.attempts >= s.code_max_attempts:
            raise CodeExpired("Too many wrong tries for this code: ask for a new one.")
        if live.expires_at <= ctx.clock.now():
            raise CodeExpired("This code has expired: ask for a new one.")
        typed = normalise_numeric_code(proof, 6)
        if typed is None or not ctx.hasher.mac_ok(live.code_hash, "oob-code", live.id, typed):
            await codes.count_wrong_try(ctx.db, live.id)
            raise InvalidCode()
        if not await codes.consume(ctx.db, live.id, s.code_max_attempts, ctx.clock.now()):
            await self._refuse_replay(ctx, user, row, proof, purpose)  # a racing twin won
            raise InvalidCode("This code was already used: ask for a new one.")
        return Verified()

    async def _refuse_replay(self, ctx: MethodContext, user: User, row: MethodRow,
                             proof: str, purpose: Purpose) -> None:
        """Raise CodeAlreadyUsed if ``proof`` is the code last accepted for this purpose
        and destination and it has not expired: the same right code sent twice."""
        spent = await codes.spent_latest(ctx.db, user.id, self.type, purpose.value)
        if spent is None or spent.expires_at <= ctx.clock.now() or \
                not ctx.destinations.same(spent.destination_hash, row.destination_hash):
            return
        typed = normalise_numeric_code(proof, 6)
        if typed is not None and ctx.hasher.mac_ok(spent.code_hash, "oob-code", spent.id,
                                                   typed):
            raise CodeAlreadyUsed("This code was already used: ask for a new one.")

    async def disable(self, ctx: MethodContext, user: User, row: MethodRow) -> None:
        if self.type == "sms":
            user.phone_verified = False  # the grade stays: it records a past verification
        await queries.delete_method(ctx.db, row.id)

    async def describe(self, ctx: MethodContext, user: User, row: MethodRow | None
                       ) -> MethodView:
        masked = ctx.destinations.masked(self.type, row) if row is not None else None
        return row_view(ctx.settings, self.type, row, destination=masked)
