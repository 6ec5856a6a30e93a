from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import PureWindowsPath

from agent.config import AgentConfig
from agent.install import windows
from agent.install.paths import WindowsDefaults
from agent.install.plan import Run
from tests.agent.install.helpers import service

NS = {"t": windows.TASK_NS}
PY = r"C:\Program Files\classprobe\python.exe"


def task(cfg: AgentConfig, user: str | None = None, dirs: WindowsDefaults | None = None
         ) -> ET.Element:
    svc = service(cfg, "win32", "user" if user else "system", PY, dirs)
    raw = windows.task_xml(svc, user)
    assert raw.startswith(b"\xff\xfe")  # UTF-16 LE with a BOM, as schtasks /XML expects
    return ET.fromstring(raw)


def text(root: ET.Element, path: str) -> str | None:
    found = root.find(path, NS)
    assert found is not None, path
    return found.text


def test_task_parses_with_the_expected_elements():
    root = task(AgentConfig(icmp=False))
    assert (root.tag, root.get("version")) == (f"{{{windows.TASK_NS}}}Task", "1.2")
    assert text(root, "t:RegistrationInfo/t:URI") == r"\classprobe-agent"
    assert text(root, "t:Triggers/t:BootTrigger/t:Enabled") == "true"
    assert text(root, "t:Triggers/t:BootTrigger/t:Repetition/t:Interval") == "PT5M"
    assert text(root, "t:Principals/t:Principal/t:UserId") == "S-1-5-20"  # NetworkService
    assert text(root, "t:Principals/t:Principal/t:RunLevel") == "LeastPrivilege"
    settings = root.find("t:Settings", NS)
    assert settings is not None
    assert [c.tag.split("}")[1] for c in settings] == [
        "MultipleInstancesPolicy", "DisallowStartIfOnBatteries", "StopIfGoingOnBatteries",
        "AllowHardTerminate", "StartWhenAvailable", "RunOnlyIfNetworkAvailable",
        "IdleSettings", "AllowStartOnDemand", "Enabled", "Hidden", "RunOnlyIfIdle",
        "WakeToRun", "ExecutionTimeLimit", "Priority", "RestartOnFailure"]
    assert text(settings, "t:ExecutionTimeLimit") == "PT0S"  # no time limit
    assert text(settings, "t:MultipleInstancesPolicy") == "IgnoreNew"
    assert text(settings, "t:DisallowStartIfOnBatteries") == "false"
    assert (text(settings, "t:RestartOnFailure/t:Interval"),
            text(settings, "t:RestartOnFailure/t:Count")) == ("PT1M", "999")
    assert text(root, "t:Actions/t:Exec/t:Command") == PY
    assert text(root, "t:Actions/t:Exec/t:Arguments") == \
        r"-m classprobe.cli agent run --config C:\ProgramData\classprobe\agent.toml"
    assert text(root, "t:Actions/t:Exec/t:WorkingDirectory") == r"C:\ProgramData\classprobe"


def test_raw_socket_probes_run_as_system():
    root = task(AgentConfig(icmp=True))
    assert text(root, "t:Principals/t:Principal/t:UserId") == "S-1-5-18"
    assert text(root, "t:Principals/t:Principal/t:RunLevel") == "HighestAvailable"


def test_user_task_runs_at_logon_without_a_console():
    root = task(AgentConfig(), user=r"SCHOOL\jo bloggs", dirs=WindowsDefaults("jo bloggs"))
    assert text(root, "t:Triggers/t:LogonTrigger/t:UserId") == r"SCHOOL\jo bloggs"
    assert text(root, "t:Principals/t:Principal/t:LogonType") == "InteractiveToken"
    assert text(root, "t:RegistrationInfo/t:URI") == r"\classprobe-agent-jo bloggs"
    assert text(root, "t:Actions/t:Exec/t:Command") == r"C:\Program Files\classprobe\pythonw.exe"
    assert text(root, "t:Actions/t:Exec/t:Arguments") == (
        r'-m classprobe.cli agent run --config "C:\Users\jo bloggs\AppData\Local\classprobe'
        r'\agent.toml"')


def test_install_plan_makes_the_credential_private_before_writing_it():
    svc = service(AgentConfig(icmp=False), "win32", python=PY)
    plan = windows.install_plan(svc, b"cfg")
    described = [(type(s).__name__, getattr(s, "argv", None) or str(getattr(s, "path", "")))
                 for s in plan.steps]
    assert described == [
        ("MakeDir", r"C:\ProgramData\classprobe"),
        ("Run", ("icacls", r"C:\ProgramData\classprobe", "/inheritance:r", "/grant:r",
                 "*S-1-5-18:(OI)(CI)F", "*S-1-5-32-544:(OI)(CI)F", "*S-1-5-20:(OI)(CI)M")),
        ("WriteFile", r"C:\ProgramData\classprobe\agent.toml"),
        ("Run", ("icacls", r"C:\ProgramData\classprobe\agent.toml", "/inheritance:r",
                 "/grant:r", "*S-1-5-18:F", "*S-1-5-32-544:F", "*S-1-5-20:R")),
        ("WriteFile", r"C:\ProgramData\classprobe\classprobe-agent.xml"),
        ("Run", ("schtasks", "/Create", "/TN", "classprobe-agent", "/XML",
                 r"C:\ProgramData\classprobe\classprobe-agent.xml", "/F")),
        ("Run", ("schtasks", "/End", "/TN", "classprobe-agent")),
        ("Run", ("schtasks", "/Run", "/TN", "classprobe-agent")),
    ]
    assert plan.windows


def test_system_account_gets_no_extra_grant():
    plan = windows.install_plan(service(AgentConfig(icmp=True), "win32", python=PY), b"cfg")
    grants = [s.argv for s in plan.commands() if s.argv[0] == "icacls"]
    assert all(not any("S-1-5-20" in a for a in argv) for argv in grants)


def test_uninstall_plan():
    svc = service(AgentConfig(), "win32", python=PY)
    keep = windows.uninstall_plan(svc, purge=False)
    assert [s.argv for s in keep.commands()] == [
        ("schtasks", "/End", "/TN", "classprobe-agent"),
        ("schtasks", "/Delete", "/TN", "classprobe-agent", "/F")]
    assert all(isinstance(s, Run) and s.may_fail for s in keep.commands())
    purge = windows.uninstall_plan(svc, purge=True)
    assert PureWindowsPath(r"C:\ProgramData\classprobe") in [
        getattr(s, "path", None) for s in purge.steps if getattr(s, "tree", False)]
