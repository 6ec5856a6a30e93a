"""What one upload costs PostgreSQL and the collector, in process, without HTTP or noise.

``python -m benchmarks.ingest_cost [--uploads 300] [--repeat 3] [--variants base ...]
[--json]``

The load benchmark (:mod:`benchmarks.load`) answers "how many reports a second"; on a
shared 2-core machine one run differs from the next by ±10 %, too much to see a change
of a few per cent. This one answers "what does an upload cost, and where": for each
variant, a fresh database on a throwaway PostgreSQL server (``tests.pg.server``, fsync
off) migrated to head, then the variant's DDL, 50 agents in 5 rooms, and ``--uploads``
uploads of 20 agent-shaped reports (:mod:`benchmarks.load_shape`, 564 measurements)
stored one after another by :func:`collector.services.ingest.store_batch` on one
connection. It prints, per upload (medians of ``--repeat`` rounds, the variants
interleaved so a slow spell of the machine hits them all):

- the collector thread's CPU for storing (validation is not included) and the server's
  CPU (every PostgreSQL process), with each variant's server CPU as a ratio of
  ``base`` measured in the same run;
- for ``base``, the server's time per statement kind (``log_min_duration_statement``).

The variants drop one secondary index of ``measurement_run`` each (what every index
costs each upload), or turn an equality-only one into a hash index. A benchmark reports;
it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from agent.wire import EnrolRequest, ReportBatch
from benchmarks.load_cpu import TreeCpu
from benchmarks.load_shape import AGENT_MIX, BatchStamp
from collector.db import init_db, make_engine
from collector.models import Agent
from collector.services.enrolment import AgentIdentity, enrol
from collector.services.ingest import store_batch
from collector.services.sites import create_site
from collector.wire_validation import parse_batch

BATCH = 20
AGENTS = 50
WARM_UP = 20
PREFIX = "ix_measurement_run_"
INDEXES = tuple(PREFIX + name for name in ("samples", "room_time", "report_pk",
                                           "agent_id"))
VARIANTS: dict[str, tuple[str, ...]] = {
    "base": (),
    **{f"without {name.removeprefix(PREFIX)}": (f"DROP INDEX {name}",) for name in INDEXES},
    **{f"hash {column}": (f"DROP INDEX {PREFIX}{column}",
                          f"CREATE INDEX hx_measurement_run_{column} ON measurement_run "
                          f"USING hash ({column})")
       for column in ("agent_id", "report_pk")},
}
"""``base`` as migrated; one index dropped; an equality-only b-tree as a hash index."""
STATEMENT = re.compile(r"duration: ([\d.]+) ms  (?:statement|execute [^:]*): (\w+(?: \w+)?)")


@dataclass
class Cost:
    variant: str
    collector_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)

    @property
    def collector(self) -> float:
        return statistics.median(self.collector_ms)

    @property
    def server(self) -> float:
        return statistics.median(self.server_ms)


def postmaster_pid(data: Path) -> int:
    """The server's process id, from its data directory."""
    return int((data / "postmaster.pid").read_text().split()[0])


def _agents(engine: Engine) -> list[AgentIdentity]:
    with Session(engine) as session:
        token = create_site(session, "Benchmark School")
        session.commit()
        out = []
        for i in range(AGENTS):
            agent_id = enrol(session, EnrolRequest(token=token, room=f"Room {i % 5}"),
                             datetime.now(UTC)).agent_id
            session.commit()
            agent = session.get(Agent, agent_id)
            out.append(AgentIdentity(agent.id, agent.site_id, agent.room_id))
        return out


def measure(url: str, ddl: Sequence[str], uploads: int, server_pid: int,
            timed: Callable[[], None] = lambda: None) -> tuple[float, float]:
    """(collector ms, server ms) of CPU per upload stored into a fresh database at ``url``
    (the server: ``server_pid`` and its children, our throwaway server's only);
    ``timed`` is called when the timed uploads begin (after the set-up and warm-up)."""
    engine = make_engine(url)
    try:
        init_db(engine)
        with engine.begin() as conn:
            for statement in ddl:
                conn.exec_driver_sql(statement)
        agents = _agents(engine)
        stamp = BatchStamp.build(AGENT_MIX, BATCH)
        work: list[tuple[AgentIdentity, ReportBatch]] = [
            (who, parse_batch(stamp.body(who.agent_id)))
            for who in (agents[k % AGENTS] for k in range(WARM_UP + uploads))]
        for who, batch in work[:WARM_UP]:
            store_batch(engine, who, batch, datetime.now(UTC))
        timed()
        client, server = time.thread_time(), TreeCpu(server_pid)
        for who, batch in work[WARM_UP:]:
            store_batch(engine, who, batch, datetime.now(UTC))
        return ((time.thread_time() - client) / uploads * 1e3,
                server.used_s() / uploads * 1e3)
    finally:
        engine.dispose()


def statement_times(log: str, uploads: int) -> dict[str, float]:
    """Server milliseconds per upload by the first (two) words of each statement, largest
    first; kinds under 0.01 ms left out."""
    per: dict[str, float] = defaultdict(float)
    for match in STATEMENT.finditer(log):
        per[match.group(2)] += float(match.group(1))
    return {kind: ms / uploads for kind, ms in sorted(per.items(), key=lambda kv: -kv[1])
            if ms / uploads >= 0.01}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ingest_cost",
                                description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--uploads", type=int, default=300)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    from tests.pg.server import throwaway_server, unavailable_reason

    reason = unavailable_reason()
    if reason:
        print(f"skipped: PostgreSQL unavailable ({reason})")
        return 0
    costs = {v: Cost(v) for v in dict.fromkeys(["base", *args.variants])}
    with throwaway_server("classprobe-ingestcost-") as server:
        pid = postmaster_pid(server.data)
        for _ in range(args.repeat):
            for variant, cost in costs.items():
                url = server.create_database("cost")  # dropped first: one at a time on disk
                collector_ms, server_ms = measure(url, VARIANTS[variant], args.uploads, pid)
                cost.collector_ms.append(collector_ms)
                cost.server_ms.append(server_ms)
        log_url = server.create_database("cost")
        _log_statements(server.port, "cost")
        start = [0]
        measure(log_url, (), args.uploads, pid,
                timed=lambda: start.__setitem__(0, _log_size(server.workdir)))
        statements = statement_times(_log_tail(server.workdir, start[0]), args.uploads)
    _print(costs, statements, args)
    return 0


def _log_statements(port: int, database: str) -> None:
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres",
                         autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{database}" SET log_min_duration_statement = 0')


def _log_size(workdir: Path) -> int:
    return (workdir / "server.log").stat().st_size


def _log_tail(workdir: Path, start: int) -> str:
    with (workdir / "server.log").open(encoding="utf-8", errors="replace") as f:
        f.seek(start)
        return f.read()


def _print(costs: dict[str, Cost], statements: dict[str, float],
           args: argparse.Namespace) -> None:
    base = costs["base"].server or float("nan")  # nan: the server's CPU did not tick
    if args.json:
        print(json.dumps({"uploads": args.uploads, "repeat": args.repeat,
                          "measurements_per_upload": BatchStamp.build(AGENT_MIX, BATCH)
                          .measurements,
                          "variants": [asdict(c) | {"server_ratio": c.server / base}
                                       for c in costs.values()],
                          "statements_ms": statements}, indent=2))
        return
    per_upload = BatchStamp.build(AGENT_MIX, BATCH).measurements
    print(f"per upload of {BATCH} reports ({per_upload} measurements), median of "
          f"{args.repeat} x {args.uploads} uploads, CPU ms:")
    print(f"{'variant':32s} {'collector':>9s} {'server':>8s} {'vs base':>8s} "
          f"{'server us/meas':>14s}")
    for c in costs.values():
        print(f"{c.variant:32s} {c.collector:9.2f} {c.server:8.2f} {c.server / base:8.2f} "
              f"{c.server / per_upload * 1e3:14.1f}")
    print("server time per upload by statement (base, one pass):")
    for kind, ms in statements.items():
        print(f"  {ms:6.2f} ms  {kind}")


if __name__ == "__main__":
    sys.exit(main())
