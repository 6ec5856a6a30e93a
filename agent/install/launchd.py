"""macOS launchd: a LaunchDaemon (system) or LaunchAgent (user) plist, log rotation.

The daemon runs at boot and is restarted by launchd after a crash or a non-zero exit
(``KeepAlive``: ``SuccessfulExit = false``, ``Crashed = true``), at most every 30 s
(``ThrottleInterval``). It runs as root: macOS has no sysusers equivalent, and a hidden
role account would need several ``dscl`` calls and a free uid below 500 — left for a
package installer.

Logs: ``agent run`` writes its own rotated ``agent.log`` (:mod:`agent.install.logs`) in
``/Library/Logs/classprobe``; launchd's ``stdout.log``/``stderr.log`` beside it only catch
what is printed before logging starts (a traceback), and a ``newsyslog.d`` file rotates
them (5 × 1 MB). launchd reopens them only when it starts the agent again, so after a
rotation a running agent keeps writing to the rotated file — acceptable for crash output.
"""

from __future__ import annotations

import plistlib
from pathlib import PurePath, PurePosixPath
from typing import Any

from agent.install.plan import MakeDir, Plan, Remove, Run, Step, WriteFile
from agent.install.spec import AgentService

LABEL = "uk.classprobe.agent"
DAEMON_PLIST = PurePosixPath("/Library/LaunchDaemons") / f"{LABEL}.plist"
NEWSYSLOG_FILE = PurePosixPath("/etc/newsyslog.d") / f"{LABEL}.conf"
ROOT_OWNER = ("root", "wheel")
ROTATE_COUNT = 5
ROTATE_KB = 1024


def plist_path(user_mode: bool, home: PurePath | None = None) -> PurePath:
    if not user_mode:
        return DAEMON_PLIST
    if home is None:
        raise ValueError("a per-user LaunchAgent needs the user's home directory")
    return home / "Library" / "LaunchAgents" / f"{LABEL}.plist"


def _log_dir(svc: AgentService) -> PurePath:
    if svc.paths.log_dir is None:
        raise ValueError("macOS paths always have a log directory")
    return svc.paths.log_dir


def plist_dict(svc: AgentService) -> dict[str, Any]:
    logs = _log_dir(svc)
    return {
        "Label": LABEL,
        "ProgramArguments": svc.argv(),
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False, "Crashed": True},
        "ThrottleInterval": 30,
        "WorkingDirectory": str(svc.paths.state_dir),
        "Umask": 0o077,
        "StandardOutPath": str(logs / "stdout.log"),
        "StandardErrorPath": str(logs / "stderr.log"),
    }


def render_plist(svc: AgentService) -> bytes:
    return plistlib.dumps(plist_dict(svc), fmt=plistlib.FMT_XML, sort_keys=False)


def newsyslog_conf(svc: AgentService) -> str:
    """newsyslog.conf(5) lines: rotate at 1 MB, keep 5, no process to signal (``N``)."""
    logs = _log_dir(svc)
    owner = ":".join(ROOT_OWNER)
    lines = ["# classprobe agent: launchd's stdout/stderr files (agent.log rotates itself).",
             "# logfilename  [owner:group]  mode  count  size(KB)  when  flags"]
    lines += [f"{logs / name}  {owner}  640  {ROTATE_COUNT}  {ROTATE_KB}  *  N"
              for name in ("stdout.log", "stderr.log")]
    return "\n".join(lines) + "\n"


def _domain(user_mode: bool, uid: int | None) -> str:
    if not user_mode:
        return "system"
    if uid is None:
        raise ValueError("a per-user LaunchAgent needs the user's uid (launchctl gui/UID)")
    return f"gui/{uid}"


def install_plan(svc: AgentService, config: bytes, home: PurePath | None = None,
                 uid: int | None = None) -> Plan:
    """Write config, plist (and the newsyslog file for the daemon); bootstrap it.

    ``home`` and ``uid``: the user's, for a per-user LaunchAgent."""
    user_mode = svc.paths.mode == "user"
    plist = plist_path(user_mode, home)
    domain = _domain(user_mode, uid)
    owner = None if user_mode else ROOT_OWNER
    dirs = dict.fromkeys([svc.paths.config_file.parent, svc.paths.state_dir, _log_dir(svc)])
    steps: list[Step] = [MakeDir(d, 0o700 if user_mode else 0o755, owner) for d in dirs]
    steps.append(WriteFile(svc.paths.config_file, config, 0o600, owner, secret=True))
    if not user_mode:
        steps.append(WriteFile(NEWSYSLOG_FILE, newsyslog_conf(svc).encode(), 0o644, owner))
    steps += [
        WriteFile(plist, render_plist(svc), 0o644, owner),
        Run(("launchctl", "bootout", f"{domain}/{LABEL}"), "stop a running agent",
            start=True, may_fail=True),
        Run(("launchctl", "enable", f"{domain}/{LABEL}"), "clear a 'disabled' override"),
        Run(("launchctl", "bootstrap", domain, str(plist)), "load and start the agent",
            start=True),
    ]
    return Plan(steps, [f"logs: {_log_dir(svc) / 'agent.log'}"])


def uninstall_plan(svc: AgentService, purge: bool, home: PurePath | None = None,
                   uid: int | None = None) -> Plan:
    user_mode = svc.paths.mode == "user"
    domain = _domain(user_mode, uid)
    steps: list[Step] = [
        Run(("launchctl", "bootout", f"{domain}/{LABEL}"), "stop the agent", may_fail=True),
        Remove(plist_path(user_mode, home)),
    ]
    if not user_mode:
        steps.append(Remove(NEWSYSLOG_FILE))
    if not purge:
        return Plan(steps, [f"kept {svc.paths.state_dir} and {_log_dir(svc)} "
                            "(--purge removes them)"])
    steps += [Remove(svc.paths.config_file), Remove(svc.paths.state_dir, tree=True),
              Remove(_log_dir(svc), tree=True)]
    return Plan(steps)
