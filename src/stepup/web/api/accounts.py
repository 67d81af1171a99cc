"""``/accounts``, ``/me`` and the verification of the account e-mail
(``/me/email/verification``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from stepup.services import accounts, email_verification
from stepup.web.api.schemas import (
    AccountIn,
    AccountOut,
    ChallengeOut,
    CodeIn,
    Identities,
    MeOut,
)
from stepup.web.deps import Caller, actor, caller, runtime

router = APIRouter(tags=["accounts"])


@router.post("/accounts", status_code=201, response_model=AccountOut)
async def create_account(body: AccountIn, request: Request) -> AccountOut:
    user = await accounts.create_account(runtime(request), actor(request), email=body.email,
                                         password=body.password, pin=body.pin,
                                         language=body.language)
    return AccountOut(id=user.id, email=user.email)


@router.get("/me", response_model=MeOut)
async def me(who: Annotated[Caller, Depends(caller)]) -> MeOut:
    p = accounts.profile(who.user)
    return MeOut(id=p.id, email=p.email, language=p.language,
                 verification_grade=p.verification_grade,
                 identities=Identities(email_verified=p.email_verified,
                                       phone_verified=p.phone_verified))


@router.post("/me/email/verification", status_code=202, response_model=ChallengeOut,
             response_model_exclude_none=True)
async def send_email_verification(request: Request,
                                  who: Annotated[Caller, Depends(caller)]) -> ChallengeOut:
    """Send the code and link that verify the account e-mail again (sign-up sent the
    first); the older ones stop working. 409 ``email_already_verified`` once it is."""
    sent = await email_verification.send(runtime(request), actor(request), who.user.id)
    return ChallengeOut.of(sent)


@router.post("/me/email/verification/confirm", status_code=204)
async def confirm_email_verification(body: CodeIn, request: Request,
                                     who: Annotated[Caller, Depends(caller)]) -> Response:
    """Verify the account e-mail with the code from the message. An address already
    verified answers 204 too, without checking the code."""
    await email_verification.confirm_code(runtime(request), actor(request), who.user.id,
                                          body.code)
    return Response(status_code=204)
