"""``classprobe agent install`` and ``classprobe agent uninstall``.

``install`` enrols first when given ``--collector/--token/--room`` (through ``agent
enroll``'s own code), writes the service's config (with the spool in the platform's state
dir) and registers the service for this OS: a systemd unit, a launchd daemon or a Windows
scheduled task. ``--system`` (the default as root/Administrator) installs for the whole
machine, ``--user`` for the current user. ``--root DIR`` stages the files below DIR and runs
no command; ``--dry-run`` prints every file and command and changes nothing;
``--platform`` stages or prints another OS's files (with ``--root`` or ``--dry-run``).

Exit codes: 0 done; 1 a step failed (the message names it); 2 usage, configuration or
enrolment error (nothing changed).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TextIO

from agent.install.paths import PLATFORMS, AgentPaths, Mode, Platform, platform_family

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from agent.install.plan import Plan, Runner
    from agent.install.spec import AgentService

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_install_arguments(agent_subparsers: Any) -> None:
    """Register ``install`` and ``uninstall`` on the ``classprobe agent`` subparsers."""
    install = agent_subparsers.add_parser(
        "install", help="install the agent as a service (systemd, launchd, Windows task)")
    uninstall = agent_subparsers.add_parser("uninstall", help="stop and remove the service")
    for sub in (install, uninstall):
        who = sub.add_mutually_exclusive_group()
        who.add_argument("--system", action="store_true",
                         help="for the whole machine (default as root/Administrator)")
        who.add_argument("--user", action="store_true", help="for the current user only")
        sub.add_argument("--root", type=Path, default=None, metavar="DIR",
                         help="stage the files below DIR; run no command")
        sub.add_argument("--dry-run", action="store_true",
                         help="print every file and command; change nothing")
        sub.add_argument("--platform", choices=PLATFORMS, default=None,
                         help="another OS's files (needs --root or --dry-run)")
        sub.add_argument("--quiet", action="store_true",
                         help="print nothing but errors (silent deployment)")
    install.add_argument("--collector", help="enrol first: collector base URL")
    install.add_argument("--token", help="enrol first: the site's enrolment token")
    install.add_argument("--room", help="enrol first: the room this PC is in")
    install.add_argument("--ca-bundle", default=None,
                         help="PEM roots to trust for the collector (with --collector)")
    install.add_argument("--no-start", action="store_true",
                         help="register the service (it starts at boot) but do not start it now")
    install.add_argument("--python", default=None, metavar="PATH",
                         help="the interpreter the service runs (default: this one)")
    uninstall.add_argument("--purge", action="store_true",
                           help="also remove the config (credential) and the spool")


def is_privileged() -> bool:
    """root on POSIX, an elevated Administrator on Windows."""
    if hasattr(os, "geteuid"):
        return os.geteuid() == 0
    import ctypes

    return bool(ctypes.windll.shell32.IsUserAnAdmin())  # type: ignore[attr-defined]


def _fail(message: str, code: int = EXIT_USAGE) -> int:
    print(f"classprobe: {message}", file=sys.stderr)
    return code


def _check_usage(args: argparse.Namespace, platform: Platform, mode: Mode) -> str | None:
    staged = args.root is not None or args.dry_run
    if platform != platform_family(sys.platform) and not staged:
        return (f"--platform {platform} on this {platform_family(sys.platform)} machine "
                "needs --root DIR (stage the files) or --dry-run (print them)")
    if mode == "system" and not staged and not is_privileged():
        return ("the system service needs root (sudo) or an elevated Administrator prompt; "
                "use --user to install for the current user only")
    if args.action == "install":
        given = [f for f in ("collector", "token", "room") if getattr(args, f)]
        if given and len(given) != 3:
            missing = sorted({"collector", "token", "room"} - set(given))
            return "enrolling needs --collector, --token and --room; missing: " + \
                ", ".join("--" + m for m in missing)
    return None


def _load(path: Path) -> AgentConfig:
    from agent.config import load_config

    return load_config(path, environ={})  # the service's own file, not this shell's env


def _enrol(args: argparse.Namespace, config: Path, out: TextIO) -> int:
    """Enrol through ``agent enroll``'s code, saving to the service's config file."""
    from agent.cli import _enroll

    request = argparse.Namespace(collector=args.collector, token=args.token, room=args.room,
                                 ca_bundle=args.ca_bundle, json=False, config=config)
    with contextlib.redirect_stdout(out):
        return _enroll(request)


def _user_principal(environ: Mapping[str, str]) -> str:
    import getpass

    name = environ.get("USERNAME") or getpass.getuser()
    domain = environ.get("USERDOMAIN")
    return f"{domain}\\{name}" if domain else name


def _plan(svc: AgentService, config: bytes | None, purge: bool,
          environ: Mapping[str, str]) -> Plan:
    """The platform's install plan (``config`` given) or uninstall plan."""
    from agent.install import launchd, systemd, windows

    paths, user_mode = svc.paths, svc.paths.mode == "user"
    if paths.platform == "linux":
        unit_dir = systemd.user_unit_dir(paths.config_file.parent.parent) if user_mode else None
        return (systemd.install_plan(svc, config, unit_dir) if config is not None
                else systemd.uninstall_plan(svc, purge, unit_dir))
    if paths.platform == "darwin":
        home = PurePosixPath(Path.home()) if user_mode else None
        uid = getattr(os, "getuid", lambda: 501)() if user_mode else None
        return (launchd.install_plan(svc, config, home, uid) if config is not None
                else launchd.uninstall_plan(svc, purge, home, uid))
    user = _user_principal(environ) if user_mode else None
    return (windows.install_plan(svc, config, user) if config is not None
            else windows.uninstall_plan(svc, purge, user))


def _service_config(args: argparse.Namespace, config_file: Path,
                    out: TextIO) -> AgentConfig | int:
    """Enrol when asked, then the service's config (or an exit code when there is none)."""
    from agent.config import AgentConfig, ConfigError

    installing = args.action == "install"
    try:
        if installing and args.collector:
            if args.dry_run:
                print(f"enrol  with {args.collector} for room {args.room!r} "
                      f"(dry run: the collector is not contacted)", file=out)
            elif (code := _enrol(args, config_file, out)) != EXIT_OK:
                return code
        cfg = _load(config_file) if config_file.exists() else AgentConfig()
    except ConfigError as exc:
        if installing:
            return _fail(f"configuration error: {exc}")
        print(f"warning: {exc}; uninstalling with the default settings", file=out)
        return AgentConfig()
    if installing and not cfg.enrolled and not args.dry_run:
        return _fail(f"{config_file} has no enrolment: pass --collector URL --token T "
                     "--room R to enrol as part of the install")
    return cfg


def run_install_cli(args: argparse.Namespace, environ: Mapping[str, str] | None = None,
                    runner: Runner | None = None) -> int:
    """``agent install`` / ``agent uninstall`` (``args.action``); returns the exit code."""
    from dataclasses import replace

    from agent.config import AgentConfig, dumps
    from agent.install.paths import agent_paths, under_root
    from agent.install.plan import Execution, InstallError, execute, missing_programs, run_command
    from agent.install.spec import service_of

    env = os.environ if environ is None else environ
    platform: Platform = args.platform or platform_family(sys.platform)
    mode: Mode = "user" if args.user else "system" if args.system or is_privileged() else "user"
    if (problem := _check_usage(args, platform, mode)) is not None:
        return _fail(problem)
    installing = args.action == "install"
    paths = agent_paths(platform, mode)
    how = Execution(root=args.root, dry_run=args.dry_run,
                    start=not getattr(args, "no_start", False),
                    commands=platform == platform_family(sys.platform))
    python = getattr(args, "python", None) or sys.executable
    foreign_python = installing and not getattr(args, "python", None) and not how.commands
    out: TextIO = io.StringIO() if args.quiet else sys.stdout
    probe_plan = _plan(service_of(AgentConfig(), paths, python), b"" if installing else None,
                       False, env)
    if not args.dry_run and (missing := missing_programs(probe_plan, how)):
        return _fail(f"{', '.join(missing)} not found on PATH: this {platform} machine "
                     f"cannot {'install' if installing else 'remove'} a {_kind(paths)} here "
                     "(--root DIR stages the files without running anything)")
    config_file = under_root(paths.config_file, args.root)
    print(f"{'installing' if installing else 'uninstalling'} the classprobe agent: "
          f"{_kind(paths)} ({mode}){' — dry run, nothing is changed' if args.dry_run else ''}",
          file=out)
    found = _service_config(args, config_file, out)
    if isinstance(found, int):
        return found
    cfg = found
    config_bytes: bytes | None = None  # None: the uninstall plan
    if installing:
        cfg = replace(cfg, spool_dir=cfg.spool_dir or str(paths.spool_dir))
        config_bytes = dumps(cfg).encode("utf-8")
    svc = service_of(cfg, paths, python)
    plan = _plan(svc, config_bytes, getattr(args, "purge", False), env)
    try:
        warnings = execute(plan, how, out, runner or run_command)
    except InstallError as exc:
        return _fail(str(exc), EXIT_FAILED)
    if foreign_python:
        print(f"note: the service runs {python}, this machine's interpreter: pass --python "
              f"with the path on the {platform} machine", file=out)
    for warning in warnings:
        print(f"classprobe: warning: {warning}", file=sys.stderr)
    if not args.dry_run:
        print("done" + (f" (files staged below {args.root})" if args.root else ""), file=out)
    return EXIT_OK


def _kind(paths: AgentPaths) -> str:
    return {"linux": "systemd service", "darwin": "launchd daemon",
            "win32": "Windows scheduled task"}[paths.platform]

