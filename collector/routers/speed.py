"""Speed-test endpoints: the collector as an on-net test server.

``GET /speed/download?bytes=N`` streams N incompressible bytes, ``POST /speed/upload``
counts and discards what it receives, ``GET /speed/ping`` is a tiny uncached reply.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from collector.deps import SettingsDep
from collector.errors import Problem
from collector.streaming import NO_STORE, count_body, random_body

router = APIRouter(prefix="/speed", tags=["speed test"])


@router.get("/download", response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}}}})
async def download(request: Request, settings: SettingsDep,
                   size: Annotated[int, Query(alias="bytes")]) -> StreamingResponse:
    """Exactly ``bytes`` random bytes (at most ``max_download_bytes``)."""
    cap = settings.max_download_bytes
    if size < 0:
        raise Problem(400, f"bytes={size} must be >= 0")
    if size > cap:
        raise Problem(400, f"bytes={size} is above the download cap of {cap} bytes "
                           "(max_download_bytes)")
    return random_body(request.app.state.random_block, size)


@router.post("/upload")
async def upload(request: Request, settings: SettingsDep) -> JSONResponse:
    """Read and discard the body; reply ``{"bytes": <count received>}``."""
    received = await count_body(request, settings.max_upload_bytes)
    return JSONResponse({"bytes": received}, headers=NO_STORE)


@router.get("/ping", response_class=PlainTextResponse)
async def ping() -> PlainTextResponse:
    return PlainTextResponse("pong", headers=NO_STORE)
