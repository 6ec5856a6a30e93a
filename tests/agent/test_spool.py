import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from agent.probes.results import ResultBuilder, value
from agent.spool import CorruptReport, Spool, Spooled, encode
from agent.wire import ProbeResult, new_report

ROOT = Path(__file__).resolve().parents[2]


def results(n: int = 1) -> list[ProbeResult]:
    r = ResultBuilder("latency", target="127.0.0.1:1")
    r.add(*[value("tcp_connect_ms", "tcp_connect", float(i)) for i in range(n)])
    return [r.ok()]


def test_add_writes_a_complete_report_before_anything_else(tmp_path: Path):
    spool = Spool(tmp_path)
    report = spool.add("agent-1", "0.1", results())
    [item] = spool.pending()
    assert item.report_id == str(report.report_id)
    data = spool.load(item)
    assert data["report_id"] == str(report.report_id)
    assert data["agent_id"] == "agent-1"
    assert data["spool_dropped"] == 0
    assert item.path.read_bytes() == encode(report)
    assert list(spool.tmp_dir.iterdir()) == []


def test_pending_is_oldest_first_and_remove_deletes(tmp_path: Path):
    spool = Spool(tmp_path)
    ids = [str(spool.add("a", "0", results()).report_id) for _ in range(4)]
    assert [i.report_id for i in spool.pending()] == ids
    assert spool.remove(ids[1]) is True
    assert spool.remove(ids[1]) is False
    assert [i.report_id for i in spool.pending()] == [ids[0], ids[2], ids[3]]


def test_count_bound_drops_oldest_and_next_report_carries_the_count(tmp_path: Path):
    spool = Spool(tmp_path, max_reports=3)
    reports = [spool.add("a", "0", results()) for _ in range(5)]
    kept = [i.report_id for i in spool.pending()]
    assert kept == [str(r.report_id) for r in reports[2:]]
    assert [r.spool_dropped for r in reports] == [0, 0, 0, 1, 1]
    assert spool.dropped_total == 2
    assert spool.dropped_unreported == 0


def test_dropped_counts_carried_by_a_dropped_report_are_not_lost(tmp_path: Path):
    spool = Spool(tmp_path, max_reports=1)
    reports = [spool.add("a", "0", results()) for _ in range(3)]
    assert [r.spool_dropped for r in reports] == [0, 1, 2]
    [survivor] = spool.pending()
    # what reaches the collector sums to the number of reports lost (2)
    assert spool.load(survivor)["spool_dropped"] == 2 == spool.dropped_total


def test_byte_bound(tmp_path: Path):
    size = len(encode(new_report("a", "0", results(50))))
    spool = Spool(tmp_path, max_bytes=int(size * 2.5))
    for _ in range(4):
        spool.add("a", "0", results(50))
    assert len(spool.pending()) == 2
    assert sum(i.size for i in spool.pending()) <= size * 2.5
    assert spool.dropped_total == 2


def test_drop_count_survives_reopening(tmp_path: Path):
    spool = Spool(tmp_path, max_reports=1)
    spool.add("a", "0", results())
    spool.add("a", "0", results())
    spool.remove(spool.pending()[0].report_id)
    # a drop happened and was reported; now drop again and reopen before the next report
    spool.add("a", "0", results())
    spool._drop_oldest_if_full(10, spool._state())
    again = Spool(tmp_path, max_reports=1)
    assert again.dropped_unreported == 1
    assert again.add("a", "0", results()).spool_dropped == 1


def test_corrupt_pending_file_is_reported_and_can_be_quarantined(tmp_path: Path):
    spool = Spool(tmp_path)
    rid = str(uuid.uuid4())
    path = spool.pending_dir / f"{1:020d}-{rid}.json"
    path.write_bytes(b'{"report_id": "' + rid.encode() + b'", "resu')
    [item] = spool.pending()
    with pytest.raises(CorruptReport, match="not readable JSON"):
        spool.load(item)
    target = spool.quarantine(rid, "corrupt spool file")
    assert target is not None and target.exists()
    assert target.with_suffix(".reason").read_text() == "corrupt spool file\n"
    assert spool.pending() == []


def test_leftover_temp_files_are_cleared_on_open(tmp_path: Path):
    Spool(tmp_path)
    (tmp_path / "tmp" / "00001-half.json").write_bytes(b'{"half')
    spool = Spool(tmp_path)
    assert list(spool.tmp_dir.iterdir()) == []
    assert spool.pending() == []


WRITER = """
import sys
from pathlib import Path
from agent.probes.results import ResultBuilder, value
from agent.spool import Spool
spool = Spool(Path(sys.argv[1]), max_reports=10_000, max_bytes=10**9)
r = ResultBuilder("device")
r.add(*[value("uptime_s", "psutil.boot_time", float(i)) for i in range(2000)])
results = [r.ok()]
print("ready", flush=True)
while True:
    report = spool.add("agent", "0", results)
    print(report.report_id, flush=True)
"""


@pytest.mark.parametrize("delay", [0.15, 0.3, 0.45])
def test_kill_9_of_a_writer_leaves_only_complete_reports(tmp_path: Path, delay: float):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    committed = [line.strip() for line in proc.stdout.read().splitlines() if line.strip()]
    assert committed, "the writer never committed a report"
    spool = Spool(tmp_path)
    pending: list[Spooled] = spool.pending()
    ids = [i.report_id for i in pending]
    for item in pending:
        data = json.loads(item.path.read_bytes())  # every pending file is whole JSON
        assert data["report_id"] == item.report_id
        assert len(data["results"][0]["measurements"]) == 2000
    # nothing that add() returned is lost; at most the one in flight is extra
    assert ids[: len(committed)] == committed
    assert len(ids) - len(committed) in (0, 1)
    assert list(spool.tmp_dir.iterdir()) == []
