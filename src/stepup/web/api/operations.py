"""``/me/operations``: withdrawals and other protected operations, and the JWKS."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from stepup.services import operations, receipts
from stepup.services.operations import OperationView
from stepup.web.api.schemas import CODE_MAX, Body, ChallengeOut, LoginMethod
from stepup.web.deps import Caller, actor, caller, runtime

router = APIRouter(prefix="/me/operations", tags=["operations"])
wellknown = APIRouter(tags=["operations"])
Who = Annotated[Caller, Depends(caller)]


class OperationIn(Body):
    type: str = Field(max_length=40, examples=["withdrawal"])
    details: dict[str, Any] = Field(examples=[{
        "amount": "0.25", "currency": "BTC",
        "destination": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"}])


class PinIn(Body):
    pin: str = Field(max_length=32)


class OperationChallengeIn(Body):
    method: str = Field(max_length=20)


class OperationConfirmIn(Body):
    method: str = Field(max_length=20)
    code: str = Field(max_length=CODE_MAX)


class OperationOut(BaseModel):
    id: str
    type: str
    status: str
    summary: str
    details: dict[str, str]
    expires_at: datetime
    methods: list[LoginMethod] | None = None
    receipt: str | None = None
    method: str | None = None
    confirmed_at: datetime | None = None

    @classmethod
    def of(cls, v: OperationView) -> OperationOut:
        return cls(id=v.id, type=v.type, status=v.status, summary=v.summary,
                   details=v.details, expires_at=v.expires_at,
                   methods=[LoginMethod(**m) for m in v.methods] or None, receipt=v.receipt,
                   method=v.method, confirmed_at=v.confirmed_at)


@router.post("", status_code=201, response_model=OperationOut, response_model_exclude_none=True)
async def create(body: OperationIn, request: Request, who: Who) -> OperationOut:
    v = await operations.create(runtime(request), actor(request), who.user.id, body.type,
                                body.details)
    return OperationOut.of(v)


@router.get("/{operation_id}", response_model=OperationOut, response_model_exclude_none=True)
async def read(operation_id: str, request: Request, who: Who) -> OperationOut:
    return OperationOut.of(await operations.get(runtime(request), who.user.id, operation_id))


@router.post("/{operation_id}/pin", response_model=OperationOut,
             response_model_exclude_none=True)
async def pin(operation_id: str, body: PinIn, request: Request, who: Who) -> OperationOut:
    v = await operations.submit_pin(runtime(request), actor(request), who.user.id,
                                    operation_id, body.pin)
    return OperationOut.of(v)


@router.post("/{operation_id}/challenge", status_code=202, response_model=ChallengeOut,
             response_model_exclude_none=True)
async def challenge(operation_id: str, body: OperationChallengeIn, request: Request,
                    who: Who) -> ChallengeOut:
    sent = await operations.challenge(runtime(request), actor(request), who.user.id,
                                      operation_id, body.method)
    return ChallengeOut.of(sent, body.method)


@router.post("/{operation_id}/confirm", response_model=OperationOut,
             response_model_exclude_none=True)
async def confirm(operation_id: str, body: OperationConfirmIn, request: Request,
                  who: Who) -> OperationOut:
    v = await operations.confirm(runtime(request), actor(request), who.user.id, operation_id,
                                 body.method, body.code)
    return OperationOut.of(v)


@wellknown.get("/.well-known/jwks.json")
async def jwks(request: Request) -> dict[str, Any]:
    """The public keys (Ed25519, EdDSA) that verify operation receipts."""
    return await receipts.jwks(runtime(request))
