"""``/login``, ``/login/challenge``, ``/login/verify``, ``/logout``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from stepup.services import login, sessions
from stepup.web import direct
from stepup.web.api.schemas import (
    ChallengeOut,
    LoginChallengeIn,
    LoginIn,
    LoginMethod,
    LoginOut,
    LoginVerifyIn,
)
from stepup.web.deps import Caller, actor, caller, runtime

router = APIRouter(tags=["login"])


def _out(result: login.LoginResult) -> LoginOut:
    if result.status == "authenticated":
        return LoginOut(status=result.status, session_token=result.session_token,
                        expires_at=result.expires_at,
                        backup_codes_remaining=result.notes.get("remaining"),
                        backup_codes_low=result.notes.get("low"),
                        remember_device_token=result.remember_device_token)
    return LoginOut(status=result.status, login_token=result.login_token,
                    methods=[LoginMethod(**m) for m in result.methods])


@router.post("/login", response_model=LoginOut, response_model_exclude_none=True)
async def password_step(body: LoginIn, request: Request) -> LoginOut:
    result = await login.password_step(runtime(request), actor(request), body.email,
                                       body.password, body.remember_device_token)
    return _out(result)


@router.post("/login/challenge", status_code=202, response_model=ChallengeOut,
             response_model_exclude_none=True)
async def login_challenge(body: LoginChallengeIn, request: Request) -> ChallengeOut:
    sent = await login.challenge(runtime(request), actor(request), body.login_token,
                                 body.method)
    return ChallengeOut.of(sent, body.method)


@router.post("/login/verify", response_model=LoginOut, response_model_exclude_none=True)
async def login_verify(body: LoginVerifyIn, request: Request) -> LoginOut:
    result = await login.verify(runtime(request), actor(request), body.login_token,
                                body.method, body.code, remember_device=body.remember_device)
    return _out(result)


async def login_verify_directly(request: Request) -> Response:
    """``login_verify``'s arguments solved by hand (web/direct.py)."""
    body = direct.validated(LoginVerifyIn, await direct.json_body(request))
    return direct.model_response(await login_verify(body, request))


@router.post("/logout", status_code=204)
async def logout(request: Request, who: Annotated[Caller, Depends(caller)]) -> Response:
    await sessions.end(runtime(request), who.session_id)
    return Response(status_code=204)
