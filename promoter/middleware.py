"""Maps the domain's errors to pages: the one edge mapping for everything but the API."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from promoter import views
from promoter.errors import DomainError, Forbidden, NotFound, Unauthenticated
from promoter.signin import sign_in_redirect, signed_out


class DomainErrorMiddleware:
    """A DomainError a page lets escape becomes the 404, 403 or 400 page with its message.

    A signed-out visitor is sent to sign in instead of a 404 or 403 page (promoter.signin).
    The API answers its own errors (api.http), so this leaves /api/ alone.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, DomainError) or request.path.startswith("/api/"):
            return None
        if isinstance(exception, NotFound | Forbidden | Unauthenticated) and signed_out(request):
            return sign_in_redirect(request)
        if isinstance(exception, NotFound):
            return views.page_not_found(request, Http404(exception.message))
        if isinstance(exception, Forbidden | Unauthenticated):
            return views.permission_denied(request, PermissionDenied(exception.message))
        return views.bad_request(request, exception)
