from __future__ import annotations

import plistlib
from pathlib import PurePosixPath

from agent.config import AgentConfig
from agent.install import launchd
from agent.install.plan import Remove, Run, WriteFile
from tests.agent.install.helpers import service

PY = "/Library/classprobe/venv/bin/python3"
CONFIG = "/Library/Application Support/classprobe/agent.toml"


def test_daemon_plist_parses_and_has_the_keys():
    data = plistlib.loads(launchd.render_plist(service(AgentConfig(), "darwin", python=PY)))
    assert data == {
        "Label": "uk.classprobe.agent",
        "ProgramArguments": [PY, "-m", "classprobe.cli", "agent", "run", "--config", CONFIG],
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False, "Crashed": True},
        "ThrottleInterval": 30,
        "WorkingDirectory": "/Library/Application Support/classprobe",
        "Umask": 0o077,
        "StandardOutPath": "/Library/Logs/classprobe/stdout.log",
        "StandardErrorPath": "/Library/Logs/classprobe/stderr.log",
    }


def test_newsyslog_rotates_both_launchd_files():
    conf = launchd.newsyslog_conf(service(AgentConfig(), "darwin", python=PY))
    rules = [line.split() for line in conf.splitlines() if not line.startswith("#")]
    assert rules == [
        ["/Library/Logs/classprobe/stdout.log", "root:wheel", "640", "5", "1024", "*", "N"],
        ["/Library/Logs/classprobe/stderr.log", "root:wheel", "640", "5", "1024", "*", "N"]]


def test_daemon_install_plan():
    svc = service(AgentConfig(), "darwin", python=PY)
    plan = launchd.install_plan(svc, b"cfg")
    assert plan.files() == [PurePosixPath(CONFIG), launchd.NEWSYSLOG_FILE, launchd.DAEMON_PLIST]
    assert str(launchd.DAEMON_PLIST) == "/Library/LaunchDaemons/uk.classprobe.agent.plist"
    assert [c.argv for c in plan.commands()] == [
        ("launchctl", "bootout", "system/uk.classprobe.agent"),
        ("launchctl", "enable", "system/uk.classprobe.agent"),
        ("launchctl", "bootstrap", "system", "/Library/LaunchDaemons/uk.classprobe.agent.plist")]
    plist = next(s for s in plan.steps if isinstance(s, WriteFile)
                 and s.path == launchd.DAEMON_PLIST)
    assert (plist.mode, plist.owner) == (0o644, ("root", "wheel"))


def test_user_agent_plan():
    svc = service(AgentConfig(), "darwin", "user", python=PY)
    plan = launchd.install_plan(svc, b"cfg", PurePosixPath("/Users/pupil"), 501)
    agent_plist = PurePosixPath("/Users/pupil/Library/LaunchAgents/uk.classprobe.agent.plist")
    assert launchd.NEWSYSLOG_FILE not in plan.files()
    assert agent_plist in plan.files()
    assert plan.commands()[-1].argv == ("launchctl", "bootstrap", "gui/501", str(agent_plist))


def test_uninstall_plan():
    svc = service(AgentConfig(), "darwin", python=PY)
    assert launchd.uninstall_plan(svc, purge=False).steps == [
        Run(("launchctl", "bootout", "system/uk.classprobe.agent"), "stop the agent",
            may_fail=True),
        Remove(launchd.DAEMON_PLIST), Remove(launchd.NEWSYSLOG_FILE)]
    assert launchd.uninstall_plan(svc, purge=True).steps[3:] == [
        Remove(PurePosixPath(CONFIG)),
        Remove(PurePosixPath("/Library/Application Support/classprobe"), tree=True),
        Remove(PurePosixPath("/Library/Logs/classprobe"), tree=True)]
