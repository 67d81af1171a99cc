"""Request and answer bodies of the JSON API (API.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from stepup.methods.base import ChallengeSent, MethodView

# A security code, a backup code, or a passkey's answer (the PublicKeyCredential as JSON).
CODE_MAX = 8192


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=1024)


class AccountIn(Body):
    email: str = Field(max_length=320, examples=["jane@example.com"])
    password: str = Field(max_length=1024, examples=["correct horse battery staple"])
    pin: str = Field(max_length=32, examples=["417293"])
    language: str = Field(default="en", max_length=8, examples=["en"])


class AccountOut(BaseModel):
    id: str
    email: str


class Identities(BaseModel):
    email_verified: bool
    phone_verified: bool


class MeOut(BaseModel):
    id: str
    email: str
    language: str
    verification_grade: int
    identities: Identities


class LoginIn(Body):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)
    remember_device_token: str | None = Field(default=None, max_length=200)


class LoginMethod(BaseModel):
    type: str
    destination: str | None = None


class LoginOut(BaseModel):
    status: str
    session_token: str | None = None
    expires_at: datetime | None = None
    login_token: str | None = None
    methods: list[LoginMethod] | None = None
    remember_device_token: str | None = None
    backup_codes_remaining: int | None = None
    # True when a backup code was used and few are left: time to make a new set.
    backup_codes_low: bool | None = None


class LoginChallengeIn(Body):
    login_token: str = Field(max_length=200)
    method: str = Field(max_length=20)


class LoginVerifyIn(Body):
    login_token: str = Field(max_length=200)
    method: str = Field(max_length=20)
    code: str = Field(max_length=CODE_MAX)
    remember_device: bool = False


class ChallengeOut(BaseModel):
    method: str | None = None
    sent_to: str
    expires_in: int
    resend_in: int
    # Passkeys: the options for navigator.credentials.get({publicKey: options}).
    options: dict[str, Any] | None = None

    @classmethod
    def of(cls, sent: ChallengeSent, method: str | None = None) -> ChallengeOut:
        return cls(method=method, sent_to=sent.sent_to, expires_in=sent.expires_in,
                   resend_in=sent.resend_in, options=sent.options)


class PasskeyOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None = None


class MethodOut(BaseModel):
    type: str
    enabled: bool
    available: bool = True
    pending: bool = False
    protects: dict[str, bool]
    destination: str | None = None
    remaining: int | None = None
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    passkeys: list[PasskeyOut] | None = None

    @classmethod
    def of(cls, v: MethodView) -> MethodOut:
        return cls(type=v.type, enabled=v.enabled, available=v.available, pending=v.pending,
                   protects=v.protects, destination=v.destination, remaining=v.remaining,
                   created_at=v.created_at, last_used_at=v.last_used_at,
                   passkeys=None if v.passkeys is None
                   else [PasskeyOut(**p) for p in v.passkeys])


class MethodsOut(BaseModel):
    methods: list[MethodOut]


PROTECTS_CHOSEN = ("What the method protects once enabled, confirmed by this call's own "
                   "proof (no second code): the operations named are switched on or off, "
                   "the others keep the default (the first method protects login, any other "
                   "nothing). Absent: the default.")


class EnrollmentIn(Body):
    pin: str = Field(max_length=32)
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=320)
    protects: dict[str, bool] | None = Field(
        default=None, examples=[{"login": True, "withdrawal": False}],
        description="Only for a method enabled at once (backup_codes). " + PROTECTS_CHOSEN)


class EnrollmentConfirmIn(Body):
    code: str = Field(max_length=CODE_MAX)
    protects: dict[str, bool] | None = Field(
        default=None, examples=[{"login": True, "withdrawal": True}],
        description=PROTECTS_CHOSEN)


class PasskeyIn(Body):
    code: str = Field(max_length=CODE_MAX, description="The new PublicKeyCredential, as JSON")
    name: str | None = Field(default=None, max_length=200,
                             description="How the user calls it (1-60 characters)")


class NameIn(Body):
    name: str = Field(max_length=200, examples=["YubiKey 5"])


class PinIn(Body):
    pin: str = Field(max_length=32)


class CodeIn(Body):
    code: str = Field(max_length=CODE_MAX)


class SwitchIn(Body):
    protects: dict[str, bool]
    code: str = Field(max_length=CODE_MAX)


class CodesOut(BaseModel):
    codes: list[str]


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_none=True)
