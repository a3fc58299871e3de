"""Who calls the API: the principal the authentication middleware found, or ProGet's
`API_Key` property in a JSON body, or the signed-in person (with CSRF for writes)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware

from accounts.keys import api_key_authenticate
from accounts.models import ApiKey
from accounts.permissions import Principal
from api.http import ApiError

KEY_HELP = ("Send an API key in the X-ApiKey header, the key parameter, the API_Key property "
            "or Basic auth as api:<key>.")
MAX_KEY_LENGTH = 200


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request, reason):
        return reason


def api_principal(request: HttpRequest, fields: dict[str, Any] | None = None) -> Principal:
    """The caller; 403 for an API_Key that is not a live key."""
    raw = (fields or {}).get("API_Key")
    if raw is not None and not isinstance(raw, str):
        raise ApiError(400, "API_Key must be a string.")
    principal = getattr(request, "principal", None)
    if principal is not None:
        return principal
    if raw is not None:
        if not raw.isprintable() or len(raw) > MAX_KEY_LENGTH:
            raise ApiError(403, "The API key is not valid.")
        key = api_key_authenticate(raw.strip())
        if key is None:
            raise ApiError(403, "The API key is not valid (unknown, expired or revoked).")
        return Principal(user=key.user if key.kind == ApiKey.Kind.PERSONAL else None, api_key=key)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            # The session cookie authenticates this one: a write needs the CSRF token.
            reason = _CsrfCheck(lambda r: None).process_view(request, None, (), {})
            if reason:
                raise ApiError(403, f"CSRF check failed ({reason}). {KEY_HELP}")
        return Principal(user=user)
    return Principal.anonymous()


def authenticated(principal: Principal) -> Principal:
    """403 for Anonymous: writes always need a key or credentials."""
    if principal.is_anonymous:
        raise ApiError(403, f"An API key is required. {KEY_HELP}")
    return principal
