"""How the contract suite proves possession of a method: one prover per *kind* of proof,
chosen for each registered method by ``PROVERS``. This file is the one place in
tests/contract that names a method type: in ``PROVERS`` (methods that send codes are
found by their descriptor), and in ``KNOWN_BREACHES`` (the cases that break the contract
today, run as strict xfails).

A prover keeps what enrolment showed (a secret, a set of printed codes, a passkey's
creation options) and makes a right and a wrong proof for each step: it reads the code
sent to the method's destination from the development outbox, computes the code an
authenticator app would show, takes the next printed code, or signs with the software
authenticator. The Method protocol does not say whether a method answers a challenge
with something (a code sent, a passkey request) or sends nothing, so each prover says it
(``asks_first``); a method descriptor's ``sends_codes`` would.

A new method registers itself in ``stepup.methods.registry``; if its proof is of a kind
none of these makes, it adds a prover here (tests/contract/test_registry.py says so).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx

from stepup.domain.clock import FrozenClock
from stepup.domain.codes import format_backup_code, new_backup_code
from stepup.domain.policy import method_scope
from stepup.methods import registry
from stepup.methods.base import Method
from stepup.services.runtime import Runtime
from stepup.store import queries
from tests.api.helpers import EMAIL, PIN, totp_now, wrong_totp
from tests.api.ops_support import PHONE, last_code
from tests.contract.surfaces import Outcome, Step, Surface
from tests.support.passkey import SoftPasskey, b64url

Answer = Mapping[str, Any] | None  # what asking for a challenge gave: None, nothing sent


@dataclass
class World:
    """What a prover may look at: the development outbox (through the app) and the clock."""

    client: httpx.AsyncClient
    clock: FrozenClock
    method_type: str


class Prover(ABC):
    #: Each proof answers a challenge the method makes first (a code it sends, a passkey
    #: request); False: the user holds the proof already, and asking sends nothing.
    asks_first = False

    def params(self) -> dict[str, str]:
        """What enrolment takes besides the PIN (where to send the codes)."""
        return {}

    def enrolled(self, shown: Mapping[str, Any]) -> None:  # noqa: B027 - most keep nothing
        """Keep what enrolment showed."""

    @abstractmethod
    async def confirming(self, world: World) -> str:
        """The proof that finishes enrolment."""

    @abstractmethod
    async def wrong_confirming(self, world: World) -> str:
        """A proof of the right form that does not finish enrolment."""

    @abstractmethod
    async def proof(self, world: World, answer: Answer) -> str:
        """The right proof for the challenge that ``answer`` came from."""

    @abstractmethod
    async def wrong(self, world: World, answer: Answer) -> str:
        """A proof of the right form that is wrong (a guess)."""


class OutboxCode(Prover):
    """A code sent to the method's destination, read from the development outbox."""

    asks_first = True

    def __init__(self, param: str, to: str) -> None:
        self.param, self.to = param, to

    def params(self) -> dict[str, str]:
        return {self.param: self.to}

    async def _sent(self, world: World) -> str:
        # The outbox names a message's channel by the method that sent it.
        return await last_code(world.client, self.to, world.method_type)

    async def _other(self, world: World) -> str:
        return f"{(int(await self._sent(world)) + 1) % 10**6:06d}"

    async def confirming(self, world: World) -> str:
        return await self._sent(world)

    async def wrong_confirming(self, world: World) -> str:
        return await self._other(world)

    async def proof(self, world: World, answer: Answer) -> str:
        assert answer is not None, "no code was sent"
        return await self._sent(world)

    async def wrong(self, world: World, answer: Answer) -> str:
        return await self._other(world)


class AppCode(Prover):
    """The code an authenticator app shows, computed from the secret enrolment showed."""

    secret = ""

    def enrolled(self, shown: Mapping[str, Any]) -> None:
        self.secret = str(shown["secret"])

    async def confirming(self, world: World) -> str:
        return totp_now(self.secret, world.clock)

    async def wrong_confirming(self, world: World) -> str:
        return wrong_totp(self.secret, world.clock)

    async def proof(self, world: World, answer: Answer) -> str:
        return await self.confirming(world)

    async def wrong(self, world: World, answer: Answer) -> str:
        return await self.wrong_confirming(world)


class PrintedCodes(Prover):
    """One of the codes enrolment printed, each good once."""

    def __init__(self) -> None:
        self.unused: list[str] = []

    def enrolled(self, shown: Mapping[str, Any]) -> None:
        self.unused = [str(c) for c in shown["codes"]]

    async def confirming(self, world: World) -> str:
        return self.unused.pop(0)

    async def wrong_confirming(self, world: World) -> str:
        code = format_backup_code(new_backup_code())  # of no set, but for 1 in 32¹⁰
        assert code not in self.unused
        return code

    async def proof(self, world: World, answer: Answer) -> str:
        return await self.confirming(world)

    async def wrong(self, world: World, answer: Answer) -> str:
        return await self.wrong_confirming(world)


def _another_request(options: Mapping[str, Any]) -> dict[str, Any]:
    """The same options with a challenge the server never made."""
    return {**options, "challenge": b64url(os.urandom(32))}


class SoftKey(Prover):
    """A passkey, made and used by the software authenticator: its wrong proofs are its
    own, well signed, answers to a request the server never made."""

    asks_first = True

    def __init__(self) -> None:
        self.key = SoftPasskey()
        self.creation: dict[str, Any] = {}

    def enrolled(self, shown: Mapping[str, Any]) -> None:
        self.creation = dict(shown["options"])

    async def confirming(self, world: World) -> str:
        return self.key.create(self.creation)

    async def wrong_confirming(self, world: World) -> str:
        return self.key.create(_another_request(self.creation))

    async def proof(self, world: World, answer: Answer) -> str:
        assert answer is not None and "options" in answer, "no passkey request was made"
        return self.key.get(answer["options"])

    async def wrong(self, world: World, answer: Answer) -> str:
        assert answer is not None and "options" in answer, "no passkey request was made"
        return self.key.get(_another_request(answer["options"]))


# Where the contract has codes sent, by the kind of destination a method takes.
DESTINATIONS = {"phone": PHONE, "email": EMAIL}

PROVERS: dict[str, Callable[[], Prover]] = {
    "totp": AppCode,
    "backup_codes": PrintedCodes,
    "webauthn": SoftKey,
    # Every method that sends codes, as its descriptor says: the code read from the
    # outbox at its kind of destination (a new code channel needs no line here).
    **{d.type: partial(OutboxCode, d.destination, DESTINATIONS[d.destination])
       for d in registry.sending_codes() if d.destination is not None},
}

# Where a registered method breaks the contract today: (surface class, test, method
# type) → the bug. Each case runs as a strict xfail, so the fix is noticed.
KNOWN_BREACHES: dict[tuple[str, str, str], str] = {}


def registered() -> list[str]:
    """The type of every method the registry offers: the contract runs for each."""
    return [m.type for m in registry.available()]


def missing_provers() -> list[str]:
    return [t for t in registered() if t not in PROVERS]


def prover_for(method_type: str) -> Prover:
    make = PROVERS.get(method_type)
    assert make is not None, (
        f"The method '{method_type}' is registered but tests/contract/drivers.py has no "
        f"prover for it: add it to PROVERS, with a new Prover if its proof is of a kind "
        f"none of the others makes.")
    return make()


@dataclass
class Driver:
    """One registered method, driven through one surface and proved by its prover."""

    surface: Surface
    prover: Prover
    world: World
    runtime: Runtime
    answer: Answer = None  # the last challenge's

    @property
    def method_type(self) -> str:
        return self.world.method_type

    @property
    def method(self) -> Method:
        return registry.get(self.method_type)

    async def enrol(self, pin: str = PIN) -> Outcome:
        return await self.surface.enrol(self.method_type, pin, self.prover.params())

    async def confirm(self, proof: str) -> Outcome:
        return await self.surface.confirm(self.method_type, proof)

    async def enable(self) -> None:
        started = await self.enrol()
        assert started.ok, started.response.text
        self.prover.enrolled(started.shown)
        if (await self.view())["pending"]:
            confirmed = await self.confirm(await self.prover.confirming(self.world))
            assert confirmed.ok, confirmed.response.text
        assert (await self.view())["enabled"]

    async def ask(self, step: Step) -> Answer:
        """A challenge for ``step``, once the resend cooldown is over (which also brings a
        new TOTP time step)."""
        self.world.clock.advance(self.runtime.settings.resend_cooldown_seconds + 1)
        self.answer = await self.surface.ask(self.method_type, step)
        return self.answer

    async def proof(self, step: Step) -> str:
        """A new challenge for ``step`` and its right proof."""
        return await self.prover.proof(self.world, await self.ask(step))

    async def wrong(self) -> str:
        """A wrong proof for the last challenge."""
        return await self.prover.wrong(self.world, self.answer)

    async def prove(self, step: Step, proof: str) -> Outcome:
        return await self.surface.prove(self.method_type, step, proof)

    async def view(self) -> dict[str, Any]:
        return await self.surface.view(self.method_type)

    async def failures(self) -> int:
        """The wrong proofs counted toward the method's lock since its last success."""
        async with self.runtime.db() as db:
            states = await queries.get_guard_states(db, self.surface.user_id,
                                                    [method_scope(self.method_type)])
        return states.get(method_scope(self.method_type), (0, 0, None))[0]
