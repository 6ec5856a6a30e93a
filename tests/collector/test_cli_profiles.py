"""``classprobe profiles add FILE`` and ``classprobe profiles list [--json]``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from classprobe.cli import main as classprobe_main
from collector.services.profiles import BUILTIN_DIR, load_profiles
from tests.collector.test_profiles import SUPPLIER, SUPPLIER_FILE

Capsys = pytest.CaptureFixture[str]


def run(capsys: Capsys, *argv: str) -> tuple[int, str, str]:
    """``classprobe ARGV`` through the top-level dispatcher, as a user types it."""
    code = classprobe_main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/cli.db"


def test_add_then_list(capsys: Capsys, db: str) -> None:
    code, out, err = run(capsys, "profiles", "add", str(SUPPLIER_FILE), "--db", db)
    assert (code, err) == (0, "")
    assert out == (f"profile 'acme-reader' version 2026.2 added from {str(SUPPLIER_FILE)!r}: "
                   "2 requirement(s)\n")
    code, out, _ = run(capsys, "profiles", "list", "--json", "--db", db)
    listing = json.loads(out)
    assert code == 0
    assert [p["id"] for p in listing] == [*load_profiles(), "acme-reader"]
    assert listing[-1] == {
        "id": "acme-reader", "version": "2026.2", "title": "Acme Reader",
        "source": {"citation": "Acme Reader network requirements, March 2026",
                   "confidence": "P", "url": None},
        "builtin": False, "requirements": 2}


def test_list_as_text(capsys: Capsys, db: str) -> None:
    code, out, _ = run(capsys, "profiles", "list", "--db", db)
    lines = out.splitlines()
    width = len("college-board-bluebook-sat-school-day")
    assert code == 0 and len(lines) == 1 + len(load_profiles())
    assert lines[0] == f"{'id':{width}}  version     kind      reqs  conf  title"
    assert (f"{'kahoot-live':{width}}  2026.1      built-in     3  P     Kahoot! live quizzes"
            in lines)


def test_a_bad_file_is_refused_naming_file_key_and_value(capsys: Capsys, db: str,
                                                         tmp_path: Path) -> None:
    bad = tmp_path / "acme.toml"
    bad.write_text(SUPPLIER.replace('unit = "Mbps"', 'unit = "kbps"'))
    code, out, err = run(capsys, "profiles", "add", str(bad), "--db", db)
    assert (code, out) == (1, "")
    assert err == (f"classprobe profiles: {bad}: requirements[0].unit: 'kbps' does not match "
                   "download_mbps's unit 'Mbps'\n")
    code, out, _ = run(capsys, "profiles", "list", "--json", "--db", db)
    assert "acme-reader" not in [p["id"] for p in json.loads(out)]


def test_a_reused_id_is_refused_naming_both(capsys: Capsys, db: str) -> None:
    teams = BUILTIN_DIR / "microsoft-teams-media.toml"
    code, _, err = run(capsys, "profiles", "add", str(teams), "--db", db)
    assert (code, err) == (1, f"classprobe profiles: {teams}: id: duplicate id "
                              "'microsoft-teams-media': already used by the built-in profile "
                              f"{teams}\n")
    assert run(capsys, "profiles", "add", str(SUPPLIER_FILE), "--db", db)[0] == 0
    code, _, err = run(capsys, "profiles", "add", str(SUPPLIER_FILE), "--db", db)
    assert code == 1
    assert err.startswith(f"classprobe profiles: {SUPPLIER_FILE}: id: duplicate id "
                          "'acme-reader': already used by stored profile 'acme-reader' (added ")


def test_a_missing_file(capsys: Capsys, db: str, tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    code, _, err = run(capsys, "profiles", "add", str(missing), "--db", db)
    assert code == 1
    assert err.startswith(f"classprobe profiles: cannot read profile file {str(missing)!r}: ")


def test_profiles_is_in_the_usage(capsys: Capsys) -> None:
    assert run(capsys, "--help")[1].count("profiles add FILE|list") == 1
