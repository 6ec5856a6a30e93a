"""Uploads wait here for a writer, and a free writer takes every upload waiting as one group.

One per collector process and event loop (:func:`ingest_queue`). A request's upload joins
the queue; if fewer than ``writers`` groups are being written, a writer starts at once, so
a lone upload waits for nothing. Uploads that arrive while every writer is busy wait, and
the next free writer takes all of them (up to ``group_reports`` reports) as one group:
:func:`collector.services.ingest.store_group` writes the group in one transaction, with
one round of reads and one commit, in a worker thread. Grouping is what a busy collector
gains from: under load most uploads wait anyway, and on PostgreSQL an upload alone pays
for ~8 round trips and a commit of its own.

Each upload gets its own answer (or its own error, as the request's response); a request
that gives up waiting (the client went away) leaves its upload to be written, since the
agent will send it again and find it stored.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from anyio import CapacityLimiter, to_thread
from sqlalchemy import Engine

from agent.wire import IngestResponse
from collector.models import utcnow
from collector.services.ingest import Upload, store_group

StoreGroup = Callable[[Engine, list[Upload], datetime], list[IngestResponse | Exception]]


@dataclass
class _Waiting:
    upload: Upload
    answer: asyncio.Future[IngestResponse]


class IngestQueue:
    """Uploads of one event loop, written by at most ``writers`` threads at once in
    groups of at most ``group_reports`` reports (an upload larger than that alone)."""

    def __init__(self, engine: Engine, writers: int, group_reports: int,
                 store: StoreGroup = store_group) -> None:
        if writers < 1 or group_reports < 1:
            raise ValueError(f"writers ({writers}) and group_reports ({group_reports}) "
                             "must be at least 1")
        self.loop = asyncio.get_running_loop()
        self.engine, self.writers, self.group_reports = engine, writers, group_reports
        self._store = store
        self._threads = CapacityLimiter(writers)
        self._waiting: deque[_Waiting] = deque()
        self._writing = 0
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def waiting(self) -> int:
        """Uploads waiting for a writer."""
        return len(self._waiting)

    async def store(self, upload: Upload) -> IngestResponse:
        """``upload`` stored (with others waiting alongside it); its answer."""
        answer: asyncio.Future[IngestResponse] = self.loop.create_future()
        self._waiting.append(_Waiting(upload, answer))
        if self._writing < self.writers:
            self._writing += 1
            task = self.loop.create_task(self._write_while_waiting())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await answer

    def _next_group(self) -> list[_Waiting]:
        group = [self._waiting.popleft()]
        reports = len(group[0].upload.batch.reports)
        while self._waiting:
            size = len(self._waiting[0].upload.batch.reports)
            if reports + size > self.group_reports:
                break
            reports += size
            group.append(self._waiting.popleft())
        return group

    def _write(self, uploads: list[Upload]) -> list[IngestResponse | Exception]:
        return self._store(self.engine, uploads, utcnow())  # stamped when written

    async def _write_while_waiting(self) -> None:
        try:
            while self._waiting:
                group = self._next_group()
                try:
                    answers = await to_thread.run_sync(
                        self._write, [w.upload for w in group], limiter=self._threads)
                except Exception as exc:  # noqa: BLE001
                    answers = [exc] * len(group)  # the store itself failed: every answer
                for waiting, answer in zip(group, answers, strict=True):
                    if waiting.answer.done():  # its request gave up waiting
                        continue
                    if isinstance(answer, Exception):
                        waiting.answer.set_exception(answer)
                    else:
                        waiting.answer.set_result(answer)
        finally:
            self._writing -= 1


def ingest_queue(state: Any, engine: Engine, writers: int,
                 group_reports: int) -> IngestQueue:
    """The queue kept on ``state`` (the app's), made in the running event loop on first
    use (a test client may run the app in one loop after another: each gets its own)."""
    queue: IngestQueue | None = getattr(state, "ingest_queue", None)
    if queue is None or queue.loop is not asyncio.get_running_loop():
        queue = IngestQueue(engine, writers, group_reports)
        state.ingest_queue = queue
    return queue
