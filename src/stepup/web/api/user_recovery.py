"""Lock-out recovery for a portal's users (integration API, app keys of scope ``users``).

A user of a portal has no StepUp password, so the hosted recovery page (which needs one)
is closed to them. After its own identity check the portal files the request for them;
it is the same request as the hosted page's: support's identity checks, a second pair of
eyes, the waiting period, and notices with a cancel link to every verified contact.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from stepup.domain.errors import ValidationFailed
from stepup.services import recovery_requests
from stepup.services.recovery_requests import (
    BEST_TIME_MAX,
    CONTACT_CHANNELS,
    DESCRIPTION_MAX,
    PHONE_MAX,
    RequestState,
)
from stepup.store.models import ApiKey
from stepup.web.api.schemas import Body
from stepup.web.deps import app_actor, app_key, runtime

router = APIRouter(prefix="/users", tags=["integration"])
UsersKey = Annotated[ApiKey, Depends(app_key("users"))]


class ContactIn(Body):
    # Checked by the service, as on the hosted form, so a problem names the field.
    channel: str = Field(max_length=20, examples=["phone"],
                         json_schema_extra={"enum": list(CONTACT_CHANNELS)},
                         description="How support should contact the user")
    phone: str | None = Field(default=None, max_length=100, examples=["+44 20 7946 0018"],
                              description=f"The number support calls back (any line, "
                                          f"at most {PHONE_MAX} characters); required "
                                          f"with channel 'phone'")
    best_time: str | None = Field(default=None, max_length=BEST_TIME_MAX,
                                  examples=["weekdays after 6 pm"])


class RecoveryIn(Body):
    description: str = Field(min_length=1, max_length=DESCRIPTION_MAX,
                             examples=["Lost my phone with the authenticator app; no "
                                       "backup codes."],
                             description="What happened, in the user's words")
    contact: ContactIn


class RecoveryOut(BaseModel):
    """The request as its user may see it: never staff notes or identity checks."""

    id: str
    status: str = Field(examples=["requested"],
                        description="requested, checked, approved (in the waiting "
                                    "period), completed, rejected or cancelled")
    created_at: datetime
    checked_at: datetime | None = None
    decided_at: datetime | None = Field(default=None,
                                        description="When a supervisor approved it or "
                                                    "support rejected it")
    effective_at: datetime | None = Field(default=None,
                                          description="When an approved reset takes "
                                                      "effect, unless cancelled first")
    completed_at: datetime | None = None
    cancelled_at: datetime | None = None

    @classmethod
    def of(cls, v: RequestState) -> RecoveryOut:
        return cls(id=v.id, status=v.status, created_at=v.created_at,
                   checked_at=v.checked_at, decided_at=v.decided_at,
                   effective_at=v.effective_at, completed_at=v.completed_at,
                   cancelled_at=v.cancelled_at)


@router.post("/{user_id}/recovery", status_code=201, response_model=RecoveryOut,
             response_model_exclude_none=True,
             responses={404: {"description": "not_found: no such user of this app"},
                        409: {"description": "recovery_already_open: one open request "
                                             "per user"},
                        422: {"description": "validation_error, with the field"}})
async def file_recovery(user_id: str, body: RecoveryIn, request: Request, key: UsersKey
                        ) -> RecoveryOut:
    """File a lock-out recovery request for the user, after the portal's own identity
    check: support will check the user's identity again and a supervisor must approve;
    the reset then waits the waiting period, and every verified contact of the user is
    told at once with a link that cancels the request."""
    try:
        row = await recovery_requests.file_for_user(
            runtime(request), app_actor(request, key), user_id, body.description,
            body.contact.model_dump())
    except ValidationFailed as err:
        if err.field in ContactIn.model_fields:  # as the body nests it
            err.field = f"contact.{err.field}"
        raise
    return RecoveryOut.of(RequestState.of(row))


@router.get("/{user_id}/recovery", response_model=RecoveryOut,
            response_model_exclude_none=True,
            responses={404: {"description": "not_found: no such user of this app, or the "
                                            "user never filed a request"}})
async def read_recovery(user_id: str, request: Request, key: UsersKey) -> RecoveryOut:
    """The user's latest recovery request and where it stands."""
    return RecoveryOut.of(await recovery_requests.latest_for_user(runtime(request), user_id,
                                                                  key.app_id))
