"""The numpy statistics (:mod:`collector.services.sample_stats`) equal the Python ones
(:mod:`collector.services.readiness_samples`) bit for bit, and the array partitions
(:mod:`collector.services.sample_cells`) build the same windows as the row partitions
(:class:`collector.services.readiness_partition.Partition`), with no database.

Floats are compared by their bits (``float.hex``), not with ``==``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from collector.services.profiles import Requirement, Source
from collector.services.readiness_partition import SITE, Partition, Window
from collector.services.readiness_samples import percentile, share_pct, statistic
from collector.services.rows import MeasurementRow
from collector.services.sample_cells import (
    ArrayPartition,
    CellTable,
    from_micros,
    to_micros,
)
from collector.services.sample_stats import SortedGroups, value_order

STATISTICS = ("min", "max", "mean", "p0", "p1", "p5", "p10", "p25", "p50", "p75", "p90",
              "p95", "p99", "p100")
OPS = ("<", "<=", ">", ">=", "==")
START = datetime(2025, 9, 1, 8, tzinfo=UTC)


def bits(values: Sequence[float]) -> list[str]:
    return [float(v).hex() for v in values]


def grouped(groups: Sequence[Sequence[float]]) -> SortedGroups:
    """The groups' values shuffled together, then grouped again (labels 0..n-1)."""
    labels = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
    values = np.array([v for g in groups for v in g], np.float64)
    mix = np.random.default_rng(1).permutation(len(values))
    values, labels = values[mix], labels[mix]
    return SortedGroups.build(values, value_order(values), labels)


def python_statistic(name: str, values: Sequence[float]) -> float:
    return statistic(name, values)


def random_groups(rng: random.Random, count: int) -> list[list[float]]:
    """Sizes 1..60; values from several shapes: reals of any magnitude, rounded
    readings with many duplicates, negatives, integers, a constant."""
    shapes = (lambda: rng.uniform(-1e6, 1e6), lambda: round(rng.gauss(20, 8), 2),
              lambda: -rng.expovariate(0.1), lambda: float(rng.randrange(-3, 4)),
              lambda: rng.random() * 10 ** rng.randrange(-300, 300), lambda: 42.5)
    out = []
    for _ in range(count):
        shape = rng.choice(shapes)
        out.append([shape() for _ in range(rng.choice((1, 2, 3, 4, rng.randrange(1, 61))))])
    return out


@pytest.mark.parametrize("seed", range(5))
def test_every_statistic_equals_the_python_one_bit_for_bit(seed: int) -> None:
    groups = random_groups(random.Random(seed), 300)
    sorted_groups = grouped(groups)
    assert sorted_groups.counts.tolist() == [len(g) for g in groups]
    for name in STATISTICS:
        assert bits(sorted_groups.statistic(name)) == \
            bits([python_statistic(name, g) for g in groups]), name


@pytest.mark.parametrize("values", [
    [7.25], [1.0, 2.0], [3.0, 1.0, 2.0], [4.0, 1.0, 3.0, 2.0], [2.0, 2.0, 2.0, 2.0],
    [-5.5, -1.25, -3.0], [0.1, 0.2, 0.3, 0.4, 0.5], [1e308, -1e308, 1.0],
    [5e-324, 0.0, 1e-300], [0.0, 0.0, 1.0, 1.0, 1.0]])
def test_edge_cases_equal_the_python_statistics(values: list[float]) -> None:
    only = grouped([values])
    for q in (0, 1, 2.5, 33.3, 50, 66.7, 95, 99.9, 100):
        assert bits(only.percentile(q)) == bits([percentile(values, q)]), q
    for name in STATISTICS:
        assert bits(only.statistic(name)) == bits([statistic(name, values)]), name


def test_a_percentile_interpolates_between_closest_ranks() -> None:
    assert grouped([[float(v) for v in range(1, 21)]]).percentile(95) == [19.05]
    assert grouped([[10.0, 20.0, 30.0, 40.0]]).statistic("p50") == [25.0]


@pytest.mark.parametrize("seed", range(3))
def test_share_equals_the_python_share(seed: int) -> None:
    rng = random.Random(seed)
    groups = [[float(rng.randrange(0, 10)) for _ in range(rng.randrange(1, 30))]
              for _ in range(200)]
    sorted_groups = grouped(groups)
    for op in OPS:
        for threshold in (-1.0, 0.0, 4.0, 4.5, 9.0, 10.0):
            assert bits(sorted_groups.share(op, threshold)) == \
                bits([share_pct(g, op, threshold) for g in groups]), (op, threshold)


def test_negative_labels_are_left_out_and_absent_labels_are_not_groups() -> None:
    values = np.array([5.0, 1.0, 3.0, 2.0, 4.0])
    labels = np.array([3, -1, 0, 3, -1])
    found = SortedGroups.build(values, value_order(values), labels)
    assert found.labels.tolist() == [0, 3]
    assert found.counts.tolist() == [1, 2]
    assert found.statistic("max") == [3.0, 5.0]


def test_one_group_without_labels_and_no_values() -> None:
    values = np.array([3.0, 1.0, 2.0])
    assert SortedGroups.build(values, value_order(values)).statistic("p50") == [2.0]
    empty = SortedGroups.build(values, np.zeros(0, np.int64))
    assert (len(empty), empty.statistic("p95"), empty.share("<", 1.0)) == (0, [], [])


def test_an_unknown_statistic_is_named() -> None:
    with pytest.raises(ValueError, match="unknown statistic 'median'"):
        grouped([[1.0]]).statistic("median")


def test_micros_round_trip_exactly() -> None:
    time = datetime(2025, 11, 3, 9, 41, 7, 123457, tzinfo=UTC)
    assert to_micros(time) == 1762162867123457
    assert from_micros(to_micros(time)) == time


# --- array partitions against row partitions -------------------------------------------

def requirement(statistic_name: str, op: str = "<", **changes: object) -> Requirement:
    base = Requirement(id="r", title="R", metric="tcp_connect_ms", stat="p50",
                       statistic=statistic_name, op=op, threshold=40.0, unit="ms",
                       severity="must", source=Source("test", "P"), min_samples=1,
                       share_min_pct=50.0 if statistic_name == "share" else None)
    return replace(base, **changes)  # type: ignore[arg-type]


def random_rows(seed: int, n: int) -> list[MeasurementRow]:
    """Rows of one group: 12 devices in 4 rooms (two devices move between R0 and R9 by
    the hour), 3 periods, all tags, several rows per device in the same microsecond."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        agent, hour = f"dev-{rng.randrange(12):02d}", rng.randrange(0, 40)
        room = f"R{int(agent[-2:]) % 4}" if agent not in ("dev-03", "dev-07") \
            else ("R0", "R9")[hour % 2]
        tag = rng.choice((True, False, None))
        period = rng.choice(("P1", "P2", "P3")) if tag else None
        time = START + timedelta(hours=hour, microseconds=rng.randrange(3))
        rows.append(MeasurementRow(
            time=time, agent_id=agent, room=room, probe="latency", target="t:443",
            metric="tcp_connect_ms", value=round(rng.gauss(40, 15), rng.choice((0, 2, 6))),
            unit="ms", method="tcp", report_id="r", stat="p50", samples=1, text=None,
            period=period, in_lesson=tag, trigger="scheduled"))
    return rows


KEY = ("tcp_connect_ms", "p50", "ms", "t:443")


def table_by_cells(rows: Sequence[MeasurementRow]) -> CellTable:
    """As the streaming path builds it: cell by cell."""
    cells: dict[tuple[object, ...], list[MeasurementRow]] = {}
    for r in rows:
        cells.setdefault((r.in_lesson, r.agent_id, r.room, r.period), []).append(r)
    keys = list(cells)
    return CellTable.from_columns(
        [KEY], [0] * len(keys), [k[0] for k in keys], [k[1] for k in keys],  # type: ignore[misc]
        [k[2] for k in keys], [k[3] for k in keys],  # type: ignore[misc]
        [min(to_micros(r.time) for r in cells[k]) for k in keys],
        [max(to_micros(r.time) for r in cells[k]) for k in keys],
        [len(cells[k]) for k in keys],
        np.array([r.value for k in keys for r in cells[k]], np.float64))


def table_by_blocks(rows: Sequence[MeasurementRow]) -> CellTable:
    """As the PostgreSQL path builds it: blocks of (tag, room, period), a device code,
    time and value per sample."""
    blocks: dict[tuple[object, ...], list[MeasurementRow]] = {}
    for r in rows:
        blocks.setdefault((r.in_lesson, r.room, r.period), []).append(r)
    keys = list(blocks)
    agents = sorted({r.agent_id for r in rows})
    ordered = [r for k in keys for r in blocks[k]]
    return CellTable.from_blocks(
        [KEY], [0] * len(keys), [k[0] for k in keys], [k[1] for k in keys],  # type: ignore[misc]
        [k[2] for k in keys], [len(blocks[k]) for k in keys],  # type: ignore[misc]
        np.array([agents.index(r.agent_id) for r in ordered], np.int64), agents,
        np.array([to_micros(r.time) for r in ordered], np.int64),
        np.array([r.value for r in ordered], np.float64))


def same_window(fast: Window, slow: Window, requirements: Sequence[Requirement]) -> None:
    assert (fast.name, fast.count, fast.span) == (slow.name, slow.count, slow.span)
    assert dict(fast.device_room) == dict(slow.device_room)
    assert dict(fast.room_devices) == dict(slow.room_devices)
    for level in ("site", "devices", "rooms", "periods"):
        mine, theirs = getattr(fast, level), getattr(slow, level)
        assert dict(mine.counts()) == dict(theirs.counts()), level
        for req in requirements:
            got, want = mine.values(req, 40.0), theirs.values(req, 40.0)
            assert sorted(got) == sorted(want)
            assert bits([got[k] for k in sorted(got)]) == bits([want[k] for k in sorted(want)])
    mine_rooms, their_rooms = fast.by_room, slow.by_room
    assert sorted(mine_rooms) == sorted(their_rooms)
    for room, found in mine_rooms.items():
        assert found.last == their_rooms[room].last
        assert {a: sorted(v) for a, v in found.devices.items()} == \
            {a: sorted(v) for a, v in their_rooms[room].devices.items()}


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("build", [table_by_cells, table_by_blocks])
def test_array_partitions_build_the_same_windows(seed: int, build: object) -> None:
    rows = random_rows(seed, 900)
    requirements = [requirement(s) for s in ("p95", "p50", "min", "max", "mean")] + \
        [requirement("share", op) for op in OPS]
    slow, fast = Partition(rows), ArrayPartition(build([*rows]), [KEY])  # type: ignore[operator]
    for window in ("all", "in_lesson", "out_of_hours"):
        assert fast.count(window) == slow.count(window)
        same_window(fast.select(window), slow.select(window), requirements)
    assert fast.untagged() == slow.untagged()


def test_a_moved_device_belongs_to_its_latest_room() -> None:
    rows = random_rows(0, 50)
    last = max(r.time for r in rows) + timedelta(hours=1)
    rows.append(replace(rows[0], agent_id="dev-03", room="R5", time=last))
    window = ArrayPartition(table_by_blocks(rows), [KEY]).select("all")
    assert window.device_room["dev-03"] == "R5"
    assert window.span is not None and window.span[1] == last


def test_an_empty_window_has_no_samples() -> None:
    rows = [r for r in random_rows(1, 200) if r.in_lesson is not False]
    window = ArrayPartition(table_by_blocks(rows), [KEY]).select("out_of_hours")
    assert (window.count, window.span, dict(window.devices.counts())) == (0, None, {})
    assert dict(window.site.values(requirement("p95"), 40.0)) == {}
    assert SITE not in window.site.counts()


def test_fsum_keeps_the_mean_exact() -> None:
    values = [1e16, 1.0, -1e16, 1.0]
    assert grouped([values]).statistic("mean") == [math.fsum(values) / 4] == [0.5]


def test_numpy_comparisons_are_the_readiness_comparisons_element_for_element() -> None:
    """NP_OPS restates readiness_samples.OPS for numpy: every comparison a profile may
    name, the same answers."""
    from collector.services import profiles, readiness_samples, sample_stats

    assert set(sample_stats.NP_OPS) == set(readiness_samples.OPS) == set(profiles.OPS)
    values = [-math.inf, -1.5, -0.0, 0.0, 1e-300, 2.0, 2.0000000000000004, math.inf]
    for symbol, compare in readiness_samples.OPS.items():
        for threshold in (-0.0, 0.0, 2.0, math.inf):
            got = sample_stats.NP_OPS[symbol](np.array(values), threshold).tolist()
            assert got == [compare(v, threshold) for v in values], (symbol, threshold)

