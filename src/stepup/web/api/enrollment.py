"""How a method's typed enrollment results read in the API, in one place.

A method hands back typed values (``methods.base.EnrollmentStart`` and its ``body``); it
knows nothing of HTTP. Here the result chooses the status — enabled at once: 201; a code
on its way: 202; else the user confirms with what the body holds: 200 — and every body
is serialised the same way, its fields being its JSON. Secrets travel in these answers,
so none is ever cached.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi.responses import JSONResponse

from stepup.methods.base import EnrollmentBody, EnrollmentStart

NO_STORE = {"Cache-Control": "no-store"}


def enrollment_status(start: EnrollmentStart) -> int:
    if start.enabled:
        return 201
    return 202 if start.challenge is not None else 200


def body_json(body: EnrollmentBody) -> dict[str, Any]:
    return dataclasses.asdict(body)


def enrollment_answer(start: EnrollmentStart) -> JSONResponse:
    """The answer to ``…/enrollment``: what the user needs to finish enrolling."""
    return JSONResponse(body_json(start.body), status_code=enrollment_status(start),
                        headers=NO_STORE)


def body_answer(body: EnrollmentBody) -> JSONResponse:
    """A typed body with 200 (one more passkey: the browser's options)."""
    return JSONResponse(body_json(body), headers=NO_STORE)
