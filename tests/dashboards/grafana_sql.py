"""Expand a Grafana PostgreSQL panel query the way Grafana does, to run it in a test.

Two steps, in Grafana's order:

1. :func:`interpolate` — template variables (the browser does this): ``$name``,
   ``${name}``, ``${name:format}`` and the built-in ``$__interval`` / ``$__interval_ms``.
   Without a format, a single-valued variable is inserted raw and a multi-value (or
   include-all) one as quoted, comma-separated literals (Grafana's SQL data sources).
   ``sqlstring`` quotes every value and doubles its single quotes. Names starting with
   ``__`` that are not built-ins are left alone: they are the server's macros.
2. :func:`expand_macros` — the PostgreSQL macros (Grafana's server does this; see its
   ``grafana-postgresql-datasource`` ``macros.go``), only those the dashboards use:
   ``$__timeFilter(col)`` → ``col BETWEEN '<from>' AND '<to>'`` (RFC 3339, UTC, ``Z``),
   ``$__timeFrom()`` / ``$__timeTo()`` → the quoted instants,
   ``$__timeGroup(col, 5m)`` → ``floor(extract(epoch from col)/300)*300`` and
   ``$__timeGroupAlias(col, 5m)`` → the same ``AS "time"``.

Anything else (an unknown variable, macro or format, a fill argument) raises
:class:`GrafanaSqlError` naming it, so a dashboard cannot use what this does not check.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime


class GrafanaSqlError(ValueError):
    """A query this helper cannot expand; the message names the bad part."""


@dataclass(frozen=True)
class Variable:
    """A template variable's current value; ``multi``: multi-value or include-all."""

    value: str | Sequence[str]
    multi: bool = False


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime


_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)(?::([^}]+))?\}")
_MACRO = re.compile(r"\$__(\w+)\(")
_UNITS_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _values(variable: Variable) -> list[str]:
    return [variable.value] if isinstance(variable.value, str) else list(variable.value)


def format_variable(name: str, variable: Variable, fmt: str | None) -> str:
    values = _values(variable)
    if fmt == "sqlstring" or (fmt is None and (variable.multi or len(values) != 1)):
        return ",".join(sql_literal(v) for v in values)
    if fmt in (None, "raw", "csv"):
        return ",".join(values)
    raise GrafanaSqlError(f"variable format {fmt!r} (in ${{{name}:{fmt}}}) is not "
                          "implemented here")


def interval_seconds(text: str) -> float:
    """``5m`` → 300.0 (Grafana's interval syntax: a number and ms, s, m, h, d or w)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)", text.strip().strip("'"))
    if match is None:
        raise GrafanaSqlError(f"interval {text!r} is not a number followed by "
                              f"one of {', '.join(_UNITS_S)}")
    return float(match.group(1)) * _UNITS_S[match.group(2)]


def interpolate(sql: str, variables: Mapping[str, Variable], interval: str) -> str:
    """Replace the template variables and ``$__interval``; leave macros alone."""
    builtins = {"__interval": interval,
                "__interval_ms": go_number(interval_seconds(interval) * 1000)}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        fmt = match.group(3)
        if name in builtins:
            return builtins[name]
        if name in variables:
            return format_variable(name, variables[name], fmt)
        if name.startswith("__"):
            return match.group(0)
        raise GrafanaSqlError(f"unknown template variable ${name}; known: "
                              f"{', '.join(sorted(variables)) or 'none'}")

    return _VARIABLE.sub(replace, sql)


def go_number(value: float) -> str:
    """A float as Go's ``%v`` prints it, for the range intervals need (up to 1e6)."""
    if not 0.0001 <= abs(value) < 1e6:
        raise GrafanaSqlError(f"{value!r} is outside what go_number prints like Go")
    return str(int(value)) if value.is_integer() else repr(value)


def rfc3339(when: datetime) -> str:
    """Go's ``time.RFC3339Nano`` of the UTC instant: no trailing zeros, ``Z``."""
    if when.tzinfo is None:
        raise GrafanaSqlError(f"time {when.isoformat()} has no timezone")
    utc = when.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def _arguments(sql: str, start: int) -> tuple[list[str], int]:
    """The comma-separated arguments of the call whose '(' is just before ``start``
    (nested parentheses allowed) and the index after its ')'."""
    depth, args, current = 0, [], start
    for i in range(start, len(sql)):
        ch = sql[i]
        if ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif ch == ")":
            args.append(sql[current:i])
            stripped = [a.strip() for a in args]
            return ([] if stripped == [""] else stripped), i + 1
        elif ch == "," and not depth:
            args.append(sql[current:i])
            current = i + 1
    raise GrafanaSqlError(f"macro call at {sql[start - 20:start]!r} has no closing ')'")


def _time_group(args: list[str], _: TimeRange) -> str:
    if len(args) != 2:
        raise GrafanaSqlError(f"$__timeGroup needs (column, interval), got {args}")
    seconds = go_number(interval_seconds(args[1]))
    return f"floor(extract(epoch from {args[0]})/{seconds})*{seconds}"


def _time_filter(args: list[str], r: TimeRange) -> str:
    if len(args) != 1:
        raise GrafanaSqlError(f"$__timeFilter needs one column, got {args}")
    return f"{args[0]} BETWEEN '{rfc3339(r.start)}' AND '{rfc3339(r.end)}'"


def _instant(name: str, pick: Callable[[TimeRange], datetime]
             ) -> Callable[[list[str], TimeRange], str]:
    def macro(args: list[str], r: TimeRange) -> str:
        if args:
            raise GrafanaSqlError(f"$__{name}() takes no arguments, got {args}")
        return f"'{rfc3339(pick(r))}'"
    return macro


MACROS: dict[str, Callable[[list[str], TimeRange], str]] = {
    "timeFilter": _time_filter,
    "timeFrom": _instant("timeFrom", lambda r: r.start),
    "timeTo": _instant("timeTo", lambda r: r.end),
    "timeGroup": _time_group,
    "timeGroupAlias": lambda args, r: _time_group(args, r) + ' AS "time"',
}


def expand_macros(sql: str, time_range: TimeRange) -> str:
    out, pos = [], 0
    while (match := _MACRO.search(sql, pos)) is not None:
        name = match.group(1)
        if name not in MACROS:
            raise GrafanaSqlError(f"macro $__{name} is not implemented here")
        args, end = _arguments(sql, match.end())
        out += [sql[pos:match.start()], MACROS[name](args, time_range)]
        pos = end
    return "".join(out) + sql[pos:]


def expand(sql: str, variables: Mapping[str, Variable], time_range: TimeRange,
           interval: str = "5m") -> str:
    """``sql`` as PostgreSQL receives it from Grafana."""
    return expand_macros(interpolate(sql, variables, interval), time_range)
