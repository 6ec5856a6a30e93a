"""Administrator API keys: the credential for the collector's admin API.

A key is a random secret shown once when it is made (``classprobe collector admin-key
create``); the database keeps only its SHA-256. Requests send it as
``Authorization: Bearer <key>``. Revoking a key takes effect on the next request.
"""

from __future__ import annotations

from sqlmodel import Session, select

from collector.models import AdminKey
from collector.security import new_secret, secret_hash


class AdminAuthError(Exception):
    """A missing, unknown or revoked admin key; the message says which (never the key)."""


def create_admin_key(session: Session, name: str) -> str:
    """Make a key called ``name``; return the secret (the only time it is visible)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ValueError(f"admin key name {name!r} must be 1 to 100 characters")
    key = new_secret()
    session.add(AdminKey(name=name, key_hash=secret_hash(key)))
    session.commit()
    return key


def revoke_admin_key(session: Session, name: str) -> int:
    """Revoke every key called ``name``; return how many were revoked."""
    keys = session.exec(select(AdminKey).where(AdminKey.name == name,
                                               AdminKey.revoked == False)).all()  # noqa: E712
    for key in keys:
        key.revoked = True
        session.add(key)
    session.commit()
    return len(keys)


def authenticate_admin(session: Session, key: str) -> AdminKey:
    found = session.exec(select(AdminKey).where(AdminKey.key_hash == secret_hash(key))).first()
    if found is None:
        raise AdminAuthError("admin key not recognised: make one with "
                             "'classprobe collector admin-key create NAME'")
    if found.revoked:
        raise AdminAuthError(f"admin key {found.name!r} has been revoked")
    return found
