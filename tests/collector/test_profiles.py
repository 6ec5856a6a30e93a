"""Profile files: the built-in Teams profile, and loader errors that name file, key, value."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from collector.services.profiles import (
    BUILTIN_DIR,
    ProfileError,
    load_profile,
    load_profiles,
    parse_profile,
    profile_targets,
)

TEAMS_FILE = BUILTIN_DIR / "microsoft-teams-media.toml"


def teams_data() -> dict[str, Any]:
    return tomllib.loads(TEAMS_FILE.read_text())


def test_teams_profile_cites_standards_and_has_microsofts_numbers() -> None:
    teams = load_profiles()["microsoft-teams-media"]
    assert teams.source.citation == (
        "MicrosoftDocs/OfficeDocs-SkypeForBusiness, Teams/prepare-network.md @075f81de, "
        "dated 2019; check the current Learn page")
    assert teams.source.confidence == "P"
    got = [(r.id, r.metric, r.stat, r.statistic, r.op, r.threshold, r.unit, r.severity)
           for r in teams.requirements]
    assert got == [
        ("rtt", "tcp_connect_ms", "p50", "p95", "<", 100.0, "ms", "must"),
        ("jitter", "jitter_ms", "value", "p95", "<", 30.0, "ms", "must"),
        ("loss", "loss_pct", "value", "p95", "<", 1.0, "%", "must"),
    ]
    assert teams.requirements[0].targets == (
        "teams.microsoft.com", "*.teams.microsoft.com", "*.lync.com", "*.skype.com")
    assert "1 RTT" in teams.note and "peak load" in teams.description
    assert profile_targets(teams) == ["teams.microsoft.com"]


def test_explicit_probe_targets_win() -> None:
    data = teams_data()
    data["probe_targets"] = ["https://Teams.Microsoft.com/"]
    assert profile_targets(parse_profile(data, "x.toml")) == ["https://teams.microsoft.com/"]


def _error(mutate: Any) -> str:
    data = copy.deepcopy(teams_data())
    mutate(data)
    with pytest.raises(ProfileError) as info:
        parse_profile(data, "bad.toml")
    return str(info.value)


def _set(key: str, value: Any) -> Any:
    def mutate(data: dict[str, Any]) -> None:
        data["requirements"][1][key] = value
    return mutate


@pytest.mark.parametrize(("mutate", "message"), [
    (_set("op", "=<"), "bad.toml: requirements[1].op: '=<' is not one of <, <=, >, >="),
    (_set("metric", "rtt_ms"), "bad.toml: requirements[1].metric: 'rtt_ms' is not in the "
                               "metric catalogue"),
    (_set("metric", "cpu_model"), "bad.toml: requirements[1].metric: 'cpu_model' is a text "
                                  "metric; it has no threshold"),
    (_set("unit", "s"), "bad.toml: requirements[1].unit: 's' does not match jitter_ms's unit "
                        "'ms'"),
    (_set("threshold", "30"), "bad.toml: requirements[1].threshold: '30' is not a number"),
    (_set("threshold", True), "bad.toml: requirements[1].threshold: True is not a number"),
    (_set("statistic", "p99"), "bad.toml: requirements[1].statistic: 'p99' is not one of "
                               "p10, p50, p95, min, max, mean"),
    (_set("stat", "median"), "bad.toml: requirements[1].stat: 'median' is not one of value, "
                             "min, p50, p95, max, mean"),
    (_set("min_samples", 2.5), "bad.toml: requirements[1].min_samples: 2.5 is not an integer"),
    (_set("min_samples", 0), "bad.toml: requirements[1].min_samples: 0 must be >= 1"),
    (_set("warn_within_pct", 150), "bad.toml: requirements[1].warn_within_pct: 150 must be "
                                   "within 0..100"),
    (_set("targets", ["ok.example", ""]), "bad.toml: requirements[1].targets[1]: '' is not a "
                                          "non-empty string"),
    (_set("treshold", 3), "bad.toml: requirements[1].treshold: unknown key (value 3)"),
    (_set("source", {"citation": "blog", "confidence": "U"}),
     "bad.toml: requirements[1].severity: 'must' needs a P or S source; this one is U"),
    (_set("source", {"citation": "blog", "confidence": "X"}),
     "bad.toml: requirements[1].source.confidence: 'X' is not one of P, S, U"),
    (lambda d: d["requirements"][0].pop("metric"), "bad.toml: requirements[0].metric: is "
                                                   "required"),
    (lambda d: d.pop("source"), "bad.toml: source: is required"),
    (lambda d: d.update(requirements=[]), "bad.toml: requirements: the profile has no "
                                          "requirements"),
    (lambda d: d["requirements"][2].update(id="rtt"), "requirement id 'rtt' is used twice"),
    (lambda d: [r.update(severity="should") for r in d["requirements"]],
     "at least one requirement must have severity 'must'"),
    (lambda d: d.update(titel="x"), "bad.toml: titel: unknown key (value 'x')"),
])
def test_loader_errors_name_file_key_and_value(mutate: Any, message: str) -> None:
    assert message in _error(mutate)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text('id = "x"\ntitle = \n')
    with pytest.raises(ProfileError, match=r"broken\.toml: not valid TOML"):
        load_profile(bad)


def test_duplicate_profile_ids_in_a_directory(tmp_path: Path) -> None:
    for name in ("a.toml", "b.toml"):
        (tmp_path / name).write_text(TEAMS_FILE.read_text())
    with pytest.raises(ProfileError, match=r"b\.toml: id: 'microsoft-teams-media' is already"):
        load_profiles(tmp_path)
