"""A user-space "wire" between two network namespaces: delay, jitter and loss without netem.

This kernel has no ``sch_netem``, so the lab joins two namespaces with a pair of TUN
devices and this process between them: every IP packet one side sends is read from its
TUN device and written into the other side's TUN device after a scheduled delay. Because
it works on IP packets, every protocol is delayed: TCP SYNs, ICMP, DNS, HTTP, STUN.

    python -m tests.lab.tunwire --ns-a cpl3a9f-gw --dev-a gt --ns-b cpl3a9f-net --dev-b nt \\
        --delay-ms 20 --jitter-ms 0 --loss-pct 0 --seed 1 [--stats FILE]

Semantics (each direction independently, a→b and b→a):

- delay: every packet is held ``delay_ms`` (one way); the added round-trip time is twice that.
- jitter: each packet's delay is ``delay_ms + U(-jitter_ms, +jitter_ms)`` (uniform, floored
  at 0). By default order is kept (FIFO): a packet is never sent before the one read
  before it, so a packet that drew a short delay waits behind its predecessor. For probes
  spaced further apart than ``2 * jitter_ms`` this changes nothing; for a burst it
  compresses the spread, the way a real queue would. ``--reorder`` lets packets overtake
  each other instead (what netem does), which TCP sees as reordering.
- loss: each packet is dropped with probability ``loss_pct / 100`` from a ``random.Random``
  seeded with ``seed`` (a→b) and ``seed + 1`` (b→a), so the same packet sequence loses the
  same packets. A round trip (ping) crosses the wire twice: it is lost with probability
  ``1 - (1 - p)**2``.
- with all three at 0 it is a plain forwarder; its own cost is measured by the lab
  self-tests (README: "tolerances").

The TUN devices may already exist (persistent, made with ``ip tuntap add``; the lab does
this so addresses, routes and qdiscs survive a restart of the wire) or are created here.
``--addr-a A --addr-b B`` configures point-to-point addresses (A peer B) and brings them up.

Timing: a select() loop on both devices with microsecond timeouts, a 1 us timer slack and
nice -10 (when root), not asyncio (whose epoll timeout rounds every timer up to a whole
millisecond). Other busy processes on a 2-core machine still add wake-up delay.
On start it prints ``ready`` on stdout. SIGUSR1 writes counters to ``--stats`` (JSON);
SIGTERM writes them and exits.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import heapq
import json
import os
import random
import select
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from types import FrameType

from tests.lab.nsutil import set_timer_slack_ns, setns

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
MAX_PACKET = 65535
DRAIN_BATCH = 64
MAX_EARLY_S = 0.0005
OUTLIER_S = 0.0002
ADAPT_GAIN = 0.05


@dataclass(frozen=True)
class WireSpec:
    """What the wire does to each packet, per direction."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_pct: float = 0.0
    seed: int = 1
    reorder: bool = False

    def __post_init__(self) -> None:
        if self.delay_ms < 0 or self.jitter_ms < 0:
            raise ValueError(
                f"delay_ms={self.delay_ms} and jitter_ms={self.jitter_ms} must be >= 0")
        if not 0 <= self.loss_pct <= 100:
            raise ValueError(f"loss_pct={self.loss_pct} is not a percentage")

    def argv(self) -> list[str]:
        out = ["--delay-ms", str(self.delay_ms), "--jitter-ms", str(self.jitter_ms),
               "--loss-pct", str(self.loss_pct), "--seed", str(self.seed)]
        return [*out, "--reorder"] if self.reorder else out


@dataclass
class Direction:
    """One direction of the wire: reads ``fd_in``, writes ``fd_out`` when packets are due."""

    name: str
    fd_in: int
    fd_out: int
    spec: WireSpec
    rng: random.Random
    queue: list[tuple[float, int, bytes]] = field(default_factory=list)
    last_due: float = 0.0
    seq: int = 0
    received: int = 0
    dropped: int = 0
    sent: int = 0
    write_errors: int = 0
    bytes_sent: int = 0
    max_queue: int = 0

    def accept(self, packet: bytes, now: float) -> None:
        self.received += 1
        spec = self.spec
        if spec.loss_pct and self.rng.random() * 100 < spec.loss_pct:
            self.dropped += 1
            return
        delay = spec.delay_ms
        if spec.jitter_ms:
            delay = max(0.0, delay + self.rng.uniform(-spec.jitter_ms, spec.jitter_ms))
        due = now + delay / 1000
        if not spec.reorder:
            due = max(due, self.last_due)
            self.last_due = due
        self.seq += 1
        heapq.heappush(self.queue, (due, self.seq, packet))
        self.max_queue = max(self.max_queue, len(self.queue))

    def flush(self, now: float) -> None:
        """Send every packet due by ``now`` (callers pass now + the timer's usual lateness)."""
        while self.queue and self.queue[0][0] <= now:
            _, _, packet = heapq.heappop(self.queue)
            try:
                os.write(self.fd_out, packet)
            except OSError:
                self.write_errors += 1
                continue
            self.sent += 1
            self.bytes_sent += len(packet)

    def next_due(self) -> float | None:
        return self.queue[0][0] if self.queue else None

    def counters(self) -> dict[str, int]:
        return {"received": self.received, "dropped": self.dropped, "sent": self.sent,
                "write_errors": self.write_errors, "bytes_sent": self.bytes_sent,
                "queued": len(self.queue), "max_queue": self.max_queue}


def open_tun(name: str) -> int:
    """Attach to (or create) TUN device ``name`` in the current namespace; non-blocking fd."""
    if len(name.encode()) > 15:
        raise ValueError(f"TUN device name {name!r} is longer than 15 bytes")
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def configure(netns: str, dev: str, addr: str, peer: str) -> None:
    for args in (["addr", "replace", addr, "peer", peer, "dev", dev], ["link", "set", dev, "up"]):
        subprocess.run(["ip", "-n", netns, *args], check=True, capture_output=True)


def read_ready(direction: Direction, now: float) -> None:
    for _ in range(DRAIN_BATCH):
        try:
            packet = os.read(direction.fd_in, MAX_PACKET)
        except BlockingIOError:
            return
        direction.accept(packet, now)


def timer_lateness(samples: int = 40, timeout: float = 0.002) -> float:
    """Median seconds by which select() wakes up late here (VMs: ~0.1-0.2 ms)."""
    r, w = os.pipe()
    try:
        late = []
        for _ in range(samples):
            t0 = time.monotonic()
            select.select([r], [], [], timeout)
            late.append(time.monotonic() - t0 - timeout)
    finally:
        os.close(r)
        os.close(w)
    late.sort()
    return min(max(late[len(late) // 2], 0.0), MAX_EARLY_S)


def run(dirs: tuple[Direction, Direction], early: float, adapt: bool = True) -> None:
    """Forward packets until a signal handler raises SystemExit.

    Timers are armed ``early`` seconds ahead of the due time so that packets leave on time
    on average instead of always late by the wake-up latency. ``early`` starts at the
    lateness measured at start and then tracks the lateness of real timer wake-ups
    (an exponential average; single outliers are clipped to ``OUTLIER_S``).
    """
    fds = {d.fd_in: d for d in dirs}
    while True:
        dues = [t for t in (d.next_due() for d in dirs) if t is not None]
        target = min(dues) if dues else None
        timeout = max(0.0, target - early - time.monotonic()) if target is not None else 0.5
        ready, _, _ = select.select(list(fds), [], [], timeout)
        now = time.monotonic()
        if adapt and not ready and target is not None and timeout > 0:
            error = max(-OUTLIER_S, min(OUTLIER_S, now - target))
            early = min(MAX_EARLY_S, max(0.0, early + ADAPT_GAIN * error))
        for fd in ready:
            read_ready(fds[fd], now)
        for d in dirs:
            d.flush(time.monotonic() + early)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.lab.tunwire", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ns-a", required=True)
    p.add_argument("--dev-a", default="cplwa")
    p.add_argument("--ns-b", required=True)
    p.add_argument("--dev-b", default="cplwb")
    p.add_argument("--addr-a", help="point-to-point address for dev-a (peer is --addr-b)")
    p.add_argument("--addr-b")
    p.add_argument("--delay-ms", type=float, default=0.0)
    p.add_argument("--jitter-ms", type=float, default=0.0)
    p.add_argument("--loss-pct", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--reorder", action="store_true", help="let jittered packets overtake")
    p.add_argument("--stats", help="write JSON counters here on SIGUSR1 and on exit")
    p.add_argument("--early-us", type=float,
                   help="arm timers this early (default: measured median wake-up lateness)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    spec = WireSpec(args.delay_ms, args.jitter_ms, args.loss_pct, args.seed, args.reorder)
    set_timer_slack_ns(1)
    with contextlib.suppress(PermissionError):  # only root may raise priority; still works
        os.nice(-10)
    setns(args.ns_a)
    fd_a = open_tun(args.dev_a)
    setns(args.ns_b)
    fd_b = open_tun(args.dev_b)
    if args.addr_a and args.addr_b:
        configure(args.ns_a, args.dev_a, args.addr_a, args.addr_b)
        configure(args.ns_b, args.dev_b, args.addr_b, args.addr_a)
    dirs = (Direction("a_to_b", fd_a, fd_b, spec, random.Random(args.seed)),
            Direction("b_to_a", fd_b, fd_a, spec, random.Random(args.seed + 1)))

    def dump() -> None:
        if args.stats:
            tmp = f"{args.stats}.tmp"
            with open(tmp, "w") as f:
                json.dump({d.name: d.counters() for d in dirs}, f)
            os.replace(tmp, args.stats)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        dump()
        if signum != signal.SIGUSR1:
            raise SystemExit(0)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
        signal.signal(sig, on_signal)
    early = timer_lateness() if args.early_us is None else args.early_us / 1e6
    timed = bool(spec.delay_ms or spec.jitter_ms)
    print("ready", flush=True)
    run(dirs, early if timed else 0.0, adapt=timed and args.early_us is None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
