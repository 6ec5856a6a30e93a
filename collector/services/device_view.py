"""One device's newest results: its inventory (the ``device`` probe) and every other probe.

The newest report of an agent need not hold every probe (the device inventory runs far
less often than the latency probe), so :func:`latest_device_runs` takes each probe and
target's newest run among the agent's last :data:`RECENT_RUNS` runs, with all of that
run's values (every statistic, text values too).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from collector.models import Measurement, ProbeRun, Report

RECENT_RUNS = 500
INVENTORY_PROBE = "device"


@dataclass(frozen=True)
class RunValue:
    metric: str
    stat: str
    value: float | str | None
    unit: str
    method: str
    samples: int


@dataclass(frozen=True)
class DeviceRun:
    probe: str
    target: str | None
    status: str
    reason: str
    started_at: datetime
    values: tuple[RunValue, ...]


def latest_device_runs(session: Session, agent_id: str) -> list[DeviceRun]:
    """The newest run of each (probe, target) of ``agent_id``, by probe and target."""
    runs = session.exec(
        select(ProbeRun).join(Report, col(Report.id) == ProbeRun.report_pk)
        .where(Report.agent_id == agent_id)
        .order_by(col(ProbeRun.started_at).desc(), col(ProbeRun.id).desc())
        .limit(RECENT_RUNS)).all()
    newest: dict[tuple[str, str | None], ProbeRun] = {}
    for run in runs:
        newest.setdefault((run.probe, run.target), run)
    ids = [run.id for run in newest.values()]
    reports = {run.report_pk for run in newest.values()}  # the indexed way to the values
    values: dict[int, list[RunValue]] = {}
    for m in session.exec(select(Measurement).where(col(Measurement.report_pk).in_(reports),
                                                    col(Measurement.probe_run_id).in_(ids))
                          .order_by(col(Measurement.id))).all():
        values.setdefault(m.probe_run_id, []).append(RunValue(
            m.metric, m.stat, m.value if m.text is None else m.text, m.unit, m.method,
            m.samples))
    return [DeviceRun(run.probe, run.target, run.status, run.reason or "", run.started_at,
                      tuple(values.get(run.id or 0, ())))
            for (_probe, _target), run in sorted(newest.items(),
                                                 key=lambda kv: (kv[0][0], kv[0][1] or ""))]
