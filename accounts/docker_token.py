"""The docker token service: the registry asks it what a client may do."""

from __future__ import annotations

import base64
import binascii
import datetime as dt

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from accounts.auth.credentials import user_for_password
from accounts.auth.keys import api_key_authenticate
from accounts.auth.throttle import BLOCKED_MESSAGE, login_blocked, login_failed, login_succeeded
from accounts.models import Permission
from accounts.permissions import Principal
from accounts.tokens import mint_token, parse_scope

API_USER = "api"


class BadCredentials(Exception):
    pass


class Throttled(BadCredentials):
    """Too many failed passwords for this user name from this address: refused a while."""


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
    if username.lower() == API_USER:
        key = api_key_authenticate(secret)
        if key is None:
            raise BadCredentials("unknown, expired or revoked API key")
        user = key.user if key.kind == key.Kind.PERSONAL else None
        return Principal(user=user, api_key=key)
    if login_blocked(username, request):
        raise Throttled(BLOCKED_MESSAGE)
    user = user_for_password(username, secret)
    if user is None:
        login_failed(username, request)
        raise BadCredentials("wrong user name or password")
    login_succeeded(username, request)
    return Principal(user=user)


def granted_actions(principal: Principal, scope: dict) -> list[str]:
    """The subset of the scope's actions the principal holds (grant less, never fail)."""
    from registries.selectors import registry_for_path

    if scope["type"] == "registry":
        if scope["name"] == "catalog" and principal.is_administrator():
            return [a for a in scope["actions"] if a == "*"]
        return []
    if scope["type"] != "repository":
        return []
    found = registry_for_path(scope["name"])
    if found is None:
        return []
    registry, _ = found
    allowed = []
    for action in scope["actions"]:
        if action == "pull" and principal.has(Permission.VIEW, registry):
            allowed.append(action)
        elif action == "push" and principal.can_push(registry):
            allowed.append(action)
        elif action == "delete" and principal.has(Permission.DELETE, registry):
            allowed.append(action)
    return allowed


def access_for(principal: Principal, scopes: list[str]) -> list[dict]:
    access = []
    for raw in scopes:
        for part in raw.split(" "):
            scope = parse_scope(part) if part else None
            if scope is None:
                continue
            actions = granted_actions(principal, scope)
            if actions:
                access.append({"type": scope["type"], "name": scope["name"], "actions": actions})
    return access


@require_GET
def docker_token(request: HttpRequest) -> JsonResponse:
    """GET realm?service=&scope=… → a signed JWT with the intersection of scope and privileges."""
    try:
        principal = principal_from_basic(request.headers.get("Authorization", ""), request)
    except Throttled as exc:
        response = JsonResponse(
            {"errors": [{"code": "TOOMANYREQUESTS", "message": str(exc)}]}, status=429
        )
        response["Retry-After"] = "60"
        return response
    except BadCredentials as exc:
        response = JsonResponse(
            {"errors": [{"code": "UNAUTHORIZED", "message": f"authentication failed: {exc}"}]},
            status=401,
        )
        response["WWW-Authenticate"] = 'Basic realm="Promoter"'
        return response
    principal = principal or Principal.anonymous()
    access = access_for(principal, request.GET.getlist("scope"))
    token, expires_in = mint_token(subject=principal.token_subject, access=access)
    issued = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return JsonResponse(
        {"token": token, "access_token": token, "expires_in": expires_in, "issued_at": issued}
    )
