"""Helpers shared by the install tests."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent.config import AgentConfig, save_config
from agent.install.cli import add_install_arguments
from agent.install.paths import Dirs, Mode, Platform, WindowsDefaults, agent_paths, under_root
from agent.install.spec import AgentService, service_of

CREDENTIAL = "install-test-credential"


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse like ``classprobe agent ...`` once agent/cli.py registers the subcommands."""
    parser = argparse.ArgumentParser(prog="classprobe")
    top = parser.add_subparsers(dest="command", required=True)
    add_install_arguments(top.add_parser("agent").add_subparsers(dest="action", required=True))
    return parser.parse_args(argv)


def service(cfg: AgentConfig | None = None, platform: Platform = "linux",
            mode: Mode = "system", python: str = sys.executable,
            dirs: Dirs | None = None) -> AgentService:
    if platform == "win32" and dirs is None:
        dirs = WindowsDefaults("pupil")
    return service_of(cfg or AgentConfig(), agent_paths(platform, mode, dirs), python)


def enrolled(**fields: object) -> AgentConfig:
    cfg = AgentConfig(collector_url="https://collector.test", agent_id="agent-7",
                      credential=CREDENTIAL, site="Test School", room="Room 12")
    for key, value in fields.items():
        setattr(cfg, key, value)
    return cfg


def stage_config(root: Path, platform: Platform = "linux", mode: Mode = "system",
                 **fields: object) -> Path:
    """An enrolled config where the install will look for it below ``root``."""
    path = under_root(agent_paths(platform, mode).config_file, root)
    save_config(path, enrolled(**fields))
    return path


def tree(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` (relative POSIX path → content)."""
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}
