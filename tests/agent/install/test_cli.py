from __future__ import annotations

import io
import subprocess
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import pytest

import agent.install.plan as plan_mod
from agent.config import load_config
from agent.install.cli import run_install_cli
from agent.install.plan import Execution, InstallError, Plan, Run, execute, missing_programs
from tests.agent.install.helpers import CREDENTIAL, parse, stage_config, tree
from tests.agent.standin import CREDENTIAL as STANDIN_CREDENTIAL
from tests.agent.standin import TOKEN, StandInServer

LINUX_FILES = {"etc/classprobe/agent.toml", "etc/sysusers.d/classprobe.conf",
               "etc/systemd/system/classprobe-agent.service"}


def run(argv: list[str]) -> int:
    return run_install_cli(parse(["agent", *argv]), environ={})


@pytest.fixture
def nothing_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    """Safety net for tests without --root: any step carried out fails the test."""
    def refuse(*args: object) -> None:
        raise AssertionError(f"a step was carried out: {args[0]}")
    monkeypatch.setattr(plan_mod, "_apply", refuse)


def test_install_with_root_writes_exactly_the_service_files(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]):
    stage_config(tmp_path, icmp=False)
    assert run(["install", "--system", "--root", str(tmp_path)]) == 0
    files = tree(tmp_path)
    assert set(files) == LINUX_FILES
    cfg = load_config(tmp_path / "etc/classprobe/agent.toml", environ={})
    assert (cfg.credential, cfg.spool_dir) == (CREDENTIAL, "/var/lib/classprobe/spool")
    assert (tmp_path / "etc/classprobe/agent.toml").stat().st_mode & 0o777 == 0o640
    unit = files["etc/systemd/system/classprobe-agent.service"].decode()
    assert "--config /etc/classprobe/agent.toml" in unit and "CapabilityBoundingSet=\n" in unit
    out = capsys.readouterr().out
    assert "run    systemctl daemon-reload    # load the new unit (skipped: --root: files only)" \
        in out
    assert CREDENTIAL not in out


def test_uninstall_with_root_removes_the_unit_and_purge_removes_the_rest(tmp_path: Path):
    stage_config(tmp_path)
    assert run(["install", "--system", "--root", str(tmp_path)]) == 0
    (tmp_path / "var/lib/classprobe/spool").mkdir(parents=True)
    (tmp_path / "var/lib/classprobe/spool/r1.json").write_text("{}")
    assert run(["uninstall", "--system", "--root", str(tmp_path)]) == 0
    assert set(tree(tmp_path)) == LINUX_FILES - {"etc/systemd/system/classprobe-agent.service"} \
        | {"var/lib/classprobe/spool/r1.json"}
    assert run(["uninstall", "--system", "--root", str(tmp_path), "--purge"]) == 0
    assert tree(tmp_path) == {}


def test_dry_run_prints_everything_and_changes_nothing(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]):
    stage_config(tmp_path, icmp=True)
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.rglob("*")
              if p.is_file()}
    assert run(["install", "--system", "--root", str(tmp_path), "--dry-run"]) == 0
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.rglob("*")
             if p.is_file()}
    assert after == before
    out = capsys.readouterr().out
    for name in LINUX_FILES:
        assert f"write  {tmp_path / name} (" in out
    assert "       | CapabilityBoundingSet=CAP_NET_RAW" in out
    assert "(holds the agent credential: content not shown)" in out
    assert CREDENTIAL not in out
    assert run(["uninstall", "--system", "--root", str(tmp_path), "--dry-run", "--purge"]) == 0
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.rglob("*")
            if p.is_file()} == before


def test_dry_run_on_this_machine_applies_no_step(nothing_applied: None,
                                                 capsys: pytest.CaptureFixture[str]):
    assert run(["install", "--system", "--dry-run", "--collector", "http://127.0.0.1:9",
                "--token", "t", "--room", "R"]) == 0
    out = capsys.readouterr().out
    assert "enrol  with http://127.0.0.1:9 for room 'R' (dry run: the collector is not " \
           "contacted)" in out
    assert "run    systemctl restart classprobe-agent.service    # start (or restart) it now\n" \
        in out
    assert "write  /etc/systemd/system/classprobe-agent.service (0644, " in out


def test_install_enrols_first(tmp_path: Path, server: StandInServer,
                              capsys: pytest.CaptureFixture[str]):
    code = run(["install", "--system", "--root", str(tmp_path), "--collector", server.url,
                "--token", TOKEN, "--room", "IT suite", "--quiet"])
    assert code == 0
    assert capsys.readouterr().out == ""
    cfg = load_config(tmp_path / "etc/classprobe/agent.toml", environ={})
    assert (cfg.agent_id, cfg.credential, cfg.room, cfg.spool_dir) == \
        ("agent-1", STANDIN_CREDENTIAL, "IT suite", "/var/lib/classprobe/spool")
    assert set(tree(tmp_path)) == LINUX_FILES


def test_a_refused_enrolment_installs_nothing(tmp_path: Path, server: StandInServer,
                                             capsys: pytest.CaptureFixture[str]):
    code = run(["install", "--system", "--root", str(tmp_path), "--collector", server.url,
                "--token", "wrong", "--room", "R", "--quiet"])
    assert code == 2
    assert "refused the enrolment token" in capsys.readouterr().err
    assert tree(tmp_path) == {}


@pytest.mark.parametrize(("argv", "message"), [
    (["install", "--collector", "http://x"], "missing: --room, --token"),
    (["install", "--platform", "win32"], "--platform win32 on this linux machine needs --root"),
    (["install"], "has no enrolment: pass --collector URL --token T --room R"),
])
def test_usage_errors_change_nothing(tmp_path: Path, argv: list[str], message: str,
                                     capsys: pytest.CaptureFixture[str]):
    if argv == ["install"]:
        argv = [*argv, "--root", str(tmp_path)]
    assert run(argv) == 2
    assert message in capsys.readouterr().err
    assert tree(tmp_path) == {}


def test_system_install_needs_root(monkeypatch: pytest.MonkeyPatch, nothing_applied: None,
                                   capsys: pytest.CaptureFixture[str]):
    monkeypatch.setattr("agent.install.cli.is_privileged", lambda: False)
    assert run(["install", "--system"]) == 2
    assert "needs root (sudo)" in capsys.readouterr().err


def test_missing_systemctl_is_said_before_anything_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nothing_applied: None,
        capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("PATH", str(tmp_path))  # no systemctl, no systemd-sysusers
    monkeypatch.setattr("agent.install.cli.is_privileged", lambda: True)
    assert run(["install", "--system"]) == 2
    assert "systemctl, systemd-sysusers not found on PATH: this linux machine cannot install " \
           "a systemd service here" in capsys.readouterr().err


def test_other_platforms_stage_with_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    stage_config(tmp_path, "win32")
    assert run(["install", "--system", "--platform", "win32", "--root", str(tmp_path),
                "--python", r"C:\Program Files\classprobe\python.exe"]) == 0
    assert set(tree(tmp_path)) == {"C/ProgramData/classprobe/agent.toml",
                                   "C/ProgramData/classprobe/classprobe-agent.xml"}
    assert "run    schtasks /Create /TN classprobe-agent /XML " \
           r"C:\ProgramData\classprobe\classprobe-agent.xml /F" in capsys.readouterr().out
    assert run(["uninstall", "--platform", "win32", "--root", str(tmp_path), "--purge"]) == 0
    assert tree(tmp_path) == {}

    stage_config(tmp_path, "darwin")
    assert run(["install", "--system", "--platform", "darwin", "--root", str(tmp_path)]) == 0
    assert set(tree(tmp_path)) == {
        "Library/Application Support/classprobe/agent.toml",
        "Library/LaunchDaemons/uk.classprobe.agent.plist",
        "etc/newsyslog.d/uk.classprobe.agent.conf"}
    out = capsys.readouterr().out
    assert "note: the service runs" in out  # this machine's interpreter, not the Mac's


def test_user_install_with_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HOME", "/home/pupil")
    for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        monkeypatch.delenv(var, raising=False)
    stage_config(tmp_path, mode="user")
    assert run(["install", "--user", "--root", str(tmp_path)]) == 0
    assert set(tree(tmp_path)) == {"home/pupil/.config/classprobe/agent.toml",
                                   "home/pupil/.config/systemd/user/classprobe-agent.service"}
    cfg = load_config(tmp_path / "home/pupil/.config/classprobe/agent.toml", environ={})
    assert cfg.spool_dir == "/home/pupil/.local/state/classprobe/spool"


class FakeRunner:
    def __init__(self, failing: set[str]):
        self.failing = failing
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(tuple(argv))
        code = 1 if argv[-1] in self.failing else 0
        return subprocess.CompletedProcess(argv, code, "", f"{argv[-1]} went wrong")


def test_execute_runs_commands_in_order_and_honours_no_start():
    plan = Plan([Run(("svc", "reload"), "r"), Run(("svc", "stop"), "s", may_fail=True),
                 Run(("svc", "start"), "go", start=True)])
    runner = FakeRunner(failing={"stop"})
    warnings = execute(plan, Execution(), io.StringIO(), runner)
    assert runner.calls == [("svc", "reload"), ("svc", "stop"), ("svc", "start")]
    assert warnings == ["`svc stop` failed (exit 1): stop went wrong"]
    runner = FakeRunner(failing=set())
    execute(plan, Execution(start=False), io.StringIO(), runner)
    assert runner.calls == [("svc", "reload"), ("svc", "stop")]


def test_execute_stops_at_a_failing_command():
    plan = Plan([Run(("svc", "reload"), "r"), Run(("svc", "start"), "go")])
    runner = FakeRunner(failing={"reload"})
    with pytest.raises(InstallError, match=r"`svc reload` failed \(exit 1\): reload went wrong"):
        execute(plan, Execution(), io.StringIO(), runner)
    assert runner.calls == [("svc", "reload")]


def test_missing_programs_ignores_skipped_commands():
    plan = Plan([Run(("systemctl", "daemon-reload"), "r"),
                 Run(("launchctl", "bootstrap"), "go", start=True)])
    assert missing_programs(plan, Execution(start=False), lambda name: None) == ["systemctl"]
    assert missing_programs(plan, Execution(root=Path("/x")), lambda name: None) == []
    assert missing_programs(plan, Execution(), lambda name: "/bin/" + name) == []


def test_owner_is_applied_only_without_root(tmp_path: Path):
    step = plan_mod.WriteFile(PurePosixPath("/etc/x.conf"), b"x", 0o640, ("nobody-such", "g"))
    execute(Plan([step]), Execution(root=tmp_path), io.StringIO())
    assert (tmp_path / "etc/x.conf").read_bytes() == b"x"


def test_an_unknown_owner_is_named(tmp_path: Path):
    target = tmp_path / "x.conf"
    target.write_text("x")
    with pytest.raises(InstallError, match=f"cannot give {target} to nobody-such:g: no such "):
        plan_mod._chown(target, ("nobody-such", "g"))
