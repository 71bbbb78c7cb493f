"""Secrets at rest (webhook signing secrets): encrypted with Fernet (AES-128-CBC + HMAC-SHA256).

The key comes from ``MLHARBOR_SECRET_KEY`` (a Fernet key: ``python -c "from cryptography.fernet
import Fernet; print(Fernet.generate_key().decode())"``) — set it on every server of a team — or, in
the embedded default, from ``<home>/secret.key``, created with mode 0600 on first use. Losing the key
makes stored secrets unreadable (webhooks must then be re-created), never readable by others.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlharbor.errors import InvalidArgument

KEY_ENV = "MLHARBOR_SECRET_KEY"
KEY_FILE = "secret.key"


def _key(home: Path) -> bytes:
    from cryptography.fernet import Fernet

    env = os.environ.get(KEY_ENV)
    if env:
        return env.encode()
    path = home / KEY_FILE
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, Fernet.generate_key())
        finally:
            os.close(fd)
    return path.read_bytes().strip()


class SecretBox:
    """Encrypts and decrypts small secrets with the workspace key."""

    def __init__(self, home: Path) -> None:
        from cryptography.fernet import Fernet

        try:
            self._fernet = Fernet(_key(home))
        except ValueError as exc:
            raise InvalidArgument(f"{KEY_ENV} (or {home / KEY_FILE}) is not a valid Fernet key: {exc}") from None

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def decrypt(self, token: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise InvalidArgument("a stored secret cannot be decrypted with this key (was the key changed?)") from None
