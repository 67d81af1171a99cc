"""Driving the portal's forms with httpx: parse the page, fill the form, post it.

Every page fetched through :func:`get` or :func:`submit` is also checked against the
Content-Security-Policy rules the portal keeps (no inline script, style or handlers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

import httpx
import pyotp

from stepup.domain.clock import FrozenClock

PASSWORD = "violet-harbour-7-lanterns"
PIN = "417293"
EMAIL = "jane@example.com"


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class _Forms(HTMLParser):
    """The page's forms as a browser submits them. A submit button with its own
    ``formaction`` (inside a form, or tied to one by ``form="<id>"``) is one more form:
    its owner's fields, with the button's name and value, posted to that action."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._current: Form | None = None
        self._by_id: dict[str, Form] = {}
        self._buttons: list[tuple[Form | str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = Form(action=a.get("action", ""), method=a.get("method", "get"))
            self.forms.append(self._current)
            if a.get("id"):
                self._by_id[a["id"]] = self._current
        elif tag == "input" and self._current is not None and a.get("name"):
            if a.get("type") == "checkbox" and "checked" not in a:
                return
            self._current.fields[a["name"]] = a.get("value", "")
        elif tag == "select" and self._current is not None and a.get("name"):
            self._current.fields.setdefault(a["name"], "")
        elif tag == "button" and a.get("formaction") and a.get("type", "submit") == "submit":
            owner: Form | str | None = a.get("form") or self._current
            if owner is not None:
                self._buttons.append((owner, a))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None

    def close(self) -> None:
        super().close()
        for owner, a in self._buttons:
            f = self._by_id.get(owner) if isinstance(owner, str) else owner
            if f is None:
                continue
            fields = dict(f.fields)
            if a.get("name"):
                fields[a["name"]] = a.get("value", "")
            self.forms.append(Form(action=a["formaction"],
                                   method=a.get("formmethod") or f.method, fields=fields))
        self._buttons = []


def forms(html: str) -> list[Form]:
    parser = _Forms()
    parser.feed(html)
    parser.close()
    return parser.forms


def form(html: str, action: str) -> Form:
    found = [f for f in forms(html) if f.action == action]
    assert found, f"no form posting to {action}"
    return found[-1]


def assert_csp_clean(html: str) -> None:
    """The portal's pages must work under script-src/style-src 'self'."""
    for tag in re.findall(r"<script\b[^>]*>", html, flags=re.I):
        assert "src=" in tag, f"inline script: {tag}"
    assert not re.search(r"<style\b", html, flags=re.I), "inline <style> block"
    assert " style=" not in html.lower(), "inline style attribute"
    assert not re.search(r"\son[a-z]+\s*=", html, flags=re.I), "inline event handler"
    assert "onclick" not in html.lower()
    assert "javascript:" not in html.lower()


def spaced(html: str) -> str:
    """The page with Babel's no-break spaces (``2026\u202fг.``, ``1\xa0234``) as plain
    ones, for assertions written with spaces."""
    return html.replace("\xa0", " ").replace("\u202f", " ")


def check(r: httpx.Response, status: int = 200) -> str:
    assert r.status_code == status, (r.status_code, r.headers.get("location"), r.text[:3000])
    if r.headers.get("content-type", "").startswith("text/html"):
        assert_csp_clean(r.text)
        assert "content-security-policy" in r.headers
    return r.text


async def get(client: httpx.AsyncClient, url: str, status: int = 200, **kw: object) -> str:
    return check(await client.get(url, **kw), status)  # type: ignore[arg-type]


async def submit(client: httpx.AsyncClient, html: str, action: str,
                 **values: str) -> httpx.Response:
    """Post the form of ``html`` that targets ``action``, with its hidden fields."""
    f = form(html, action)
    data = {**f.fields, **values}
    return await client.post(action, data=data)


def redirected_to(r: httpx.Response, prefix: str) -> str:
    assert r.status_code == 303, (r.status_code, r.text[:2000])
    location = r.headers["location"]
    assert location.startswith(prefix), location
    return location


async def sign_up(client: httpx.AsyncClient, email: str = EMAIL, language: str = "en", *,
                  verify_email: bool = True) -> None:
    """A new account, signed in; its e-mail verified with the code of the sign-up
    message (as its owner would) unless ``verify_email`` is False or the message went
    elsewhere than the development outbox."""
    html = await get(client, "/signup")
    r = await submit(client, html, "/signup", email=email, password=PASSWORD, pin=PIN,
                     language=language)
    redirected_to(r, "/settings/methods")
    if verify_email:
        code = await verification_code(client, email)
        if code is not None:
            await verify_email_with(client, code)


async def verification_code(client: httpx.AsyncClient, email: str = EMAIL) -> str | None:
    """The code of the newest e-mail verification message in the development outbox."""
    r = await client.get("/api/v1/dev/outbox", params={"to": email})
    if r.status_code != 200:
        return None
    for message in r.json()["messages"]:  # newest first
        if "/email/verify/" in message["body"]:
            m = re.search(r"\b(\d{6})\b", message["body"])
            assert m, message["body"]
            return m.group(1)
    return None


async def verify_email_with(client: httpx.AsyncClient, code: str) -> None:
    html = await get(client, "/settings/email")
    r = await submit(client, html, "/settings/email/confirm", code=code)
    redirected_to(r, "/settings/methods?done=email_verified")


async def log_in(client: httpx.AsyncClient, email: str = EMAIL) -> httpx.Response:
    html = await get(client, "/login")
    return await submit(client, html, "/login", email=email, password=PASSWORD)


async def log_out(client: httpx.AsyncClient) -> None:
    html = await get(client, "/settings/methods")
    r = await submit(client, html, "/logout")
    redirected_to(r, "/login")


def secret_from(html: str) -> str:
    # The key is shown in groups of four, each in its own unbreakable <span>.
    m = re.search(r'<code class="secret" id="totp-secret"[^>]*>(.*?)</code>', html, re.S)
    assert m, "no secret on the page"
    secret = re.sub(r"<[^>]+>|\s", "", m.group(1))
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), secret
    return secret


def codes_from(html: str) -> list[str]:
    return re.findall(r"<li><code>([0-9a-z]{5}-[0-9a-z]{5})</code></li>", html)


def totp_now(secret: str, clock: FrozenClock, offset_steps: int = 0) -> str:
    return str(pyotp.TOTP(secret).at(clock.now().timestamp() + 30 * offset_steps))


async def enable_totp(client: httpx.AsyncClient, clock: FrozenClock) -> str:
    html = await get(client, "/settings/methods/totp/enable")
    html = check(await submit(client, html, "/settings/methods/totp/enable", pin=PIN))
    secret = secret_from(html)
    r = await submit(client, html, "/settings/methods/totp/confirm",
                     code=totp_now(secret, clock))
    redirected_to(r, "/settings/methods?done=enabled")
    clock.advance(30)  # the next check needs a fresh time step
    return secret


async def enable_backup_codes(client: httpx.AsyncClient) -> list[str]:
    html = await get(client, "/settings/methods/backup_codes/enable")
    html = check(await submit(client, html, "/settings/methods/backup_codes/enable", pin=PIN))
    codes = codes_from(html)
    assert len(codes) == 10
    return codes


def section(html: str, method_type: str) -> str:
    m = re.search(rf'<section class="card method[^"]*" id="method-{method_type}".*?</section>',
                  html, flags=re.S)
    assert m, f"no section for {method_type}"
    return m.group(0)
