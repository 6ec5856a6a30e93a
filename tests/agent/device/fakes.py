"""A recorded-output stand-in for :data:`agent.probes.device_cmd.Runner`.

``FakeRunner({("iw", "dev"): Reply(stdout=...)})`` answers each command from the table and
records the calls. A list of replies answers successive calls in order (two survey dumps).
A key ending in ``"..."`` matches any command with that prefix (powercfg's temporary
output path). An unexpected command fails the test: readers must not run anything the
test did not foresee. Programs named in ``missing`` raise ToolMissing, as on a PC
without them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agent.probes.device_cmd import CommandOutput, ToolMissing


@dataclass
class Reply:
    stdout: str = ""
    stderr: str = ""
    returncode: int = 0
    effect: Callable[[Sequence[str]], None] | None = None
    """Run before replying, with the argv (writes the file powercfg would write)."""


@dataclass
class FakeRunner:
    replies: Mapping[tuple[str, ...], Reply | list[Reply]]
    missing: set[str] = field(default_factory=set)
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def _find(self, argv: tuple[str, ...]) -> Reply:
        entry = self.replies.get(argv)
        if entry is None:
            entry = next((r for k, r in self.replies.items()
                          if k and k[-1] == "..." and argv[:len(k) - 1] == k[:-1]), None)
        if entry is None:
            raise AssertionError(f"unexpected command {argv!r}")
        if isinstance(entry, list):
            if not entry:
                raise AssertionError(f"no more replies for {argv!r}")
            return entry.pop(0)
        return entry

    def __call__(self, argv: Sequence[str]) -> CommandOutput:
        args = tuple(argv)
        self.calls.append(args)
        if args[0] in self.missing:
            raise ToolMissing(args[0])
        reply = self._find(args)
        if reply.effect is not None:
            reply.effect(args)
        return CommandOutput(args, reply.returncode, reply.stdout, reply.stderr)


def reader(directory: Path) -> Callable[[str], str]:
    """``read(name)`` for the fixtures directory next to a test module."""
    def read(name: str) -> str:
        return (directory / name).read_text(encoding="utf-8")
    return read
