"""Shared pieces of the fault tests: a real collector process, an enrolled agent's
spool and uploader, realistic cycle results, and the rows the collector stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from agent.spool import Spool
from agent.uploader import Uploader
from agent.wire import Measurement, ProbeResult
from tests.e2e.conftest import collector  # noqa: F401 - the real collector process fixture

CYCLE_METRICS = (("tcp_connect_ms", "ms", "tcp"), ("tls_handshake_ms", "ms", "tls"),
                 ("dns_ms", "ms", "getaddrinfo"), ("cpu_busy_pct", "%", "psutil"),
                 ("ram_used_pct", "%", "psutil"))


@dataclass
class Agent:
    agent_id: str
    credential: str
    spool: Spool

    def uploader(self, client: httpx.Client, batch_size: int = 20) -> Uploader:
        return Uploader(client, self.spool, self.credential, batch_size=batch_size)


def enrol(url: str, token: str, spool_root: Path, *, max_reports: int = 2000,
          max_bytes: int = 50_000_000) -> Agent:
    r = httpx.post(f"{url}/api/v1/enrol", json={"token": token, "room": "Lab 1"}, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    return Agent(body["agent_id"], body["credential"], Spool(spool_root, max_reports, max_bytes))


def cycle(start: datetime, measurements: int = 25) -> list[ProbeResult]:
    """One agent cycle's results starting at ``start``: ``measurements`` numbers in 5 runs."""
    per_run = max(1, measurements // 5)
    results = []
    for i, (metric, unit, method) in enumerate(CYCLE_METRICS):
        at = start + timedelta(seconds=2 * i)
        results.append(ProbeResult(
            probe=method, status="ok", started_at=at, finished_at=at + timedelta(seconds=1),
            target=None, measurements=[Measurement(metric, unit, method, value=float(j + 1),
                                                   stat="value", samples=1)
                                       for j in range(per_run)]))
    return results


def stored_reports(db_url: str) -> list[tuple[str, datetime, int]]:
    """(report_id, created_at, spool_dropped) of every stored report, in insertion order."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT report_id, created_at, spool_dropped FROM report "
                                     "ORDER BY id")).all()
    finally:
        engine.dispose()
    return [(str(r[0]), _utc(r[1]), int(r[2])) for r in rows]


def _utc(value: object) -> datetime:
    stamp = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def stored_measurements(db_url: str) -> int:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM measurement")).scalar_one())
    finally:
        engine.dispose()
