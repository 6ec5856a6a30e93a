"""A site report as plain text (the terminal) and as CSV (a spreadsheet).

CSV: one row per requirement (``room`` empty) followed by one row per room of that
requirement (``room`` set, the room's own status, value and samples), then one row per
room capacity (``requirement`` empty, ``kind`` "capacity"). The in-lesson and out-of-hours
columns repeat the requirement's verdict on each window alone.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from collector.services.capacity import RoomCapacityVerdict
from collector.services.readiness import ProfileVerdict, RequirementVerdict, WindowResult
from collector.services.readiness_rules import fmt, with_unit
from collector.services.site_report import SiteReport

WINDOW_LABEL = {"in_lesson": "in lessons", "out_of_hours": "out of hours"}
CSV_COLUMNS = [
    "site", "campaign", "profile", "profile_version", "profile_status", "kind", "requirement",
    "title", "severity", "metric", "stat", "statistic", "op", "threshold", "threshold_used",
    "unit", "window", "scope", "room", "status", "value", "value_unit", "samples", "devices",
    "rooms", "first", "last", "in_lesson_status", "in_lesson_value", "out_of_hours_status",
    "out_of_hours_value", "students_supported", "basis", "reason", "remediation",
]


def _time(value: object) -> str:
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else ""


def _window_line(w: WindowResult) -> str:
    label = f"{WINDOW_LABEL[w.window]}:"
    if w.evidence is None:
        return f"{label:14}{w.status.upper():8}{w.reason}"
    ev = w.evidence
    return (f"{label:14}{w.status.upper():8}{with_unit(ev.value, ev.unit)} ({ev.statistic}, "
            f"{ev.judged}; {ev.samples} samples from {ev.devices} device(s))")


def requirement_lines(v: RequirementVerdict) -> list[str]:
    req, pad = v.requirement, " " * 12
    how = ([] if req.scope == "site" and not req.per_student
           else [f"judged per {'room' if req.per_student else req.scope}"])
    how += [] if req.window == "all" else [WINDOW_LABEL[req.window]]
    extra = f" [{'; '.join(how)}]" if how else ""
    lines = [f"  [{v.status.upper():7}] {req.id} ({req.severity}): {req.title}{extra}",
             f"{pad}{v.reason}"]
    lines += [f"{pad}{_window_line(v.windows[w])}" for w in WINDOW_LABEL if w in v.windows]
    if v.rooms and len(v.rooms) > 1 or req.scope == "room" or req.per_student:
        lines.append(pad + "rooms: " + "; ".join(
            f"{r.room} {r.status.upper()}"
            + (f" {with_unit(r.value, v.evidence.unit if v.evidence else req.unit)}"
               if r.value is not None else "") + f" ({r.samples})" for r in v.rooms))
    if v.worst_periods:
        unit = v.evidence.unit if v.evidence else req.unit
        lines.append(pad + "worst periods: " + "; ".join(
            f"{p.period} {with_unit(p.value, unit)}" for p in v.worst_periods))
    if v.remediation:
        lines.append(f"{pad}what to do: {v.remediation}")
    return lines


def capacity_line(c: RoomCapacityVerdict) -> str:
    direction = "download" if c.metric == "download_mbps" else "upload"
    supported = str(c.students_supported) if c.students_supported is not None else (
        f"unknown ({' and '.join(c.missing)} not measured; {direction} alone supports "
        f"{c.measured_supports})")
    enough = "" if c.students_supported is None else (
        " (enough for a class of {})" if c.students_supported >= c.class_size
        else " (NOT enough for a class of {})").format(c.class_size)
    total = "not measured" if c.total_mbps is None else f"{fmt(c.total_mbps)} Mbps"
    return (f"    {c.room}: {supported} students{enough}; {total} {direction} total, "
            f"{fmt(c.per_student_mbps)} Mbps per student [{c.basis}]")


def verdict_lines(verdict: ProfileVerdict) -> list[str]:
    p = verdict.profile
    version = f"; profile {p.id} version {p.version}" if p.version else f"; profile {p.id}"
    lines = [f"{p.title}: {verdict.status.upper()}",
             f"  source: {p.source.citation} (confidence {p.source.confidence}){version}"]
    for v in verdict.requirements:
        lines += requirement_lines(v)
    if verdict.capacity:
        lines.append(f"  room capacity (class size {verdict.class_size}):")
        lines += [capacity_line(c) for c in verdict.capacity]
    return lines


def report_text(report: SiteReport) -> str:
    when = report.generated_at.isoformat(timespec="seconds")
    lines = [f"site {report.site}: readiness at {when}"]
    if report.campaign is not None:
        c = report.campaign
        lines.append(f"campaign {c.name!r}: {_time(c.start_at)} to {_time(c.end_at)} "
                     f"(profiles {', '.join(c.profiles)})")
    for verdict in report.verdicts:
        lines += ["", *verdict_lines(verdict)]
    if report.combined:
        lines += ["", "all these products at once:"]
        lines += [capacity_line(c) for c in report.combined]
    lines += ["", f"agents: {len(report.agents)}"]
    lines += [f"  {a.agent_id} in {a.room}, last seen "
              f"{a.last_seen.isoformat(timespec='seconds') if a.last_seen else 'never'}"
              f"{' (revoked)' if a.revoked else ''}" for a in report.agents]
    return "\n".join(lines)


def _row(head: dict[str, str], **values: str) -> list[str]:
    cells = {**head, **values}
    return [cells.get(column, "") for column in CSV_COLUMNS]


def _requirement_rows(head: dict[str, str], v: RequirementVerdict) -> list[list[str]]:
    req, ev = v.requirement, v.evidence
    common = {"requirement": req.id, "title": req.title, "severity": req.severity,
              "metric": req.metric, "stat": req.stat, "statistic": req.statistic, "op": req.op,
              "threshold": repr(req.threshold),
              "threshold_used": repr(req.threshold if ev is None else ev.threshold),
              "unit": req.unit, "window": req.window, "scope": req.scope}
    cells = {"kind": "requirement", "status": v.status, "reason": v.reason,
             "remediation": v.remediation or ""}
    if ev is not None:
        cells.update(value=repr(ev.value), value_unit=ev.unit, samples=str(ev.samples),
                     devices=str(ev.devices), rooms=str(ev.rooms), first=_time(ev.first),
                     last=_time(ev.last))
    for w, result in v.windows.items():
        cells[f"{w}_status"] = result.status
        if result.evidence is not None:
            cells[f"{w}_value"] = repr(result.evidence.value)
    out = [_row(head, **common, **cells)]
    unit = ev.unit if ev else req.unit
    for r in v.rooms:
        out.append(_row(head, **common, kind="room", room=r.room, status=r.status,
                        value="" if r.value is None else repr(r.value), value_unit=unit,
                        samples=str(r.samples), devices=str(r.devices),
                        last=_time(r.measured_at), basis=r.basis))
    return out


def _capacity_rows(head: dict[str, str],
                   caps: Sequence[RoomCapacityVerdict]) -> list[list[str]]:
    return [_row(head, kind="capacity", metric=c.metric, threshold=repr(c.per_student_mbps),
                 unit="Mbps", room=c.room,
                 value="" if c.total_mbps is None else repr(c.total_mbps), value_unit="Mbps",
                 last=_time(c.measured_at),
                 students_supported="" if c.students_supported is None
                 else str(c.students_supported), basis=c.basis, reason=c.note)
            for c in caps]


def report_csv(report: SiteReport) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    campaign = report.campaign.name if report.campaign else ""
    for verdict in report.verdicts:
        p = verdict.profile
        head = {"site": report.site, "campaign": campaign, "profile": p.id,
                "profile_version": p.version, "profile_status": verdict.status}
        for v in verdict.requirements:
            writer.writerows(_requirement_rows(head, v))
        writer.writerows(_capacity_rows(head, verdict.capacity))
    together = "+".join(v.profile.id for v in report.verdicts)
    writer.writerows(_capacity_rows({"site": report.site, "campaign": campaign,
                                     "profile": together}, report.combined))
    return buf.getvalue()
