"""Answers and errors of the HTTP API.

ProGet's own endpoints (`/api/promotions/promote`, `/api/promotions/list`) answer errors as
plain text, as ProGet does; Promoter's other endpoints answer `{"error": "..."}`. Every
expected failure becomes an `ApiError` (or a service's typed error) and one of these answers,
never a 500.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse

from promoter.errors import DomainError

log = logging.getLogger(__name__)

PLAIN_TEXT_PATHS = ("/api/promotions/promote", "/api/promotions/list")
TEXT = "text/plain; charset=utf-8"


class ApiError(DomainError):
    """An answer other than success: an HTTP status and a message a person can act on."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def wants_text(request: HttpRequest) -> bool:
    return request.path.rstrip("/") in PLAIN_TEXT_PATHS


def error_response(request: HttpRequest, status: int, message: str) -> HttpResponse:
    """The error answer in the endpoint's style (plain text or JSON)."""
    if wants_text(request):
        return HttpResponse(message + "\n", status=status, content_type=TEXT)
    return JsonResponse({"error": message}, status=status)


def json_response(data, status: int = 200, **headers) -> JsonResponse:
    response = JsonResponse(
        data, status=status, safe=False, json_dumps_params={"ensure_ascii": False}
    )
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def api_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Turn expected failures (ApiError, services' typed errors, 404/403) into error answers."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except ApiError as exc:
            return error_response(request, exc.status, exc.message)
        except DomainError as exc:
            return error_response(request, exc.status, exc.message)
        except Http404 as exc:
            return error_response(request, 404, str(exc) or "Not found.")
        except PermissionDenied as exc:
            return error_response(request, 403, str(exc) or "You may not do this.")

    return wrapper
