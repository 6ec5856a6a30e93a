"""A realistic school day put into a collector through its own API, for the dashboards.

Two sites: "St Mary's Primary" (an apostrophe: the dashboards must quote it) with a
timetable, rooms "Room 12" (agents A and B) and "Room 7" (agent C), one agent never heard
from since long ago (silent), one seen 2 h ago (at-risk) and one revoked; "Hill Academy"
(no timetable) with one agent in "Lab". On Monday 2025-03-03 (London = UTC in March)
each reporting agent sends one report every 20 minutes from 08:00 to 16:00 UTC with
latency, Wi-Fi and (every third slot) bandwidth results; every fifth slot a bandwidth run
fails. Values are worse in lessons (the room is in use).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session

from agent.metrics import CATALOGUE
from agent.wire import Measurement, ProbeResult, Report, ReportBatch, to_jsonable
from collector.models import Agent, utcnow
from collector.services.notify import add_target, run_detection
from collector.services.sites import create_site, get_site, revoke_agent
from collector.services.timetables import set_timetable

DAY = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday
SLOTS = tuple(DAY + timedelta(hours=8, minutes=20 * i) for i in range(25))  # 08:00..16:00
ST_MARYS, HILL = "St Mary's Primary", "Hill Academy"
PERIODS = (("P1", "09:00", "10:00"), ("P2", "10:00", "11:00"), ("P3", "11:20", "12:20"),
           ("P4", "13:20", "14:20"), ("P5", "14:20", "15:20"))
TIMETABLE = {"timezone": "Europe/London",
             "periods": [{"name": n, "start": s, "end": e} for n, s, e in PERIODS]}
TEAMS = "teams.microsoft.com"
SPEED_URL = "http://127.0.0.1:8000/speed/download"


def period_at(when: datetime) -> str | None:
    clock = when.strftime("%H:%M")
    return next((name for name, start, end in PERIODS if start <= clock < end), None)


LESSON_SLOTS = tuple(t for t in SLOTS if period_at(t))  # 15 of the 25


@dataclass(frozen=True)
class Device:
    agent_id: str
    credential: str
    site: str
    room: str
    offset_ms: float  # this device's extra latency

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential}"}


def _m(metric: str, value: float, method: str, stat: str = "value",
       samples: int = 1) -> Measurement:
    return Measurement(metric, CATALOGUE[metric].unit, method, value=value,
                       stat=stat, samples=samples)  # type: ignore[arg-type]


def _result(probe: str, at: datetime, measurements: list[Measurement],
            target: str | None = None) -> ProbeResult:
    return ProbeResult(probe=probe, status="ok", started_at=at,
                       finished_at=at + timedelta(seconds=5), target=target,
                       measurements=measurements)


def slot_results(device: Device, index: int, at: datetime) -> list[ProbeResult]:
    busy = period_at(at) is not None and device.site == ST_MARYS
    p50 = (40.0 if busy else 20.0) + device.offset_ms
    results = [
        _result("latency", at, [
            _m("tcp_connect_ms", p50 - 5, "tcp_connect", "min", 5),
            _m("tcp_connect_ms", p50, "tcp_connect", "p50", 5),
            _m("tcp_connect_ms", p50 * 2, "tcp_connect", "p95", 5),
            _m("tcp_connect_ms", p50 * 2 + 10, "tcp_connect", "max", 5),
            _m("jitter_ms", 8.0 if busy else 2.0, "tcp_connect", samples=5)], TEAMS),
        _result("wifi", at + timedelta(seconds=10), [
            _m("rssi_dbm", -67.0 if busy else -58.0, "iw link"),
            _m("noise_dbm", -92.0, "iw survey")], "wlan0"),
        _result("wifi_bss_load", at + timedelta(seconds=10), [
            _m("bss_station_count", 28.0 if busy else 3.0, "BSS Load element"),
            _m("bss_channel_utilisation_pct", 70.0 if busy else 15.0,
               "BSS Load element, value/255")], "wlan0"),
        _result("wifi_channel_busy", at + timedelta(seconds=10), [
            _m("channel_busy_pct", 62.0 if busy else 12.0, "iw survey dump")], "wlan0"),
    ]
    if index % 3 == 0:
        results.append(_result("bandwidth", at + timedelta(seconds=20), [
            _m("download_mbps", 30.0 if busy else 90.0, "http_get slope"),
            _m("upload_mbps", 12.0 if busy else 40.0, "http_post slope")], SPEED_URL))
    if index % 5 == 0:
        results.append(ProbeResult(probe="bandwidth", status="failed", target=SPEED_URL,
                                   reason="connection reset by peer",
                                   started_at=at + timedelta(seconds=40),
                                   finished_at=at + timedelta(seconds=41)))
    return results


def measurements_per_slot(index: int) -> int:
    return 10 + (2 if index % 3 == 0 else 0)


def _enrol(client: TestClient, token: str, site: str, room: str, offset: float) -> Device:
    resp = client.post("/api/v1/enrol", json={"token": token, "room": room,
                                              "agent_version": "0.1.0"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    return Device(body["agent_id"], body["credential"], site, room, offset)


def _upload(client: TestClient, device: Device) -> None:
    reports = [Report(report_id=uuid.uuid4(), agent_id=device.agent_id,
                      created_at=at + timedelta(seconds=50), agent_version="0.1.0",
                      trigger="scheduled", results=slot_results(device, i, at))
               for i, at in enumerate(SLOTS)]
    body = json.dumps(to_jsonable(ReportBatch(reports=reports))).encode()
    resp = client.post("/api/v1/reports", headers=device.headers, content=body)
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["accepted"]) == len(SLOTS)


@dataclass(frozen=True)
class SchoolDay:
    reporting: tuple[Device, ...]  # A, B (Room 12), C (Room 7), D (Hill Academy, Lab)
    at_risk: Device
    silent: Device
    revoked: Device
    flagged_at: datetime


def _last_seen(session: Session, device: Device, when: datetime | None) -> None:
    agent = session.get(Agent, device.agent_id)
    assert agent is not None
    agent.last_seen = when
    session.add(agent)


def load_school_day(client: TestClient) -> SchoolDay:
    """Fill the collector behind ``client`` (see the module docstring)."""
    engine = client.app.state.engine  # type: ignore[attr-defined]
    now = utcnow()
    with Session(engine) as session:
        marys, hill = create_site(session, ST_MARYS), create_site(session, HILL)
        set_timetable(session, get_site(session, ST_MARYS), TIMETABLE, now)
    reporting = (_enrol(client, marys, ST_MARYS, "Room 12", 0.0),
                 _enrol(client, marys, ST_MARYS, "Room 12", 6.0),
                 _enrol(client, marys, ST_MARYS, "Room 7", 12.0),
                 _enrol(client, hill, HILL, "Lab", 3.0))
    at_risk, silent, revoked = (_enrol(client, marys, ST_MARYS, "Room 7", 0.0)
                                for _ in range(3))
    for device in reporting:
        _upload(client, device)
    flag = client.post("/api/v1/flags", headers=reporting[0].headers,
                       json={"note": "videos froze in the phonics lesson"})
    assert flag.status_code == 201, flag.text
    with Session(engine) as session:
        _last_seen(session, at_risk, now - timedelta(hours=2))
        _last_seen(session, silent, now - timedelta(days=3))
        session.commit()
        revoke_agent(session, revoked.agent_id)
        # the notification loop records each profile's verdict (table verdictstate) for
        # the sites that want verdict_changed: do one round of it, as the loop would
        add_target(session, get_site(session, ST_MARYS), "webhook",
                   "http://127.0.0.1:9/classprobe-hook", ["verdict_changed"], None, now)
        run_detection(session, utcnow())
    return SchoolDay(reporting, at_risk, silent, revoked, now)
