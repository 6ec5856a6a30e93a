"""Uploads that wait for a busy writer are written together as one group, each with its
own answer; the queue keeps serving whatever one group's store does."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine

from agent.wire import IngestResponse, ReportBatch
from collector.services.enrolment import AgentIdentity
from collector.services.ingest import Upload
from collector.services.ingest_queue import IngestQueue, ingest_queue
from tests.collector.conftest import make_report

WHO = AgentIdentity("agent-1", 1, 1)


def upload(reports: int = 1) -> Upload:
    return Upload(WHO, ReportBatch([make_report(WHO.agent_id) for _ in range(reports)]))


def accepted(u: Upload) -> IngestResponse:
    return IngestResponse([str(r.report_id) for r in u.batch.reports], [])


class Store:
    """A fake :func:`collector.services.ingest.store_group`: records each group, answers
    every upload as accepted (or as ``answer`` says), and holds each group until
    released, so a test decides what waits."""

    def __init__(self, answer: Callable[[Upload], IngestResponse | Exception] = accepted,
                 hold: bool = True) -> None:
        self.groups: list[list[Upload]] = []
        self.answer = answer
        self.release = threading.Event()
        if not hold:
            self.release.set()
        self.writing = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def __call__(self, _engine: Engine, uploads: list[Upload],
                 _now: datetime) -> list[IngestResponse | Exception]:
        with self._lock:
            self.groups.append(uploads)
            self.writing += 1
            self.most_at_once = max(self.most_at_once, self.writing)
        self.release.wait(10)
        with self._lock:
            self.writing -= 1
        return [self.answer(u) for u in uploads]


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the queue never got there")


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


def queue(store: Store, writers: int = 1, group_reports: int = 400) -> IngestQueue:
    return IngestQueue(create_engine("sqlite://"), writers, group_reports, store=store)


def test_uploads_that_wait_for_the_writer_are_written_as_one_group() -> None:
    store = Store()
    uploads = [upload() for _ in range(4)]

    async def test() -> None:
        q = queue(store)
        first = asyncio.ensure_future(q.store(uploads[0]))
        await until(lambda: len(store.groups) == 1)  # a lone upload is written at once
        rest = [asyncio.ensure_future(q.store(u)) for u in uploads[1:]]
        await asyncio.sleep(0.05)
        assert len(store.groups) == 1  # the writer is busy: the others wait
        store.release.set()
        assert await asyncio.gather(first, *rest) == [accepted(u) for u in uploads]
    run(test)
    assert store.groups == [uploads[:1], uploads[1:]]


def test_a_group_holds_at_most_group_reports_but_never_leaves_an_upload_behind() -> None:
    store = Store()
    uploads = [upload(1), upload(2), upload(2), upload(5), upload(1)]

    async def test() -> None:
        q = queue(store, group_reports=4)
        tasks = [asyncio.ensure_future(q.store(uploads[0]))]
        await until(lambda: len(store.groups) == 1)
        tasks += [asyncio.ensure_future(q.store(u)) for u in uploads[1:]]
        await asyncio.sleep(0.05)
        store.release.set()
        assert await asyncio.gather(*tasks) == [accepted(u) for u in uploads]
    run(test)
    assert store.groups == [uploads[:1], uploads[1:3], uploads[3:4], uploads[4:]]


def test_no_more_groups_are_written_at_once_than_there_are_writers() -> None:
    store = Store()
    uploads = [upload() for _ in range(5)]

    async def test() -> None:
        q = queue(store, writers=2, group_reports=1)  # a group per upload
        tasks = [asyncio.ensure_future(q.store(u)) for u in uploads]
        await until(lambda: store.writing == 2)
        await asyncio.sleep(0.05)
        store.release.set()
        await asyncio.gather(*tasks)
    run(test)
    assert store.most_at_once == 2
    assert all(len(group) == 1 for group in store.groups)
    written = [u for group in store.groups for u in group]  # two threads: in either order
    assert sorted(map(id, written)) == sorted(map(id, uploads))


def test_each_upload_gets_its_own_answer_or_error() -> None:
    refused = upload()
    error = ValueError("refused by the database")
    store = Store(lambda u: error if u is refused else accepted(u))
    others = [upload(), upload()]

    async def test() -> None:
        q = queue(store)
        busy = asyncio.ensure_future(q.store(others[0]))
        await until(lambda: len(store.groups) == 1)
        tasks = [asyncio.ensure_future(q.store(u)) for u in (refused, others[1])]
        store.release.set()
        got = await asyncio.gather(busy, *tasks, return_exceptions=True)
        assert got == [accepted(others[0]), error, accepted(others[1])]
    run(test)
    assert store.groups[1] == [refused, others[1]]


def test_a_store_that_raises_fails_its_group_and_the_queue_keeps_serving() -> None:
    calls: list[int] = []
    healthy = Store(hold=False)

    def flaky(engine: Engine, uploads: list[Upload], now: datetime) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the store itself broke")
        return healthy(engine, uploads, now)
    later = upload()

    async def test() -> None:
        q = IngestQueue(create_engine("sqlite://"), 1, 400, store=flaky)
        with pytest.raises(RuntimeError, match="the store itself broke"):
            await q.store(upload())
        assert await q.store(later) == accepted(later)
    run(test)
    assert healthy.groups == [[later]]


def test_a_request_that_gives_up_waiting_leaves_the_others_answered() -> None:
    store = Store()
    uploads = [upload() for _ in range(3)]

    async def test() -> None:
        q = queue(store)
        tasks = [asyncio.ensure_future(q.store(uploads[0]))]
        await until(lambda: len(store.groups) == 1)
        tasks += [asyncio.ensure_future(q.store(u)) for u in uploads[1:]]
        await asyncio.sleep(0.05)
        tasks[1].cancel()  # its client went away while it waited
        await asyncio.sleep(0)
        store.release.set()
        got = await asyncio.gather(*tasks, return_exceptions=True)
        assert got[0] == accepted(uploads[0]) and got[2] == accepted(uploads[2])
        assert isinstance(got[1], asyncio.CancelledError)
        after = upload()
        assert await q.store(after) == accepted(after)
    run(test)
    assert store.groups[1] == uploads[1:]  # still written: the agent will find it stored


def test_each_event_loop_gets_its_own_queue() -> None:
    class State:
        pass
    state = State()
    engine = create_engine("sqlite://")

    async def get() -> IngestQueue:
        return ingest_queue(state, engine, 1, 400)

    async def twice() -> tuple[IngestQueue, IngestQueue]:
        return await get(), await get()
    first, again = asyncio.run(twice())
    assert first is again
    assert asyncio.run(get()) is not first


@pytest.mark.parametrize(("writers", "group_reports"), [(0, 400), (1, 0)])
def test_a_queue_needs_a_writer_and_room_for_a_report(writers: int,
                                                      group_reports: int) -> None:
    async def make() -> None:
        IngestQueue(create_engine("sqlite://"), writers, group_reports)
    with pytest.raises(ValueError, match=f"writers \\({writers}\\) and group_reports "
                                         f"\\({group_reports}\\) must be at least 1"):
        asyncio.run(make())
