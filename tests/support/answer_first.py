"""An httpx transport that hands the test the answer as soon as the app has sent it, as
a client of a real server gets it; what the app does after that (Starlette's background
tasks) goes on meanwhile. httpx's own ASGITransport returns only once the app is done, so
with it a test cannot see which work an answer waited for."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from stepup.services.runtime import Runtime
from stepup.web.app import create_app
from tests.support.instances import CLIENT


class AnswerFirst(httpx.AsyncBaseTransport):
    """Each request runs the app in a task of its own; the response returns when its last
    part is sent. ``aclose`` waits for the tasks (the deferred work) to end."""

    def __init__(self, app: Any, client: tuple[str, int] = CLIENT) -> None:
        self.app = app
        self.client = client
        self.running: set[asyncio.Task[None]] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "scheme": request.url.scheme, "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port), "client": self.client,
            "root_path": "",
        }
        sent = asyncio.Event()
        answer: dict[str, Any] = {"parts": []}
        read = False

        async def receive() -> dict[str, Any]:
            nonlocal read
            if not read:
                read = True
                return {"type": "http.request", "body": body, "more_body": False}
            await sent.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"], answer["headers"] = message["status"], message["headers"]
            elif message["type"] == "http.response.body":
                answer["parts"].append(message.get("body", b""))
                if not message.get("more_body", False):
                    sent.set()

        task = asyncio.ensure_future(self.app(scope, receive, send))
        self.running.add(task)
        task.add_done_callback(self.running.discard)
        waiting = asyncio.ensure_future(sent.wait())
        await asyncio.wait([task, waiting], return_when=asyncio.FIRST_COMPLETED)
        if not sent.is_set():
            waiting.cancel()
            task.result()  # the app's error, if it failed
            raise AssertionError("the app ended without a complete answer")
        return httpx.Response(answer["status"], headers=answer["headers"],
                              content=b"".join(answer["parts"]), request=request)

    async def aclose(self) -> None:
        if self.running:
            await asyncio.wait_for(asyncio.gather(*self.running), 30)


@contextlib.asynccontextmanager
async def answer_first_client(runtime: Runtime, base_url: str = "http://testserver"
                              ) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app on ``runtime`` through :class:`AnswerFirst`; on leaving, the
    deferred work of its requests has ended."""
    app = create_app(runtime.settings, runtime=runtime, migrate_on_start=False)
    async with httpx.AsyncClient(transport=AnswerFirst(app), base_url=base_url) as client:
        yield client
