"""What a printed report must state besides its verdicts: the methods and the window.

A number means little without how it was measured (ICMP RTT is not TCP connect time) and
when. :func:`report_provenance` lists, for the metrics a report judges (and the Wi-Fi load
its remediation quotes), every measurement ``method`` string stored with them, with the
sample count and first/last time of each; the measurement window (first to last
measurement, or a campaign's window); and the site's timetable, which defines what "in
lessons" and "out of hours" mean.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session

from agent.timetable import Timetable
from collector.measurement_runs import measurement_key, measurement_run
from collector.models import Measurement, Site
from collector.services.queries import site_window
from collector.services.site_report import SiteReport, report_metrics
from collector.services.sites import get_site
from collector.services.timetables import load_timetable


@dataclass(frozen=True)
class MethodUse:
    metric: str
    method: str
    samples: int
    """Stored measurements (rows) of this metric made this way."""
    first: datetime
    last: datetime


@dataclass(frozen=True)
class PeriodLine:
    name: str
    span: str
    days: str


@dataclass(frozen=True)
class TimetableSummary:
    timezone: str
    weekdays: tuple[str, ...]
    periods: tuple[PeriodLine, ...]
    terms: tuple[str, ...]
    exceptions: int


@dataclass(frozen=True)
class Provenance:
    methods: tuple[MethodUse, ...]
    first: datetime | None
    last: datetime | None
    since: datetime | None = None
    until: datetime | None = None
    """The window the report was limited to (a campaign's), if any."""
    timetable: TimetableSummary | None = None


def timetable_summary(tt: Timetable) -> TimetableSummary:
    return TimetableSummary(
        tt.timezone, tt.weekdays,
        tuple(PeriodLine(p.name, p.span(), ", ".join(p.days) if p.days else "every school day")
              for p in sorted(tt.periods, key=lambda p: (p.start, p.name))),
        tuple(f"{t.name}: {t.start.isoformat()} to {t.end.isoformat()}" for t in tt.terms),
        len(tt.exceptions))


def report_provenance(session: Session, site: Site, metrics: Iterable[str],
                      since: datetime | None = None,
                      until: datetime | None = None) -> Provenance:
    """The methods behind ``metrics`` of ``site`` in ``[since, until)`` (either optional)."""
    wanted = sorted(set(metrics))
    found = (_uses_from_runs(session, site, wanted, since, until)
             if session.get_bind().dialect.name == "postgresql" else None)
    if found is None:
        m = Measurement.__table__.c  # type: ignore[attr-defined]
        query = (sa_select(m.metric, m.method, func.count(), func.min(m.time),
                           func.max(m.time))
                 .where(m.site_id == site.id, m.metric.in_(wanted))
                 .where(*site_window(site, since, until))
                 .group_by(m.metric, m.method).order_by(m.metric, m.method))
        found = [tuple(row) for row in session.connection().execute(query)]
    uses = tuple(MethodUse(metric, method, int(n), first, last)
                 for metric, method, n, first, last in found)
    assert site.id is not None
    tt = load_timetable(session, site.id)
    return Provenance(uses, min((u.first for u in uses), default=None),
                      max((u.last for u in uses), default=None), since, until,
                      None if tt is None else timetable_summary(tt))


def _uses_from_runs(session: Session, site: Site, metrics: list[str],
                    since: datetime | None, until: datetime | None) -> list[Any] | None:
    """PostgreSQL (revision 0008): (metric, method, count, first, last) as the query on
    ``measurement`` gives them, from the site's runs grouped by (shape, methods) and
    spread over each shape's metrics here, without unnesting a run (10M rows: ~1 s where
    the view took ~10 s). None when a run's shape is missing from ``measurement_key``."""
    r, k = measurement_run.c, measurement_key.c
    names = {shape: metric for shape, metric in session.connection().execute(
        sa_select(k.shape, k.metric).where(k.site_id == site.id))}
    where = [r.site_id == site.id, *([r.time >= since] if since is not None else []),
             *([r.time < until] if until is not None else [])]
    wanted = set(metrics)
    uses: dict[tuple[str, str], list[Any]] = {}
    for shape, methods, n, first, last in session.connection().execute(
            sa_select(r.shape, r.method, func.count(), func.min(r.time), func.max(r.time))
            .where(*where).group_by(r.shape, r.method)):
        if shape not in names:
            return None
        for metric, method in zip(names[shape], methods, strict=True):
            if metric in wanted:
                use = uses.setdefault((metric, method), [0, first, last])
                use[0] += n
                use[1], use[2] = min(use[1], first), max(use[2], last)
    return [(metric, method, n, first, last)
            for (metric, method), (n, first, last) in sorted(uses.items())]


def provenance_for(session: Session, report: SiteReport) -> Provenance:
    """The provenance of a built :class:`SiteReport`: its profiles' metrics, in its
    campaign's window when it has one."""
    site = get_site(session, report.site)
    c = report.campaign
    return report_provenance(session, site, report_metrics(v.profile for v in report.verdicts),
                             c.start_at if c else None, c.end_at if c else None)
