"""Callbacks from providers: their delivery reports (``POST /hooks/delivery/{provider}``).

Not part of the API a portal calls (not in the OpenAPI document): the provider posts
here, and the provider's own signature authenticates it (services/delivery_reports.py).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from stepup.services import delivery_reports
from stepup.web.deps import runtime

router = APIRouter(prefix="/hooks", include_in_schema=False)


@router.post("/delivery/{provider}")
async def delivery_report(provider: str, request: Request) -> JSONResponse:
    await delivery_reports.receive(runtime(request), provider[:40], request.headers,
                                   await request.body())
    return JSONResponse({"ok": True})
