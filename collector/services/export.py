"""Raw measurements out: one row per measurement, as CSV or a JSON list."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from collector.services.rows import MeasurementRow

COLUMNS = ("time", "agent", "room", "probe", "target", "metric", "value", "unit", "method",
           "report_id", "stat", "samples", "text", "period", "in_lesson", "trigger", "job_id")


def export_record(row: MeasurementRow) -> dict[str, Any]:
    return {
        "time": row.time.isoformat(), "agent": row.agent_id, "room": row.room,
        "probe": row.probe, "target": row.target, "metric": row.metric, "value": row.value,
        "unit": row.unit, "method": row.method, "report_id": row.report_id, "stat": row.stat,
        "samples": row.samples, "text": row.text, "period": row.period,
        "in_lesson": row.in_lesson, "trigger": row.trigger, "job_id": row.job_id,
    }


def to_csv(rows: Iterable[MeasurementRow]) -> str:
    """CSV with a header; empty cells for missing values (a text metric has no value)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        record = export_record(row)
        writer.writerow({k: "" if v is None else v for k, v in record.items()})
    return out.getvalue()


def to_json_list(rows: Iterable[MeasurementRow]) -> list[dict[str, Any]]:
    return [export_record(row) for row in rows]
