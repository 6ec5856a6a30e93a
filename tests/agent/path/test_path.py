import argparse
import json
import socket
from typing import Any

import pytest

from agent.config import AgentConfig
from agent.probes import path
from agent.probes.path import (
    PathOptions,
    add_path_arguments,
    checks_for,
    run_path,
    run_path_cli,
)
from agent.probes.pathnet import PathTarget, parse_path_target
from agent.probes.traceroute import Reply
from agent.wire import ProbeResult, new_report, semantic_errors
from tests.agent.path.conftest import CertAuthority, FakeResolver, HttpsFactory, nxdomain


@pytest.mark.parametrize(("raw", "expected"), [
    ("https://quiz.example", PathTarget("https://quiz.example", "https", "quiz.example", 443,
                                        "/")),
    ("http://10.0.0.1:8080/a?b=1", PathTarget("http://10.0.0.1:8080/a?b=1", "http", "10.0.0.1",
                                              8080, "/a?b=1")),
    ("wss://live.example/socket", PathTarget("wss://live.example/socket", "wss",
                                             "live.example", 443, "/socket")),
    ("ws://[::1]:8765", PathTarget("ws://[::1]:8765", "ws", "::1", 8765, "/")),
    ("stun:stun.example", PathTarget("stun:stun.example", "stun", "stun.example", 3478, "")),
    ("stun:stun.example:19302", PathTarget("stun:stun.example:19302", "stun", "stun.example",
                                           19302, "")),
    ("STUN://[2001:db8::2]:3478", PathTarget("STUN://[2001:db8::2]:3478", "stun",
                                             "2001:db8::2", 3478, "")),
    ("meet.example", PathTarget("meet.example", None, "meet.example", 443, "")),
])
def test_parse_path_target(raw: str, expected: PathTarget):
    assert parse_path_target(raw) == expected


@pytest.mark.parametrize(("raw", "message"), [
    ("ftp://x", "scheme 'ftp' is not one of http, https, ws, wss, stun"),
    ("stun:host:port", "port 'port' is not a number"),
    ("host:0", "port 1-65535"),
    ("  ", "empty target"),
])
def test_parse_path_target_errors(raw: str, message: str):
    with pytest.raises(ValueError, match=message):
        parse_path_target(raw)


@pytest.mark.parametrize(("raw", "checks"), [
    ("https://q.example/", ["block", "tls"]),
    ("http://q.example/", ["block"]),
    ("wss://q.example/", ["block", "tls", "websocket"]),
    ("ws://q.example/", ["block", "websocket"]),
    ("stun:q.example", ["udp"]),
    ("q.example:3478", ["block"]),
])
def test_checks_for(raw: str, checks: list[str]):
    assert checks_for(parse_path_target(raw)) == checks


def no_trace(*args: object) -> list[Reply]:
    raise AssertionError("traceroute must not run in this test")


def options(**kw: object) -> PathOptions:
    base: dict[str, object] = {"timeout_s": 2.0, "hold_s": 0.5, "ping_interval_s": 0.2,
                               "stun_rto_s": 0.05, "environ": {}, "traceroute": False,
                               "tracer": no_trace}
    base.update(kw)
    return PathOptions(**base)  # type: ignore[arg-type]


def summary(results: list[ProbeResult]) -> list[tuple[str, str | None, str, list[str]]]:
    return [(r.probe, r.target, r.status, [f"{m.metric}={m.value if m.text is None else m.text}"
                                            f"@{m.method.split(':')[0]}"
                                            for m in r.measurements]) for r in results]


def test_mixed_targets_each_check_independent(https_server: HttpsFactory, lab_ca: CertAuthority):
    srv = https_server(lab_ca)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))  # silent: no STUN answer
        stun_port = udp.getsockname()[1]
        resolver = FakeResolver({"gone.test": nxdomain()})
        results = run_path([f"https://127.0.0.1:{srv.port}/", "https://gone.test/", "nonsense://x",
                            f"stun:127.0.0.1:{stun_port}", f"https://127.0.0.1:{srv.port}/"],
                           options(ca_bundle=str(lab_ca.bundle), resolver=resolver))
    assert summary(results) == [
        ("proxy", None, "ok", ["proxy=none@proxy_config"]),
        ("block", f"https://127.0.0.1:{srv.port}/", "ok", ["blocked=0.0@clean"]),
        ("tls", f"https://127.0.0.1:{srv.port}/", "ok", ["tls_intercepted=0.0@tls_chain"]),
        ("block", "https://gone.test/", "ok", ["blocked=1.0@dns"]),
        ("tls", "https://gone.test/", "failed", []),
        ("path", "nonsense://x", "failed", []),
        ("udp", f"stun:127.0.0.1:{stun_port}", "ok", ["udp_reachable=0.0@stun_binding"]),
    ]
    assert semantic_errors(new_report("a", "0", results)) == []


def test_a_crashing_check_becomes_a_failed_result(monkeypatch: pytest.MonkeyPatch,
                                                   https_server: HttpsFactory,
                                                   lab_ca: CertAuthority):
    def boom(*args: object) -> ProbeResult:
        raise RuntimeError("bug in the check")

    monkeypatch.setattr(path, "check_block", boom)
    srv = https_server(lab_ca)
    results = run_path([f"https://127.0.0.1:{srv.port}/"],
                       options(ca_bundle=str(lab_ca.bundle), proxy=False))
    assert [(r.probe, r.status, r.reason) for r in results][0] == \
        ("block", "failed", "check crashed: RuntimeError: bug in the check")
    assert results[1].probe == "tls" and results[1].status == "ok"


def test_traceroute_once_per_host():
    hosts: list[str] = []

    def tracer(address: str, *rest: object) -> list[Reply]:
        hosts.append(address)
        return [Reply(1, address, 0.5, True)]

    results = run_path(["127.0.0.1:1", "http://127.0.0.1:2/", "127.0.0.2:3"],
                       options(traceroute=True, tracer=tracer, trace_unavailable=lambda: None,
                               proxy=False, timeout_s=0.5))
    assert hosts == ["127.0.0.1", "127.0.0.2"]
    assert [r.probe for r in results].count("traceroute") == 2


def test_websocket_holds_run_in_parallel():
    pytest.importorskip("websockets")
    import threading
    import time

    from websockets.sync.server import serve

    def stays_open(ws: Any) -> None:
        for _ in ws:
            pass

    srv = serve(stays_open, "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.socket.getsockname()[1]
    try:
        start = time.perf_counter()
        results = run_path([f"ws://127.0.0.1:{port}/a", f"ws://127.0.0.1:{port}/b"],
                           options(hold_s=1.0, proxy=False))
        elapsed = time.perf_counter() - start
    finally:
        srv.shutdown()
    holds = [m for r in results for m in r.measurements if m.metric == "websocket_hold_s"]
    assert [m.method for m in holds] == ["websocket_ping:held"] * 2
    assert elapsed < 1.8  # two 1 s holds side by side, not one after the other


# ---------------------------------------------------------------------------------- CLI


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="classprobe probe path")
    add_path_arguments(parser)
    return parser.parse_args(argv)


def test_cli_json(https_server: HttpsFactory, lab_ca: CertAuthority, filter_ca: CertAuthority,
                  capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://bob:s3cret@proxy.school.lan:3128")
    srv = https_server(filter_ca)
    url = f"https://127.0.0.1:{srv.port}/"
    code = run_path_cli(parse([url, "--ca-bundle", str(lab_ca.bundle), "--json",
                               "--no-traceroute", "--timeout", "2"]))
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    by_probe = {r["probe"]: r for r in out["results"]}
    assert set(by_probe) == {"proxy", "block", "tls"}
    [tls] = by_probe["tls"]["measurements"]
    assert (tls["metric"], tls["value"], tls["unit"]) == ("tls_intercepted", 1.0, "bool")
    assert tls["method"].endswith(",O=Lab Filter Ltd interception CA")
    assert by_probe["tls"]["target"] == url
    [proxy] = by_probe["proxy"]["measurements"]
    assert proxy["text"].startswith("env")
    assert "s3cret" not in json.dumps(out)


def test_cli_text_and_exit_code_on_failure(closed_port: int, capsys: pytest.CaptureFixture[str]):
    code = run_path_cli(parse([f"http://127.0.0.1:{closed_port}/", "--no-traceroute"]),
                        options(proxy=False))
    assert code == 1
    out = capsys.readouterr().out
    assert out.startswith(f"block http://127.0.0.1:{closed_port}/: failed\n")


@pytest.mark.parametrize(("argv", "message"), [
    (["x", "--pin", "nope"], "pin 'nope' is not a SHA-256 value"),
    (["x", "--hold", "0"], "--hold must be positive, got 0"),
    (["x", "--sinkhole", "sink.example"], "--sinkhole 'sink.example' is not an IP address"),
])
def test_cli_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]):
    assert run_path_cli(parse(argv)) == 2
    assert message in capsys.readouterr().err


def test_agent_entry_point_without_targets(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    results = path.probe(AgentConfig())
    assert [(r.probe, r.status) for r in results] == [("proxy", "ok"), ("path", "skipped")]
    assert results[1].reason == "no path_targets configured"


def test_agent_entry_point_uses_path_targets_and_hold_from_config(
        monkeypatch: pytest.MonkeyPatch):
    seen: dict[str, object] = {}

    def fake_run_path(targets: list[str], opts: path.PathOptions) -> list[object]:
        seen.update(targets=targets, hold=opts.hold_s, trace=opts.traceroute)
        return []

    monkeypatch.setattr(path, "run_path", fake_run_path)
    cfg = AgentConfig(targets=["https://latency.only/"], path_targets=["wss://q.example/"],
                      websocket_hold_s=60.0, traceroute=False)
    assert path.probe(cfg) == []
    assert seen == {"targets": ["wss://q.example/"], "hold": 60.0, "trace": False}
