"""Admin accounts (scrypt hashes, create / disable / authenticate) and server secrets."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import Session, select

from collector.db import init_db, make_engine
from collector.models import AdminUser, ServerSecret
from collector.services import secrets as secrets_service
from collector.services.secrets import SecretError, server_secret, store_secret
from collector.services.users import (
    LoginFailed,
    PasswordHashError,
    UserError,
    authenticate_user,
    create_user,
    disable_user,
    hash_password,
    parse_hash,
    set_password,
    verify_password,
)
from collector.settings import Settings

PASSWORD = "a long enough passphrase"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "users.db"


@pytest.fixture
def engine(db_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{db_path}")
    init_db(engine)
    return engine


@pytest.fixture
def session(engine: Engine) -> Session:
    return Session(engine)


def test_hash_format_and_parameters() -> None:
    stored = hash_password(PASSWORD)
    scheme, n, r, p, salt_b64, hash_b64 = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    salt = base64.b64decode(salt_b64, validate=True)
    assert len(salt) == 16 and len(salt_b64) == 24
    expected = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    assert base64.b64decode(hash_b64, validate=True) == expected
    assert parse_hash(stored) == (salt, expected)
    assert hash_password(PASSWORD) != stored  # a fresh salt each time
    assert PASSWORD not in stored


def test_verify_password() -> None:
    stored = hash_password(PASSWORD)
    assert verify_password(PASSWORD, stored) is True
    assert verify_password(PASSWORD + " ", stored) is False
    assert verify_password("", stored) is False


SALT = base64.b64encode(bytes(16)).decode()
DIGEST = base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize(("stored", "message"), [
    (f"scrypt$1024$8$1${SALT}${DIGEST}",
     "password hash has scrypt parameters n=1024 r=8 p=1; this collector uses n=16384 r=8 p=1"),
    (f"scrypt$16384$16$2${SALT}${DIGEST}", "scrypt parameters n=16384 r=16 p=2"),
    (f"bcrypt$16384$8$1${SALT}${DIGEST}",
     "password hash is not in the form scrypt$n$r$p$salt$hash (6 '$'-separated fields, "
     "scheme 'bcrypt')"),
    ("a plain password", "(1 '$'-separated fields, scheme 'a plain password')"),
    (f"scrypt$16384$8$1${SALT}", "(5 '$'-separated fields"),
    (f"scrypt$16384$8$1$not base64!${DIGEST}", "password hash salt or hash is not base64"),
    (f"scrypt$16384$8$1${base64.b64encode(bytes(8)).decode()}${DIGEST}",
     "password hash has a 8-byte salt and a 32-byte hash; expected 16 and 32"),
])
def test_malformed_hash_is_a_clear_error(stored: str, message: str) -> None:
    with pytest.raises(PasswordHashError) as err:
        verify_password(PASSWORD, stored)
    assert message in str(err.value)


def test_create_and_authenticate(session: Session) -> None:
    user = create_user(session, "  alice ", PASSWORD)
    assert (user.username, user.disabled) == ("alice", False)
    assert authenticate_user(session, "alice", PASSWORD).id == user.id
    for name, password in (("alice", "wrong password 1"), ("bob", PASSWORD),
                           ("alice", PASSWORD.upper()), ("alice", "x" * 5000)):
        with pytest.raises(LoginFailed) as err:
            authenticate_user(session, name, password)
        assert str(err.value) == ""  # says nothing about which part was wrong


@pytest.mark.parametrize(("name", "password", "message"), [
    ("carol", "elevenchars", "the password has 11 characters; at least 12 are needed"),
    ("carol", "x" * 1025, "the password has 1025 characters; at most 1024 are accepted"),
    ("   ", PASSWORD, "user name '   ' must be 1 to 100 printable characters"),
    ("a\nb", PASSWORD, "must be 1 to 100 printable characters"),
    ("x" * 101, PASSWORD, "must be 1 to 100 printable characters"),
])
def test_create_refuses_bad_input(session: Session, name: str, password: str,
                                  message: str) -> None:
    with pytest.raises(UserError) as err:
        create_user(session, name, password)
    assert message in str(err.value)
    assert password not in str(err.value)
    assert session.exec(select(AdminUser)).all() == []


def test_create_refuses_a_duplicate(session: Session) -> None:
    create_user(session, "alice", PASSWORD)
    with pytest.raises(UserError, match="user 'alice' already exists"):
        create_user(session, "alice", "another password 2")


def test_disabled_user_cannot_authenticate(session: Session) -> None:
    create_user(session, "alice", PASSWORD)
    assert disable_user(session, "alice").disabled is True
    with pytest.raises(LoginFailed):
        authenticate_user(session, "alice", PASSWORD)
    with pytest.raises(UserError, match="no user called 'nobody'"):
        disable_user(session, "nobody")


def test_set_password(session: Session) -> None:
    create_user(session, "alice", PASSWORD)
    set_password(session, "alice", "the new passphrase")
    with pytest.raises(LoginFailed):
        authenticate_user(session, "alice", PASSWORD)
    assert authenticate_user(session, "alice", "the new passphrase").username == "alice"
    with pytest.raises(UserError, match="at least 12"):
        set_password(session, "alice", "short")


def test_password_is_not_in_the_database_file(session: Session, engine: Engine,
                                              db_path: Path) -> None:
    create_user(session, "alice", PASSWORD)
    session.close()
    engine.dispose()
    stored = b"".join(p.read_bytes() for p in db_path.parent.glob("users.db*"))
    assert b"alice" in stored and b"scrypt$16384$8$1$" in stored  # the file was read
    assert PASSWORD.encode() not in stored


def test_server_secret_is_made_once_and_shared(engine: Engine, db_path: Path) -> None:
    first = server_secret(engine, "session")
    assert len(first) == 32
    assert server_secret(engine, "session") == first
    other_process = make_engine(f"sqlite:///{db_path}")
    assert server_secret(other_process, "session") == first
    assert server_secret(engine, "another") not in (first, b"")


def test_server_secret_race_reads_the_winner(engine: Engine, db_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    winner = server_secret(engine, "session")
    real_read = secrets_service._read
    calls: list[str] = []

    def read_before_the_other_insert(engine: Engine, name: str) -> str | None:
        calls.append(name)  # the first read happens before the other process inserted
        return None if len(calls) == 1 else real_read(engine, name)

    monkeypatch.setattr(secrets_service, "_read", read_before_the_other_insert)
    loser = make_engine(f"sqlite:///{db_path}")
    assert server_secret(loser, "session") == winner
    assert calls == ["session", "session"]


def test_server_secret_from_settings(engine: Engine) -> None:
    settings = Settings(secret_key=SecretStr("configured key"))
    assert server_secret(engine, "session", settings) == b"configured key"
    assert server_secret(engine, "signing_key", settings) != b"configured key"
    with Session(engine) as session:
        names = [s.name for s in session.exec(select(ServerSecret)).all()]
    assert names == ["signing_key"]  # the configured key is not stored
    assert server_secret(engine, "session", Settings(secret_key=SecretStr(""))) not in (
        b"", b"configured key")
    assert "configured key" not in repr(settings)


def test_store_secret_keeps_the_first(engine: Engine) -> None:
    assert store_secret(engine, "signing_key", b"PEM one") == b"PEM one"
    assert store_secret(engine, "signing_key", b"PEM two") == b"PEM one"
    assert server_secret(engine, "signing_key") == b"PEM one"


def test_bad_secret_rows_and_names(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(ServerSecret(name="broken", value="not base64!"))
        session.commit()
    with pytest.raises(SecretError, match="server secret 'broken' in table serversecret is "
                                          "not base64"):
        server_secret(engine, "broken")
    with pytest.raises(ValueError, match="secret name '' must be 1 to 50 characters"):
        server_secret(engine, "")
