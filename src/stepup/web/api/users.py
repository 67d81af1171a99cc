"""The integration API for the portal that embeds StepUp (API keys of role ``app``):
users, their methods, and operations created on their behalf."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from stepup.services import methods, operations, users
from stepup.store.models import ApiKey
from stepup.web.api.operations import OperationIn, OperationOut
from stepup.web.api.schemas import Body, MethodOut, MethodsOut
from stepup.web.deps import app_actor, app_key, runtime

router = APIRouter(prefix="/users", tags=["integration"])
App = Annotated[ApiKey, Depends(app_key)]


class UserIn(Body):
    email: str = Field(max_length=320, examples=["jane@example.com"])
    external_id: str | None = Field(default=None, max_length=200, examples=["client-8812"])
    language: str = Field(default="en", max_length=8)
    password: str | None = Field(default=None, max_length=1024,
                                 description="Only if the user will also log in to StepUp")
    pin: str | None = Field(default=None, max_length=32,
                            description="The withdrawal PIN; without it StepUp asks none")


class UserOut(BaseModel):
    id: str
    email: str
    external_id: str | None = None
    language: str
    verification_grade: int


@router.post("", response_model=UserOut, status_code=201,
             responses={200: {"description": "An existing user (same external id or e-mail)"}})
async def create_user(body: UserIn, request: Request, key: App) -> JSONResponse:
    user, created = await users.create_or_fetch(
        runtime(request), app_actor(request, key),
        email=body.email, external_id=body.external_id, language=body.language,
        password=body.password, pin=body.pin)
    out = UserOut(id=user.id, email=user.email, external_id=user.external_id,
                  language=user.language, verification_grade=user.verification_grade)
    return JSONResponse(out.model_dump(mode="json"), status_code=201 if created else 200)


@router.get("/{user_id}/methods", response_model=MethodsOut, response_model_exclude_none=True)
async def user_methods(user_id: str, request: Request, key: App) -> MethodsOut:
    views = await methods.list_views(runtime(request), user_id)
    return MethodsOut(methods=[MethodOut.of(v) for v in views])


@router.post("/{user_id}/operations", status_code=201, response_model=OperationOut,
             response_model_exclude_none=True)
async def create_operation(user_id: str, body: OperationIn, request: Request, key: App
                           ) -> OperationOut:
    """Create an operation the user then confirms (StepUp's pages or /me/operations)."""
    await users.get(runtime(request), user_id)
    v = await operations.create(runtime(request), app_actor(request, key), user_id, body.type,
                                body.details, created_by=f"app:{key.id}")
    return OperationOut.of(v)


@router.get("/{user_id}/operations/{operation_id}", response_model=OperationOut,
            response_model_exclude_none=True)
async def read_operation(user_id: str, operation_id: str, request: Request, key: App
                         ) -> OperationOut:
    return OperationOut.of(await operations.get(runtime(request), user_id, operation_id))
