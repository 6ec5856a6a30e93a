"""``POST/GET /api/v1/profiles`` and ``GET /api/v1/profiles/{id}``."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from collector.services.profiles import BUILTIN_DIR, load_profiles
from tests.collector.conftest import SITE, Enrolled
from tests.collector.test_profiles import SUPPLIER

URL = "/api/v1/profiles"
TOML = {"Content-Type": "application/toml"}


def post(client: TestClient, headers: dict[str, str], body: str | bytes,
         content_type: str = "application/toml") -> tuple[int, dict[str, object]]:
    resp = client.post(URL, content=body, headers={**headers, "Content-Type": content_type})
    return resp.status_code, resp.json()


def test_list_shows_the_builtins_with_their_sources(client: TestClient,
        admin_headers: dict[str, str]) -> None:
    listing = client.get(URL, headers=admin_headers).json()
    assert [p["id"] for p in listing] == list(load_profiles())
    teams = next(p for p in listing if p["id"] == "microsoft-teams-media")
    assert teams == {
        "id": "microsoft-teams-media", "version": "2026.1",
        "title": "Microsoft Teams: calls and meetings (client to Microsoft edge)",
        "source": {"citation": "MicrosoftDocs/OfficeDocs-SkypeForBusiness, Teams/prepare-"
                               "network.md @075f81de, dated 2019; check the current Learn page",
                   "confidence": "P", "url": None},
        "builtin": True, "requirements": 3}


def test_an_admin_adds_a_supplier_profile(client: TestClient,
                                          admin_headers: dict[str, str]) -> None:
    assert post(client, admin_headers, SUPPLIER) == (201, {"id": "acme-reader",
                                                           "version": "2026.2"})
    listing = client.get(URL, headers=admin_headers).json()
    assert listing[-1] == {
        "id": "acme-reader", "version": "2026.2", "title": "Acme Reader",
        "source": {"citation": "Acme Reader network requirements, March 2026",
                   "confidence": "P", "url": None},
        "builtin": False, "requirements": 2}
    full = client.get(f"{URL}/acme-reader", headers=admin_headers).json()
    assert (full["builtin"], full["document"], full["class_size"]) == (False, SUPPLIER, 32)
    assert [(r["id"], r["per_student"], r["scope"], r["share_min_pct"])
            for r in full["requirements"]] == [("download", True, "room", None),
                                               ("reach", False, "site", 95.0)]


def test_text_plain_is_accepted_too(client: TestClient, admin_headers: dict[str, str]) -> None:
    assert post(client, admin_headers, SUPPLIER, "text/plain; charset=utf-8")[0] == 201


def test_a_builtin_in_full_with_its_file(client: TestClient,
                                         admin_headers: dict[str, str]) -> None:
    full = client.get(f"{URL}/kahoot-live", headers=admin_headers).json()
    assert full["builtin"] is True
    assert full["document"] == (BUILTIN_DIR / "kahoot-live.toml").read_text()
    assert [r["threshold"] for r in full["requirements"]] == [0.0, 60.0, 0.0]


def test_unknown_profile_is_a_404_naming_the_known_ones(
        client: TestClient, admin_headers: dict[str, str]) -> None:
    resp = client.get(f"{URL}/zoom", headers=admin_headers)
    assert resp.status_code == 404
    assert resp.json()["detail"] == f"unknown profile 'zoom'; known: {', '.join(load_profiles())}"


def test_adding_needs_an_admin_key(client: TestClient,
        admin_headers: dict[str, str]) -> None:
    status, body = post(client, {}, SUPPLIER)
    assert (status, body["detail"]) == (401, "missing 'Authorization: Bearer <admin key>' header")
    assert "acme-reader" not in [p["id"] for p in client.get(URL, headers=admin_headers).json()]


def test_a_bad_profile_is_a_422_naming_key_and_value(client: TestClient,
                                                     admin_headers: dict[str, str]) -> None:
    status, body = post(client, admin_headers, SUPPLIER.replace("threshold = 1.5",
                                                                "threshold = -1.5"))
    message = ("uploaded profile: requirements[0].threshold: -1.5 is outside download_mbps's "
               "range 0..1000000 Mbps")
    assert (status, body) == (422, {"detail": message, "problems": [message]})
    status, body = post(client, admin_headers, "id = \n")
    assert status == 422 and str(body["detail"]).startswith("uploaded profile: not valid TOML")


def test_a_reused_id_is_a_422_naming_both(client: TestClient,
                                          admin_headers: dict[str, str]) -> None:
    teams = (BUILTIN_DIR / "microsoft-teams-media.toml").read_text()
    status, body = post(client, admin_headers, teams)
    assert (status, body["detail"]) == (422, (
        "uploaded profile: id: duplicate id 'microsoft-teams-media': already used by the "
        f"built-in profile {BUILTIN_DIR / 'microsoft-teams-media.toml'}"))
    assert post(client, admin_headers, SUPPLIER)[0] == 201
    status, body = post(client, admin_headers, SUPPLIER)
    assert status == 422
    assert str(body["detail"]).startswith("uploaded profile: id: duplicate id 'acme-reader': "
                                          "already used by stored profile 'acme-reader' (added ")


def test_wrong_media_type_or_encoding(client: TestClient, admin_headers: dict[str, str]) -> None:
    assert post(client, admin_headers, SUPPLIER, "application/json") == (415, {
        "detail": "Content-Type 'application/json' is not one of application/toml, "
                  "text/plain: send the profile's TOML text"})
    status, body = post(client, admin_headers, b"id = \"\xff\"")
    assert status == 400 and str(body["detail"]).startswith("uploaded profile is not UTF-8 text")


def test_openapi_lists_the_profile_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths[URL]) == {"get", "post"}
    assert set(paths[URL + "/{profile_id}"]) == {"get"}


def test_a_stored_profile_that_no_longer_loads_is_named_not_a_bare_500(
        client: TestClient, engine: Engine, enrolled: Enrolled,
        admin_headers: dict[str, str]) -> None:
    from collector.models import StoredProfile

    with Session(engine) as session:  # e.g. saved by an older version with looser rules
        session.add(StoredProfile(id="broken", version="1", document="id = 'broken'\n"))
        session.commit()
    resp = client.get(f"/api/v1/sites/{SITE}/readiness", headers=admin_headers)
    assert resp.status_code == 500
    assert resp.json()["detail"].startswith("a stored profile cannot be used: ")
    assert "broken" in resp.json()["detail"]
