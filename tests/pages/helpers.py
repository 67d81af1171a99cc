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
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._current: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = Form(action=a.get("action", ""), method=a.get("method", "get"))
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and a.get("name"):
            if a.get("type") == "checkbox" and "checked" not in a:
                return
            self._current.fields[a["name"]] = a.get("value", "")
        elif tag == "select" and self._current is not None and a.get("name"):
            self._current.fields.setdefault(a["name"], "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def forms(html: str) -> list[Form]:
    parser = _Forms()
    parser.feed(html)
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


async def sign_up(client: httpx.AsyncClient, email: str = EMAIL, language: str = "en") -> None:
    html = await get(client, "/signup")
    r = await submit(client, html, "/signup", email=email, password=PASSWORD, pin=PIN,
                     language=language)
    redirected_to(r, "/settings/methods")


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
