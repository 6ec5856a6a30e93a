"""``classprobe collector timetable set|show|clear``: TOML in, validated, stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collector.cli import main

TOML = """\
timezone = "Europe/London"
weekdays = ["mon", "tue", "wed", "thu", "fri"]

[[periods]]
name = "P1"
start = "08:50"
end = "09:50"

[[periods]]
name = "P2"
start = 10:00:00
end = 11:00:00
days = ["mon", "wed"]

[[terms]]
name = "Autumn"
start = 2026-09-03
end = 2026-12-18

[[exceptions]]
date = 2026-11-27
note = "INSET"

[[exam_windows]]
start = "2027-05-11T09:00"
end = "2027-05-11T12:00"
note = "GCSE maths"
"""

DOCUMENT = {
    "timezone": "Europe/London",
    "weekdays": ["mon", "tue", "wed", "thu", "fri"],
    "periods": [{"name": "P1", "start": "08:50", "end": "09:50"},
                {"name": "P2", "start": "10:00", "end": "11:00", "days": ["mon", "wed"]}],
    "terms": [{"name": "Autumn", "start": "2026-09-03", "end": "2026-12-18"}],
    "exceptions": [{"date": "2026-11-27", "closed": True, "note": "INSET"}],
    "exam_windows": [{"start": "2027-05-11T09:00", "end": "2027-05-11T12:00",
                      "note": "GCSE maths"}],
}


@pytest.fixture
def db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    url = f"sqlite:///{tmp_path}/cli.db"
    assert main(["collector", "create-site", "Hill School", "--db", url]) == 0
    capsys.readouterr()
    return url


def run(capsys: pytest.CaptureFixture[str], db: str, *argv: str) -> tuple[int, str, str]:
    code = main(["collector", "timetable", *argv, "--db", db])
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "timetable.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_set_show_clear(tmp_path: Path, db: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, TOML)
    code, out, _ = run(capsys, db, "set", "--site", "Hill School", path)
    assert (code, out) == (0, f"timetable of site 'Hill School' set from {path!r}: "
                              "2 period(s), timezone Europe/London\n")
    code, out, _ = run(capsys, db, "show", "--site", "Hill School", "--json")
    assert (code, json.loads(out)) == (0, DOCUMENT)
    code, out, _ = run(capsys, db, "show", "--site", "Hill School")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("timetable of site 'Hill School' (updated 20")
    assert lines[1:] == [
        "timezone: Europe/London",
        "school days: mon tue wed thu fri",
        "periods: 2",
        "  P1  08:50  09:50",
        "  P2  10:00  11:00  days=mon,wed",
        "terms: 1",
        "  Autumn  2026-09-03  2026-12-18",
        "exceptions: 1",
        "  2026-11-27  closed=True  note=INSET",
        "exam windows: 1",
        "  2027-05-11T09:00  2027-05-11T12:00  note=GCSE maths",
    ]
    assert run(capsys, db, "clear", "--site", "Hill School")[:2] == (
        0, "timetable of site 'Hill School' removed\n")
    code, out, err = run(capsys, db, "show", "--site", "Hill School")
    assert (code, out) == (1, "")
    assert "site 'Hill School' has no timetable" in err
    assert run(capsys, db, "clear", "--site", "Hill School")[:2] == (
        0, "site 'Hill School' had no timetable; nothing removed\n")


def test_overlapping_file_is_refused_naming_the_file_and_periods(
        tmp_path: Path, db: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, TOML.replace('end = "09:50"', 'end = "10:30"'))
    code, out, err = run(capsys, db, "set", "--site", "Hill School", path)
    assert (code, out) == (1, "")
    assert err == (f"classprobe collector: {path}: periods[1] 'P2' 10:00-11:00 overlaps "
                   "periods[0] 'P1' 08:50-10:30 on mon\n")
    assert run(capsys, db, "show", "--site", "Hill School")[0] == 1  # nothing stored


def test_bad_toml_missing_file_and_unknown_site(tmp_path: Path, db: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, db, "set", "--site", "Hill School",
                       write(tmp_path, "timezone = \n"))
    assert code == 1 and "timetable.toml: not valid TOML" in err
    code, _, err = run(capsys, db, "set", "--site", "Hill School", str(tmp_path / "no.toml"))
    assert code == 1 and f"cannot read timetable file {str(tmp_path / 'no.toml')!r}" in err
    for argv in (["set", "--site", "Nowhere", write(tmp_path, TOML)],
                 ["show", "--site", "Nowhere"], ["clear", "--site", "Nowhere"]):
        code, out, err = run(capsys, db, *argv)
        assert (code, out, err) == (1, "", "classprobe collector: unknown site 'Nowhere'\n")
