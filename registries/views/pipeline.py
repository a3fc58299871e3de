"""Pages of the pipeline: the board (home page) and the audit page with its exports."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.permissions import Principal
from promoter.errors import Invalid
from promoter.signin import sign_in_redirect, signed_out
from registries import selectors_audit, selectors_pipeline
from registries.models import HistoryEvent, Registry


@require_GET
def pipeline_board(request: HttpRequest) -> HttpResponse:
    """The home page: the Promote To chains as stages, and what waits between them."""
    principal = Principal.from_request(request)
    board = selectors_pipeline.pipeline_board(principal=principal)
    if not board and signed_out(request):
        # Anonymous may see nothing here: the page to show is the sign-in page.
        return sign_in_redirect(request)
    context = {
        "board": board,
        "nav_section": "pipeline",
        "window": f"{selectors_pipeline.WAITING_WINDOW:,}",
    }
    return render(request, "registries/pipeline.html", context)


def _filter(request: HttpRequest) -> tuple[selectors_audit.AuditFilter, str]:
    try:
        return selectors_audit.audit_filter_parse(request.GET), ""
    except Invalid as exc:
        return selectors_audit.AuditFilter(), exc.message


@require_GET
def audit_list(request: HttpRequest) -> HttpResponse:
    """All of History and the configuration changes, filtered by the query string."""
    principal = Principal.from_request(request)
    if signed_out(request) and not Registry.objects.restrict(principal, "view").exists():
        return sign_in_redirect(request)
    where, error = _filter(request)
    cursor = request.GET.get("cursor", "")[:64]
    if not error and any(value == "" for value in request.GET.values()):
        # The filter form sends every field: keep only those set, so the address a person
        # copies to share the view says just what it filters.
        clean = _encode({**where.query(), **({"cursor": cursor} if cursor else {})})
        return redirect(request.path + (f"?{clean}" if clean else ""))
    page = selectors_audit.audit_page(principal=principal, where=where, cursor=cursor)
    query = where.query()
    context = {
        "page": page,
        "where": where,
        "error": error,
        "query": query,
        "query_string": _encode(query),
        "actions": [
            *HistoryEvent.Action.choices,
            (selectors_audit.CONFIGURATION, "Configuration change"),
        ],
        "registries": selectors_pipeline.registries_in_pipeline_order(
            Registry.objects.restrict(principal, "view")
        ),
        "is_filtered": bool(query),
        "nav_section": "audit",
    }
    if request.htmx and request.htmx.target == "audit-results":
        return render(request, "registries/audit_list.html#results", context)
    return render(request, "registries/audit_list.html", context, status=400 if error else 200)


def _encode(query: dict) -> str:
    return urlencode(query)


class _Echo:
    """csv.writer writes into this and gets the line back, for a streamed response."""

    def write(self, value: str) -> str:
        return value


def _csv_lines(rows) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(selectors_audit.EXPORT_COLUMNS)
    for row in rows:
        values = row.as_dict()
        values["changes"] = json.dumps(values["changes"]) if values["changes"] else ""
        yield writer.writerow(
            ["" if values[c] is None else values[c] for c in selectors_audit.EXPORT_COLUMNS]
        )


def _json_chunks(rows) -> Iterator[str]:
    yield "["
    for n, row in enumerate(rows):
        values = row.as_dict()
        yield ("," if n else "") + json.dumps(
            {c: values[c] for c in selectors_audit.EXPORT_COLUMNS}
        )
    yield "]\n"


@require_GET
def audit_export(request: HttpRequest, format: str) -> HttpResponse:
    """The audit page's rows as CSV or JSON, streamed (at most selectors_audit.EXPORT_LIMIT)."""
    principal = Principal.from_request(request)
    try:
        where = selectors_audit.audit_filter_parse(request.GET)
    except Invalid as exc:
        return HttpResponse(exc.message + "\n", status=400, content_type="text/plain")
    total = selectors_audit.audit_count(principal=principal, where=where)
    rows = selectors_audit.audit_rows(principal=principal, where=where)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    if format == "csv":
        response = StreamingHttpResponse(_csv_lines(rows), content_type="text/csv; charset=utf-8")
    else:
        response = StreamingHttpResponse(_json_chunks(rows), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="promoter-audit-{stamp}.{format}"'
    if total > selectors_audit.EXPORT_LIMIT:
        response["X-Promoter-Truncated"] = f"first {selectors_audit.EXPORT_LIMIT} of more rows"
    return response
