from __future__ import annotations

import io
import logging
from pathlib import Path, PureWindowsPath

import pytest

from agent.install.logs import FILES, MAX_BYTES, configure_logging, log_dir_for
from agent.install.paths import WindowsDefaults

pytestmark = pytest.mark.usefixtures("restore_logging")
log = logging.getLogger("classprobe.test")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("var", ["INVOCATION_ID", "JOURNAL_STREAM"])
def test_under_systemd_logs_to_stderr_without_timestamps(tmp_path: Path, var: str):
    stream = io.StringIO()
    assert configure_logging(tmp_path / "logs", {var: "x"}, stream) is None
    log.info("hello %s", "journal")
    assert stream.getvalue() == "INFO classprobe.test: hello journal\n"
    assert not (tmp_path / "logs").exists()


def test_elsewhere_logs_to_a_file_in_the_log_dir(tmp_path: Path):
    stream = io.StringIO()
    path = configure_logging(tmp_path / "logs", {}, stream)
    assert path == tmp_path / "logs" / "agent.log"
    log.warning("to the file")
    assert path.read_text().endswith(" WARNING classprobe.test: to the file\n")
    assert stream.getvalue() == ""  # not a terminal: the file only


def test_a_terminal_also_sees_the_log(tmp_path: Path):
    stream = Terminal()
    configure_logging(tmp_path, {}, stream)
    log.info("both")
    assert stream.getvalue().endswith("INFO classprobe.test: both\n")
    assert (tmp_path / "agent.log").read_text().endswith("INFO classprobe.test: both\n")


def test_the_log_rotates_at_1_mb_and_keeps_5_files(tmp_path: Path):
    configure_logging(tmp_path, {}, io.StringIO())
    line = "x" * 1000
    for _ in range(6 * MAX_BYTES // 1000):  # 6 MB of records
        log.info(line)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["agent.log", "agent.log.1", "agent.log.2", "agent.log.3", "agent.log.4"]
    assert len(names) == FILES
    sizes = [(tmp_path / n).stat().st_size for n in names]
    assert all(size <= MAX_BYTES for size in sizes)
    assert all(size > MAX_BYTES - 2000 for size in sizes[1:])  # rotated ones were full


def test_an_unusable_log_dir_falls_back_to_stderr(tmp_path: Path):
    blocker = tmp_path / "logs"
    blocker.write_text("a file where the log dir should be")
    stream = io.StringIO()
    assert configure_logging(blocker, {}, stream) is None
    assert f"cannot log to {blocker / 'agent.log'}" in stream.getvalue()
    log.info("still logged")
    assert stream.getvalue().endswith("INFO classprobe.test: still logged\n")


def test_no_log_dir_logs_to_stderr_with_timestamps():
    stream = io.StringIO()
    assert configure_logging(None, {}, stream) is None
    log.info("plain")
    assert stream.getvalue().endswith(" INFO classprobe.test: plain\n")
    assert stream.getvalue()[:4].isdigit()  # asctime first


def test_log_dir_for_each_install():
    assert log_dir_for(Path("/etc/classprobe/agent.toml"), "linux") is None  # journald
    assert log_dir_for(Path("/Library/Application Support/classprobe/agent.toml"),
                       "darwin") == Path("/Library/Logs/classprobe")
    assert log_dir_for(Path("/tmp/elsewhere.toml"), "darwin") is None
    win = log_dir_for(Path(r"C:\ProgramData\classprobe\agent.toml"), "win32",
                      WindowsDefaults("pupil"))
    assert PureWindowsPath(str(win)) == PureWindowsPath(r"C:\ProgramData\classprobe\Logs")
    user = log_dir_for(Path(r"C:\Users\pupil\AppData\Local\classprobe\agent.toml"),
                       "win32", WindowsDefaults("pupil"))
    assert PureWindowsPath(str(user)) == \
        PureWindowsPath(r"C:\Users\pupil\AppData\Local\classprobe\Logs")
