"""``classprobe collector admin-user create|password|disable NAME``."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from sqlmodel import Session

from collector.cli import main
from collector.db import init_db, make_engine
from collector.services.users import LoginFailed, authenticate_user

PASSWORD = "a good long password"


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/cli.db"


class Prompts:
    """Answers for getpass, in order; the prompts asked are kept in ``asked``."""

    def __init__(self) -> None:
        self.answers: list[str] = []
        self.asked: list[str] = []

    def __call__(self, prompt: str) -> str:
        self.asked.append(prompt)
        if not self.answers:
            raise EOFError
        return self.answers.pop(0)


@pytest.fixture
def prompts(monkeypatch: pytest.MonkeyPatch) -> Prompts:
    fake = Prompts()
    monkeypatch.setattr("collector.cli_users.getpass.getpass", fake)
    return fake


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["collector", "admin-user", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def can_log_in(db: str, name: str, password: str) -> bool:
    engine = make_engine(db)
    init_db(engine)
    with Session(engine) as session:
        try:
            authenticate_user(session, name, password)
        except LoginFailed:
            return False
    return True


def test_create_with_password_stdin(capsys: pytest.CaptureFixture[str], db: str,
                                    monkeypatch: pytest.MonkeyPatch,
                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    code, out, err = run(capsys, "create", "alice", "--password-stdin", "--db", db)
    assert (code, out, err) == (
        0, "user 'alice' created: log in at /login on the collector\n", "")
    assert can_log_in(db, "alice", PASSWORD)
    assert PASSWORD not in caplog.text


def test_create_asks_twice(capsys: pytest.CaptureFixture[str], db: str,
                           prompts: Prompts) -> None:
    prompts.answers.extend([PASSWORD, PASSWORD])
    code, out, _ = run(capsys, "create", "alice", "--db", db)
    assert code == 0 and PASSWORD not in out
    assert prompts.asked == ["New password (at least 12 characters): ",
                             "The same password again: "]
    assert can_log_in(db, "alice", PASSWORD)


@pytest.mark.parametrize(("answers", "message"), [
    ([PASSWORD, PASSWORD + "!"], "the two passwords are not the same; nothing was changed"),
    (["too short", "too short"], "the password has 9 characters; at least 12 are needed"),
    ([], "no password given"),
])
def test_create_refuses(capsys: pytest.CaptureFixture[str], db: str, prompts: Prompts,
                        answers: list[str], message: str) -> None:
    prompts.answers.extend(answers)
    code, out, err = run(capsys, "create", "alice", "--db", db)
    assert (code, out, err) == (1, "", f"classprobe collector: {message}\n")
    assert not can_log_in(db, "alice", PASSWORD)


def test_password_stdin_checks(capsys: pytest.CaptureFixture[str], db: str,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, _, err = run(capsys, "create", "alice", "--password-stdin", "--db", db)
    assert (code, err) == (1, "classprobe collector: --password-stdin: standard input is "
                              "empty\n")
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    code, _, err = run(capsys, "create", "alice", "--password-stdin", "--db", db)
    assert (code, err) == (1, "classprobe collector: the password has 5 characters; at "
                              "least 12 are needed\n")


def test_existing_user_is_refused_before_asking(capsys: pytest.CaptureFixture[str], db: str,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 prompts: Prompts) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert run(capsys, "create", "alice", "--password-stdin", "--db", db)[0] == 0
    code, _, err = run(capsys, "create", "alice", "--db", db)
    assert (code, err) == (1, "classprobe collector: user 'alice' already exists\n")
    assert prompts.asked == []


def test_new_password_and_disable(capsys: pytest.CaptureFixture[str], db: str,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    run(capsys, "create", "alice", "--password-stdin", "--db", db)
    monkeypatch.setattr("sys.stdin", io.StringIO("another long password\n"))
    code, out, _ = run(capsys, "password", "alice", "--password-stdin", "--db", db)
    assert (code, out) == (0, "user 'alice' has a new password; its open sessions have "
                              "ended\n")
    assert not can_log_in(db, "alice", PASSWORD)
    assert can_log_in(db, "alice", "another long password")

    code, out, _ = run(capsys, "disable", "alice", "--db", db)
    assert (code, out) == (0, "user 'alice' disabled: it can no longer log in and its open "
                              "sessions have ended\n")
    assert not can_log_in(db, "alice", "another long password")


@pytest.mark.parametrize("action", ["disable", "password"])
def test_unknown_user(capsys: pytest.CaptureFixture[str], db: str, action: str) -> None:
    code, _, err = run(capsys, action, "nobody", "--db", db)
    assert (code, err) == (1, "classprobe collector: no user called 'nobody'\n")
