"""``PUT/GET/DELETE /api/v1/sites/{site}/timetable``: admin only, validated, named errors."""

from __future__ import annotations

import copy
from typing import Any

from fastapi.testclient import TestClient

from tests.collector.conftest import SITE

URL = f"/api/v1/sites/{SITE}/timetable"

SCHOOL: dict[str, Any] = {
    "timezone": "Europe/London",
    "weekdays": ["mon", "tue", "wed", "thu", "fri"],
    "periods": [
        {"name": "P1", "start": "08:50", "end": "09:50"},
        {"name": "P2", "start": "10:00", "end": "11:00"},
        {"name": "Club", "start": "15:30", "end": "16:30", "days": ["wed"]},
    ],
    "exceptions": [{"date": "2026-03-27", "closed": True, "note": "INSET"}],
}
"""A school in London: the clocks go forward on Sunday 29 March 2026 (GMT → BST)."""


def overlapping() -> dict[str, Any]:
    doc = copy.deepcopy(SCHOOL)
    doc["periods"].insert(2, {"name": "P3", "start": "10:40", "end": "11:40"})
    return doc


def put(client: TestClient, headers: dict[str, str], doc: Any, url: str = URL) -> Any:
    return client.put(url, headers=headers, json=doc)


def test_set_get_and_delete(client: TestClient, site_token: str,
                            admin_headers: dict[str, str]) -> None:
    resp = put(client, admin_headers, SCHOOL)
    assert resp.status_code == 200, resp.text
    stored = resp.json()
    assert (stored["timezone"], [p["name"] for p in stored["periods"]]) == (
        "Europe/London", ["P1", "P2", "Club"])
    got = client.get(URL, headers=admin_headers)
    assert (got.status_code, got.json()) == (200, stored)
    # What GET gives back is a valid document: putting it again changes nothing.
    assert put(client, admin_headers, got.json()).json() == stored

    assert client.delete(URL, headers=admin_headers).json() == {"site": SITE, "deleted": True}
    gone = client.get(URL, headers=admin_headers)
    assert gone.status_code == 404
    assert gone.json()["detail"].startswith(f"site {SITE!r} has no timetable")
    assert client.delete(URL, headers=admin_headers).json() == {"site": SITE, "deleted": False}


def test_overlapping_periods_are_422_naming_both_and_nothing_changes(
        client: TestClient, site_token: str, admin_headers: dict[str, str]) -> None:
    stored = put(client, admin_headers, SCHOOL).json()
    resp = put(client, admin_headers, overlapping())
    assert resp.status_code == 422
    message = ("timetable: periods[2] 'P3' 10:40-11:40 overlaps periods[1] 'P2' "
               "10:00-11:00 on mon")
    assert resp.json() == {"detail": message, "problems": [message]}
    assert client.get(URL, headers=admin_headers).json() == stored


def test_bad_values_are_422_naming_key_and_value(client: TestClient, site_token: str,
                                                 admin_headers: dict[str, str]) -> None:
    bad_zone = {**SCHOOL, "timezone": "Europe/Londn"}
    resp = put(client, admin_headers, bad_zone)
    assert resp.status_code == 422
    assert "timezone" in resp.json()["detail"] and "'Europe/Londn'" in resp.json()["detail"]
    bad_time = copy.deepcopy(SCHOOL)
    bad_time["periods"][0]["end"] = "25:00"
    resp = put(client, admin_headers, bad_time)
    assert resp.status_code == 422
    assert "periods[0]" in resp.json()["detail"] and "25:00" in resp.json()["detail"]
    unknown_key = {**SCHOOL, "lunch": "12:00"}
    resp = put(client, admin_headers, unknown_key)
    assert resp.status_code == 422 and "lunch" in resp.json()["detail"]
    assert client.get(URL, headers=admin_headers).status_code == 404


def test_body_must_be_a_json_object(client: TestClient, site_token: str,
                                    admin_headers: dict[str, str]) -> None:
    resp = client.put(URL, headers=admin_headers, content=b"timezone = 'Europe/London'")
    assert resp.status_code == 400 and resp.json()["detail"].startswith("timetable is not JSON")
    resp = put(client, admin_headers, [SCHOOL])
    assert (resp.status_code, resp.json()["detail"]) == (
        422, "timetable must be a JSON object, got list")


def test_unknown_site_is_404_naming_it(client: TestClient, site_token: str,
                                       admin_headers: dict[str, str]) -> None:
    url = "/api/v1/sites/Nowhere/timetable"
    for resp in (put(client, admin_headers, SCHOOL, url), client.get(url, headers=admin_headers),
                 client.delete(url, headers=admin_headers)):
        assert (resp.status_code, resp.json()["detail"]) == (404, "unknown site 'Nowhere'")


def test_admin_key_is_required(client: TestClient, site_token: str,
                               admin_headers: dict[str, str]) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-key"}):
        for resp in (put(client, headers, SCHOOL), client.get(URL, headers=headers),
                     client.delete(URL, headers=headers)):
            assert resp.status_code == 401, resp.text
            assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert client.get(URL, headers=admin_headers).status_code == 404  # nothing was set
