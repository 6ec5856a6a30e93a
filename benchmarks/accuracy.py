"""classprobe's probes against the lab's ground truth: the whole matrix in one table (root).

    .venv/bin/python -m benchmarks.accuracy [--quick] [--rates 5 20 100] [--seconds 8]
    .venv/bin/python benchmarks/accuracy.py ...

Every probe runs as a user would (``classprobe probe ... --json`` in the classroom
namespace; the ICMP loss/jitter rows through ``tests.lab.probe_runner.icmp``, which sets
an echo interval the CLI does not expose yet). Reference tools run in the same lab, same
setting, right after the probe: iperf3 (one TCP stream, 1 s omitted) for goodput, iputils
ping for RTT, jitter and loss. Columns: the truth, the probe's value and error, the
reference's value and error, probe / reference, and whether the probe is inside the
tolerance its lab test asserts (``tests/lab/test_accuracy_*.py``). Exit 1 if any is not.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.lab_selfcheck import iperf3_mbps  # noqa: E402
from tests.lab import measure, nsutil  # noqa: E402
from tests.lab import probe_runner as pr  # noqa: E402
from tests.lab.certs import CertSet, make_certs  # noqa: E402
from tests.lab.netlab import Lab  # noqa: E402
from tests.lab.plugin import (  # noqa: E402
    FAR_NAME,
    LAB_DOMAIN,
    Collector,
    start_collector,
    start_endpoints,
)
from tests.lab.test_accuracy_bandwidth import (  # noqa: E402
    BUFFERBLOAT_MIN_MS,
    GOODPUT_REL_TOLERANCE,
    idle_connect_ms,
)
from tests.lab.test_accuracy_latency import (  # noqa: E402
    LOSS_SIGMAS,
    added_rtt_tolerance_ms,
    jitter_tolerance_ms,
)
from tests.lab.test_accuracy_path import CASES, path, targets  # noqa: E402
from tests.lab.truth import (  # noqa: E402
    loss_sigma_pct,
    round_trip_loss_pct,
    rtt_jitter_ms,
    tcp_goodput_mbps,
)


@dataclass
class Row:
    case: str
    truth: float | str
    measured: float | str | None
    reference: float | None = None
    ref_name: str = ""
    ok: bool | None = None
    relative: bool = True
    """Errors in % of the truth (goodput) or in the unit itself (ms, loss points)."""

    def _err(self, value: float | None) -> str:
        if value is None or isinstance(self.truth, str):
            return "-"
        if self.relative:
            return f"{100 * (value / self.truth - 1):+.2f} %" if self.truth else "-"
        return f"{value - self.truth:+.3f}"

    def cells(self) -> list[str]:
        def num(v: float | str | None) -> str:
            return "-" if v is None else v if isinstance(v, str) else f"{v:.3f}"

        measured = None if isinstance(self.measured, str) else self.measured
        ratio = (f"{measured / self.reference:.4f}" if measured is not None
                 and self.reference else "-")
        verdict = {True: "ok", False: "OUT", None: "info"}[self.ok]
        return [self.case, num(self.truth), num(self.measured), self._err(measured),
                f"{self.ref_name} {num(self.reference)}" if self.ref_name else "-",
                self._err(self.reference) if self.ref_name else "-", ratio, verdict]


HEADER = ["case", "truth", "probe", "probe error", "reference", "ref error", "probe/ref",
          "verdict"]


def print_table(rows: list[Row]) -> None:
    table = [HEADER] + [r.cells() for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADER))]
    for i, r in enumerate(table):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def value_of(result: pr.Result, metric: str, stat: str = "value") -> float | None:
    if result["status"] != "ok":
        return None
    found = pr.by_metric(result).get((metric, stat))
    return None if found is None else float(found[0])


# ------------------------------------------------------------------ goodput
def goodput_rows(lab: Lab, collector: Collector, rates: list[float], seconds: float,
                 delays: list[float | None]) -> list[Row]:
    rows = []
    for delay in delays:
        for rate in rates:
            lab.reset()
            if delay is not None:
                lab.set_path(delay)
            idle = idle_connect_ms(lab, collector)
            lab.shape("both", rate)
            where = "veth" if delay is None else f"wire {2 * delay:g} ms RTT"
            truth = tcp_goodput_mbps(rate)
            results = pr.cli(lab, "bandwidth", "--collector", collector.url, "--seconds",
                             f"{seconds:g}", "--streams", "4", timeout=seconds * 4 + 60)
            for result, direction in zip(results, ("down", "up"), strict=True):
                metric = "download_mbps" if direction == "down" else "upload_mbps"
                got = value_of(result, metric)
                ref = iperf3_mbps(lab, direction, 6)
                ok = got is not None and abs(got / truth - 1) <= GOODPUT_REL_TOLERANCE
                rows.append(Row(f"goodput tbf {rate:g} Mbit/s {direction}, {where} [Mbit/s]",
                                truth, got if got is not None else result["reason"][:60],
                                ref, "iperf3" if ref is not None else "", ok))
                loaded = value_of(result, "loaded_latency_ms", "p50")
                rows.append(Row(f"  loaded latency p50 (idle {idle:.2f}) [ms]",
                                f">= {idle + BUFFERBLOAT_MIN_MS:.2f}", loaded,
                                ok=loaded is not None and loaded >= idle + BUFFERBLOAT_MIN_MS,
                                relative=False))
    lab.reset()
    return rows


# ------------------------------------------------------------------ latency
def latency_p50s(lab: Lab, target: str, count: int) -> dict[str, float | None]:
    results = pr.cli(lab, "latency", target, "--count", str(count))
    latency, icmp = pr.one(results, "latency"), pr.one(results, "icmp")
    ping = measure.ping(lab, "cls", lab.far_addr, 100, 0.01) if shutil.which("ping") else None
    return {"tcp_connect": value_of(latency, "tcp_connect_ms", "p50"),
            "http_ttfb": value_of(latency, "http_ttfb_ms", "p50"),
            "icmp": value_of(icmp, "icmp_rtt_ms", "p50"),
            "ping": ping.median_ms if ping else None}


def added_rtt_rows(lab: Lab, http_url: str, delays: list[float], count: int) -> list[Row]:
    lab.set_path(0)
    base = latency_p50s(lab, http_url + "/speed/ping", count)
    rows = []
    for delay in delays:
        lab.set_path(delay)
        got = latency_p50s(lab, http_url + "/speed/ping", count)
        truth = 2 * delay
        ref = None if got["ping"] is None or base["ping"] is None else got["ping"] - base["ping"]
        for phase in ("tcp_connect", "http_ttfb", "icmp"):
            p50, b = got[phase], base[phase]
            added = None if p50 is None or b is None else p50 - b
            ok = added is not None and abs(added - truth) <= added_rtt_tolerance_ms(truth)
            rows.append(Row(f"added RTT, one-way {delay:g} ms, {phase} p50 [ms]", truth, added,
                            ref, "ping p50" if ref is not None else "", ok, relative=False))
    lab.clear_path()
    return rows


def jitter_rows(lab: Lab, endpoints_addr: str, jitters: list[float], samples: int) -> list[Row]:
    def icmp_jitter() -> float | None:
        return value_of(pr.icmp(lab, lab.far_addr, samples, 0.005, 1.0), "jitter_ms")

    def tcp_jitter() -> float | None:
        results = pr.cli(lab, "latency", f"{endpoints_addr}:80", "--count", str(samples),
                         "--no-icmp")
        return value_of(pr.one(results, "latency"), "jitter_ms")

    def ping_jitter() -> float | None:
        if not shutil.which("ping"):
            return None
        rtts = measure.ping(lab, "cls", lab.far_addr, samples, 0.03).rtts_ms
        return statistics.fmean(abs(a - b) for a, b in zip(rtts, rtts[1:], strict=False))

    probes: dict[str, Callable[[], float | None]] = {"icmp": icmp_jitter,
                                                     "tcp_connect": tcp_jitter}
    lab.set_path(20, reorder=True)
    noise = {name: fn() for name, fn in probes.items()}
    rows = []
    for jitter in jitters:
        lab.set_path(20, jitter_ms=jitter, reorder=True)
        ref = ping_jitter()
        truth = rtt_jitter_ms(jitter)
        for name, fn in probes.items():
            got, floor = fn(), noise[name]
            ok = None if got is None or floor is None else \
                abs(got - truth) <= jitter_tolerance_ms(jitter, samples, floor)
            rows.append(Row(f"jitter ±{jitter:g} ms each way, {name}, n={samples} (noise "
                            f"{floor if floor is None else round(floor, 3)}) [ms]", truth, got,
                            ref, "ping" if ref is not None else "", ok, relative=False))
    lab.clear_path()
    return rows


def loss_rows(lossy: Lab, losses: list[float], count: int) -> list[Row]:
    rows = []
    for loss in losses:
        lossy.set_path(5, loss_pct=loss, seed=int(loss * 10) + 1)
        got = value_of(pr.icmp(lossy, lossy.far_addr, count, 0.005, 0.3), "loss_pct")
        stats = lossy.wire_stats()
        realized = 100 * sum(d["dropped"] for d in stats.values()) / count
        truth = round_trip_loss_pct(loss)
        sigma = loss_sigma_pct(truth, count)
        ok = got is not None and abs(got - truth) <= LOSS_SIGMAS * sigma \
            and abs(got - realized) < 1e-9
        rows.append(Row(f"round-trip loss, {loss:g} % each way, icmp, n={count} (wire dropped "
                        f"{realized:.2f} %, 3σ {LOSS_SIGMAS * sigma:.2f}) [%]", truth, got,
                        None, "", ok, relative=False))
        if shutil.which("ping"):
            lossy.set_path(5, loss_pct=loss, seed=int(loss * 10) + 1)
            ping = measure.ping(lossy, "cls", lossy.far_addr, count, 0.005, 0.3).loss_pct
            rows.append(Row(f"  same, ping n={count} [%]", truth, None, ping, "ping", None,
                            relative=False))
    lossy.clear_path()
    return rows


# ------------------------------------------------------------------ path
def path_rows(lab: Lab, certs: CertSet) -> list[Row]:
    rows = []
    for name, case in CASES.items():
        lab.reset()
        case.switch_on(lab)
        target = targets(lab)[case.kind]
        results = path(lab, certs, target, *case.args(lab))
        for (probe, metric), (value, method) in case.expected.items():
            result = pr.one(results, probe, target)
            got = pr.by_metric(result).get((metric, "value")) if result["status"] == "ok" \
                else None
            shown = f"{got[0]:g} {got[1]}" if got else f"{result['status']}: {result['reason']}"
            ok = got is not None and got[0] == value and (
                got[1].startswith(method[:-1]) if method.endswith("*") else got[1] == method)
            rows.append(Row(f"path {name}: {probe}.{metric}", f"{value:g} {method}",
                            shown[:70], ok=ok))
    lab.reset()
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rates", type=float, nargs="+", default=[5, 20, 100])
    p.add_argument("--seconds", type=float, default=8)
    p.add_argument("--quick", action="store_true",
                   help="veth only for goodput, fewer delays and samples")
    args = p.parse_args(argv)
    reason = nsutil.unavailable_reason()
    if reason:
        print(f"skipped: {reason}")
        return 0
    nsutil.cleanup_stale()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, Lab.create() as lab:
        certs = make_certs(Path(tmp) / "certs", [FAR_NAME, f"*.{LAB_DOMAIN}", lab.far_addr])
        endpoints = start_endpoints(lab, certs)
        collector = start_collector(lab, Path(tmp) / "collector")
        rows = goodput_rows(lab, collector, args.rates, args.seconds,
                            [None] if args.quick else [None, 20])
        rows += added_rtt_rows(lab, endpoints.http_url,
                               [10, 40] if args.quick else [5, 10, 20, 40], 15)
        rows += jitter_rows(lab, endpoints.addr, [5] if args.quick else [2, 5],
                            100 if args.quick else 150)
        if shutil.which("iptables"):
            rows += path_rows(lab, certs)
        with Lab.create(congestion_control="reno") as lossy:
            rows += loss_rows(lossy, [5] if args.quick else [1, 5, 10],
                              200 if args.quick else 500)
    print_table(rows)
    print(f"\n{len(rows)} rows in {time.monotonic() - started:.0f} s. Errors: goodput in % "
          "of the truth (tcp_goodput_mbps = rate × 1448/1514); RTT, jitter in ms; loss in "
          f"percentage points. Tolerances: goodput ±{100 * GOODPUT_REL_TOLERANCE:g} %, added "
          "RTT max(1 ms, 3 %), jitter 3σ + the wire's own jitter, loss 3σ binomial and "
          "equal to the wire's own drops.")
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
