"""Running the OS's own tools (``iw``, ``netsh``, ``reg``, ``system_profiler``…) for readers.

Every OS-specific reader takes a :data:`Runner` instead of calling :mod:`subprocess`
itself, so tests hand it recorded output (see ``tests/agent/device/fakes.py``) and run the
Windows and macOS readers on Linux. A runner returns a :class:`CommandOutput` or raises a
:class:`CommandError` naming what went wrong:

    CommandError
     ├── ToolMissing   the program is not installed (``iw`` on a desktop without it)
     └── ToolTimeout   it did not finish within the timeout

A non-zero exit is *not* an exception: readers look at ``returncode`` and the text, because
some tools say useful things when they fail (``nl80211 not found.``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class CommandOutput:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def first_line(self) -> str:
        """The first non-blank line of stderr, else of stdout (for error reasons)."""
        for text in (self.stderr, self.stdout):
            for line in text.splitlines():
                if line.strip():
                    return line.strip()
        return f"exit code {self.returncode}"


class CommandError(Exception):
    """The command could not be run at all; the message names the program."""


class ToolMissing(CommandError):
    def __init__(self, program: str) -> None:
        super().__init__(f"{program} is not installed (not found on PATH)")
        self.program = program


class ToolTimeout(CommandError):
    def __init__(self, program: str, timeout_s: float) -> None:
        super().__init__(f"{program} did not finish within {timeout_s:g} s")
        self.program = program


Runner = Callable[[Sequence[str]], CommandOutput]
"""``runner(argv) -> CommandOutput``; raises :class:`CommandError`."""


def decode_console(data: bytes, platform: str = sys.platform) -> str:
    """Console bytes as text.

    Windows console tools (``netsh``, ``reg``) write in the OEM code page (cp850 on German
    and French installs), not the ANSI one :mod:`subprocess` would assume, so
    ``Übertragungsrate`` and ``État`` would come out garbled. Python's ``oem`` codec exists
    only on Windows; elsewhere the tools write UTF-8. ``wmic`` writes UTF-16 when its
    output is a pipe: a BOM or NUL high bytes are recognised as UTF-16-LE on any platform.
    """
    if data.startswith(b"\xff\xfe") or (len(data) >= 4 and data[1] == 0 and data[3] == 0):
        return data.decode("utf-16-le", errors="replace").lstrip("\ufeff")
    if platform == "win32":
        try:
            return data.decode("oem", errors="replace")
        except LookupError:
            return data.decode("mbcs", errors="replace")
    return data.decode("utf-8", errors="replace")


def run_command(argv: Sequence[str], timeout_s: float = DEFAULT_TIMEOUT_S) -> CommandOutput:
    """Run ``argv`` (no shell) and capture its output; the real :data:`Runner`."""
    args = [str(a) for a in argv]
    try:
        done = subprocess.run(args, capture_output=True, timeout=timeout_s, check=False,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError as exc:
        raise ToolMissing(args[0]) from exc
    except subprocess.TimeoutExpired as exc:
        raise ToolTimeout(args[0], timeout_s) from exc
    except OSError as exc:
        raise CommandError(f"{args[0]} could not be started: {exc}") from exc
    return CommandOutput(tuple(args), done.returncode, decode_console(done.stdout),
                         decode_console(done.stderr))


def running_as_root() -> bool:
    """True for uid 0 on POSIX; False on Windows (no euid; elevation is not checked)."""
    geteuid = getattr(os, "geteuid", None)
    return bool(geteuid is not None and geteuid() == 0)


CAP_NET_RAW = 13  # linux/capability.h


def cap_net_raw_in(proc_status: str) -> bool:
    """Whether the ``CapEff`` line of a ``/proc/<pid>/status`` text holds CAP_NET_RAW."""
    for line in proc_status.splitlines():
        key, _, value = line.partition(":")
        if key == "CapEff":
            try:
                return bool(int(value.strip(), 16) >> CAP_NET_RAW & 1)
            except ValueError:
                return False
    return False


def raw_sockets_allowed(status_path: Path = Path("/proc/self/status")) -> bool:
    """Root, or (Linux) a process granted CAP_NET_RAW, e.g. by the systemd unit that
    ``classprobe agent install`` writes for a dedicated user."""
    if running_as_root():
        return True
    try:
        return cap_net_raw_in(status_path.read_text(encoding="ascii", errors="replace"))
    except OSError:
        return False
