"""Collector killed (SIGKILL) while it ingests a big batch: the agent's retry after the
restart stores every report exactly once, whether or not the killed commit landed."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from agent.uploader import UploadOutcome
from tests.e2e.conftest import Collector
from tests.faults.conftest import cycle, enrol, stored_measurements, stored_reports

pytestmark = pytest.mark.slow

REPORTS = 100  # x 25 measurements: one upload of ~0.3 MB that takes a while to store


@pytest.mark.parametrize("kill_after_s", [0.0, 0.3])
def test_retry_after_kill_mid_ingest_stores_each_report_once(
        collector: Collector, tmp_path: Path, kill_after_s: float) -> None:
    agent = enrol(collector.url, collector.create_site("kill-school"), tmp_path / "spool")
    t0 = datetime.now(UTC) - timedelta(hours=REPORTS)
    for i in range(REPORTS):
        agent.spool.add(agent.agent_id, "0.1.0", cycle(t0 + timedelta(hours=i)))
    ids = [item.report_id for item in agent.spool.pending()]

    first = UploadOutcome()
    sent = threading.Event()

    def upload() -> None:
        hooks = {"request": [lambda _request: sent.set()]}
        with httpx.Client(base_url=collector.url, timeout=30, event_hooks=hooks) as client:
            first.__dict__.update(agent.uploader(client, batch_size=REPORTS).drain().__dict__)

    thread = threading.Thread(target=upload)
    thread.start()
    assert sent.wait(timeout=30), "the agent never sent its batch"
    time.sleep(kill_after_s)  # the body is on its way / being stored
    assert collector.proc is not None
    os.killpg(collector.proc.pid, signal.SIGKILL)
    collector.proc.wait(timeout=15)
    thread.join(timeout=60)
    assert not thread.is_alive()

    collector.start()  # same port, same database
    with httpx.Client(base_url=collector.url, timeout=30) as client:
        second = agent.uploader(client, batch_size=REPORTS).drain()

    assert second.ok, second.error
    assert second.pending == 0
    assert first.accepted + second.accepted == REPORTS  # each stored by exactly one upload
    rows = stored_reports(collector.db)
    assert sorted(r[0] for r in rows) == sorted(ids)
    assert stored_measurements(collector.db) == REPORTS * 25
