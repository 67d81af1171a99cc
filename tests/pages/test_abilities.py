"""The pages of an ability (several credentials, sets of codes) serve any method that
declares it, and only those; the web layer never names a method to find them."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

import stepup
from stepup.methods import registry
from stepup.methods.base import HoldsSeveralCredentials, IssuesCodeSets
from tests.pages.helpers import get, sign_up

WEB = Path(stepup.__file__).resolve().parent / "web"
# `from stepup.methods import webauthn`, `import stepup.methods.sms`, `from
# stepup.methods.totp import …`: a method's own package, named.
NAMES_A_METHOD = re.compile(
    rf"stepup\.methods\.({'|'.join(registry.types())})\b"
    rf"|from stepup\.methods import .*\b({'|'.join(registry.types())})\b")


def test_no_module_of_the_web_layer_imports_a_method_by_name() -> None:
    found = [f"{p.relative_to(WEB)}:{n}: {line.strip()}"
             for p in sorted(WEB.rglob("*.py"))
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if NAMES_A_METHOD.search(line)]
    assert not found, "\n".join(found)


def _without(ability: type) -> list[str]:
    return [m.type for m in registry.available() if not isinstance(m, ability)]


@pytest.mark.parametrize("url", [
    *(f"/settings/methods/{t}/add" for t in _without(HoldsSeveralCredentials)),
    *(f"/settings/methods/{t}/passkeys/x/rename" for t in _without(HoldsSeveralCredentials)),
    *(f"/settings/methods/{t}/passkeys/x/remove" for t in _without(HoldsSeveralCredentials)),
    *(f"/settings/methods/{t}/regenerate" for t in _without(IssuesCodeSets)),
    "/settings/methods/nosuch/add", "/settings/methods/nosuch/regenerate",
])
async def test_a_method_without_the_ability_has_no_such_page(client: httpx.AsyncClient,
                                                             url: str) -> None:
    await sign_up(client)
    assert "There is no such page." in await get(client, url, status=404)


async def test_signed_out_the_pages_of_an_ability_lead_to_login(
        client: httpx.AsyncClient) -> None:
    for t in registry.types():
        r = await client.get(f"/settings/methods/{t}/add")
        assert (r.status_code, r.headers["location"]) == (303, "/login")
