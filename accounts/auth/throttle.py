"""Sign-in throttling: backoff per client address and per account, never a lockout.

Two counts of recent failures, each with its own allowance and exponential backoff:
- per address (any user name): stops password spraying from one place; the wait grows to
  five minutes;
- per account (any address): slows guessing one password from many places; the wait is
  capped low (a minute), so failures someone else causes cannot lock a person out: they
  wait at most that long after the last failure.
Refused attempts are not counted. Counted in the database (not a per-process cache), so
every gunicorn worker and every web replica sees the same numbers. Used by the login page,
the API's Basic auth and the docker token service.
"""

from __future__ import annotations

import datetime as dt
import logging
import math

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from accounts.models import LoginFailure
from promoter import remote

log = logging.getLogger(__name__)

# The allowance per account and the window are settings (PROMOTER_LOGIN_MAX_FAILURES,
# PROMOTER_LOGIN_WINDOW_SECONDS); these are the rest.
ADDRESS_FREE = 20  # failures from one address within the window before any wait
ACCOUNT_MAX_DELAY = 60  # seconds
ADDRESS_MAX_DELAY = 5 * 60  # seconds
FIRST_DELAY = 5  # seconds of the first wait; each further failure doubles it

BLOCKED_MESSAGE = "Too many failed sign-in attempts. Wait a few minutes, then try again."


def _window() -> dt.timedelta:
    return dt.timedelta(seconds=settings.PROMOTER_LOGIN_WINDOW_SECONDS)


def client_address(request) -> str:
    """The client's address (X-Forwarded-For only from PROMOTER_TRUSTED_PROXIES)."""
    return remote.client_address(request)


def _key(username: str) -> str:
    return (username or "").strip().lower()[:150]


def _backoff(failures, free: int, cap: int, now: dt.datetime) -> float:
    """Seconds still to wait: FIRST_DELAY after `free` failures, doubling with each further
    one, at most `cap`, counted from the last failure."""
    count = failures.count()
    if count < free:
        return 0.0
    last = failures.order_by("-created_at").values_list("created_at", flat=True).first()
    delay = min(float(cap), FIRST_DELAY * 2.0 ** min(count - free, 30))
    return max(0.0, (last + dt.timedelta(seconds=delay) - now).total_seconds())


def login_wait(username: str, request) -> int:
    """Seconds before this user name may be tried from this address again (0: go ahead)."""
    now = timezone.now()
    recent = LoginFailure.objects.filter(created_at__gte=now - _window())
    address = client_address(request)
    # Nearly every sign-in (each API call with user:password) has no recent failure at all:
    # one indexed read answers it before the counting below.
    mine = Q(username=_key(username))
    if address:
        mine |= Q(address=address)
    if not recent.filter(mine).exists():
        return 0
    wait = _backoff(
        recent.filter(username=_key(username)),
        settings.PROMOTER_LOGIN_MAX_FAILURES,
        ACCOUNT_MAX_DELAY,
        now,
    )
    if address:
        wait = max(
            wait, _backoff(recent.filter(address=address), ADDRESS_FREE, ADDRESS_MAX_DELAY, now)
        )
    return math.ceil(wait)


def login_blocked(username: str, request) -> bool:
    """True while this user name, or this address, must wait before another try."""
    return login_wait(username, request) > 0


def login_failed(username: str, request) -> None:
    """Count one failure (and forget failures older than the window, for everyone)."""
    LoginFailure.objects.filter(created_at__lt=timezone.now() - _window()).delete()
    address = client_address(request)
    LoginFailure.objects.create(username=_key(username), address=address)
    log.warning("sign-in failed for %r from %s", _key(username), address or "unknown address")


def login_succeeded(username: str, request) -> None:
    """A correct password clears this account's failures from this address."""
    failures = LoginFailure.objects.filter(username=_key(username), address=client_address(request))
    if failures.exists():  # a read, not a write, for the usual sign-in with none to clear
        failures.delete()
