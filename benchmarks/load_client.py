"""A minimal HTTP/1.1 keep-alive client for the load benchmark's uploads.

The load generator shares the machine's 2 cores with the collector it measures, so every
CPU second it spends is taken from the collector: httpx costs ~1.7 ms of CPU per 100 kB
upload, this client ~0.25 ms. It writes the request bytes and reads one response with a
``Content-Length``, which is all the collector's ``POST /api/v1/reports`` needs. Anything
else (a chunked response, a bad status line) is an error, so the benchmark never
silently mis-counts.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass


class ProtocolError(Exception):
    """The server's answer was not a plain HTTP/1.1 response with Content-Length."""


@dataclass
class Response:
    status: int
    body: bytes


class KeepAliveConnection:
    """One TCP connection, reused for request after request (opened on first use)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> Response:
        if self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                 f"Content-Length: {len(body)}",
                 *(f"{k}: {v}" for k, v in headers.items())]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        try:
            return await self._response(self._reader)
        except (ProtocolError, OSError, asyncio.IncompleteReadError):
            await self.close()
            raise

    async def _response(self, reader: asyncio.StreamReader) -> Response:
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"bad status line {status_line!r}")
        fields = {}
        for line in header_lines:
            if line:
                name, _, val = line.partition(":")
                fields[name.strip().lower()] = val.strip()
        length = fields.get("content-length")
        if length is None or not length.isdigit():
            raise ProtocolError(f"response without Content-Length ({status_line!r})")
        body = await reader.readexactly(int(length))
        if fields.get("connection", "").lower() == "close":
            await self.close()
        return Response(int(parts[1]), body)

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):  # already reset by the server
                await writer.wait_closed()
