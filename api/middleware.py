"""A guard in front of the API: body size and control characters, before anything reads them.

It sits before accounts.auth.middleware.ApiAuthenticationMiddleware, which reads the key from the
query string, a header or the form body; a NUL there would reach PostgreSQL (which refuses
it) and a huge body would be parsed. Here such requests get a 400 or 413 in the API's style.
"""

from __future__ import annotations

import re

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParserError

from api.http import ApiError, error_response
from api.parsing import MAX_BODY_BYTES, body_size_check

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
            except ApiError as exc:
                return error_response(request, exc.status, exc.message)
        return self.get_response(request)

    @staticmethod
    def _check(request: HttpRequest) -> None:
        body_size_check(request)
        for key, values in request.GET.lists():
            if _CONTROL.search(key) or any(_CONTROL.search(v) for v in values):
                raise ApiError(400, f"The query parameter {key!r} contains control characters.")
        if _CONTROL.search(request.headers.get("X-ApiKey", "")):
            raise ApiError(400, "The X-ApiKey header contains control characters.")
        if request.method == "POST" and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            try:
                key = request.POST.get("key", "")
            except RequestDataTooBig:
                raise ApiError(413, f"The body is over {MAX_BODY_BYTES} bytes.") from None
            except (MultiPartParserError, SuspiciousOperation) as exc:
                raise ApiError(400, f"The body could not be read: {exc}") from None
            if _CONTROL.search(key):
                raise ApiError(400, "The key field contains control characters.")
