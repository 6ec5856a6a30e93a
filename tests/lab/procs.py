"""Processes of the lab: environment, readiness handshake, and a firm stop."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time
from pathlib import Path

from tests.lab.nsutil import LabError

REPO_ROOT = Path(__file__).resolve().parents[2]


def python_env(extra: dict[str, str] | None) -> dict[str, str]:
    """Environment for lab subprocesses: ``tests.lab`` importable, unbuffered output."""
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def wait_ready(proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    """Wait for the line ``ready`` on ``proc``'s stdout; LabError with the log tail if not."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.05)
        if ready:
            line = proc.stdout.readline()
            if line.strip() == b"ready":
                return
            if not line:
                break
    stop_process(proc)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise LabError(f"{proc.args!r} did not print 'ready' within {timeout} s "
                   f"(exit {proc.returncode}); log {log}:\n{tail}")


def stop_process(proc: subprocess.Popen[bytes], grace: float = 3) -> None:
    """SIGTERM the process group, SIGKILL it after ``grace`` seconds."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(grace)
    if proc.stdout is not None:
        proc.stdout.close()
