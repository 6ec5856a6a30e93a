"""The ingest load benchmark: its uploads are valid batches shaped like a real agent's, and
a tiny run against a real collector on loopback stores what it says it stored."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys

import pytest

from benchmarks.load import GOAL_MEASUREMENTS_S, GOAL_REPORTS_S, ROOT, Result
from benchmarks.load_client import KeepAliveConnection, ProtocolError, Response
from benchmarks.load_cpu import Cpu
from benchmarks.load_shape import AGENT_MIX, BatchStamp, uniform
from collector.wire_validation import parse_batch

pytestmark = pytest.mark.slow


def counts(body: bytes) -> list[tuple[int, int]]:
    """(probe runs, measurements) of each report of a batch, after full validation."""
    batch = parse_batch(body)
    return [(len(r.results), sum(len(p.measurements) for p in r.results))
            for r in batch.reports]


def test_agent_mix_is_five_passive_reports_and_one_latency_report() -> None:
    stamp = BatchStamp.build(AGENT_MIX, 6)
    assert counts(stamp.body("agent-7")) == [(6, 21)] * 5 + [(6, 69)]
    assert (stamp.reports, stamp.measurements) == (6, 174)  # 29 per report


def test_every_upload_has_the_agent_and_fresh_report_ids() -> None:
    stamp = BatchStamp.build(AGENT_MIX, 20)
    first, second = (parse_batch(stamp.body("agent-7")) for _ in range(2))
    ids = [r.report_id for r in first.reports + second.reports]
    assert len(set(ids)) == 40
    assert {r.agent_id for r in first.reports} == {"agent-7"}
    assert stamp.measurements == 17 * 21 + 3 * 69


def test_uniform_shape_has_the_measurements_asked() -> None:
    stamp = BatchStamp.build((uniform(25),), 3)
    assert [m for _, m in counts(stamp.body("agent-7"))] == [25] * 3


def test_goal_line_and_cpu_per_report() -> None:
    res = Result("sqlite", 1, 10, 1.0, 20, 25, reports_s=GOAL_REPORTS_S,
                 measurements_s=GOAL_MEASUREMENTS_S)
    assert res.goal == "PASS"
    res.measurements_s -= 1
    assert res.goal == "MISS"
    assert Cpu(collector=0.75, database=0.25).ms_per_report(500.0) == 2.0


def test_tiny_run_against_a_real_collector() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.load", "--agents", "3", "--seconds", "1",
         "--backend", "sqlite", "--workers", "1", "--batch", "2", "--measurements", "5",
         "--concurrency", "2", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    [run] = json.loads(out.stdout)
    assert run["skipped"] is None
    assert run["errors"] == {}
    assert run["requests"] >= 1
    assert run["reports"] == 2 * run["requests"]
    assert run["measurements"] == 5 * run["reports"]
    assert run["goal"] in ("PASS", "MISS")
    assert run["p99_ms"] >= run["p50_ms"] > 0
    assert run["cpu"]["collector"] > 0


async def _serve_once(reply: bytes) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        await reader.readexactly(length)
        writer.write(reply)
        await writer.drain()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.mark.parametrize(("reply", "expected"), [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", Response(200, b"{}")),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
     "response without Content-Length ('HTTP/1.1 200 OK')"),
    (b"SMTP ready\r\n\r\n", "bad status line 'SMTP ready'"),
])
def test_keep_alive_client_reads_one_response_or_says_why_not(
        reply: bytes, expected: Response | str) -> None:
    async def post() -> Response:
        server, port = await _serve_once(reply)
        async with server:
            conn = KeepAliveConnection("127.0.0.1", port)
            try:
                return await conn.post("/api/v1/reports", b"[1]", {"X-Test": "1"})
            finally:
                await conn.close()

    if isinstance(expected, Response):
        assert asyncio.run(post()) == expected
    else:
        with pytest.raises(ProtocolError, match=re.escape(expected)):
            asyncio.run(post())


def test_tree_cpu_counts_a_child_that_comes_and_goes() -> None:
    """A database backend opened and closed during the run (a child that burns CPU and
    exits) is counted; reading the tree only at the start and the end missed it."""
    from benchmarks.load_cpu import TreeCpu

    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.5: pass"
    parent = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time\ntime.sleep(0.5)\n"
        f"subprocess.run([sys.executable, '-c', {burn!r}])\ntime.sleep(0.5)")])
    meter = TreeCpu(parent.pid)
    parent.wait(timeout=30)
    used = meter.used_s()
    # the child's 1.5 s (+ interpreter start-ups), less at most its last 0.25 s interval
    assert 1.0 <= used <= 2.5, used
    assert TreeCpu(None).used_s() == 0.0
