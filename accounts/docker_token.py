"""The docker token service: the registry asks it what a client may do."""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from accounts.auth.basic import BadCredentials, Throttled, principal_from_basic
from accounts.models import Permission
from accounts.permissions import Principal
from accounts.tokens import mint_token, parse_scope


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
        response["Retry-After"] = str(exc.retry_after)
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
