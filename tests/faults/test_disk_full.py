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


def test_a_full_disk_drops_the_oldest_report_counts_it_and_keeps_spooling(
        small_disk: Path) -> None:
    spool = Spool(small_disk / "spool", max_bytes=10 * DISK)  # bound larger than the disk
    t0 = datetime.now(UTC) - timedelta(days=1)
    made = 400  # several times what the 1 MiB disk holds
    for i in range(made):
        spool.add("agent-1", "0.1.0", cycle(t0 + timedelta(minutes=i)))
    kept = spool.pending()
    assert 0 < len(kept) < made  # the disk, not the bound, limited the spool
    assert spool.dropped_total == made - len(kept)  # every report the disk cost is counted
    for item in kept:  # what is there is complete, and the newest survived
        assert spool.load(item)["report_id"] == item.report_id
    assert list(spool.tmp_dir.iterdir()) == []  # no half-written report left behind
    newest = spool.load(kept[-1])
    assert newest["created_at"] >= spool.load(kept[0])["created_at"]


def test_a_disk_too_full_for_one_report_is_an_oserror_and_the_loss_is_counted(
        small_disk: Path) -> None:
    filler = small_disk / "filler"
    with open(filler, "wb") as out:  # noqa: PT012 - fill the disk to the last block
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    spool_dir = small_disk / "spool"
    with pytest.raises(OSError) as caught:
        Spool(spool_dir, max_bytes=10 * DISK).add(
            "agent-1", "0.1.0", cycle(datetime.now(UTC)))
    assert caught.value.errno == errno.ENOSPC
    filler.unlink()  # room again: the agent carries on
    spool = Spool(spool_dir, max_bytes=10 * DISK)
    spool.add("agent-1", "0.1.0", cycle(datetime.now(UTC)))
    assert len(spool.pending()) == 1
