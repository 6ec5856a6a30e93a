from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest
from platformdirs.macos import MacOS
from platformdirs.unix import Unix
from platformdirs.windows import Windows

from agent.config import default_config_path
from agent.install.paths import (
    APP,
    AgentPaths,
    WindowsDefaults,
    agent_paths,
    default_config_file,
    platform_family,
    under_root,
)

P, W = PurePosixPath, PureWindowsPath


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_DIRS",
                "XDG_DATA_DIRS"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_linux_system_paths_are_systemds():
    assert agent_paths("linux", "system") == AgentPaths(
        "linux", "system", P("/etc/classprobe/agent.toml"), P("/var/lib/classprobe"), None)
    assert agent_paths("linux", "system").spool_dir == P("/var/lib/classprobe/spool")


def test_macos_system_paths():
    assert agent_paths("darwin", "system") == AgentPaths(
        "darwin", "system", P("/Library/Application Support/classprobe/agent.toml"),
        P("/Library/Application Support/classprobe"), P("/Library/Logs/classprobe"))


def test_windows_system_paths_are_programdata():
    assert agent_paths("win32", "system", WindowsDefaults("pupil")) == AgentPaths(
        "win32", "system", W(r"C:\ProgramData\classprobe\agent.toml"),
        W(r"C:\ProgramData\classprobe"), W(r"C:\ProgramData\classprobe\Logs"))


def test_windows_defaults_match_platformdirs(monkeypatch: pytest.MonkeyPatch):
    # platformdirs' documented override variables stand in for Windows' known folders.
    monkeypatch.setenv("WIN_PD_OVERRIDE_COMMON_APPDATA", r"C:\ProgramData")
    monkeypatch.setenv("WIN_PD_OVERRIDE_LOCAL_APPDATA", r"C:\Users\pupil\AppData\Local")
    real = Windows(APP, appauthor=False)
    for mode in ("system", "user"):
        assert agent_paths("win32", mode, real) == \
            agent_paths("win32", mode, WindowsDefaults("pupil"))
    assert agent_paths("win32", "user", real) == AgentPaths(
        "win32", "user", W(r"C:\Users\pupil\AppData\Local\classprobe\agent.toml"),
        W(r"C:\Users\pupil\AppData\Local\classprobe"),
        W(r"C:\Users\pupil\AppData\Local\classprobe\Logs"))


def test_linux_user_paths_follow_xdg(clean_env: pytest.MonkeyPatch):
    clean_env.setenv("HOME", "/home/pupil")
    assert agent_paths("linux", "user", Unix(APP, appauthor=False)) == AgentPaths(
        "linux", "user", P("/home/pupil/.config/classprobe/agent.toml"),
        P("/home/pupil/.local/state/classprobe"), None)
    clean_env.setenv("XDG_CONFIG_HOME", "/cfg")
    clean_env.setenv("XDG_STATE_HOME", "/state")
    paths = agent_paths("linux", "user", Unix(APP, appauthor=False))
    assert (paths.config_file, paths.spool_dir) == (P("/cfg/classprobe/agent.toml"),
                                                    P("/state/classprobe/spool"))


def test_macos_user_paths(clean_env: pytest.MonkeyPatch):
    clean_env.setenv("HOME", "/Users/pupil")
    assert agent_paths("darwin", "user", MacOS(APP, appauthor=False)) == AgentPaths(
        "darwin", "user", P("/Users/pupil/Library/Application Support/classprobe/agent.toml"),
        P("/Users/pupil/Library/Application Support/classprobe"),
        P("/Users/pupil/Library/Logs/classprobe"))


def test_default_dirs_without_injection_are_platformdirs(clean_env: pytest.MonkeyPatch):
    clean_env.setenv("HOME", "/home/pupil")
    assert agent_paths("linux", "user").config_file == \
        P("/home/pupil/.config/classprobe/agent.toml")


@pytest.mark.parametrize(("raw", "family"), [
    ("linux", "linux"), ("win32", "win32"), ("cygwin", "win32"), ("darwin", "darwin"),
    ("freebsd14", "linux")])
def test_platform_family(raw: str, family: str):
    assert platform_family(raw) == family


def test_under_root(tmp_path: Path):
    assert under_root(P("/etc/classprobe/agent.toml"), None) == Path("/etc/classprobe/agent.toml")
    assert under_root(P("/etc/classprobe/agent.toml"), tmp_path) == \
        tmp_path / "etc" / "classprobe" / "agent.toml"
    assert under_root(W(r"C:\ProgramData\classprobe\agent.toml"), tmp_path) == \
        tmp_path / "C" / "ProgramData" / "classprobe" / "agent.toml"


def test_default_config_path_keeps_the_environment_variable_first(
        clean_env: pytest.MonkeyPatch, tmp_path: Path):
    clean_env.setenv("HOME", "/home/pupil")
    assert default_config_path({"CLASSPROBE_AGENT_CONFIG": str(tmp_path / "c.toml")}) == \
        tmp_path / "c.toml"
    assert default_config_path({}) == Path("/home/pupil/.config/classprobe/agent.toml")
    clean_env.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert default_config_path({}) == tmp_path / "cfg" / "classprobe" / "agent.toml"


def test_default_config_file_on_macos(clean_env: pytest.MonkeyPatch):
    clean_env.setenv("HOME", "/Users/pupil")
    assert default_config_file("darwin") == \
        Path("/Users/pupil/Library/Application Support/classprobe/agent.toml")
