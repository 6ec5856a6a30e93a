"""The lab's own measuring sticks: ping, TCP connect, UDP echo and raw TCP goodput.

They prove the lab against its settings; the agent's probes are then proven against the
lab. Socket helpers run in whatever namespace the calling thread is in: use them through
``Lab.call(role, fn, ...)``.
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import statistics
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.lab.netlab import Lab

MIN_SAMPLES = 10
PING_RTT = re.compile(r"icmp_seq=(\d+) ttl=\d+ time=([\d.]+) ms")
PING_SUMMARY = re.compile(r"(\d+) packets transmitted, (\d+) received")


@dataclass(frozen=True)
class PingResult:
    transmitted: int
    received: int
    rtts_ms: tuple[float, ...]

    @property
    def loss_pct(self) -> float:
        return 100 * (self.transmitted - self.received) / self.transmitted

    @property
    def median_ms(self) -> float:
        return statistics.median(self.rtts_ms)


def parse_ping(text: str) -> PingResult:
    """Parse iputils ``ping`` output (per-reply lines and the summary).

    Sample::

        64 bytes from 10.77.10.1: icmp_seq=1 ttl=63 time=40.6 ms
        --- 10.77.10.1 ping statistics ---
        5 packets transmitted, 5 received, 0% packet loss, time 803ms
    """
    summary = PING_SUMMARY.search(text)
    if summary is None:
        raise ValueError(f"no ping summary line in {text[-300:]!r}")
    rtts = tuple(float(m.group(2)) for m in PING_RTT.finditer(text))
    return PingResult(int(summary.group(1)), int(summary.group(2)), rtts)


def ping(lab: Lab, role: str, addr: str, count: int, interval_s: float = 0.01,
         wait_s: float = 2.0) -> PingResult:
    """Run iputils ping ``count`` times from ``role`` (root may go below 0.2 s intervals)."""
    out = lab.run(role, ["ping", "-n", "-c", str(count), "-i", str(interval_s), "-W", str(wait_s),
                         addr], timeout=count * interval_s + wait_s + 30)
    return parse_ping(out.stdout)


def tcp_connect_ms(addr: str, port: int, count: int, timeout: float = 5.0,
                   pause_s: float = 0.01) -> list[float]:
    """Time ``count`` TCP handshakes (connect() return) to ``addr:port``, in ms."""
    times = []
    for _ in range(count):
        with socket.socket() as s:
            s.settimeout(timeout)
            t0 = time.perf_counter()
            s.connect((addr, port))
            times.append((time.perf_counter() - t0) * 1000)
        time.sleep(pause_s)
    return times


@dataclass(frozen=True)
class EchoResult:
    """Datagrams sent, and the sequence numbers of the distinct replies in arrival order."""

    sent: int
    arrivals: tuple[int, ...]

    @property
    def received(self) -> int:
        return len(self.arrivals)

    @property
    def loss_pct(self) -> float:
        return 100 * (self.sent - self.received) / self.sent

    @property
    def reordered(self) -> int:
        """Replies that arrived after a reply with a higher sequence number."""
        count, highest = 0, -1
        for seq in self.arrivals:
            if seq < highest:
                count += 1
            highest = max(highest, seq)
        return count


def udp_echo(addr: str, port: int, count: int, interval_s: float = 0.002,
             wait_s: float = 1.0) -> EchoResult:
    """Send ``count`` numbered datagrams ``interval_s`` apart to a UDP echo; collect replies."""
    arrivals: list[int] = []
    seen: set[int] = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((addr, port))
        start = time.perf_counter()
        end = start + count * interval_s + wait_s
        sent = 0
        while (now := time.perf_counter()) < end:
            if sent < count and now >= start + sent * interval_s:
                s.send(sent.to_bytes(4, "big") + b"classprobe-lab")
                sent += 1
                continue
            next_send = start + sent * interval_s if sent < count else end
            ready, _, _ = select.select([s], [], [], max(0.0, min(next_send, end) - now))
            if ready:
                with contextlib.suppress(ConnectionRefusedError):
                    seq = int.from_bytes(s.recv(2048)[:4], "big")
                    if seq not in seen:
                        seen.add(seq)
                        arrivals.append(seq)
    return EchoResult(count, tuple(arrivals))


@dataclass(frozen=True)
class Goodput:
    """What the receiver counted: steady-state goodput excludes the first ``warmup_s``."""

    total_bytes: int
    seconds: float
    mbps: float


def receive(listener: socket.socket, warmup_s: float, bufsize: int = 1 << 16) -> Goodput:
    """Read one connection to EOF; goodput is the least-squares slope of bytes over time.

    Only "caught up" samples count (recv() returned less than ``bufsize``, so the byte
    count matches the arrival time) taken after ``warmup_s``. A fit, not end points,
    because the application sees bytes in bursts whenever a retransmission fills a hole
    and releases out-of-order data at once: a window edge inside such a recovery would
    move the rate by a percent or more. When the reader never catches up (an unshaped
    link faster than Python reads) every read counts instead.
    """
    conn, _ = listener.accept()
    with conn:
        samples: list[tuple[float, int, bool]] = []
        total = 0
        while data := conn.recv(bufsize):
            total += len(data)
            samples.append((time.perf_counter(), total, len(data) < bufsize))
    if total == 0:
        raise RuntimeError("the sender sent nothing")
    first = samples[0][0]
    after = [(t, b, caught_up) for t, b, caught_up in samples if t >= first + warmup_s]
    window = [(t, b) for t, b, caught_up in after if caught_up]
    if len(window) < MIN_SAMPLES:  # the reader itself is the bottleneck: every read counts
        window = [(t, b) for t, b, _ in after]
    if len(window) < MIN_SAMPLES:
        raise RuntimeError(f"only {len(window)} reads after the {warmup_s} s warm-up")
    return Goodput(total, samples[-1][0] - first, slope(window) * 8 / 1e6)


def slope(points: list[tuple[float, int]]) -> float:
    """Least-squares slope dy/dx."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx


def send_for(addr: str, port: int, seconds: float) -> int:
    block = b"\x5a" * (1 << 16)
    sent = 0
    with socket.create_connection((addr, port), timeout=10) as s:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            s.sendall(block)
            sent += len(block)
    return sent


def tcp_goodput(lab: Lab, direction: str, seconds: float = 3.0, warmup_s: float = 0.5,
                port: int = 5201) -> Goodput:
    """One TCP stream between cls and net: ``down`` = net sends to cls, ``up`` = cls sends."""
    if direction not in ("down", "up"):
        raise ValueError(f"direction {direction!r} is not 'down' or 'up'")
    rx_role, tx_role = ("cls", "net") if direction == "down" else ("net", "cls")
    rx_addr = lab.cls_addr if direction == "down" else lab.far_addr
    bound = threading.Event()

    def listen_and_receive() -> Goodput:
        with socket.socket() as listener:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((rx_addr, port))
            listener.listen(1)
            listener.settimeout(seconds + 20)
            bound.set()
            return receive(listener, warmup_s)

    result: dict[str, Goodput] = {}
    errors: list[BaseException] = []

    def receiver() -> None:
        try:
            result["rx"] = lab.call(rx_role, listen_and_receive, timeout=seconds + 30)
        except BaseException as e:  # noqa: BLE001 (re-raised in the caller's thread below)
            errors.append(e)
            bound.set()

    t = threading.Thread(target=receiver, daemon=True)
    t.start()
    if not bound.wait(10) or errors:
        raise RuntimeError(f"receiver in {rx_role} did not bind {rx_addr}:{port}: {errors}")
    lab.call(tx_role, send_for, rx_addr, port, seconds, timeout=seconds + 30)
    t.join(seconds + 30)
    if errors:
        raise errors[0]
    if "rx" not in result:
        raise RuntimeError(f"receiver in {rx_role} returned no result")
    return result["rx"]
