"""``POST /hooks/delivery/{provider}``: the one route every provider's delivery reports
come to. Only a configured provider that reports answers; the others are not found."""

from __future__ import annotations

import httpx
import pytest

from tests.api.helpers import problem
from tests.api.oob_support import Stack


@pytest.mark.parametrize("provider", ["twilio", "outbox", "smtp", "nobody"])
async def test_a_provider_that_does_not_report_has_no_hook(stack: Stack, provider: str
                                                           ) -> None:
    r = await stack.client.post(f"/hooks/delivery/{provider}", content=b'{"status": "read"}',
                                headers={"Content-Type": "application/json"})
    problem(r, 404, "not_found")


async def test_the_hook_is_not_part_of_the_api_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [p for p in paths if p.startswith("/hooks")]
