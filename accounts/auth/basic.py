"""Basic credentials: `user:password`, or `api:<key>`, for the API and the token service."""

from __future__ import annotations

import base64
import binascii

from django.http import HttpRequest

from accounts.auth.credentials import user_for_password
from accounts.auth.keys import api_key_authenticate
from accounts.auth.throttle import BLOCKED_MESSAGE, login_failed, login_succeeded, login_wait
from accounts.permissions import Principal

API_USER = "api"


class BadCredentials(Exception):
    pass


class Throttled(BadCredentials):
    """Too many failed passwords for this account or from this address: wait a while."""

    def __init__(self, message: str, *, retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def principal_from_basic(header: str, request: HttpRequest | None = None) -> Principal | None:
    """Principal for a `Basic user:password` or `Basic api:<key>` header; None when absent."""
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise BadCredentials("malformed Basic credentials") from exc
    username, sep, secret = decoded.partition(":")
    if not sep:
        raise BadCredentials("malformed Basic credentials")
    return principal_from_credentials(username, secret, request)


def principal_from_credentials(
    username: str, secret: str, request: HttpRequest | None = None
) -> Principal:
    """Principal for `user` + password, or `api` + key (throttled like every sign-in)."""
    if username.lower() == API_USER:
        key = api_key_authenticate(secret)
        if key is None:
            raise BadCredentials("unknown, expired or revoked API key")
        user = key.user if key.kind == key.Kind.PERSONAL else None
        return Principal(user=user, api_key=key)
    if wait := login_wait(username, request):
        raise Throttled(BLOCKED_MESSAGE, retry_after=wait)
    user = user_for_password(username, secret)
    if user is None:
        login_failed(username, request)
        raise BadCredentials("wrong user name or password")
    login_succeeded(username, request)
    return Principal(user=user)
