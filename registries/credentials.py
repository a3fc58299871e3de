"""Registry passwords encrypted at rest (Fernet, key from PROMOTER_CREDENTIALS_KEY).

The database and its backups hold only ciphertext; the plain password exists in memory while
a client for that registry is built. Several comma-separated keys rotate: the first one
encrypts, any of them decrypts.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models

log = logging.getLogger(__name__)
PREFIX = "fernet:"


class Undecryptable(str):
    """A stored secret no configured key opens: reads as "", but is written back unchanged,
    so saving the registry never destroys it."""

    def __new__(cls, ciphertext: str) -> Undecryptable:
        instance = super().__new__(cls, "")
        instance.ciphertext = ciphertext
        return instance


def _fernet_key(secret: str) -> bytes:
    # Any long random string is accepted; Fernet wants 32 url-safe base64 bytes.
    return base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest())


@lru_cache(maxsize=4)
def _cipher(keys: str) -> MultiFernet:
    secrets = [k.strip() for k in keys.split(",") if k.strip()]
    return MultiFernet([Fernet(_fernet_key(s)) for s in secrets])


def _current() -> MultiFernet:
    return _cipher(settings.PROMOTER_CREDENTIALS_KEY)


def encrypt(plain: str) -> str:
    """The stored form of a secret ("" stays "")."""
    if not plain:
        return ""
    return PREFIX + _current().encrypt(plain.encode()).decode("ascii")


def decrypt(stored: str) -> str:
    """The plain secret; a value from before encryption is returned as it is."""
    if not stored or not stored.startswith(PREFIX):
        return stored or ""
    try:
        return _current().decrypt(stored[len(PREFIX) :].encode("ascii")).decode()
    except (InvalidToken, ValueError):
        log.error("a stored registry password cannot be decrypted; check PROMOTER_CREDENTIALS_KEY")
        return Undecryptable(stored)


class EncryptedTextField(models.TextField):
    """A text field stored encrypted; Python code sees the plain value."""

    def from_db_value(self, value, expression, connection):
        return decrypt(value) if value is not None else value

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if isinstance(value, Undecryptable):
            return value.ciphertext
        if value is None or value == "":
            return value
        return encrypt(value)
