"""Sites, readiness, export and profile endpoints, and the HTML pages."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from agent.wire import Measurement, ProbeResult
from tests.collector.conftest import (
    SITE,
    T0,
    Enrolled,
    batch_body,
    enrol,
    failed_result,
    latency_result,
    make_report,
    set_always_in_lesson,
)

HEADER = ["time", "agent", "room", "probe", "target", "metric", "value", "unit", "method",
          "report_id", "stat", "samples", "text", "period", "in_lesson", "trigger", "job_id"]


def _device_result() -> ProbeResult:
    return ProbeResult(probe="device", status="ok", started_at=T0, finished_at=T0,
                       measurements=[Measurement("cpu_model", "text", "psutil",
                                                 text="Test CPU, 4 cores")])


def upload_rtts(client: TestClient, who: Enrolled, values: list[float]) -> list[str]:
    reports = [make_report(who.agent_id, [latency_result(p50=v, start=T0 + timedelta(minutes=i))])
               for i, v in enumerate(values)]
    resp = client.post("/api/v1/reports", headers=who.headers, content=batch_body(*reports))
    assert resp.status_code == 200, resp.text
    return [str(r.report_id) for r in reports]


def test_sites_list(client: TestClient, enrolled: Enrolled,
        admin_headers: dict[str, str]) -> None:
    upload_rtts(client, enrolled, [40.0])
    sites = client.get("/api/v1/sites", headers=admin_headers).json()
    assert len(sites) == 1
    assert (sites[0]["name"], sites[0]["rooms"], sites[0]["agents"]) == (SITE, 1, 1)
    assert sites[0]["last_seen"] is not None


@pytest.mark.both_backends
def test_readiness_with_evidence_and_unknown_reasons(client: TestClient, enrolled: Enrolled,
                                                     site_token: str, engine: Engine,
        admin_headers: dict[str, str]) -> None:
    set_always_in_lesson(engine)  # Teams judges lessons only (its targets are for peak load)
    upload_rtts(client, enrolled, [40.0, 50.0, 60.0])
    other = enrol(client, site_token, "Lab 2")
    upload_rtts(client, other, [45.0, 55.0])
    client.post("/api/v1/reports", headers=other.headers, content=batch_body(
        make_report(other.agent_id, [failed_result("teams.microsoft.com",
                                                   "ICMP needs privileges")])))
    everything = client.get(f"/api/v1/sites/{SITE}/readiness", headers=admin_headers).json()
    assert len(everything["profiles"]) == len(client.get("/api/v1/profiles",
                                                         headers=admin_headers).json()) >= 11
    resp = client.get(f"/api/v1/sites/{SITE}/readiness",
                      params={"profile": "microsoft-teams-media"}, headers=admin_headers)
    assert resp.status_code == 200
    body = resp.json()
    assert body["site"] == SITE
    assert [p["profile"] for p in body["profiles"]] == ["microsoft-teams-media"]
    teams = body["profiles"][0]
    assert teams["status"] == "unknown"
    rtt, jitter, _loss = teams["requirements"]
    assert rtt["status"] == "pass"
    assert rtt["evidence"]["value"] == 59.0  # p95 of 40,45,50,55,60
    assert (rtt["evidence"]["samples"], rtt["evidence"]["devices"]) == (5, 2)
    assert rtt["evidence"]["first"] == T0.isoformat()
    assert rtt["worst_devices"][0]["agent_id"] == enrolled.agent_id
    assert jitter["status"] == "unknown" and jitter["evidence"] is None
    assert "latency to teams.microsoft.com failed: ICMP needs privileges" in jitter["reason"]
    assert {a["room"] for a in body["agents"]} == {"Room 12", "Lab 2"}


@pytest.mark.both_backends
def test_readiness_for_one_profile_and_unknown_names(client: TestClient,
                                                     enrolled: Enrolled,
        admin_headers: dict[str, str]) -> None:
    resp = client.get(f"/api/v1/sites/{SITE}/readiness",
                      params={"profile": "microsoft-teams-media"}, headers=admin_headers)
    assert resp.status_code == 200
    assert len(resp.json()["profiles"]) == 1
    resp = client.get(f"/api/v1/sites/{SITE}/readiness", params={"profile": "zoom"},
                      headers=admin_headers)
    assert resp.status_code == 404
    assert resp.json()["detail"].startswith("unknown profile 'zoom'; known: ")
    assert "microsoft-teams-media" in resp.json()["detail"]
    resp = client.get("/api/v1/sites/Nowhere/readiness", headers=admin_headers)
    assert (resp.status_code, resp.json()) == (404, {"detail": "unknown site 'Nowhere'"})


def test_profiles_endpoint(client: TestClient,
        admin_headers: dict[str, str]) -> None:
    profiles = {p["id"]: p for p in client.get("/api/v1/profiles", headers=admin_headers).json()}
    teams = profiles["microsoft-teams-media"]
    assert teams["source"]["confidence"] == "P" and teams["builtin"] is True
    full = client.get("/api/v1/profiles/microsoft-teams-media", headers=admin_headers).json()
    assert [r["threshold"] for r in full["requirements"]] == [100.0, 30.0, 1.0]


@pytest.mark.both_backends
def test_export_csv_columns_and_content(client: TestClient, enrolled: Enrolled,
        admin_headers: dict[str, str]) -> None:
    report = make_report(enrolled.agent_id, [latency_result(p50=42.5), _device_result()])
    client.post("/api/v1/reports", headers=enrolled.headers, content=batch_body(report))
    resp = client.get(f"/api/v1/sites/{SITE}/export", params={"format": "csv"},
                      headers=admin_headers)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    assert "attachment" in resp.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(resp.text)))
    assert table[0] == HEADER
    rid = str(report.report_id)
    assert table[1:] == [
        [T0.isoformat(), enrolled.agent_id, "Room 12", "latency", "teams.microsoft.com",
         "tcp_connect_ms", "42.5", "ms", "tcp", rid, "p50", "5", "", "", "", "manual", ""],
        [T0.isoformat(), enrolled.agent_id, "Room 12", "latency", "teams.microsoft.com",
         "tcp_connect_ms", "85.0", "ms", "tcp", rid, "max", "5", "", "", "", "manual", ""],
        [T0.isoformat(), enrolled.agent_id, "Room 12", "device", "", "cpu_model", "", "text",
         "psutil", rid, "value", "1", "Test CPU, 4 cores", "", "", "manual", ""],
    ]


def test_export_json_and_bad_format(client: TestClient, enrolled: Enrolled,
        admin_headers: dict[str, str]) -> None:
    rid = upload_rtts(client, enrolled, [40.0])[0]
    rows = client.get(f"/api/v1/sites/{SITE}/export", params={"format": "json"},
                      headers=admin_headers).json()
    assert list(rows[0]) == HEADER
    assert (rows[0]["value"], rows[0]["report_id"], rows[0]["text"]) == (40.0, rid, None)
    assert len(rows) == 2
    assert client.get(f"/api/v1/sites/{SITE}/export", params={"format": "xml"},
                      headers=admin_headers).status_code == 422
    assert client.get("/api/v1/sites/Nowhere/export", headers=admin_headers).status_code == 404


def test_index_page_links_sites(admin_client: TestClient, enrolled: Enrolled) -> None:
    resp = admin_client.get("/")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert '<a href="/sites/Test%20School/report">Test School</a>' in resp.text


def test_site_report_page(client: TestClient, admin_client: TestClient, enrolled: Enrolled,
                          engine: Engine) -> None:
    set_always_in_lesson(engine)
    upload_rtts(client, enrolled, [40.0, 50.0, 60.0, 70.0, 80.0])
    resp = admin_client.get(f"/sites/{SITE}/report")
    assert resp.status_code == 200
    page = resp.text
    assert "Readiness report: Test School" in page
    assert '<span class="status status-pass">PASS</span>' in page
    assert '<span class="status status-unknown">UNKNOWN</span>' in page
    assert "78 ms" in page  # p95 of 40..80
    assert "5 samples from 1 device(s)" in page
    assert "Why unknown:</strong> no measurements of jitter_ms" in page
    assert "Teams/prepare-network.md @075f81de" in page
    assert enrolled.agent_id in page and "Room 12" in page
    # nothing loaded from elsewhere (schools' filters and offline machines must not break
    # it); cited sources may show their address as text
    assert "<script" not in page and 'src="http' not in page and '<link' not in page
    assert admin_client.get("/sites/Nowhere/report").status_code == 404


def test_page_escapes_room_names(client: TestClient, admin_client: TestClient,
                                 site_token: str) -> None:
    enrol(client, site_token, "<b>Lab</b>")
    page = admin_client.get(f"/sites/{SITE}/report").text
    assert "&lt;b&gt;Lab&lt;/b&gt;" in page and "<b>Lab</b>" not in page


def test_openapi_docs(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    # Swagger UI from the collector itself, never a CDN (school filters, offline machines)
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in docs.text
    assert "cdn." not in docs.text and "https://" not in docs.text
    bundle = client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 1_000_000
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/v1/enrol", "/api/v1/reports", "/speed/download", "/speed/upload",
                 "/speed/ping", "/api/v1/sites/{site}/readiness", "/api/v1/profiles"):
        assert path in paths
