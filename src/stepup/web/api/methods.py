"""``/me/methods``: the Authentication methods of the signed-in user."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from stepup.methods import registry
from stepup.services import methods, passkeys
from stepup.web.api.enrollment import body_answer, enrollment_answer
from stepup.web.api.schemas import (
    ChallengeOut,
    CodeIn,
    CodesOut,
    EnrollmentConfirmIn,
    EnrollmentIn,
    MethodOut,
    MethodsOut,
    NameIn,
    PasskeyIn,
    PinIn,
    SwitchIn,
)
from stepup.web.deps import Caller, actor, caller, runtime

router = APIRouter(prefix="/me/methods", tags=["methods"])
Who = Annotated[Caller, Depends(caller)]

# Every method that sends codes answers 202; the registry names them.
CODE_SENT = {"description": ", ".join(d.type for d in registry.sending_codes()) +
             ": a code was sent"}
ENROLLMENT_EXAMPLES: dict[int | str, dict[str, Any]] = {
    200: {"description": "totp: the secret, its otpauth:// URI and a QR code (SVG); "
                         "webauthn: {options, expires_in} for navigator.credentials.create"},
    201: {"description": "backup_codes: the new codes, shown once; the method is enabled"},
    202: CODE_SENT,
}


@router.get("", response_model=MethodsOut, response_model_exclude_none=True)
async def list_methods(request: Request, who: Who) -> MethodsOut:
    views = await methods.list_views(runtime(request), who.user.id)
    return MethodsOut(methods=[MethodOut.of(v) for v in views])


@router.post("/{method_type}/enrollment", responses=ENROLLMENT_EXAMPLES)
async def begin_enrollment(method_type: str, body: EnrollmentIn, request: Request,
                           who: Who) -> JSONResponse:
    params = body.model_dump(exclude={"pin", "protects"}, exclude_none=True)
    start = await methods.begin_enrollment(runtime(request), actor(request), who.user.id,
                                           method_type, body.pin, params,
                                           protects=body.protects)
    return enrollment_answer(start)


@router.post("/{method_type}/enrollment/confirm", response_model=MethodOut,
             response_model_exclude_none=True)
async def confirm_enrollment(method_type: str, body: EnrollmentConfirmIn, request: Request,
                             who: Who) -> MethodOut:
    v = await methods.confirm_enrollment(runtime(request), actor(request), who.user.id,
                                         method_type, body.code, body.protects)
    return MethodOut.of(v)


@router.post("/{method_type}/challenge", status_code=202, response_model=ChallengeOut,
             response_model_exclude_none=True)
async def challenge(method_type: str, request: Request, who: Who) -> ChallengeOut:
    sent = await methods.challenge(runtime(request), actor(request), who.user.id, method_type)
    return ChallengeOut.of(sent)


@router.patch("/{method_type}", response_model=MethodOut, response_model_exclude_none=True)
async def switch(method_type: str, body: SwitchIn, request: Request, who: Who) -> MethodOut:
    v = await methods.switch(runtime(request), actor(request), who.user.id, method_type,
                             body.protects, body.code)
    return MethodOut.of(v)


@router.post("/{method_type}/disable", response_model=MethodOut,
             response_model_exclude_none=True)
async def disable(method_type: str, body: CodeIn, request: Request, who: Who) -> MethodOut:
    v = await methods.disable(runtime(request), actor(request), who.user.id, method_type,
                              body.code)
    return MethodOut.of(v)


@router.post("/webauthn/passkeys")
async def add_passkey(body: PinIn, request: Request, who: Who) -> JSONResponse:
    """One more passkey: the PIN, then ``{options, expires_in}`` for
    ``navigator.credentials.create``; the new credential goes to ``…/passkeys/confirm``."""
    started = await passkeys.begin_add(runtime(request), actor(request), who.user.id,
                                       body.pin)
    return body_answer(started)


@router.post("/webauthn/passkeys/confirm", response_model=MethodOut,
             response_model_exclude_none=True)
async def confirm_passkey(body: PasskeyIn, request: Request, who: Who) -> MethodOut:
    v = await passkeys.finish_add(runtime(request), actor(request), who.user.id, body.code,
                                  body.name)
    return MethodOut.of(v)


@router.patch("/webauthn/passkeys/{passkey_id}", response_model=MethodOut,
              response_model_exclude_none=True)
async def rename_passkey(passkey_id: str, body: NameIn, request: Request, who: Who
                         ) -> MethodOut:
    v = await passkeys.rename(runtime(request), actor(request), who.user.id, passkey_id,
                              body.name)
    return MethodOut.of(v)


@router.post("/webauthn/passkeys/{passkey_id}/remove", response_model=MethodOut,
             response_model_exclude_none=True)
async def remove_passkey(passkey_id: str, body: CodeIn, request: Request, who: Who
                         ) -> MethodOut:
    """Remove one passkey; ``code``: an answer from any passkey to a challenge of
    ``POST /me/methods/webauthn/challenge``. The last one disables the method."""
    v = await passkeys.remove(runtime(request), actor(request), who.user.id, passkey_id,
                              body.code)
    return MethodOut.of(v)


@router.post("/backup_codes/regenerate", status_code=201, response_model=CodesOut)
async def regenerate(body: CodeIn, request: Request, who: Who) -> JSONResponse:
    codes = await methods.regenerate_backup_codes(runtime(request), actor(request),
                                                  who.user.id, body.code)
    return JSONResponse({"codes": codes}, status_code=201,
                        headers={"Cache-Control": "no-store"})
