"""Before/after comparison on synthetic samples whose truth is known."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta
from statistics import NormalDist
from typing import Any

import pytest

from collector.services.compare import (
    MIN_DEVICES,
    compare,
    compare_requirement,
    comparison_dict,
    mann_whitney,
)
from collector.services.profiles import Profile, Requirement, parse_profile
from collector.services.readiness_samples import Sample
from collector.services.rows import MeasurementRow

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RTT = {"id": "rtt", "title": "RTT", "metric": "tcp_connect_ms", "stat": "p50",
       "statistic": "p50", "op": "<", "threshold": 100, "unit": "ms", "severity": "must",
       "min_samples": 5}


def profile(*requirements: dict[str, Any], class_size: int = 30) -> Profile:
    return parse_profile({"id": "test", "version": "1", "title": "Test", "class_size": class_size,
                          "source": {"citation": "test", "confidence": "P"},
                          "requirements": list(requirements)}, "test.toml")


def requirement(**changes: Any) -> Requirement:
    return profile({**RTT, **changes}).requirements[0]


def samples(by_device: dict[str, list[float]]) -> list[Sample]:
    return [Sample(v, T0 + timedelta(minutes=i), device, "Room 1", "P1", True)
            for device, values in by_device.items() for i, v in enumerate(values)]


def normal(rng: random.Random, devices: int, per_device: int, mean: float, sd: float,
           prefix: str) -> list[Sample]:
    return samples({f"{prefix}{d}": [rng.gauss(mean, sd) for _ in range(per_device)]
                    for d in range(devices)})


def phi_p(z: float) -> float:
    return 2 * (1 - NormalDist().cdf(abs(z)))


# --- Mann-Whitney U -------------------------------------------------------------------------

def test_mann_whitney_by_hand_without_ties() -> None:
    # after [4, 5] outranks every before value: U = 2 x 3 = 6; mean 3, variance 2*3*6/12 = 3
    test = mann_whitney([1, 2, 3], [4, 5])
    assert test.u == 6.0
    assert test.z == pytest.approx(2.5 / math.sqrt(3))  # continuity correction 0.5
    assert test.p_value == pytest.approx(phi_p(2.5 / math.sqrt(3)))
    assert test.p_value == pytest.approx(0.14891, abs=1e-5)
    reverse = mann_whitney([4, 5], [1, 2, 3])
    assert (reverse.u, reverse.z) == (0.0, pytest.approx(-2.5 / math.sqrt(3)))
    assert reverse.p_value == pytest.approx(test.p_value)


def test_mann_whitney_by_hand_with_ties() -> None:
    # combined 1, 2, 2, 2, 3 -> ranks 1, 3, 3, 3, 5; after {2, 3} rank sum 8, U = 8 - 3 = 5;
    # tie correction: one tie of 3 -> variance 6/12 * (6 - (27 - 3) / (5 * 4)) = 2.4
    test = mann_whitney([1, 2, 2], [2, 3])
    assert test.u == 5.0
    assert test.z == pytest.approx(1.5 / math.sqrt(2.4))
    assert test.p_value == pytest.approx(phi_p(1.5 / math.sqrt(2.4)))


def test_mann_whitney_matches_scipy_documentation_example() -> None:
    # scipy.stats.mannwhitneyu docs: males vs females, method="asymptotic":
    # statistic 17.0, pvalue 0.11134688653314041
    test = mann_whitney([20, 11, 17, 12], [19, 22, 16, 29, 24])
    assert test.u == 17.0
    assert test.p_value == pytest.approx(0.11134688653314041, rel=1e-9)


def test_mann_whitney_identical_values_and_empty_side() -> None:
    assert mann_whitney([3, 3, 3], [3, 3]).p_value == 1.0
    with pytest.raises(ValueError, match="got 0 and 2"):
        mann_whitney([], [1, 2])


# --- statistic changes ----------------------------------------------------------------------

def test_clear_improvement_is_better_with_interval_around_true_shift() -> None:
    rng = random.Random(2)
    before = normal(rng, 6, 10, 100, 10, "b")
    after = normal(rng, 6, 10, 70, 10, "a")  # true shift of the median: -30 ms
    c = compare_requirement(requirement(), before, after, 30)
    assert c.verdict == "better"
    assert c.resampled == "devices"
    assert c.better_when == "lower"
    assert c.ci_low is not None and c.ci_high is not None and c.change is not None
    assert c.ci_low <= -30 <= c.ci_high
    assert c.ci_high < 0
    assert c.ci_low <= c.change <= c.ci_high
    assert c.rank_test is not None and c.rank_test.p_value < 1e-6
    assert (c.before.samples, c.before.devices, c.after.samples, c.after.devices) == (
        60, 6, 60, 6)
    assert "significantly lower" in c.reason and "lower is better" in c.reason


def test_clear_shift_in_repeated_trials() -> None:
    rng = random.Random(12)
    req = requirement()
    results = [compare_requirement(req, normal(rng, 10, 6, 100, 10, "b"),
                                   normal(rng, 10, 6, 70, 10, "a"), 30, resamples=300,
                                   seed=trial)
               for trial in range(100)]
    assert all(c.verdict == "better" for c in results)
    covered = sum((c.ci_low or 0) <= -30 <= (c.ci_high or 0) for c in results)
    assert covered >= 90  # a 95 % interval; measured 0.94-0.96 for 10 devices


def test_direction_follows_the_requirement() -> None:
    rng = random.Random(2)
    low = normal(rng, 6, 10, 20, 4, "l")
    high = normal(rng, 6, 10, 30, 4, "h")
    assert compare_requirement(requirement(), low, high, 30).verdict == "worse"
    speed = requirement(metric="download_mbps", unit="Mbps", stat="value", op=">=",
                        threshold=10)
    got = compare_requirement(speed, low, high, 30)
    assert (got.verdict, got.better_when) == ("better", "higher")
    assert got.ci_low is not None and got.ci_low <= 10 <= (got.ci_high or 0)


def test_identical_distributions_rarely_change() -> None:
    rng = random.Random(3)
    req = requirement(statistic="mean")
    results = [compare_requirement(req, normal(rng, 6, 8, 50, 10, "b"),
                                   normal(rng, 6, 8, 50, 10, "a"), 30, resamples=400,
                                   seed=trial)
               for trial in range(100)]
    verdicts = [c.verdict for c in results]
    assert verdicts.count("no significant change") >= 95
    # with only 6 devices a side the interval alone is a little narrow (see the module text)
    assert sum((c.ci_low or 0) <= 0 <= (c.ci_high or 0) for c in results) >= 88


def test_device_resampling_keeps_correlated_samples_from_looking_like_proof() -> None:
    # Five PCs a side, each with its own level (where it sits in the Wi-Fi) and tiny noise:
    # the after PCs sit 10 ms higher, but PC-to-PC spread is ~30 ms. 100 samples a side
    # are 5 facts, not 100: resampling devices gives a wide interval including 0.
    rng = random.Random(4)
    before = samples({f"b{i}": [lvl + rng.gauss(0, 1) for _ in range(20)]
                      for i, lvl in enumerate([0, 40, 80, 20, 60])})
    after = samples({f"a{i}": [lvl + rng.gauss(0, 1) for _ in range(20)]
                     for i, lvl in enumerate([10, 50, 90, 30, 70])})
    c = compare_requirement(requirement(statistic="mean"), before, after, 30)
    assert c.resampled == "devices" and MIN_DEVICES == 5
    assert c.change == pytest.approx(10, abs=1)
    assert c.ci_low is not None and c.ci_high is not None
    assert c.ci_low < 0 < c.ci_high
    assert c.ci_high - c.ci_low > 30
    assert c.verdict == "no significant change"
    assert c.rank_test is not None and c.rank_test.p_value < 0.05  # it assumes independence
    assert "rank test finds a shift but the interval of the statistic includes 0" in c.reason


def test_few_devices_resample_samples_and_say_so() -> None:
    rng = random.Random(5)
    c = compare_requirement(requirement(), normal(rng, 2, 20, 100, 5, "b"),
                            normal(rng, 2, 20, 80, 5, "a"), 30)
    assert (c.resampled, c.verdict) == ("samples", "better")
    assert "fewer than 5 devices on a side" in c.reason


def test_too_few_samples_is_unknown() -> None:
    req = requirement(min_samples=5)
    c = compare_requirement(req, samples({"b": [1, 2, 3]}), samples({"a": [1, 2, 3, 4, 5]}), 30)
    assert c.verdict == "unknown"
    assert c.reason == "too few samples (before: 3); at least 5 needed on each side"
    assert (c.change, c.ci_low, c.rank_test, c.resampled) == (None, None, None, None)
    assert (c.before.value, c.after.value) == (2.0, 3.0)
    none = compare_requirement(req, [], [], 30, labels=("autumn", "spring"))
    assert none.reason == ("too few samples (autumn: 0, spring: 0); at least 5 needed on "
                           "each side")
    assert none.before.value is None


def test_same_seed_same_answer() -> None:
    rng = random.Random(6)
    before, after = normal(rng, 6, 5, 50, 10, "b"), normal(rng, 6, 5, 45, 10, "a")
    req = requirement(statistic="p95")
    first = compare_requirement(req, before, after, 30, seed=7)
    assert compare_requirement(req, before, after, 30, seed=7) == first
    assert compare_requirement(req, before, after, 30, seed=8).ci_low != first.ci_low


# --- proportions ----------------------------------------------------------------------------

def test_share_statistic_compares_the_share_meeting_the_requirement() -> None:
    req = requirement(statistic="share", share_min_pct=90)
    # 8 devices x 5 samples a side; before 20 of 40 below 100 ms, after 36 of 40
    before = samples({f"b{d}": [50.0 if (d * 5 + i) % 2 == 0 else 150.0 for i in range(5)]
                      for d in range(8)})
    after = samples({f"a{d}": [50.0 if (d * 5 + i) % 10 else 150.0 for i in range(5)]
                     for d in range(8)})
    c = compare_requirement(req, before, after, 30)
    assert (c.quantity, c.unit, c.better_when) == ("share of samples < 100 ms", "%", "higher")
    assert (c.before.value, c.after.value, c.change) == (50.0, 90.0, 40.0)
    # U of after: 36 x 20 pairs (meets, fails) + half of 36 x 20 + 4 x 20 ties = 1120
    assert c.rank_test is not None and c.rank_test.u == 1120.0
    assert c.verdict == "better"
    assert c.ci_low is not None and c.ci_high is not None and c.ci_low <= 40 <= c.ci_high
    assert "+40 percentage points" in c.reason


def test_bool_metric_compares_the_share_of_clean_samples() -> None:
    req = requirement(id="tls", metric="tls_intercepted", unit="bool", stat="value",
                      statistic="max", op="==", threshold=0)
    # every fourth sample intercepted before (10 of 40, spread over the 8 PCs), none after
    before = samples({f"b{d}": [1.0 if (d * 5 + i) % 4 == 0 else 0.0 for i in range(5)]
                      for d in range(8)})
    after = samples({f"a{d}": [0.0] * 5 for d in range(8)})
    c = compare_requirement(req, before, after, 30)
    assert (c.quantity, c.before.value, c.after.value) == ("share of samples == 0 bool",
                                                            75.0, 100.0)
    assert (c.verdict, c.change) == ("better", 25.0)
    assert c.ci_low is not None and c.ci_high is not None and 0 < c.ci_low <= 25 <= c.ci_high
    # the same 10 flags from just 2 whole PCs of 8: device resampling often draws
    # neither of them, so those two PCs could explain it all: no significant change
    two_pcs = samples({f"b{d}": [1.0 if d < 2 else 0.0] * 5 for d in range(8)})
    clustered = compare_requirement(req, two_pcs, after, 30)
    assert (clustered.before.value, clustered.verdict) == (75.0, "no significant change")
    assert clustered.ci_low is not None and clustered.ci_low <= 0


def test_per_student_threshold_scales_by_class_size() -> None:
    p = profile({**RTT, "id": "bw", "metric": "download_mbps", "unit": "Mbps", "stat": "value",
                 "statistic": "share", "share_min_pct": 80, "op": ">=", "threshold": 1,
                 "per_student": True, "scope": "room"}, class_size=25)
    req = p.requirements[0]
    before = samples({f"b{d}": [20.0, 30.0] for d in range(5)})  # half reach 25 Mbps
    after = samples({f"a{d}": [26.0, 30.0] for d in range(5)})
    c = compare_requirement(req, before, after, p.class_size)
    assert c.quantity == "share of samples >= 25 Mbps"
    assert (c.before.value, c.after.value) == (50.0, 100.0)


# --- whole profile from rows ----------------------------------------------------------------

def row(value: float, agent: str, at: datetime, in_lesson: bool) -> MeasurementRow:
    return MeasurementRow(time=at, agent_id=agent, room="Room 1", probe="latency",
                          target="teams.microsoft.com", metric="tcp_connect_ms", value=value,
                          unit="ms", method="tcp", report_id=f"{agent}-{at.isoformat()}",
                          stat="p50", period="P1" if in_lesson else None, in_lesson=in_lesson)


def test_compare_profile_uses_each_requirements_window_and_is_json() -> None:
    p = profile({**RTT, "targets": ["teams.microsoft.com"], "window": "in_lesson"},
                {**RTT, "id": "jitter", "metric": "jitter_ms", "stat": "value",
                 "targets": ["teams.microsoft.com"]})
    before = [row(80 + i, f"b{i % 6}", T0 + timedelta(minutes=i), True) for i in range(30)]
    after = [row(40 + i, f"a{i % 6}", T0 + timedelta(days=30, minutes=i), True)
             for i in range(30)]
    # out-of-hours rows are very slow after, but the requirement only judges lessons
    after += [row(900, f"a{i}", T0 + timedelta(days=31, minutes=i), False) for i in range(30)]
    comparison = compare(p, before, after, labels=("autumn", "spring"), resamples=500,
                         notes=["a note"])
    rtt, jitter = comparison.changes
    assert (rtt.verdict, rtt.after.samples, rtt.change) == ("better", 30, -40.0)
    assert (jitter.verdict, jitter.before.samples) == ("unknown", 0)
    data = json.loads(json.dumps(comparison_dict(comparison)))
    assert (data["profile"], data["version"], data["before"], data["after"]) == (
        "test", "1", "autumn", "spring")
    assert data["summary"] == {"better": 1, "worse": 0, "no significant change": 0,
                               "unknown": 1}
    assert data["notes"] == ["a note"]
    first = data["requirements"][0]
    assert (first["id"], first["verdict"], first["change"], first["resampled"]) == (
        "rtt", "better", -40.0, "devices")
    assert first["ci"]["confidence_pct"] == 95.0 and first["ci"]["high"] < 0
    assert first["mann_whitney"]["u"] == 0.0
    assert data["requirements"][1]["ci"] is None
