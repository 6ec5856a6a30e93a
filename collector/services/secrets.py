"""Server secrets: random keys made once and kept in the database.

:func:`server_secret` returns the secret called ``name``. For ``"session"`` (the key that
signs admin session cookies) ``Settings.secret_key`` (``CLASSPROBE_SECRET_KEY``) wins when
it is set. Otherwise the first process that asks makes a random value and inserts it; a
process that loses the race to insert reads the winner's row, so every collector process
on one database signs with the same key.
"""

from __future__ import annotations

import base64
import secrets

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from collector.models import ServerSecret
from collector.settings import Settings

SECRET_BYTES = 32
SESSION = "session"
NAME_MAX = 50


class SecretError(Exception):
    """A stored secret that cannot be used (its name is given, never its value)."""


def server_secret(engine: Engine, name: str, settings: Settings | None = None) -> bytes:
    """The secret called ``name``: ``settings.secret_key`` for ``"session"`` when set, else
    the value stored in the database (made now with 32 random bytes if there is none)."""
    if not name or len(name) > NAME_MAX:
        raise ValueError(f"secret name {name!r} must be 1 to {NAME_MAX} characters")
    if name == SESSION and settings is not None and settings.secret_key is not None:
        configured = settings.secret_key.get_secret_value()
        if configured:
            return configured.encode("utf-8")
    stored = _read(engine, name)
    if stored is None:
        stored = _insert_or_read(engine, name, base64.b64encode(
            secrets.token_bytes(SECRET_BYTES)).decode("ascii"))
    return _decode(name, stored)


def store_secret(engine: Engine, name: str, value: bytes) -> bytes:
    """Keep ``value`` as the secret ``name`` unless one exists; return the one kept (for
    secrets that are not plain random bytes, e.g. a PEM key pair made by the caller)."""
    return _decode(name, _insert_or_read(engine, name,
                                         base64.b64encode(value).decode("ascii")))


def _read(engine: Engine, name: str) -> str | None:
    with Session(engine) as session:
        row = session.get(ServerSecret, name)
        return None if row is None else row.value


def _insert_or_read(engine: Engine, name: str, value: str) -> str:
    try:
        with Session(engine) as session:
            session.add(ServerSecret(name=name, value=value))
            session.commit()
        return value
    except IntegrityError:
        # Another process inserted it first: use theirs.
        stored = _read(engine, name)
        if stored is None:
            raise SecretError(f"server secret {name!r} could be neither stored nor read "
                              "back") from None
        return stored


def _decode(name: str, stored: str) -> bytes:
    try:
        return base64.b64decode(stored.encode("ascii"), validate=True)
    except ValueError as exc:
        raise SecretError(f"server secret {name!r} in table serversecret is not base64: "
                          "delete the row to make a new one") from exc
