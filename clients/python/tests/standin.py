"""A small local HTTP server that stands in for StepUp (or for a portal's webhook
receiver): it answers from a script and records every request it got."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DROP = "drop"  # a scripted "answer": close the connection without answering


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def problem(code: str, status: int, retryable: bool, **extra: Any) -> Answer:
    return Answer(status, {"type": f"https://stepup.dev/problems/{code}", "title": code,
                           "status": status, "detail": f"{code} detail", "code": code,
                           "retryable": retryable, **extra},
                  {"Content-Type": "application/problem+json"})


class StandIn:
    """``answers`` are used in order; the last one repeats."""

    def __init__(self, *answers: Answer | str) -> None:
        self.answers = list(answers) or [Answer(204)]
        self.seen: list[Seen] = []
        self._lock = threading.Lock()

    def _next(self, seen: Seen) -> Answer | str:
        with self._lock:
            self.seen.append(seen)
            return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    @contextmanager
    def running(self) -> Iterator[str]:
        """Serve on a free loopback port; yields the base URL."""
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, self.path, dict(self.headers.items()),
                            self.rfile.read(length))
                answer = standin._next(seen)
                if answer == DROP:
                    self.close_connection = True
                    self.connection.close()
                    return
                assert isinstance(answer, Answer)
                body = b"" if answer.body is None else json.dumps(answer.body).encode()
                self.send_response(answer.status)
                headers = {"Content-Type": "application/json", **answer.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_DELETE = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{httpd.server_address[1]}"
        finally:
            httpd.shutdown()
            httpd.server_close()
            thread.join(timeout=5)
