"""Administrator accounts for the web pages: scrypt password hashes, create / disable /
new password / authenticate.

A password is stored only as ``scrypt$n$r$p$salt_b64$hash_b64`` (``hashlib.scrypt`` with
n=2**14, r=8, p=1, a random 16-byte salt, a 32-byte hash, standard base64). It is never
stored, logged or put in an error message in clear. Checking compares in constant time,
and an unknown user costs the same scrypt as a known one, so the time taken does not say
whether a user exists.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from sqlmodel import Session, col, select

from collector.models import AdminLogin, AdminUser, utcnow

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
SCHEME = "scrypt"
PASSWORD_MIN = 12
PASSWORD_MAX = 1024
USERNAME_MAX = 100


class PasswordHashError(ValueError):
    """A stored hash that is not ``scrypt$16384$8$1$salt$hash`` (says what is wrong)."""


class UserError(ValueError):
    """A bad user name or password, or an unknown user (never contains a password)."""


class LoginFailed(Exception):
    """Wrong user name or password, or a disabled user: deliberately says no more."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R,
                          p=SCRYPT_P, dklen=HASH_BYTES)


def hash_password(password: str) -> str:
    """``scrypt$16384$8$1$<salt>$<hash>`` for ``password`` with a fresh random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    return f"{SCHEME}${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(_scrypt(password, salt))}"


def parse_hash(stored: str) -> tuple[bytes, bytes]:
    """The salt and hash of a stored password hash, or a :class:`PasswordHashError`."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        raise PasswordHashError("password hash is not in the form scrypt$n$r$p$salt$hash "
                                f"({len(parts)} '$'-separated fields, scheme {parts[0]!r})")
    expected = [str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P)]
    if parts[1:4] != expected:
        raise PasswordHashError(f"password hash has scrypt parameters n={parts[1]} "
                                f"r={parts[2]} p={parts[3]}; this collector uses "
                                f"n={SCRYPT_N} r={SCRYPT_R} p={SCRYPT_P}")
    try:
        salt = base64.b64decode(parts[4], validate=True)
        digest = base64.b64decode(parts[5], validate=True)
    except binascii.Error as exc:
        raise PasswordHashError(f"password hash salt or hash is not base64: {exc}") from exc
    if len(salt) != SALT_BYTES or len(digest) != HASH_BYTES:
        raise PasswordHashError(f"password hash has a {len(salt)}-byte salt and a "
                                f"{len(digest)}-byte hash; expected {SALT_BYTES} and "
                                f"{HASH_BYTES}")
    return salt, digest


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (constant-time comparison)."""
    salt, digest = parse_hash(stored)
    return hmac.compare_digest(_scrypt(password, salt), digest)


def check_username(username: str) -> str:
    name = username.strip()
    if not name or len(name) > USERNAME_MAX or not name.isprintable():
        raise UserError(f"user name {username!r} must be 1 to {USERNAME_MAX} printable "
                        "characters")
    return name


def check_new_password(password: str) -> None:
    if len(password) < PASSWORD_MIN:
        raise UserError(f"the password has {len(password)} characters; at least "
                        f"{PASSWORD_MIN} are needed")
    if len(password) > PASSWORD_MAX:
        raise UserError(f"the password has {len(password)} characters; at most "
                        f"{PASSWORD_MAX} are accepted")


def find_user(session: Session, username: str) -> AdminUser | None:
    return session.exec(select(AdminUser).where(AdminUser.username == username)).first()


def create_user(session: Session, username: str, password: str) -> AdminUser:
    """A new administrator; the password must be at least 12 characters."""
    name = check_username(username)
    check_new_password(password)
    if find_user(session, name) is not None:
        raise UserError(f"user {name!r} already exists")
    user = AdminUser(username=name, password_hash=hash_password(password))
    session.add(user)
    session.commit()
    session.refresh(user)
    return user


def _existing(session: Session, username: str) -> AdminUser:
    user = find_user(session, username.strip())
    if user is None:
        raise UserError(f"no user called {username.strip()!r}")
    return user


def _end_sessions(session: Session, user: AdminUser) -> None:
    now = utcnow()
    for login in session.exec(select(AdminLogin).where(
            AdminLogin.user_id == user.id, col(AdminLogin.ended_at).is_(None))).all():
        login.ended_at = now
        session.add(login)


def disable_user(session: Session, username: str) -> AdminUser:
    """Stop ``username`` logging in and end every session it has open."""
    user = _existing(session, username)
    user.disabled = True
    session.add(user)
    _end_sessions(session, user)
    session.commit()
    session.refresh(user)
    return user


def set_password(session: Session, username: str, password: str) -> AdminUser:
    """Give ``username`` a new password and end its open sessions (a disabled user stays
    disabled)."""
    user = _existing(session, username)
    check_new_password(password)
    user.password_hash = hash_password(password)
    session.add(user)
    _end_sessions(session, user)
    session.commit()
    session.refresh(user)
    return user


_DUMMY_SALT = bytes(SALT_BYTES)


def authenticate_user(session: Session, username: str, password: str) -> AdminUser:
    """The enabled user with this name and password, or :class:`LoginFailed`.

    An unknown user name still costs one scrypt, so timing does not tell who exists.
    """
    user = find_user(session, username.strip())
    if user is None or len(password) > PASSWORD_MAX:
        _scrypt(password[:PASSWORD_MAX], _DUMMY_SALT)
        raise LoginFailed
    ok = verify_password(password, user.password_hash)
    if not ok or user.disabled:
        raise LoginFailed
    return user
