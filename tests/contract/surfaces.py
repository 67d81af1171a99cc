"""The three ways into StepUp that the contract drives, behind one interface: the user
API with a session token, the integration API with an app's key (the portal acts on
its user's behalf, and logins are checked headless), and the portal's pages (forms
posted with their CSRF token through the ASGI client, as a browser without JavaScript
would, plus what portal.js does for passkeys).

A surface knows its URLs and how it says yes and no; it never asks which method it is
driving. What a refusal looks like differs: the APIs answer a problem document with the
error's ``code``, the pages answer the form again with the status of that code and the
message on it.
"""

from __future__ import annotations

import contextlib
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from stepup.domain.errors import DomainError, NoCodeSent
from stepup.domain.policy import LOGIN as LOGIN_PURPOSE
from stepup.domain.policy import initial_protects
from stepup.services import apikeys, methods
from stepup.services.runtime import Actor, Runtime
from stepup.web.problems import STATUS_BY_CODE
from tests.api.helpers import EMAIL, PIN, auth, login, problem, session_for, sign_up, verify
from tests.pages import helpers as pages
from tests.pages.test_passkeys import options_from
from tests.support import instances


@dataclass(frozen=True)
class Step:
    """What a proof is for: finishing a login, switching an operation, disabling."""

    kind: str
    op: str = ""
    on: bool = False


LOGIN = Step("login")
DISABLE = Step("disable")


def switch(op: str, on: bool) -> Step:
    return Step("switch", op, on)


@dataclass
class Outcome:
    response: httpx.Response
    shown: dict[str, Any] = field(default_factory=dict)  # what enrolment showed

    @property
    def ok(self) -> bool:
        return self.response.status_code < 400


class Surface(ABC):
    user_id = ""

    @classmethod
    @abstractmethod
    def opened(cls, client: httpx.AsyncClient, runtime: Runtime
               ) -> contextlib.AbstractAsyncContextManager[Surface]:
        """The surface on the test's client, with whatever else it needs while open."""

    @abstractmethod
    async def start(self) -> None:
        """A user with a PIN (and a password, where the surface logs in)."""

    @abstractmethod
    async def enrol(self, method_type: str, pin: str, params: Mapping[str, str]) -> Outcome: ...

    @abstractmethod
    async def confirm(self, method_type: str, proof: str) -> Outcome: ...

    @abstractmethod
    async def view(self, method_type: str) -> dict[str, Any]:
        """The method as the user's list of methods shows it."""

    def first_protects(self, runtime: Runtime, method_type: str) -> dict[str, bool]:
        """What the user's first method protects once enabled with no choice made: the
        calls' default (login), unless the surface asks and ticks something itself."""
        return initial_protects(runtime.settings.operations, first_method=True)

    @abstractmethod
    async def begin_login(self) -> list[str] | None:
        """A new login, up to the second factor: the methods it offers ([] when the
        password was enough), or None where the surface has no password step."""

    @abstractmethod
    async def ask(self, method_type: str, step: Step) -> Mapping[str, Any] | None:
        """A challenge for ``step``: what it gave, or None where the method sends
        nothing (checked to be said the surface's way)."""

    @abstractmethod
    async def prove(self, method_type: str, step: Step, proof: str) -> Outcome: ...

    @abstractmethod
    def expect(self, outcome: Outcome, error: type[DomainError]) -> None:
        """``outcome`` is the surface's refusal with ``error``."""

    @abstractmethod
    def retry_after(self, outcome: Outcome) -> int | None:
        """How long a refusal says to wait, where the surface says it."""

    @abstractmethod
    async def assert_logged_in(self, outcome: Outcome) -> None: ...


class ApiSurface(Surface):
    """``/api/v1/me/methods`` and ``/api/v1/login`` with the user's session token."""

    def __init__(self, client: httpx.AsyncClient, runtime: Runtime) -> None:
        self.client, self.runtime = client, runtime
        self.base = "/api/v1/me/methods"
        self.headers: dict[str, str] = {}
        self.login_token = ""

    @classmethod
    @contextlib.asynccontextmanager
    async def opened(cls, client: httpx.AsyncClient, runtime: Runtime
                     ) -> AsyncIterator[ApiSurface]:
        yield cls(client, runtime)

    async def start(self) -> None:
        self.user_id = str((await sign_up(self.client))["id"])
        self.headers = auth(await session_for(self.client))

    async def _post(self, url: str, body: Mapping[str, Any] | None = None) -> httpx.Response:
        return await self.client.post(url, json=body, headers=self.headers)

    async def enrol(self, method_type: str, pin: str, params: Mapping[str, str]) -> Outcome:
        r = await self._post(f"{self.base}/{method_type}/enrollment", {"pin": pin, **params})
        return Outcome(r, dict(r.json()) if r.is_success else {})

    async def confirm(self, method_type: str, proof: str) -> Outcome:
        return Outcome(await self._post(f"{self.base}/{method_type}/enrollment/confirm",
                                        {"code": proof}))

    async def view(self, method_type: str) -> dict[str, Any]:
        r = await self.client.get(self.base, headers=self.headers)
        assert r.status_code == 200, r.text
        return dict(next(m for m in r.json()["methods"] if m["type"] == method_type))

    async def begin_login(self) -> list[str] | None:
        r = await login(self.client)
        assert r.status_code == 200, r.text
        if r.json()["status"] == "authenticated":
            return []
        self.login_token = r.json()["login_token"]
        return [m["type"] for m in r.json()["methods"]]

    async def _login_challenge(self, method_type: str) -> httpx.Response:
        return await self.client.post("/api/v1/login/challenge", json={
            "login_token": self.login_token, "method": method_type})

    async def ask(self, method_type: str, step: Step) -> Mapping[str, Any] | None:
        if step == LOGIN:
            r = await self._login_challenge(method_type)
        else:
            r = await self._post(f"{self.base}/{method_type}/challenge")
        if r.status_code == 202:
            assert {"sent_to", "expires_in", "resend_in"} <= set(r.json()), r.json()
            return dict(r.json())
        problem(r, 409, NoCodeSent.code)
        return None

    async def _verify(self, method_type: str, proof: str) -> httpx.Response:
        return await verify(self.client, self.login_token, method_type, proof)

    async def prove(self, method_type: str, step: Step, proof: str) -> Outcome:
        if step == LOGIN:
            return Outcome(await self._verify(method_type, proof))
        if step == DISABLE:
            return Outcome(await self._post(f"{self.base}/{method_type}/disable",
                                            {"code": proof}))
        return Outcome(await self.client.patch(
            f"{self.base}/{method_type}", json={"protects": {step.op: step.on}, "code": proof},
            headers=self.headers))

    def expect(self, outcome: Outcome, error: type[DomainError]) -> None:
        problem(outcome.response, STATUS_BY_CODE[error.code], error.code)

    def retry_after(self, outcome: Outcome) -> int | None:
        wait = int(outcome.response.headers["Retry-After"])
        assert outcome.response.json()["retry_after"] == wait
        return wait

    async def assert_logged_in(self, outcome: Outcome) -> None:
        r = outcome.response
        assert r.status_code == 200 and r.json()["status"] == "authenticated", r.text
        me = await self.client.get("/api/v1/me", headers=auth(r.json()["session_token"]))
        assert me.status_code == 200 and me.json()["id"] == self.user_id, me.text


class IntegrationSurface(ApiSurface):
    """``/api/v1/users/{id}/…`` with an app's key: the portal enrols and manages its
    user's methods, and asks StepUp to send and check the codes of its own login page."""

    async def start(self) -> None:
        _row, key = await apikeys.create(self.runtime, "portal", "app", Actor(name="contract"))
        self.headers = auth(key)
        r = await self._post("/api/v1/users", {"email": EMAIL, "external_id": "contract-1",
                                               "pin": PIN})
        assert r.status_code == 201, r.text
        self.user_id = str(r.json()["id"])
        self.base = f"/api/v1/users/{self.user_id}/methods"

    async def begin_login(self) -> list[str] | None:
        return None  # the portal checks the password itself

    async def _login_challenge(self, method_type: str) -> httpx.Response:
        return await self._post(f"/api/v1/users/{self.user_id}/challenge",
                                {"method": method_type, "purpose": LOGIN_PURPOSE})

    async def _verify(self, method_type: str, proof: str) -> httpx.Response:
        return await self._post(f"/api/v1/users/{self.user_id}/verify", {
            "method": method_type, "code": proof, "purpose": LOGIN_PURPOSE})

    async def assert_logged_in(self, outcome: Outcome) -> None:
        r = outcome.response
        assert r.status_code == 200, r.text
        assert r.json()["valid"] is True and r.json()["verified_at"], r.json()


T = TypeVar("T")


def _shown(read: Callable[[str], T], html: str) -> T | None:
    """What a page shows, if it shows it (the readers of tests/pages assert)."""
    with contextlib.suppress(AssertionError):
        return read(html)
    return None


def _offered(html: str) -> list[str]:
    """The methods a second-factor page lets the user choose."""
    chosen = [f.fields["method"] for f in pages.forms(html) if f.action == "/login/second-factor"]
    return chosen + re.findall(r'href="/login/second-factor\?method=(\w+)"', html)


class PageSurface(Surface):
    """The portal's forms. Logins run in a second browser (a client with its own
    cookies), so the settings pages keep their session meanwhile."""

    def __init__(self, client: httpx.AsyncClient, browser: httpx.AsyncClient,
                 runtime: Runtime) -> None:
        self.client, self.browser, self.runtime = client, browser, runtime
        self.csrf = ""
        self.enrolment = ""  # the last page of the enrolment
        self.chose = False  # the last confirmation posted the "Use it for" boxes
        self.forms: dict[Step, str] = {}  # the last page with each step's form

    @classmethod
    @contextlib.asynccontextmanager
    async def opened(cls, client: httpx.AsyncClient, runtime: Runtime
                     ) -> AsyncIterator[PageSurface]:
        async with instances.http_client(runtime) as browser:
            yield cls(client, browser, runtime)

    async def start(self) -> None:
        await pages.sign_up(self.client)
        self.user_id = str((await self.client.get("/api/v1/me")).json()["id"])
        self.csrf = pages.form(await pages.get(self.client, "/settings/methods"),
                               "/logout").fields["csrf_token"]

    async def _send(self, html: str, action: str, **values: str) -> httpx.Response:
        """Post the page's form for ``action``; a form the page does not offer is posted
        as a hand-made request would be."""
        if any(f.action == action for f in pages.forms(html)):
            r = await pages.submit(self.client, html, action, **values)
        else:
            r = await self.client.post(action, data={"csrf_token": self.csrf, **values})
        pages.check(r, r.status_code)
        return r

    async def enrol(self, method_type: str, pin: str, params: Mapping[str, str]) -> Outcome:
        url = f"/settings/methods/{method_type}/enable"
        r = await self._send((await self.client.get(url)).text, url, pin=pin, **params)
        self.enrolment = r.text
        shown = {"secret": _shown(pages.secret_from, r.text),
                 "codes": pages.codes_from(r.text) or None,
                 "options": _shown(lambda html: options_from(html, "create"), r.text)}
        return Outcome(r, {k: v for k, v in shown.items() if v} if r.is_success else {})

    def first_protects(self, runtime: Runtime, method_type: str) -> dict[str, bool]:
        # The last step of a set-up asks "Use it for", and the boxes ticked are kept —
        # when its form was there to post (a passkey's page after a refusal has none).
        if self.chose:
            return methods.suggested_protects(runtime, method_type, first_method=True)
        return super().first_protects(runtime, method_type)

    async def confirm(self, method_type: str, proof: str) -> Outcome:
        action = f"/settings/methods/{method_type}/confirm"
        offered = [f for f in pages.forms(self.enrolment) if f.action == action]
        self.chose = bool(offered) and "protects_asked" in offered[-1].fields
        r = await self._send(self.enrolment, f"/settings/methods/{method_type}/confirm",
                             code=proof)
        self.enrolment = r.text
        return Outcome(r)

    async def view(self, method_type: str) -> dict[str, Any]:
        r = await self.client.get("/api/v1/me/methods")  # the session cookie
        assert r.status_code == 200, r.text
        return dict(next(m for m in r.json()["methods"] if m["type"] == method_type))

    async def begin_login(self) -> list[str] | None:
        # A new login in the same browser (logged out first, if it is logged in): its
        # pre-session cookie, and with it the CSRF token of the pages it showed before,
        # stay.
        if (await self.browser.get("/login")).status_code == 303:
            await pages.log_out(self.browser)
        r = await pages.log_in(self.browser)
        if pages.redirected_to(r, "/").startswith("/settings/methods"):
            return []
        return _offered(await pages.get(self.browser, pages.redirected_to(
            r, "/login/second-factor")))

    def _client(self, step: Step) -> httpx.AsyncClient:
        return self.browser if step == LOGIN else self.client

    @staticmethod
    def _urls(method_type: str, step: Step) -> tuple[str, str, str]:
        """(the form's page, the form's action, the action of its Send code button)."""
        if step == LOGIN:
            return (f"/login/second-factor?method={method_type}", "/login/second-factor",
                    "/login/second-factor/send")
        action = f"/settings/methods/{method_type}/{step.kind}"
        page = f"{action}?op={step.op}&on={int(step.on)}" if step.op else action
        return page, action, f"/settings/methods/{method_type}/send-code"

    async def ask(self, method_type: str, step: Step) -> Mapping[str, Any] | None:
        client = self._client(step)
        page, _, send = self._urls(method_type, step)
        html = await pages.get(client, page)
        answer: dict[str, Any] | None = None
        if any(f.action == send for f in pages.forms(html)):  # the page offers Send code
            html = pages.check(await pages.submit(client, html, send))
            answer = {"sent": True}
        options = _shown(options_from, html)  # a passkey form carries its own request
        if options is not None:
            answer = {"options": options}
        self.forms[step] = html
        return answer

    async def prove(self, method_type: str, step: Step, proof: str) -> Outcome:
        _, action, _ = self._urls(method_type, step)
        r = await pages.submit(self._client(step), self.forms[step], action, code=proof)
        pages.check(r, r.status_code)
        if r.status_code != 303:
            self.forms[step] = r.text
        return Outcome(r)

    def expect(self, outcome: Outcome, error: type[DomainError]) -> None:
        r = outcome.response  # a form answers with the API's status for the error
        assert r.status_code == STATUS_BY_CODE[error.code], (r.status_code, r.text[:3000])
        assert "alert-error" in r.text or "field-error" in r.text, r.text[:3000]

    def retry_after(self, outcome: Outcome) -> int | None:
        return None  # the page says it in words

    async def assert_logged_in(self, outcome: Outcome) -> None:
        pages.redirected_to(outcome.response, "/settings/methods")
        await pages.get(self.browser, "/settings/methods")
