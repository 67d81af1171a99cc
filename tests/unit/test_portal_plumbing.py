"""The portal's plumbing is written once: every page route answers a PageAnswer, and no
handler repeats the preamble (who is signed in, the CSRF check) that plumbing.py
declares as dependencies."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

import stepup
from stepup.config import Settings
from stepup.web.app import create_app
from stepup.web.portal.plumbing import PortalRoute

WEB = Path(stepup.__file__).resolve().parent / "web"
PAGES = ("stepup.web.portal.", "stepup.web.admin.")
# Where the preamble lives; everywhere else a handler declares it in its signature.
PLUMBING = {"portal/plumbing.py", "portal/render.py"}
PREAMBLE = re.compile(r"\b(logged_in|form_data|check_csrf)\(")


def _routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's included router
        if included is not None:
            yield from _routes(included.routes)
        else:
            yield route


def test_every_page_route_answers_a_page_answer(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db",
                              data_dir=tmp_path), migrate_on_start=False)
    pages = [r for r in _routes(app.routes) if isinstance(r, APIRoute)
             and r.endpoint.__module__.startswith(PAGES)]
    assert len(pages) > 40
    plain = [r.path for r in pages if not isinstance(r, PortalRoute)]
    assert not plain, plain


def test_no_handler_repeats_the_preamble() -> None:
    found = [f"{p.relative_to(WEB)}:{n}: {line.strip()}"
             for folder in ("portal", "admin") for p in sorted((WEB / folder).glob("*.py"))
             if p.relative_to(WEB).as_posix() not in PLUMBING
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if PREAMBLE.search(line)]
    assert not found, "\n".join(found)
