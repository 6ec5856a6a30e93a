"""Every Grafana dashboard loads, and each of its SQL queries runs on a real PostgreSQL.

The structure tests need nothing. The query tests fill a collector on a throwaway
PostgreSQL through its own API (:mod:`tests.dashboards.school_day`), create the read-only
role of ``dashboards/grafana-reader.sql``, expand each query as Grafana would
(:mod:`tests.dashboards.grafana_sql`) and run it as that role. They skip, saying why,
where PostgreSQL is not installed.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url
from sqlmodel import Session

from collector.app import create_app
from collector.models import utcnow
from collector.services import fleet
from collector.services.site_report import readiness_report
from collector.settings import Settings
from tests.dashboards.grafana_sql import TimeRange, Variable, expand
from tests.dashboards.school_day import (
    DAY,
    HILL,
    LESSON_SLOTS,
    PERIODS,
    SLOTS,
    ST_MARYS,
    SchoolDay,
    load_school_day,
    measurements_per_slot,
    period_at,
)
from tests.pg.server import PgServer

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards"
DS = {"type": "grafana-postgresql-datasource", "uid": "classprobe-pg"}
READER = "classprobe_grafana"
PANEL_TYPES = {"timeseries", "table", "bargauge", "state-timeline", "piechart", "stat"}
BOARDS = {p.name: json.loads(p.read_text(encoding="utf-8"))
          for p in sorted(DASHBOARDS.glob("*.json"))}
SERIES = ("time", "metric", "value")
EXPECTED_COLUMNS: dict[tuple[str, str], tuple[str, ...]] = {
    ("classprobe-site-overview", "Verdicts by status"): ("status", "profiles"),
    ("classprobe-site-overview", "Verdict per profile"): ("profile", "status", "since"),
    ("classprobe-site-overview", "Agents per state"): ("state", "agents"),
    ("classprobe-site-overview", "Ingest: reports and measurements received"):
        ("time", "reports", "measurements"),
    ("classprobe-site-overview", "Measurements per room"): SERIES,
    ("classprobe-site-overview", "Rooms"):
        ("room", "agents", "measurements", "last_measurement", "flags"),
    ("classprobe-site-overview", "Probe runs by status"): ("probe", "ok", "failed", "skipped"),
    ("classprobe-site-overview", "Problems flagged in rooms"): ("time", "room", "source", "note"),
    ("classprobe-room-day", "Lesson periods"): ("time", "period"),
    ("classprobe-room-day", "Latency: median per run (ms)"): SERIES,
    ("classprobe-room-day", "Jitter (ms) and loss (%)"): SERIES,
    ("classprobe-room-day", "Bandwidth (Mbps)"): SERIES,
    ("classprobe-room-day", "Wi-Fi load"): SERIES,
    ("classprobe-room-day", "Wi-Fi signal (dBm)"): SERIES,
    ("classprobe-room-day", "Lessons against out of lessons"):
        ("metric", "window", "samples", "median", "p95"),
    ("classprobe-room-day", "Devices in the room"):
        ("device", "version", "last_seen", "state", "measurements"),
    ("classprobe-room-day", "annotation: Lesson periods"): ("time", "timeend", "text", "tags"),
    ("classprobe-fleet", "Agents per site and state"):
        ("site", "live", "at-risk", "silent", "revoked", "total"),
    ("classprobe-fleet", "Agent versions"): ("version", "agents"),
    ("classprobe-fleet", "Reports received per site"): SERIES,
    ("classprobe-fleet", "Reports dropped by full spools"): SERIES,
    ("classprobe-fleet", "Probe failures"): ("probe", "reason", "runs", "last_seen"),
    ("classprobe-fleet", "Agents"): ("site", "room", "agent", "version", "last_seen", "state",
                                     "clock_offset_s", "spool_dropped_24h"),
}
VARIABLES = {
    "classprobe-site-overview": {"site": Variable(ST_MARYS)},
    "classprobe-room-day": {"site": Variable(ST_MARYS), "room": Variable("Room 12")},
    "classprobe-fleet": {"site": Variable([HILL, ST_MARYS], multi=True)},
}


@dataclass(frozen=True)
class Query:
    board: str
    title: str
    fmt: str
    sql: str
    interval: str

    @property
    def key(self) -> tuple[str, str]:
        return self.board, self.title


def queries(board: dict[str, Any]) -> list[Query]:
    out = [Query(board["uid"], panel["title"], t["format"], t["rawSql"],
                 panel.get("interval", "5m"))
           for panel in board["panels"] for t in panel["targets"]]
    out += [Query(board["uid"], f"annotation: {a['name']}", a["target"]["format"],
                  a["target"]["rawSql"], "5m")
            for a in board["annotations"]["list"] if "target" in a]
    return out


ALL_QUERIES = [q for board in BOARDS.values() for q in queries(board)]


# --- structure (no database) -----------------------------------------------------------


def test_the_three_dashboards_exist_and_every_query_has_expectations() -> None:
    assert sorted(b["uid"] for b in BOARDS.values()) == [
        "classprobe-fleet", "classprobe-room-day", "classprobe-site-overview"]
    assert sorted(q.key for q in ALL_QUERIES) == sorted(EXPECTED_COLUMNS)


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_dashboard_has_what_grafana_needs(name: str) -> None:
    board = BOARDS[name]
    assert re.fullmatch(r"[a-z0-9-]{1,40}", board["uid"]) and board["title"]
    assert isinstance(board["schemaVersion"], int) and board["time"]["from"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)) > 0
    for panel in board["panels"]:
        where = f"{name}: panel {panel['title']!r}"
        assert panel["type"] in PANEL_TYPES, where
        assert panel["datasource"] == DS, where
        grid = panel["gridPos"]
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24, where
        assert panel["targets"], where
        for t in panel["targets"]:
            assert t["datasource"] == DS and t["rawQuery"] is True, where
            assert t["editorMode"] == "code" and t["refId"] and t["rawSql"].strip(), where
            assert t["format"] in ("table", "time_series"), where
            if t["format"] == "time_series":
                assert "$__timeGroupAlias(" in t["rawSql"], where
    for variable in board["templating"]["list"]:
        assert variable["type"] == "query" and variable["datasource"] == DS
        assert variable["query"] == variable["definition"]
    for note in board["annotations"]["list"]:
        assert note.get("builtIn") == 1 or note["target"]["datasource"] == DS


FLEET_CASE = re.compile(r"WHEN \w+\.last_seen\s*(\S+)\s*now\(\)\s*-\s*interval\s*"
                        r"'(\d+) (\w+?)s?'\s*THEN '([\w-]+)'")


def test_agent_states_use_the_fleet_thresholds() -> None:
    """The dashboards restate collector/services/fleet.py's live and at-risk windows in
    SQL (an agent seen within the window: ``age <= window``); every query that names the
    states must say the same as the API and the pages."""
    windows = {"live": fleet.LIVE_WITHIN, "at-risk": fleet.AT_RISK_WITHIN}
    stating = [q for q in ALL_QUERIES if "'live'" in q.sql]
    assert len(stating) == 4  # the agent-state queries of the three dashboards
    for q in stating:
        cases = {state: (op, timedelta(**{f"{unit}s": int(amount)}))
                 for op, amount, unit, state in FLEET_CASE.findall(q.sql)}
        assert cases == {state: (">=", window) for state, window in windows.items()}, q.key


def test_template_variables_are_always_sql_quoted() -> None:
    """Site and room names may hold an apostrophe (St Mary's): every use of a variable is
    ``${name:sqlstring}``, which quotes and escapes it, never a bare ``$name``."""
    for board in BOARDS.values():
        names = [v["name"] for v in board["templating"]["list"]]
        texts = [q.sql for q in queries(board)] + \
                [v["query"] for v in board["templating"]["list"]]
        for text in texts:
            for name in names:
                uses = re.findall(rf"\$\{{{name}(?::\w+)?\}}|\${name}\b", text)
                assert all(use == f"${{{name}:sqlstring}}" for use in uses), (name, text)


def test_provisioning_points_at_the_dashboards_datasource() -> None:
    source = (DASHBOARDS / "provisioning/datasources/classprobe.yaml").read_text()
    assert re.search(r"^\s+uid: classprobe-pg$", source, re.M)
    assert re.search(r"^\s+type: grafana-postgresql-datasource$", source, re.M)
    for key, var in (("url", "HOST"), ("user", "USER"), ("database", "NAME"),
                     ("password", "PASSWORD"), ("sslmode", "SSLMODE")):
        assert re.search(rf"^\s+{key}: \$\{{CLASSPROBE_GRAFANA_DB_{var}\}}$", source, re.M), key
    boards = (DASHBOARDS / "provisioning/dashboards/classprobe.yaml").read_text()
    assert re.search(r"^apiVersion: 1$", boards, re.M)
    assert re.search(r"^\s+type: file$", boards, re.M)
    assert re.search(r"^\s+path: /\S+$", boards, re.M)


def test_readme_shows_the_grants_of_the_reader_script() -> None:
    def flat(text: str) -> str:
        return " ".join(text.split())

    script = (DASHBOARDS / "grafana-reader.sql").read_text()
    statements = [flat(s) for s in re.findall(r"^(?:GRANT|ALTER ROLE)[^;]*;", script, re.M)]
    assert len(statements) == 7
    readme = flat((DASHBOARDS / "README.md").read_text())
    assert [s for s in statements if s not in readme] == []


# --- the queries on PostgreSQL -----------------------------------------------------------


@dataclass
class Grafana:
    """Runs expanded queries as the read-only role, as Grafana's data source would."""

    conn: Any  # psycopg.Connection
    time_range: TimeRange
    day: SchoolDay
    client: TestClient

    def run(self, sql: str, variables: dict[str, Variable],
            interval: str = "5m") -> tuple[list[str], list[tuple[Any, ...]]]:
        cur = self.conn.execute(expand(sql, variables, self.time_range, interval))
        return [d.name for d in cur.description], cur.fetchall()

    def panel(self, board: str, title: str) -> list[tuple[Any, ...]]:
        query = next(q for q in ALL_QUERIES if q.key == (board, title))
        return self.run(query.sql, VARIABLES[board], query.interval)[1]


@pytest.fixture(scope="module")
def grafana(pg_server: PgServer) -> Iterator[Grafana]:
    import psycopg

    url = pg_server.create_database("grafana_dashboards")
    client = TestClient(create_app(Settings(database_url=url)))  # no lifespan: no loop
    day = load_school_day(client)
    parts = make_url(url)
    owner = f"host={parts.host} port={parts.port} dbname={parts.database} user=postgres"
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute((DASHBOARDS / "grafana-reader.sql").read_text())
    reader = owner.replace("user=postgres", f"user={READER}")
    with psycopg.connect(reader, autocommit=True) as conn:
        yield Grafana(conn, TimeRange(DAY, utcnow() + timedelta(hours=1)), day, client)


def test_variable_queries_list_sites_and_their_rooms(grafana: Grafana) -> None:
    board = BOARDS["room-day.json"]
    site, room = (v["query"] for v in board["templating"]["list"])
    assert grafana.run(site, {})[1] == [(HILL,), (ST_MARYS,)]
    assert grafana.run(room, {"site": Variable(ST_MARYS)})[1] == [("Room 12",), ("Room 7",)]


@pytest.mark.parametrize("query", ALL_QUERIES, ids=lambda q: f"{q.board}/{q.title}")
def test_query_runs_and_returns_its_columns(grafana: Grafana, query: Query) -> None:
    columns, rows = grafana.run(query.sql, VARIABLES[query.board], query.interval)
    assert tuple(columns) == EXPECTED_COLUMNS[query.key]
    assert rows, f"{query.key} returned no rows"
    if query.fmt == "time_series":
        times = [float(r[0]) for r in rows]
        assert times == sorted(times)


def epoch(when: datetime) -> float:
    return when.timestamp()


def test_agents_per_state_match_the_fleet_rules(grafana: Grafana) -> None:
    assert grafana.panel("classprobe-site-overview", "Agents per state") == [
        ("live", 3), ("at-risk", 1), ("silent", 1), ("revoked", 1)]
    assert grafana.panel("classprobe-fleet", "Agents per site and state") == [
        (HILL, 1, 0, 0, 0, 1), (ST_MARYS, 3, 1, 1, 1, 6)]
    states = {row[2]: row[5] for row in grafana.panel("classprobe-fleet", "Agents")}
    day = grafana.day
    assert (states[day.at_risk.agent_id], states[day.silent.agent_id],
            states[day.revoked.agent_id], states[day.reporting[3].agent_id]) == (
        "at-risk", "silent", "revoked", "live")


def test_verdict_counts_are_the_readiness_verdicts(grafana: Grafana) -> None:
    engine = grafana.client.app.state.engine  # type: ignore[attr-defined]
    with Session(engine) as session:
        report = readiness_report(session, ST_MARYS, None, None, utcnow())
    counts = Counter(v.status for v in report.verdicts)
    assert grafana.panel("classprobe-site-overview", "Verdicts by status") == [
        (s, counts[s]) for s in ("pass", "warn", "fail", "unknown")]
    by_profile = {row[0]: row[1] for row in
                  grafana.panel("classprobe-site-overview", "Verdict per profile")}
    assert by_profile == {v.profile.id: v.status for v in report.verdicts}


def test_ingest_counts_every_report_and_measurement(grafana: Grafana) -> None:
    rows = grafana.panel("classprobe-site-overview", "Ingest: reports and measurements received")
    per_device = sum(measurements_per_slot(i) for i in range(len(SLOTS)))
    assert (sum(r[1] for r in rows), sum(r[2] for r in rows)) == (
        3 * len(SLOTS), 3 * per_device)


def test_room_day_shows_periods_latency_and_lessons(grafana: Grafana) -> None:
    assert grafana.panel("classprobe-room-day", "Lesson periods") == [
        (epoch(t), period_at(t) or "between lessons") for t in SLOTS]
    latency = grafana.panel("classprobe-room-day", "Latency: median per run (ms)")
    assert [(float(t), m, v) for t, m, v in latency] == [  # Room 12: A +0 ms, B +6 ms
        (epoch(t), "tcp_connect_ms", 43.0 if period_at(t) else 23.0) for t in SLOTS]
    split = grafana.panel("classprobe-room-day", "Lessons against out of lessons")
    tcp = [row for row in split if row[0] == "tcp_connect_ms"]
    assert tcp == [("tcp_connect_ms", "in lessons", 2 * 15, 43.0, 46.0),
                   ("tcp_connect_ms", "out of lessons", 2 * 10, 23.0, 26.0)]
    devices = grafana.panel("classprobe-room-day", "Devices in the room")
    assert [(d[0], d[3], d[4]) for d in devices] == [
        (dev.agent_id[:8], "live", sum(measurements_per_slot(i) for i in range(len(SLOTS))))
        for dev in grafana.day.reporting[:2]]


def period_span(name: str) -> tuple[datetime, datetime]:
    """First slot of the period to its last measurement (Wi-Fi runs 10 s after the slot,
    bandwidth, every third slot, 20 s after)."""
    slots = [i for i, t in enumerate(SLOTS) if period_at(t) == name]
    last = slots[-1]
    return SLOTS[slots[0]], SLOTS[last] + timedelta(seconds=20 if last % 3 == 0 else 10)


def test_lesson_annotations_span_each_period(grafana: Grafana) -> None:
    notes = grafana.panel("classprobe-room-day", "annotation: Lesson periods")
    assert notes == [(*period_span(name), name, "lesson") for name, _, _ in PERIODS]
    assert len(LESSON_SLOTS) == 15


def test_reader_role_cannot_see_secrets_or_write(grafana: Grafana) -> None:
    import psycopg

    for sql in ("SELECT credential_hash FROM agent", "SELECT token_hash FROM site",
                "SELECT flag_key FROM room", "SELECT * FROM adminkey"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            grafana.conn.execute(sql)
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        grafana.conn.execute("DELETE FROM measurement_run")
    grafana.conn.execute("SET default_transaction_read_only = off")
    try:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            grafana.conn.execute("DELETE FROM measurement_run")
    finally:
        grafana.conn.execute("RESET default_transaction_read_only")
