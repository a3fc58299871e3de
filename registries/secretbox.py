"""Webhook signing secrets encrypted at rest (Fernet).

The key is PROMOTER_CREDENTIALS_KEY when the settings define it (the key that encrypts
stored registry credentials), else one derived from SECRET_KEY, which every node shares
already. Several comma-separated keys rotate: the first encrypts, any of them decrypts.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

PREFIX = "fernet:"
# Keeps these keys apart from any other use of the same secret.
CONTEXT = b"promoter webhook secrets\0"


@lru_cache(maxsize=4)
def _cipher(keys: str) -> MultiFernet:
    secrets = [k.strip() for k in keys.split(",") if k.strip()]
    return MultiFernet(
        [
            Fernet(base64.urlsafe_b64encode(hashlib.sha256(CONTEXT + s.encode()).digest()))
            for s in secrets
        ]
    )


def _current() -> MultiFernet:
    return _cipher(getattr(settings, "PROMOTER_CREDENTIALS_KEY", "") or settings.SECRET_KEY)


def seal(plain: str) -> str:
    """The stored form of a secret ("" stays "")."""
    if not plain:
        return ""
    return PREFIX + _current().encrypt(plain.encode()).decode("ascii")


class SecretUnreadable(Exception):
    """No configured key opens the stored secret (the key changed)."""


def unseal(stored: str) -> str:
    """The plain secret; SecretUnreadable when the keys changed."""
    if not stored:
        return ""
    if not stored.startswith(PREFIX):
        raise SecretUnreadable("not an encrypted secret")
    try:
        return _current().decrypt(stored[len(PREFIX) :].encode("ascii")).decode()
    except (InvalidToken, ValueError) as exc:
        raise SecretUnreadable("no configured key opens this secret") from exc
