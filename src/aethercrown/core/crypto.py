"""Encryption for the few secrets that must be read back (webhook signing secrets)."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from functools import lru_cache

from cryptography.fernet import Fernet

from aethercrown.settings import Settings


class SecretBox:
    def __init__(self, secret_key: str) -> None:
        key = base64.urlsafe_b64encode(hashlib.sha256(secret_key.encode()).digest())
        self._fernet = Fernet(key)

    def seal(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def open(self, token: bytes) -> str:
        return self._fernet.decrypt(token).decode()


@lru_cache(maxsize=8)
def _box_for(secret_key: str) -> SecretBox:
    return SecretBox(secret_key)


def secret_box(settings: Settings) -> SecretBox:
    """The installation's box: AETHERCROWN_SECRET_KEY, else a key generated once into data_dir."""
    if settings.secret_key:
        return _box_for(settings.secret_key)
    path = settings.data_dir / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return _box_for(path.read_text().strip())
