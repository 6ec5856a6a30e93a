"""The lab's namespaces: built as documented, isolated, and always removed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.lab import nsutil
from tests.lab.netlab import Lab, lab_context
from tests.lab.netstate import COMMANDS, network_state
from tests.lab.nsutil import LabError
from tests.lab.procs import REPO_ROOT

pytestmark = pytest.mark.lab


def links(lab: Lab, role: str) -> set[str]:
    out = lab.ipn(role, "-o", "link", "show").stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def test_three_namespaces_with_documented_links_and_nothing_else(lab: Lab) -> None:
    assert lab.exists()
    assert set(lab.ns) == {"cls", "gw", "net"}
    assert all(name.startswith(f"cpl{lab.id}-") for name in lab.ns.values())
    assert links(lab, "cls") == {"lo", "c0"}
    assert links(lab, "gw") == {"lo", "g0", "g1", "gt"}
    assert links(lab, "net") == {"lo", "n0", "nt"}
    assert "default via 10.77.1.1" in lab.ipn("cls", "route").stdout
    assert "default" not in lab.ipn("net", "route").stdout
    assert lab.read_sysctl("gw", "net.ipv4.ip_forward") == "1"
    assert lab.read_sysctl("cls", "net.ipv4.ip_forward") == "0"
    resolv = lab.run("cls", ["cat", "/etc/resolv.conf"], check=True).stdout
    assert resolv == f"nameserver {lab.far_addr}\n"


def test_classroom_reaches_far_side_through_the_gateway(lab: Lab) -> None:
    out = lab.run("cls", ["ip", "route", "get", lab.far_addr], check=True).stdout
    assert f"via {lab.gw_cls_addr} dev c0" in out
    hops = lab.run("gw", ["ip", "route", "get", lab.far_addr], check=True).stdout
    assert f"via {lab.net_link_addr} dev g1" in hops
    lab.set_path(1)
    assert "dev gt" in lab.run("gw", ["ip", "route", "get", lab.far_addr], check=True).stdout
    lab.clear_path()
    assert "dev g1" in lab.run("gw", ["ip", "route", "get", lab.far_addr], check=True).stdout


def test_context_manager_removes_everything_when_the_body_raises() -> None:
    reason = nsutil.unavailable_reason()
    if reason:
        pytest.skip(reason)
    names: list[str] = []
    with pytest.raises(RuntimeError, match="boom"), lab_context() as built:
        names.extend(built.ns.values())
        built.popen("net", ["sleep", "60"])
        assert all(name in nsutil.lab_namespaces() for name in names)
        raise RuntimeError("boom")
    present = nsutil.lab_namespaces()
    assert [n for n in names if n in present] == []
    assert not any((nsutil.ETC_NETNS / n).exists() for n in names)
    assert not (nsutil.STATE_DIR / f"{nsutil.lab_id_of(names[0])}.json").exists()


INNER_TEST = '''
import pytest
from tests.lab.plugin import lab, lab_session, lab_required  # noqa: F401

@pytest.mark.lab
def test_fails_inside_the_lab(lab):
    print("LAB_NAMES", " ".join(lab.ns.values()), flush=True)
    lab.shape("down", 5)
    lab.set_path(3)
    assert False, "this inner test fails on purpose"
'''


def test_fixture_tears_down_after_a_failing_test(tmp_path: Path) -> None:
    reason = nsutil.unavailable_reason()
    if reason:
        pytest.skip(reason)
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(INNER_TEST))
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                          "--rootdir", str(tmp_path), str(tmp_path / "test_inner.py")],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert out.returncode == 1, out.stdout + out.stderr
    assert "this inner test fails on purpose" in out.stdout
    names = next(line.split()[1:] for line in out.stdout.splitlines() if "LAB_NAMES" in line)
    assert len(names) == 3
    assert not set(names) & set(nsutil.lab_namespaces())


KILLED_OWNER = '''
import sys, time
from tests.lab.netlab import Lab
lab = Lab.create()
lab.set_path(2)
print(" ".join(lab.ns.values()), flush=True)
time.sleep(120)
'''


def test_cleanup_stale_removes_labs_of_killed_runs_only(lab: Lab) -> None:
    proc = subprocess.Popen([sys.executable, "-c", KILLED_OWNER], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert proc.stdout is not None
    names = proc.stdout.readline().split()
    assert len(names) == 3 and set(names) <= set(nsutil.lab_namespaces())
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert set(names) <= set(nsutil.lab_namespaces())
    removed = nsutil.cleanup_stale()
    assert set(names) <= set(removed)
    present = nsutil.lab_namespaces()
    assert not set(names) & set(present)
    assert set(lab.ns.values()) <= set(present), "a live lab must survive the cleanup"
    assert deadline_true(lambda: names[1] not in ps_args(), 5), "its wire must be killed"


def ps_args() -> str:
    return subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout


def deadline_true(check: Callable[[], bool], seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_congestion_control_option(make_lab: Callable[..., Lab]) -> None:
    reno = make_lab(congestion_control="reno")
    assert {reno.read_sysctl(r, "net.ipv4.tcp_congestion_control") for r in reno.ns} == {"reno"}
    if nsutil.congestion_control_allowed("cubic"):
        cubic = make_lab(congestion_control="cubic")
        assert cubic.read_sysctl("cls", "net.ipv4.tcp_congestion_control") == "cubic"
    else:
        with pytest.raises(LabError, match="tcp_allowed_congestion_control"):
            make_lab(congestion_control="cubic")
    with pytest.raises(LabError, match="not in this kernel"):
        make_lab(congestion_control="no-such-cc")


def test_a_failure_report_can_show_every_namespaces_network(lab: Lab) -> None:
    """What ``tests.lab.rerun_plugin`` adds to a failing lab test's report."""
    state = network_state(lab)
    for role in lab.ns:
        for argv in COMMANDS:
            assert f"[{role}] $ {' '.join(argv)}\n" in state
    cls_routes = state.split("[cls] $ ip route\n")[1].split("\n[")[0]
    assert "default via 10.77.1.1" in cls_routes
    gw_qdiscs = state.split("[gw] $ tc -s qdisc\n")[1].split("\n[")[0]
    assert "qdisc " in gw_qdiscs and "Sent " in gw_qdiscs  # with its counters
