"""Health and the error pages: plain words, never a stack trace."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from registries.services.health import health_checks, liveness_checks


def _answer(checks: dict[str, str]) -> JsonResponse:
    healthy = all(v == "ok" for v in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "down", **checks}, status=200 if healthy else 503
    )


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: 200 when this process and its database answer (the registry may be down)."""
    return _answer(liveness_checks())


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when the database, the backing registry and its identity are right."""
    return _answer(health_checks())


def _message(exception) -> str:
    if exception is not None and exception.args and isinstance(exception.args[0], str):
        return exception.args[0]
    return ""


def bad_request(request, exception=None):
    return render(request, "400.html", {"message": _message(exception)}, status=400)


def page_not_found(request, exception=None):
    return render(request, "404.html", {"message": _message(exception)}, status=404)


def permission_denied(request, exception=None):
    return render(request, "403.html", {"message": _message(exception)}, status=403)


def server_error(request):
    return render(request, "500.html", status=500)
