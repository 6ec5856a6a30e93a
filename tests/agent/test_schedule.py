"""The lesson-aware cadence: intervals, jitter, first-run spread, a room's PCs apart."""

import math
import random
from itertools import combinations

import pytest

from agent.config import AgentConfig
from agent.schedule import HEAVY, TASK_PROBES, TASKS, Cadence, Planner, cadence_of
from agent.timetable import Slot

LESSON = Slot(school_day=True, period="P1", in_lesson=True, exam=False)
BREAK = Slot(school_day=True, period=None, in_lesson=False, exam=False)
WEEKEND = Slot(school_day=False, period=None, in_lesson=False, exam=False)
EXAM = Slot(school_day=True, period="P2", in_lesson=True, exam=True)


def simulate(planner: Planner, until: float, slot_at=lambda t: None, start: float = 0.0,
             bells: tuple[float, ...] = ()) -> dict[str, list[float]]:
    """Run the planner like the supervisor does: sleep until the next task or the next
    lesson boundary (``bells``), run what is due."""
    runs: dict[str, list[float]] = {t: [] for t in TASKS}
    t = start
    while t < until:
        for task in planner.due(t, slot_at(t)):
            runs[task].append(t)
        t = min([t + planner.next_due(t, slot_at(t)), *(b for b in bells if b > t)])
    return runs


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:], strict=False)]


def test_tasks_and_probes():
    assert TASKS == ("passive", "latency", "path", "bandwidth", "inventory", "route")
    assert TASK_PROBES == {"passive": ("load", "wifi"), "latency": ("latency",),
                           "path": ("path",), "bandwidth": ("bandwidth",),
                           "inventory": ("device",), "route": ("traceroute",)}
    assert {"bandwidth"} == HEAVY


def test_cadence_of_config():
    cfg = AgentConfig(passive_interval_s=30, interval_s=120, path_interval_s=900,
                      bandwidth_interval_s=7200, inventory_interval_s=43200, idle_factor=4,
                      jitter=0.1, traceroute_interval_s=3600)
    assert cadence_of(cfg) == Cadence(30, 120, 900, 7200, 43200, 3600, 4, 0.1)
    assert cadence_of(AgentConfig()) == Cadence()


def test_intervals_in_and_out_of_lessons():
    c = Cadence()
    assert [c.interval(t, LESSON) for t in TASKS] == [60, 300, 1800, 3600, 86400, 86400]
    assert [c.interval(t, None) for t in TASKS] == [60, 300, 1800, 3600, 86400, 86400]
    # the inventory is daily whatever the slot: what the device is does not follow lessons
    assert [c.interval(t, BREAK) for t in TASKS] == [300, 1500, 9000, 18000, 86400, 86400]
    assert c.interval("inventory", WEEKEND) == 86400
    assert c.interval("passive", WEEKEND) == 900  # idle_factor * 3
    assert c.interval("latency", EXAM) == 300  # exams pause heavy tasks, not the cadence
    assert c.scaled(2).interval("latency", BREAK) == 3000
    with pytest.raises(KeyError, match="unknown task 'speed'"):
        c.base("speed")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"jitter": 1.0}, "cadence jitter 1.0: expected 0 <= jitter < 1"),
    ({"passive_s": 0}, "cadence passive_s 0: expected a positive number"),
    ({"idle_factor": math.nan}, "cadence idle_factor nan"),
])
def test_bad_cadence(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Cadence(**kwargs)


def test_first_runs_spread_over_the_first_interval():
    firsts = []
    for seed in range(1000):
        runs = simulate(Planner(Cadence(), random.Random(seed)), 60.0)
        firsts.append(runs["passive"][0])
    assert min(firsts) >= 0 and max(firsts) < 60
    deciles = [sum(1 for f in firsts if k * 6 <= f < (k + 1) * 6) for k in range(10)]
    assert all(60 <= n <= 140 for n in deciles), deciles  # uniform: 100 each


def test_a_new_agent_reports_its_inventory_within_ten_minutes_even_at_the_weekend():
    firsts = [simulate(Planner(Cadence(), random.Random(seed)), 700.0,
                       slot_at=lambda t: WEEKEND)["inventory"][0] for seed in range(200)]
    assert max(firsts) < 600 and min(firsts) >= 0
    assert max(firsts) > 500  # still spread over the ten minutes, not all at start


def test_two_seeds_do_not_run_in_step():
    a = simulate(Planner(Cadence(), random.Random(1)), 3600.0)
    b = simulate(Planner(Cadence(), random.Random(2)), 3600.0)
    for task in ("passive", "latency"):
        nearest = [min(abs(x - y) for y in b[task]) for x in a[task]]
        assert sum(1 for d in nearest if d < 1.0) <= len(nearest) // 10, (task, nearest)
    same = simulate(Planner(Cadence(), random.Random(1)), 3600.0)
    assert same == a  # the seed alone decides: the injected rng is the only randomness


def test_jitter_stays_within_bounds_and_is_used():
    runs = simulate(Planner(Cadence(jitter=0.2), random.Random(7)), 5 * 86400.0)  # 120 bw gaps
    for task, base in (("passive", 60.0), ("latency", 300.0), ("bandwidth", 3600.0)):
        g = gaps(runs[task])
        assert min(g) >= base * 0.8 - 1e-9 and max(g) <= base * 1.2 + 1e-9, task
        assert min(g) < base * 0.85 and max(g) > base * 1.15, task  # really jittered
    steady = simulate(Planner(Cadence(jitter=0.0), random.Random(7)), 3600.0)
    assert {round(g, 9) for g in gaps(steady["passive"])} == {60.0}


@pytest.mark.parametrize(("slot", "passive_s"), [(BREAK, 300.0), (WEEKEND, 900.0),
                                                 (None, 60.0), (LESSON, 60.0)])
def test_out_of_lesson_factors(slot, passive_s):
    runs = simulate(Planner(Cadence(), random.Random(3)), 86400.0, lambda t: slot)
    g = gaps(runs["passive"])
    assert min(g) >= passive_s * 0.8 - 1e-9 and max(g) <= passive_s * 1.2 + 1e-9
    assert abs(sum(g) / len(g) - passive_s) < passive_s * 0.03


def test_no_timetable_is_the_lesson_cadence():
    with_none = simulate(Planner(Cadence(), random.Random(5)), 7200.0, lambda t: None)
    in_lesson = simulate(Planner(Cadence(), random.Random(5)), 7200.0, lambda t: LESSON)
    assert with_none == in_lesson


def test_lesson_start_keeps_each_pc_in_its_place():
    """Break until t=1000, then a lesson: nobody is due at the bell, all run within 72 s."""
    bell = 1000.0
    first_in_lesson = []
    for seed in range(30):
        runs = simulate(Planner(Cadence(), random.Random(seed)), bell + 300.0,
                        lambda t: BREAK if t < bell else LESSON, bells=(bell,))
        after = [t for t in runs["passive"] if t >= bell]
        first_in_lesson.append(after[0] - bell)
        assert gaps(after) and max(gaps(after)) <= 72.0 + 1e-9
    assert min(first_in_lesson) > 0  # the bell itself lines nobody up
    assert max(first_in_lesson) <= 300 * 1.2 / 5 + 1e-9
    assert len({round(t) for t in first_in_lesson}) >= 20  # still spread out


def test_config_change_rescales_the_wait():
    planner = Planner(Cadence(jitter=0.0), random.Random(11))
    runs = simulate(planner, 1000.0)
    last = runs["latency"][-1]
    planner.cadence = Cadence(latency_s=600.0, jitter=0.0)
    later = simulate(planner, 5000.0, start=1000.0)
    assert later["latency"][0] == pytest.approx(1000 + (last + 300 - 1000) * 2)
    assert {round(g, 6) for g in gaps(later["latency"])} == {600.0}


def test_next_due_is_the_wait_for_the_earliest_task():
    planner = Planner(Cadence(), random.Random(4))
    wait = planner.next_due(0.0, None)
    assert planner.due(wait - 0.001, None) == []
    assert planner.due(wait, None) != []
    assert planner.next_due(wait, None) > 0


def close_pairs(room: list[dict[str, list[float]]], task: str, window: float) -> int:
    """Runs of ``task`` on two different PCs starting less than ``window`` apart."""
    return sum(1 for a, b in combinations(room, 2)
               for x in a[task] for y in b[task] if abs(x - y) < window)


@pytest.mark.parametrize(("task", "interval", "window", "hours"), [
    ("bandwidth", 3600.0, 10.0, 8.0),   # an 8 s download test: overlapping downloads
    ("latency", 300.0, 1.0, 2.0),
])
def test_a_room_switched_on_together_collides_no_more_than_chance(
        task: str, interval: float, window: float, hours: float):
    """30 PCs start at the same instant. Runs of independent PCs at rate 1/e over T
    meet within ±w about 2wT/e² times per pair of PCs; a room in step meets every run."""
    span = hours * 3600
    room = [simulate(Planner(Cadence(), random.Random(seed)), span) for seed in range(30)]
    chance = math.comb(30, 2) * 2 * window * span / interval**2
    observed = close_pairs(room, task, window)
    assert observed <= chance + 4 * math.sqrt(chance), (observed, chance)
    in_step = [simulate(Planner(Cadence(), random.Random(0)), span) for _ in range(30)]
    assert close_pairs(in_step, task, window) > 10 * chance  # the check can fail
