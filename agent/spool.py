"""The durable outbox: every report is on disk before any upload is tried.

Layout of the spool directory::

    pending/<sequence>-<report_id>.json   complete reports, oldest first by name
    tmp/                                  reports being written (never read back)
    rejected/<name>.json + <name>.reason  reports the collector refused as bad input
    state.json                            drop counter (written atomically)

A report is written to ``tmp/``, fsynced, renamed into ``pending/`` and the directory is
fsynced, so after a kill -9 at any moment ``pending/`` holds only complete reports; a
leftover temp file is deleted when the spool is next opened.

The spool is bounded by report count and bytes. When a new report does not fit, the
oldest reports are dropped and counted. The count of drops not yet reported is kept in
``state.json`` and carried by the next report's ``spool_dropped``; if a report carrying a
count is itself dropped, its count is added back, so the ``spool_dropped`` values the
collector receives sum to exactly the number of reports lost. (The state file is
updated before the drop is done, so a crash in between can over-count by one, never
under-count.)
"""

from __future__ import annotations

import errno
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.durable import atomic_write, fsync_dir, write_synced
from agent.wire import ProbeResult, Report, Trigger, new_report, to_jsonable

log = logging.getLogger(__name__)


class CorruptReport(ValueError):
    """A pending file that is not a readable report (the message says why)."""


@dataclass(frozen=True)
class Spooled:
    report_id: str
    path: Path
    size: int


def encode(report: Report) -> bytes:
    return json.dumps(to_jsonable(report), separators=(",", ":")).encode("utf-8")


class Spool:
    def __init__(self, root: Path, max_reports: int = 2000, max_bytes: int = 50_000_000) -> None:
        if max_reports < 1 or max_bytes < 1:
            raise ValueError(f"spool bounds must be positive: max_reports={max_reports}, "
                             f"max_bytes={max_bytes}")
        self.root = root
        self.max_reports = max_reports
        self.max_bytes = max_bytes
        self.pending_dir = root / "pending"
        self.tmp_dir = root / "tmp"
        self.rejected_dir = root / "rejected"
        self.state_path = root / "state.json"
        for d in (root, self.pending_dir, self.tmp_dir, self.rejected_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        for leftover in self.tmp_dir.iterdir():  # never renamed into pending/: incomplete
            log.info("spool: removing incomplete write %s", leftover.name)
            leftover.unlink(missing_ok=True)

    # -- state ---------------------------------------------------------------------------
    def _state(self) -> dict[str, int]:
        try:
            raw = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"dropped_unreported": 0, "dropped_total": 0}
        except (OSError, ValueError) as exc:
            log.warning("spool: state file %s unreadable (%s); drop count restarts at 0",
                        self.state_path, exc)
            return {"dropped_unreported": 0, "dropped_total": 0}
        return {k: int(raw.get(k, 0)) for k in ("dropped_unreported", "dropped_total")}

    def _save_state(self, state: dict[str, int]) -> None:
        atomic_write(self.state_path, json.dumps(state).encode(), tmp_dir=self.tmp_dir)

    @property
    def dropped_unreported(self) -> int:
        return self._state()["dropped_unreported"]

    @property
    def dropped_total(self) -> int:
        return self._state()["dropped_total"]

    # -- contents ------------------------------------------------------------------------
    def pending(self) -> list[Spooled]:
        """Complete reports waiting for upload, oldest first."""
        items = []
        for path in sorted(self.pending_dir.glob("*.json")):
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            report_id = path.stem.split("-", 1)[1] if "-" in path.stem else path.stem
            items.append(Spooled(report_id=report_id, path=path, size=size))
        return items

    def load(self, item: Spooled) -> dict[str, Any]:
        try:
            data = json.loads(item.path.read_bytes())
        except (OSError, ValueError) as exc:
            raise CorruptReport(f"{item.path.name}: not readable JSON: {exc}") from exc
        if not isinstance(data, dict) or data.get("report_id") != item.report_id:
            raise CorruptReport(f"{item.path.name}: not a report with id {item.report_id}")
        return data

    def _find(self, report_id: str) -> Path | None:
        matches = list(self.pending_dir.glob(f"*-{report_id}.json"))
        return matches[0] if matches else None

    def remove(self, report_id: str) -> bool:
        """Delete a report the collector has stored; False when it was not pending."""
        path = self._find(report_id)
        if path is None:
            return False
        path.unlink(missing_ok=True)
        fsync_dir(self.pending_dir)
        return True

    def quarantine(self, report_id: str, reason: str) -> Path | None:
        """Move a report the collector refused as bad input to ``rejected/`` with why."""
        path = self._find(report_id)
        if path is None:
            return None
        target = self.rejected_dir / path.name
        write_reason = target.with_suffix(".reason")
        write_reason.unlink(missing_ok=True)
        write_synced(write_reason, (reason.rstrip() + "\n").encode("utf-8"))
        os.replace(path, target)
        fsync_dir(self.rejected_dir)
        fsync_dir(self.pending_dir)
        log.warning("spool: report %s quarantined to %s: %s", report_id, target, reason)
        return target

    # -- adding --------------------------------------------------------------------------
    def add(self, agent_id: str, agent_version: str, results: list[ProbeResult], *,
            trigger: Trigger = "manual", job_id: str | None = None,
            clock_offset_s: float | None = None) -> Report:
        """Make a report of ``results`` and commit it to ``pending/`` (durably).

        A full disk is treated like a full spool: the oldest report is dropped (and
        counted) to make room; with nothing left to drop the OSError is raised, and the
        lost report is counted when the count can still be saved."""
        while True:
            state = self._state()
            report = new_report(agent_id, agent_version, results,
                                spool_dropped=state["dropped_unreported"], trigger=trigger,
                                job_id=job_id, clock_offset_s=clock_offset_s)
            data = encode(report)
            if self._drop_oldest_if_full(len(data), state):
                continue
            if self._write(report, data, state):
                break
        if state["dropped_unreported"]:  # the new report carries the count now
            state["dropped_unreported"] = 0
            while True:
                try:
                    self._save_state(state)
                    break
                except OSError as exc:  # a full disk: make room as for a report
                    if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or \
                            not self._drop_oldest_if_full(0, state, force=True):
                        raise
        return report

    def _write(self, report: Report, data: bytes, state: dict[str, int]) -> bool:
        """Commit ``data``; False when the disk was full and the oldest report was dropped
        to make room (the caller tries again)."""
        name = f"{self._next_sequence():020d}-{report.report_id}.json"
        tmp = self.tmp_dir / name
        try:
            write_synced(tmp, data)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            if self._drop_oldest_if_full(len(data), state, force=True):
                return False
            state["dropped_unreported"] += 1  # this report: lost, but counted if possible
            state["dropped_total"] += 1
            try:
                self._save_state(state)
            except OSError:
                log.error("spool: disk full; report %s lost and not even counted",
                          report.report_id)
            raise
        os.replace(tmp, self.pending_dir / name)
        fsync_dir(self.pending_dir)
        return True

    def _next_sequence(self) -> int:
        last = 0
        names = sorted(self.pending_dir.glob("*.json"))
        if names:
            head = names[-1].stem.split("-", 1)[0]
            last = int(head) if head.isdigit() else 0
        return max(time.time_ns(), last + 1)

    def _drop_oldest_if_full(self, incoming: int, state: dict[str, int],
                             force: bool = False) -> bool:
        """Drop the oldest report when ``incoming`` bytes would break a bound (``force``:
        the disk itself is full)."""
        items = self.pending()
        total = sum(i.size for i in items)
        if not items or (not force and len(items) + 1 <= self.max_reports
                         and total + incoming <= self.max_bytes):
            return False
        oldest = items[0]
        carried = 0
        try:
            carried = int(self.load(oldest).get("spool_dropped", 0))
        except (CorruptReport, TypeError, ValueError) as exc:
            log.warning("spool: dropping unreadable %s: %s", oldest.path.name, exc)
        state["dropped_unreported"] += 1 + carried
        state["dropped_total"] += 1
        if force:  # a full disk cannot take the count before the room is made
            oldest.path.unlink(missing_ok=True)
            fsync_dir(self.pending_dir)
            self._save_state(state)
        else:
            self._save_state(state)  # count first: a crash now over-counts, never loses
            oldest.path.unlink(missing_ok=True)
            fsync_dir(self.pending_dir)
        log.warning("spool full (%d reports, %d bytes; bounds %d, %d): dropped %s",
                    len(items), total, self.max_reports, self.max_bytes, oldest.report_id)
        return True
