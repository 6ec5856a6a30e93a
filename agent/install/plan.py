"""An install or uninstall as a list of steps, and the one function that carries them out.

The platform modules (:mod:`systemd`, :mod:`launchd`, :mod:`windows`) only *describe* what
to do — files to write, directories to make, commands to run, paths to remove — so the
same plan is printed by ``--dry-run``, staged under ``--root DIR`` (files only, no
commands, no ownership changes) or carried out for real. Paths in a plan are the target
system's real paths; :func:`agent.install.paths.under_root` maps them below the root.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import TextIO

from agent.durable import atomic_write
from agent.install.paths import under_root


@dataclass(frozen=True)
class WriteFile:
    path: PurePath
    content: bytes
    mode: int = 0o644
    owner: tuple[str, str] | None = None
    """(user, group) to chown to after writing; not applied under ``--root``."""
    secret: bool = False
    """Holds the agent credential: ``--dry-run`` shows its size, never its content."""


@dataclass(frozen=True)
class MakeDir:
    path: PurePath
    mode: int = 0o755
    owner: tuple[str, str] | None = None


@dataclass(frozen=True)
class Run:
    argv: tuple[str, ...]
    why: str
    start: bool = False
    """Starts the agent now: skipped with ``--no-start``."""
    may_fail: bool = False
    """A failure is reported and ignored (stopping a service that is not there)."""


@dataclass(frozen=True)
class Remove:
    path: PurePath
    tree: bool = False


Step = WriteFile | MakeDir | Run | Remove


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Printed after the steps (what was left in place, what to do next)."""
    windows: bool = False
    """Commands are shown with Windows quoting."""

    def files(self) -> list[PurePath]:
        return [s.path for s in self.steps if isinstance(s, WriteFile)]

    def commands(self) -> list[Run]:
        return [s for s in self.steps if isinstance(s, Run)]


class InstallError(RuntimeError):
    """A step failed; the message names the file or command and why."""


Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def run_command(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False)


@dataclass(frozen=True)
class Execution:
    root: Path | None = None
    """Stage files below this directory; commands and ownership changes are skipped."""
    dry_run: bool = False
    start: bool = True
    commands: bool = True
    """Run commands at all (False: files only, e.g. another OS's files staged here)."""

    def skip_reason(self, step: Run) -> str | None:
        if self.root is not None:
            return "--root: files only"
        if not self.commands:
            return "not this machine's platform"
        if step.start and not self.start:
            return "--no-start"
        return None


def missing_programs(plan: Plan, how: Execution,
                     which: Callable[[str], str | None] = shutil.which) -> list[str]:
    """Programs the plan would run that are not on PATH (checked before changing anything)."""
    wanted = {s.argv[0] for s in plan.commands() if how.skip_reason(s) is None}
    return sorted(p for p in wanted if which(p) is None)


def _mode(mode: int) -> str:
    return f"{mode:04o}"


def describe(step: Step, how: Execution, windows: bool = False) -> str:
    """One step as text for ``--dry-run`` and the install log."""
    if isinstance(step, Run):
        skipped = how.skip_reason(step)
        command = subprocess.list2cmdline(step.argv) if windows else shlex.join(step.argv)
        line = f"run    {command}    # {step.why}"
        return line + (f" (skipped: {skipped})" if skipped else "")
    target = step.path if how.root is None else under_root(step.path, how.root)
    if isinstance(step, Remove):
        return f"remove {target}{' (and everything in it)' if step.tree else ''}"
    owner = f" {step.owner[0]}:{step.owner[1]}" if step.owner else ""
    if isinstance(step, MakeDir):
        return f"mkdir  {target} ({_mode(step.mode)}{owner})"
    head = f"write  {target} ({_mode(step.mode)}{owner}, {len(step.content)} bytes)"
    if step.secret:
        return head + "\n       (holds the agent credential: content not shown)"
    utf16 = step.content[:2] in (b"\xff\xfe", b"\xfe\xff")
    body = step.content.decode("utf-16" if utf16 else "utf-8", errors="replace")
    return head + "\n" + "\n".join(f"       | {line}" for line in body.splitlines())


def _chown(path: Path, owner: tuple[str, str]) -> None:
    import grp
    import pwd

    try:
        uid, gid = pwd.getpwnam(owner[0]).pw_uid, grp.getgrnam(owner[1]).gr_gid
    except KeyError as exc:
        raise InstallError(f"cannot give {path} to {owner[0]}:{owner[1]}: no such user or "
                           "group") from exc
    os.chown(path, uid, gid)


def _apply(step: Step, how: Execution, runner: Runner) -> str | None:
    """Carry out one step; returns a warning for a tolerated failure."""
    if isinstance(step, Run):
        if how.skip_reason(step) is not None:
            return None
        done = runner(step.argv)
        if done.returncode == 0:
            return None
        problem = (f"`{shlex.join(step.argv)}` failed (exit {done.returncode}): "
                   f"{(done.stderr or done.stdout).strip() or 'no output'}")
        if step.may_fail:
            return problem
        raise InstallError(problem)
    target = under_root(step.path, how.root)
    try:
        if isinstance(step, Remove):
            if step.tree and target.is_dir():
                shutil.rmtree(target)
            elif not step.tree:
                target.unlink(missing_ok=True)
            return None
        if isinstance(step, MakeDir):
            target.mkdir(parents=True, exist_ok=True, mode=step.mode)
            target.chmod(step.mode)
        else:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            atomic_write(target, step.content, mode=step.mode)
    except OSError as exc:
        raise InstallError(f"cannot {'remove' if isinstance(step, Remove) else 'write'} "
                           f"{target}: {exc}") from exc
    if step.owner is not None and how.root is None:
        _chown(target, step.owner)
    return None


def execute(plan: Plan, how: Execution, out: TextIO, runner: Runner = run_command) -> list[str]:
    """Print (``dry_run``) or carry out ``plan`` in order; returns tolerated failures.

    Raises :class:`InstallError` at the first step that fails; steps before it stay done
    (an install can be repeated: every write replaces, every command is idempotent)."""
    warnings: list[str] = []
    for step in plan.steps:
        print(describe(step, how, plan.windows), file=out)
        if not how.dry_run and (problem := _apply(step, how, runner)) is not None:
            print(f"       warning: {problem}", file=out)
            warnings.append(problem)
    for note in plan.notes:
        print(f"note: {note}", file=out)
    return warnings
