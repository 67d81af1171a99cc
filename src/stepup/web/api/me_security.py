"""``/me/password``, ``/me/pin`` and ``/password/forgot`` · ``/password/reset``: the
self-service account security of StepUp's own users (services/account_security.py).

The ``/me`` calls take the user's session like every ``/me`` call (a bearer token, or
the portal's cookie with its CSRF token). Changing the password keeps the caller's
session as it is (a 204 has no body to carry a new token) and ends every other one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response
from pydantic import BaseModel, Field

from stepup.services import account_security
from stepup.web.api.schemas import CODE_MAX, Body, ChallengeOut
from stepup.web.deps import Caller, actor, caller, runtime

router = APIRouter(tags=["account security"])
Who = Annotated[Caller, Depends(caller)]


class PasswordChangeIn(Body):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class PinChangeIn(Body):
    password: str = Field(max_length=1024)
    new_pin: str = Field(max_length=32, examples=["582046"])
    method: str | None = Field(default=None, max_length=40, examples=["totp"])
    code: str | None = Field(default=None, max_length=CODE_MAX)


class PinMethod(BaseModel):
    type: str
    destination: str | None = None


class PinMethodsOut(BaseModel):
    methods: list[PinMethod]
    #: True when the only way is a code sent to the account e-mail (no method enabled).
    account_email: bool


class PinChallengeIn(Body):
    method: str | None = Field(default=None, max_length=40, examples=["sms"])


class ForgotIn(Body):
    email: str = Field(max_length=320, examples=["jane@example.com"])


class ResetIn(Body):
    token: str = Field(max_length=200)
    new_password: str = Field(max_length=1024)


@router.post("/me/password", status_code=204)
async def change_password(body: PasswordChangeIn, request: Request, who: Who) -> Response:
    """A new password; the current one is checked (and throttled like a login). Every
    other session ends; the user is told."""
    await account_security.change_password(
        runtime(request), actor(request), who.user.id, who.session_id,
        current_password=body.current_password, new_password=body.new_password)
    return Response(status_code=204)


@router.get("/me/pin/methods", response_model=PinMethodsOut,
            response_model_exclude_none=True)
async def pin_methods(request: Request, who: Who) -> PinMethodsOut:
    """What may confirm a new PIN: any enabled method; with none, a code to the account
    e-mail (``account_email: true``, type ``email``)."""
    entries = await account_security.pin_methods(runtime(request), who.user.id)
    return PinMethodsOut(methods=[PinMethod(type=e["type"], destination=e.get("destination"))
                                  for e in entries],
                         account_email=any(e.get("account_email") for e in entries))


@router.post("/me/pin/challenge", status_code=202, response_model=ChallengeOut,
             response_model_exclude_none=True)
async def pin_challenge(body: PinChallengeIn, request: Request, who: Who) -> ChallengeOut:
    """A code for ``POST /me/pin`` (out-of-band methods and the account e-mail; for a
    passkey, the request ``options``)."""
    sent = await account_security.pin_challenge(runtime(request), actor(request),
                                                who.user.id, body.method)
    return ChallengeOut.of(sent, body.method)


@router.post("/me/pin", status_code=204)
async def change_pin(body: PinChangeIn, request: Request, who: Who) -> Response:
    """A new PIN: the password and a code (``method``: default the first of
    ``GET /me/pin/methods``). The user is told."""
    await account_security.change_pin(runtime(request), actor(request), who.user.id,
                                      password=body.password, new_pin=body.new_pin,
                                      method=body.method, code=body.code)
    return Response(status_code=204)


@router.post("/password/forgot", status_code=202, response_class=Response,
             responses={202: {"description": "Accepted, whatever the address: no body."}})
async def forgot_password(body: ForgotIn, request: Request,
                          background: BackgroundTasks) -> Response:
    """A reset link to the address if it is an account's: 202 whatever the address,
    sent before the account is looked up (its time tells nothing)."""
    rt = runtime(request)
    asked = await account_security.count_reset_request(rt, actor(request), body.email)
    background.add_task(account_security.send_reset_link, rt, asked)
    return Response(status_code=202)


@router.post("/password/reset", status_code=204)
async def reset_password(body: ResetIn, request: Request) -> Response:
    """The new password a reset link allows; every session of the account ends."""
    await account_security.reset_password(runtime(request), actor(request), body.token,
                                          body.new_password)
    return Response(status_code=204)
