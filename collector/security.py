"""Secrets: enrolment tokens and agent credentials.

Both are high-entropy random strings (``secrets.token_urlsafe``), so a plain SHA-256 is
enough to store them: the database holds only the hex digest and lookups go by digest.
Neither is ever stored or logged in clear.
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_BYTES = 32


def new_secret() -> str:
    """A random URL-safe secret that never starts with ``-``: one in 64 did, and a command
    line reads ``--token -Zk...`` as an option (the footprint benchmark tripped on it)."""
    while True:
        secret = secrets.token_urlsafe(TOKEN_BYTES)
        if not secret.startswith("-"):
            return secret


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
