"""A realistic school in a real collector, made the way people make it: the CLI and the API.

``Hillside School`` (timetable in Europe/London, P1 09:00-10:00 and P2 10:00-11:00) has
Room 12 (agents A and B) and Room 7 (agent C); ``Northfield Academy`` has Lab 1 (agent
D), there only so that a share link of Hillside can be seen not to show it. On Monday
2025-03-03 (London is on UTC that day) the agents upload, through ``POST
/api/v1/reports``, the same school day as ``tests/collector/test_ui_pages.py``'s data, so
the pages' numbers are the ones worked out by hand there:

- Teams TCP connect p50 every 10 minutes: A 100..140 ms in P1 (09:01..09:41) and 20..40
  in P2 (10:01..10:41); B 40..80 in P1 (09:02..) and 22..42 in P2 (10:02..); C one
  300 ms run at 09:03; D one 35 ms run at 09:04;
- A: Wi-Fi channel use 62.5 % with 31 stations at 09:01, a download test 87.5 Mbps
  (http-get, 4 streams) at 09:05 and its inventory (Test CPU 3000, 7.8 GB) at 09:00.

Then, now: a room test of Room 12 scheduled through ``POST .../rooms/Room 12/tests``
(an admin key made with ``collector admin-key create``), answered by A (30 Mbps) and B
(10 Mbps): 40 Mbps in total, complete. Campaigns ``Before`` (08:00-10:00) and ``After``
(10:00-12:00) on Teams, the timetable from a TOML file, an admin user made with
``collector admin-user create --password-stdin`` (a real process, password on stdin),
and share links: a valid one (Teams), a revoked one and an expired one.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from agent.wire import Measurement, ProbeResult, Report, ReportBatch, Trigger, to_jsonable
from tests.collector.test_timeline import wifi
from tests.e2e.conftest import ROOT, Collector

SITE, OTHER_SITE = "Hillside School", "Northfield Academy"
ROOM, ROOM_7, LAB = "Room 12", "Room 7", "Lab 1"
PROFILE = "microsoft-teams-media"
PROFILE_TITLE = "Microsoft Teams: calls and meetings (client to Microsoft edge)"
DAY = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday; London is on GMT (UTC+0) that day
ADMIN_USER, ADMIN_PASSWORD = "head-of-it", "correct horse battery staple"
ROOM_TEST_MBPS = {"A": 30.0, "B": 10.0}
TIMETABLE_TOML = """\
timezone = "Europe/London"
weekdays = ["mon", "tue", "wed", "thu", "fri"]

[[periods]]
name = "P1"
start = "09:00"
end = "10:00"

[[periods]]
name = "P2"
start = "10:00"
end = "11:00"
"""


@dataclass(frozen=True)
class School:
    """What the pages are checked against."""

    url: str
    db: str
    agents: dict[str, str]  # "A".."D" -> agent id
    credentials: dict[str, str]  # "A".."D" -> the agent's bearer credential
    room_test_id: str
    room_test_ran: datetime  # when A's and B's room-test downloads started
    share_url: str
    revoked_share_url: str
    expired_share_url: str
    flag_url: str
    public_key_pem: str
    profile_titles: dict[str, str]  # every profile the collector judges with: id -> title

    def poll(self) -> None:
        """Every agent polls the control endpoint, as a running agent does each minute:
        they stay live (seen in the last 3 minutes) however long the tests take."""
        with httpx.Client(base_url=self.url, timeout=20, trust_env=False) as http:
            for credential in self.credentials.values():
                resp = http.get("/api/v1/agent/control",
                                headers={"Authorization": f"Bearer {credential}"})
                assert resp.status_code == 200, resp.text

    def site_path(self, site: str = SITE) -> str:
        return "/sites/" + quote(site, safe="")

    def room_path(self, room: str = ROOM) -> str:
        return f"{self.site_path()}/rooms/{quote(room, safe='')}"


def at(h: int, m: int, s: int = 0) -> datetime:
    return DAY + timedelta(hours=h, minutes=m, seconds=s)


def run_cli(*argv: str) -> str:
    """``classprobe ARGV`` in this process (the same parser and handlers as the console
    script, without a new interpreter's start-up); its standard output."""
    from classprobe.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    assert code == 0, f"classprobe {' '.join(argv)} exited {code}:\n{out.getvalue()}\n" \
                      f"{err.getvalue()}"
    return out.getvalue()


def cli_process(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``classprobe ARGV`` as a new process, as a person runs it (exit code not checked)."""
    return subprocess.run([sys.executable, "-m", "classprobe.cli", *argv], cwd=ROOT,
                          input=stdin, capture_output=True, text=True, timeout=60)


def tcp(target: str, start: datetime, p50: float) -> ProbeResult:
    return ProbeResult(probe="latency", status="ok", target=target, started_at=start,
                       finished_at=start + timedelta(seconds=1), measurements=[
                           Measurement("tcp_connect_ms", "ms", "tcp", value=p50, stat="p50",
                                       samples=5),
                           Measurement("tcp_connect_ms", "ms", "tcp", value=p50 * 3,
                                       stat="max", samples=5)])


def teams(start: datetime, p50: float) -> ProbeResult:
    return tcp("teams.microsoft.com", start, p50)


def inventory(start: datetime) -> ProbeResult:
    return ProbeResult(probe="device", status="ok", started_at=start,
                       finished_at=start + timedelta(seconds=5), measurements=[
                           Measurement("cpu_model", "text", "platform", text="Test CPU 3000"),
                           Measurement("ram_total_gb", "GB", "psutil", value=7.8)])


def download(start: datetime, target: str, mbps: float, method: str,
             loaded_ms: tuple[float, float] | None = None) -> ProbeResult:
    """A download test; ``loaded_ms``: the latency under load it saw (p50, max)."""
    loaded = [] if loaded_ms is None else [
        Measurement("loaded_latency_ms", "ms", method, value=loaded_ms[0], stat="p50",
                    samples=10),
        Measurement("loaded_latency_ms", "ms", method, value=loaded_ms[1], stat="max",
                    samples=10)]
    return ProbeResult(probe="bandwidth", status="ok", target=target, started_at=start,
                       finished_at=start + timedelta(seconds=10), measurements=[
                           Measurement("download_mbps", "Mbps", method, value=mbps),
                           *loaded])


class Api:
    """The collector's HTTP API as agents and scripts use it (loopback only)."""

    def __init__(self, url: str, admin_key: str) -> None:
        assert url.startswith("http://127.0.0.1:"), url
        self.http = httpx.Client(base_url=url, timeout=20, trust_env=False)
        self.admin = {"Authorization": f"Bearer {admin_key}"}

    def enrol(self, token: str, room: str) -> tuple[str, str]:
        resp = self.http.post("/api/v1/enrol", json={"token": token, "room": room,
                                                     "agent_version": "0.1.0"})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        return body["agent_id"], body["credential"]

    def upload(self, agent: tuple[str, str], results: list[ProbeResult], *,
               trigger: Trigger = "scheduled", job_id: str | None = None) -> None:
        """One report per result (as a supervisor sends one per cycle), in one batch."""
        agent_id, credential = agent
        reports = [Report(report_id=uuid.uuid4(), agent_id=agent_id, created_at=r.finished_at,
                          agent_version="0.1.0", results=[r], trigger=trigger, job_id=job_id,
                          clock_offset_s=0.0 if job_id else None)
                   for r in results]
        body = json.dumps(to_jsonable(ReportBatch(reports=reports))).encode()
        resp = self.http.post("/api/v1/reports", content=body,
                              headers={"Authorization": f"Bearer {credential}",
                                       "Content-Type": "application/json"})
        assert resp.status_code == 200, resp.text
        assert len(resp.json()["accepted"]) == len(reports), resp.text

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """An administrator's POST (with the admin key)."""
        resp = self.http.post(path, json=body, headers=self.admin)
        assert resp.status_code == 201, resp.text
        data: dict[str, Any] = resp.json()
        return data

    def get_json(self, path: str) -> Any:
        """An administrator's read (with the admin key)."""
        resp = self.http.get(path, headers=self.admin)
        assert resp.status_code == 200, resp.text
        return resp.json()


def _school_day(api: Api, agents: dict[str, tuple[str, str]]) -> None:
    api.upload(agents["A"], [teams(at(9, 1 + 10 * i), v)
                             for i, v in enumerate([100, 110, 120, 130, 140])]
               + [teams(at(10, 1 + 10 * i), v) for i, v in enumerate([20, 25, 30, 35, 40])]
               + [wifi(at(9, 1), 62.5, 31.0), inventory(at(9, 0)),
                  download(at(9, 5), "http://127.0.0.1:9/dl", 87.5, "http-get, 4 streams")])
    api.upload(agents["B"], [teams(at(9, 2 + 10 * i), v)
                             for i, v in enumerate([40, 50, 60, 70, 80])]
               + [teams(at(10, 2 + 10 * i), v) for i, v in enumerate([22, 27, 32, 37, 42])])
    api.upload(agents["C"], [teams(at(9, 3), 300)])
    api.upload(agents["D"], [teams(at(9, 4), 35)])


def _room_test(api: Api, collector_url: str,
               agents: dict[str, tuple[str, str]]) -> tuple[str, datetime]:
    job = api.post(f"/api/v1/sites/{quote(SITE)}/rooms/{quote(ROOM)}/tests",
                   {"start_in_s": 0, "duration_s": 10, "directions": ["download"]})
    ran = max(datetime.fromisoformat(job["start_at"]), datetime.now(UTC))
    for name, mbps in ROOM_TEST_MBPS.items():
        run = download(ran, f"{collector_url}/speed/download", mbps, "http_get_4_streams",
                       loaded_ms=(45.0, 120.0))
        api.upload(agents[name], [run], trigger="job", job_id=job["job_id"])
    result = api.get_json(f"/api/v1/sites/{quote(SITE)}/room-tests/{job['job_id']}")
    assert result["status"] == "complete", result
    return job["job_id"], ran


def _share_links(db: str, url: str) -> tuple[str, str, str]:
    """A valid link, a revoked one (``share revoke``) and one that expired yesterday (made
    by the share service with a clock two days back: no command makes a dead link)."""
    from sqlmodel import Session

    from collector.db import make_engine
    from collector.services.share import create_share, share_url

    def create() -> dict[str, Any]:
        made: dict[str, Any] = json.loads(run_cli(
            "collector", "share", "create", "--site", SITE, "--profile", PROFILE,
            "--days", "14", "--base-url", url, "--json", "--db", db))
        return made

    valid = create()["url"]
    revoked = create()
    run_cli("collector", "share", "revoke", str(revoked["id"]), "--db", db)
    engine = make_engine(db)
    try:
        with Session(engine) as session:
            _link, token = create_share(session, SITE, PROFILE, None, 1, "browser tests",
                                        datetime.now(UTC) - timedelta(days=2))
    finally:
        engine.dispose()
    return valid, revoked["url"], share_url(url, token)


def build_school(collector: Collector, work: Path) -> School:
    db = collector.db
    key = json.loads(run_cli("collector", "admin-key", "create", "browser tests", "--json",
                             "--db", db))["key"]
    api = Api(collector.url, key)
    try:
        tokens = {site: json.loads(run_cli("collector", "create-site", site, "--json",
                                           "--db", db))["token"] for site in (SITE, OTHER_SITE)}
        timetable = work / "timetable.toml"
        timetable.write_text(TIMETABLE_TOML, encoding="utf-8")
        run_cli("collector", "timetable", "set", "--site", SITE, str(timetable), "--db", db)
        for name, start in (("Before", at(8, 0)), ("After", at(10, 0))):
            run_cli("campaign", "create", "--site", SITE, "--name", name, "--profile", PROFILE,
                    "--from", start.isoformat(), "--to", (start + timedelta(hours=2)).isoformat(),
                    "--db", db)
        agents = {"A": api.enrol(tokens[SITE], ROOM), "B": api.enrol(tokens[SITE], ROOM),
                  "C": api.enrol(tokens[SITE], ROOM_7), "D": api.enrol(tokens[OTHER_SITE], LAB)}
        _school_day(api, agents)
        job_id, ran = _room_test(api, collector.url, agents)
        made = cli_process("collector", "admin-user", "create", ADMIN_USER, "--password-stdin",
                           "--db", db, stdin=ADMIN_PASSWORD + "\n")
        assert made.returncode == 0, made.stderr
        valid, revoked, expired = _share_links(db, collector.url)
        flag_url = run_cli("collector", "room-link", "--site", SITE, "--room", ROOM,
                           "--base-url", collector.url, "--db", db).strip()
        key_file = api.http.get("/api/v1/signing-key", params={"format": "pem"})  # public
        assert key_file.status_code == 200, key_file.text
        titles = {p["id"]: p["title"] for p in api.get_json("/api/v1/profiles")}
    finally:
        api.http.close()
    return School(url=collector.url, db=db, agents={k: v[0] for k, v in agents.items()},
                  credentials={k: v[1] for k, v in agents.items()},
                  room_test_id=job_id, room_test_ran=ran, share_url=valid,
                  revoked_share_url=revoked, expired_share_url=expired, flag_url=flag_url,
                  public_key_pem=key_file.text, profile_titles=titles)
