"""The clock filter: the least uncertain recent poll wins; a clock step restarts it."""

from __future__ import annotations

from agent.clock_filter import MAX_AGE_S, WINDOW, ClockFilter, ClockSample


def test_the_least_uncertain_recent_sample_is_used():
    f = ClockFilter()
    assert f.best() is None
    assert f.add(ClockSample(0.0, 0.30, 0.20)).offset_s == 0.30
    assert f.add(ClockSample(60.0, 0.12, 0.02)).offset_s == 0.12
    # a poll delayed on one leg: within its uncertainty, but less sure than the best
    assert f.add(ClockSample(120.0, 0.25, 0.15)) == ClockSample(60.0, 0.12, 0.02)


def test_old_samples_age_out_and_the_window_is_bounded():
    f = ClockFilter()
    f.add(ClockSample(0.0, 0.10, 0.001))
    assert f.add(ClockSample(MAX_AGE_S + 1.0, 0.11, 0.05)).offset_s == 0.11  # aged out
    for i in range(WINDOW + 3):
        f.add(ClockSample(MAX_AGE_S + 2.0 + i, 0.11, 0.05))
    assert len(f.samples) == WINDOW


def test_a_clock_step_restarts_the_window():
    f = ClockFilter()
    f.add(ClockSample(0.0, 0.10, 0.001))
    f.add(ClockSample(60.0, 0.12, 0.02))
    stepped = f.add(ClockSample(120.0, 5.10, 0.03))  # the PC's clock was set back 5 s
    assert stepped.offset_s == 5.10 and f.samples == [stepped]


def test_a_disagreement_within_the_uncertainties_is_not_a_step():
    f = ClockFilter()
    f.add(ClockSample(0.0, 0.10, 0.01))
    f.add(ClockSample(60.0, 0.30, 0.20))  # 0.2 apart, within 0.01 + 0.20 + slack
    assert len(f.samples) == 2 and f.best() == ClockSample(0.0, 0.10, 0.01)
