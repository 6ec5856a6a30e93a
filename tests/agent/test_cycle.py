import json

import httpx

from agent.config import AgentConfig
from agent.cycle import CycleOutcome, Loop
from agent.probes import ProbeSpec
from agent.probes.results import ResultBuilder
from agent.spool import Spool
from agent.uploader import Backoff, Uploader
from agent.wire import ProbeResult


class FakeTime:
    def __init__(self, stop_at: float | None = None) -> None:
        self.now = 0.0
        self.waits: list[float] = []
        self.stop_at = stop_at

    def clock(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waits.append(round(seconds, 6))
        self.now += seconds
        return self.stop_at is not None and self.now >= self.stop_at


def make_probe(name: str, calls: list[float], time: FakeTime) -> ProbeSpec:
    def run(cfg: AgentConfig) -> list[ProbeResult]:
        calls.append(time.now)
        return [ResultBuilder(name).skipped("test")]
    return ProbeSpec(name, run, "")


def collector(statuses: list[int], stored: list[str]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        status = statuses.pop(0) if statuses else 200
        if status != 200:
            return httpx.Response(status, json={"detail": "down"})
        ids = [r["report_id"] for r in json.loads(request.content)["reports"]]
        stored.extend(ids)
        return httpx.Response(200, json={"accepted": ids, "duplicates": []})
    return httpx.Client(base_url="http://c.test", transport=httpx.MockTransport(handler))


def test_cycles_on_interval_with_backoff_until_delivered(tmp_path):
    t = FakeTime()
    cfg = AgentConfig(agent_id="a", interval_s=300, bandwidth_interval_s=600)
    device_calls: list[float] = []
    bandwidth_calls: list[float] = []
    probes = (make_probe("device", device_calls, t), make_probe("bandwidth", bandwidth_calls, t))
    spool = Spool(tmp_path)
    stored: list[str] = []
    uploader = Uploader(collector([500, 500, 500], stored), spool, "cred")
    outcomes: list[CycleOutcome] = []
    loop = Loop(cfg, spool, uploader, wait=t.wait, clock=t.clock, probes=probes,
                backoff=Backoff(10, 100, uniform=lambda lo, hi: hi), on_cycle=outcomes.append)
    assert loop.run(cycles=3) == 3
    assert device_calls == [0.0, 300.0, 600.0]
    assert bandwidth_calls == [0.0, 600.0]  # at most every bandwidth_interval_s
    # cycle 1: 500, wait 10, 500, wait 20, 500, wait 40, 200 -> then idle to t=300
    assert t.waits[:4] == [10, 20, 40, 230]
    assert stored == [str(o.report.report_id) for o in outcomes if o.report is not None]
    assert spool.pending() == []
    assert all(o.upload is not None and o.upload.ok for o in outcomes)


def test_backoff_never_sleeps_past_the_next_cycle(tmp_path):
    t = FakeTime()
    cfg = AgentConfig(agent_id="a", interval_s=60)
    calls: list[float] = []
    spool = Spool(tmp_path)
    stored: list[str] = []
    loop = Loop(cfg, spool, Uploader(collector([500] * 100, stored), spool, "c"),
                wait=t.wait, clock=t.clock, probes=(make_probe("device", calls, t),),
                backoff=Backoff(50, 1000, uniform=lambda lo, hi: hi))
    loop.run(cycles=2)
    assert calls == [0.0, 60.0]
    assert t.waits[:2] == [50, 10]  # 50 s backoff, then 100 s would pass the next cycle
    assert len(spool.pending()) == 2 and stored == []


def test_stop_request_ends_the_loop(tmp_path):
    t = FakeTime(stop_at=100)
    cfg = AgentConfig(agent_id="a", interval_s=60)
    calls: list[float] = []
    spool = Spool(tmp_path)
    stored: list[str] = []
    loop = Loop(cfg, spool, Uploader(collector([], stored), spool, "c"), wait=t.wait,
                clock=t.clock, probes=(make_probe("device", calls, t),))
    assert loop.run() == 2
    assert calls == [0.0, 60.0]
    assert loop.stop_requested


def test_stop_between_probes_spools_what_was_measured(tmp_path):
    t = FakeTime()
    stop = {"now": False}
    calls: list[float] = []

    def stopping_probe(cfg: AgentConfig) -> list[ProbeResult]:
        stop["now"] = True  # SIGTERM arrives while this probe runs
        return [ResultBuilder("first").skipped("test")]

    probes = (ProbeSpec("first", stopping_probe, ""), make_probe("second", calls, t))
    spool = Spool(tmp_path)
    stored: list[str] = []
    outcomes: list[CycleOutcome] = []
    loop = Loop(AgentConfig(agent_id="a"), spool, Uploader(collector([], stored), spool, "c"),
                wait=t.wait, clock=t.clock, probes=probes, on_cycle=outcomes.append,
                should_stop=lambda: stop["now"])
    assert loop.run() == 1
    assert calls == []  # the second probe never ran
    [outcome] = outcomes
    assert outcome.upload is None and stored == []
    assert outcome.report is not None
    assert [r.probe for r in outcome.report.results] == ["first"]
    assert len(spool.pending()) == 1
