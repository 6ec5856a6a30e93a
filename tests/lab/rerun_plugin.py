"""Rerun a lab test that failed while the machine stalled (``tests.lab.stalls``).

Every test marked ``lab`` runs under a :class:`~tests.lab.stalls.StallWatch`. When its
call fails and the watch saw a stall, the test runs again, up to ``MAX_RERUNS`` times; a
failure without a stall is reported at once, as is the last attempt's, stall or not. So
a probe that is wrong fails every time, and a failure is forgiven only with evidence
that the machine stopped, never on luck. Each rerun is listed at the end of the run
("lab tests rerun after a host stall") with the stall and the first failure's message,
and a failing test's report carries what the watch saw ("host stalls" section).

Setup failures are not rerun: pytest caches a failed fixture of a wider scope, so a
rerun would only repeat its error.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from _pytest.runner import runtestprotocol

from tests.lab.stalls import Stalls, StallWatch

MAX_RERUNS = 2
SECTION = "host stalls"
RERUN_SECTION = "lab rerun after a host stall"


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
