"""Who calls the API: the principal the authentication middleware found, or ProGet's
`API_Key` property in a JSON body, or the signed-in person (with CSRF for writes).

Every view asks `api_principal`, so it is also where a system key limited to API areas is
kept to them: the area comes from the URL, a key outside its areas gets a 403 in the
endpoint's error style, and the principal it returns is bound to the area, so
`Principal.has` allows such a key only there.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware

from accounts.auth.keys import api_key_authenticate
from accounts.models import ApiArea, ApiKey
from accounts.permissions import Principal
from promoter.errors import Forbidden, Invalid, Unauthenticated

KEY_HELP = (
    "Send an API key in the X-ApiKey header, the key parameter, the API_Key property "
    "or Basic auth as api:<key>, or a person's user:password in X-ApiKey or Basic auth."
)
MAX_KEY_LENGTH = 200
# Which API area each endpoint belongs to, by path prefix.
AREA_PREFIXES = (
    ("/api/promotions/", ApiArea.PROMOTIONS),
    ("/api/management/feeds/", ApiArea.FEEDS),
    ("/api/api-keys/", ApiArea.API_KEYS),
)


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request, reason):
        return reason


def api_area(request: HttpRequest) -> str | None:
    """The API area of the endpoint the request calls; None for none of them."""
    for prefix, area in AREA_PREFIXES:
        if request.path.startswith(prefix):
            return area
    return None


def api_principal(request: HttpRequest, fields: dict[str, Any] | None = None) -> Principal:
    """The caller, acting in this endpoint's API area; 403 for an API_Key that is not a
    live key, or for a system key limited to other API areas."""
    principal = _caller(request, fields)
    area = api_area(request)
    key = principal.api_key
    if key is not None and not principal.api_area_allowed(area):
        where = f"the {area} API area" if area else "no API area"
        raise Forbidden(
            f"The API key {key.name} is limited to the API areas "
            f"{', '.join(key.areas)}; {request.path} is in {where}.",
        )
    return principal.in_api_area(area)


def _caller(request: HttpRequest, fields: dict[str, Any] | None) -> Principal:
    raw = (fields or {}).get("API_Key")
    if raw is not None and not isinstance(raw, str):
        raise Invalid("API_Key must be a string.")
    principal = getattr(request, "principal", None)
    if principal is not None:
        return principal
    if raw is not None:
        if not raw.isprintable() or len(raw) > MAX_KEY_LENGTH:
            raise Forbidden("The API key is not valid.")
        key = api_key_authenticate(raw.strip())
        if key is None:
            raise Forbidden("The API key is not valid (unknown, expired or revoked).")
        return Principal(user=key.user if key.kind == ApiKey.Kind.PERSONAL else None, api_key=key)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            # The session cookie authenticates this one: a write needs the CSRF token.
            reason = _CsrfCheck(lambda r: None).process_view(request, None, (), {})
            if reason:
                raise Forbidden(f"CSRF check failed ({reason}). {KEY_HELP}")
        return Principal(user=user)
    return Principal.anonymous()


def authenticated(principal: Principal) -> Principal:
    """401 for Anonymous: the API answers only callers with a key or credentials."""
    if principal.is_anonymous:
        raise Unauthenticated(f"An API key is required. {KEY_HELP}")
    return principal
