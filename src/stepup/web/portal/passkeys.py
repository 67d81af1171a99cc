"""Methods that hold several credentials (passkeys): "Add a passkey" (the PIN, then the
browser makes it, with a name if the user gives one), and beside each one "Rename" and
"Remove" (an answer from any credential of the account).

The routes serve any method that declares the ability (``HoldsSeveralCredentials``):
``/settings/methods/{method_type}/add``, ``…/passkeys/{id}/rename`` and ``…/remove``."""

from __future__ import annotations

from typing import Any

from fastapi.responses import Response

from stepup.domain.refusals import held
from stepup.methods.base import MethodView
from stepup.services import passkeys
from stepup.web import deps
from stepup.web.portal.enroll import method_view, methods_url
from stepup.web.portal.manage import manage_passkey
from stepup.web.portal.plumbing import (
    Refusal,
    SeveralCredentialsMethod,
    SignedIn,
    UserForm,
    UserPage,
    not_found,
    portal_router,
    refused,
)
from stepup.web.portal.render import Page, redirect

router = portal_router()
BASE = "/settings/methods/{method_type}"


def _base(method_type: str) -> str:
    return BASE.format(method_type=method_type)


def _pin_form(page: Page, method_type: str, *, error: str | None = None,
              status_code: int = 200) -> Response:
    return page.render("enable_pin.html", status_code=status_code,
                       title=page._("Add a passkey"), method_type=method_type,
                       action=f"{_base(method_type)}/add", error=error)


def _create_form(page: Page, method_type: str, options: dict[str, object] | None, *,
                 error: str | None = None, status_code: int = 200) -> Response:
    base = _base(method_type)
    return page.render(f"{method_type}/setup.html", status_code=status_code,
                       title=page._("Add a passkey"), method_type=method_type,
                       options=options, confirm_action=f"{base}/add/confirm",
                       restart=f"{base}/add", ask_name=True, error=error)


@router.get(f"{BASE}/add")
async def add_page(page: SignedIn, method_type: SeveralCredentialsMethod) -> Response:
    view = await method_view(page, method_type)
    if view is None or not view.enabled:
        return redirect(f"{_base(method_type)}/enable")
    return _pin_form(page, method_type)


@router.post(f"{BASE}/add")
async def add_submit(page: SignedIn, form: UserForm, method_type: SeveralCredentialsMethod
                     ) -> Response:
    started = await refused(
        page, passkeys.begin_add(page.rt, deps.actor(page.request), page.me.id,
                                 form.get("pin", "").strip()),
        lambda r: _pin_form(page, method_type, error=r.message, status_code=r.status))
    return _create_form(page, method_type, started.options)


@router.post(f"{BASE}/add/confirm")
async def add_confirm(page: SignedIn, form: UserForm, method_type: SeveralCredentialsMethod
                      ) -> Response:
    await refused(
        page, passkeys.finish_add(page.rt, deps.actor(page.request), page.me.id,
                                  form.get("code", ""), form.get("name", "").strip() or None),
        lambda r: _create_form(page, method_type, None, error=r.message,
                               status_code=r.status))
    return redirect(methods_url("passkey_added", method_type))


async def _credentials(page: Page, method_type: str, refusal: Refusal | None = None
                       ) -> list[dict[str, Any]]:
    """The account's credentials of this method (none when it is not enabled); after a
    refused step, as that step read them."""
    view = (held(refusal.error, MethodView) if refusal else None) or await method_view(
        page, method_type)
    return list(view.passkeys or []) if view is not None else []


async def _remove_form(page: UserPage, method_type: str, passkey_id: str, *,
                       refusal: Refusal | None = None) -> Response:
    listed = await _credentials(page, method_type, refusal)
    chosen = next((p for p in listed if p["id"] == passkey_id), None)
    if chosen is None:
        not_found(page)
    options, problem = await manage_passkey(page, method_type)
    last = len(listed) == 1
    intro = (page._("This is your last passkey: removing it disables passkeys. Click "
                    "Remove, then confirm with a passkey.") if last
             else page._("Click Remove, then confirm with any of your passkeys."))
    return page.render(
        "code_form.html", status_code=refusal.status if refusal else 200,
        title=page._("Remove %(name)s", name=chosen["name"]), intro=intro,
        method_type=method_type,
        action=f"{_base(method_type)}/passkeys/{passkey_id}/remove", hidden={},
        error=(refusal.message if refusal else None) or problem, submit=page._("Remove"),
        danger=True, passkey=options, sends_code=False)


@router.get(f"{BASE}/passkeys/{{passkey_id}}/remove")
async def remove_page(passkey_id: str, page: SignedIn,
                      method_type: SeveralCredentialsMethod) -> Response:
    return await _remove_form(page, method_type, passkey_id)


@router.post(f"{BASE}/passkeys/{{passkey_id}}/remove")
async def remove_submit(passkey_id: str, page: SignedIn, form: UserForm,
                        method_type: SeveralCredentialsMethod) -> Response:
    view = await refused(
        page, passkeys.remove(page.rt, deps.actor(page.request), page.me.id, passkey_id,
                              form.get("code", "")),
        lambda r: _remove_form(page, method_type, passkey_id, refusal=r))
    return redirect(methods_url("passkey_removed" if view.enabled else "disabled",
                                method_type))


async def _rename_form(page: Page, method_type: str, passkey_id: str, *,
                       name: str | None = None, refusal: Refusal | None = None) -> Response:
    chosen = next((p for p in await _credentials(page, method_type, refusal)
                   if p["id"] == passkey_id), None)
    if chosen is None:
        not_found(page)
    return page.render(f"{method_type}/rename.html",
                       status_code=refusal.status if refusal else 200,
                       method_type=method_type,
                       title=page._("Rename %(name)s", name=chosen["name"]),
                       action=f"{_base(method_type)}/passkeys/{passkey_id}/rename",
                       name=chosen["name"] if name is None else name,
                       error=refusal.message if refusal else None)


@router.get(f"{BASE}/passkeys/{{passkey_id}}/rename")
async def rename_page(passkey_id: str, page: SignedIn,
                      method_type: SeveralCredentialsMethod) -> Response:
    return await _rename_form(page, method_type, passkey_id)


@router.post(f"{BASE}/passkeys/{{passkey_id}}/rename")
async def rename_submit(passkey_id: str, page: SignedIn, form: UserForm,
                        method_type: SeveralCredentialsMethod) -> Response:
    await refused(
        page, passkeys.rename(page.rt, deps.actor(page.request), page.me.id, passkey_id,
                              form.get("name", "")),
        lambda r: _rename_form(page, method_type, passkey_id, name=form.get("name", ""),
                               refusal=r))
    return redirect(methods_url("passkey_renamed", method_type))
