"""The HTTP API: ProGet-compatible promotions, feed and API-key management, the description.

Thin views: parse (api.parsing / api.inputs), who (api.auth), an access check, one service
or selector call, an answer (api.serializers). Errors: see api.http.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts import selectors as account_selectors
from accounts.models import Permission
from accounts.services import api_key_create as accounts_api_key_create
from accounts.services import api_key_revoke as accounts_api_key_revoke
from api import inputs, parsing, serializers
from api.auth import api_principal, authenticated
from api.http import ApiError, api_view, error_response, json_response
from api.openapi import openapi_document
from registries import selectors
from registries.services import registries as feeds
from registries.services.promotions import promotion_request


# --- promotions (ProGet) ----------------------------------------------------------------
@csrf_exempt  # key-authenticated; a session caller is CSRF-checked in api_principal
@require_POST
@api_view
def promote(request: HttpRequest) -> HttpResponse:
    """Promote one image; waits for it (200/400) unless ?async=true (202 + Location)."""
    is_async = parsing.flag(parsing.query_fields(request), "async")
    fields = parsing.body_fields(request)
    principal = authenticated(api_principal(request, fields))
    order = inputs.promote_input(fields)
    source = selectors.registry_get(principal=principal, name=order.from_feed)
    target = selectors.promotion_target(source=source, name=order.to_feed)
    promotion = promotion_request(
        source=source,
        repository=order.repository,
        tag=order.version,
        target=target,
        actor=principal,
        comment=order.comment,
    )
    if is_async:
        promotion.refresh_from_db()
        return json_response(
            serializers.promotion_status(promotion),
            status=202,
            Location=serializers.status_url(promotion),
        )
    promotion = selectors.promotion_wait(
        promotion_id=promotion.pk, timeout=settings.PROMOTER_API_WAIT_SECONDS
    )
    if promotion.status == promotion.Status.FAILED:
        raise ApiError(400, f"The promotion failed: {promotion.error}")
    status = 200 if promotion.status == promotion.Status.SUCCEEDED else 202
    return json_response(
        serializers.promotion_status(promotion),
        status=status,
        Location=serializers.status_url(promotion),
    )


@csrf_exempt  # reads only; CSRF matters for writes (checked in api_principal)
@require_GET
@api_view
def promotion_list(request: HttpRequest) -> HttpResponse:
    """Succeeded promotions, grouped by image (packageName, groupName, version)."""
    query = parsing.query_fields(request)
    where = selectors.PromotionFilter(
        from_feed=parsing.text(query, "fromFeed") or None,
        to_feed=parsing.text(query, "toFeed") or None,
        group=parsing.text(query, "group", "groupName") or None,
        package=parsing.text(query, "package", "packageName") or None,
        version=parsing.text(query, "version") or None,
    )
    packages = selectors.promoted_packages(principal=api_principal(request), where=where)
    return json_response([serializers.promoted_package(*p) for p in packages])


@csrf_exempt  # reads only; CSRF matters for writes (checked in api_principal)
@require_GET
@api_view
def promotion_status(request: HttpRequest, promotion_id: str) -> HttpResponse:
    """Status and progress of one promotion."""
    promotion = selectors.promotion_get(
        principal=api_principal(request), promotion_id=_id(promotion_id, "promotion")
    )
    return json_response(serializers.promotion_status(promotion))


def _id(value: str, what: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise ApiError(404, f"There is no {what} {value!r}.")
    return int(value)


# --- feeds (registries) -----------------------------------------------------------------
@csrf_exempt  # reads only; CSRF matters for writes (checked in api_principal)
@require_GET
@api_view
def feed_list(request: HttpRequest) -> HttpResponse:
    principal = authenticated(api_principal(request))
    return json_response(
        [serializers.feed(r) for r in selectors.registries_managed(principal=principal)]
    )


@csrf_exempt  # reads only; CSRF matters for writes (checked in api_principal)
@require_GET
@api_view
def feed_get(request: HttpRequest, name: str) -> HttpResponse:
    principal = authenticated(api_principal(request))
    registry = selectors.registry_get(
        principal=principal, name=name, permission=Permission.MANAGE_FEED
    )
    return json_response(serializers.feed(registry))


@csrf_exempt
@require_POST
@api_view
def feed_create(request: HttpRequest) -> HttpResponse:
    fields = parsing.body_fields(request, forms=False)
    principal = authenticated(api_principal(request, fields))
    name, values = inputs.feed_input(fields, creating=True)
    registry = feeds.registry_create(name=name, actor=principal, values=values)
    return json_response(serializers.feed(registry), status=201)


@csrf_exempt
@require_POST
@api_view
def feed_update(request: HttpRequest, name: str) -> HttpResponse:
    fields = parsing.body_fields(request, forms=False)
    principal = authenticated(api_principal(request, fields))
    registry = selectors.registry_get(
        principal=principal, name=name, permission=Permission.MANAGE_FEED
    )
    new_name, values = inputs.feed_input(fields, creating=False)
    if new_name is not None and new_name != registry.name:
        raise ApiError(400, "A feed cannot be renamed; create a new one instead.")
    registry = feeds.registry_update(registry=registry, actor=principal, values=values)
    return json_response(serializers.feed(registry))


@csrf_exempt
@require_POST
@api_view
def feed_delete(request: HttpRequest, name: str) -> HttpResponse:
    fields = parsing.body_fields(request, forms=False)
    principal = authenticated(api_principal(request, fields))
    registry = selectors.registry_get(
        principal=principal, name=name, permission=Permission.ADMINISTER
    )
    feeds.registry_delete(registry=registry, actor=principal)
    return json_response({"deleted": name})


# --- API keys ---------------------------------------------------------------------------
@csrf_exempt
@require_POST
@api_view
def api_key_create(request: HttpRequest) -> HttpResponse:
    """Create a key; the answer carries the secret, once."""
    fields = parsing.body_fields(request, forms=False)
    principal = authenticated(api_principal(request, fields))
    order = inputs.api_key_input(fields)
    registries = [selectors.registry_get(principal=principal, name=n) for n in order.feeds]
    user = None
    if order.user:
        user = get_user_model().objects.filter(username=order.user).first()
        if user is None:
            raise ApiError(404, f"There is no user called {order.user!r}.")
    key, secret = accounts_api_key_create(
        name=order.name,
        kind=order.kind,
        actor=principal,
        description=order.description,
        user=user,
        registries=registries,
        permissions=order.permissions,
        areas=order.areas,
        expires_at=order.expires_at,
    )
    return json_response(serializers.api_key(key, secret=secret), status=201)


@csrf_exempt  # reads only; CSRF matters for writes (checked in api_principal)
@require_GET
@api_view
def api_key_list(request: HttpRequest) -> HttpResponse:
    """Keys without their secrets: all for administrators, a person's own otherwise."""
    keys = account_selectors.api_keys_for(principal=authenticated(api_principal(request)))
    return json_response([serializers.api_key(k) for k in keys])


@csrf_exempt
@require_POST
@api_view
def api_key_delete(request: HttpRequest, api_key_id: str) -> HttpResponse:
    """Revoke a key at once (it stays listed, with its revocation date)."""
    fields = parsing.body_fields(request, forms=False)
    principal = authenticated(api_principal(request, fields))
    key = account_selectors.api_key_for(principal=principal, api_key_id=_id(api_key_id, "API key"))
    key = accounts_api_key_revoke(api_key=key, actor=principal)
    return json_response(serializers.api_key(key))


# --- description ------------------------------------------------------------------------
@csrf_exempt
@require_GET
def openapi_json(request: HttpRequest) -> HttpResponse:
    return json_response(openapi_document(server=request.build_absolute_uri("/")[:-1]))


@csrf_exempt
@require_GET
def docs(request: HttpRequest) -> HttpResponse:
    """The OpenAPI document rendered for people."""
    from api.openapi import docs_context

    context = docs_context(openapi_document())
    # The examples name this instance, as the reader reaches it, not a placeholder host.
    base = request.build_absolute_uri("/").rstrip("/")
    context["example"] = context["example"].replace("https://promoter.example.com", base)
    return render(request, "api/docs.html", context)


@csrf_exempt
def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Unknown /api/ paths answer in the API's style, not with the HTML 404 page."""
    return error_response(request, 404, f"There is no API endpoint {request.path}.")
