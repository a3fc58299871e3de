"""A guard in front of the API: body size, chunked bodies and control characters, before
anything reads them.

It sits before accounts.auth.middleware.ApiAuthenticationMiddleware, which reads the key from
the query string, a header or the form body; a NUL there would reach PostgreSQL (which
refuses it), a huge body would be parsed, and a chunked body would look empty. Here such
requests get a 400, 411 or 413 in the API's style, and a chunked body is read (api.http).
"""

from __future__ import annotations

import re

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParserError

from api.http import FORM_TYPES, MAX_BODY_BYTES, body_read, error_response
from promoter.errors import DomainError, Invalid, TooLarge

API_PREFIX = "/api/"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ApiGuardMiddleware:
    """413 for oversized API bodies, 400 for control characters in credentials and queries."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if request.path.startswith(API_PREFIX):
            try:
                self._check(request)
            except DomainError as exc:
                return error_response(request, exc.status, exc.message)
        return self.get_response(request)

    @staticmethod
    def _check(request: HttpRequest) -> None:
        body_read(request)
        for key, values in request.GET.lists():
            if _CONTROL.search(key) or any(_CONTROL.search(v) for v in values):
                raise Invalid(f"The query parameter {key!r} contains control characters.")
        if _CONTROL.search(request.headers.get("X-ApiKey", "")):
            raise Invalid("The X-ApiKey header contains control characters.")
        if request.method == "POST" and request.content_type in FORM_TYPES:
            try:
                key = request.POST.get("key", "")
            except RequestDataTooBig:
                raise TooLarge(f"The body is over {MAX_BODY_BYTES} bytes.") from None
            except (MultiPartParserError, SuspiciousOperation) as exc:
                raise Invalid(f"The body could not be read: {exc}") from None
            if _CONTROL.search(key):
                raise Invalid("The key field contains control characters.")
