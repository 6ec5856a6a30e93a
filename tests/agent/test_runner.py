import pytest

from agent.config import AgentConfig
from agent.probes import BY_NAME, PROBES, ProbeSpec
from agent.probes.results import ResultBuilder
from agent.runner import run_probes
from agent.wire import ProbeResult


def fine(cfg: AgentConfig) -> list[ProbeResult]:
    return [ResultBuilder("fine").skipped("nothing to do")]


def broken(cfg: AgentConfig) -> list[ProbeResult]:
    raise RuntimeError("boom")


def test_a_crashing_probe_becomes_a_failed_result_and_the_rest_run(
        caplog: pytest.LogCaptureFixture):
    probes = (ProbeSpec("broken", broken, ""), ProbeSpec("fine", fine, ""))
    results = run_probes(AgentConfig(), probes)
    assert [(r.probe, r.status, r.reason) for r in results] == [
        ("broken", "failed", "probe crashed: RuntimeError: boom"),
        ("fine", "skipped", "nothing to do")]
    assert "probe broken crashed" in caplog.text


def test_skip_and_stop():
    probes = (ProbeSpec("a", fine, ""), ProbeSpec("b", fine, ""))
    assert len(run_probes(AgentConfig(), probes, skip={"a"})) == 1
    assert run_probes(AgentConfig(), probes, stopped=lambda: True) == []


def test_registry_is_explicit():
    assert [p.name for p in PROBES] == ["device", "load", "wifi", "latency", "path", "bandwidth",
                                        "traceroute"]
    assert set(BY_NAME) == {"device", "load", "wifi", "latency", "path", "bandwidth",
                            "traceroute"}
