"""The integration API for portals (API keys of role ``app``): users, their methods,
enrollment on their behalf, headless challenge/verify, and operations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from stepup.services import headless, methods, operations, passkeys, users
from stepup.store.models import ApiKey
from stepup.web import direct
from stepup.web.api.enrollment import body_answer, enrollment_answer
from stepup.web.api.methods import CODE_SENT
from stepup.web.api.operations import OperationIn, OperationOut, PinIn
from stepup.web.api.schemas import (
    CODE_MAX,
    Body,
    ChallengeOut,
    CodeIn,
    EnrollmentConfirmIn,
    EnrollmentIn,
    MethodOut,
    MethodsOut,
    NameIn,
    PasskeyIn,
    SwitchIn,
)
from stepup.web.deps import HeldKey, app_actor, app_key, app_key_held, key_held, runtime

router = APIRouter(prefix="/users", tags=["integration"])
UsersKey = Annotated[ApiKey, Depends(app_key("users"))]
MethodsKey = Annotated[ApiKey, Depends(app_key("methods"))]
VerifyKey = Annotated[ApiKey, Depends(app_key("verify"))]
# The verification joins the transaction that counted the key's call (one, not two).
VerifyKeyHeld = Annotated[HeldKey, Depends(app_key_held("verify"), scope="function")]
OperationsKey = Annotated[ApiKey, Depends(app_key("operations"))]


class UserIn(Body):
    email: str = Field(max_length=320, examples=["jane@example.com"])
    external_id: str | None = Field(default=None, max_length=200, examples=["client-8812"],
                                    description="Your portal's id for the user (unique in "
                                                "your app)")
    language: str | None = Field(default=None, max_length=8, examples=["en"],
                                 description="en or ru; a new user without one gets en")
    pin: str | None = Field(default=None, max_length=32,
                            description="The withdrawal PIN; without it StepUp asks none")
    password: str | None = Field(default=None, max_length=1024,
                                 description="Keys of the app 'portal' only: the user will "
                                             "also log in to StepUp's own pages")
    email_verified: bool = Field(
        default=False, description="true: your portal verified this address itself and "
        "vouches for it. Only a verified e-mail receives the code that confirms a "
        "withdrawal when no method is switched on for withdrawals (a new user only; "
        "PATCH changes it)")


class UserOut(BaseModel):
    id: str
    email: str
    external_id: str | None = None
    language: str
    verification_grade: int


class ChallengeIn(Body):
    method: str = Field(max_length=20, examples=["sms"])
    purpose: str = Field(default="login", max_length=64,
                         description="'login' or an operation id", examples=["login"])


class VerifyIn(Body):
    method: str = Field(max_length=20, examples=["totp"])
    code: str = Field(max_length=CODE_MAX, examples=["492039"])
    purpose: str = Field(default="login", max_length=64,
                         description="'login' or an operation id", examples=["login"])


class VerifyOut(BaseModel):
    valid: bool
    method: str
    verified_at: datetime
    receipt: str | None = Field(default=None, description="For an operation: its receipt")
    backup_codes_remaining: int | None = None


class OnBehalfEnrollmentIn(EnrollmentIn):
    pin: str | None = Field(default=None, max_length=32,  # type: ignore[assignment]
                            description="Optional: the portal has authenticated the user")


@router.post("", response_model=UserOut, status_code=201,
             responses={200: {"description": "An existing user (same external id or e-mail)"}})
async def create_user(body: UserIn, request: Request, key: UsersKey) -> JSONResponse:
    """Create a user of your app, or fetch the one with this external id (or e-mail):
    safe to repeat. Details that differ from the existing user's, or an e-mail and an
    external id of two different users, answer 409 ``user_conflict``."""
    assert key.app_id is not None  # keys of role app always belong to an app
    user, created = await users.create_or_fetch(
        runtime(request), app_actor(request, key), key.app_id, email=body.email,
        external_id=body.external_id, language=body.language, pin=body.pin,
        password=body.password, email_verified=body.email_verified)
    out = UserOut(id=user.id, email=user.email, external_id=user.external_id,
                  language=user.language, verification_grade=user.verification_grade)
    return JSONResponse(out.model_dump(mode="json"), status_code=201 if created else 200)


@router.get("/{user_id}/methods", response_model=MethodsOut, response_model_exclude_none=True)
async def user_methods(user_id: str, request: Request, key: MethodsKey) -> MethodsOut:
    views = await methods.list_views(runtime(request), user_id)
    return MethodsOut(methods=[MethodOut.of(v) for v in views])


@router.post("/{user_id}/methods/{method_type}/enrollment",
             responses={200: {"description": "totp: secret, otpauth_uri, qr_svg; webauthn: "
                                             "options for navigator.credentials.create"},
                        201: {"description": "backup_codes: the codes, shown once"},
                        202: CODE_SENT})
async def enroll(user_id: str, method_type: str, body: OnBehalfEnrollmentIn,
                 request: Request, key: MethodsKey) -> JSONResponse:
    """Start enabling a method for the user (same answers as /me/methods/…/enrollment)."""
    params = body.model_dump(exclude={"pin", "protects"}, exclude_none=True)
    start = await methods.begin_enrollment(runtime(request), app_actor(request, key), user_id,
                                           method_type, body.pin, params, on_behalf=True,
                                           protects=body.protects)
    return enrollment_answer(start)


class OnBehalfPinIn(Body):
    pin: str | None = Field(default=None, max_length=32,
                            description="Optional: the portal has authenticated the user")


@router.post("/{user_id}/methods/webauthn/passkeys")
async def add_passkey(user_id: str, body: OnBehalfPinIn, request: Request, key: MethodsKey
                      ) -> JSONResponse:
    """One more passkey for the user: ``{options, expires_in}`` for
    ``navigator.credentials.create``, then ``…/passkeys/confirm`` with the credential."""
    started = await passkeys.begin_add(runtime(request), app_actor(request, key), user_id,
                                       body.pin, on_behalf=True)
    return body_answer(started)


@router.post("/{user_id}/methods/webauthn/passkeys/confirm", response_model=MethodOut,
             response_model_exclude_none=True)
async def confirm_passkey(user_id: str, body: PasskeyIn, request: Request, key: MethodsKey
                          ) -> MethodOut:
    return MethodOut.of(await passkeys.finish_add(runtime(request), app_actor(request, key),
                                                  user_id, body.code, body.name))


@router.patch("/{user_id}/methods/webauthn/passkeys/{passkey_id}", response_model=MethodOut,
              response_model_exclude_none=True)
async def rename_passkey(user_id: str, passkey_id: str, body: NameIn, request: Request,
                         key: MethodsKey) -> MethodOut:
    return MethodOut.of(await passkeys.rename(runtime(request), app_actor(request, key),
                                              user_id, passkey_id, body.name))


@router.post("/{user_id}/methods/webauthn/passkeys/{passkey_id}/remove",
             response_model=MethodOut, response_model_exclude_none=True)
async def remove_passkey(user_id: str, passkey_id: str, body: CodeIn, request: Request,
                         key: MethodsKey) -> MethodOut:
    """Remove one passkey; ``code``: the user's answer, from any passkey, to a challenge of
    ``…/methods/webauthn/challenge``. The last one disables the method."""
    return MethodOut.of(await passkeys.remove(runtime(request), app_actor(request, key),
                                              user_id, passkey_id, body.code))


@router.post("/{user_id}/methods/{method_type}/enrollment/confirm", response_model=MethodOut,
             response_model_exclude_none=True)
async def confirm_enrollment(user_id: str, method_type: str, body: EnrollmentConfirmIn,
                             request: Request, key: MethodsKey) -> MethodOut:
    v = await methods.confirm_enrollment(runtime(request), app_actor(request, key), user_id,
                                         method_type, body.code, body.protects)
    return MethodOut.of(v)


@router.post("/{user_id}/methods/{method_type}/challenge", status_code=202,
             response_model=ChallengeOut, response_model_exclude_none=True)
async def method_challenge(user_id: str, method_type: str, request: Request,
                           key: MethodsKey) -> ChallengeOut:
    """A code to switch or disable this method (out-of-band methods)."""
    sent = await methods.challenge(runtime(request), app_actor(request, key), user_id,
                                   method_type)
    return ChallengeOut.of(sent)


@router.patch("/{user_id}/methods/{method_type}", response_model=MethodOut,
              response_model_exclude_none=True)
async def switch(user_id: str, method_type: str, body: SwitchIn, request: Request,
                 key: MethodsKey) -> MethodOut:
    v = await methods.switch(runtime(request), app_actor(request, key), user_id, method_type,
                             body.protects, body.code)
    return MethodOut.of(v)


@router.post("/{user_id}/methods/{method_type}/disable", response_model=MethodOut,
             response_model_exclude_none=True)
async def disable(user_id: str, method_type: str, body: CodeIn, request: Request,
                  key: MethodsKey) -> MethodOut:
    v = await methods.disable(runtime(request), app_actor(request, key), user_id,
                              method_type, body.code)
    return MethodOut.of(v)


@router.post("/{user_id}/challenge", status_code=202, response_model=ChallengeOut,
             response_model_exclude_none=True)
async def challenge(user_id: str, body: ChallengeIn, request: Request, key: VerifyKey
                    ) -> ChallengeOut:
    """Send a code by the method's channel (SMS, e-mail, …) for ``purpose`` (login or an
    operation id)."""
    sent = await headless.challenge(runtime(request), app_actor(request, key), user_id,
                                    body.method, body.purpose)
    return ChallengeOut.of(sent, body.method)


@router.post("/{user_id}/verify", response_model=VerifyOut, response_model_exclude_none=True,
             responses={400: {"description": "invalid_code, code_expired"},
                        423: {"description": "method_locked, account_locked"}})
async def verify(user_id: str, body: VerifyIn, request: Request, held: VerifyKeyHeld
                 ) -> VerifyOut:
    """Check a code. ``valid: true`` or a problem; the same code is never valid twice."""
    v = await headless.verify(runtime(request), app_actor(request, held.key), user_id,
                              body.method, body.code, body.purpose, db=held.db,
                              ahead=held.ahead)
    return VerifyOut(valid=v.valid, method=v.method, verified_at=v.verified_at,
                     receipt=v.receipt, backup_codes_remaining=v.backup_codes_remaining)


async def verify_directly(request: Request) -> Response:
    """``verify``'s arguments solved by hand, in FastAPI's order (web/direct.py): the
    body read, the key held, the body validated, the function called."""
    body = await direct.json_body(request)
    user_id = request.path_params["user_id"]
    # The check's first read is fetched with the key: one statement (and round trip) less.
    async with key_held(request, "verify", headless.check_read(user_id, body)) as held:
        out = await verify(user_id, direct.validated(VerifyIn, body), request, held)
    return direct.model_response(out)


@router.post("/{user_id}/operations", status_code=201, response_model=OperationOut,
             response_model_exclude_none=True)
async def create_operation(user_id: str, body: OperationIn, request: Request,
                           key: OperationsKey) -> OperationOut:
    """Create an operation the user then confirms (StepUp's pages, /me/operations, or
    /users/{id}/verify with the operation id as purpose)."""
    await users.get(runtime(request), user_id)
    v = await operations.create(runtime(request), app_actor(request, key), user_id, body.type,
                                body.details, created_by=f"app:{key.id}")
    return OperationOut.of(v)


@router.post("/{user_id}/operations/{operation_id}/pin", response_model=OperationOut,
             response_model_exclude_none=True)
async def operation_pin(user_id: str, operation_id: str, body: PinIn, request: Request,
                        key: OperationsKey) -> OperationOut:
    """The PIN step, for portals that collect the PIN on their own page."""
    v = await operations.submit_pin(runtime(request), app_actor(request, key), user_id,
                                    operation_id, body.pin)
    return OperationOut.of(v)


@router.get("/{user_id}/operations/{operation_id}", response_model=OperationOut,
            response_model_exclude_none=True)
async def read_operation(user_id: str, operation_id: str, request: Request,
                         key: OperationsKey) -> OperationOut:
    return OperationOut.of(await operations.get(runtime(request), user_id, operation_id))


