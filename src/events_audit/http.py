"""The HTTP endpoint on --health-addr: GET /health like the original."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

Handler = Callable[[], Awaitable[tuple[int, str, bytes]]]

_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


def parse_listen_address(addr: str) -> tuple[str | None, int]:
    """Go's host:port: ":3000" listens on every interface, "[::1]:0" on one."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"invalid listen address {addr!r} (want host:port or :port)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return (host or None), int(port)


async def health() -> tuple[int, str, bytes]:
    return 200, "application/json", json.dumps({"Status": "OK"}).encode() + b"\n"


class HttpServer:
    """A small HTTP/1.1 server: one request per connection, GET and HEAD."""

    def __init__(self, addr: str) -> None:
        self.host, self.port = parse_listen_address(addr)
        self.routes: dict[str, Handler] = {"/health": health}
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> list[tuple[str, int]]:
        self.server = await asyncio.start_server(self._serve, self.host, self.port)
        return [sock.getsockname()[:2] for sock in self.server.sockets]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            method, _, rest = request.partition(b" ")
            path = rest.partition(b" ")[0].partition(b"?")[0].decode("latin-1")
            handler = self.routes.get(path)
            if handler is None:
                status, ctype, body = 404, "text/plain", b"404 page not found\n"
            elif method not in (b"GET", b"HEAD"):
                status, ctype, body = 405, "text/plain", b"method not allowed\n"
            else:
                status, ctype, body = await handler()
            head = (
                f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n"
                f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            writer.write(head if method == b"HEAD" else head + body)
            await writer.drain()
        except (
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ConnectionError,
        ):
            pass
        finally:
            writer.close()
