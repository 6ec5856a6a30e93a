"""PostgreSQL's measurements per probe run (revision 0008): the migration carries every
row over and back, the view shows the rows as the table did, and a row written to the
view lands in its run."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from agent.wire import (
    MAX_MEASUREMENTS_PER_RESULT,
    MAX_PROBE_CHARS,
    MAX_TARGET_CHARS,
    ProbeResult,
    Report,
    ReportBatch,
    semantic_errors,
    to_jsonable,
)
from agent.wire import Measurement as WireMeasurement
from benchmarks.ingest_cost import _agents
from benchmarks.load_shape import AGENT_MIX, BatchStamp
from collector.db import make_engine
from collector.measurement_runs import shape_of
from collector.migrations.run import alembic_config
from collector.models import Measurement, Site
from collector.services import report_provenance as report_provenance_module
from collector.services import run_values
from collector.services.ingest import store_batch
from collector.services.report_provenance import report_provenance
from collector.wire_validation import parse_batch

COLUMNS = ("report_pk", "probe_run_id", "agent_id", "site_id", "room_id", "time", "probe",
           "target", "metric", "value", "text", "unit", "method", "stat", "samples", "period",
           "in_lesson")
T0 = datetime(2026, 11, 27, 9, 5, tzinfo=UTC)
ROWS = [  # two runs of one report, one of another; values, texts, NULLs and -0.0
    (1, 10, "a1", 1, 2, T0, "latency", "https://x.example/", "dns_ms", 12.5, None, "ms",
     "getaddrinfo", "p50", 5, "P1", True),
    (1, 10, "a1", 1, 2, T0, "latency", "https://x.example/", "dns_ms", 30.0, None, "ms",
     "getaddrinfo", "p95", 5, "P1", True),
    (1, 11, "a1", 1, 2, T0, "wifi", "wlan0", "ssid_hash", None, "9f9f", "", "hmac", "value",
     1, "P1", True),
    (1, 11, "a1", 1, 2, T0, "wifi", "wlan0", "rssi_dbm", -0.0, None, "dBm", "iw", "value", 1,
     "P1", True),
    (2, 12, "a2", 1, 3, T0, "load", None, "cpu_busy_pct", 23.5, None, "%", "psutil", "value",
     1, None, None),
]
SELECT = text(f"SELECT {', '.join(COLUMNS)} FROM measurement ORDER BY id")


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


def migrate(engine: Engine, action: str, revision: str) -> None:
    with engine.begin() as conn:
        getattr(command, action)(alembic_config(connection=conn), revision)


def rows(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(SELECT)]


def test_every_row_goes_to_its_run_and_comes_back(engine: Engine) -> None:
    migrate(engine, "upgrade", "0007")
    marks = ", ".join(f":{c}" for c in COLUMNS)
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO measurement ({', '.join(COLUMNS)}) VALUES ({marks})"),
                     [dict(zip(COLUMNS, row, strict=True)) for row in ROWS])
    assert rows(engine) == ROWS
    migrate(engine, "upgrade", "0008")
    assert rows(engine) == ROWS
    with engine.connect() as conn:
        runs = conn.execute(text(
            "SELECT id, cardinality(metric), metric, value FROM measurement_run ORDER BY id"
        )).all()
        ids = conn.execute(text("SELECT id FROM measurement ORDER BY id")).scalars().all()
        sign = conn.execute(text(
            "SELECT value[2] FROM measurement_run WHERE id = 11")).scalar_one()
    assert [tuple(r) for r in runs] == [
        (10, 2, ["dns_ms", "dns_ms"], [12.5, 30.0]),
        (11, 2, ["ssid_hash", "rssi_dbm"], [None, -0.0]),
        (12, 1, ["cpu_busy_pct"], [23.5])]
    assert str(sign) == "-0.0"  # bit for bit
    with engine.connect() as conn:
        keys = conn.execute(text("SELECT probe, target, metric FROM measurement_key"
                                 " ORDER BY probe")).all()
    assert [tuple(k) for k in keys] == [
        ("latency", "https://x.example/", ["dns_ms", "dns_ms"]), ("load", None, ["cpu_busy_pct"]),
        ("wifi", "wlan0", ["ssid_hash", "rssi_dbm"])]
    assert ids == [10 << 16 | 1, 10 << 16 | 2, 11 << 16 | 1, 11 << 16 | 2, 12 << 16 | 1]
    migrate(engine, "downgrade", "0007")
    assert rows(engine) == ROWS
    with engine.connect() as conn:
        sign = conn.execute(text("SELECT value FROM measurement WHERE metric = 'rssi_dbm'")
                            ).scalar_one()
    assert str(sign) == "-0.0"  # and back
    with engine.connect() as conn:
        assert conn.execute(text("SELECT to_regclass('measurement_run')")).scalar() is None


def test_a_row_written_to_the_view_joins_its_run(engine: Engine) -> None:
    migrate(engine, "upgrade", "head")
    with Session(engine) as session:
        values = dict(zip(COLUMNS, ROWS[0], strict=True))
        first = Measurement(**values)
        second = Measurement(**values | {"stat": "p95", "value": 30.0})
        other = Measurement(**dict(zip(COLUMNS, ROWS[4], strict=True)))
        session.add_all([first, second, other])
        session.commit()
        assert (first.id, second.id, other.id) == (10 << 16 | 1, 10 << 16 | 2, 12 << 16 | 1)
        found = session.exec(select(Measurement).where(Measurement.probe_run_id == 10)
                             .order_by(Measurement.id)).all()
        assert [(m.stat, m.value, m.time) for m in found] == [("p50", 12.5, T0),
                                                              ("p95", 30.0, T0)]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM measurement_run")).scalar_one() == 2


@pytest.mark.parametrize(("metric", "stat", "unit"), [
    (("dns_ms", "dns_ms"), ("p50", "p95"), ("ms", "ms")),
    (("ssid_hash", "rssi_dbm"), ("value", "value"), ("", "dBm")),
    (("é 東",), ("value",), ("%",)),
])
def test_the_database_and_python_agree_on_a_shape(engine: Engine, metric: tuple[str, ...],
                                                  stat: tuple[str, ...],
                                                  unit: tuple[str, ...]) -> None:
    migrate(engine, "upgrade", "head")
    with engine.connect() as conn:
        found = conn.execute(text("SELECT measurement_shape(:m, :s, :u)"),
                             {"m": list(metric), "s": list(stat), "u": list(unit)}).scalar_one()
    assert found == shape_of(metric, stat, unit)
    assert shape_of(metric, stat, unit) != shape_of(stat, metric, unit)  # order matters


def test_ingest_lists_each_probe_targets_shapes(engine: Engine) -> None:
    migrate(engine, "upgrade", "head")
    who = _agents(engine)[0]
    stamp = BatchStamp.build(AGENT_MIX, 6, at=T0)
    for _ in range(2):  # the second upload's keys are there already (ON CONFLICT)
        store_batch(engine, who, parse_batch(stamp.body(who.agent_id)), T0)
    with engine.connect() as conn:
        keys = conn.execute(text(
            "SELECT probe, target, shape, metric, stat, unit FROM measurement_key")).all()
        runs = conn.execute(text(
            "SELECT DISTINCT probe, target, shape, metric, stat, unit FROM measurement_run"
        )).all()
    assert sorted(map(tuple, keys), key=repr) == sorted(map(tuple, runs), key=repr)
    assert len(keys) == 12  # 6 passive probes and 3 latency + 3 ICMP targets
    for _probe, _target, shape, metric, stat, unit in keys:
        assert shape == shape_of(tuple(metric), tuple(stat), tuple(unit))


def test_a_row_that_contradicts_its_run_is_refused(engine: Engine) -> None:
    migrate(engine, "upgrade", "head")
    values = dict(zip(COLUMNS, ROWS[0], strict=True))
    with Session(engine) as session:
        session.add(Measurement(**values))
        session.commit()
    with Session(engine) as session:
        session.add(Measurement(**values | {"agent_id": "someone-else"}))
        with pytest.raises(IntegrityError, match="differs from its run"):
            session.commit()
    assert len(rows(engine)) == 1


def test_provenance_from_the_runs_is_the_views(engine: Engine,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    migrate(engine, "upgrade", "head")
    agents = _agents(engine)[:3]
    for k, who in enumerate(agents):
        stamp = BatchStamp.build(AGENT_MIX, 6 + k, at=T0 + timedelta(minutes=7 * k))
        store_batch(engine, who, parse_batch(stamp.body(who.agent_id)), T0)
    metrics = ["dns_ms", "jitter_ms", "rssi_dbm", "ssid_hash", "loss_pct", "no_such_metric"]
    windows = [(None, None), (T0 + timedelta(minutes=7), None), (None, T0 + timedelta(hours=1))]
    with Session(engine) as session:
        site = session.exec(select(Site)).one()
        from_runs = [report_provenance(session, site, metrics, *w) for w in windows]
        monkeypatch.setattr(report_provenance_module, "_uses_from_runs", lambda *_a: None)
        from_view = [report_provenance(session, site, metrics, *w) for w in windows]
    assert from_runs == from_view
    assert {u.metric for u in from_runs[0].methods} == set(metrics) - {"no_such_metric"}
    assert from_runs[1].methods != from_runs[0].methods  # the window counts


def test_the_largest_run_the_wire_allows_fits_the_readiness_index(engine: Engine) -> None:
    """PostgreSQL caps an index entry at 2,704 bytes; a run is one entry of the covering
    readiness index: 200 values under the longest probe name and target."""
    migrate(engine, "upgrade", "head")
    who = _agents(engine)[0]
    rng = random.Random(5)
    values = [WireMeasurement("dns_ms", "ms", "getaddrinfo", value=rng.uniform(1, 900),
                              stat="p50")  # random: no compression helps the entry fit
              for _ in range(MAX_MEASUREMENTS_PER_RESULT)]
    big = ProbeResult(probe="p" * MAX_PROBE_CHARS, status="ok", started_at=T0,
                      finished_at=T0, target="t" * MAX_TARGET_CHARS, measurements=values)
    body = to_jsonable(ReportBatch(reports=[Report(
        report_id=uuid.uuid4(), agent_id=who.agent_id, created_at=T0, agent_version="0.1.0",
        results=[big])]))
    assert semantic_errors(parse_batch(json.dumps(body).encode()).reports[0]) == []
    store_batch(engine, who, parse_batch(json.dumps(body).encode()), T0)
    with engine.connect() as conn:
        n, size = conn.execute(text(
            "SELECT cardinality(value), pg_column_size(value) FROM measurement_run")).one()
    assert n == MAX_MEASUREMENTS_PER_RESULT and size > 1_600


def test_keys_lost_underneath_a_running_collector_come_back_when_its_record_expires(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process skips the keys it has seen committed (most uploads send none). If the
    database loses them (a restore, a wipe), the next upload after the record expires
    (at most ``KNOWN_KEYS_FOR_S``) adds them back: keys name shapes, so every run of
    theirs is visible again."""
    migrate(engine, "upgrade", "head")
    who = _agents(engine)[0]
    stamp = BatchStamp.build(AGENT_MIX, 6, at=T0)

    def upload_then_count() -> int:
        store_batch(engine, who, parse_batch(stamp.body(who.agent_id)), T0)
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM measurement_key")).scalar_one())

    assert upload_then_count() == 12
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM measurement_key"))
    assert upload_then_count() == 0  # the record still says they are there
    monkeypatch.setattr(run_values, "KNOWN_KEYS_FOR_S", 0.0)
    assert upload_then_count() == 12
