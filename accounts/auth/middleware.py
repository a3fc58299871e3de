"""API authentication: an API key, or a person's Basic user:password, on the API only.

A key is accepted in the `X-ApiKey` header, the `key` query or form value, or as Basic auth
with the user name `api`; a person's `user:password` in Basic auth or in `X-ApiKey`. The
result is `request.principal` (accounts.permissions.Principal), which views read through
`Principal.from_request`. The docker token service reads Basic credentials itself.

Only the API (/api/, and ProGet's /health) looks at keys and Basic credentials. Pages know
people by their session, with the full CSRF check: a browser resends a cached Basic
credential with a cross-site form, and a request authenticated that way skips CSRF.

CSRF on the API: a request that authenticates with a key or Basic credentials is not
authenticated by its cookies, so it is exempt from the CSRF check; `request.user` is
replaced by the key's user (or Anonymous) so that nothing in such a request acts on the
session's user. Cookie-only requests keep the full CSRF check.

Keys in query strings are redacted from the access logs (accounts.auth.redact).
"""

from __future__ import annotations

import base64
import binascii

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, JsonResponse

from accounts.auth import redact
from accounts.auth.basic import (
    API_USER,
    BadCredentials,
    Throttled,
    principal_from_basic,
    principal_from_credentials,
)
from accounts.auth.keys import api_key_authenticate
from accounts.permissions import Principal

API_PREFIX = "/api/"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def presented_key(request: HttpRequest) -> str | None:
    """The raw API key the request carries outside Basic auth, if any."""
    if key := request.headers.get("X-ApiKey"):
        return key.strip()
    if key := request.GET.get("key"):
        return key.strip()
    if request.method == "POST" and request.content_type in FORM_TYPES:
        if key := request.POST.get("key"):
            return key.strip()
    return None


def authenticate_request(request: HttpRequest) -> Principal | None:
    """The principal the request's key or Basic credentials name; None when it presents none.

    Raises BadCredentials for a key or password that does not check out.
    """
    raw = presented_key(request)
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic ") and (raw is not None or "X-ApiKey" in request.headers):
        # Two credentials: the key decides, but a malformed Basic header is still bad input.
        _basic_well_formed(header)
    username, colon, password = (request.headers.get("X-ApiKey") or "").partition(":")
    if colon:
        # ProGet reads `X-ApiKey: user:password` as credentials (pgutil's --username and
        # --password); keys never hold a colon.
        return principal_from_credentials(username, password, request)
    if raw is not None:
        key = api_key_authenticate(raw)
        if key is None:
            raise BadCredentials("unknown, expired or revoked API key")
        user = key.user if key.kind == key.Kind.PERSONAL else None
        return Principal(user=user, api_key=key)
    if header.lower().startswith("basic "):
        return principal_from_basic(header, request)
    return None


def _basic_well_formed(header: str) -> None:
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise BadCredentials("malformed Basic credentials") from exc
    if ":" not in decoded:
        raise BadCredentials("malformed Basic credentials")


class ApiAuthenticationMiddleware:
    """Sets `request.principal` from an API key or Basic credentials (after auth middleware)."""

    def __init__(self, get_response):
        self.get_response = get_response
        redact.install()

    def __call__(self, request: HttpRequest):
        # The API, and ProGet's health object at the root: nowhere else.
        if request.path == "/health" or request.path.startswith(API_PREFIX):
            try:
                principal = authenticate_request(request)
            except BadCredentials as exc:
                if not request.path.startswith(API_PREFIX):
                    # /health answers everyone (its documented answers have no 403); bad
                    # credentials there just count for nothing.
                    return self.get_response(request)
                status = 429 if isinstance(exc, Throttled) else 403
                response = JsonResponse({"error": f"authentication failed: {exc}"}, status=status)
                if isinstance(exc, Throttled):
                    response["Retry-After"] = str(exc.retry_after)
                return response
            if principal is not None:
                request.principal = principal
                # Not cookie-authenticated: no CSRF check, and never the session's user.
                request._dont_enforce_csrf_checks = True
                user = principal.user if principal.user is not None else AnonymousUser()
                request.user = user

                async def auser():
                    return user

                request.auser = auser
                request.api_authenticated = True
        return self.get_response(request)


__all__ = ["API_USER", "ApiAuthenticationMiddleware", "authenticate_request", "presented_key"]
