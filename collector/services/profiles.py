"""Requirement profiles: data files (``collector/profiles/*.toml``), validated on load.

A profile names a product or standard, cites its source, and lists requirements; each
requirement is a metric from the catalogue, the per-report summary to use (``stat``), the
statistic across samples, a comparator and a threshold. Every loading error names the
file, the key and the bad value.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.metrics import CATALOGUE, STATS

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "profiles"
STATISTICS = ("p10", "p50", "p95", "min", "max", "mean")
OPS = ("<", "<=", ">", ">=")
SEVERITIES = ("must", "should")
CONFIDENCES = ("P", "S", "U")
DEFAULT_MIN_SAMPLES = 5


class ProfileError(ValueError):
    """A profile file that cannot be used; the message names file, key and value."""


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


@dataclass(frozen=True)
class Profile:
    id: str
    title: str
    description: str
    note: str
    source: Source
    requirements: tuple[Requirement, ...]
    probe_targets: tuple[str, ...] = ()


class _Table:
    """One TOML table being read: every access checks type and records the key as used."""

    def __init__(self, data: dict[str, Any], where: str) -> None:
        self.data = data
        self.where = where
        self.used: set[str] = set()

    def fail(self, key: str, message: str) -> ProfileError:
        return ProfileError(f"{self.where}{key}: {message}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                raise self.fail(key, "is required")
            return default
        value = self.data[key]
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self.fail(key, f"{value!r} is not {_kind_name(kind)}")
        if not isinstance(value, kind):
            raise self.fail(key, f"{value!r} is not {_kind_name(kind)}")
        return value

    def choice(self, key: str, options: tuple[str, ...], default: Any = ...) -> str:
        value = self.get(key, str, default)
        if value not in options:
            raise self.fail(key, f"{value!r} is not one of {', '.join(options)}")
        return str(value)

    def text(self, key: str, default: Any = ...) -> str:
        value = self.get(key, str, default)
        if default is ... and not value.strip():
            raise self.fail(key, "must not be empty")
        return str(value)

    def strings(self, key: str) -> tuple[str, ...]:
        values = self.get(key, list, [])
        for i, item in enumerate(values):
            if not isinstance(item, str) or not item.strip():
                raise self.fail(f"{key}[{i}]", f"{item!r} is not a non-empty string")
        return tuple(v.strip().lower() for v in values)

    def check_unused(self) -> None:
        extra = sorted(set(self.data) - self.used)
        if extra:
            raise self.fail(extra[0], f"unknown key (value {self.data[extra[0]]!r})")


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = set(kind if isinstance(kind, tuple) else (kind,))
    if float in kinds:
        kinds.discard(int)  # an integer is a number
    names = {str: "string", int: "integer", float: "number", list: "list", dict: "table"}
    text = " or ".join(sorted(names.get(k, k.__name__) for k in kinds))
    return ("an " if text[0] in "aeiou" else "a ") + text


def _source(table: _Table, key: str, default: Source | None) -> Source:
    if key not in table.data and default is not None:
        table.used.add(key)
        return default
    sub = _Table(table.get(key, dict), f"{table.where}{key}.")
    source = Source(citation=sub.text("citation"), confidence=sub.choice("confidence", CONFIDENCES),
                    url=sub.get("url", str, None))
    sub.check_unused()
    return source


def _requirement(table: _Table, profile_source: Source) -> Requirement:
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
    warn = table.get("warn_within_pct", (int, float), None)
    if warn is not None and not 0 <= warn < 100:
        raise table.fail("warn_within_pct", f"{warn} must be within 0..100")
    req = Requirement(
        id=table.text("id"), title=table.text("title"), metric=metric,
        stat=table.choice("stat", STATS), statistic=table.choice("statistic", STATISTICS),
        op=table.choice("op", OPS), threshold=float(table.get("threshold", (int, float))),
        unit=unit, severity=table.choice("severity", SEVERITIES),
        source=_source(table, "source", profile_source), min_samples=min_samples,
        targets=table.strings("targets"),
        warn_within_pct=None if warn is None else float(warn), note=table.text("note", ""))
    if req.severity == "must" and req.source.confidence == "U":
        raise table.fail("severity", "'must' needs a P or S source; this one is U (uncertain)")
    table.check_unused()
    return req


def parse_profile(data: dict[str, Any], where: str) -> Profile:
    """Validate one parsed TOML document; ``where`` names it in errors."""
    top = _Table(data, f"{where}: ")
    source = _source(top, "source", None)
    raw_reqs = top.get("requirements", list)
    if not raw_reqs:
        raise top.fail("requirements", "the profile has no requirements")
    reqs = []
    for i, raw in enumerate(raw_reqs):
        if not isinstance(raw, dict):
            raise top.fail(f"requirements[{i}]", f"{raw!r} is not a table")
        reqs.append(_requirement(_Table(raw, f"{where}: requirements[{i}]."), source))
    ids = [r.id for r in reqs]
    for rid in ids:
        if ids.count(rid) > 1:
            raise top.fail("requirements", f"requirement id {rid!r} is used twice")
    if not any(r.severity == "must" for r in reqs):
        raise top.fail("requirements", "at least one requirement must have severity 'must'")
    profile = Profile(id=top.text("id"), title=top.text("title"),
                      description=top.text("description", ""), note=top.text("note", ""),
                      source=source, requirements=tuple(reqs),
                      probe_targets=top.strings("probe_targets"))
    top.check_unused()
    return profile


def load_profile(path: Path) -> Profile:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML: {exc}") from exc
    return parse_profile(data, str(path))


def load_profiles(directory: Path = BUILTIN_DIR) -> dict[str, Profile]:
    """Every ``*.toml`` profile in ``directory`` by id, in file-name order."""
    profiles: dict[str, Profile] = {}
    for path in sorted(directory.glob("*.toml")):
        profile = load_profile(path)
        if profile.id in profiles:
            raise ProfileError(f"{path}: id: {profile.id!r} is already used by another profile")
        profiles[profile.id] = profile
    return profiles


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
