"""Reading API input: bodies (JSON, form, multipart), query strings, and the values in them.

Everything here answers bad input with an ApiError (400, 413, 415) before any value
reaches the database: PostgreSQL refuses NUL in text, and names and tags have grammars.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParserError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from api.http import ApiError

MAX_BODY_BYTES = 64 * 1024
JSON_TYPES = ("application/json",)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
MAX_TEXT = 4000

_NOT_ALLOWED_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_NOT_ALLOWED_IN_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class _Duplicate(ValueError):
    pass


def _object_no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Duplicate(key)
        result[key] = value
    return result


def body_size_check(request: HttpRequest) -> None:
    """413 when the declared body is over the API's limit (checked before reading it)."""
    raw = request.META.get("CONTENT_LENGTH") or "0"
    try:
        length = int(raw)
    except ValueError:
        raise ApiError(400, "The Content-Length header is not a number.") from None
    if length > MAX_BODY_BYTES:
        raise ApiError(413, f"The body is {length} bytes; the limit is {MAX_BODY_BYTES}.")


def body_fields(request: HttpRequest, *, forms: bool = True) -> dict[str, Any]:
    """The request body as a dict: a JSON object, or form / multipart fields (single values)."""
    body_size_check(request)
    content_type = request.content_type or ""
    try:
        if content_type not in FORM_TYPES and not request.body:
            return {}  # no body (whatever a client or server put in Content-Type)
        if content_type in JSON_TYPES or content_type.endswith("+json"):
            return _json_fields(request)
        if content_type in FORM_TYPES:
            fields = _form_fields(request)
            if forms or not fields:  # an empty form is no body at all
                return fields
    except RequestDataTooBig:
        raise ApiError(413, f"The body is over the limit of {MAX_BODY_BYTES} bytes.") from None
    except (MultiPartParserError, SuspiciousOperation) as exc:
        raise ApiError(400, f"The body could not be read: {exc}") from None
    accepted = "application/json" + (
        ", application/x-www-form-urlencoded or multipart/form-data" if forms else ""
    )
    raise ApiError(415, f"Send the body as {accepted}, not {content_type or 'no content type'}.")


def _json_fields(request: HttpRequest) -> dict[str, Any]:
    body = request.body
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(413, f"The body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}.")
    if not body.strip():
        return {}
    try:
        data = json.loads(body.decode("utf-8"), object_pairs_hook=_object_no_duplicates)
    except _Duplicate as exc:
        raise ApiError(400, f"The property {str(exc)!r} is given more than once.") from None
    except UnicodeDecodeError:
        raise ApiError(400, "The body is not valid UTF-8.") from None
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"The body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "The body must be a JSON object.")
    return data


def _form_fields(request: HttpRequest) -> dict[str, Any]:
    urlencoded = request.content_type == "application/x-www-form-urlencoded"
    if urlencoded and len(request.body) > MAX_BODY_BYTES:
        raise ApiError(413, f"The body is over the limit of {MAX_BODY_BYTES} bytes.")
    if request.FILES:
        raise ApiError(400, "Files are not accepted; send the fields as text.")
    fields: dict[str, Any] = {}
    for key, values in request.POST.lists():
        if len(values) > 1:
            raise ApiError(400, f"The field {key!r} is given more than once.")
        fields[key] = values[0]
    return fields


def query_fields(request: HttpRequest) -> dict[str, str]:
    """Query parameters as single values; 400 when one is repeated."""
    fields = {}
    for key, values in request.GET.lists():
        if len(values) > 1:
            raise ApiError(400, f"The parameter {key!r} is given more than once.")
        fields[key] = values[0]
    return fields


# --- values ---------------------------------------------------------------------------
def _printable(field: str, value: str, *, multiline: bool) -> str:
    pattern = _NOT_ALLOWED_IN_TEXT if multiline else _NOT_ALLOWED_IN_LINE
    if pattern.search(value):
        raise ApiError(400, f"{field} contains control characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, f"{field} is not valid Unicode text.") from None
    return value


def text(
    fields: dict[str, Any],
    *names: str,
    required: bool = False,
    multiline: bool = False,
    max_length: int = MAX_TEXT,
) -> str | None:
    """One string value found under any of `names` (aliases); None when absent or null."""
    present = [n for n in names if fields.get(n) is not None]
    if len(present) > 1 and len({_as_str(n, fields[n]) for n in present}) > 1:
        raise ApiError(400, f"Give only one of {' or '.join(names)}.")
    if not present:
        if required:
            raise ApiError(400, f"{names[0]} is required.")
        return None
    value = _as_str(present[0], fields[present[0]])
    _printable(present[0], value, multiline=multiline)
    if len(value) > max_length:
        raise ApiError(400, f"{present[0]} is {len(value)} characters; the limit is {max_length}.")
    if required and not value.strip():
        raise ApiError(400, f"{names[0]} is required.")
    return value


def _as_str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be a string.")
    return value


def boolean(fields: dict[str, Any], name: str) -> bool | None:
    """A JSON boolean; None when absent or null."""
    value = fields.get(name)
    if value is None or isinstance(value, bool):
        return value
    raise ApiError(400, f"{name} must be true or false.")


def flag(fields: dict[str, str], name: str) -> bool:
    """A query flag: true/false/1/0 (absent: false)."""
    value = (fields.get(name) or "false").lower()
    if value not in {"true", "false", "1", "0"}:
        raise ApiError(400, f"{name} must be true or false.")
    return value in {"true", "1"}


def string_list(fields: dict[str, Any], name: str, *, max_items: int = 200) -> list[str] | None:
    """A JSON array of strings; None when absent or null."""
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApiError(400, f"{name} must be an array of strings.")
    if len(value) > max_items:
        raise ApiError(400, f"{name} has {len(value)} items; the limit is {max_items}.")
    for item in value:
        _printable(name, item, multiline=False)
    return value


def moment(fields: dict[str, Any], name: str) -> dt.datetime | None:
    """An ISO 8601 date-time or date (a date means its end, in the portal's time zone)."""
    value = text(fields, name, max_length=64)
    if not value:
        return None
    try:
        parsed = parse_datetime(value)
        if parsed is None and (day := parse_date(value)) is not None:
            parsed = dt.datetime.combine(day, dt.time(23, 59, 59))
        if parsed is None:
            raise ValueError(value)
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed)
        parsed.astimezone(dt.UTC)  # out-of-range instants fail here, not in the database
    except (ValueError, OverflowError):
        raise ApiError(
            400,
            f"{name} must be an ISO 8601 date or date-time, "
            "e.g. 2030-01-31 or 2030-01-31T12:00:00Z.",
        ) from None
    return parsed
