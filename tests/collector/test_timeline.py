"""The room timeline: exact 5-minute binning (pure), day bounds, and the JSON endpoint."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from agent.wire import Measurement, ProbeResult
from collector.services.sites import get_site
from collector.services.timeline import (
    Point,
    TimelineError,
    bin_points,
    day_bounds,
    parse_day,
)
from collector.services.timetables import set_timetable
from tests.collector.conftest import SITE, batch_body, enrol, make_report

DAY = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday; London is on GMT (UTC+0) that day
TS = int(DAY.timestamp())  # 1740960000
TIMETABLE = {"timezone": "Europe/London", "weekdays": ["mon", "tue", "wed", "thu", "fri"],
             "periods": [{"name": "P1", "start": "09:00", "end": "10:00"},
                         {"name": "P2", "start": "10:00", "end": "11:00"}]}


def at(h: int, m: int, s: int = 0) -> datetime:
    return DAY + timedelta(hours=h, minutes=m, seconds=s)


def test_bin_points_device_medians_then_room_median_of_devices() -> None:
    points = [
        # bin 09:00-09:05: device a has 10, 30, 20 (median 20); device b 40, 50 (45)
        Point(at(9, 0), "a", 10.0), Point(at(9, 2), "a", 30.0), Point(at(9, 4, 59), "a", 20.0),
        Point(at(9, 1), "b", 40.0), Point(at(9, 3), "b", 50.0),
        # bin 09:05-09:10: only device b, exactly on the boundary
        Point(at(9, 5), "b", 7.0),
        # bin 09:20: a 1, b 2, c 100: room median of device medians = 2
        Point(at(9, 20), "a", 1.0), Point(at(9, 21), "b", 2.0), Point(at(9, 24), "c", 100.0),
        # outside the day: dropped
        Point(DAY - timedelta(seconds=1), "a", 999.0), Point(DAY + timedelta(days=1), "a", 999.0),
    ]
    binned = bin_points(points, DAY, DAY + timedelta(days=1))
    t900, t905, t920 = TS + 9 * 3600, TS + 9 * 3600 + 300, TS + 9 * 3600 + 1200
    assert t900 == 1740992400
    assert binned.devices == {
        "a": ((t900, 20.0), (t920, 1.0)),
        "b": ((t900, 45.0), (t905, 7.0), (t920, 2.0)),
        "c": ((t920, 100.0),),
    }
    # 09:00: median of a's 20 and b's 45 = 32.5 (a's three samples count once)
    assert binned.room == ((t900, 32.5), (t905, 7.0), (t920, 2.0))
    assert binned.samples == 9


def test_bin_points_empty_and_bad_width() -> None:
    empty = bin_points([], DAY, DAY + timedelta(days=1))
    assert (empty.room, empty.devices, empty.samples) == ((), {}, 0)
    with pytest.raises(TimelineError, match="bin width 0 s must be positive"):
        bin_points([], DAY, DAY, bin_s=0)


def test_day_bounds_follow_the_local_day_across_a_clock_change() -> None:
    london = ZoneInfo("Europe/London")
    assert day_bounds(date(2025, 3, 3), london) == (DAY, DAY + timedelta(days=1))
    start, end = day_bounds(date(2025, 3, 30), london)  # clocks go forward: 23 hours
    assert start == datetime(2025, 3, 30, tzinfo=UTC)
    assert end - start == timedelta(hours=23)
    start, end = day_bounds(date(2025, 7, 1), london)  # BST: local midnight is 23:00 UTC
    assert start == datetime(2025, 6, 30, 23, tzinfo=UTC)


def test_parse_day_names_the_bad_text() -> None:
    assert parse_day("2025-03-03") == date(2025, 3, 3)
    with pytest.raises(TimelineError, match="date '3 March' is not a date like"):
        parse_day("3 March")
    with pytest.raises(TimelineError, match="date 0001-01-01 is out of range"):
        parse_day("0001-01-01")


def latency(start: datetime, p50: float) -> ProbeResult:
    return ProbeResult(probe="latency", status="ok", target="127.0.0.1:443", started_at=start,
                       finished_at=start + timedelta(seconds=1), measurements=[
                           Measurement("tcp_connect_ms", "ms", "tcp", value=p50, stat="p50",
                                       samples=5),
                           Measurement("tcp_connect_ms", "ms", "tcp", value=p50 * 3,
                                       stat="max", samples=5)])


def wifi(start: datetime, util: float, stations: float) -> ProbeResult:
    return ProbeResult(probe="wifi", status="ok", started_at=start,
                       finished_at=start + timedelta(seconds=1), measurements=[
                           Measurement("bss_channel_utilisation_pct", "%", "iw, value/255",
                                       value=util),
                           Measurement("bss_station_count", "count", "iw", value=stations)])


@pytest.fixture
def day_data(client: TestClient, site_token: str, engine: Engine) -> tuple[str, str]:
    with Session(engine) as session:
        set_timetable(session, get_site(session, SITE), TIMETABLE, DAY)
    a, b = enrol(client, site_token), enrol(client, site_token)
    elsewhere = enrol(client, site_token, room="Room 7")
    reports = [
        make_report(a.agent_id, [latency(at(9, 1), 20.0), wifi(at(9, 1), 40.0, 12.0)], at(9, 1)),
        make_report(a.agent_id, [latency(at(9, 3), 30.0)], at(9, 3)),
        make_report(b.agent_id, [latency(at(9, 2), 60.0), wifi(at(9, 2), 50.0, 14.0)], at(9, 2)),
        make_report(b.agent_id, [latency(at(10, 31), 80.0)], at(10, 31)),
        make_report(a.agent_id, [latency(DAY + timedelta(days=1, hours=9), 5.0)],
                    DAY + timedelta(days=1, hours=9)),
        make_report(elsewhere.agent_id, [latency(at(9, 1), 500.0)], at(9, 1)),
    ]
    for agent, report in zip([a, a, b, b, a, elsewhere], reports, strict=True):
        resp = client.post("/api/v1/reports", content=batch_body(report), headers=agent.headers)
        assert resp.status_code == 200, resp.text
    return a.agent_id, b.agent_id


def test_timeline_endpoint_gives_exact_series_and_local_periods(
        client: TestClient, day_data: tuple[str, str],
        admin_headers: dict[str, str]) -> None:
    a, b = day_data
    resp = client.get(f"/api/v1/sites/{SITE}/rooms/Room 12/timeline", params={"date": "2025-03-03"},
                      headers=admin_headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["site"], body["room"], body["date"], body["timezone"], body["bin_s"]) == \
        (SITE, "Room 12", "2025-03-03", "Europe/London", 300)
    assert (body["start_ts"], body["end_ts"], body["school_day"]) == (TS, TS + 86400, True)
    assert body["periods"] == [
        {"name": "P1", "start": "09:00", "end": "10:00", "start_ts": TS + 9 * 3600,
         "end_ts": TS + 10 * 3600},
        {"name": "P2", "start": "10:00", "end": "11:00", "start_ts": TS + 10 * 3600,
         "end_ts": TS + 11 * 3600}]
    series = {s["key"]: s for s in body["series"]}
    t900, t1030 = TS + 9 * 3600, TS + 10 * 3600 + 30 * 60
    lat = series["latency"]
    assert (lat["metric"], lat["stat"], lat["unit"], lat["chart"]) == \
        ("tcp_connect_ms", "p50", "ms", "latency")
    assert lat["targets"] == ["127.0.0.1:443"]
    # a: 20 and 30 in the 09:00 bin -> 25; b: 60; room: median(25, 60) = 42.5.
    # Room 7's 500 ms, the max stat and the next day's 5 ms are not in it.
    assert lat["devices"] == {a: [[t900, 25.0]], b: [[t900, 60.0], [t1030, 80.0]]}
    assert lat["room"] == [[t900, 42.5], [t1030, 80.0]]
    assert lat["samples"] == 4
    assert series["channel_utilisation"]["room"] == [[t900, 45.0]]
    assert series["stations"]["room"] == [[t900, 13.0]]
    assert series["download"]["room"] == [] and series["download"]["samples"] == 0


def test_timeline_defaults_to_the_newest_day_and_refuses_bad_input(
        client: TestClient, day_data: tuple[str, str],
        admin_headers: dict[str, str]) -> None:
    body = client.get(f"/api/v1/sites/{SITE}/rooms/Room 12/timeline", headers=admin_headers).json()
    assert body["date"] == "2025-03-04"  # the room's newest measurement
    bad = client.get(f"/api/v1/sites/{SITE}/rooms/Room 12/timeline", params={"date": "tomorrow"},
                     headers=admin_headers)
    assert bad.status_code == 422 and "date 'tomorrow' is not a date" in bad.json()["detail"]
    room = client.get(f"/api/v1/sites/{SITE}/rooms/Attic/timeline", headers=admin_headers)
    assert room.status_code == 404 and "has no room 'Attic'" in room.json()["detail"]
    site = client.get("/api/v1/sites/Nowhere/rooms/Room 12/timeline", headers=admin_headers)
    assert (site.status_code, site.json()["detail"]) == (404, "unknown site 'Nowhere'")
