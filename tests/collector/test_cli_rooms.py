"""``classprobe collector room-test|room-test-result|room-link|flags`` against a SQLite file."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session

from collector.cli import main
from collector.db import init_db, make_engine
from collector.models import Agent, utcnow
from collector.services.flags import raise_flag
from collector.services.room_tests import get_room_test
from tests.collector.room_rows import Run, add_job_report, new_agent, new_site

SITE = "Test School"


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/rooms.db"


@pytest.fixture
def agents(db: str) -> list[str]:
    engine = make_engine(db)
    init_db(engine)
    with Session(engine) as session:
        token = new_site(session, SITE)
        return sorted(new_agent(session, token, "Room 12", utcnow()) for _ in range(2))


def run(capsys: pytest.CaptureFixture[str], db: str, *argv: str) -> tuple[int, str, str]:
    code = main(["collector", *argv, "--db", db])
    out, err = capsys.readouterr()
    return code, out, err


def test_room_test_json_and_text(capsys: pytest.CaptureFixture[str], db: str,
                                 agents: list[str]) -> None:
    code, out, _ = run(capsys, db, "room-test", "--site", SITE, "--room", "Room 12",
                       "--in", "30", "--seconds", "15", "--upload", "--streams", "2",
                       "--url", "http://10.77.0.1:8000/speed/download", "--json")
    assert code == 0
    job = json.loads(out)
    assert (job["kind"], job["duration_s"], job["streams"], job["directions"]) == (
        "room_test", 15.0, 2, ["download", "upload"])
    assert (job["download_url"], job["upload_url"]) == (
        "http://10.77.0.1:8000/speed/download", None)
    assert job["expected_agents"] == agents
    code, out, _ = run(capsys, db, "room-test", "--site", SITE, "--room", "Room 12",
                       "--at", (utcnow() + timedelta(minutes=5)).isoformat())
    assert code == 0
    assert "download for 20 s with 4 stream(s) per device" in out
    assert f"waiting for 2 live agent(s): {agents[0]}, {agents[1]}" in out
    assert "result: classprobe collector room-test-result " in out


def test_room_test_refusals_name_the_value(capsys: pytest.CaptureFixture[str], db: str,
                                           agents: list[str]) -> None:
    code, _, err = run(capsys, db, "room-test", "--site", SITE, "--room", "Room 9")
    assert code == 1
    assert "site 'Test School' has no room 'Room 9'; its rooms: 'Room 12'" in err
    code, _, err = run(capsys, db, "room-test", "--site", SITE, "--room", "Room 12",
                       "--in", "-60")
    assert code == 1 and "s in the past" in err
    code, _, err = run(capsys, db, "room-test", "--site", SITE, "--room", "Room 12",
                       "--at", "next tuesday")
    assert code == 1 and "--at 'next tuesday' is not an ISO 8601 time" in err
    code, _, err = run(capsys, db, "room-test-result", "nope")
    assert (code, err.strip()) == (1, "classprobe collector: no room test 'nope'")


def test_room_test_result_table(capsys: pytest.CaptureFixture[str], db: str,
                                agents: list[str]) -> None:
    a, b = agents
    code, out, _ = run(capsys, db, "room-test", "--site", SITE, "--room", "Room 12",
                       "--in", "0", "--seconds", "5", "--json")
    job_id = json.loads(out)["job_id"]
    with Session(make_engine(db)) as session:
        job = get_room_test(session, job_id)
        add_job_report(session, a, job.id, [Run("download", 30.0, p50=12.0, max=40.0)],
                       job.start_at)
        add_job_report(session, b, job.id, [Run("download", status="failed",
                                                reason="download from x failed: reset")],
                       job.start_at)
    code, out, _ = run(capsys, db, "room-test-result", job_id)
    assert code == 0
    assert f"room test {job_id} in room 'Room 12' (site 'Test School'): COMPLETE" in out
    assert "agents expected 2, reported 2" in out
    assert f"{a:36}  download      30.000  100.0 %           12.0           40.0\n" in out
    assert "room total download: 30.000 Mbps from 1 device(s); loaded latency p50 12.0 ms, " \
           "max 40.0 ms" in out
    assert f"  {b}  download   failed: download from x failed: reset" in out
    code, out, _ = run(capsys, db, "room-test-result", job_id, "--json")
    body = json.loads(out)
    assert (body["status"], body["totals"]["download"]["total_mbps"]) == ("complete", 30.0)


def test_room_link_and_flags(capsys: pytest.CaptureFixture[str], db: str, agents: list[str],
                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    qr = tmp_path / "room12.svg"
    code, out, err = run(capsys, db, "room-link", "--site", SITE, "--room", "Room 12",
                         "--base-url", "https://probe.school.example", "--qr", str(qr))
    assert code == 0
    url = out.strip()
    assert url.startswith("https://probe.school.example/r/")
    assert ET.parse(qr).getroot().tag == "{http://www.w3.org/2000/svg}svg"
    code, out, err = run(capsys, db, "room-link", "--site", SITE, "--room", "Room 12")
    assert out.strip() == "http://127.0.0.1:8000/r/" + url.rsplit("/", 1)[1]
    assert "pass --base-url" in err
    monkeypatch.setenv("CLASSPROBE_PUBLIC_URL", "https://collector.trust.example")
    code, out, err = run(capsys, db, "room-link", "--site", SITE, "--room", "Room 12")
    assert out.strip() == "https://collector.trust.example/r/" + url.rsplit("/", 1)[1]
    assert err == ""

    code, out, _ = run(capsys, db, "flags", "--site", SITE)
    assert (code, out.strip()) == (0, "no problems flagged in site 'Test School'")
    engine = make_engine(db)
    with Session(engine) as session:
        agent = session.get(Agent, agents[0])
        assert agent is not None
        flag, burst = raise_flag(session, agent.site_id, agent.room_id, "wifi dropped",
                                 "agent", agent.id, utcnow())
        assert burst is not None
        flag_id, burst_id = flag.id, burst.id
    code, out, _ = run(capsys, db, "flags", "--site", SITE, "--json")
    (listed,) = json.loads(out)
    assert (listed["flag_id"], listed["room"], listed["source"], listed["note"],
            listed["burst_job_id"]) == (flag_id, "Room 12", "agent", "wifi dropped", burst_id)
    code, out, _ = run(capsys, db, "flags", "--site", SITE)
    assert f"Room 12               agent   {burst_id}  wifi dropped" in out
