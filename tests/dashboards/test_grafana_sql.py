"""The Grafana expansion helper does what Grafana does for PostgreSQL (no database here)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.dashboards.grafana_sql import (
    GrafanaSqlError,
    TimeRange,
    Variable,
    expand,
    expand_macros,
    go_number,
    interpolate,
    interval_seconds,
    rfc3339,
)

RANGE = TimeRange(datetime(2025, 3, 3, tzinfo=UTC),
                  datetime(2025, 3, 4, 0, 0, 0, 500000, tzinfo=UTC))
SITE = {"site": Variable("St Mary's Primary")}


def test_sqlstring_quotes_and_doubles_single_quotes() -> None:
    assert interpolate("s.name = ${site:sqlstring}", SITE, "5m") == \
        "s.name = 'St Mary''s Primary'"
    many = {"site": Variable(["A", "B'C"], multi=True)}
    assert interpolate("s.name IN (${site:sqlstring})", many, "5m") == \
        "s.name IN ('A','B''C')"


def test_default_format_is_raw_for_one_value_and_quoted_for_multi() -> None:
    assert interpolate("x = '$site' AND y = '${site}'", SITE, "5m") == \
        "x = 'St Mary's Primary' AND y = 'St Mary's Primary'"
    multi = {"site": Variable(["A", "B"], multi=True), "one": Variable("A", multi=True)}
    assert interpolate("IN ($site) AND IN ($one)", multi, "5m") == "IN ('A','B') AND IN ('A')"
    assert interpolate("${site:raw}", SITE, "5m") == "St Mary's Primary"


def test_interval_builtins_and_macros_left_for_the_server() -> None:
    assert interpolate("$__timeGroupAlias(m.time, $__interval) -- $__interval_ms",
                       {}, "10m") == "$__timeGroupAlias(m.time, 10m) -- 600000"


@pytest.mark.parametrize(("sql", "message"), [
    ("WHERE s.name = $sitee", "unknown template variable $sitee; known: site"),
    ("${site:regex}", "variable format 'regex' (in ${site:regex}) is not implemented here"),
])
def test_unknown_variables_and_formats_are_refused(sql: str, message: str) -> None:
    with pytest.raises(GrafanaSqlError) as caught:
        interpolate(sql, SITE, "5m")
    assert str(caught.value) == message


def test_time_filter_from_and_to_are_rfc3339_utc() -> None:
    assert expand_macros("WHERE $__timeFilter(m.time) AND $__timeFrom() < $__timeTo()",
                         RANGE) == (
        "WHERE m.time BETWEEN '2025-03-03T00:00:00Z' AND '2025-03-04T00:00:00.5Z' "
        "AND '2025-03-03T00:00:00Z' < '2025-03-04T00:00:00.5Z'")


def test_time_group_alias_buckets_epoch_seconds() -> None:
    assert expand_macros("SELECT $__timeGroupAlias(m.time, 5m), $__timeGroup(r.t, '1h')",
                         RANGE) == ('SELECT floor(extract(epoch from m.time)/300)*300 '
                                    'AS "time", floor(extract(epoch from r.t)/3600)*3600')


def test_variables_then_macros_with_nested_parentheses() -> None:
    sql = "SELECT $__timeGroupAlias(coalesce(a.t, b.t), $__interval) WHERE s = ${site:sqlstring}"
    assert expand(sql, SITE, RANGE, "30s") == (
        'SELECT floor(extract(epoch from coalesce(a.t, b.t))/30)*30 AS "time" '
        "WHERE s = 'St Mary''s Primary'")


@pytest.mark.parametrize(("sql", "message"), [
    ("$__unixEpochFilter(t)", "macro $__unixEpochFilter is not implemented here"),
    ("$__timeFilter(a, b)", "$__timeFilter needs one column, got ['a', 'b']"),
    ("$__timeFrom(x)", "$__timeFrom() takes no arguments, got ['x']"),
    ("$__timeGroup(t, 5m, 0)", "$__timeGroup needs (column, interval), got ['t', '5m', '0']"),
    ("$__timeGroup(t, 5 minutes)", "interval '5 minutes' is not a number followed by one of "
                                   "ms, s, m, h, d, w"),
    ("WHERE $__timeFilter(m.time", "macro call at 'WHERE $__timeFilter(' has no closing ')'"),
])
def test_bad_macros_are_refused(sql: str, message: str) -> None:
    with pytest.raises(GrafanaSqlError) as caught:
        expand_macros(sql, RANGE)
    assert str(caught.value) == message


def test_numbers_and_times_print_like_go() -> None:
    assert [go_number(v) for v in (300.0, 0.5, 86400.0, 604800.0)] == \
        ["300", "0.5", "86400", "604800"]
    with pytest.raises(GrafanaSqlError):
        go_number(1e6)  # Go prints 1e+06: not needed, not imitated
    assert [interval_seconds(t) for t in ("250ms", "30s", "5m", "1h", "1d", "1w")] == \
        [0.25, 30, 300, 3600, 86400, 604800]
    assert rfc3339(datetime(2025, 3, 3, 9, 5, 7, 120000, tzinfo=UTC)) == \
        "2025-03-03T09:05:07.12Z"
    with pytest.raises(GrafanaSqlError):
        rfc3339(datetime(2025, 3, 3))
