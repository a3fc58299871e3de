"""Password checks for Basic auth, with a short-lived in-process cache of verified pairs.

Docker clients and scripts send user:password with every token or API request; PBKDF2
costs about a second and a half per check on a small machine, which would cap the token
service near one request per second. A verified (user, password) pair is remembered for a
few minutes under an HMAC that also covers the stored password hash, so changing the
password (or deactivating the user) takes effect at once.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import OrderedDict

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password

TTL_SECONDS = 300
MAX_ENTRIES = 4096
_verified: OrderedDict[str, float] = OrderedDict()
_lock = threading.Lock()


def _fingerprint(user, password: str) -> str:
    message = f"{user.pk}\0{user.password}\0{password}".encode("utf-8", "surrogatepass")
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def _remembered(fingerprint: str) -> bool:
    now = time.monotonic()
    with _lock:
        expires = _verified.get(fingerprint)
        if expires is None:
            return False
        if expires < now:
            del _verified[fingerprint]
            return False
        return True


def _remember(fingerprint: str) -> None:
    with _lock:
        _verified[fingerprint] = time.monotonic() + TTL_SECONDS
        _verified.move_to_end(fingerprint)
        while len(_verified) > MAX_ENTRIES:
            _verified.popitem(last=False)


def user_for_password(username: str, password: str):
    """The active user with this user name and password, or None."""
    users = get_user_model()
    try:
        user = users._default_manager.get_by_natural_key(username)
    except users.DoesNotExist:
        make_password(password)  # same cost as a real check: no user-name oracle by timing
        return None
    if not user.is_active:
        return None
    fingerprint = _fingerprint(user, password)
    if _remembered(fingerprint):
        return user
    if not user.check_password(password):
        return None
    _remember(_fingerprint(user, password))  # the hash may have been upgraded just now
    return user


def forget_all() -> None:
    """Drop every remembered pair (tests)."""
    with _lock:
        _verified.clear()
