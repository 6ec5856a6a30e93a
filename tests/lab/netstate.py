"""What the lab's network looks like right now, for the report of a failing lab test.

A lab failure that is not a host stall (``tests.lab.stalls``) has shown up as a network
that stopped carrying traffic: connections timing out, then ``No route to host`` (a
neighbour that no longer answers ARP) for minutes. Whatever the cause, the state of each
namespace's links, neighbours, routes and queueing disciplines when the test failed is
the evidence to find it, so :mod:`tests.lab.rerun_plugin` adds it to the report.
"""

from __future__ import annotations

import subprocess
from typing import Protocol

COMMANDS = (["ip", "-s", "link"], ["ip", "neigh"], ["ip", "route"], ["tc", "-s", "qdisc"])
TIMEOUT_S = 5.0


class Namespaces(Protocol):
    ns: dict[str, str]

    def run(self, role: str, argv: list[str], *, check: bool = False, timeout: float = 60,
            ) -> subprocess.CompletedProcess[str]: ...


def network_state(lab: Namespaces) -> str:
    """Each namespace's ``ip -s link``, ``ip neigh``, ``ip route`` and ``tc -s qdisc``;
    a command that fails says why instead."""
    parts = []
    for role in lab.ns:
        for argv in COMMANDS:
            try:
                done = lab.run(role, argv, timeout=TIMEOUT_S)
                text = (done.stdout.strip() or done.stderr.strip()
                        or f"(nothing; exit status {done.returncode})")
            except (OSError, subprocess.SubprocessError) as exc:
                text = f"({type(exc).__name__}: {exc})"
            parts.append(f"[{role}] $ {' '.join(argv)}\n{text}")
    return "\n".join(parts)
