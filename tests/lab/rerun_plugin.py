"""Rerun a lab test that failed while the machine stalled (``tests.lab.stalls``).

Every test marked ``lab`` runs under a :class:`~tests.lab.stalls.StallWatch`. When its
call fails and the watch saw a stall, the test runs again, up to ``MAX_RERUNS`` times; a
failure without a stall is reported at once, as is the last attempt's, stall or not. So
a probe that is wrong fails every time, and a failure is forgiven only with evidence
that the machine stopped, never on luck. Each rerun is listed at the end of the run
("lab tests rerun after a host stall") with the stall and the first failure's message,
and a failing test's report carries what the watch saw ("host stalls" section) and, when
the test used the lab, the state of the lab's network (``tests.lab.netstate``; "lab
network" section).

Setup failures are not rerun: pytest caches a failed fixture of a wider scope, so a
rerun would only repeat its error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from _pytest.runner import runtestprotocol

from tests.lab.netstate import network_state
from tests.lab.stalls import Stalls, StallWatch

MAX_RERUNS = 2
SECTION = "host stalls"
RERUN_SECTION = "lab rerun after a host stall"
NETWORK_SECTION = "lab network"


@dataclass(frozen=True)
class Attempt:
    failed: bool
    """The call phase failed (setup and teardown failures are never rerun)."""
    message: str
    stalls: Stalls


def should_rerun(attempt: Attempt, reruns_done: int, max_reruns: int = MAX_RERUNS) -> bool:
    return attempt.failed and bool(attempt.stalls.seen) and reruns_done < max_reruns


def _call_failure(reports: list[pytest.TestReport]) -> tuple[bool, str]:
    for report in reports:
        if report.when == "call" and report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)
            text = crash.message if crash is not None else str(report.longrepr)
            return True, text.splitlines()[0] if text else ""
    return False, ""


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    if item.get_closest_marker("lab") is None or item.config.getoption("usepdb", False):
        return None
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    notes: list[str] = []
    while True:
        with StallWatch() as watch:
            reports = runtestprotocol(item, nextitem=nextitem, log=False)
        failed, message = _call_failure(reports)
        attempt = Attempt(failed, message, watch.stalls)
        if not should_rerun(attempt, len(notes)):
            break
        notes.append(f"attempt {len(notes) + 1} failed during {attempt.stalls.describe()}: "
                     f"{message}")
    # the call's report carries them; the setup's when a rerun's setup failed (no call)
    carrier = next((r for r in reports if r.when == "call"), reports[0])
    carrier.sections.append((SECTION, attempt.stalls.describe()))
    if notes:
        carrier.sections.append((RERUN_SECTION, "\n".join(notes)))
    for report in reports:
        item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed call of a test that used the lab: the lab network's state, read at once
    (before the test's teardown)."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if call.when != "call" or not report.failed or item.get_closest_marker("lab") is None:
        return
    fixtures = getattr(item, "funcargs", None) or {}
    labs = [fixtures["lab"]] if "lab" in fixtures else []
    labs += getattr(fixtures.get("make_lab"), "built", [])  # a test's own labs
    if labs:
        report.sections.append((NETWORK_SECTION, "\n".join(network_state(lab)
                                                            for lab in labs)))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    reruns = [(report.nodeid, content)
              for reports in terminalreporter.stats.values() for report in reports
              if isinstance(report, pytest.TestReport)
              for name, content in report.sections if name == RERUN_SECTION]
    if not reruns:
        return
    terminalreporter.section("lab tests rerun after a host stall")
    for nodeid, content in reruns:
        terminalreporter.line(nodeid)
        for line in content.splitlines():
            terminalreporter.line(f"    {line}")
