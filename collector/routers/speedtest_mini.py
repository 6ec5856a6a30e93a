"""speedtest-mini compatible endpoints, so the stock ``speedtest-cli`` can test against us.

What speedtest-cli 2.1.3 fetches (lab-facts §2): ``latency.txt`` (body must start with
``test=test``), ``random{N}x{N}.jpg`` (N·N·2 bytes here, close to the real files) and
``upload.php`` (POST; the reply must contain ``size=<bytes>``). ``--mini URL`` probes
``URL/speedtest/upload.php`` with a GET and expects one ``size=<digits>`` line.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, StreamingResponse

from collector.deps import SettingsDep
from collector.errors import Problem
from collector.streaming import NO_STORE, count_body, random_body

router = APIRouter(prefix="/speedtest", tags=["speed test"])

MIN_SIDE = 350
MAX_SIDE = 4000


@router.get("/latency.txt", response_class=PlainTextResponse)
async def latency() -> PlainTextResponse:
    return PlainTextResponse("test=test\n", headers=NO_STORE)


@router.get("/random{width}x{height}.jpg", response_class=StreamingResponse,
            responses={200: {"content": {"image/jpeg": {}}}})
async def random_image(request: Request, width: int, height: int) -> StreamingResponse:
    """``width·height·2`` random bytes; each side within 350..4000."""
    for name, side in (("width", width), ("height", height)):
        if not MIN_SIDE <= side <= MAX_SIDE:
            raise Problem(400, f"{name} {side} is outside {MIN_SIDE}..{MAX_SIDE}")
    return random_body(request.app.state.random_block, width * height * 2, "image/jpeg")


@router.post("/upload.php", response_class=PlainTextResponse)
async def upload(request: Request, settings: SettingsDep) -> PlainTextResponse:
    received = await count_body(request, settings.max_upload_bytes)
    return PlainTextResponse(f"size={received}", headers=NO_STORE)


@router.get("/upload.php", response_class=PlainTextResponse)
async def upload_probe() -> PlainTextResponse:
    """What ``speedtest-cli --mini`` checks to recognise a mini server."""
    return PlainTextResponse("size=0", headers=NO_STORE)
