"""API key secrets: generation, hashing, and constant-time lookup."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from django.db.models import Q
from django.utils import timezone

from accounts.models import ApiKey

PREFIX_LENGTH = 8
LAST_USED_PRECISION = dt.timedelta(minutes=1)  # a key's "last used" is recorded this coarsely


def key_generate() -> str:
    """A new random key; shown once, stored only as a hash."""
    return "pk_" + secrets.token_urlsafe(32)


def key_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", errors="replace")).hexdigest()


def api_key_authenticate(raw: str | None) -> ApiKey | None:
    """The live (not revoked, not expired) key matching `raw`, or None; records last use."""
    if not raw or len(raw) > 200 or not raw.isprintable():
        return None  # control characters (NUL) never reach the database
    digest = key_hash(raw)
    now = timezone.now()
    candidates = (
        ApiKey.objects.filter(key_prefix=raw[:PREFIX_LENGTH], revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .select_related("user")
    )
    for key in candidates:
        if hmac.compare_digest(key.key_hash, digest):
            if key.user is not None and not key.user.is_active:
                return None
            if key.last_used_at is None or now - key.last_used_at >= LAST_USED_PRECISION:
                # To the minute: a write per call would cost every API call a write (on
                # SQLite, the database's one write lock).
                ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            return key
    return None
