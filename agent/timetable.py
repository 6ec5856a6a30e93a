"""A school's timetable: when lessons run, so measurements can be tagged and planned.

Shared by the agent (cadence, exam-window pauses) and the collector (tags each
measurement with its period). Stdlib only. People write TOML; the API carries the same
structure as JSON::

    timezone = "Europe/London"                        # IANA name
    weekdays = ["mon", "tue", "wed", "thu", "fri"]    # school days (default mon-fri)
    [[periods]]
    name = "P1"
    start = "08:50"                                   # local wall-clock times
    end = "09:50"
    days = ["mon", "wed"]                             # optional: only these weekdays
    [[terms]]                                         # optional; none = every weekday
    name = "Autumn 1"
    start = "2026-09-03"
    end = "2026-10-23"                                # inclusive
    [[exceptions]]                                    # a date that differs from the pattern
    date = "2026-11-27"
    closed = true                                     # INSET day; false: open that day
    note = "INSET"
    [[exam_windows]]                                  # heavy tests never run inside
    start = "2027-05-11T09:00"
    end = "2027-05-11T12:00"
    note = "GCSE maths"

Periods are wall-clock times in the timetable's zone, so a lesson at 08:50 stays at 08:50
across the clock changes (Europe/London: last Sunday of March and of October).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_WEEKDAYS = DAYS[:5]
LOOKAHEAD = timedelta(days=8)
"""How far :func:`next_change` looks for the next lesson boundary."""
MAX_ITEMS = {"periods": 64, "terms": 64, "exceptions": 2000, "exam_windows": 2000}
MAX_TEXT = 200

T = TypeVar("T")


class TimetableError(ValueError):
    """A bad timetable; the message names the key path, the bad value and why."""


@dataclass(frozen=True)
class Period:
    name: str
    start: time
    end: time
    days: tuple[str, ...] | None = None
    """Only these weekdays; None: every school day."""

    def runs_on(self, weekday: str) -> bool:
        return self.days is None or weekday in self.days

    def span(self) -> str:
        return f"{_clock(self.start)}-{_clock(self.end)}"


@dataclass(frozen=True)
class Term:
    name: str
    start: date
    end: date
    """Inclusive."""


@dataclass(frozen=True)
class DayException:
    date: date
    closed: bool = True
    """True: no school that day (INSET, bank holiday); False: school despite the pattern."""
    note: str = ""


@dataclass(frozen=True)
class ExamWindow:
    start: datetime
    end: datetime
    """Naive local times in the timetable's zone; ``end`` is exclusive."""
    note: str = ""


@dataclass(frozen=True)
class Timetable:
    timezone: str
    weekdays: tuple[str, ...]
    periods: tuple[Period, ...]
    terms: tuple[Term, ...] = ()
    exceptions: tuple[DayException, ...] = ()
    exam_windows: tuple[ExamWindow, ...] = ()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)  # zoneinfo caches instances per key


@dataclass(frozen=True)
class Slot:
    """Where an instant falls in the timetable."""

    school_day: bool
    period: str | None
    in_lesson: bool
    exam: bool


# ---------------------------------------------------------------- parsing helpers

def _at(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _bad(where: str, path: str, raw: Any, why: str) -> TimetableError:
    return TimetableError(f"{where}: {path} = {raw!r}: {why}")


def _table(where: str, path: str, raw: Any, required: Sequence[str],
           optional: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise _bad(where, path or "timetable", raw, "expected a table of keys")
    known = [*required, *optional]
    for key in raw:
        if key not in known:
            raise TimetableError(f"{where}: {_at(path, str(key))}: unknown key "
                                 f"(known: {', '.join(known)})")
    for key in required:
        if key not in raw:
            raise TimetableError(f"{where}: {_at(path, key)}: missing")
    return raw


def _items(where: str, path: str, raw: Any, parse: Callable[[str, Any], T],
           limit: int) -> list[T]:
    if not isinstance(raw, list | tuple):
        raise _bad(where, path, raw, "expected a list")
    if len(raw) > limit:
        raise TimetableError(f"{where}: {path}: {len(raw)} entries, at most {limit} allowed")
    return [parse(_at(path, i), item) for i, item in enumerate(raw)]


def _text(where: str, path: str, raw: Any, required: bool = True) -> str:
    if not isinstance(raw, str):
        raise _bad(where, path, raw, "expected a string")
    if required and not raw.strip():
        raise _bad(where, path, raw, "must not be empty")
    if len(raw) > MAX_TEXT:
        raise _bad(where, path, raw, f"longer than {MAX_TEXT} characters")
    return raw.strip()


_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_LOCAL = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{1,2}:\d{2}(?::\d{2})?)")


def _time(where: str, path: str, raw: Any) -> time:
    why = "expected a local time 'HH:MM' (24-hour clock)"
    if isinstance(raw, time):  # a TOML local time
        if raw.tzinfo is None and not raw.microsecond:
            return raw
        why = "expected a local time without offset or fractions of a second"
    elif isinstance(raw, str) and (m := _CLOCK.fullmatch(raw.strip())):
        hour, minute, second = int(m[1]), int(m[2]), int(m[3] or 0)
        if hour < 24 and minute < 60 and second < 60:
            return time(hour, minute, second)
        why = "no such time of day (24-hour clock, 00:00 to 23:59)"
    raise _bad(where, path, raw, why)


def _date(where: str, path: str, raw: Any) -> date:
    if isinstance(raw, date) and not isinstance(raw, datetime):  # a TOML local date
        return raw
    if isinstance(raw, str) and _DATE.fullmatch(raw.strip()):
        try:
            return date.fromisoformat(raw.strip())
        except ValueError as exc:
            raise _bad(where, path, raw, f"no such date ({exc})") from exc
    raise _bad(where, path, raw, "expected a date 'YYYY-MM-DD'")


def _local(where: str, path: str, raw: Any) -> datetime:
    if isinstance(raw, datetime):  # a TOML local date-time
        if raw.tzinfo is not None:
            raise _bad(where, path, raw, "expected a local time without offset (the "
                                         "timetable's zone applies)")
        return raw.replace(microsecond=0)
    if isinstance(raw, str) and (m := _LOCAL.fullmatch(raw.strip())):
        day = _date(where, path, m[1])
        return datetime.combine(day, _time(where, path, m[2]))
    raise _bad(where, path, raw, "expected a local date and time 'YYYY-MM-DDTHH:MM' "
                                 "without offset")


def _weekdays(where: str, path: str, raw: Any) -> tuple[str, ...]:
    names = _items(where, path, raw, lambda p, v: _weekday(where, p, v), len(DAYS))
    if not names:
        raise _bad(where, path, raw, "expected at least one weekday")
    for i, name in enumerate(names):
        if name in names[:i]:
            raise _bad(where, _at(path, i), raw[i], "listed twice")
    return tuple(sorted(names, key=DAYS.index))


def _weekday(where: str, path: str, raw: Any) -> str:
    if isinstance(raw, str) and raw.strip().lower() in DAYS:
        return raw.strip().lower()
    raise _bad(where, path, raw, f"expected one of {', '.join(DAYS)}")


def _zone(where: str, raw: Any) -> str:
    name = _text(where, "timezone", raw)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise _bad(where, "timezone", raw, "unknown time zone (expected an IANA name such "
                                           "as 'Europe/London')") from exc
    return name


# ---------------------------------------------------------------- entries

def _period(where: str, path: str, raw: Any, weekdays: tuple[str, ...]) -> Period:
    t = _table(where, path, raw, ("name", "start", "end"), ("days",))
    start = _time(where, _at(path, "start"), t["start"])
    end = _time(where, _at(path, "end"), t["end"])
    if end <= start:
        raise _bad(where, _at(path, "end"), t["end"],
                   f"not after start {_clock(start)} (a period cannot cross midnight)")
    days = None
    if "days" in t:
        days = _weekdays(where, _at(path, "days"), t["days"])
        for day in days:
            if day not in weekdays:
                raise _bad(where, _at(path, "days"), t["days"],
                           f"{day!r} is not a school day (weekdays: {', '.join(weekdays)})")
    return Period(_text(where, _at(path, "name"), t["name"]), start, end, days)


def _term(where: str, path: str, raw: Any) -> Term:
    t = _table(where, path, raw, ("name", "start", "end"), ())
    start = _date(where, _at(path, "start"), t["start"])
    end = _date(where, _at(path, "end"), t["end"])
    if end < start:
        raise _bad(where, _at(path, "end"), t["end"], f"before start {start.isoformat()}")
    return Term(_text(where, _at(path, "name"), t["name"]), start, end)


def _exception(where: str, path: str, raw: Any) -> DayException:
    t = _table(where, path, raw, ("date",), ("closed", "note"))
    closed = t.get("closed", True)
    if not isinstance(closed, bool):
        raise _bad(where, _at(path, "closed"), closed, "expected true or false")
    return DayException(_date(where, _at(path, "date"), t["date"]), closed,
                        _text(where, _at(path, "note"), t.get("note", ""), required=False))


def _exam(where: str, path: str, raw: Any) -> ExamWindow:
    t = _table(where, path, raw, ("start", "end"), ("note",))
    start = _local(where, _at(path, "start"), t["start"])
    end = _local(where, _at(path, "end"), t["end"])
    if end <= start:
        raise _bad(where, _at(path, "end"), t["end"], f"not after start {_stamp(start)}")
    return ExamWindow(start, end,
                      _text(where, _at(path, "note"), t.get("note", ""), required=False))


def _check_periods(where: str, periods: Sequence[Period], weekdays: tuple[str, ...]) -> None:
    for i, p in enumerate(periods):
        for j, q in enumerate(periods[:i]):
            if p.name == q.name:
                raise _bad(where, f"periods[{i}].name", p.name, f"duplicate of periods[{j}]")
            shared = [d for d in weekdays if p.runs_on(d) and q.runs_on(d)]
            if shared and p.start < q.end and q.start < p.end:
                raise TimetableError(
                    f"{where}: periods[{i}] {p.name!r} {p.span()} overlaps periods[{j}] "
                    f"{q.name!r} {q.span()} on {shared[0]}")


def _check_terms(where: str, terms: Sequence[Term]) -> None:
    for i, a in enumerate(terms):
        for j, b in enumerate(terms[:i]):
            if a.start <= b.end and b.start <= a.end:
                raise TimetableError(
                    f"{where}: terms[{i}] {a.name!r} {a.start}..{a.end} overlaps terms[{j}] "
                    f"{b.name!r} {b.start}..{b.end}")


def parse_timetable(data: Mapping[str, Any], where: str = "timetable") -> Timetable:
    """Validate a timetable document (TOML or JSON structure) into a :class:`Timetable`."""
    t = _table(where, "", data, ("timezone", "periods"),
               ("weekdays", "terms", "exceptions", "exam_windows"))
    zone = _zone(where, t["timezone"])
    weekdays = (_weekdays(where, "weekdays", t["weekdays"]) if "weekdays" in t
                else DEFAULT_WEEKDAYS)
    periods = _items(where, "periods", t["periods"],
                     lambda p, v: _period(where, p, v, weekdays), MAX_ITEMS["periods"])
    if not periods:
        raise _bad(where, "periods", t["periods"], "expected at least one period")
    _check_periods(where, periods, weekdays)
    terms = _items(where, "terms", t.get("terms", []), lambda p, v: _term(where, p, v),
                   MAX_ITEMS["terms"])
    _check_terms(where, terms)
    exceptions = _items(where, "exceptions", t.get("exceptions", []),
                        lambda p, v: _exception(where, p, v), MAX_ITEMS["exceptions"])
    for i, e in enumerate(exceptions):
        first = next(j for j, other in enumerate(exceptions) if other.date == e.date)
        if first != i:
            raise _bad(where, f"exceptions[{i}].date", e.date.isoformat(),
                       f"duplicate of exceptions[{first}]")
    exams = _items(where, "exam_windows", t.get("exam_windows", []),
                   lambda p, v: _exam(where, p, v), MAX_ITEMS["exam_windows"])
    return Timetable(zone, weekdays, tuple(periods), tuple(terms), tuple(exceptions),
                     tuple(exams))


def load_timetable_toml(text: str, where: str) -> Timetable:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TimetableError(f"{where}: not valid TOML: {exc}") from exc
    return parse_timetable(data, where)


def _clock(t: time) -> str:
    return t.strftime("%H:%M:%S" if t.second else "%H:%M")


def _stamp(dt: datetime) -> str:
    return f"{dt.date().isoformat()}T{_clock(dt.time())}"


def to_document(tt: Timetable) -> dict[str, Any]:
    """The JSON-able document; ``parse_timetable(to_document(tt)) == tt``."""
    periods: list[dict[str, Any]] = []
    for p in tt.periods:
        entry: dict[str, Any] = {"name": p.name, "start": _clock(p.start),
                                 "end": _clock(p.end)}
        if p.days is not None:
            entry["days"] = list(p.days)
        periods.append(entry)
    return {
        "timezone": tt.timezone,
        "weekdays": list(tt.weekdays),
        "periods": periods,
        "terms": [{"name": t.name, "start": t.start.isoformat(), "end": t.end.isoformat()}
                  for t in tt.terms],
        "exceptions": [{"date": e.date.isoformat(), "closed": e.closed, "note": e.note}
                       for e in tt.exceptions],
        "exam_windows": [{"start": _stamp(w.start), "end": _stamp(w.end), "note": w.note}
                         for w in tt.exam_windows],
    }


# ---------------------------------------------------------------- where is an instant

def _in_zone(tt: Timetable, when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"time {when.isoformat()} has no time zone: pass an aware datetime")
    return when.astimezone(tt.zone)


def is_school_day(tt: Timetable, day: date) -> bool:
    """An exception decides; else a school weekday inside a term (or any, without terms)."""
    for exc in tt.exceptions:
        if exc.date == day:
            return not exc.closed
    if DAYS[day.weekday()] not in tt.weekdays:
        return False
    return not tt.terms or any(t.start <= day <= t.end for t in tt.terms)


def periods_on(tt: Timetable, day: date) -> list[Period]:
    """The periods taught on ``day`` (none on a day without school)."""
    if not is_school_day(tt, day):
        return []
    weekday = DAYS[day.weekday()]
    return [p for p in tt.periods if p.runs_on(weekday)]


def exam_at(tt: Timetable, when: datetime) -> ExamWindow | None:
    """The exam window ``when`` falls in, if any."""
    local = _in_zone(tt, when).replace(tzinfo=None)
    return next((w for w in tt.exam_windows if w.start <= local < w.end), None)


def locate(tt: Timetable, when: datetime) -> Slot:
    """Where the aware instant ``when`` falls: school day, period, exam window."""
    local = _in_zone(tt, when)
    clock = local.time()
    period = next((p.name for p in periods_on(tt, local.date())
                   if p.start <= clock < p.end), None)
    return Slot(school_day=is_school_day(tt, local.date()), period=period,
                in_lesson=period is not None, exam=exam_at(tt, when) is not None)


def next_change(tt: Timetable, when: datetime) -> datetime | None:
    """The next period start or end after ``when`` (UTC), within 8 days; else None."""
    now = _in_zone(tt, when).astimezone(UTC)
    limit = now + LOOKAHEAD
    first_day = _in_zone(tt, when).date()
    for k in range(LOOKAHEAD.days + 1):
        day = first_day + timedelta(days=k)
        edges = [datetime.combine(day, edge, tzinfo=tt.zone).astimezone(UTC)
                 for p in periods_on(tt, day) for edge in (p.start, p.end)]
        later = [at for at in edges if now < at <= limit]
        if later:
            return min(later)
    return None
