"""A worker's connections have Nagle's algorithm off, as uvicorn's own sockets do.

``stepup serve --workers N`` binds each worker's socket itself (web/workers.py). asyncio's
event loop turns TCP_NODELAY on only for sockets that say they are TCP; a socket made
with protocol 0 did not, so every answer (uvicorn writes the headers, then the body)
waited for the client's delayed ACK: PostgreSQL's two workers answered a verification in
~52 ms instead of ~5 at one client."""

from __future__ import annotations

import asyncio
import socket

from stepup.web.workers import listening_socket


async def test_a_connection_accepted_by_a_worker_sends_without_delay() -> None:
    sock = listening_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            conn = transport.get_extra_info("socket")
            accepted.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(accepted, 5) != 0
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
