"""The OpenAPI 3.1 document, generated from the endpoint table (api.endpoints) and the
models (api.schemas); served at /api/openapi.json and shown for people at /api/docs.

Nothing here describes a shape by hand: properties, types, required-ness and descriptions
come from the models (`model_json_schema`), paths, methods, inputs and answers from the table.
tests/api/test_api_schema.py drives the live API with inputs generated from this document and
fails on any answer that contradicts it; tests/api/test_api_documented.py checks that every
documented property is what the endpoints return.
"""

from __future__ import annotations

import json
import re
import types
import typing
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema

from api.endpoints import ENDPOINTS
from api.http import FORM_TYPES, JSON_TYPES, MAX_BODY_BYTES, Auth, Endpoint
from api.schemas import Error

REF = "#/components/schemas/{model}"
SECURITY = [{"apiKeyHeader": []}, {"apiKeyQuery": []}, {"basic": []}]
SECURITY_SCHEMES = {
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-ApiKey"},
    "apiKeyQuery": {"type": "apiKey", "in": "query", "name": "key"},
    "basic": {
        "type": "http",
        "scheme": "basic",
        "description": "`api:<key>`, or a person's user name and password.",
    },
}
DESCRIPTION = (
    "Promote container images between registries (ProGet-compatible), and manage feeds and "
    "API keys. Authenticate with an API key in the `X-ApiKey` header, the `key` query or form "
    "value, the `API_Key` JSON property, or Basic auth as `api:<key>`; a person's user name "
    "and password work as Basic auth or as `X-ApiKey: user:password` (pgutil's "
    f"`--username`/`--password`). Bodies are limited to {MAX_BODY_BYTES // 1024} KiB; a "
    "chunked body (no Content-Length) is read too. Enum values are read in any case."
)
ERRORS = {
    400: "Invalid input: the message says which field and why.",
    401: "No API key or credentials.",
    403: "An unknown, expired or revoked key, a system key limited to other API areas, or "
    "a caller without the permission the endpoint needs.",
    404: "Not found.",
    411: "A chunked body where the server cannot read one (Django's development server); "
    "send Content-Length.",
    413: f"The body is larger than {MAX_BODY_BYTES // 1024} KiB.",
    415: "The body is not JSON.",
    429: "Too many failed sign-ins from this address (Basic credentials); wait and try again.",
}


class _Generator(GenerateJsonSchema):
    """Pydantic's JSON Schema without a title on every property (the name says it)."""

    def field_title_should_be_set(self, schema) -> bool:
        return False


def openapi_document(server: str | None = None) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document."""
    components: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in ENDPOINTS:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(
            endpoint, components
        )
    _schema(Error, "serialization", components)
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Promoter API", "version": "1", "description": DESCRIPTION},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": SECURITY_SCHEMES},
    }
    if server:
        document["servers"] = [{"url": server}]
    return document


def _schema(shape: Any, mode: str, components: dict[str, Any]) -> dict[str, Any]:
    """A reference to `shape` (a model, or a list of one), adding its schemas to components."""
    if typing.get_origin(shape) is list:
        (item,) = typing.get_args(shape)
        return {"type": "array", "items": _schema(item, mode, components)}
    if typing.get_origin(shape) in (typing.Union, types.UnionType):
        # One status, two shapes (the promote call's 200: a promotion, or its dry run).
        return {"oneOf": [_schema(option, mode, components) for option in typing.get_args(shape)]}
    name = shape.__name__
    if name not in components:
        schema = shape.model_json_schema(
            by_alias=True, ref_template=REF, mode=mode, schema_generator=_Generator
        )
        for nested, definition in schema.pop("$defs", {}).items():
            components.setdefault(nested, definition)
        components[name] = schema
    return {"$ref": REF.format(model=name)}


def _parameters(model: type[BaseModel] | None, where: str) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = model.model_json_schema(by_alias=True, schema_generator=_Generator)
    required = set(schema.get("required", ()))
    return [
        {
            "name": name,
            "in": where,
            "required": where == "path" or name in required,
            "description": prop.pop("description", ""),
            "schema": _not_null(prop),
        }
        for name, prop in schema["properties"].items()
    ]


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query or path value is text or absent, never null: drop pydantic's null branch."""
    options = [o for o in schema.get("anyOf", ()) if o.get("type") != "null"]
    if len(options) != 1:
        return schema
    rest = {k: v for k, v in schema.items() if k not in {"anyOf", "default"}}
    return {**options[0], **rest}


def _operation(endpoint: Endpoint, components: dict[str, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": endpoint.operation_id,
        "tags": [endpoint.tag],
        "summary": endpoint.summary,
        "description": endpoint.description,
        "security": {
            Auth.REQUIRED: SECURITY,
            Auth.OPTIONAL: [*SECURITY, {}],  # Anonymous too (what Anonymous may view)
            Auth.NONE: [{}],
        }[endpoint.auth],
        "parameters": [
            *_parameters(endpoint.path_params, "path"),
            *_parameters(endpoint.query, "query"),
        ],
    }
    if endpoint.body is not None:
        types = JSON_TYPES + (FORM_TYPES if endpoint.forms else ())
        body = _schema(endpoint.body, "validation", components)
        operation["requestBody"] = {
            "required": endpoint.body_required,
            "content": {content_type: {"schema": body} for content_type in types},
        }
    responses: dict[str, Any] = {}
    for reply in endpoint.replies:
        answer: dict[str, Any] = {
            "description": reply.description,
            "content": {
                "application/json": {"schema": _schema(reply.shape, "serialization", components)}
            },
        }
        if reply.location:
            answer["headers"] = {
                "Location": {
                    "description": "The promotion's status URL.",
                    "schema": {"type": "string"},
                }
            }
        responses[str(reply.status)] = answer
    for status, description in sorted(_errors(endpoint).items()):
        responses[str(status)] = _error(endpoint, status, description)
    operation["responses"] = responses
    return operation


def _errors(endpoint: Endpoint) -> dict[int, str]:
    """The errors the endpoint may answer: the usual ones for its row, and its own."""
    codes = set(endpoint.errors)
    if endpoint.path.startswith("/api/"):
        codes.add(400)  # control characters in a query, on any endpoint of the API
    if endpoint.auth is Auth.REQUIRED:
        codes.add(401)
    if endpoint.auth is not Auth.NONE:
        codes |= {403, 429}
    if endpoint.path_params is not None:
        codes.add(404)
    if endpoint.body is not None:
        codes |= {411, 413, 415}
    errors = {code: endpoint.errors.get(code, ERRORS[code]) for code in codes}
    if endpoint.forms and 415 not in endpoint.errors:
        errors[415] = "The body is not JSON, form or multipart."
    return errors


def _error(endpoint: Endpoint, status: int, description: str) -> dict[str, Any]:
    json_error = {"application/json": {"schema": {"$ref": REF.format(model="Error")}}}
    text_error = {"text/plain": {"schema": {"type": "string"}}}
    if not endpoint.text_errors or status == 429:
        content = json_error  # throttling is answered by authentication, in JSON
    elif status == 403:
        content = text_error | json_error  # a refused key is answered by authentication
    else:
        content = text_error
    return {"description": description, "content": content}


# --- the views ----------------------------------------------------------------------------
@csrf_exempt
@require_GET
def openapi_json(request: HttpRequest) -> HttpResponse:
    return JsonResponse(openapi_document(server=request.build_absolute_uri("/")[:-1]))


@csrf_exempt
@require_GET
def docs(request: HttpRequest) -> HttpResponse:
    """The OpenAPI document rendered for people."""
    context = docs_context(openapi_document())
    # The examples name this instance, as the reader reaches it, not a placeholder host.
    base = request.build_absolute_uri("/").rstrip("/")
    context["example"] = context["example"].replace("https://promoter.example.com", base)
    return render(request, "api/docs.html", context)


# --- the page ---------------------------------------------------------------------------
def _prose(text: str) -> SafeString:
    """Escaped text with `code` spans as <code> (the document's descriptions use them)."""
    return mark_safe(re.sub(r"`([^`]+)`", r'<code class="mono">\1</code>', escape(text)))


def _type(schema: dict[str, Any]) -> str:
    """A short name of a property's type: `string`, `array of Feed`, `integer or null`…"""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema or "oneOf" in schema:
        return " or ".join(_type(option) for option in schema.get("anyOf", schema.get("oneOf")))
    if schema.get("type") == "array":
        return f"array of {_type(schema.get('items', {}))}"
    kind = schema.get("type", "string" if "enum" in schema else "object")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    if "enum" in schema:
        kind += ": " + " | ".join(str(v) for v in schema["enum"] if v is not None)
    if "const" in schema:
        kind += f": {schema['const']}"
    return kind


def _rows(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows (name, type, required, description) of an object schema."""
    required = set(schema.get("required", ()))
    return [
        {
            "name": name,
            "type": _type(prop),
            "required": name in required,
            "description": _prose(prop.get("description", "")),
        }
        for name, prop in schema.get("properties", {}).items()
    ]


def docs_context(document: dict[str, Any]) -> dict[str, Any]:
    """What templates/api/docs.html shows: endpoints grouped by tag, then schemas."""
    groups: dict[str, list[dict]] = {}
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            body = op.get("requestBody")
            responses = [
                {
                    "code": code,
                    "description": _prose(answer["description"]),
                    "types": ", ".join(answer.get("content", {})),
                    "schema": ", ".join(
                        sorted({_type(c["schema"]) for c in answer.get("content", {}).values()})
                    ),
                }
                for code, answer in op["responses"].items()
            ]
            groups.setdefault(op["tags"][0], []).append(
                {
                    "id": op["operationId"],
                    "method": method.upper(),
                    "path": path,
                    "summary": op["summary"],
                    "description": _prose(op.get("description", "")),
                    "anonymous": {} in op.get("security", []),
                    "parameters": [
                        {**p, "description": _prose(p["description"]), "type": _type(p["schema"])}
                        for p in op.get("parameters", [])
                    ],
                    "body_types": ", ".join(body["content"]) if body else "",
                    "body_required": bool(body and body.get("required")),
                    "body_schema": (
                        _type(next(iter(body["content"].values()))["schema"]) if body else ""
                    ),
                    "responses": responses,
                }
            )
    schemas = [
        {"name": name, "description": _prose(schema.get("description", "")), "rows": _rows(schema)}
        for name, schema in document["components"]["schemas"].items()
    ]
    return {
        "info": {**document["info"], "description": _prose(document["info"]["description"])},
        "groups": list(groups.items()),
        "schemas": schemas,
        "security": {
            name: {**scheme, "description": _prose(scheme.get("description", ""))}
            for name, scheme in document["components"]["securitySchemes"].items()
        },
        "example": (
            "curl -X POST https://promoter.example.com/api/promotions/promote \\\n"
            '  --header "X-ApiKey: $PROMOTER_API_KEY" \\\n'
            "  -F name=team/api -F version=1.4.2 \\\n"
            '  -F fromFeed=devdocker -F toFeed=rcdocker -F comments="Ready for testing"'
        ),
        "document_size": len(json.dumps(document)),
        "nav_section": "api",
    }
