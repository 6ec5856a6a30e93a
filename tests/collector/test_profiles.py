"""Profile format v2: the Teams profile, loader errors naming file, key and value, the
registry of built-in and stored supplier profiles."""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from collector.db import init_db, make_engine
from collector.models import StoredProfile
from collector.services.profiles import (
    BUILTIN_DIR,
    ProfileError,
    add_profile,
    load_profile,
    load_profiles,
    parse_profile,
    profile_from_toml,
    profile_registry,
    profile_summary,
    profile_targets,
    registry_entries,
)

TEAMS_FILE = BUILTIN_DIR / "microsoft-teams-media.toml"
Mutation = Callable[[dict[str, Any]], Any]

SUPPLIER_FILE = Path(__file__).parent / "fixtures" / "profiles" / "acme-reader.toml"
SUPPLIER = SUPPLIER_FILE.read_text()


def teams_data() -> dict[str, Any]:
    return tomllib.loads(TEAMS_FILE.read_text())


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path}/profiles.db")
    init_db(engine)
    return engine


def test_teams_profile_cites_standards_and_has_microsofts_numbers() -> None:
    teams = load_profiles()["microsoft-teams-media"]
    assert teams.source.citation == (
        "MicrosoftDocs/OfficeDocs-SkypeForBusiness, Teams/prepare-network.md @075f81de, "
        "dated 2019; check the current Learn page")
    assert teams.source.confidence == "P"
    assert (teams.version, teams.class_size) == ("2026.1", 30)
    got = [(r.id, r.metric, r.stat, r.statistic, r.op, r.threshold, r.unit, r.severity,
            r.window, r.scope, r.per_student, r.share_min_pct)
           for r in teams.requirements]
    assert got == [
        ("rtt", "tcp_connect_ms", "p50", "p95", "<", 100.0, "ms", "must", "in_lesson", "site",
         False, None),
        ("jitter", "jitter_ms", "value", "p95", "<", 30.0, "ms", "must", "in_lesson", "site",
         False, None),
        ("loss", "loss_pct", "value", "p95", "<", 1.0, "%", "must", "in_lesson", "site",
         False, None),
    ]
    assert teams.requirements[0].targets == (
        "teams.microsoft.com", "*.teams.microsoft.com", "*.lync.com", "*.skype.com")
    assert "1 RTT" in teams.note and "peak load" in teams.description
    assert profile_targets(teams) == ["teams.microsoft.com"]


def test_explicit_probe_targets_win() -> None:
    data = teams_data()
    data["probe_targets"] = ["https://Teams.Microsoft.com/"]
    assert profile_targets(parse_profile(data, "x.toml")) == ["https://teams.microsoft.com/"]


def test_v2_keys_are_read_with_their_defaults() -> None:
    acme = profile_from_toml(SUPPLIER, "acme.toml")
    assert (acme.id, acme.version, acme.class_size) == ("acme-reader", "2026.2", 32)
    download, reach = acme.requirements
    assert (download.per_student, download.scope, download.window, download.share_min_pct,
            download.remediation) == (True, "room", "in_lesson", None,
                                      "Ask Acme for the offline mode.")
    assert (reach.statistic, reach.share_min_pct, reach.op, reach.threshold, reach.scope,
            reach.window, reach.per_student, reach.remediation) == (
        "share", 95.0, "==", 0.0, "site", "all", False, "")


def _error(mutate: Mutation) -> str:
    data = copy.deepcopy(teams_data())
    mutate(data)
    with pytest.raises(ProfileError) as info:
        parse_profile(data, "bad.toml")
    return str(info.value)


def _set(key: str, value: Any, index: int = 1) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        data["requirements"][index][key] = value
    return mutate


def _update(index: int = 1, **changes: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        data["requirements"][index].update(changes)
    return mutate


BANDWIDTH: dict[str, Any] = {"metric": "download_mbps", "unit": "Mbps", "op": ">=", "threshold": 1,
             "scope": "room"}


@pytest.mark.parametrize(("mutate", "message"), [
    (_set("op", "=<"), "bad.toml: requirements[1].op: '=<' is not one of <, <=, >, >=, =="),
    (_set("metric", "rtt_ms"), "bad.toml: requirements[1].metric: 'rtt_ms' is not in the "
                               "metric catalogue"),
    (_set("metric", "cpu_model"), "bad.toml: requirements[1].metric: 'cpu_model' is a text "
                                  "metric; it has no threshold"),
    (_set("unit", "s"), "bad.toml: requirements[1].unit: 's' does not match jitter_ms's unit "
                        "'ms'"),
    (_set("threshold", "30"), "bad.toml: requirements[1].threshold: '30' is not a number"),
    (_set("threshold", True), "bad.toml: requirements[1].threshold: True is not a number"),
    (_set("statistic", "p99"), "bad.toml: requirements[1].statistic: 'p99' is not one of "
                               "p10, p50, p95, min, max, mean, share"),
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
     "bad.toml: requirements[1].severity: 'must' needs a P or S source; this one is U "
     "(uncertain)"),
    (_set("source", {"citation": "blog", "confidence": "X"}),
     "bad.toml: requirements[1].source.confidence: 'X' is not one of P, S, U"),
    (lambda d: d["requirements"][0].pop("metric"), "bad.toml: requirements[0].metric: is "
                                                   "required"),
    (lambda d: d.pop("source"), "bad.toml: source: is required"),
    (lambda d: d.update(requirements=[]), "bad.toml: requirements: the profile has no "
                                          "requirements"),
    (lambda d: [r.update(severity="should") for r in d["requirements"]],
     "bad.toml: requirements: at least one requirement must have severity 'must'"),
    (lambda d: d.update(titel="x"), "bad.toml: titel: unknown key (value 'x')"),
    # duplicate requirement id: names both requirements
    (_set("id", "rtt", index=2), "bad.toml: requirements[2].id: 'rtt' is already used by "
                                 "requirements[0]"),
    # impossible thresholds: outside the catalogue's range, not 0/1 for a flag, never met
    (_set("threshold", 150, index=2), "bad.toml: requirements[2].threshold: 150 is outside "
                                      "loss_pct's range 0..100 %"),
    (_set("threshold", -1), "bad.toml: requirements[1].threshold: -1 is outside jitter_ms's "
                            "range 0..3600000 ms"),
    (_update(metric="rssi_dbm", unit="dBm", threshold=10),
     "bad.toml: requirements[1].threshold: 10 is outside rssi_dbm's range -120..0 dBm"),
    (_update(metric="blocked", unit="bool", op="==", threshold=0.5),
     "bad.toml: requirements[1].threshold: 0.5 is not 0 or 1 (blocked is a 0/1 flag)"),
    (_update(metric="tls_intercepted", unit="bool", op="==", threshold=2),
     "bad.toml: requirements[1].threshold: 2 is not 0 or 1 (tls_intercepted is a 0/1 flag)"),
    (_update(index=2, threshold=0), "bad.toml: requirements[2].threshold: loss_pct < 0 can "
                                    "never be met (loss_pct is never below 0)"),
    (_update(metric="udp_reachable", unit="bool", op=">", threshold=1),
     "bad.toml: requirements[1].threshold: udp_reachable > 1 can never be met (udp_reachable "
     "is never above 1)"),
    # share and share_min_pct go together
    (_set("statistic", "share"), "bad.toml: requirements[1].share_min_pct: is required when "
                                 "statistic is 'share' (the % of samples that must meet the "
                                 "threshold)"),
    (_set("share_min_pct", 80), "bad.toml: requirements[1].share_min_pct: 80 is only used "
                                "with statistic 'share' (statistic is 'p95')"),
    (_update(statistic="share", share_min_pct=150), "bad.toml: requirements[1].share_min_pct: "
                                                    "150 must be above 0 and at most 100"),
    (_update(statistic="share", share_min_pct=0), "bad.toml: requirements[1].share_min_pct: 0 "
                                                  "must be above 0 and at most 100"),
    (_update(statistic="share", share_min_pct="90"), "bad.toml: requirements[1].share_min_pct: "
                                                     "'90' is not a number"),
    # per_student: bandwidth only, a minimum, judged per room
    (_set("per_student", True), "bad.toml: requirements[1].per_student: true is only allowed "
                                "for download_mbps or upload_mbps, not 'jitter_ms'"),
    (_set("per_student", "yes"), "bad.toml: requirements[1].per_student: 'yes' is not a "
                                 "boolean"),
    (_update(**{**BANDWIDTH, "op": "<"}, per_student=True),
     "bad.toml: requirements[1].op: '<' cannot be used with per_student = true: a per-student "
     "need is a minimum (> or >=)"),
    (_update(**{**BANDWIDTH, "scope": "site"}, per_student=True),
     "bad.toml: requirements[1].scope: 'site' cannot be used with per_student = true: "
     "per-student needs are judged against each room's total (scope = \"room\")"),
    # unknown window / scope
    (_set("window", "lessons"), "bad.toml: requirements[1].window: 'lessons' is not one of "
                                "in_lesson, out_of_hours, all"),
    (_set("scope", "class"), "bad.toml: requirements[1].scope: 'class' is not one of device, "
                             "room, site"),
    (_set("remediation", 3), "bad.toml: requirements[1].remediation: 3 is not a string"),
    # profile keys
    (lambda d: d.pop("version"), "bad.toml: version: is required"),
    (lambda d: d.update(version=2026), "bad.toml: version: 2026 is not a string"),
    (lambda d: d.update(version=" "), "bad.toml: version: must not be empty"),
    (lambda d: d.update(version="x" * 51), f"bad.toml: version: {'x' * 51!r} is longer than 50 "
                                           "characters"),
    (lambda d: d.update(id="Teams Media"), "bad.toml: id: 'Teams Media' must be 1-100 "
                                           "characters of a-z, 0-9, '.', '_' or '-', starting "
                                           "with a letter or digit"),
    (lambda d: d.update(class_size=0), "bad.toml: class_size: 0 must be >= 1"),
    (lambda d: d.update(class_size="30"), "bad.toml: class_size: '30' is not an integer"),
])
def test_loader_errors_name_file_key_and_value(mutate: Mutation, message: str) -> None:
    assert _error(mutate) == message


@pytest.mark.parametrize("changes", [
    {"op": "==", "threshold": 0},                            # == on a number
    {"statistic": "share", "share_min_pct": 100},            # share at its upper bound
    {"metric": "blocked", "unit": "bool", "op": "==", "threshold": 1},
    {**BANDWIDTH, "per_student": True, "window": "out_of_hours"},
    {"scope": "device", "window": "all", "per_student": False},
])
def test_valid_v2_requirements_load(changes: dict[str, Any]) -> None:
    data = teams_data()
    data["requirements"][1].update(changes)
    jitter = parse_profile(data, "ok.toml").requirements[1]
    for key, value in changes.items():
        assert getattr(jitter, key) == value


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text('id = "x"\ntitle = \n')
    with pytest.raises(ProfileError, match=r"broken\.toml: not valid TOML"):
        load_profile(bad)
    with pytest.raises(ProfileError, match=r"^upload: not valid TOML"):
        profile_from_toml("= 1", "upload")


def test_duplicate_profile_ids_in_a_directory(tmp_path: Path) -> None:
    for name in ("a.toml", "b.toml"):
        (tmp_path / name).write_text(TEAMS_FILE.read_text())
    with pytest.raises(ProfileError) as info:
        load_profiles(tmp_path)
    assert str(info.value) == (f"{tmp_path / 'b.toml'}: id: duplicate id "
                               f"'microsoft-teams-media': already used by {tmp_path / 'a.toml'}")


def test_registry_is_the_builtins_then_stored_profiles(engine: Engine) -> None:
    builtins = load_profiles()
    assert profile_registry(engine) == builtins
    with Session(engine) as session:
        added = add_profile(session, SUPPLIER, "acme.toml")
        registry = profile_registry(session)
    assert list(registry) == [*builtins, "acme-reader"]
    assert registry["acme-reader"] == added
    entries = registry_entries(engine)
    assert [e.builtin for e in entries] == [True] * len(builtins) + [False]
    assert entries[-1].document == SUPPLIER
    assert profile_summary(entries[-1]) == {
        "id": "acme-reader", "version": "2026.2", "title": "Acme Reader",
        "source": {"citation": "Acme Reader network requirements, March 2026",
                   "confidence": "P", "url": None},
        "builtin": False, "requirements": 2}


def test_a_supplier_profile_may_not_reuse_a_builtin_id(engine: Engine) -> None:
    with Session(engine) as session, pytest.raises(ProfileError) as info:
        add_profile(session, TEAMS_FILE.read_text(), "mine.toml")
    assert str(info.value) == ("mine.toml: id: duplicate id 'microsoft-teams-media': already "
                               f"used by the built-in profile {TEAMS_FILE}")
    assert profile_registry(engine) == load_profiles()


def test_a_supplier_profile_may_not_reuse_a_stored_id(engine: Engine) -> None:
    with Session(engine) as session:
        add_profile(session, SUPPLIER, "acme.toml")
        stored = session.get(StoredProfile, "acme-reader")
        assert stored is not None and stored.version == "2026.2"
        when = stored.created_at.strftime("%Y-%m-%d %H:%M")
        with pytest.raises(ProfileError) as info:
            add_profile(session, SUPPLIER.replace('"2026.2"', '"2026.3"'), "acme-v3.toml")
    assert str(info.value) == ("acme-v3.toml: id: duplicate id 'acme-reader': already used by "
                               f"stored profile 'acme-reader' (added {when} UTC)")


def test_an_invalid_supplier_profile_is_not_stored(engine: Engine) -> None:
    with Session(engine) as session, pytest.raises(ProfileError) as info:
        add_profile(session, SUPPLIER.replace('"download_mbps"', '"download_kbps"'), "acme.toml")
    assert str(info.value) == ("acme.toml: requirements[0].metric: 'download_kbps' is not in "
                               "the metric catalogue")
    assert "acme-reader" not in profile_registry(engine)


def test_a_stored_profile_that_clashes_with_a_builtin_is_named(engine: Engine) -> None:
    """A built-in added by an upgrade with an id a supplier already used: loud, not dropped."""
    with Session(engine) as session:
        session.add(StoredProfile(id="microsoft-teams-media", version="2026.1",
                                  document=TEAMS_FILE.read_text()))
        session.commit()
    with pytest.raises(ProfileError, match=r"^stored profile 'microsoft-teams-media' \(added "
                                           r".*\): id: duplicate id 'microsoft-teams-media': "
                                           r"already used by the built-in profile "):
        profile_registry(engine)
