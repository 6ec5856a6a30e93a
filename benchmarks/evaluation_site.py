"""A synthetic school site for the evaluation benchmark, and fast bulk loaders.

:func:`generate` yields a realistic site deterministically (seeded): ``rooms`` rooms of
``agents_per_room`` agents each, one report per probe cycle spread over a school term
(Mondays to Fridays, 07:00-18:00 UTC) with a six-period timetable, so ``in_lesson`` and
``period`` are set as ingest sets them (the first week arrived before the site had a
timetable: both ``None``). Each cycle is one probe, in the mix a default agent runs:

- latency (60 %): TCP connect (min/p50/p95/max), ICMP RTT (p50/p95), jitter and loss to
  four targets (Teams, Meet, Kahoot, the school's speed-test server): 32 values;
- Wi-Fi (25 %): RSSI, noise, SNR, retry share, band, BSS station count and channel use;
- bandwidth (10 %): download and upload goodput to the speed-test server, loaded
  latency; one in twenty is a coordinated room test (report trigger ``job``);
- path (4 %): TLS interception for ten hosts, blocking for three, WebSocket hold, STUN;
- device (1 %): CPU, RAM, disk.

Values depend on the room (some rooms are worse), the device and whether a lesson is on,
rounded as agents report them, so verdicts are a realistic mix of pass, warn and fail.
Some latency runs fail (a timeout), giving the failure rows a report quotes.

Loaders: SQLite through ``executemany`` on the raw connection, PostgreSQL through
``COPY ... FROM STDIN`` without foreign-key triggers; both drop the measurement table's
secondary indexes before the copy and rebuild them after (then ``ANALYZE``, and on
PostgreSQL ``VACUUM``), as a bulk import would.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import Any

from sqlalchemy import Engine, text
from sqlmodel import Session

from collector.db import init_db
from collector.measurement_runs import REBUILD_KEYS, VALUE_ARRAYS, measurement_run, shape_of
from collector.measurement_runs import RUN_COLUMNS as RUN_VALUE_SHARED
from collector.models import Agent, Measurement, Room, Site

TERM_START = datetime(2025, 9, 1, tzinfo=UTC)  # a Monday
PERIODS = (("P1", 8 * 60 + 50), ("P2", 9 * 60 + 50), ("P3", 11 * 60 + 10),
           ("P4", 12 * 60 + 10), ("P5", 14 * 60), ("P6", 15 * 60))
"""(name, start minute of the day UTC); every period lasts an hour."""
LATENCY_TARGETS = ("teams.microsoft.com:443", "meet.google.com:443", "kahoot.it:443",
                   "speedtest.school.example:443")
SPEED_TARGET = "https://speedtest.school.example/speed/"
TLS_HOSTS = ("teams.microsoft.com", "meet.google.com", "accounts.google.com", "kahoot.it",
             "play.kahoot.it", "www.gstatic.com", "dl.google.com", "clients3.google.com",
             "m.google.com", "youtubeeducation.com")
MEASUREMENT_COLUMNS = ("id", "report_pk", "probe_run_id", "agent_id", "site_id", "room_id",
                       "time", "probe", "target", "metric", "value", "text", "unit", "method",
                       "stat", "samples", "period", "in_lesson")
REPORT_COLUMNS = ("id", "report_id", "agent_id", "created_at", "received_at",
                  "schema_version", "agent_version", "spool_dropped", "trigger", "job_id",
                  "clock_offset_s")
RUN_COLUMNS = ("id", "report_pk", "probe", "target", "status", "reason", "started_at",
               "finished_at")
KINDS = (("latency", 0.60), ("wifi", 0.25), ("bandwidth", 0.10), ("path", 0.04),
         ("device", 0.01))
ROWS_PER_KIND = {"latency": 32, "wifi": 7, "bandwidth": 3, "path": 15, "device": 4}
Row = tuple[Any, ...]


@dataclass(frozen=True)
class Shape:
    rows: int
    rooms: int = 40
    agents_per_room: int = 30
    days: int = 65
    """A school term of school days."""
    seed: int = 6


@dataclass
class Batch:
    """Rows of the three tables generated together (reports before their runs and values)."""

    reports: list[Row]
    runs: list[Row]
    measurements: list[Row]


def school_days(days: int) -> list[datetime]:
    out: list[datetime] = []
    day = TERM_START
    while len(out) < days:
        if day.weekday() < 5:
            out.append(day)
        day += timedelta(days=1)
    return out


def lesson_of(minute: int) -> str | None:
    for name, start in PERIODS:
        if start <= minute < start + 60:
            return name
    return None


def _agent_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class SiteMaker:
    """Generates the site's rooms, agents and measurements (see the module text)."""

    def __init__(self, shape: Shape, site_id: int, room_ids: Sequence[int]) -> None:
        self.shape, self.site_id = shape, site_id
        rng = random.Random(shape.seed)
        self.rng = rng
        self.agents = [(_agent_id(rng), room_id, rng.lognormvariate(0, 0.25))
                       for room_id in room_ids for _ in range(shape.agents_per_room)]
        self.room_quality = {room_id: rng.choice((0.6, 0.9, 1.0, 1.0, 1.2, 1.6, 2.4))
                             for room_id in room_ids}
        self.days = school_days(shape.days)
        self.untagged_before = self.days[min(4, len(self.days) - 1)]

    def batches(self, size: int = 50_000) -> Iterator[Batch]:
        """Batches of about ``size`` measurements until ``shape.rows`` are made."""
        rng, made, report_pk, run_pk = self.rng, 0, 0, 0
        kinds = [k for k, _w in KINDS]
        weights = [w for _k, w in KINDS]
        batch = Batch([], [], [])
        while made < self.shape.rows:
            agent_id, room_id, device = rng.choice(self.agents)
            day = rng.choice(self.days)
            minute = rng.randrange(7 * 60, 18 * 60)
            time = day + timedelta(minutes=minute, seconds=rng.randrange(60))
            period = lesson_of(minute)
            in_lesson: bool | None = period is not None
            if day < self.untagged_before:
                period, in_lesson = None, None
            kind = rng.choices(kinds, weights)[0]
            trigger = "job" if kind == "bandwidth" and rng.random() < 0.05 else "scheduled"
            report_pk += 1
            batch.reports.append((
                report_pk, _agent_id(rng), agent_id, time, time + timedelta(seconds=5), 1,
                "0.6.0", 0, trigger, _agent_id(rng) if trigger == "job" else None, 0.01))
            load = self.room_quality[room_id] * device * (1.4 if in_lesson else 1.0)
            values = self._values(kind, load)
            failed = kind == "latency" and rng.random() < 0.01
            run_target: object = ()  # one probe run per target, as an agent runs them
            for probe_target, metric, stat, value, unit, method in values[:self.shape.rows - made]:
                if probe_target != run_target:
                    run_pk, run_target = run_pk + 1, probe_target
                    batch.runs.append((
                        run_pk, report_pk, kind, probe_target, "failed" if failed else "ok",
                        "connect timeout after 5 s" if failed else None, time,
                        time + timedelta(seconds=2)))
                made += 1
                batch.measurements.append((
                    made, report_pk, run_pk, agent_id, self.site_id, room_id, time, kind,
                    probe_target, metric, value, None, unit, method, stat, 1, period,
                    in_lesson))
            if len(batch.measurements) >= size:
                yield batch
                batch = Batch([], [], [])
        if batch.measurements:
            yield batch

    def _values(self, kind: str, load: float) -> list[tuple[Any, ...]]:
        g = self.rng.gauss
        if kind == "latency":
            out = []
            for target in LATENCY_TARGETS:
                base = max(1.0, 18 * load + g(0, 4))
                spread = abs(g(0, 6 * load))
                for stat, v in (("min", base), ("p50", base + spread / 3),
                                ("p95", base + spread), ("max", base + 2 * spread)):
                    out.append((target, "tcp_connect_ms", stat, round(v, 2), "ms", "tcp"))
                for stat, v in (("p50", base + 1 + spread / 3), ("p95", base + 1 + spread)):
                    out.append((target, "icmp_rtt_ms", stat, round(v, 2), "ms", "icmp"))
                out.append((target, "jitter_ms", "value", round(abs(g(3 * load, 2 * load)), 2),
                            "ms", "tcp"))
                loss = max(0.0, round(g(0.3 * load, 0.8), 1))
                out.append((target, "loss_pct", "value", loss, "%", "icmp"))
            return out
        if kind == "wifi":
            rssi = round(min(-30.0, g(-58 - 6 * load, 5)))
            noise = round(g(-92, 2))
            return [(None, m, "value", v, u, "iw") for m, v, u in (
                ("rssi_dbm", rssi, "dBm"), ("noise_dbm", noise, "dBm"),
                ("snr_db", rssi - noise, "dB"),
                ("retry_pct", round(min(100.0, abs(g(6 * load, 4))), 1), "%"),
                ("band_ghz", 2.4 if self.rng.random() < 0.2 * load else 5.0, "GHz"),
                ("bss_station_count", float(max(0, round(g(20 * load, 6)))), "count"),
                ("bss_channel_utilisation_pct", round(min(100.0, abs(g(30 * load, 10)))), "%"))]
        if kind == "bandwidth":
            down = round(max(0.5, g(90 / load, 15)), 2)
            return [(SPEED_TARGET, "download_mbps", "value", down, "Mbps", "http"),
                    (SPEED_TARGET, "upload_mbps", "value", round(down / 3, 2), "Mbps", "http"),
                    (SPEED_TARGET, "loaded_latency_ms", "p50", round(40 * load, 2), "ms",
                     "http")]
        if kind == "path":
            intercept = 1.0 if load > 2.5 else 0.0
            return ([(f"{h}:443", "tls_intercepted", "value", intercept, "bool", "tls")
                     for h in TLS_HOSTS]
                    + [(f"{h}:443", "blocked", "value", 0.0, "bool", "http")
                       for h in ("kahoot.it", "play.kahoot.it", "meet.google.com")]
                    + [("wss://kahoot.it/cometd", "websocket_hold_s", "value", 60.0, "s",
                        "websocket"),
                       ("stun.l.google.com:19302", "udp_reachable", "value", 1.0, "bool",
                        "stun")])
        return [(None, "cpu_mhz", "value", 2400.0, "MHz", "psutil"),
                (None, "ram_total_gb", "value", 8.0 if load < 1.5 else 4.0, "GB", "psutil"),
                (None, "disk_total_gb", "value", 256.0, "GB", "psutil"),
                (None, "cpu_physical_cores", "value", 4.0, "count", "psutil")]


def create_site(engine: Engine, shape: Shape, name: str = "Benchmark School") -> SiteMaker:
    """Tables (migrated to head), the site, its rooms and agents; returns the maker of its
    measurements."""
    init_db(engine)
    with Session(engine) as session:
        site = Site(name=name, token_hash=hashlib.sha256(name.encode()).hexdigest())
        session.add(site)
        session.flush()
        assert site.id is not None
        rooms = [Room(site_id=site.id, name=f"R{i + 1:02d}") for i in range(shape.rooms)]
        session.add_all(rooms)
        session.flush()
        maker = SiteMaker(shape, site.id, [r.id or 0 for r in rooms])
        for n, (agent_id, room_id, _q) in enumerate(maker.agents):
            session.add(Agent(id=agent_id, site_id=site.id, room_id=room_id,
                              credential_hash=hashlib.sha256(agent_id.encode()).hexdigest(),
                              agent_version="0.6.0", created_at=TERM_START,
                              last_seen=TERM_START + timedelta(days=90, seconds=n)))
        session.commit()
    return maker


def _secondary_indexes(engine: Engine, create: bool) -> None:
    postgresql = engine.dialect.name == "postgresql"
    table: Any = measurement_run if postgresql else Measurement.__table__
    with engine.begin() as conn:
        if create and postgresql:
            conn.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
        for index in table.indexes:
            (index.create if create else index.drop)(conn, checkfirst=True)


def load(engine: Engine, maker: SiteMaker) -> None:
    """Bulk-load the maker's rows (SQLite: executemany, PostgreSQL: COPY)."""
    _secondary_indexes(engine, create=False)
    if engine.dialect.name == "postgresql":
        _load_postgresql(engine, maker)
    else:
        _load_sqlite(engine, maker)
    _secondary_indexes(engine, create=True)
    # VACUUM sets PostgreSQL's visibility map, which index-only scans need
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE" if engine.dialect.name == "postgresql"
                          else "ANALYZE"))


def _sqlite_time(value: Any) -> Any:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(value, datetime) else value


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    return (f"INSERT INTO {table} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)})")


def _load_sqlite(engine: Engine, maker: SiteMaker) -> None:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for batch in maker.batches():
            for table, columns, rows in (("report", REPORT_COLUMNS, batch.reports),
                                         ("proberun", RUN_COLUMNS, batch.runs),
                                         ("measurement", MEASUREMENT_COLUMNS,
                                          batch.measurements)):
                cur.executemany(_insert_sql(table, columns),
                                [tuple(map(_sqlite_time, r)) for r in rows])
        raw.commit()
    finally:
        raw.close()


VALUE_RUN_COLUMNS = (*RUN_VALUE_SHARED, *VALUE_ARRAYS)


def per_run(measurements: list[Row]) -> Iterator[Row]:
    """PostgreSQL's rows of ``measurement_run`` (:mod:`collector.measurement_runs`): each
    run's consecutive :data:`MEASUREMENT_COLUMNS` rows as one, its values as arrays."""
    shared = [MEASUREMENT_COLUMNS.index(c) for c in RUN_VALUE_SHARED[1:-1]]  # not shape
    own = [MEASUREMENT_COLUMNS.index(c) for c in VALUE_ARRAYS]
    value = MEASUREMENT_COLUMNS.index("value")
    metric, stat, unit = (MEASUREMENT_COLUMNS.index(c) for c in ("metric", "stat", "unit"))
    for run_id, rows in groupby(measurements, key=lambda m: m[2]):
        values = list(rows)
        shape = shape_of(*(tuple(v[i] for v in values) for i in (metric, stat, unit)))
        yield (run_id, *(values[0][i] for i in shared), shape,
               *([_float(v[i]) if i == value else v[i] for v in values] for i in own))


def _float(value: Any) -> float | None:
    return None if value is None else float(value)  # an int among floats: one array type


def _load_postgresql(engine: Engine, maker: SiteMaker) -> None:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        # no foreign-key triggers during the copy (the generator makes consistent rows)
        cur.execute("SET LOCAL session_replication_role = replica")  # not the pool's
        for batch in maker.batches():
            for table, columns, rows in (("report", REPORT_COLUMNS, batch.reports),
                                         ("proberun", RUN_COLUMNS, batch.runs),
                                         ("measurement_run", VALUE_RUN_COLUMNS,
                                          list(per_run(batch.measurements)))):
                with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for r in rows:
                        copy.write_row(r)
        for table in ("report", "proberun"):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))")
        cur.execute(REBUILD_KEYS)
        raw.commit()
    finally:
        raw.close()
