"""Several passkeys: "Add a passkey" (the PIN, then the browser makes it, with a name if
the user gives one), and beside each one "Rename" and "Remove" (an answer from any
passkey of the account)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from stepup.domain.errors import DomainError
from stepup.methods import webauthn
from stepup.services import passkeys
from stepup.web import deps
from stepup.web.portal.auth import status_for
from stepup.web.portal.enroll import method_view, methods_url
from stepup.web.portal.manage import manage_passkey
from stepup.web.portal.render import (
    Page,
    posted,
    redirect,
    user_page,
)

# The passkeys' own pages (add, rename, remove one) speak for this one method.
PASSKEY = webauthn.DESCRIPTOR.type

router = APIRouter()
BASE = "/settings/methods/webauthn"


def _pin_form(page: Page, *, error: str | None = None, status_code: int = 200) -> Response:
    return page.render("enable_pin.html", status_code=status_code,
                       title=page._("Add a passkey"), method_type=PASSKEY,
                       action=f"{BASE}/add", error=error)


def _create_form(page: Page, options: dict[str, object] | None, *, error: str | None = None,
                 status_code: int = 200) -> Response:
    return page.render(f"{PASSKEY}/setup.html", status_code=status_code,
                       title=page._("Add a passkey"), method_type=PASSKEY, options=options,
                       confirm_action=f"{BASE}/add/confirm", restart=f"{BASE}/add",
                       ask_name=True, error=error)


@router.get(f"{BASE}/add")
async def add_page(request: Request) -> Response:
    page = await user_page(request)
    if not isinstance(page, Page):
        return page
    view = await method_view(page, PASSKEY)
    if view is None or not view.enabled:
        return redirect(f"{BASE}/enable")
    return _pin_form(page)


@router.post(f"{BASE}/add")
async def add_submit(request: Request) -> Response:
    answer = await posted(request)
    if not isinstance(answer, tuple):
        return answer
    page, form = answer
    assert page.user is not None
    try:
        started = await passkeys.begin_add(page.rt, deps.actor(request), page.user.id,
                                           form.get("pin", "").strip())
    except DomainError as err:
        return _pin_form(page, error=page.error_message(err), status_code=status_for(err))
    return _create_form(page, started.options)


@router.post(f"{BASE}/add/confirm")
async def add_confirm(request: Request) -> Response:
    answer = await posted(request)
    if not isinstance(answer, tuple):
        return answer
    page, form = answer
    assert page.user is not None
    try:
        await passkeys.finish_add(page.rt, deps.actor(request), page.user.id,
                                  form.get("code", ""), form.get("name", "").strip() or None)
    except DomainError as err:
        return _create_form(page, None, error=page.error_message(err),
                            status_code=status_for(err))
    return redirect(methods_url("passkey_added", PASSKEY))


async def _passkeys(page: Page) -> list[dict[str, Any]]:
    """The account's passkeys (none when passkeys are not enabled)."""
    view = await method_view(page, PASSKEY)
    return list(view.passkeys or []) if view is not None else []


async def _remove_form(page: Page, passkey_id: str, *, error: str | None = None,
                       status_code: int = 200) -> Response:
    assert page.user is not None
    listed = await _passkeys(page)
    chosen = next((p for p in listed if p["id"] == passkey_id), None)
    if chosen is None:
        return page.not_found()
    options, problem = await manage_passkey(page, PASSKEY)
    last = len(listed) == 1
    intro = (page._("This is your last passkey: removing it disables passkeys. Click "
                    "Remove, then confirm with a passkey.") if last
             else page._("Click Remove, then confirm with any of your passkeys."))
    return page.render(
        "code_form.html", status_code=status_code,
        title=page._("Remove %(name)s", name=chosen["name"]), intro=intro,
        method_type=PASSKEY, action=f"{BASE}/passkeys/{passkey_id}/remove", hidden={},
        error=error or problem, submit=page._("Remove"), danger=True, passkey=options,
        sends_code=False)


@router.get(f"{BASE}/passkeys/{{passkey_id}}/remove")
async def remove_page(passkey_id: str, request: Request) -> Response:
    page = await user_page(request)
    if not isinstance(page, Page):
        return page
    return await _remove_form(page, passkey_id)


@router.post(f"{BASE}/passkeys/{{passkey_id}}/remove")
async def remove_submit(passkey_id: str, request: Request) -> Response:
    answer = await posted(request)
    if not isinstance(answer, tuple):
        return answer
    page, form = answer
    assert page.user is not None
    try:
        view = await passkeys.remove(page.rt, deps.actor(request), page.user.id, passkey_id,
                                     form.get("code", ""))
    except DomainError as err:
        return await _remove_form(page, passkey_id, error=page.error_message(err),
                                  status_code=status_for(err))
    return redirect(methods_url("passkey_removed" if view.enabled else "disabled", PASSKEY))


async def _rename_form(page: Page, passkey_id: str, *, name: str | None = None,
                       error: str | None = None, status_code: int = 200) -> Response:
    chosen = next((p for p in await _passkeys(page) if p["id"] == passkey_id), None)
    if chosen is None:
        return page.not_found()
    return page.render(f"{PASSKEY}/rename.html", status_code=status_code, method_type=PASSKEY,
                       title=page._("Rename %(name)s", name=chosen["name"]),
                       action=f"{BASE}/passkeys/{passkey_id}/rename",
                       name=chosen["name"] if name is None else name, error=error)


@router.get(f"{BASE}/passkeys/{{passkey_id}}/rename")
async def rename_page(passkey_id: str, request: Request) -> Response:
    page = await user_page(request)
    if not isinstance(page, Page):
        return page
    return await _rename_form(page, passkey_id)


@router.post(f"{BASE}/passkeys/{{passkey_id}}/rename")
async def rename_submit(passkey_id: str, request: Request) -> Response:
    answer = await posted(request)
    if not isinstance(answer, tuple):
        return answer
    page, form = answer
    assert page.user is not None
    try:
        await passkeys.rename(page.rt, deps.actor(request), page.user.id, passkey_id,
                              form.get("name", ""))
    except DomainError as err:
        return await _rename_form(page, passkey_id, name=form.get("name", ""),
                                  error=page.error_message(err), status_code=status_for(err))
    return redirect(methods_url("passkey_renamed", PASSKEY))
