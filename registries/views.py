"""Pages of the index: registries, repositories, tags; health; the notification receiver."""

from __future__ import annotations

import hmac
import json
import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts.permissions import Principal
from registries import selectors
from registries.clients import bundled_client
from registries.images import describe_image
from registries.oci.errors import RegistryError
from registries.services import notification_apply

log = logging.getLogger(__name__)


def _principal(request: HttpRequest) -> Principal:
    return Principal.from_request(request)


@require_GET
def registry_list(request: HttpRequest) -> HttpResponse:
    registries = selectors.registry_list(principal=_principal(request))
    return render(request, "registries/registry_list.html", {"registries": registries})


@require_GET
def registry_detail(request: HttpRequest, registry: str) -> HttpResponse:
    principal = _principal(request)
    reg = selectors.registry_get(principal=principal, name=registry)
    query = request.GET.get("q", "")[:200]
    page = selectors.repository_page(registry=reg, query=query, page=request.GET.get("page", 1))
    context = {
        "registry": reg,
        "page_obj": page,
        "q": query,
        "query": _other_params(request),
        "promotions": selectors.promotions_for_registry(registry=reg),
        "can_manage": principal.has("manage_feed", reg),
    }
    if request.htmx and request.htmx.target == "repositories":
        return render(request, "registries/registry_detail.html#repositories", context)
    return render(request, "registries/registry_detail.html", context)


@require_GET
def repository_detail(request: HttpRequest, registry: str, repository: str) -> HttpResponse:
    reg = selectors.registry_get(principal=_principal(request), name=registry)
    repo = selectors.repository_get(registry=reg, name=repository)
    query = request.GET.get("q", "")[:200]
    page = selectors.tag_page(repository=repo, query=query, page=request.GET.get("page", 1))
    context = {
        "registry": reg,
        "repository": repo,
        "page_obj": page,
        "q": query,
        "query": _other_params(request),
    }
    if request.htmx and request.htmx.target == "tags":
        return render(request, "registries/repository_detail.html#tags", context)
    return render(request, "registries/repository_detail.html", context)


@require_GET
def tag_detail(request: HttpRequest, registry: str, repository: str, tag: str) -> HttpResponse:
    principal = _principal(request)
    reg = selectors.registry_get(principal=principal, name=registry)
    repo = selectors.repository_get(registry=reg, name=repository)
    tag_obj = selectors.tag_get(repository=repo, name=tag)
    image = f"{reg.pull_host}/{reg.backing_path(repo.name)}"
    tab = request.GET.get("tab", "overview")
    if tab not in {"overview", "history"}:
        tab = "overview"
    context = {
        "registry": reg,
        "repository": repo,
        "tag": tag_obj,
        "tab": tab,
        "pull_command": f"docker pull {image}@{tag_obj.digest}",
        "pull_tag_command": f"docker pull {image}:{tag_obj.name}",
        "can_promote": _can_promote_somewhere(principal, reg),
        "can_roll_back": bool(tag_obj.previous_digest) and principal.has("promote", reg),
    }
    if tab == "history":
        context["history"] = selectors.tag_history(
            principal=principal, tag=tag_obj, page=request.GET.get("page", 1)
        )
    else:
        context["image"] = selectors.tag_image(tag=tag_obj)
    if request.htmx and request.htmx.target == "tab-content":
        return render(request, "registries/tag_detail.html#tab-content", context)
    return render(request, "registries/tag_detail.html", context)


def _other_params(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


def _can_promote_somewhere(principal: Principal, registry) -> bool:
    if registry.promote_to_id:
        return principal.can_promote(registry, registry.promote_to)
    return any(
        principal.can_promote(registry, target)
        for target in principal.registries_with("promote").exclude(pk=registry.pk)
    )


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the backing registry answer, 503 naming what is down."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means "down"
        checks["database"] = f"down: {exc.__class__.__name__}"
    try:
        bundled_client().ping()
        checks["registry"] = "ok"
    except RegistryError as exc:
        checks["registry"] = f"down: {exc.message}"
    healthy = all(v == "ok" for v in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "down", **checks}, status=200 if healthy else 503
    )


@csrf_exempt
@require_POST
def registry_notifications(request: HttpRequest) -> JsonResponse:
    """Receiver of the backing registry's notifications (shared secret in Authorization)."""
    expected = f"Bearer {settings.PROMOTER_NOTIFY_SECRET}"
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return JsonResponse({"error": "unauthorized"}, status=401)
    try:
        envelope = json.loads(request.body)
        events = envelope.get("events", [])
        if not isinstance(events, list):
            raise ValueError("events is not a list")
    except (ValueError, AttributeError):
        return JsonResponse({"error": 'body must be {"events": [...]}'}, status=400)
    client = bundled_client()
    outcomes = []
    for event in events:
        if not isinstance(event, dict):
            outcomes.append("invalid")
            continue
        outcomes.append(
            notification_apply(
                event=event, describe=lambda path, ref: describe_image(client, path, ref)
            )
        )
    return JsonResponse({"outcomes": outcomes})


# --- error pages: plain words, never a stack trace ------------------------------
def page_not_found(request, exception=None):
    message = ""
    if exception is not None and exception.args and isinstance(exception.args[0], str):
        message = exception.args[0]
    return render(request, "404.html", {"message": message}, status=404)


def permission_denied(request, exception=None):
    message = ""
    if exception is not None and exception.args and isinstance(exception.args[0], str):
        message = exception.args[0]
    return render(request, "403.html", {"message": message}, status=403)


def server_error(request):
    return render(request, "500.html", status=500)
