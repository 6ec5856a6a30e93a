"""``classprobe campaign create|list`` and ``classprobe compare`` against a SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import Session

from classprobe.cli import main as classprobe_main
from collector.cli import main
from collector.db import init_db, make_engine
from tests.collector.test_campaigns import PROFILE_ID, SITE, measured, school


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/campaigns.db"


@pytest.fixture
def agents(db: str) -> list[str]:
    engine = make_engine(db)
    init_db(engine)
    with Session(engine) as session:
        _, agents = school(session)
    return agents


def run(capsys: pytest.CaptureFixture[str], db: str, *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--db", db])
    out, err = capsys.readouterr()
    return code, out, err


def create(capsys: pytest.CaptureFixture[str], db: str, name: str, start: str, end: str,
           *extra: str) -> tuple[int, str, str]:
    return run(capsys, db, "campaign", "create", "--site", SITE, "--name", name,
               "--profile", PROFILE_ID, "--from", start, "--to", end, *extra)


def test_create_and_list(capsys: pytest.CaptureFixture[str], db: str,
                         agents: list[str]) -> None:
    code, out, _ = run(capsys, db, "campaign", "list", "--site", SITE)
    assert (code, out.strip()) == (0, "site 'Test School' has no campaigns yet")
    code, out, _ = create(capsys, db, "autumn", "2026-10-05T09:00:00+01:00",
                          "2026-10-12T08:00:00Z", "--note", "baseline")
    assert code == 0
    assert out.strip() == ("campaign 'autumn' of site 'Test School' created: "
                           "2026-10-05T08:00:00+00:00 .. 2026-10-12T08:00:00+00:00, "
                           f"profiles {PROFILE_ID}")
    code, out, _ = run(capsys, db, "campaign", "create", "--site", SITE, "--name", "spring",
                       "--profile", PROFILE_ID, "--profile", "microsoft-teams-media",
                       "--from", "2027-03-01T08:00:00Z", "--to", "2027-03-08T08:00:00Z",
                       "--json")
    assert code == 0
    created = json.loads(out)
    assert created["profiles"] == [PROFILE_ID, "microsoft-teams-media"]
    code, out, _ = run(capsys, db, "campaign", "list", "--site", SITE)
    lines = out.splitlines()
    assert lines[0].split() == ["campaign", "from", "(UTC)", "to", "(UTC)", "profiles", "note"]
    assert lines[1].split() == ["autumn", "2026-10-05T08:00:00+00:00",
                                "2026-10-12T08:00:00+00:00", PROFILE_ID, "baseline"]
    assert lines[2].split() == ["spring", "2027-03-01T08:00:00+00:00",
                                "2027-03-08T08:00:00+00:00", f"{PROFILE_ID},",
                                "microsoft-teams-media", "-"]
    code, out, _ = run(capsys, db, "campaign", "list", "--site", SITE, "--json")
    assert [c["name"] for c in json.loads(out)] == ["autumn", "spring"]


def test_create_refusals_name_the_value(capsys: pytest.CaptureFixture[str], db: str,
                                        agents: list[str]) -> None:
    code, _, err = create(capsys, db, "x", "next monday", "2026-10-12T08:00:00Z")
    assert (code, err.strip()) == (1, "classprobe campaign: --from 'next monday' is not an "
                                      "ISO 8601 time (like 2026-09-07T08:00:00+01:00)")
    code, _, err = create(capsys, db, "x", "2026-10-12T08:00:00Z", "2026-10-05T08:00:00Z")
    assert (code, err.strip()) == (1, "classprobe campaign: end 2026-10-05T08:00:00+00:00 is "
                                      "not after start 2026-10-12T08:00:00+00:00")
    code, _, err = run(capsys, db, "campaign", "create", "--site", SITE, "--name", "x",
                       "--profile", "zoom", "--from", "2026-10-05T08:00:00Z",
                       "--to", "2026-10-12T08:00:00Z")
    assert code == 1 and "classprobe campaign: unknown profile 'zoom'; known: " in err
    code, _, err = run(capsys, db, "campaign", "list", "--site", "Nowhere")
    assert (code, err.strip()) == (1, "classprobe campaign: unknown site 'Nowhere'")
    create(capsys, db, "x", "2026-10-05T08:00:00Z", "2026-10-12T08:00:00Z")
    code, _, err = create(capsys, db, "x", "2026-10-05T08:00:00Z", "2026-10-12T08:00:00Z")
    assert (code, err.strip()) == (1, "classprobe campaign: site 'Test School' already has a "
                                      "campaign 'x'")


def test_compare_text_and_json(capsys: pytest.CaptureFixture[str], db: str,
                               agents: list[str]) -> None:
    create(capsys, db, "autumn", "2026-10-05T08:00:00Z", "2026-10-12T08:00:00Z")
    create(capsys, db, "spring", "2027-03-01T08:00:00Z", "2027-03-08T08:00:00Z")
    with Session(make_engine(db)) as session:
        measured(session, agents)
    argv = ("compare", "--site", SITE, "--profile", PROFILE_ID, "--before", "autumn",
            "--after", "spring", "--resamples", "300")
    code, out, _ = run(capsys, db, *argv)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"Test latency ({PROFILE_ID}): 'autumn' (before) → 'spring' (after)"
    assert lines[1] == ("  300 bootstrap resamples (seed 20260907), 95 % intervals; "
                        "Mann-Whitney U, two-sided")
    assert "  [BETTER                ] rtt (must): TCP connect below 100 ms" in lines
    assert ("    p50: before 114.5 ms (60 samples, 6 device(s)), after 64.5 ms "
            "(60 samples, 6 device(s))") in lines
    assert any(line.startswith("    p50 114.5 → 64.5 ms: -50 ms (95 % CI ") for line in lines)
    assert "  [UNKNOWN               ] jitter (should): Jitter below 30 ms" in lines
    assert lines[-1] == "summary: 1 better, 0 worse, 0 no significant change, 1 unknown"

    code, out, _ = run(capsys, db, *argv, "--format", "json")
    body = json.loads(out)
    assert [r["verdict"] for r in body["requirements"]] == ["better", "unknown"]
    # the classprobe entry point dispatches the command word to the collector's CLI
    assert classprobe_main([*argv, "--seed", "1", "--format", "json", "--db", db]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["seed"] == 1 and again["requirements"][0]["verdict"] == "better"


def test_compare_refusals(capsys: pytest.CaptureFixture[str], db: str,
                          agents: list[str]) -> None:
    create(capsys, db, "autumn", "2026-10-05T08:00:00Z", "2026-10-12T08:00:00Z")
    code, _, err = run(capsys, db, "compare", "--site", SITE, "--profile", PROFILE_ID,
                       "--before", "autumn", "--after", "spring")
    assert (code, err.strip()) == (1, "classprobe compare: site 'Test School' has no campaign "
                                      "'spring'; its campaigns: 'autumn'")
    code, _, err = run(capsys, db, "compare", "--site", SITE, "--profile", PROFILE_ID,
                       "--before", "autumn", "--after", "autumn", "--resamples", "0")
    assert (code, err.strip()) == (1, "classprobe compare: --resamples 0 must be at least 1")
