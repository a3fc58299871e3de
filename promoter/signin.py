"""Sending a signed-out visitor to the sign-in page and back, instead of a 403 or 404 page.

A shared link to a tag, /administration/ or a promotion means nothing to someone who is not
signed in yet: they land on the sign-in page with `next` set and return after signing in.
Every NotFound goes there too, so a signed-out visitor cannot tell a hidden registry from a
missing one.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.utils.http import url_has_allowed_host_and_scheme
from django_htmx.http import HttpResponseClientRedirect

from accounts.permissions import Principal


def signed_out(request: HttpRequest) -> bool:
    """True for a visitor with neither a session nor an API key nor Basic credentials."""
    return Principal.from_request(request).is_anonymous


def sign_in_redirect(request: HttpRequest) -> HttpResponse:
    """To the sign-in page, then back to this page (after a POST: to the page it came from)."""
    if request.method in {"GET", "HEAD"}:
        back = request.get_full_path()
    else:
        # After signing in the browser GETs `next`; a POST-only address would answer 405.
        referer = request.headers.get("Referer", "")
        safe = url_has_allowed_host_and_scheme(
            referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
        back = referer if safe else "/"
    response = redirect_to_login(back, settings.LOGIN_URL)
    if getattr(request, "htmx", False):
        # An htmx request would swap the sign-in page into a dialog: move the whole page.
        return HttpResponseClientRedirect(response["Location"])
    return response
