"""The report's "latest cycle" view: each agent's newest report, as measured."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from tests.collector.conftest import (
    SITE,
    T0,
    Enrolled,
    batch_body,
    enrol,
    failed_result,
    latency_result,
    make_report,
)


def test_latest_cycle_shows_each_agents_newest_report_only(client: TestClient,
                                                          admin_client: TestClient,
                                                          enrolled: Enrolled,
                                                          site_token: str,
        admin_headers: dict[str, str]) -> None:
    other = enrol(client, site_token, room="Room 7")
    old = make_report(enrolled.agent_id, [latency_result(p50=80.0)], created_at=T0)
    new = make_report(enrolled.agent_id,
                      [latency_result(p50=21.5, start=T0 + timedelta(minutes=5)),
                       failed_result(target="zoom.us", reason="connection refused",
                                     start=T0 + timedelta(minutes=5))],
                      created_at=T0 + timedelta(minutes=5))
    theirs = make_report(other.agent_id, [latency_result(p50=33.0)], created_at=T0)
    for agent, report in ((enrolled, old), (enrolled, new), (other, theirs)):
        resp = client.post("/api/v1/reports", content=batch_body(report), headers=agent.headers)
        assert resp.status_code == 200, resp.text

    latest = client.get(f"/api/v1/sites/{SITE}/readiness", headers=admin_headers).json()["latest"]
    ours = [r for r in latest if r["agent_id"] == enrolled.agent_id]
    assert [(r["target"], r["status"], r["reason"]) for r in ours] == [
        ("teams.microsoft.com", "ok", ""), ("zoom.us", "failed", "connection refused")]
    # headline values only (medians and single readings), never the max
    assert ours[0]["values"] == [{"metric": "tcp_connect_ms", "value": 21.5, "unit": "ms",
                                  "stat": "p50", "method": "tcp"}]
    assert [r["room"] for r in latest] == ["Room 12", "Room 12", "Room 7"]
    assert [r["values"][0]["value"] for r in latest if r["agent_id"] == other.agent_id] == [33.0]

    page = admin_client.get(f"/sites/{SITE}/report").text
    assert "latest cycle" in page and "connection refused" in page and "21.5" in page
    table = page.split("latest cycle")[1].split("</table>")[0]
    assert "21.5 ms" in table and "80 ms" not in table  # not the older report's value


@pytest.mark.both_backends
def test_two_reports_made_at_the_same_instant_show_once_the_one_stored_last(
        client: TestClient, enrolled: Enrolled, site_token: str,
        admin_headers: dict[str, str]) -> None:
    """An agent's newest report is one report: on a tie in ``created_at`` (a clock that
    stepped back, two runs in the same microsecond) the one stored last, not both."""
    silent = enrol(client, site_token, room="Room 9")  # no report: not in the latest cycle
    first = make_report(enrolled.agent_id, [latency_result(p50=50.0)], created_at=T0)
    second = make_report(enrolled.agent_id, [latency_result(p50=25.0)], created_at=T0)
    for report in (first, second):
        resp = client.post("/api/v1/reports", content=batch_body(report),
                           headers=enrolled.headers)
        assert resp.status_code == 200, resp.text
    latest = client.get(f"/api/v1/sites/{SITE}/readiness", headers=admin_headers).json()["latest"]
    assert [(r["agent_id"], r["values"][0]["value"]) for r in latest] == [
        (enrolled.agent_id, 25.0)]
    assert silent.agent_id not in {r["agent_id"] for r in latest}
