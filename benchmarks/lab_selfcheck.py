"""Prove the network lab against its own settings and print the table (root only).

    .venv/bin/python benchmarks/lab_selfcheck.py [--rates 5 20 100] [--seconds 6] [--quick]

Rows: tbf goodput per rate × direction × path (plain TCP, and iperf3 when installed),
added RTT per one-way delay (ping and TCP connect medians against the veth baseline),
round-trip loss per loss setting (ping, with the binomial 3σ), RTT jitter per jitter
setting. Each row: true value, measured, error, and whether it is inside the tolerance
the lab's tests assert.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.lab import measure, nsutil  # noqa: E402
from tests.lab.certs import make_certs  # noqa: E402
from tests.lab.netlab import Lab  # noqa: E402
from tests.lab.plugin import FAR_NAME, start_endpoints  # noqa: E402
from tests.lab.truth import (  # noqa: E402
    GOODPUT_REL_TOLERANCE,
    WIRE_RTT_TOLERANCE_MS,
    loss_sigma_pct,
    round_trip_loss_pct,
    rtt_jitter_ms,
    tcp_goodput_mbps,
)


@dataclass
class Row:
    what: str
    setting: str
    tool: str
    truth: float
    measured: float | None
    unit: str
    ok: bool | None

    def cells(self) -> list[str]:
        if self.measured is None:
            return [self.what, self.setting, self.tool, f"{self.truth:.3f}", "-", "-", self.unit,
                    "n/a"]
        err = self.measured - self.truth
        rel = f" ({100 * err / self.truth:+.2f} %)" if self.truth else ""
        verdict = {True: "ok", False: "OUT", None: "info"}[self.ok]
        return [self.what, self.setting, self.tool, f"{self.truth:.3f}", f"{self.measured:.3f}",
                f"{err:+.3f}{rel}", self.unit, verdict]


def iperf3_mbps(lab: Lab, direction: str, seconds: float) -> float | None:
    if shutil.which("iperf3") is None:
        return None
    server = lab.popen("net", ["iperf3", "-s", "-1", "-B", lab.far_addr, "-p", "5301"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    args = ["iperf3", "-c", lab.far_addr, "-p", "5301", "-t", str(seconds + 1), "-O", "1", "-J"]
    out = lab.run("cls", [*args, *(["-R"] if direction == "down" else [])], timeout=seconds + 30)
    lab.stop(server)
    if out.returncode != 0:
        return None
    result = json.loads(out.stdout)
    return float(result["end"]["sum_received"]["bits_per_second"]) / 1e6


def shaping_rows(lab: Lab, rates: list[float], seconds: float,
                 paths: list[float | None]) -> list[Row]:
    rows = []
    for rate in rates:
        for path in paths:
            lab.reset()
            lab.shape("both", rate)
            if path is not None:
                lab.set_path(path)
            where = "veth" if path is None else f"wire {path:g} ms"
            truth = tcp_goodput_mbps(rate)
            for direction in ("down", "up"):
                got = measure.tcp_goodput(lab, direction, seconds=seconds, warmup_s=1).mbps
                ok = abs(got - truth) <= GOODPUT_REL_TOLERANCE * truth
                setting = f"tbf {rate:g} Mbit/s {direction}, {where}"
                rows.append(Row("goodput", setting, "plain TCP", truth, got, "Mbit/s", ok))
                ip3 = iperf3_mbps(lab, direction, seconds)
                if ip3 is not None:
                    rows.append(Row("goodput", setting, "iperf3", truth, ip3, "Mbit/s", None))
    lab.reset()
    return rows


def delay_rows(lab: Lab, delays: list[float], port: int) -> list[Row]:
    rows = []
    base_ping = measure.ping(lab, "cls", lab.far_addr, 100, 0.01).median_ms
    base_tcp = statistics.median(lab.call("cls", measure.tcp_connect_ms, lab.far_addr, port, 40))
    for delay in delays:
        lab.set_path(delay)
        ping = measure.ping(lab, "cls", lab.far_addr, 200, 0.01).median_ms - base_ping
        tcp = statistics.median(lab.call("cls", measure.tcp_connect_ms, lab.far_addr, port, 40))
        for tool, added, method in (("ping p50", ping, "icmp"), ("TCP connect p50", tcp - base_tcp,
                                                                  "tcp_connect")):
            low, high = WIRE_RTT_TOLERANCE_MS[method]
            ok = low <= added - 2 * delay <= high
            rows.append(Row("added RTT", f"one-way {delay:g} ms", tool, 2 * delay, added, "ms", ok))
    lab.clear_path()
    return rows


def loss_rows(lab: Lab, losses: list[float], count: int) -> list[Row]:
    rows = []
    for loss in losses:
        lab.set_path(0, loss_pct=loss, seed=int(loss * 10) + 1)
        got = measure.ping(lab, "cls", lab.far_addr, count, 0.002).loss_pct
        stats = lab.wire_stats()
        kept = [1 - d["dropped"] / d["received"] for d in stats.values() if d["received"]]
        realized = 100 * (1 - kept[0] * kept[1]) if len(kept) == 2 else float("nan")
        truth = round_trip_loss_pct(loss)
        sigma = loss_sigma_pct(truth, count)
        setting = f"{loss:g} % each way, n={count}"
        rows.append(Row("round-trip loss", setting, "ping", truth, got, "%",
                        abs(got - truth) <= 3 * sigma))
        rows.append(Row("round-trip loss", setting, "wire's realized drop rates", truth,
                        realized, "%", None))
    lab.clear_path()
    return rows


def jitter_rows(lab: Lab, jitters: list[float], delay: float = 20) -> list[Row]:
    rows = []
    for jitter in jitters:
        lab.set_path(delay, jitter_ms=jitter, seed=3)
        rtts = measure.ping(lab, "cls", lab.far_addr, 300, 0.03).rtts_ms
        got = statistics.fmean(abs(a - b) for a, b in zip(rtts, rtts[1:], strict=False))
        truth = rtt_jitter_ms(jitter)
        rows.append(Row("RTT jitter", f"±{jitter:g} ms each way", "ping mean|ΔRTT|", truth, got,
                        "ms", abs(got - truth) <= 1.0))
    lab.clear_path()
    return rows


def print_table(rows: list[Row]) -> None:
    header = ["what", "setting", "tool", "true", "measured", "error", "unit", "verdict"]
    table = [header] + [r.cells() for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for i, r in enumerate(table):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rates", type=float, nargs="+", default=[5, 20, 100])
    p.add_argument("--seconds", type=float, default=6)
    p.add_argument("--delays", type=float, nargs="+", default=[0, 5, 10, 20, 40])
    p.add_argument("--quick", action="store_true", help="3 s transfers, veth path only")
    args = p.parse_args(argv)
    reason = nsutil.unavailable_reason()
    if reason:
        print(f"skipped: {reason}")
        return 0
    nsutil.cleanup_stale()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, Lab.create() as lab:
        certs = make_certs(Path(tmp), [FAR_NAME, lab.far_addr])
        endpoints = start_endpoints(lab, certs)
        paths: list[float | None] = [None] if args.quick else [None, 20]
        seconds = 3 if args.quick else args.seconds
        rows = shaping_rows(lab, args.rates, seconds, paths)
        if shutil.which("ping"):
            rows += delay_rows(lab, args.delays, endpoints.http_port)
            rows += loss_rows(lab, [1, 5, 10], 2000)
            rows += jitter_rows(lab, [2, 5])
        else:
            print("ping is not installed (Debian iputils-ping): delay/loss/jitter rows skipped")
    print_table(rows)
    print(f"\n{len(rows)} rows in {time.monotonic() - started:.0f} s; tolerances: goodput ±"
          f"{100 * GOODPUT_REL_TOLERANCE:g} %, wire RTT {WIRE_RTT_TOLERANCE_MS}, loss 3σ, "
          "jitter ±1 ms")
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
