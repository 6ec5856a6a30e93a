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
    return secrets.token_urlsafe(TOKEN_BYTES)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
