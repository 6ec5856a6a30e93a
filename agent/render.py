"""Human-readable text for probe results (the JSON form is :func:`agent.wire.to_jsonable`)."""

from __future__ import annotations

from agent.wire import Measurement, ProbeResult


def _number(x: float) -> str:
    return f"{x:.3f}".rstrip("0").rstrip(".") if abs(x) < 1e6 else f"{x:.0f}"


def _group(measurements: list[Measurement]) -> dict[tuple[str, str, str], list[Measurement]]:
    groups: dict[tuple[str, str, str], list[Measurement]] = {}
    for m in measurements:
        groups.setdefault((m.metric, m.unit, m.method), []).append(m)
    return groups


def measurement_line(metric: str, unit: str, method: str, items: list[Measurement]) -> str:
    if items[0].text is not None:
        return f"{metric:<22} {items[0].text}  [{method}]"
    if len(items) == 1 and items[0].stat == "value":
        m = items[0]
        shown = _number(m.value or 0.0)
        extra = f" (n={m.samples})" if m.samples > 1 else ""
        return f"{metric:<22} {shown} {unit}{extra}  [{method}]"
    stats = ", ".join(f"{m.stat} {_number(m.value or 0.0)}" for m in items)
    return f"{metric:<22} {stats} {unit} (n={items[0].samples})  [{method}]"


def result_lines(result: ProbeResult) -> list[str]:
    head = f"{result.probe} {result.target or ''}".rstrip()
    lines = [f"{head}: {result.status}"]
    if result.reason:
        lines.append(f"    ({result.reason})")
    for (metric, unit, method), items in _group(result.measurements).items():
        lines.append("    " + measurement_line(metric, unit, method, items))
    return lines


def results_text(results: list[ProbeResult]) -> str:
    return "\n".join(line for r in results for line in result_lines(r))
