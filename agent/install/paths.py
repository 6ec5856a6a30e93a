"""Where the agent's config, spool (state) and logs live, per OS and install mode.

System-wide (a service for the whole machine):

- Linux: ``/etc/classprobe/agent.toml``; state ``/var/lib/classprobe``; logs to journald.
- Windows: platformdirs' ``site_data_dir`` (``%ProgramData%\\classprobe``) for config and
  state; logs in its ``site_log_dir`` (``...\\classprobe\\Logs``).
- macOS: ``/Library/Application Support/classprobe`` for config and state; logs in
  ``/Library/Logs/classprobe``.

Per user: platformdirs' ``user_config_dir``, ``user_state_dir`` and (not on Linux, where the
user's systemd journal takes the logs) ``user_log_dir``. The spool is ``<state>/spool``.

The Linux system paths are systemd's, not platformdirs': the unit's ``ConfigurationDirectory=``
and ``StateDirectory=`` always mean ``/etc/<name>`` and ``/var/lib/<name>`` (platformdirs would
say ``/etc/xdg/classprobe``). The macOS system paths are fixed too, because platformdirs
prefers a Homebrew prefix when Python comes from Homebrew, and a LaunchDaemon must not depend
on how Python was installed.

Every function takes the platform (and the platformdirs object, ``dirs``) as parameters, so
tests compute every OS's paths on Linux. Paths are :class:`PurePath` of the target OS's
flavour; :func:`under_root` turns one into a real :class:`Path`, optionally below a staging
root (``--root DIR``, like ``DESTDIR``). platformdirs is imported only when ``dirs`` is not
given.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import Literal, Protocol

APP = "classprobe"
CONFIG_NAME = "agent.toml"

Platform = Literal["linux", "win32", "darwin"]
Mode = Literal["system", "user"]
PLATFORMS: tuple[Platform, ...] = ("linux", "win32", "darwin")


class Dirs(Protocol):
    """The part of a platformdirs object this module reads."""

    @property
    def user_config_dir(self) -> str: ...
    @property
    def user_state_dir(self) -> str: ...
    @property
    def user_log_dir(self) -> str: ...
    @property
    def site_data_dir(self) -> str: ...
    @property
    def site_log_dir(self) -> str: ...


@dataclass(frozen=True)
class AgentPaths:
    platform: Platform
    mode: Mode
    config_file: PurePath
    state_dir: PurePath
    """Persistent agent state: the spool and anything else the agent writes."""
    log_dir: PurePath | None
    """Where ``agent run`` keeps its rotated log; None: stderr, which the service manager
    (systemd's journal) collects and rotates."""

    @property
    def spool_dir(self) -> PurePath:
        return self.state_dir / "spool"


def platform_family(sys_platform: str) -> Platform:
    """``sys.platform`` → the service flavour: ``win32``, ``darwin``, else ``linux``
    (other Unix-likes get Linux paths; installing a service there fails on a missing
    ``systemctl`` with a clear message)."""
    if sys_platform in ("win32", "cygwin"):
        return "win32"
    if sys_platform == "darwin":
        return "darwin"
    return "linux"


@dataclass(frozen=True)
class WindowsDefaults:
    """Windows' default known folders, for staging Windows files on another OS (platformdirs
    asks Windows itself, which only works on Windows). Same layout as platformdirs."""

    user: str

    @property
    def _local(self) -> str:
        return f"C:\\Users\\{self.user}\\AppData\\Local\\{APP}"

    @property
    def user_config_dir(self) -> str:
        return self._local

    @property
    def user_state_dir(self) -> str:
        return self._local

    @property
    def user_log_dir(self) -> str:
        return self._local + "\\Logs"

    @property
    def site_data_dir(self) -> str:
        return f"C:\\ProgramData\\{APP}"

    @property
    def site_log_dir(self) -> str:
        return self.site_data_dir + "\\Logs"


def platform_dirs(platform: Platform) -> Dirs:
    """platformdirs' class for ``platform`` (which need not be the host's; Windows paths
    on another OS are :class:`WindowsDefaults`)."""
    if platform == "win32" and platform_family(sys.platform) != "win32":
        import getpass

        return WindowsDefaults(getpass.getuser())
    if platform == "win32":
        from platformdirs.windows import Windows

        return Windows(APP, appauthor=False)
    if platform == "darwin":
        from platformdirs.macos import MacOS

        return MacOS(APP, appauthor=False)
    from platformdirs.unix import Unix

    return Unix(APP, appauthor=False)


def pure_path(platform: Platform, raw: str) -> PurePath:
    return PureWindowsPath(raw) if platform == "win32" else PurePosixPath(raw)


LINUX_SYSTEM = AgentPaths("linux", "system", PurePosixPath("/etc/classprobe") / CONFIG_NAME,
                          PurePosixPath("/var/lib/classprobe"), None)
MACOS_SUPPORT = PurePosixPath("/Library/Application Support/classprobe")
MACOS_SYSTEM = AgentPaths("darwin", "system", MACOS_SUPPORT / CONFIG_NAME, MACOS_SUPPORT,
                          PurePosixPath("/Library/Logs/classprobe"))


def agent_paths(platform: Platform, mode: Mode, dirs: Dirs | None = None) -> AgentPaths:
    """The config file, state dir and log dir for ``platform`` in ``mode``.

    ``dirs`` defaults to platformdirs' object for ``platform``; tests pass one whose
    environment they control."""
    if mode == "system" and platform == "linux":
        return LINUX_SYSTEM
    if mode == "system" and platform == "darwin":
        return MACOS_SYSTEM
    d = platform_dirs(platform) if dirs is None else dirs
    p = pure_path
    if mode == "system":  # Windows: %ProgramData%\classprobe
        site = p(platform, d.site_data_dir)
        return AgentPaths(platform, mode, site / CONFIG_NAME, site, p(platform, d.site_log_dir))
    log_dir = None if platform == "linux" else p(platform, d.user_log_dir)
    return AgentPaths(platform, mode, p(platform, d.user_config_dir) / CONFIG_NAME,
                      p(platform, d.user_state_dir), log_dir)


def under_root(path: PurePath, root: Path | None) -> Path:
    """``path`` as a real path, below ``root`` when given (a drive letter becomes a
    directory: ``C:\\ProgramData\\x`` under ``/stage`` is ``/stage/C/ProgramData/x``)."""
    if root is None:
        return Path(path)
    drive = path.drive.rstrip(":")
    rest = path.parts[1:] if path.anchor else path.parts
    return root.joinpath(*([drive] if drive else []), *rest)


def default_config_file(sys_platform: str | None = None, dirs: Dirs | None = None) -> Path:
    """The per-user config file (``~/.config/classprobe/agent.toml`` on Linux,
    ``%LOCALAPPDATA%\\classprobe\\agent.toml`` on Windows, ``~/Library/Application
    Support/classprobe/agent.toml`` on macOS). The service's own config is passed to
    ``agent run`` with ``--config`` by the unit, plist or task."""
    platform = platform_family(sys.platform if sys_platform is None else sys_platform)
    return Path(agent_paths(platform, "user", dirs).config_file)
