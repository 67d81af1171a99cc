#!/usr/bin/env python3
"""The fastest possible "verify" endpoint: an asyncio server that answers every request
with a canned ``200 {"valid": true}`` without reading what it was sent.

It measures the load generator and the machine, not a server: whatever latency
``totp_load.py`` reports against it at a concurrency is the floor for any server on the
same machine.

    python bench/null_server.py 8799 &
    python ../shared/bench/totp_load.py --target json --url http://127.0.0.1:8799 \\
        --tokens tokens.csv --accept-field valid -c 32 -d 20
"""

from __future__ import annotations

import asyncio
import sys

BODY = b'{"valid":true}'
RESPONSE = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            writer.write(RESPONSE)
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(serve, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8799))
