r"""Windows: a Scheduled Task (Task Scheduler schema 1.2) that runs the agent at startup.

**Account.** ``NT AUTHORITY\NetworkService`` (SID ``S-1-5-20``: network access as the
computer, no admin rights), or ``SYSTEM`` (``S-1-5-18``) only when the config enables a
probe that needs raw sockets (Windows allows those to Administrators and SYSTEM only) —
the same rule as the Linux unit's ``CAP_NET_RAW``. Accounts are named by SID so the
commands work on every display language. Per-user mode: a task at the user's logon, with
their own token and least privilege, running ``pythonw.exe`` (no console window).

**Restarts.** ``RestartOnFailure`` (every minute, up to 999 times) plus a 5-minute
repetition of the boot trigger with ``MultipleInstancesPolicy=IgnoreNew``: Task Scheduler's
restart setting is documented for a task that *fails to run*, so the repetition is what
brings back an agent that exited (the watchdog exits to be restarted); while the agent runs
every repetition is ignored. No time limit (``ExecutionTimeLimit=PT0S``); battery and idle
conditions off (the agent's own guardrails decide). Priority 7 (below normal) is Task
Scheduler's default for background tasks.

**Files.** ``%ProgramData%\classprobe`` is made private (``icacls /inheritance:r``: SYSTEM
and Administrators full, NetworkService modify when it runs the task), and ``agent.toml``,
which holds the credential, is read-only for NetworkService — by default every user can
read files under ``ProgramData``.
"""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import PurePath, PureWindowsPath

from agent.install.plan import MakeDir, Plan, Remove, Run, Step, WriteFile
from agent.install.spec import AgentService

TASK_NAME = "classprobe-agent"
TASK_NS = "http://schemas.microsoft.com/windows/2004/02/mit/task"
SYSTEM_SID = "S-1-5-18"
NETWORK_SERVICE_SID = "S-1-5-20"
ADMINISTRATORS_SID = "S-1-5-32-544"
REPEAT = "PT5M"


def task_name(user: str | None = None) -> str:
    """``classprobe-agent``; per-user (``user`` = ``DOMAIN\\name``): ``classprobe-agent-name``."""
    return TASK_NAME if user is None else TASK_NAME + "-" + user.rsplit("\\", 1)[-1]


def run_as_sid(svc: AgentService) -> str:
    return SYSTEM_SID if svc.needs_raw_sockets else NETWORK_SERVICE_SID


def command_line(svc: AgentService) -> tuple[str, str]:
    """(Command, Arguments) for the task's Exec action, quoted for the MSVC runtime."""
    python, *args = svc.argv()
    if svc.paths.mode == "user":
        exe = PureWindowsPath(python)
        if exe.name.lower() == "python.exe":
            python = str(exe.with_name("pythonw.exe"))
    return python, subprocess.list2cmdline(args)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    child = ET.SubElement(parent, tag, attrs)
    child.text = text
    return child


def _trigger(triggers: ET.Element, user: str | None) -> None:
    trigger = _sub(triggers, "BootTrigger" if user is None else "LogonTrigger")
    _sub(_sub(trigger, "Repetition"), "Interval", REPEAT)
    _sub(trigger, "Enabled", "true")
    if user is None:
        _sub(trigger, "Delay", "PT1M")  # let the network come up
    else:
        _sub(trigger, "UserId", user)


Items = tuple[tuple[str, "str | Items"], ...]
SETTINGS: Items = (
    ("MultipleInstancesPolicy", "IgnoreNew"),
    ("DisallowStartIfOnBatteries", "false"),
    ("StopIfGoingOnBatteries", "false"),
    ("AllowHardTerminate", "true"),
    ("StartWhenAvailable", "true"),
    ("RunOnlyIfNetworkAvailable", "false"),
    ("IdleSettings", (("StopOnIdleEnd", "false"), ("RestartOnIdle", "false"))),
    ("AllowStartOnDemand", "true"),
    ("Enabled", "true"),
    ("Hidden", "false"),
    ("RunOnlyIfIdle", "false"),
    ("WakeToRun", "false"),
    ("ExecutionTimeLimit", "PT0S"),  # no time limit
    ("Priority", "7"),
    ("RestartOnFailure", (("Interval", "PT1M"), ("Count", "999"))),
)
"""In the order Task Scheduler exports them."""


def _fill(parent: ET.Element, items: Items) -> None:
    for tag, value in items:
        if isinstance(value, str):
            _sub(parent, tag, value)
        else:
            _fill(_sub(parent, tag), value)


def task_xml(svc: AgentService, user: str | None = None) -> bytes:
    """The task definition, UTF-16 with a BOM as ``schtasks /XML`` expects.

    ``user``: ``DOMAIN\\name`` for a per-user task (logon trigger, the user's token)."""
    task = ET.Element("Task", {"version": "1.2", "xmlns": TASK_NS})
    info = _sub(task, "RegistrationInfo")
    _sub(info, "Author", "classprobe agent install")
    _sub(info, "Description", "classprobe classroom network agent "
         "(measures what this PC's network can run; see docs/deploy-agent.md)")
    _sub(info, "URI", "\\" + task_name(user))
    _trigger(_sub(task, "Triggers"), user)
    principal = _sub(_sub(task, "Principals"), "Principal", id="Author")
    if user is None:
        _sub(principal, "UserId", run_as_sid(svc))
        _sub(principal, "RunLevel", "HighestAvailable" if svc.needs_raw_sockets
             else "LeastPrivilege")
    else:
        _sub(principal, "UserId", user)
        _sub(principal, "LogonType", "InteractiveToken")
        _sub(principal, "RunLevel", "LeastPrivilege")
    _fill(_sub(task, "Settings"), SETTINGS)
    command, arguments = command_line(svc)
    action = _sub(_sub(task, "Actions", Context="Author"), "Exec")
    _sub(action, "Command", command)
    _sub(action, "Arguments", arguments)
    _sub(action, "WorkingDirectory", str(svc.paths.state_dir))
    ET.indent(task)
    text = '<?xml version="1.0" encoding="UTF-16"?>\n' + ET.tostring(task, encoding="unicode")
    return text.encode("utf-16")  # the BOM comes with Python's utf-16 codec


def task_file(svc: AgentService) -> PurePath:
    return svc.paths.state_dir / f"{TASK_NAME}.xml"


def _restrict(svc: AgentService, path: PurePath, inherit: str, agent_right: str,
              why: str) -> Run:
    """``icacls``: drop inherited rights (every user may read ProgramData); grant full
    control to SYSTEM and Administrators and ``agent_right`` to NetworkService when it runs
    the task."""
    grants = [f"*{SYSTEM_SID}:{inherit}F", f"*{ADMINISTRATORS_SID}:{inherit}F"]
    if run_as_sid(svc) == NETWORK_SERVICE_SID:
        grants.append(f"*{NETWORK_SERVICE_SID}:{inherit}{agent_right}")
    return Run(("icacls", str(path), "/inheritance:r", "/grant:r", *grants), why)


def install_plan(svc: AgentService, config: bytes, user: str | None = None) -> Plan:
    """Write the config and task XML and register the task; ``user`` for per-user mode."""
    system = user is None
    name = task_name(user)
    dirs = dict.fromkeys([svc.paths.state_dir, svc.paths.config_file.parent])
    steps: list[Step] = [MakeDir(d) for d in dirs]
    if system:
        steps.append(_restrict(  # before the config exists, so it never inherits more
            svc, svc.paths.state_dir, "(OI)(CI)", "M",
            "only SYSTEM, Administrators and the agent's account may use the state folder"))
    steps.append(WriteFile(svc.paths.config_file, config, 0o600, secret=True))
    if system:
        steps.append(_restrict(svc, svc.paths.config_file, "", "R",
                               "the config holds the credential: nobody else may read it"))
    xml = task_file(svc)
    steps += [
        WriteFile(xml, task_xml(svc, user)),
        Run(("schtasks", "/Create", "/TN", name, "/XML", str(xml), "/F"),
            "register the scheduled task"),
        Run(("schtasks", "/End", "/TN", name), "stop a running agent", start=True,
            may_fail=True),
        Run(("schtasks", "/Run", "/TN", name), "start the agent now", start=True),
    ]
    notes = [f"logs: {svc.paths.log_dir}\\agent.log"]
    if system and svc.python.lower().startswith("c:\\users\\"):
        notes.append(f"the interpreter {svc.python} is in a user profile, which the task's "
                     "account may not read: install Python for all users (Program Files)")
    return Plan(steps, notes, windows=True)


def uninstall_plan(svc: AgentService, purge: bool, user: str | None = None) -> Plan:
    name = task_name(user)
    steps: list[Step] = [
        Run(("schtasks", "/End", "/TN", name), "stop the agent", may_fail=True),
        Run(("schtasks", "/Delete", "/TN", name, "/F"), "remove the scheduled task",
            may_fail=True),
        Remove(task_file(svc)),
    ]
    if not purge:
        return Plan(steps, [f"kept {svc.paths.config_file} and {svc.paths.state_dir} "
                            "(--purge removes them)"], windows=True)
    steps += [Remove(svc.paths.config_file), Remove(svc.paths.state_dir, tree=True)]
    if svc.paths.log_dir is not None:
        steps.append(Remove(svc.paths.log_dir, tree=True))
    return Plan(steps, windows=True)
