"""A portal's webhooks (integration API, app keys): send a test event, list the recent
deliveries with their state, send one again. A key sees only its own app's deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from stepup.domain.errors import ValidationFailed
from stepup.services import webhooks
from stepup.store import webhooks as store
from stepup.store.models import ApiKey, WebhookDelivery
from stepup.web.api.user_lifecycle import decode_cursor, encode_cursor
from stepup.web.deps import app_actor, app_key, runtime

router = APIRouter(prefix="/webhooks", tags=["integration"])
# Deliveries are about the app's users: the ``users`` scope reads and resends them.
HooksKey = Annotated[ApiKey, Depends(app_key("users"))]
CURSOR_TAG = "w"


class TestOut(BaseModel):
    id: str = Field(description="The event id (`StepUp-Event-Id`), also the delivery's id")
    event: str = Field(examples=["webhook.test"])
    url: str = Field(description="Where it goes: the app's webhook URL, else the "
                                 "operator's global one")


class DeliveryOut(BaseModel):
    id: str = Field(description="The event id (`StepUp-Event-Id`)")
    event: str = Field(examples=["operation.confirmed"])
    url: str
    created_at: datetime
    status: Literal["pending", "delivered", "failed"] = Field(
        description="pending (due, being sent or waiting to retry), delivered (the "
                    "receiver answered 2xx) or failed (given up after the last attempt)")
    attempts: int
    last_error: str | None = Field(default=None, examples=["HTTP 500"])
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None

    @classmethod
    def of(cls, row: WebhookDelivery) -> DeliveryOut:
        status = store.status_of(row)
        return cls(id=row.id, event=row.event, url=row.url, created_at=row.created_at,
                   status=status,
                   attempts=row.attempts, last_error=row.last_error,
                   next_attempt_at=row.next_attempt_at if status == "pending" else None,
                   delivered_at=row.delivered_at)


class DeliveriesOut(BaseModel):
    deliveries: list[DeliveryOut]
    next_cursor: str | None = Field(default=None,
                                    description="Pass as `cursor` for the older ones")


def _cursor(row: WebhookDelivery) -> str:
    return encode_cursor(CURSOR_TAG, f"{row.created_at.isoformat()}|{row.id}")


def _before(cursor: str | None) -> tuple[datetime, str] | None:
    if cursor is None:
        return None
    at, _sep, last_id = decode_cursor(CURSOR_TAG, cursor).partition("|")
    try:
        parsed = datetime.fromisoformat(at)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None or not last_id:
        raise ValidationFailed("The cursor is not valid: pass next_cursor as it came.",
                               field="cursor")
    return parsed, last_id


@router.post("/test", status_code=202, response_model=TestOut,
             responses={409: {"description": "webhook_not_configured: neither the app nor "
                                             "the operator set a webhook URL"}})
async def send_test(request: Request, key: HooksKey) -> TestOut:
    """Queue a signed `webhook.test` event to the app's webhook URL; watch it arrive, or
    its state under `GET /webhooks/deliveries`."""
    row = await webhooks.send_test(runtime(request), app_actor(request, key), key.app_id or "")
    return TestOut(id=row.id, event=row.event, url=row.url)


@router.get("/deliveries", response_model=DeliveriesOut, response_model_exclude_none=True,
            responses={422: {"description": "validation_error: a limit beyond 1-100, an "
                                            "unknown status or a cursor not from this list"}})
async def list_deliveries(
        request: Request, key: HooksKey,
        limit: Annotated[int, Query(ge=1, le=webhooks.MAX_PAGE,
                                    description="How many, 1-100")] = 20,
        cursor: Annotated[str | None, Query(max_length=300,
                                            description="`next_cursor` of the page "
                                                        "before")] = None,
        status: Annotated[Literal["pending", "delivered", "failed"] | None,
                          Query(description="Only deliveries in this state")] = None,
) -> DeliveriesOut:
    """The app's webhook deliveries, newest first."""
    rows, more = await webhooks.deliveries(runtime(request), key.app_id or "", status=status,
                                           before=_before(cursor), limit=limit)
    return DeliveriesOut(deliveries=[DeliveryOut.of(r) for r in rows],
                         next_cursor=_cursor(rows[-1]) if more and rows else None)


@router.post("/deliveries/{delivery_id}/redeliver", status_code=202,
             response_model=DeliveryOut, response_model_exclude_none=True,
             responses={404: {"description": "not_found: no such delivery of this app"}})
async def redeliver(delivery_id: str, request: Request, key: HooksKey) -> DeliveryOut:
    """Send a delivery again (typically a failed one): it becomes pending, due at once,
    with its attempts counted afresh, and goes to the app's current webhook URL with the
    same event id."""
    row = await webhooks.redeliver(runtime(request), app_actor(request, key),
                                   key.app_id or "", delivery_id)
    return DeliveryOut.of(row)
