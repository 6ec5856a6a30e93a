"""A room's school day as time series: what the room page charts and its data table show.

:func:`bin_points` is the pure part: it puts ``(time, device, value)`` points into
fixed bins (:data:`BIN_S`, 5 minutes, counted from the day's local midnight) and gives

- per device, the **median of the device's values** in each bin;
- for the room, the **median of those device medians** (each device counts once per bin,
  however often it measured);

each as ``[bin start (Unix seconds, UTC), value]`` pairs, bins without data left out.
Medians are the middle value, or the mean of the two middle values for an even count.

:func:`room_timeline` reads one room's measurements of one local day (midnight to
midnight in the site's timetable zone, UTC without a timetable; a day with a clock change
has 23 or 25 hours) for the series in :data:`SERIES`, and the day's lesson periods with
their local start and end, for shading.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from agent.timetable import is_school_day, periods_on
from collector.models import Agent, Measurement, Room, Site
from collector.services.timetables import load_timetable

BIN_S = 300
MIN_DAY, MAX_DAY = date(1970, 1, 2), date(9999, 12, 30)


class TimelineError(ValueError):
    """A day that cannot be charted; the message names the value."""


@dataclass(frozen=True)
class SeriesSpec:
    key: str
    chart: str
    """Which chart draws it: ``latency``, ``bandwidth`` or ``wifi``."""
    metric: str
    stat: str
    label: str
    unit: str


SERIES = (
    SeriesSpec("latency", "latency", "tcp_connect_ms", "p50",
               "Latency: TCP connect time, median of each run (all targets)", "ms"),
    SeriesSpec("download", "bandwidth", "download_mbps", "value", "Download speed", "Mbps"),
    SeriesSpec("upload", "bandwidth", "upload_mbps", "value", "Upload speed", "Mbps"),
    SeriesSpec("channel_utilisation", "wifi", "bss_channel_utilisation_pct", "value",
               "Wi-Fi channel use reported by the access point (BSS Load)", "%"),
    SeriesSpec("channel_busy", "wifi", "channel_busy_pct", "value",
               "Wi-Fi channel busy time (survey)", "%"),
    SeriesSpec("stations", "wifi", "bss_station_count", "value",
               "Devices on the access point (BSS Load)", "count"),
)
CHARTS = {"latency": "Latency", "bandwidth": "Bandwidth", "wifi": "Wi-Fi load"}

Pair = tuple[int, float]


@dataclass(frozen=True)
class Point:
    time: datetime
    device: str
    value: float


@dataclass(frozen=True)
class Binned:
    room: tuple[Pair, ...]
    devices: dict[str, tuple[Pair, ...]]
    samples: int
    """Points that fell inside the day."""


def _ts(when: datetime) -> int:
    return int(when.timestamp())


def bin_points(points: Iterable[Point], start: datetime, end: datetime,
               bin_s: int = BIN_S) -> Binned:
    """Points in ``[start, end)`` binned every ``bin_s`` seconds from ``start`` (pure)."""
    if bin_s <= 0:
        raise TimelineError(f"bin width {bin_s} s must be positive")
    cells: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    samples = 0
    for p in points:
        if not start <= p.time < end:
            continue
        index = int((p.time - start).total_seconds()) // bin_s
        cells[p.device][_ts(start) + index * bin_s].append(p.value)
        samples += 1
    devices = {d: tuple((t, statistics.median(vs)) for t, vs in sorted(bins.items()))
               for d, bins in sorted(cells.items())}
    per_bin: dict[int, list[float]] = defaultdict(list)
    for pairs in devices.values():
        for t, v in pairs:
            per_bin[t].append(v)
    room = tuple((t, statistics.median(vs)) for t, vs in sorted(per_bin.items()))
    return Binned(room, devices, samples)


@dataclass(frozen=True)
class PeriodSpan:
    name: str
    start: str
    """Local wall-clock ``HH:MM``."""
    end: str
    start_ts: int
    end_ts: int


@dataclass(frozen=True)
class Series:
    spec: SeriesSpec
    binned: Binned
    targets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Timeline:
    site: str
    room: str
    day: date
    timezone: str
    start: datetime
    end: datetime
    school_day: bool | None
    """None: the site has no timetable."""
    periods: tuple[PeriodSpan, ...]
    series: tuple[Series, ...]
    devices: tuple[str, ...] = field(default_factory=tuple)
    bin_s: int = BIN_S

    def period_at(self, ts: int) -> str | None:
        return next((p.name for p in self.periods if p.start_ts <= ts < p.end_ts), None)


def day_bounds(day: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """Local midnight to the next local midnight, in UTC."""
    if not MIN_DAY <= day <= MAX_DAY:
        raise TimelineError(f"date {day.isoformat()} is out of range "
                            f"({MIN_DAY.isoformat()} to {MAX_DAY.isoformat()})")
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def parse_day(text: str) -> date:
    """``YYYY-MM-DD``, or a :class:`TimelineError` naming the text."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError as exc:
        raise TimelineError(f"date {text!r} is not a date like 2026-09-14 ({exc})") from exc
    day_bounds(day, UTC)
    return day


def _periods(site: Site, session: Session, day: date) -> tuple[str, tzinfo,
                                                               bool | None, list[PeriodSpan]]:
    assert site.id is not None
    tt = load_timetable(session, site.id)
    if tt is None:
        return "UTC", UTC, None, []
    zone = tt.zone
    spans = [PeriodSpan(p.name, p.start.strftime("%H:%M"), p.end.strftime("%H:%M"),
                        _ts(datetime.combine(day, p.start, tzinfo=zone)),
                        _ts(datetime.combine(day, p.end, tzinfo=zone)))
             for p in sorted(periods_on(tt, day), key=lambda p: p.start)]
    return tt.timezone, zone, is_school_day(tt, day), spans


def room_agents(session: Session, room: Room) -> tuple[str, ...]:
    return tuple(session.exec(select(Agent.id).where(Agent.room_id == room.id)
                              .order_by(col(Agent.created_at))).all())


def room_timeline(session: Session, site: Site, room: Room, day: date) -> Timeline:
    """The room's :data:`SERIES` over one local day, with the day's periods."""
    tz_name, zone, school_day, periods = _periods(site, session, day)
    start, end = day_bounds(day, zone)
    m = Measurement.__table__.c  # type: ignore[attr-defined]
    rows = session.connection().execute(
        sa_select(m.time, m.agent_id, m.metric, m.stat, m.target, m.value)
        .where(m.room_id == room.id, m.time >= start, m.time < end,
               m.metric.in_(sorted({s.metric for s in SERIES})), m.value.is_not(None))
        .order_by(m.time, m.id)).all()
    points: dict[tuple[str, str], list[Point]] = defaultdict(list)
    targets: dict[tuple[str, str], set[str]] = defaultdict(set)
    for when, agent, metric, stat, target, value in rows:
        assert value is not None
        points[(metric, stat)].append(Point(when, agent, value))
        if target:
            targets[(metric, stat)].add(target)
    series = tuple(Series(s, bin_points(points.get((s.metric, s.stat), []), start, end),
                          tuple(sorted(targets.get((s.metric, s.stat), ()))))
                   for s in SERIES)
    return Timeline(site.name, room.name, day, tz_name, start, end, school_day,
                    tuple(periods), series, room_agents(session, room))


def latest_day(session: Session, site: Site, room: Room, today: date) -> date:
    """The local day of the room's newest charted measurement (``today`` when none)."""
    newest = session.exec(
        select(Measurement.time).where(Measurement.room_id == room.id,
                                       col(Measurement.metric).in_({s.metric for s in SERIES}))
        .order_by(col(Measurement.time).desc()).limit(1)).first()
    if newest is None:
        return today
    assert site.id is not None
    tt = load_timetable(session, site.id)
    return newest.astimezone(tt.zone if tt else UTC).date()


def local_clock(tl: Timeline, ts: int) -> str:
    return datetime.fromtimestamp(ts, ZoneInfo(tl.timezone)).strftime("%H:%M")


def _fmt(value: float, unit: str) -> str:
    number = f"{value:.4g}"
    return number if unit == "count" else f"{number} {unit}"


def series_summary(tl: Timeline, series: Series) -> str:
    """One sentence a screen reader (or a projector audience) gets instead of the chart."""
    spec, room = series.spec, series.binned.room
    if not room:
        return f"{spec.label}: nothing measured in {tl.room} on {tl.day.isoformat()}."
    values = [v for _t, v in room]
    hi_t, hi = max(room, key=lambda p: (p[1], -p[0]))
    lo_t, lo = min(room, key=lambda p: (p[1], p[0]))

    def at(ts: int) -> str:
        period = tl.period_at(ts)
        return local_clock(tl, ts) + (f" ({period})" if period else "")

    first, last = local_clock(tl, room[0][0]), local_clock(tl, room[-1][0])
    return (f"{spec.label}: {len(room)} five-minute bins with data from {first} to {last}, "
            f"{series.binned.samples} samples from {len(series.binned.devices)} device(s); "
            "room median typically "
            f"{_fmt(statistics.median(values), spec.unit)}, highest {_fmt(hi, spec.unit)} at "
            f"{at(hi_t)}, lowest {_fmt(lo, spec.unit)} at {at(lo_t)}.")


@dataclass(frozen=True)
class TableRow:
    clock: str
    period: str | None
    values: tuple[float | None, ...]


def chart_table(tl: Timeline, chart: str) -> tuple[tuple[Series, ...], list[TableRow]]:
    """The room medians of one chart's series, one row per bin with any data."""
    shown = tuple(s for s in tl.series if s.spec.chart == chart)
    by_series = [dict(s.binned.room) for s in shown]
    times = sorted({t for values in by_series for t in values})
    return shown, [TableRow(local_clock(tl, t), tl.period_at(t),
                            tuple(values.get(t) for values in by_series)) for t in times]


def _pairs(pairs: Sequence[Pair]) -> list[list[float]]:
    return [[t, v] for t, v in pairs]


def timeline_dict(tl: Timeline) -> dict[str, Any]:
    """The JSON of ``GET /api/v1/sites/{site}/rooms/{room}/timeline``."""
    return {
        "site": tl.site, "room": tl.room, "date": tl.day.isoformat(),
        "timezone": tl.timezone, "bin_s": tl.bin_s,
        "start": tl.start.isoformat(), "end": tl.end.isoformat(),
        "start_ts": _ts(tl.start), "end_ts": _ts(tl.end),
        "school_day": tl.school_day,
        "periods": [{"name": p.name, "start": p.start, "end": p.end,
                     "start_ts": p.start_ts, "end_ts": p.end_ts} for p in tl.periods],
        "charts": CHARTS,
        "devices": list(tl.devices),
        "series": [{"key": s.spec.key, "chart": s.spec.chart, "metric": s.spec.metric,
                    "stat": s.spec.stat, "label": s.spec.label, "unit": s.spec.unit,
                    "targets": list(s.targets), "samples": s.binned.samples,
                    "room": _pairs(s.binned.room),
                    "devices": {d: _pairs(p) for d, p in s.binned.devices.items()}}
                   for s in tl.series],
    }
