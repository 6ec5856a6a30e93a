"""``probe_and_spool``: the in-process cycle behind ``agent once`` (the loop of ``agent run``
is the supervisor, tested in test_service.py)."""

from pathlib import Path

from agent.config import AgentConfig
from agent.cycle import probe_and_spool
from agent.probes import ProbeSpec
from agent.probes.results import ResultBuilder
from agent.spool import Spool
from agent.wire import ProbeResult


def make_probe(name: str, calls: list[str]) -> ProbeSpec:
    def run(cfg: AgentConfig) -> list[ProbeResult]:
        calls.append(name)
        return [ResultBuilder(name).skipped("test")]
    return ProbeSpec(name, run, "")


def test_probes_run_in_order_and_one_manual_report_is_spooled(tmp_path: Path):
    calls: list[str] = []
    spool = Spool(tmp_path)
    probes = (make_probe("device", calls), make_probe("bandwidth", calls),
              make_probe("latency", calls))
    report = probe_and_spool(AgentConfig(agent_id="a"), spool, probes,
                             skip=frozenset({"bandwidth"}))
    assert calls == ["device", "latency"]
    assert report is not None
    assert (report.agent_id, report.trigger, report.job_id, report.clock_offset_s) == \
        ("a", "manual", None, None)
    assert [r.probe for r in report.results] == ["device", "latency"]
    [item] = spool.pending()
    assert item.report_id == str(report.report_id)
    assert spool.load(item)["trigger"] == "manual"


def test_stop_between_probes_spools_what_was_measured(tmp_path: Path):
    stop = {"now": False}
    calls: list[str] = []

    def stopping_probe(cfg: AgentConfig) -> list[ProbeResult]:
        stop["now"] = True  # SIGTERM arrives while this probe runs
        return [ResultBuilder("first").skipped("test")]

    probes = (ProbeSpec("first", stopping_probe, ""), make_probe("second", calls))
    spool = Spool(tmp_path)
    report = probe_and_spool(AgentConfig(agent_id="a"), spool, probes,
                             stopped=lambda: stop["now"])
    assert calls == []  # the second probe never ran
    assert report is not None and [r.probe for r in report.results] == ["first"]
    assert len(spool.pending()) == 1


def test_stop_before_any_probe_spools_nothing(tmp_path: Path):
    spool = Spool(tmp_path)
    calls: list[str] = []
    assert probe_and_spool(AgentConfig(agent_id="a"), spool, (make_probe("x", calls),),
                           stopped=lambda: True) is None
    assert calls == [] and spool.pending() == []
