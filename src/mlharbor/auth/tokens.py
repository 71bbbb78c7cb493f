"""API token secrets: random, shown once, stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import replace

from mlharbor.core.entities import ApiToken

TOKEN_PREFIX = "mlh_"


def new_secret() -> str:
    """A fresh token secret with 256 bits of randomness."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """The SHA-256 hex digest stored in place of the secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def display_prefix(secret: str) -> str:
    """The first characters of a secret, safe to list so users can tell tokens apart."""
    return secret[: len(TOKEN_PREFIX) + 6]


def token_view(token: ApiToken) -> ApiToken:
    """A token record with its hash blanked, for display and for clients."""
    return replace(token, token_hash="")
