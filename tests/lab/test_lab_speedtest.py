"""The speedtest-cli backend through the lab's tbf, against the real collector in ``net``.

``classprobe probe bandwidth --collector http://10.77.10.1:8000 --backend speedtest`` runs
in the classroom namespace with the gateway shaped to 20 Mbit/s each way, so the true TCP
goodput is 20 × 1448/1514 = 19.128 Mbit/s (``tests/lab/truth.py``).

Tolerances:
- download ±5 % (the issue's bar): speedtest-cli's download counts bytes the client read;
  lab-facts §3 found it within 0.5 % of plain TCP.
- upload ±8 %: speedtest-cli counts bytes *handed to the socket*, not bytes delivered, so
  a request cut at the time limit counts what was still buffered; lab-facts §3 measured
  ±5–8 % (101–104 % at 100 Mbit/s, 83.6 % in one 5 Mbit/s case). The issue's 5 % would
  test speedtest-cli's known flaw, not our adapter.

One retry, and why: speedtest-cli starts a new request only when the *oldest* running one
has ended (its consumer joins threads in order), each on a fresh connection. When a flow
stalls on a loss at the gateway's full queue (an RTO), new requests wait behind it and the
link idles. Measured here with 2 threads: download median 19.02 Mbit/s (−0.6 %) over 43
runs, 41 within −4.7 %, 2 at −11 and −12 %; upload −2.7 … +3.8 % over 21 runs. A stall
only ever lowers the download, so a second run is allowed when the first misses; every
run must stay within −15 % … +2 % for the download, and the last must meet both
tolerances.

The upload's over-count has no such fixed bound: it is whatever the two sockets held
unsent when the time limit cut the requests, up to their send buffers (autotuned to
megabytes), divided by the duration. A CI run read +10.5 % once (the retry then read
−0.4 %). So a run that is retried is held to a gross-error bound on its upload,
+``UPLOAD_RETRIED_CEILING`` (a doubled count, say, still fails), and the last run to the
tolerance.
"""

from __future__ import annotations

import json
import sys

import pytest

from agent.probes.speedtest_backend import NOT_INSTALLED
from tests.lab.netlab import Lab
from tests.lab.plugin import Collector
from tests.lab.procs import REPO_ROOT
from tests.lab.truth import tcp_goodput_mbps

pytestmark = pytest.mark.lab

RATE_MBIT = 20
SECONDS = 6
DOWNLOAD_TOLERANCE = 0.05
UPLOAD_TOLERANCE = 0.08
STALL_FLOOR = 0.85
UPLOAD_RETRIED_CEILING = 0.25
DOWNLOAD_CEILING = 0.02
ATTEMPTS = 2


def measure_once(lab: Lab, url: str, version: str) -> dict[str, float]:
    out = lab.run("cls", [sys.executable, "-m", "classprobe.cli", "probe", "bandwidth",
                          "--collector", url, "--backend", "speedtest",
                          "--seconds", str(SECONDS), "--json"], cwd=REPO_ROOT, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    down, up = json.loads(out.stdout)["results"]
    got = {}
    for result, metric, counted in ((down, "download_mbps", "download"),
                                    (up, "upload_mbps", "upload_bytes_sent")):
        assert result["status"] == "ok", result["reason"]
        assert result["target"] == f"{url}/speedtest/upload.php"
        values = {m["metric"]: m["value"] for m in result["measurements"]}
        assert {m["method"] for m in result["measurements"]} == {
            f"speedtest-cli_{version}_{counted}"}
        assert values["streams"] == 2
        # the time cap ended each phase (the byte budget lasts far longer at 20 Mbit/s)
        assert SECONDS <= values["duration_s"] < SECONDS + 2
        assert values["bytes"] * 8 / values["duration_s"] / 1e6 == pytest.approx(
            values[metric], rel=1e-3)
        got[metric] = values[metric]
    return got


def test_speedtest_backend_meets_the_shaped_truth(lab: Lab, lab_collector: Collector) -> None:
    sp = pytest.importorskip("speedtest", reason=NOT_INSTALLED)
    lab.shape("both", RATE_MBIT)
    truth = tcp_goodput_mbps(RATE_MBIT)

    def within(got: dict[str, float]) -> bool:
        return (abs(got["download_mbps"] / truth - 1) <= DOWNLOAD_TOLERANCE
                and abs(got["upload_mbps"] / truth - 1) <= UPLOAD_TOLERANCE)

    runs = []
    for _ in range(ATTEMPTS):
        runs.append(measure_once(lab, lab_collector.url, sp.__version__))
        if within(runs[-1]):
            break
    for got in runs:
        assert STALL_FLOOR <= got["download_mbps"] / truth <= 1 + DOWNLOAD_CEILING, runs
        assert STALL_FLOOR <= got["upload_mbps"] / truth <= 1 + UPLOAD_RETRIED_CEILING, runs
    assert within(runs[-1]), f"truth {truth:.3f} Mbit/s, runs {runs}"
