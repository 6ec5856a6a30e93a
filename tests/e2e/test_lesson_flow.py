"""A lesson with real processes: timetable, supervisor, a teacher's flag, the room page, fleet.

One uvicorn collector on loopback, two agents enrolled into the same room, each run as a
user runs them (``classprobe agent run``, ``classprobe flag``, ``classprobe collector ...``):

1. the site's timetable is set from a TOML file whose one period covers "now" (UTC);
2. agent A's supervisor gets it through the control poll and its scheduled report is
   tagged with the period, in lesson;
3. ``classprobe flag --note "video froze"`` on A stores the flag and makes a burst job;
4. agent B's supervisor picks the burst up from the control endpoint and uploads a report
   with trigger ``burst`` and the burst's job id;
5. the room's no-login page takes one flag and refuses a second one within 10 minutes;
6. the fleet lists both agents live.

There is no knob for the control poll interval (the supervisor follows the collector's
``poll_interval_s``, 60 s), but a supervisor polls once as soon as it starts: B is
started after the flag, so the poll that brings it the burst is its start-up poll.
Both supervisors run with ``--cycles 1`` (stop after one worker run), so each run is
one report whose trigger the test knows.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.config import load_config, save_config, spool_path
from agent.state import load_state, state_path
from tests.e2e.conftest import ROOT, Collector, cli

pytestmark = pytest.mark.slow

SITE, ROOM = "lesson-school", "Room 12"
PERIOD = "Now"
NOTE = "video froze"
RUN_TIMEOUT_S = 45.0
LESSON_HALF = timedelta(minutes=30)
MIDNIGHT_MARGIN = timedelta(minutes=1)


def period_around(now: datetime) -> tuple[str, str]:
    """Start and end (``HH:MM:SS`` UTC) of a period of today around ``now``, at least
    ``MIDNIGHT_MARGIN`` long after it (the caller waits out the day's last minute)."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    start = max(midnight, now - LESSON_HALF)
    end = min(midnight + timedelta(days=1) - timedelta(seconds=1), now + LESSON_HALF)
    assert end - now >= MIDNIGHT_MARGIN - timedelta(seconds=1), (now, end)
    return f"{start:%H:%M:%S}", f"{end:%H:%M:%S}"


def timetable_toml() -> str:
    now = datetime.now(UTC)
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    if tomorrow - now < MIDNIGHT_MARGIN:  # a period cannot run past 23:59:59
        time.sleep((tomorrow - now).total_seconds() + 1)
        now = datetime.now(UTC)
    start, end = period_around(now)
    return "\n".join([
        'timezone = "UTC"',
        'weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]',
        "[[periods]]",
        f'name = "{PERIOD}"',
        f'start = "{start}"',
        f'end = "{end}"', ""])


def enrol(collector: Collector, token: str, config: Path, passive_s: float) -> str:
    cli("agent", "enroll", "--collector", collector.url, "--token", token, "--room", ROOM,
        "--config", str(config))
    cfg = load_config(config, environ={})
    cfg.passive_interval_s = passive_s
    cfg.interval_s = cfg.path_interval_s = cfg.bandwidth_interval_s = 1e6
    cfg.inventory_interval_s = 1e6
    cfg.icmp = False  # the burst's latency probe: TCP/HTTP to the collector is enough here
    cfg.latency_samples = 3
    save_config(config, cfg)
    return cfg.agent_id


def run_supervisor(config: Path) -> str:
    """``classprobe agent run --cycles 1`` to its end (it must exit 0); its log."""
    log = config.parent / "agent-run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "classprobe.cli", "agent", "run", "--cycles", "1",
             "--config", str(config)], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        code = proc.wait(RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise AssertionError(f"agent run did not finish in {RUN_TIMEOUT_S} s:\n"
                             f"{log.read_text(errors='replace')}") from None
    text = log.read_text(errors="replace")
    assert code == 0, text
    return text


def rows_of(collector: Collector, agent_id: str) -> list[dict[str, Any]]:
    return [r for r in collector.export(SITE) if r["agent"] == agent_id]


def post_form(url: str, note: str) -> tuple[int, str]:
    body = urllib.parse.urlencode({"note": note}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def flags(collector: Collector) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = json.loads(
        cli("collector", "flags", "--site", SITE, "--json", "--db", collector.db).stdout)
    return listed


def test_lesson_timetable_flag_burst_room_page_and_fleet(collector: Collector,
                                                         tmp_path: Path) -> None:
    token = collector.create_site(SITE)
    config_a, config_b = tmp_path / "pc-a" / "agent.toml", tmp_path / "pc-b" / "agent.toml"
    agent_a = enrol(collector, token, config_a, passive_s=2.0)  # first sample within 2 s
    agent_b = enrol(collector, token, config_b, passive_s=1e6)  # only jobs

    # 1. the timetable, from a TOML file, through the CLI
    toml = tmp_path / "timetable.toml"
    toml.write_text(timetable_toml())
    cli("collector", "timetable", "set", "--site", SITE, str(toml), "--db", collector.db)
    stored = json.loads(cli("collector", "timetable", "show", "--site", SITE, "--json",
                            "--db", collector.db).stdout)
    assert [p["name"] for p in stored["periods"]] == [PERIOD]

    # 2. A's supervisor polls (gets the timetable) and runs its scheduled passive sample
    run_supervisor(config_a)
    control = load_state(state_path(spool_path(load_config(config_a, environ={}), config_a))
                         ).parsed_control()
    assert control is not None and control.timetable == stored
    assert (control.site, control.room) == (SITE, ROOM)
    scheduled = rows_of(collector, agent_a)
    assert scheduled, "agent A's scheduled report has no measurements"
    assert {(r["trigger"], r["job_id"], r["period"], r["in_lesson"]) for r in scheduled} \
        == {("scheduled", None, PERIOD, True)}

    # 3. a teacher flags the lesson on A: stored, with a burst job for the room
    flagged = json.loads(cli("flag", "--note", NOTE, "--config", str(config_a),
                             "--json").stdout)
    assert flagged["flag_error"] is None and flagged["flag_id"], flagged
    burst = flagged["burst_job_id"]
    assert burst and flagged["job_id"] == burst and flagged["trigger"] == "burst"
    assert flagged["upload"]["ok"] is True, flagged
    [stored_flag] = flags(collector)
    assert (stored_flag["flag_id"], stored_flag["room"], stored_flag["source"],
            stored_flag["note"], stored_flag["burst_job_id"]) \
        == (flagged["flag_id"], ROOM, "agent", NOTE, burst)

    # 4. B's supervisor gets the burst from the control endpoint and measures at once
    log_b = run_supervisor(config_b)
    bursts_b = rows_of(collector, agent_b)
    assert bursts_b, f"agent B uploaded no measurements:\n{log_b}"
    assert {(r["trigger"], r["job_id"]) for r in bursts_b} == {("burst", burst)}, log_b
    assert {r["probe"] for r in bursts_b} >= {"load", "latency"}
    assert {(r["period"], r["in_lesson"]) for r in bursts_b} == {(PERIOD, True)}
    assert len({r["report_id"] for r in bursts_b}) == 1  # one burst run, one report

    # 5. the room's no-login page: one flag is taken, a second within 10 min is refused
    link = cli("collector", "room-link", "--site", SITE, "--room", ROOM, "--base-url",
               collector.url, "--db", collector.db).stdout.strip()
    assert link.startswith(f"{collector.url}/r/")
    with urllib.request.urlopen(link, timeout=10) as page:
        assert page.status == 200 and ROOM in page.read().decode()
    status, text = post_form(link, "projector link down")
    assert status == 201, text
    status, text = post_form(link, "still down")
    assert status == 429 and "already reported" in text, (status, text)
    web = [f for f in flags(collector) if f["source"] == "web"]
    assert [(f["note"], f["burst_job_id"]) for f in web] == [("projector link down", burst)]

    # 6. the fleet: both agents live, their clocks agree with the collector's
    fleet = json.loads(cli("collector", "agents", "--site", SITE, "--json", "--db",
                           collector.db).stdout)
    by_id = {a["agent_id"]: a for a in fleet}
    assert set(by_id) == {agent_a, agent_b}
    for agent in by_id.values():
        assert (agent["state"], agent["room"], agent["warnings"]) == ("live", ROOM, []), agent
        assert agent["agent_version"], agent
        assert agent["clock_offset_s"] is not None and abs(agent["clock_offset_s"]) < 1.0
