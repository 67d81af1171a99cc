"""A real local HTTP server that answers like the Twilio and Meta APIs.

Only the edge of the world we do not own is imitated: status codes and JSON bodies as
the providers document them. Tests script the next answers and read what was received.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from tests.support.smtp import self_signed


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        value = self.headers.get("authorization", "")
        if not value.lower().startswith("basic "):
            return None
        user, _, pw = base64.b64decode(value[6:]).decode().partition(":")
        return user, pw


@dataclass
class Scripted:
    status: int
    body: dict[str, Any]
    delay: float = 0.0


@dataclass
class ProviderServer:
    """Twilio: POST /2010-04-01/Accounts/{sid}/Messages.json; Meta: POST /{id}/messages."""

    received: list[Received] = field(default_factory=list)
    script: list[Scripted] = field(default_factory=list)
    # Over HTTPS with a self-signed certificate for 127.0.0.1 (its PEM: ``cert_pem``).
    tls: bool = False
    cert_pem: bytes | None = None
    _server: ThreadingHTTPServer | None = None

    def start(self) -> ProviderServer:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                outer.received.append(Received(
                    "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                answer = outer.script.pop(0) if outer.script else outer.default(self.path)
                if answer.delay:
                    time.sleep(answer.delay)
                raw = json.dumps(answer.body).encode()
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if self.tls:
            certificate = self_signed()
            self.cert_pem = certificate.pem
            self._server.socket = certificate.server_context().wrap_socket(
                self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    def default(self, path: str) -> Scripted:
        if path.endswith("/Messages.json"):
            n = len(self.received)
            return Scripted(201, {"sid": f"SM{n:032d}", "status": "queued"})
        return Scripted(200, {"messaging_product": "whatsapp",
                              "contacts": [{"input": "x", "wa_id": "x"}],
                              "messages": [{"id": f"wamid.{len(self.received)}"}]})

    # Error bodies as the providers document them.
    @staticmethod
    def twilio_error(status: int, code: int, message: str) -> Scripted:
        return Scripted(status, {"code": code, "message": message, "status": status,
                                 "more_info": f"https://www.twilio.com/docs/errors/{code}"})

    @staticmethod
    def meta_error(status: int, code: int, message: str) -> Scripted:
        return Scripted(status, {"error": {"message": message, "type": "OAuthException",
                                           "code": code, "fbtrace_id": "AbCdEf"}})
