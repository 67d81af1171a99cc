"""``/me/operations``: withdrawals and other protected operations, and the JWKS."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from stepup.services import operations, receipts
from stepup.services.operations import OperationView
from stepup.web.api.schemas import CODE_MAX, Body, ChallengeOut, LoginMethod
from stepup.web.deps import Caller, actor, caller, runtime

router = APIRouter(prefix="/me/operations", tags=["operations"])
wellknown = APIRouter(tags=["operations"])
Who = Annotated[Caller, Depends(caller)]


CANONICAL_DETAILS = (
    "The operation's details in canonical form, exactly as the receipt carries them in "
    "`operation.details`: compare the receipt to this, not to what you sent. `amount` is a "
    "decimal string: no exponent, no leading `+`, no leading zeros (`0.5`, not `.5` or "
    "`00.5`), no trailing zeros after the point and no point without decimals (`0.10` is "
    "written `0.1`, `100.00` is `100`), at most the currency's decimal places (BTC 8, "
    "USD 2, JPY 0; 8 for currencies StepUp does not list). `currency` is upper-case "
    "(`btc` is written `BTC`). Text details lose leading and trailing spaces.")


class OperationIn(Body):
    type: str = Field(max_length=40, examples=["withdrawal"])
    details: dict[str, Any] = Field(
        description="What the user confirms. `amount` is a decimal string (never a JSON "
                    "number) with at most the currency's decimal places; the answer gives "
                    "the canonical form (`0.10 btc` comes back `0.1 BTC`).",
        examples=[{"amount": "0.25", "currency": "BTC",
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
    details: dict[str, str] = Field(description=CANONICAL_DETAILS, examples=[{
        "amount": "0.1", "currency": "BTC",
        "destination": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"}])
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


JWKS_CACHE = "public, max-age=300"


def _matches(if_none_match: str | None, etag: str) -> bool:
    # RFC 9110 §13.1.2: a list of entity tags or "*", compared weakly.
    if not if_none_match:
        return False
    tags = [t.strip() for t in if_none_match.split(",")]
    return "*" in tags or etag in (t.removeprefix("W/") for t in tags)


@wellknown.get("/.well-known/jwks.json", response_class=Response, responses={
    200: {"description": "The published keys, newest first. Cacheable for five minutes; "
                         "refetch when a receipt names an unknown `kid`.",
          "content": {"application/json": {}}},
    304: {"description": "Not modified: the `If-None-Match` ETag is still current."}})
async def jwks(request: Request) -> Response:
    """The public keys (Ed25519, EdDSA) that verify operation receipts, with
    ``Cache-Control: public, max-age=300`` and a strong ``ETag``."""
    body, etag = receipts.jwks_document(await receipts.jwks(runtime(request)))
    headers = {"Cache-Control": JWKS_CACHE, "ETag": etag}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
