"""Request and response bodies that are never held whole in memory.

``read_limited`` enforces a byte limit both on the declared Content-Length and on the
bytes actually streamed (a chunked upload has no Content-Length). ``count_body`` is the
speed-test sink. ``random_body`` streams N bytes cut from one pre-made random block, so a
1 GiB download costs no entropy and no memory.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

from fastapi import Request
from fastapi.responses import StreamingResponse

from collector.errors import Problem

RANDOM_BLOCK_BYTES = 1 << 20
NO_STORE = {"Cache-Control": "no-store"}


def new_random_block() -> bytes:
    return os.urandom(RANDOM_BLOCK_BYTES)


def _too_large(limit: int, what: str, seen: str) -> Problem:
    return Problem(413, f"{what} is larger than the {limit}-byte limit ({seen})")


def declared_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    if not raw.strip().isdigit():
        raise Problem(400, f"Content-Length {raw!r} is not a byte count")
    return int(raw)


async def _chunks(request: Request, limit: int, what: str) -> AsyncIterator[bytes]:
    declared = declared_length(request)
    if declared is not None and declared > limit:
        raise _too_large(limit, what, f"Content-Length says {declared}")
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise _too_large(limit, what, f"more than {limit} bytes were sent")
        yield chunk


async def read_limited(request: Request, limit: int, what: str = "body") -> bytes:
    """The whole body, or a 413 Problem naming ``limit`` once it is exceeded."""
    parts = [chunk async for chunk in _chunks(request, limit, what)]
    return b"".join(parts)


async def count_body(request: Request, limit: int, what: str = "upload") -> int:
    """Read and discard the body; the number of bytes received."""
    total = 0
    async for chunk in _chunks(request, limit, what):
        total += len(chunk)
    return total


async def _random_chunks(block: bytes, size: int) -> AsyncIterator[bytes]:
    remaining = size
    while remaining > 0:
        piece = block if remaining >= len(block) else block[:remaining]
        remaining -= len(piece)
        yield piece
        # Let the loop run: a client that hung up is then noticed (Starlette cancels the
        # stream) instead of the loop writing into a dead socket until N is reached.
        await asyncio.sleep(0)


def random_body(block: bytes, size: int, media_type: str = "application/octet-stream",
                ) -> StreamingResponse:
    """A response of exactly ``size`` incompressible bytes with Content-Length set."""
    headers = {**NO_STORE, "Content-Length": str(size)}
    return StreamingResponse(_random_chunks(block, size), media_type=media_type,
                             headers=headers)
