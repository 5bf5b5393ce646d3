"""Password hashes for protected links and API keys."""

from __future__ import annotations

import hashlib

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def hash_api_key(secret: str) -> str:
    """API keys are long random secrets: a fast digest is enough and keeps lookups O(1)."""
    return hashlib.sha256(secret.encode()).hexdigest()
