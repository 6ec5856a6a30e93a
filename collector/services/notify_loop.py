"""The background loop that detects events and delivers the outbox, run by the app.

:func:`notify_lifespan` is the FastAPI lifespan :func:`collector.app.create_app` installs:
with ``Settings.notify_interval_s > 0`` it starts a task that every interval (the first
round one interval after start) runs :func:`run_round` in a worker thread; a failing round
is logged and the loop goes on. On shutdown the task is cancelled and a delivery round in
progress stops after the notification it is sending.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlmodel import Session

from collector.models import utcnow
from collector.services.delivery import deliver_due
from collector.services.notify import run_detection
from collector.settings import Settings

log = logging.getLogger(__name__)


def _guarded(what: str, step: Callable[[], object]) -> None:
    try:
        step()
    except Exception:  # the app must outlive a bad round: log it and try next time
        log.exception("notifications: %s failed; trying again next round", what)


def run_round(engine: Engine, settings: Settings, stop: threading.Event) -> None:
    """Detect events, then deliver what is due (each step logged on failure, not raised)."""
    def detect() -> None:
        with Session(engine) as session:
            run_detection(session, utcnow())

    def deliver() -> None:
        with Session(engine) as session:
            deliver_due(session, utcnow(), settings, stop=stop)

    _guarded("detecting events", detect)
    if not stop.is_set():
        _guarded("delivering notifications", deliver)


async def notify_loop(engine: Engine, settings: Settings, stop: threading.Event) -> None:
    while not stop.is_set():
        await anyio.sleep(settings.notify_interval_s)
        await anyio.to_thread.run_sync(run_round, engine, settings, stop)


@asynccontextmanager
async def notify_lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    if settings.notify_interval_s <= 0:
        yield
        return
    stop = threading.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(notify_loop, app.state.engine, settings, stop)
        try:
            yield
        finally:
            stop.set()
            group.cancel_scope.cancel()
