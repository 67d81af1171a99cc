"""The integration API's user lifecycle (API keys of role ``app``): read, look up, list,
change, delete and unlock a user, regenerate backup codes on the user's behalf, and read
the user's security events.

A ``{user_id}`` of another app is answered 404 by the key dependency; the lookups and the
listing carry no user id, so they pass the key's app down themselves.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator

from stepup.domain.errors import ValidationFailed
from stepup.domain.policy import ACCOUNT_SCOPE, PIN_SCOPE
from stepup.methods import registry
from stepup.services import lifecycle, methods, support
from stepup.store.models import ApiKey
from stepup.web.api.events import EventOut
from stepup.web.api.schemas import CODE_MAX, Body, CodesOut, Identities
from stepup.web.deps import app_actor, app_key, runtime

router = APIRouter(prefix="/users", tags=["integration"])
UsersKey = Annotated[ApiKey, Depends(app_key("users"))]
MethodsKey = Annotated[ApiKey, Depends(app_key("methods"))]
Limit = Annotated[int, Query(ge=1, le=200, description="How many, 1-200")]
Cursor = Annotated[str | None, Query(max_length=200,
                                     description="`next_cursor` of the page before")]


# --- bodies and answers ---------------------------------------------------------------


class MethodSummaryOut(BaseModel):
    type: str
    enabled: bool = True
    protects: dict[str, bool]


class LocksOut(BaseModel):
    """Only the locks that hold now, each with the instant it ends (UTC)."""

    account: datetime | None = None
    pin: datetime | None = None
    methods: dict[str, datetime] = Field(default_factory=dict)


class UserDetailOut(BaseModel):
    id: str
    email: str
    external_id: str | None
    language: str
    created_at: datetime
    verification_grade: int
    identities: Identities
    methods: list[MethodSummaryOut] = Field(description="The enabled methods")
    locks: LocksOut

    @classmethod
    def of(cls, r: lifecycle.UserRecord) -> UserDetailOut:
        u = r.user
        return cls(id=u.id, email=u.email, external_id=u.external_id, language=u.language,
                   created_at=u.created_at, verification_grade=u.verification_grade,
                   identities=Identities(email_verified=u.email_verified,
                                         phone_verified=u.phone_verified),
                   methods=[MethodSummaryOut(type=m.type, protects=m.protects)
                            for m in r.methods],
                   locks=LocksOut(account=r.locks.account, pin=r.locks.pin,
                                  methods=r.locks.methods))


def user_json(r: lifecycle.UserRecord) -> dict[str, Any]:
    out = UserDetailOut.of(r).model_dump(mode="json")
    # A lock that does not hold is left out rather than null: `"pin" in locks` is the test.
    out["locks"] = {k: v for k, v in out["locks"].items() if v is not None}
    return out


class UsersOut(BaseModel):
    users: list[UserDetailOut]
    next_cursor: str | None = None


class UserPatchIn(Body):
    """Only the fields sent change; ``external_id: null`` removes the external id."""

    email: str | None = Field(default=None, max_length=320,
                              examples=["jane.doe@example.com"])
    external_id: str | None = Field(default=None, min_length=1, max_length=200)
    language: str | None = Field(default=None, max_length=8, examples=["ru"])
    pin: str | None = Field(default=None, max_length=32, description="A new 6-digit PIN")
    email_verified: bool | None = Field(
        default=None, description="true: your portal verified the (new) e-mail address "
        "itself and vouches for it; false: it is not verified any more")

    @field_validator("email", "language", "pin", "email_verified")
    @classmethod
    def _not_null(cls, value: str | None) -> str | None:
        # Run only for fields sent: null would mean "remove", which these cannot be.
        if value is None:
            raise ValueError("may be left out, but not null")
        return value


class UnlockIn(Body):
    what: str = Field(default="all", max_length=20,
                      description="'all', 'account', 'pin', 'password' (the login "
                                  "throttle of users of the app portal) or a method type")


class UnlockOut(BaseModel):
    cleared: list[str]


class RegenerateIn(Body):
    code: str | None = Field(default=None, max_length=CODE_MAX,
                             description="Optional: a current backup code; without it "
                                         "the portal vouches for the user")


class EventsPageOut(BaseModel):
    events: list[EventOut]
    next_cursor: str | None = None


# --- cursors: opaque to the portal, tagged so one list's cursor fails on another -------

_USER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def encode_cursor(tag: str, value: str) -> str:
    return base64.urlsafe_b64encode(f"{tag}:{value}".encode()).rstrip(b"=").decode()


def decode_cursor(tag: str, cursor: str) -> str:
    bad = ValidationFailed("The cursor is not valid: pass next_cursor as it came.",
                           field="cursor")
    if not re.fullmatch(r"[A-Za-z0-9_-]+", cursor):
        raise bad
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_",
                               validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad from None
    found, _sep, value = raw.partition(":")
    if found != tag or not value:
        raise bad
    return value


def user_after(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    value = decode_cursor("u", cursor)
    if not _USER_ID.match(value):
        raise ValidationFailed("The cursor is not valid: pass next_cursor as it came.",
                               field="cursor")
    return value


def event_before(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    value = decode_cursor("e", cursor)
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) < 2 ** 63:
        raise ValidationFailed("The cursor is not valid: pass next_cursor as it came.",
                               field="cursor")
    return int(value)


# --- routes -------------------------------------------------------------------------------


@router.get("", response_model=UsersOut)
async def list_users(request: Request, key: UsersKey, limit: Limit = 50, cursor: Cursor = None,
                     email: Annotated[str | None, Query(
                         max_length=320, description="Exact e-mail (any case)")] = None,
                     external_id: Annotated[str | None, Query(
                         max_length=200, description="Exact external id")] = None,
                     ) -> JSONResponse:
    """With ``email`` or ``external_id``: that user of this app, if any (none or one).
    Without: the app's users a page at a time, in a stable order; ``next_cursor`` is
    null on the last page."""
    rt = runtime(request)
    assert key.app_id is not None  # an app key always has its app
    if email is not None or external_id is not None:
        found = await lifecycle.find(rt, key.app_id, email=email, external_id=external_id)
        return JSONResponse({"users": [user_json(r) for r in found], "next_cursor": None})
    records, after = await lifecycle.page(rt, key.app_id, after=user_after(cursor),
                                          limit=limit)
    return JSONResponse({"users": [user_json(r) for r in records],
                         "next_cursor": encode_cursor("u", after) if after else None})


@router.get("/{user_id}", response_model=UserDetailOut)
async def read_user(user_id: str, request: Request, key: UsersKey) -> JSONResponse:
    """The user: record, identities, enabled methods and the locks that hold now."""
    return JSONResponse(user_json(await lifecycle.get(runtime(request), user_id)))


@router.patch("/{user_id}", response_model=UserDetailOut,
              responses={409: {"description": "email_taken, user_conflict"}})
async def update_user(user_id: str, body: UserPatchIn, request: Request, key: UsersKey
                      ) -> JSONResponse:
    """Change the e-mail, external id, language or PIN. The user is told of a new e-mail
    (at the old and the new address) and of a new PIN; a new e-mail is not verified."""
    fields = body.model_dump(exclude_unset=True)
    record = await lifecycle.update(runtime(request), app_actor(request, key), user_id,
                                    **fields)
    return JSONResponse(user_json(record))


@router.delete("/{user_id}", status_code=204, response_class=Response)
async def delete_user(user_id: str, request: Request, key: UsersKey) -> Response:
    """Erase the user with their methods, secrets, destinations and sessions; the audit
    log keeps the user's random id only."""
    await lifecycle.delete(runtime(request), app_actor(request, key), user_id)
    return Response(status_code=204)


@router.post("/{user_id}/unlock", response_model=UnlockOut)
async def unlock_user(user_id: str, request: Request, key: UsersKey,
                      body: UnlockIn | None = None) -> UnlockOut:
    """Lift the account lock, the PIN lock or a method's lock (``all`` by default)."""
    what = (body or UnlockIn()).what
    if (what not in ("all", ACCOUNT_SCOPE, PIN_SCOPE, support.LOGIN_THROTTLE)
            and not registry.is_available(what)):
        raise ValidationFailed("what must be 'all', 'account', 'pin', 'password' or a "
                               "method type.",
                               field="what")
    cleared = await support.unlock_user(runtime(request), app_actor(request, key), user_id,
                                        what)
    return UnlockOut(cleared=cleared)


@router.post("/{user_id}/methods/backup_codes/regenerate", status_code=201,
             response_model=CodesOut)
async def regenerate_backup_codes(user_id: str, request: Request, key: MethodsKey,
                                  body: RegenerateIn | None = None) -> JSONResponse:
    """A new set of backup codes on the user's behalf (shown once); the old ones stop
    working. A ``code`` given must be a current backup code."""
    codes = await methods.regenerate_backup_codes(
        runtime(request), app_actor(request, key), user_id, (body or RegenerateIn()).code,
        on_behalf=True)
    return JSONResponse({"codes": codes}, status_code=201,
                        headers={"Cache-Control": "no-store"})


@router.get("/{user_id}/events", response_model=EventsPageOut)
async def user_events(user_id: str, request: Request, key: UsersKey, limit: Limit = 50,
                      cursor: Cursor = None) -> EventsPageOut:
    """The user's security events, newest first, with the IP address and device each
    came from (as the portal forwarded them)."""
    rows, before = await lifecycle.events(runtime(request), user_id, limit=limit,
                                          before_id=event_before(cursor))
    return EventsPageOut(events=[EventOut.of(r) for r in rows],
                         next_cursor=encode_cursor("e", str(before)) if before else None)
