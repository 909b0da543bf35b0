"""Bearer tokens: random, shown once, stored only as a SHA-256 hash.

A token is ``mia_`` followed by 43 url-safe characters (256 random bits). The prefix lets
secret scanners and log redaction recognise it. SHA-256 (not a slow hash) is right here: the
token is high-entropy, so the hash only has to make a stolen database useless.
"""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "mia_"
_LENGTH = len(PREFIX) + 43


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def looks_like_token(token: str) -> bool:
    return token.startswith(PREFIX) and len(token) == _LENGTH
