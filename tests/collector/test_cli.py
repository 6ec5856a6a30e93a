"""The admin CLI: ``collector.cli.main([...])`` against a SQLite file."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from collector.app import create_app
from collector.cli import main
from collector.settings import Settings
from tests.collector.conftest import (
    batch_body,
    enrol,
    latency_result,
    make_report,
    set_always_in_lesson,
)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/cli.db"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def create(capsys: pytest.CaptureFixture[str], db: str, name: str = "Hill School") -> str:
    code, out, _ = run(capsys, "collector", "create-site", name, "--json", "--db", db)
    assert code == 0
    body = json.loads(out)
    assert body["site"] == name
    token: str = body["token"]
    return token


def test_create_site_prints_token_and_refuses_duplicates(
        capsys: pytest.CaptureFixture[str], db: str) -> None:
    code, out, _ = run(capsys, "collector", "create-site", "Hill School", "--db", db)
    assert code == 0
    token = out.splitlines()[-1]
    assert len(token) >= 40
    code, _, err = run(capsys, "collector", "create-site", "Hill School", "--db", db)
    assert code == 1
    assert "site 'Hill School' already exists" in err
    code, _, err = run(capsys, "collector", "create-site", "a/b", "--db", db)
    assert (code, "must not contain '/'" in err) == (1, True)


def test_database_from_environment(capsys: pytest.CaptureFixture[str], db: str,
                                   monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLASSPROBE_DATABASE_URL", db)
    assert run(capsys, "collector", "create-site", "Env School")[0] == 0
    monkeypatch.delenv("CLASSPROBE_DATABASE_URL")
    code, _, _ = run(capsys, "collector", "agents", "--site", "Env School", "--db", db)
    assert code == 0
    monkeypatch.setenv("CLASSPROBE_DATA_DIR", str(tmp_path / "data"))
    assert run(capsys, "collector", "create-site", "Dir School")[0] == 0
    assert (tmp_path / "data" / "classprobe.db").exists()


def _serve(db: str, tmp_path: Path) -> TestClient:
    return TestClient(create_app(Settings(database_url=db, data_dir=tmp_path)))


def test_enrol_report_export_revoke_flow(capsys: pytest.CaptureFixture[str], db: str,
                                         tmp_path: Path) -> None:
    token = create(capsys, db)
    client = _serve(db, tmp_path)
    set_always_in_lesson(client.app.state.engine, "Hill School")  # Teams judges lessons
    who = enrol(client, token, "Room 5")
    reports = [make_report(who.agent_id, [latency_result(p50=v)]) for v in (30, 40, 50, 60, 70)]
    assert client.post("/api/v1/reports", headers=who.headers,
                       content=batch_body(*reports)).status_code == 200

    code, out, _ = run(capsys, "collector", "agents", "--site", "Hill School", "--json",
                       "--db", db)
    agents = json.loads(out)
    assert (code, [a["agent_id"] for a in agents], agents[0]["room"]) == (0, [who.agent_id],
                                                                          "Room 5")

    code, out, _ = run(capsys, "report", "--site", "Hill School", "--db", db)
    assert code == 0
    assert "Microsoft Teams: calls and meetings (client to Microsoft edge): UNKNOWN" in out
    assert "[PASS   ] rtt (must)" in out
    assert "p95 of tcp_connect_ms (p50)" in out and "is 68 ms over 5 samples" in out

    code, out, _ = run(capsys, "report", "--site", "Hill School", "--profile",
                       "microsoft-teams-media", "--format", "json", "--db", db)
    verdicts = json.loads(out)["profiles"]
    assert [r["status"] for r in verdicts[0]["requirements"]] == ["pass", "unknown", "unknown"]

    code, out, _ = run(capsys, "report", "--site", "Hill School", "--format", "html",
                       "--db", db)
    assert code == 0 and out.startswith("<!doctype html>") and "status-pass" in out
    assert "Methods used" in out and "tcp" in out  # the printable report states its methods

    code, out, _ = run(capsys, "export", "--site", "Hill School", "--db", db)
    table = list(csv.reader(io.StringIO(out)))
    assert table[0][:10] == ["time", "agent", "room", "probe", "target", "metric", "value",
                             "unit", "method", "report_id"]
    assert len(table) == 1 + 10
    assert {row[9] for row in table[1:]} == {str(r.report_id) for r in reports}
    code, out, _ = run(capsys, "export", "--site", "Hill School", "--format", "json", "--db", db)
    assert len(json.loads(out)) == 10

    code, out, _ = run(capsys, "collector", "revoke-agent", who.agent_id, "--db", db)
    assert code == 0 and who.agent_id in out
    resp = client.post("/api/v1/reports", headers=who.headers,
                       content=batch_body(make_report(who.agent_id)))
    assert resp.status_code == 401


def test_new_token_replaces_the_old_one(capsys: pytest.CaptureFixture[str], db: str,
                                        tmp_path: Path) -> None:
    old = create(capsys, db)
    code, out, _ = run(capsys, "collector", "new-token", "Hill School", "--json", "--db", db)
    new = json.loads(out)["token"]
    assert code == 0 and new != old
    client = _serve(db, tmp_path)
    assert client.post("/api/v1/enrol", json={"token": old, "room": "R"}).status_code == 401
    assert enrol(client, new, "R").agent_id


@pytest.mark.parametrize("argv", [
    ["report", "--site", "Nowhere"],
    ["export", "--site", "Nowhere"],
    ["collector", "agents", "--site", "Nowhere"],
    ["collector", "new-token", "Nowhere"],
])
def test_unknown_site_names_it(capsys: pytest.CaptureFixture[str], db: str,
                               argv: list[str]) -> None:
    code, out, err = run(capsys, *argv, "--db", db)
    assert (code, out) == (1, "")
    assert "unknown site 'Nowhere'" in err


def test_unknown_profile_and_agent(capsys: pytest.CaptureFixture[str], db: str) -> None:
    create(capsys, db)
    code, _, err = run(capsys, "report", "--site", "Hill School", "--profile", "zoom",
                       "--db", db)
    assert code == 1 and "unknown profile 'zoom'; known: " in err
    assert "microsoft-teams-media" in err
    code, _, err = run(capsys, "collector", "revoke-agent", "no-such-agent", "--db", db)
    assert code == 1 and "unknown agent 'no-such-agent'" in err


def test_serve_runs_uvicorn_on_the_app(capsys: pytest.CaptureFixture[str], db: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    seen: dict[str, object] = {}

    def fake_run(app: object, **kwargs: object) -> None:
        seen.update(kwargs, app=app)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    code, out, _ = run(capsys, "collector", "serve", "--port", "8123", "--db", db)
    assert code == 0
    assert (seen["host"], seen["port"]) == ("127.0.0.1", 8123)
    assert "http://127.0.0.1:8123/" in out
    assert seen["app"].state.settings.database_url == db  # type: ignore[attr-defined]


def test_classprobe_dispatcher_reaches_the_collector(capsys: pytest.CaptureFixture[str],
                                                     db: str) -> None:
    from classprobe.cli import main as classprobe_main

    assert classprobe_main(["collector", "create-site", "Via Dispatcher", "--db", db]) == 0
    assert "Via Dispatcher" in capsys.readouterr().out
