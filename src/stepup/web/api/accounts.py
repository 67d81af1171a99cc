"""``/accounts`` and ``/me``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from stepup.services import accounts
from stepup.web.api.schemas import AccountIn, AccountOut, Identities, MeOut
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
