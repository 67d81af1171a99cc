"""The contract every registered method keeps, written once: enrol, confirm, challenge,
verify, replay, lock, switch and disable. ``Contract`` is collected through a subclass
per surface (test_api.py, test_integration_api.py, test_pages.py) and runs for every
method in the registry; a test decides what applies from what the method declares —
its answers, ``login_fallback``, its prover's ``asks_first`` — never from its name.
"""

from __future__ import annotations

from typing import ClassVar

from stepup.domain.errors import (
    CodeAlreadyUsed,
    Conflict,
    InvalidCode,
    MethodAlreadyEnabled,
    MethodLocked,
    MethodNotAllowed,
    MethodNotEnabled,
    PinInvalid,
)
from stepup.domain.policy import LOGIN as LOGIN_OPERATION
from stepup.domain.policy import WITHDRAWAL
from tests.contract.drivers import Driver
from tests.contract.surfaces import DISABLE, LOGIN, Surface, switch

WRONG_PIN = "902116"


class Contract:
    surface_kind: ClassVar[type[Surface]]

    async def test_enrolment_needs_the_pin(self, driver: Driver) -> None:
        driver.surface.expect(await driver.enrol(WRONG_PIN), PinInvalid)
        view = await driver.view()
        assert not view["enabled"] and not view["pending"], view
        started = await driver.enrol()
        assert started.ok, started.response.text
        driver.prover.enrolled(started.shown)
        view = await driver.view()
        assert view["enabled"] or view["pending"], view

    async def test_confirmation_needs_the_right_proof_and_counts_a_wrong_one(
            self, driver: Driver) -> None:
        started = await driver.enrol()
        driver.prover.enrolled(started.shown)
        wrong = await driver.prover.wrong_confirming(driver.world)
        if (await driver.view())["enabled"]:
            # Enabled by its enrolment (the codes shown are the proof): nothing waits.
            driver.surface.expect(await driver.confirm(wrong), Conflict)
        else:
            driver.surface.expect(await driver.confirm(wrong), InvalidCode)
            assert await driver.failures() == 1
            assert (await driver.view())["pending"]
            confirmed = await driver.confirm(await driver.prover.confirming(driver.world))
            assert confirmed.ok, confirmed.response.text
            assert await driver.failures() == 0
        view = await driver.view()
        assert view["enabled"] and not view["pending"], view
        # The user's first method protects login and nothing else yet, or — where the
        # set-up asks "Use it for" (pages) — what it ticked.
        assert view["protects"] == driver.surface.first_protects(
            driver.runtime, driver.method_type), view
        driver.surface.expect(await driver.enrol(), MethodAlreadyEnabled)

    async def test_a_challenge_sends_or_says_nothing_is_sent(self, enabled: Driver) -> None:
        offered = await enabled.surface.begin_login()
        assert offered is None or enabled.method_type in offered, offered
        for step in (LOGIN, DISABLE):
            answer = await enabled.ask(step)
            assert (answer is not None) == enabled.prover.asks_first, (step, answer)
        assert await enabled.failures() == 0

    async def test_the_right_proof_logs_in(self, enabled: Driver) -> None:
        await enabled.surface.begin_login()
        outcome = await enabled.prove(LOGIN, await enabled.proof(LOGIN))
        await enabled.surface.assert_logged_in(outcome)
        assert (await enabled.view())["last_used_at"]

    async def test_a_proof_sent_again_is_refused_and_not_counted(
            self, enabled: Driver) -> None:
        await enabled.surface.begin_login()
        proof = await enabled.proof(LOGIN)
        await enabled.surface.assert_logged_in(await enabled.prove(LOGIN, proof))
        enabled.world.clock.advance(seconds=1)  # a retry comes a moment later, not at once
        await enabled.surface.begin_login()
        enabled.surface.expect(await enabled.prove(LOGIN, proof), CodeAlreadyUsed)
        assert await enabled.failures() == 0
        # Nor does it spoil the next proof.
        await enabled.surface.assert_logged_in(
            await enabled.prove(LOGIN, await enabled.proof(LOGIN)))

    async def test_wrong_proofs_lock_the_method_even_for_the_right_one(
            self, enabled: Driver) -> None:
        settings = enabled.runtime.settings
        await enabled.surface.begin_login()
        right = await enabled.proof(LOGIN)
        for _ in range(settings.method_lock_after - 1):
            enabled.surface.expect(await enabled.prove(LOGIN, await enabled.wrong()),
                                   InvalidCode)
        locked = await enabled.prove(LOGIN, await enabled.wrong())
        enabled.surface.expect(locked, MethodLocked)
        wait = enabled.surface.retry_after(locked)
        assert wait in (None, settings.method_lock_first_seconds), wait
        enabled.surface.expect(await enabled.prove(LOGIN, right), MethodLocked)
        # Once the lock is over, a new proof logs in.
        enabled.world.clock.advance(settings.method_lock_first_seconds)
        await enabled.surface.assert_logged_in(
            await enabled.prove(LOGIN, await enabled.proof(LOGIN)))

    async def test_switches_need_a_proof_from_the_method(self, enabled: Driver) -> None:
        on = switch(WITHDRAWAL, True)
        before = (await enabled.view())["protects"]
        await enabled.ask(on)
        enabled.surface.expect(await enabled.prove(on, await enabled.wrong()), InvalidCode)
        assert (await enabled.view())["protects"] == before
        assert await enabled.failures() == 1
        switched = await enabled.prove(on, await enabled.proof(on))
        assert switched.ok, switched.response.text
        assert (await enabled.view())["protects"] == {**before, WITHDRAWAL: True}

        off = switch(LOGIN_OPERATION, False)
        switched = await enabled.prove(off, await enabled.proof(off))
        assert switched.ok, switched.response.text
        assert (await enabled.view())["protects"] == {**before, WITHDRAWAL: True,
                                                       LOGIN_OPERATION: False}
        # Nothing protects login now: the password is enough where the surface asks it.
        # Checked headless, the method is refused for login before its proof is looked
        # at — unless it declares itself a way in when the others are lost.
        offered = await enabled.surface.begin_login()
        if offered is not None:
            assert offered == [], offered
        elif enabled.method.login_fallback:
            await enabled.surface.assert_logged_in(
                await enabled.prove(LOGIN, await enabled.proof(LOGIN)))
        else:
            enabled.surface.expect(await enabled.prove(LOGIN, await enabled.wrong()),
                                   MethodNotAllowed)
            assert await enabled.failures() == 0

    async def test_disable_needs_a_proof_and_ends_the_methods_logins(
            self, enabled: Driver) -> None:
        # A login begun while the method is enabled, its proof ready.
        await enabled.surface.begin_login()
        ready = await enabled.proof(LOGIN)

        await enabled.ask(DISABLE)
        enabled.surface.expect(await enabled.prove(DISABLE, await enabled.wrong()),
                               InvalidCode)
        assert (await enabled.view())["enabled"]
        disabled = await enabled.prove(DISABLE, await enabled.proof(DISABLE))
        assert disabled.ok, disabled.response.text
        view = await enabled.view()
        assert not view["enabled"] and not view["pending"], view

        enabled.surface.expect(await enabled.prove(LOGIN, ready), MethodNotEnabled)
        offered = await enabled.surface.begin_login()
        assert offered is None or enabled.method_type not in offered, offered
