"""Logging for ``agent run``: journald under systemd, else a rotated file in the log dir.

Under systemd (``INVOCATION_ID`` or ``JOURNAL_STREAM`` in the environment) the agent logs
to stderr without timestamps: the journal adds its own and rotates it. Elsewhere — the
launchd daemon, the Windows task, a per-user agent — it writes ``agent.log`` in the
platform's log dir (:mod:`agent.install.paths`), rotated at 1 MB, at most 5 files
(``agent.log`` and ``agent.log.1`` … ``.4``), and also to stderr when that is a terminal.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TextIO

from agent.install.paths import Dirs, agent_paths, platform_family, pure_path

LOG_NAME = "agent.log"
MAX_BYTES = 1_000_000
FILES = 5
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(levelname)s %(name)s: %(message)s"


def under_systemd(environ: Mapping[str, str]) -> bool:
    return "INVOCATION_ID" in environ or "JOURNAL_STREAM" in environ


def log_dir_for(config_file: Path, sys_platform: str | None = None,
                dirs: Dirs | None = None) -> Path | None:
    """The log dir of the install whose config ``agent run`` was given: the system or the
    per-user one; None (stderr) for any other config file and on Linux (journald)."""
    platform = platform_family(sys.platform if sys_platform is None else sys_platform)
    for mode in ("system", "user"):
        paths = agent_paths(platform, mode, dirs)
        if pure_path(platform, str(config_file)) == paths.config_file:
            return None if paths.log_dir is None else Path(paths.log_dir)
    return None


def _install(handlers: list[logging.Handler], fmt: str, level: int) -> None:
    """Make ``handlers`` the root logger's only handlers (``main`` set up stderr first)."""
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        handler.setFormatter(logging.Formatter(fmt))
        root.addHandler(handler)
    root.setLevel(level)


def configure_logging(log_dir: Path | None, environ: Mapping[str, str],
                      stream: TextIO | None = None, level: int = logging.INFO) -> Path | None:
    """Set the root logger's handlers for ``agent run``; returns the log file, or None
    when logging goes to ``stream`` only (default stderr, which is None under ``pythonw``).

    A log dir that cannot be created or opened falls back to ``stream`` with a warning
    naming the file: the agent keeps measuring without its file log."""
    out: TextIO | None = sys.stderr if stream is None else stream
    console: list[logging.Handler] = [] if out is None else [logging.StreamHandler(out)]
    if under_systemd(environ):
        _install(console, JOURNAL_FORMAT, level)
        return None
    if log_dir is None:
        _install(console, FILE_FORMAT, level)
        return None
    path = log_dir / LOG_NAME
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        rotating = RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=FILES - 1,
                                       encoding="utf-8")
    except OSError as exc:
        _install(console, FILE_FORMAT, level)
        logging.getLogger(__name__).warning("cannot log to %s (%s): logging to stderr only",
                                            path, exc)
        return None
    interactive = out is not None and out.isatty()
    _install([rotating, *(console if interactive else [])], FILE_FORMAT, level)
    return path
