"""The API's URLs, from the endpoint table (api.endpoints); `/health` is routed at the site's
root by promoter.urls, as ProGet has it. Each URL is named by its endpoint's operationId."""

from __future__ import annotations

import re

from django.urls import URLPattern, path, re_path

from api import openapi
from api.endpoints import paths
from api.http import not_found, serve

app_name = "api"

# Path parameters take anything to the end, newlines included (the endpoint checks them), so
# an odd value gets the API's own 404 or 400 and never the HTML 404 page.
ANY = r"[\s\S]+"
PREFIX = "/api/"


def _pattern(template: str) -> str:
    """`/api/management/feeds/get/{name}` -> `^management/feeds/get/(?P<name>[\\s\\S]+)$`."""
    parts = re.split(r"\{(\w+)\}", template.removeprefix(PREFIX))
    # re.split alternates literal text and parameter names.
    regex = "".join(f"(?P<{p}>{ANY})" if i % 2 else re.escape(p) for i, p in enumerate(parts))
    return f"^{regex}$"


def _patterns() -> list[URLPattern]:
    return [
        re_path(_pattern(template), serve(endpoints), name=endpoints[0].operation_id)
        for template, endpoints in paths().items()
        if template.startswith(PREFIX)
    ]


health = serve(paths()["/health"])

urlpatterns = [
    *_patterns(),
    path("openapi.json", openapi.openapi_json, name="openapi"),
    path("docs", openapi.docs, name="docs"),
    re_path(r"^(?P<rest>[\s\S]*)$", not_found),
]
