"""Fixtures shared by every test directory: one throwaway PostgreSQL server per session
(``pg_server``, ``pg_url``; they skip with the reason where PostgreSQL is missing), the
lab tests' rerun after a host stall (``tests.lab.rerun_plugin``), and the root logger put
back after each test.

The CLIs configure logging (``logging.basicConfig`` onto the ``sys.stderr`` of the
moment): in a test that stream is pytest's capture, closed afterwards, so a handler left
behind makes every later log line print "--- Logging error ---" into other tests' output.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

pytest_plugins = ["tests.pg.plugin", "tests.lab.rerun_plugin", "pytester"]


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
