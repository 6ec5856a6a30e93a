"""Agent disk full: the spool's byte bound drops the oldest reports, counts them, and the
count reaches the collector in ``spool_dropped``; the agent keeps spooling. The spool sits
on a 1 MiB tmpfs when one can be mounted (root), so the bound is what keeps the agent
writing on a full disk; and past the bound a real ENOSPC is an OSError the agent survives
(``agent.worker`` exits EXIT_SPOOL, the supervisor carries on), with the spool intact."""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from agent.spool import Spool
from tests.e2e.conftest import Collector
from tests.faults.conftest import cycle, enrol, stored_reports

pytestmark = pytest.mark.slow

DISK = 1 << 20


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (skipped where it cannot be mounted)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True, capture_output=True)


def test_drops_are_counted_and_reach_the_collector(collector: Collector, small_disk: Path,
                                                   tmp_path: Path) -> None:
    token = collector.create_site("full-school")
    agent = enrol(collector.url, token, small_disk / "spool", max_bytes=DISK // 4)
    t0 = datetime.now(UTC) - timedelta(days=1)
    made = 120  # more than the bound (a quarter of the disk) holds
    for i in range(made):
        agent.spool.add(agent.agent_id, "0.1.0", cycle(t0 + timedelta(minutes=i)))
    kept = len(agent.spool.pending())
    assert 0 < kept < made
    assert agent.spool.dropped_total == made - kept
    assert sum(i.size for i in agent.spool.pending()) <= DISK // 4

    with httpx.Client(base_url=collector.url, timeout=30) as client:
        outcome = agent.uploader(client).drain()
    assert outcome.ok, outcome.error
    assert (outcome.accepted, outcome.pending) == (kept, 0)
    rows = stored_reports(collector.db)
    assert len(rows) == kept
    assert sum(r[2] for r in rows) == made - kept  # every lost report is accounted for

    # the next report after the upload carries no stale count
    agent.spool.add(agent.agent_id, "0.1.0", cycle(t0 + timedelta(hours=3)))
    with httpx.Client(base_url=collector.url, timeout=30) as client:
        assert agent.uploader(client).drain().accepted == 1
    assert stored_reports(collector.db)[-1][2] == 0


def test_enospc_past_the_bound_is_an_oserror_and_the_spool_survives(small_disk: Path) -> None:
    spool = Spool(small_disk / "spool", max_bytes=10 * DISK)  # bound larger than the disk
    t0 = datetime.now(UTC) - timedelta(days=1)
    with pytest.raises(OSError) as caught:  # noqa: PT012 - adds until the disk is full
        for i in range(1000):
            spool.add("agent-1", "0.1.0", cycle(t0 + timedelta(minutes=i)))
    assert caught.value.errno == errno.ENOSPC
    written = spool.pending()
    assert written  # what was written before the disk filled is still there, complete
    for item in written:
        assert spool.load(item)["report_id"] == item.report_id

    for item in written[: len(written) // 2]:  # room again (an upload removed some)
        spool.remove(item.report_id)
    reopened = Spool(small_disk / "spool", max_bytes=10 * DISK)  # the next worker run
    assert list(reopened.tmp_dir.iterdir()) == []  # the half-written report is gone
    reopened.add("agent-1", "0.1.0", cycle(t0 + timedelta(days=1)))
    assert len(reopened.pending()) == len(written) - len(written) // 2 + 1
