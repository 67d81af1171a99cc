"""Remembered devices on the methods page: the list, and Forget (one, or all).

A remembered device skips the second factor of login only; it changes nothing a
withdrawal asks: the PIN, and a security code unless the policy lets the PIN alone
confirm it (``WITHDRAWAL_CODE=if_protected`` with no method switched on for
withdrawals). The card says which, from ``operations.confirmation`` as the page's
"Withdrawal confirmed with" line does. Any change to the user's methods forgets them
all (the services do that); here the user can forget them one by one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi.responses import Response

from stepup.services import devices
from stepup.web import deps
from stepup.web.portal.auth import device_cookie
from stepup.web.portal.plumbing import SignedIn, UserForm, UserPage, portal_router
from stepup.web.portal.render import DEVICE_COOKIE, Page, delete_cookie, redirect

router = portal_router()

# The first token that matches names the browser: Edge and Opera also say "Chrome/",
# Chrome also says "Safari/".
BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("YaBrowser/", "Yandex Browser"),
            ("Firefox/", "Firefox"), ("Chromium/", "Chromium"), ("Chrome/", "Chrome"),
            ("Version/", "Safari"))
SYSTEMS = (("Windows", "Windows"), ("Android", "Android"), ("iPhone", "iPhone"),
           ("iPad", "iPad"), ("CrOS", "ChromeOS"), ("Mac OS X", "macOS"),
           ("Linux", "Linux"))
AGENT_MAX = 60


def short_agent(page: Page, agent: str | None) -> str:
    """``Mozilla/5.0 (X11; Linux x86_64) … Chrome/126.0.0.0 …`` → ``Chrome 126 on Linux``."""
    if not agent:
        return page._("Unknown browser")
    browser = next((f"{name} {m.group(1)}" for token, name in BROWSERS
                    if (m := re.search(re.escape(token) + r"(\d+)", agent))
                    and (name != "Safari" or "Safari/" in agent)), None)
    system = next((name for token, name in SYSTEMS if token in agent), None)
    if browser and system:
        return page._("%(browser)s on %(system)s", browser=browser, system=system)
    if browser or system:
        return browser or system or ""
    return agent if len(agent) <= AGENT_MAX else agent[:AGENT_MAX - 1] + "…"


@dataclass
class DeviceRow:
    id: str
    name: str
    remembered_on: str
    last_used: str | None
    expires: str
    current: bool


async def device_rows(page: Page) -> list[DeviceRow]:
    assert page.user is not None
    token = device_cookie(page)
    mine = page.rt.hasher.token_hash(token) if token else None
    return [DeviceRow(id=d.id, name=short_agent(page, d.user_agent),
                      remembered_on=page.local_when(d.created_at),
                      last_used=page.local_when(d.last_used_at) if d.last_used_at else None,
                      expires=page.local_when(d.expires_at), current=d.token_hash == mine)
            for d in await devices.list_devices(page.rt, page.user.id)]


async def _forget(page: UserPage, device_id: str | None) -> Response:
    current = next((r for r in await device_rows(page) if r.current), None)
    await devices.forget(page.rt, deps.actor(page.request), page.me.id, device_id)
    done = "device_forgotten" if device_id else "devices_forgotten"
    response = redirect(f"/settings/methods?done={done}#devices")
    if current is not None and device_id in (None, current.id):
        delete_cookie(response, page.rt, DEVICE_COOKIE)  # a dead token: no use keeping it
    return response


@router.post("/settings/devices/forget-all")
async def forget_all(page: SignedIn, form: UserForm) -> Response:
    return await _forget(page, None)


@router.post("/settings/devices/{device_id}/forget")
async def forget_one(device_id: str, page: SignedIn, form: UserForm) -> Response:
    return await _forget(page, device_id)
