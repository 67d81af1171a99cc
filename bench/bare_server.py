#!/usr/bin/env python3
"""The framework's own cost: a bare FastAPI route shaped like StepUp's verify.

``POST /api/v1/users/{id}/verify`` with a pydantic body (``method``, ``code``) answers
``{"valid": true}`` through FastAPI on uvicorn (uvloop, httptools, one worker, no access
log), doing no other work. What ``totp_load.py`` measures against it is the ceiling
for any FastAPI service on this machine; ``bench/null_server.py`` is the ceiling for
any server at all.

    python bench/bare_server.py 8798 &
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel


class VerifyIn(BaseModel):
    method: str
    code: str


class VerifyOut(BaseModel):
    valid: bool


app = FastAPI()


@app.post("/api/v1/users/{user_id}/verify", response_model=VerifyOut)
async def verify(user_id: str, body: VerifyIn) -> VerifyOut:
    return VerifyOut(valid=bool(user_id and body.code))


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
                access_log=False, loop="uvloop", http="httptools")
