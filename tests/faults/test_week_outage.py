"""A 7-day outage in compressed time: an agent spools a report every 30 minutes for a week
(through the real Spool, its clock moved forward), then the real Uploader drains it into
the real collector: every report arrives once, stored in order of time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from agent import wire
from tests.e2e.conftest import Collector
from tests.faults.conftest import cycle, enrol, stored_measurements, stored_reports

pytestmark = pytest.mark.slow

EVERY = timedelta(minutes=30)
WEEK = timedelta(days=7)


def test_week_of_spooled_reports_arrives_once_in_time_order(
        collector: Collector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    agent = enrol(collector.url, collector.create_site("outage-school"), tmp_path / "spool")
    start = datetime.now(UTC).replace(microsecond=0) - WEEK
    stamps = [start + i * EVERY for i in range(int(WEEK / EVERY))]
    for stamp in stamps:  # the collector is unreachable all week: nothing is uploaded
        monkeypatch.setattr(wire, "utcnow", lambda at=stamp: at + timedelta(seconds=12))
        agent.spool.add(agent.agent_id, "0.1.0", cycle(stamp, measurements=5),
                        trigger="scheduled")
    monkeypatch.undo()
    ids = [item.report_id for item in agent.spool.pending()]
    assert len(ids) == len(stamps) == 336

    with httpx.Client(base_url=collector.url, timeout=30) as client:
        first = agent.uploader(client, batch_size=20).drain()
        again = agent.uploader(client, batch_size=20).drain()  # nothing left to resend

    assert first.ok, first.error
    assert (first.accepted, first.duplicates, first.pending) == (336, 0, 0)
    assert (again.sent, again.pending) == (0, 0)
    rows = stored_reports(collector.db)
    assert [r[0] for r in rows] == ids  # each once, stored oldest first
    assert [r[1] for r in rows] == [s + timedelta(seconds=12) for s in stamps]
    assert stored_measurements(collector.db) == 336 * 5
    exported = collector.export("outage-school")
    assert len(exported) == 336 * 5
    times = [str(row["time"]) for row in exported]
    assert times == sorted(times)
