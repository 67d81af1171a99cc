"""``/me/devices``: devices remembered at login ("Remember this device"), and revoking them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel

from stepup.domain.errors import NotFound
from stepup.services import devices
from stepup.web.deps import Caller, actor, caller, runtime

router = APIRouter(prefix="/me/devices", tags=["login"])
Who = Annotated[Caller, Depends(caller)]


class DeviceOut(BaseModel):
    id: str
    user_agent: str | None = None
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None = None


class DevicesOut(BaseModel):
    devices: list[DeviceOut]


@router.get("", response_model=DevicesOut)
async def list_devices(request: Request, who: Who) -> DevicesOut:
    rows = await devices.list_devices(runtime(request), who.user.id)
    return DevicesOut(devices=[DeviceOut(id=d.id, user_agent=d.user_agent,
                                         created_at=d.created_at, expires_at=d.expires_at,
                                         last_used_at=d.last_used_at) for d in rows])


@router.delete("", status_code=204)
async def forget_all(request: Request, who: Who) -> Response:
    await devices.forget(runtime(request), actor(request), who.user.id, None)
    return Response(status_code=204)


@router.delete("/{device_id}", status_code=204)
async def forget_one(device_id: str, request: Request, who: Who) -> Response:
    if not await devices.forget(runtime(request), actor(request), who.user.id, device_id):
        raise NotFound("No such remembered device.")
    return Response(status_code=204)
