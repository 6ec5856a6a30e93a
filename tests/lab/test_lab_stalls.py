"""The host-stall watch and the rerun it allows (``tests.lab.stalls``, ``rerun_plugin``).

The plugin's tests run a small test file in a child pytest whose test stops its own
process with SIGSTOP (a child process sends SIGCONT 0.6 s later): a real stall, as a
host that deschedules the VM makes one.
"""

from __future__ import annotations

import textwrap
import time

import pytest

from tests.lab.procs import REPO_ROOT
from tests.lab.rerun_plugin import MAX_RERUNS, Attempt, should_rerun
from tests.lab.stalls import STALL_THRESHOLD_S, Stalls, StallWatch, steal_seconds

STAT = """cpu  4705 356 584 3699176 23 0 6 12 0 0
cpu0 1393 2 292 1849599 13 0 2 7 0 0
intr 1
"""


def test_steal_is_read_from_the_cpu_line() -> None:
    assert steal_seconds(STAT) == pytest.approx(0.12)
    assert steal_seconds("cpu  1 2 3 4\n") is None  # an old kernel: no steal column
    assert steal_seconds("intr 1\n") is None


def test_watch_notes_a_late_wake_up_and_nothing_else() -> None:
    readings = [0.0, 0.0, 0.011, 0.02, 0.03, 1.04, 1.05, 1.06]  # the 6th a second late
    left = list(readings)

    def clock() -> float:
        return left.pop(0) if left else readings[-1]

    with StallWatch(threshold_s=0.5, tick_s=0.01, clock=clock, steal=lambda: None) as watch:
        while left:
            time.sleep(0.001)
    assert len(watch.stalls.seen) == 1
    at, late = watch.stalls.seen[0]
    assert late == pytest.approx(1.0)
    assert at == pytest.approx(0.03)
    assert watch.stalls.steal_s is None
    assert watch.stalls.latest_s == pytest.approx(1.0)
    assert "1 stall(s)" in watch.stalls.describe() and "not reported" in watch.stalls.describe()
    assert "no stall >= 0.5 s" in Stalls(0.5).describe()  # the watch's threshold, not 0.25


def test_watch_refuses_a_tick_not_below_the_threshold() -> None:
    with pytest.raises(ValueError, match="tick_s < threshold_s"):
        StallWatch(threshold_s=0.01, tick_s=0.01)


@pytest.mark.parametrize(("failed", "stalled", "done", "rerun"), [
    (True, True, 0, True), (True, True, MAX_RERUNS - 1, True), (True, True, MAX_RERUNS, False),
    (True, False, 0, False), (False, True, 0, False)])
def test_only_a_failure_during_a_stall_is_rerun(failed: bool, stalled: bool, done: int,
                                                rerun: bool) -> None:
    stalls = Stalls(seen=[(1.0, 2.0)] if stalled else [])
    assert should_rerun(Attempt(failed, "boom", stalls), done) is rerun


STALLED_TEST = """
import os, signal, subprocess, sys
from pathlib import Path
import pytest

pytestmark = pytest.mark.lab
COUNT = Path(__file__).with_name("attempts")

def stall():
    wake = f"import os, signal, time; time.sleep(0.6); os.kill({os.getpid()}, signal.SIGCONT)"
    subprocess.Popen([sys.executable, "-c", wake])
    os.kill(os.getpid(), signal.SIGSTOP)

def attempt():
    n = int(COUNT.read_text()) + 1 if COUNT.exists() else 1
    COUNT.write_text(str(n))
    return n

def test_stalled_once():
    if attempt() == 1:
        stall()
        assert False, "timed out after 3 s"

def test_always_wrong():
    assert 1 + 1 == 3, "the probe is wrong"

SETUPS = Path(__file__).with_name("setups")

@pytest.fixture
def second_setup_fails():
    n = int(SETUPS.read_text()) + 1 if SETUPS.exists() else 1
    SETUPS.write_text(str(n))
    if n == 2:
        raise RuntimeError("the lab did not start")

def test_stalled_then_setup_fails(second_setup_fails):
    stall()
    assert False, "cut short"

class FakeLab:
    ns = {"cls": "lab-cls", "gw": "lab-gw"}

    def run(self, role, argv, *, check=False, timeout=60):
        return subprocess.CompletedProcess(argv, 0, f"{role} says {argv[-1]}", "")

@pytest.fixture(scope="session")
def lab():
    return FakeLab()

def test_network_went_away(lab):
    assert False, "ConnectTimeout"

class Factory:
    def __init__(self):
        self.built = []

@pytest.fixture
def make_lab():
    factory = Factory()
    factory.built.append(FakeLab())
    return factory

def test_own_lab_went_away(make_lab):
    assert False, "No route to host"
"""


def run_child(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
              select: str) -> pytest.RunResult:
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    pytester.makeconftest('pytest_plugins = ["tests.lab.rerun_plugin"]\n')
    pytester.makeini(textwrap.dedent("""
        [pytest]
        markers = lab: lab test
        """))
    pytester.makepyfile(test_child=STALLED_TEST)
    return pytester.runpytest_subprocess("-k", select, "-p", "no:cacheprovider")


def test_a_failure_during_a_stall_is_rerun_and_listed(pytester: pytest.Pytester,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_child(pytester, monkeypatch, "stalled_once")
    result.assert_outcomes(passed=1)
    assert (pytester.path / "attempts").read_text() == "2"
    text = result.stdout.str()
    assert "lab tests rerun after a host stall" in text
    assert "attempt 1 failed during 1 stall(s)" in text and "timed out after 3 s" in text


def test_a_failure_without_a_stall_is_not_rerun(pytester: pytest.Pytester,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_child(pytester, monkeypatch, "always_wrong")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "rerun after a host stall" not in text
    assert f"no stall >= {STALL_THRESHOLD_S:g} s" in text  # the report's section
    assert "ms late; host steal" in text


def test_a_rerun_whose_setup_fails_is_still_listed(pytester: pytest.Pytester,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_child(pytester, monkeypatch, "setup_fails")
    result.assert_outcomes(errors=1)
    text = result.stdout.str()
    assert "RuntimeError: the lab did not start" in text
    assert "lab tests rerun after a host stall" in text and "cut short" in text


@pytest.mark.parametrize("select", ["network_went_away", "own_lab_went_away"],
                         ids=["session lab", "own lab"])
def test_a_failing_lab_test_reports_its_labs_network(pytester: pytest.Pytester,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     select: str) -> None:
    result = run_child(pytester, monkeypatch, select)
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "lab network" in text
    for role in ("cls", "gw"):
        assert f"[{role}] $ tc -s qdisc" in text and f"{role} says qdisc" in text
        assert f"[{role}] $ ip neigh" in text and f"{role} says neigh" in text


def test_a_failure_without_the_lab_reports_no_network(pytester: pytest.Pytester,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_child(pytester, monkeypatch, "always_wrong")
    result.assert_outcomes(failed=1)
    assert "lab network" not in result.stdout.str()
