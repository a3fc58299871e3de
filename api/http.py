"""The API's HTTP edge: bodies and queries read into raw fields the ProGet ways, a declared
endpoint run (method, fields, caller, validated inputs, view, answer), and error answers.

Bodies: JSON, or form / multipart where ProGet documents them, with a size limit, a field
given twice refused, and chunked bodies (.NET's PostAsJsonAsync sends no Content-Length)
read when the server delivers them. Errors: ProGet's own endpoints (`/api/promotions/promote`,
`/api/promotions/list`) answer errors as plain text, as ProGet does; every other error of the
API, 405 included, is `{"error": "..."}`. Every expected failure is a promoter.errors type
(services raise them too) and becomes one of these answers, never a 500.
"""

from __future__ import annotations

import enum
import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.csrf import csrf_exempt
from pydantic import BaseModel, ValidationError

from api.auth import api_principal, authenticated
from api.schemas import Error, validation_message
from promoter.errors import (
    DomainError,
    Invalid,
    LengthRequired,
    NotFound,
    TooLarge,
    Unauthenticated,
    UnsupportedMediaType,
)

MAX_BODY_BYTES = 64 * 1024
JSON_TYPES = ("application/json",)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
PLAIN_TEXT_PATHS = ("/api/promotions/promote", "/api/promotions/list")
TEXT = "text/plain; charset=utf-8"
CHALLENGE = 'Basic realm="Promoter API", charset="UTF-8"'


# --- answers ----------------------------------------------------------------------------
def wants_text(request: HttpRequest) -> bool:
    return request.path.rstrip("/") in PLAIN_TEXT_PATHS


def error_response(request: HttpRequest, status: int, message: str) -> HttpResponse:
    """The error answer in the endpoint's style (plain text or JSON)."""
    if wants_text(request):
        response = HttpResponse(message + "\n", status=status, content_type=TEXT)
    else:
        response = json_response(Error(error=message), status=status)
    if status == Unauthenticated.status:
        response["WWW-Authenticate"] = CHALLENGE
    return response


def dump(data: BaseModel | list[BaseModel]) -> Any:
    """An answer as JSON values, with ProGet's property names."""
    if isinstance(data, list):
        return [dump(item) for item in data]
    return data.model_dump(mode="json", by_alias=True)


def json_response(data: BaseModel | list[BaseModel], status: int = 200) -> JsonResponse:
    return JsonResponse(
        dump(data), status=status, safe=False, json_dumps_params={"ensure_ascii": False}
    )


def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Unknown /api/ paths answer in the API's style, not with the HTML 404 page."""
    return error_response(request, 404, f"There is no API endpoint {request.path}.")


# --- bodies and queries -----------------------------------------------------------------
def body_read(request: HttpRequest) -> None:
    """Check the body's size before anything reads it; read a chunked body into memory.

    Django reads a body by its Content-Length only, and a chunked request has none. A server
    that de-chunks (gunicorn; `wsgi.input_terminated`) ends wsgi.input at the body's end, so
    it is read to its end, never more than the limit; Django's development server does not,
    and the request is refused (411) rather than read as empty.
    """
    meta = request.META
    if "chunked" not in meta.get("HTTP_TRANSFER_ENCODING", "").lower():
        raw = meta.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw)
        except ValueError:
            raise Invalid("The Content-Length header is not a number.") from None
        if length > MAX_BODY_BYTES:
            raise TooLarge(f"The body is {length} bytes; the limit is {MAX_BODY_BYTES}.")
        return
    if not meta.get("wsgi.input_terminated"):
        raise LengthRequired(
            "This server cannot read a chunked body (Transfer-Encoding: chunked); send "
            "Content-Length, or run Promoter under gunicorn."
        )
    stream, chunks, size = meta["wsgi.input"], [], 0
    while size <= MAX_BODY_BYTES:
        chunk = stream.read(MAX_BODY_BYTES + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > MAX_BODY_BYTES:
        raise TooLarge(f"The body is over the limit of {MAX_BODY_BYTES} bytes.")
    body = b"".join(chunks)
    # From here on Django sees an ordinary body of that length (forms, multipart too).
    request._body = body
    request._stream = io.BytesIO(body)
    meta["CONTENT_LENGTH"] = str(len(body))


class _Duplicate(ValueError):
    pass


def _object_no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Duplicate(key)
        result[key] = value
    return result


def body_fields(request: HttpRequest, *, forms: bool) -> dict[str, Any]:
    """The request body as a dict: a JSON object, or form / multipart fields (single values)."""
    content_type = request.content_type or ""
    try:
        if content_type not in FORM_TYPES and not request.body:
            return {}  # no body (whatever a client or server put in Content-Type)
        if content_type in JSON_TYPES or content_type.endswith("+json"):
            return _json_fields(request.body)
        if content_type in FORM_TYPES:
            fields = _form_fields(request)
            if forms or not fields:  # an empty form is no body at all
                return fields
    except RequestDataTooBig:
        raise TooLarge(f"The body is over the limit of {MAX_BODY_BYTES} bytes.") from None
    except (MultiPartParserError, SuspiciousOperation) as exc:
        raise Invalid(f"The body could not be read: {exc}") from None
    accepted = "application/json" + (
        ", application/x-www-form-urlencoded or multipart/form-data" if forms else ""
    )
    raise UnsupportedMediaType(
        f"Send the body as {accepted}, not {content_type or 'no content type'}."
    )


def _json_fields(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_BODY_BYTES:
        raise TooLarge(f"The body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}.")
    if not body.strip():
        return {}
    try:
        data = json.loads(body.decode("utf-8"), object_pairs_hook=_object_no_duplicates)
    except _Duplicate as exc:
        raise Invalid(f"The property {str(exc)!r} is given more than once.") from None
    except UnicodeDecodeError:
        raise Invalid("The body is not valid UTF-8.") from None
    except (ValueError, RecursionError) as exc:
        raise Invalid(f"The body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Invalid("The body must be a JSON object.")
    return data


def _form_fields(request: HttpRequest) -> dict[str, Any]:
    urlencoded = request.content_type == "application/x-www-form-urlencoded"
    if urlencoded and len(request.body) > MAX_BODY_BYTES:
        raise TooLarge(f"The body is over the limit of {MAX_BODY_BYTES} bytes.")
    if request.FILES:
        raise Invalid("Files are not accepted; send the fields as text.")
    fields: dict[str, Any] = {}
    for key, values in request.POST.lists():
        if len(values) > 1:
            raise Invalid(f"The field {key!r} is given more than once.")
        fields[key] = values[0]
    return fields


def query_fields(request: HttpRequest) -> dict[str, str]:
    """Query parameters as single values; 400 when one is repeated."""
    fields = {}
    for key, values in request.GET.lists():
        if len(values) > 1:
            raise Invalid(f"The parameter {key!r} is given more than once.")
        fields[key] = values[0]
    return fields


# --- declared endpoints -----------------------------------------------------------------
class Auth(enum.Enum):
    REQUIRED = "an API key or credentials"
    OPTIONAL = "anonymous callers too (what Anonymous may view)"
    NONE = "no authentication"


@dataclass(frozen=True)
class Reply:
    """A success answer an endpoint gives: status, shape (a model or a list of one)."""

    status: int
    shape: Any
    description: str
    location: bool = False  # carries a Location header (the promotion's status URL)


@dataclass
class Answer:
    """What a view returns when the endpoint's first Reply is not the one (status, Location)."""

    data: BaseModel | list[BaseModel]
    status: int
    location: str | None = None


@dataclass(frozen=True)
class Endpoint:
    """One row of the endpoint table: everything the dispatcher and the document need."""

    method: str
    path: str  # as in the document, e.g. /api/management/feeds/get/{name}
    view: Callable[..., Any]
    operation_id: str
    tag: str
    summary: str
    replies: tuple[Reply, ...]
    description: str = ""
    auth: Auth = Auth.REQUIRED
    body: type[BaseModel] | None = None
    body_required: bool = False
    forms: bool = False  # form and multipart bodies too (ProGet's promote)
    query: type[BaseModel] | None = None
    path_params: type[BaseModel] | None = None
    errors: Mapping[int, str] = field(default_factory=dict)  # beyond the usual ones

    @property
    def text_errors(self) -> bool:
        return self.path in PLAIN_TEXT_PATHS

    def run(self, request: HttpRequest, params: dict[str, str]) -> HttpResponse:
        """Read, authenticate, validate, call the view, answer."""
        inputs: dict[str, Any] = {}
        query = query_fields(request) if self.query is not None else {}
        fields = body_fields(request, forms=self.forms) if self.body is not None else {}
        if self.auth is not Auth.NONE:
            principal = api_principal(request, fields)
            if self.auth is Auth.REQUIRED:
                principal = authenticated(principal)
            inputs["principal"] = principal
        if self.path_params is not None:
            inputs.update(_path_values(self.path_params, params))
        if self.query is not None:
            query.pop("key", None)  # the caller's, read by authentication
            inputs["query"] = _valid(self.query, query)
        if self.body is not None:
            inputs["body"] = _valid(self.body, fields)
        result = self.view(**inputs)
        if not isinstance(result, Answer):
            result = Answer(result, status=self.replies[0].status)
        response = json_response(result.data, status=result.status)
        if result.location:
            response["Location"] = result.location
        return response


def _valid(model: type[BaseModel], fields: dict[str, Any]) -> BaseModel:
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise Invalid(validation_message(exc)) from None


def _path_values(model: type[BaseModel], params: dict[str, str]) -> dict[str, Any]:
    # An odd path is an unknown thing: 404, as for any path the API does not know.
    try:
        return model.model_validate(params).model_dump()
    except ValidationError:
        (name, value), *_ = params.items()
        what = name.removesuffix("_id").replace("_", " ")
        raise NotFound(f"There is no {what} {value!r}.") from None


def serve(endpoints: list[Endpoint]) -> Callable[..., HttpResponse]:
    """The Django view of one path: the endpoint for the request's method, else 405."""
    by_method = {e.method: e for e in endpoints}
    allowed = ", ".join(by_method)

    @csrf_exempt  # key-authenticated; a session caller's writes are CSRF-checked in api.auth
    def view(request: HttpRequest, **params: str) -> HttpResponse:
        endpoint = by_method.get(request.method or "")
        if endpoint is None:
            response = error_response(
                request, 405, f"{request.method} is not allowed here; use {allowed}."
            )
            response["Allow"] = allowed
            return response
        try:
            return endpoint.run(request, params)
        except DomainError as exc:
            if exc.status == 409 and any(r.status == 409 for r in endpoint.replies):
                # A refused promotion answers its checklist as JSON (api.schemas_policies).
                from api.schemas_policies import PolicyRefusal

                return json_response(PolicyRefusal.of(exc), status=409)
            return error_response(request, exc.status, exc.message)
        except Http404 as exc:
            return error_response(request, 404, str(exc) or "Not found.")
        except PermissionDenied as exc:
            return error_response(request, 403, str(exc) or "You may not do this.")

    return view
