"""Requirement profiles (format v2): data files, validated on load, and the registry.

A profile names a product or standard, cites its source, and lists requirements; each
requirement is a metric from the catalogue, the per-report summary to use (``stat``), the
statistic across samples (or the ``share`` of samples that meet the threshold), a
comparator and a threshold, the window (lessons / out of hours / all), the scope it is
judged at (device / room / site) and, for bandwidth, optional per-student scaling by the
profile's ``class_size``. Every loading error names the file, the key and the bad value.

Keys (a typo is refused as an unknown key). Profile: ``id`` (a-z 0-9 . _ -), ``version``,
``title``, ``description``, ``note`` (what the source does not give), ``[source]``
(``citation``, ``confidence`` P|S|U, ``url``), ``class_size`` (30), ``probe_targets``,
``[[requirements]]``. Requirement: ``id``, ``title``, ``metric`` and ``unit`` (as in the
catalogue), ``stat`` (the per-report summary), ``statistic`` (p10 p50 p95 min max mean, or
``share`` with ``share_min_pct``), ``op`` (< <= > >= ==), ``threshold`` (inside the
metric's range; 0 or 1 for a flag), ``window`` (in_lesson | out_of_hours | all),
``scope`` (device | room | site), ``per_student`` (download/upload only, scope room),
``severity`` (must needs a P or S source), ``min_samples`` (5), ``warn_within_pct``,
``targets`` (host globs; none: device data), ``note``, ``[source]``, ``remediation``.

Built-in profiles are ``collector/profiles/*.toml``; suppliers add theirs through the API
or the CLI (:func:`add_profile`, stored as TOML text in :class:`StoredProfile`);
:func:`profile_registry` gives both. A profile id names one profile: a supplier profile
may not reuse a built-in's or another stored profile's id.
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from agent.metrics import CATALOGUE, STATS, Metric
from collector.models import StoredProfile, utcnow
from collector.services.profile_table import ProfileError, Table

__all__ = [
    "BUILTIN_DIR", "Profile", "ProfileError", "RegistryEntry", "Requirement", "Source",
    "add_profile", "load_profile", "load_profiles", "parse_profile", "profile_from_toml",
    "profile_registry", "profile_summary", "profile_targets", "registry_entries",
]

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "profiles"
STATISTICS = ("p10", "p50", "p95", "min", "max", "mean", "share")
OPS = ("<", "<=", ">", ">=", "==")
SEVERITIES = ("must", "should")
CONFIDENCES = ("P", "S", "U")
WINDOWS = ("in_lesson", "out_of_hours", "all")
SCOPES = ("device", "room", "site")
PER_STUDENT_METRICS = ("download_mbps", "upload_mbps")
DEFAULT_MIN_SAMPLES = 5
DEFAULT_CLASS_SIZE = 30
ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
MAX_VERSION = 50


@dataclass(frozen=True)
class Source:
    citation: str
    confidence: str  # P primary, S secondary, U uncertain (see research/standards.md)
    url: str | None = None


@dataclass(frozen=True)
class Requirement:
    id: str
    title: str
    metric: str
    stat: str
    statistic: str
    op: str
    threshold: float
    unit: str
    severity: str
    source: Source
    min_samples: int = DEFAULT_MIN_SAMPLES
    targets: tuple[str, ...] = ()
    warn_within_pct: float | None = None
    note: str = ""
    window: str = "all"
    """in_lesson | out_of_hours | all: which samples count."""
    scope: str = "site"
    """device | room | site: the level at which the statistic is judged."""
    per_student: bool = False
    """The threshold is per student; a room's total must reach threshold x class_size."""
    share_min_pct: float | None = None
    """With statistic ``share``: at least this % of samples must meet ``op threshold``."""
    remediation: str = ""


@dataclass(frozen=True)
class Profile:
    id: str
    title: str
    description: str
    note: str
    source: Source
    requirements: tuple[Requirement, ...]
    probe_targets: tuple[str, ...] = ()
    version: str = ""
    class_size: int = DEFAULT_CLASS_SIZE


def _source(table: Table, key: str, default: Source | None) -> Source:
    if key not in table.data and default is not None:
        table.used.add(key)
        return default
    sub = table.sub(key)
    source = Source(citation=sub.text("citation"), confidence=sub.choice("confidence", CONFIDENCES),
                    url=sub.get("url", str, None))
    sub.check_unused()
    return source


def _fmt(value: float) -> str:
    """``150``, ``0.5``, ``3600000`` (never ``3.6e+06``): numbers as a person writes them."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e16 else f"{value:g}"


def _threshold(table: Table, spec: Metric, op: str) -> float:
    """The threshold, refused when the metric can never take it (or never meet it)."""
    raw = table.get("threshold", (int, float))
    value = float(raw)
    lo, hi = spec.minimum, spec.maximum
    if spec.kind == "flag":
        if value not in (0.0, 1.0):
            raise table.fail("threshold", f"{raw!r} is not 0 or 1 ({spec.name} is a 0/1 flag)")
    elif (lo is not None and value < lo) or (hi is not None and value > hi):
        raise table.fail("threshold", f"{raw!r} is outside {spec.name}'s range "
                                      f"{_fmt(lo or 0)}..{_fmt(hi or 0)} {spec.unit}")
    if (op == "<" and value == lo) or (op == ">" and value == hi):
        raise table.fail("threshold", f"{spec.name} {op} {raw!r} can never be met "
                                      f"({spec.name} is never {'below' if op == '<' else 'above'}"
                                      f" {raw!r})")
    return value


def _share(table: Table, statistic: str) -> float | None:
    pct = table.number("share_min_pct", None)
    if statistic == "share" and pct is None:
        raise table.fail("share_min_pct", "is required when statistic is 'share' (the % of "
                                          "samples that must meet the threshold)")
    if statistic != "share" and pct is not None:
        raise table.fail("share_min_pct", f"{_fmt(pct)} is only used with statistic 'share' "
                                          f"(statistic is {statistic!r})")
    if pct is not None and not 0 < pct <= 100:
        raise table.fail("share_min_pct", f"{_fmt(pct)} must be above 0 and at most 100")
    return pct


def _per_student(table: Table, metric: str, op: str, scope: str) -> bool:
    per_student = bool(table.get("per_student", bool, False))
    if not per_student:
        return False
    if metric not in PER_STUDENT_METRICS:
        raise table.fail("per_student", f"true is only allowed for "
                                        f"{' or '.join(PER_STUDENT_METRICS)}, not {metric!r}")
    if op not in (">", ">="):
        raise table.fail("op", f"{op!r} cannot be used with per_student = true: a per-student "
                               "need is a minimum (> or >=)")
    if scope != "room":
        raise table.fail("scope", f"{scope!r} cannot be used with per_student = true: "
                                  "per-student needs are judged against each room's total "
                                  "(scope = \"room\")")
    return True


def _requirement(table: Table, profile_source: Source) -> Requirement:
    metric = table.text("metric")
    spec = CATALOGUE.get(metric)
    if spec is None:
        raise table.fail("metric", f"{metric!r} is not in the metric catalogue")
    if spec.kind == "text":
        raise table.fail("metric", f"{metric!r} is a text metric; it has no threshold")
    unit = table.text("unit")
    if unit != spec.unit:
        raise table.fail("unit", f"{unit!r} does not match {metric}'s unit {spec.unit!r}")
    min_samples = table.get("min_samples", int, DEFAULT_MIN_SAMPLES)
    if min_samples < 1:
        raise table.fail("min_samples", f"{min_samples} must be >= 1")
    warn = table.number("warn_within_pct", None)
    if warn is not None and not 0 <= warn < 100:
        raise table.fail("warn_within_pct", f"{_fmt(warn)} must be within 0..100")
    op = table.choice("op", OPS)
    statistic = table.choice("statistic", STATISTICS)
    scope = table.choice("scope", SCOPES, "site")
    req = Requirement(
        id=table.text("id"), title=table.text("title"), metric=metric,
        stat=table.choice("stat", STATS), statistic=statistic, op=op,
        threshold=_threshold(table, spec, op), unit=unit,
        severity=table.choice("severity", SEVERITIES),
        source=_source(table, "source", profile_source), min_samples=min_samples,
        targets=table.strings("targets"), warn_within_pct=warn, note=table.text("note", ""),
        window=table.choice("window", WINDOWS, "all"), scope=scope,
        per_student=_per_student(table, metric, op, scope),
        share_min_pct=_share(table, statistic), remediation=table.text("remediation", ""))
    if req.severity == "must" and req.source.confidence == "U":
        raise table.fail("severity", "'must' needs a P or S source; this one is U (uncertain)")
    table.check_unused()
    return req


def _requirements(top: Table, where: str, source: Source) -> tuple[Requirement, ...]:
    raw_reqs = top.get("requirements", list)
    if not raw_reqs:
        raise top.fail("requirements", "the profile has no requirements")
    reqs: list[Requirement] = []
    first_use: dict[str, int] = {}
    for i, raw in enumerate(raw_reqs):
        if not isinstance(raw, dict):
            raise top.fail(f"requirements[{i}]", f"{raw!r} is not a table")
        req = _requirement(Table(raw, f"{where}: requirements[{i}]."), source)
        if req.id in first_use:
            raise top.fail(f"requirements[{i}].id", f"{req.id!r} is already used by "
                                                    f"requirements[{first_use[req.id]}]")
        first_use[req.id] = i
        reqs.append(req)
    if not any(r.severity == "must" for r in reqs):
        raise top.fail("requirements", "at least one requirement must have severity 'must'")
    return tuple(reqs)


def parse_profile(data: dict[str, Any], where: str) -> Profile:
    """Validate one parsed TOML document; ``where`` names it in errors."""
    top = Table(data, f"{where}: ")
    profile_id = top.text("id")
    if not ID_PATTERN.fullmatch(profile_id):
        raise top.fail("id", f"{profile_id!r} must be 1-100 characters of a-z, 0-9, '.', '_' "
                             "or '-', starting with a letter or digit")
    version = top.text("version")
    if len(version) > MAX_VERSION:
        raise top.fail("version", f"{version!r} is longer than {MAX_VERSION} characters")
    class_size = top.get("class_size", int, DEFAULT_CLASS_SIZE)
    if class_size < 1:
        raise top.fail("class_size", f"{class_size} must be >= 1")
    source = _source(top, "source", None)
    profile = Profile(id=profile_id, title=top.text("title"),
                      description=top.text("description", ""), note=top.text("note", ""),
                      source=source, requirements=_requirements(top, where, source),
                      probe_targets=top.strings("probe_targets"), version=version,
                      class_size=class_size)
    top.check_unused()
    return profile


def profile_from_toml(text: str, where: str) -> Profile:
    """Parse and validate a profile's TOML text; ``where`` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{where}: not valid TOML: {exc}") from exc
    except RecursionError as exc:  # arrays nested past the parser's stack (found by fuzzing)
        raise ProfileError(f"{where}: not valid TOML: nested too deeply") from exc
    return parse_profile(data, where)


def load_profile(path: Path) -> Profile:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot read: {exc}") from exc
    return profile_from_toml(text, str(path))


def _load_dir(directory: Path) -> dict[str, tuple[Profile, Path]]:
    found: dict[str, tuple[Profile, Path]] = {}
    for path in sorted(directory.glob("*.toml")):
        profile = load_profile(path)
        if profile.id in found:
            raise ProfileError(f"{path}: id: duplicate id {profile.id!r}: already used by "
                               f"{found[profile.id][1]}")
        found[profile.id] = (profile, path)
    return found


def load_profiles(directory: Path = BUILTIN_DIR) -> dict[str, Profile]:
    """Every ``*.toml`` profile in ``directory`` by id, in file-name order."""
    return {pid: profile for pid, (profile, _path) in _load_dir(directory).items()}


@dataclass(frozen=True)
class RegistryEntry:
    profile: Profile
    builtin: bool
    place: str
    """Where it came from: the built-in file, or ``stored profile 'x' (added …)``."""
    document: str
    """The TOML text."""


@functools.cache
def _builtins() -> dict[str, RegistryEntry]:
    """The built-in profiles (files that ship with the code: read once per process)."""
    return {pid: RegistryEntry(profile, True, str(path), path.read_text(encoding="utf-8"))
            for pid, (profile, path) in _load_dir(BUILTIN_DIR).items()}


def _stored_place(row: StoredProfile) -> str:
    return f"stored profile {row.id!r} (added {row.created_at:%Y-%m-%d %H:%M} UTC)"


def _duplicate(where: str, profile_id: str, other: str) -> ProfileError:
    return ProfileError(f"{where}: id: duplicate id {profile_id!r}: already used by {other}")


def _session_of(source: Session | Engine) -> tuple[Session, bool]:
    if isinstance(source, Session):
        return source, False
    return Session(source), True


def registry_entries(source: Session | Engine) -> list[RegistryEntry]:
    """Built-ins (file-name order), then stored supplier profiles (by id)."""
    builtins = _builtins()
    entries = list(builtins.values())
    session, owned = _session_of(source)
    try:
        rows = session.exec(select(StoredProfile).order_by(col(StoredProfile.id))).all()
    finally:
        if owned:
            session.close()
    for row in rows:
        where = _stored_place(row)
        profile = profile_from_toml(row.document, where)
        if profile.id in builtins:
            other = builtins[profile.id].place
            raise _duplicate(where, profile.id, f"the built-in profile {other}")
        entries.append(RegistryEntry(profile, False, where, row.document))
    return entries


def profile_registry(source: Session | Engine) -> dict[str, Profile]:
    """Every profile by id: the built-ins and the database's supplier profiles.

    A stored profile that no longer validates (or clashes with a newer built-in) raises
    :class:`ProfileError` naming it: a profile is never silently dropped.
    """
    return {e.profile.id: e.profile for e in registry_entries(source)}


def add_profile(session: Session, text: str, where: str) -> Profile:
    """Validate a supplier's TOML profile and store it; a reused id is refused."""
    profile = profile_from_toml(text, where)
    builtin = _builtins().get(profile.id)
    if builtin is not None:
        raise _duplicate(where, profile.id, f"the built-in profile {builtin.place}")
    existing = session.get(StoredProfile, profile.id)
    if existing is not None:
        raise _duplicate(where, profile.id, _stored_place(existing))
    session.add(StoredProfile(id=profile.id, version=profile.version, document=text,
                              created_at=utcnow()))
    try:
        session.commit()
    except IntegrityError as exc:  # another request stored the same id meanwhile
        session.rollback()
        raise _duplicate(where, profile.id, "a stored profile added at the same time") from exc
    return profile


def profile_summary(entry: RegistryEntry) -> dict[str, Any]:
    """One line of a profile listing, as plain JSON types."""
    p = entry.profile
    return {"id": p.id, "version": p.version, "title": p.title,
            "source": {"citation": p.source.citation, "confidence": p.source.confidence,
                       "url": p.source.url},
            "builtin": entry.builtin, "requirements": len(p.requirements)}


def _is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def profile_targets(profile: Profile) -> list[str]:
    """Endpoints an agent must probe to feed this profile.

    ``probe_targets`` when the profile lists them; otherwise every requirement target
    that is a plain host name (glob patterns cannot be probed), in order, once each.
    """
    if profile.probe_targets:
        return list(profile.probe_targets)
    seen: list[str] = []
    for req in profile.requirements:
        for target in req.targets:
            if not _is_glob(target) and target not in seen:
                seen.append(target)
    return seen
