"""Sign-in throttling: after too many failures for a user name from one address, refuse a while.

Counted in the database (not a per-process cache) so every gunicorn worker and every web
replica sees the same count. Used by the login page and by the token service's Basic auth.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.utils import timezone

from accounts.models import LoginFailure
from promoter import remote

log = logging.getLogger(__name__)


def _limits() -> tuple[int, dt.timedelta]:
    return (
        settings.PROMOTER_LOGIN_MAX_FAILURES,
        dt.timedelta(seconds=settings.PROMOTER_LOGIN_WINDOW_SECONDS),
    )


def client_address(request) -> str:
    """The client's address (X-Forwarded-For only from PROMOTER_TRUSTED_PROXIES)."""
    return remote.client_address(request)


def _key(username: str) -> str:
    return (username or "").strip().lower()[:150]


def login_blocked(username: str, request) -> bool:
    """True while `username` from this address has failed too often within the window."""
    limit, window = _limits()
    since = timezone.now() - window
    failures = LoginFailure.objects.filter(
        username=_key(username), address=client_address(request), created_at__gte=since
    )
    return failures.count() >= limit


def login_failed(username: str, request) -> None:
    """Count one failure (and forget failures older than the window, for everyone)."""
    _, window = _limits()
    LoginFailure.objects.filter(created_at__lt=timezone.now() - window).delete()
    address = client_address(request)
    LoginFailure.objects.create(username=_key(username), address=address)
    log.warning("sign-in failed for %r from %s", _key(username), address or "unknown address")


def login_succeeded(username: str, request) -> None:
    """A correct password clears the count for this user name and address."""
    LoginFailure.objects.filter(username=_key(username), address=client_address(request)).delete()


BLOCKED_MESSAGE = "Too many failed sign-in attempts. Wait a few minutes, then try again."
