"""The OpenAPI 3.1 description of the HTTP API (served at /api/openapi.json, shown at /api/docs).

Kept next to the views it describes; tests/api/test_schema.py drives the live API with
inputs generated from this document and fails on any answer that contradicts it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from accounts.models import ApiArea
from api.parsing import MAX_BODY_BYTES
from registries.models import COMMENT_MAX

NAME_PATTERN = r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$"
STRING_OR_NULL = {"type": ["string", "null"]}
DATE_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
API_AREAS = list(ApiArea.values)
SECURITY = [{"apiKeyHeader": []}, {"apiKeyQuery": []}, {"basic": []}]
# Lists answer Anonymous too (filtered by what Anonymous may view).
SECURITY_OPTIONAL = [*SECURITY, {}]


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _text_error(description: str) -> dict:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


def _json_error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _both_errors(description: str) -> dict:
    # A key the authentication middleware refuses is answered in JSON on every endpoint.
    return {
        "description": description,
        "content": {
            "text/plain": {"schema": {"type": "string"}},
            "application/json": {"schema": _ref("Error")},
        },
    }


def _json(schema: dict, description: str, headers: dict | None = None) -> dict:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    if headers:
        answer["headers"] = headers
    return answer


THROTTLED = _json_error(
    "Too many failed sign-ins from this address (Basic credentials); wait and try again."
)
TOO_LARGE = f"The body is larger than {MAX_BODY_BYTES // 1024} KiB."


def _json_errors(*codes: int, not_found: str = "Not found.") -> dict:
    texts = {
        400: "Invalid input: the message says which field and why.",
        403: "No API key or credentials, an unknown, expired or revoked key, a system key "
        "limited to other API areas, or a caller without the permission the endpoint "
        "needs.",
        404: not_found,
        413: TOO_LARGE,
        415: "The body is not JSON.",
    }
    answers = {str(code): _json_error(texts[code]) for code in codes}
    answers["429"] = THROTTLED
    return answers


def _json_body(schema: str, required: bool = True) -> dict:
    return {"required": required, "content": {"application/json": {"schema": _ref(schema)}}}


def _path_name(description: str) -> dict:
    return {
        "name": "name",
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1},
    }


def _path_id(name: str, description: str) -> dict:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "integer", "minimum": 1},
    }


def _query(name: str, description: str, schema: dict | None = None) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string", "description": "What went wrong and what to do."}
        },
    },
    "PromoteRequest": {
        "type": "object",
        "description": "Give `name` or `packageName`; `group`/`groupName` is prepended to it "
        "with a `/` when given.",
        "required": ["version", "fromFeed"],
        "anyOf": [{"required": ["name"]}, {"required": ["packageName"]}],
        "properties": {
            "name": {"type": "string", "description": "The repository, e.g. `team/api`."},
            "packageName": {"type": "string", "description": "Same as `name`."},
            "group": {
                "type": "string",
                "description": "Leading path of the repository, e.g. `team` with name `api`.",
            },
            "groupName": {"type": "string", "description": "Same as `group`."},
            "version": {
                "type": "string",
                "description": "The tag, e.g. `1.4.2`, or a `sha256:` digest a tag points at.",
            },
            "fromFeed": {"type": "string", "description": "The source registry, e.g. `devdocker`."},
            "toFeed": {
                "type": "string",
                "description": "The target registry; may be omitted when "
                "the source has a Promote To registry.",
            },
            "comments": {
                "type": "string",
                "maxLength": COMMENT_MAX,
                "description": "Why; recorded in History.",
            },
            "API_Key": {"type": "string", "description": "An API key (instead of the header)."},
        },
    },
    "Progress": {
        "type": "object",
        "required": [
            "percent",
            "blobsTotal",
            "blobsCopied",
            "blobsMounted",
            "blobsSkipped",
            "bytesTotal",
            "bytesDone",
            "manifestsTotal",
            "manifestsCopied",
            "signaturesCopied",
        ],
        "properties": {
            "percent": {"type": "integer", "minimum": 0, "maximum": 100},
            **{
                name: {"type": "integer", "minimum": 0}
                for name in (
                    "blobsTotal",
                    "blobsCopied",
                    "blobsMounted",
                    "blobsSkipped",
                    "bytesTotal",
                    "bytesDone",
                    "manifestsTotal",
                    "manifestsCopied",
                    "signaturesCopied",
                )
            },
        },
    },
    "PromotionStatus": {
        "type": "object",
        "required": [
            "id",
            "status",
            "fromFeed",
            "toFeed",
            "repository",
            "groupName",
            "packageName",
            "version",
            "digest",
            "comments",
            "user",
            "created",
            "started",
            "finished",
            "error",
            "previousDigest",
            "progress",
            "statusUrl",
            "pageUrl",
        ],
        "properties": {
            "id": {"type": "integer"},
            "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed"]},
            "fromFeed": {"type": "string"},
            "toFeed": {"type": "string"},
            "repository": {"type": "string", "description": "The repository, e.g. `team/api`."},
            "groupName": {
                **STRING_OR_NULL,
                "description": "The repository's leading path, e.g. `team`; null when none.",
            },
            "packageName": {"type": "string", "description": "Its last component, e.g. `api`."},
            "version": {"type": "string", "description": "The tag."},
            "digest": {"type": "string", "description": "The pinned digest that is copied."},
            "comments": {"type": "string"},
            "user": {"type": "string", "description": "Who asked: a user or `API key <name>`."},
            "created": {"type": "string", "format": "date-time"},
            "started": DATE_OR_NULL,
            "finished": DATE_OR_NULL,
            "error": {**STRING_OR_NULL, "description": "Why it failed."},
            "previousDigest": {
                **STRING_OR_NULL,
                "description": "What the target tag pointed at before.",
            },
            "progress": _ref("Progress"),
            "statusUrl": {"type": "string", "description": "This status, to poll."},
            "pageUrl": {"type": "string", "description": "The promotion's page in the portal."},
        },
    },
    "PromotedPackage": {
        "type": "object",
        "required": [
            "packageName",
            "groupName",
            "repository",
            "packageType",
            "version",
            "promotions",
        ],
        "properties": {
            "packageName": {"type": "string"},
            "groupName": STRING_OR_NULL,
            "repository": {"type": "string"},
            "packageType": {"type": "string", "const": "docker"},
            "version": {"type": "string"},
            "promotions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "fromFeed", "toFeed", "date", "user", "comments", "digest"],
                    "properties": {
                        "id": {"type": "integer"},
                        "fromFeed": {"type": "string"},
                        "toFeed": {"type": "string"},
                        "date": {"type": "string", "format": "date-time"},
                        "user": {"type": "string"},
                        "comments": {"type": "string"},
                        "digest": {"type": "string"},
                    },
                },
            },
        },
    },
    "Feed": {
        "type": "object",
        "required": [
            "name",
            "feedType",
            "description",
            "active",
            "usageType",
            "promoteTo",
            "endpoint",
            "namespace",
        ],
        "properties": {
            "name": {"type": "string"},
            "feedType": {"type": "string", "const": "docker"},
            "description": {"type": "string"},
            "active": {"type": "boolean"},
            "usageType": {"type": "string", "enum": ["general", "validated"]},
            "promoteTo": {**STRING_OR_NULL, "description": "The Promote To registry."},
            "endpoint": {
                **STRING_OR_NULL,
                "description": "URL of an external registry; null for the bundled one.",
            },
            "namespace": {**STRING_OR_NULL, "description": "Path prefix on an external registry."},
        },
    },
    "FeedWrite": {
        "type": "object",
        "description": "On update, omitted and null properties stay as they are; `promoteTo: "
        '""` clears Promote To. `password` is write-only.',
        "properties": {
            "name": {"type": "string", "pattern": NAME_PATTERN, "maxLength": 64},
            "feedType": {"type": "string", "enum": ["docker"]},
            "description": {"type": ["string", "null"], "maxLength": 4000},
            "active": {"type": ["boolean", "null"]},
            "usageType": {"type": ["string", "null"], "enum": ["general", "validated", None]},
            "promoteTo": STRING_OR_NULL,
            "endpoint": {
                "type": ["string", "null"],
                "description": 'URL of an external registry; "" for the bundled one.',
            },
            "namespace": STRING_OR_NULL,
            "username": STRING_OR_NULL,
            "password": STRING_OR_NULL,
            "API_Key": {"type": "string"},
        },
    },
    "FeedCreate": {
        "allOf": [_ref("FeedWrite"), {"type": "object", "required": ["name", "feedType"]}],
    },
    "KeyOnly": {
        "type": "object",
        "description": "Optional; only to carry ProGet's `API_Key` property.",
        "properties": {"API_Key": {"type": "string"}},
    },
    "Deleted": {
        "type": "object",
        "required": ["deleted"],
        "properties": {"deleted": {"type": "string"}},
    },
    "ApiKey": {
        "type": "object",
        "required": [
            "id",
            "name",
            "description",
            "type",
            "user",
            "feeds",
            "permissions",
            "areas",
            "created",
            "expires",
            "lastUsed",
            "revoked",
        ],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "type": {"type": "string", "enum": ["personal", "feed", "system"]},
            "user": {
                **STRING_OR_NULL,
                "description": "Personal keys: the user they act as; others: who created them.",
            },
            "feeds": {"type": "array", "items": {"type": "string"}},
            "permissions": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Feed keys: what they may do on their feeds.",
            },
            "areas": {
                "type": "array",
                "items": {"type": "string", "enum": API_AREAS},
                "description": "System keys: the API areas they are limited to; "
                "empty for full control.",
            },
            "created": {"type": "string", "format": "date-time"},
            "expires": DATE_OR_NULL,
            "lastUsed": DATE_OR_NULL,
            "revoked": DATE_OR_NULL,
        },
    },
    "ApiKeyCreated": {
        "allOf": [
            _ref("ApiKey"),
            {
                "type": "object",
                "required": ["key"],
                "properties": {
                    "key": {
                        "type": "string",
                        "description": "The secret. Shown this once; store it now.",
                    }
                },
            },
        ],
    },
    "ApiKeyCreate": {
        "type": "object",
        "required": ["type", "name"],
        "properties": {
            "type": {"type": "string", "enum": ["personal", "feed", "system"]},
            "name": {"type": "string", "minLength": 1, "maxLength": 100},
            "description": {"type": "string", "maxLength": 1000},
            "feeds": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Feed keys: the registries they work on.",
            },
            "permissions": {
                "type": "array",
                "items": {"type": "string", "enum": ["view", "publish", "promote", "delete"]},
                "description": "Feed keys: what they may do there.",
            },
            "areas": {
                "type": "array",
                "items": {"type": "string", "enum": API_AREAS},
                "description": "System keys: limit the key to these API areas "
                "(`promotions`: /api/promotions/, `feeds`: "
                "/api/management/feeds/, `api-keys`: /api/api-keys/); "
                "omit or leave empty for full control. A limited key is "
                "refused (403) elsewhere in the API, on pages and by the "
                "docker token service.",
            },
            "user": {
                "type": "string",
                "description": "Personal keys: the user the key acts as (default: the caller).",
            },
            "expiration": {
                "type": "string",
                "description": "ISO 8601 date or date-time; omit for a key that never expires.",
            },
            "API_Key": {"type": "string"},
        },
    },
}


def _promote() -> dict:
    body_schema = _ref("PromoteRequest")
    location = {
        "Location": {"description": "The promotion's status URL.", "schema": {"type": "string"}}
    }
    return {
        "post": {
            "operationId": "promote",
            "tags": ["Promotions"],
            "summary": "Promote an image",
            "description": (
                "ProGet's promote call. Pins the digest the tag has now and copies that image "
                "to the target registry, digest-exact. Waits for the promotion to finish (up "
                "to a configured limit) unless `async=true`. Errors are plain text."
            ),
            "security": SECURITY,
            "parameters": [
                _query("async", "Answer 202 at once instead of waiting.", {"type": "boolean"})
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": body_schema},
                    "application/x-www-form-urlencoded": {"schema": body_schema},
                    "multipart/form-data": {"schema": body_schema},
                },
            },
            "responses": {
                "200": _json(_ref("PromotionStatus"), "The promotion succeeded.", location),
                "202": _json(
                    _ref("PromotionStatus"),
                    "Queued or still running (async, or the wait ran out); poll Location.",
                    location,
                ),
                "400": _text_error(
                    "Invalid input (the message says which), a target the "
                    "pipeline forbids, or a promotion that failed (and why)."
                ),
                "403": _both_errors(
                    "No API key, an unknown, expired or revoked key, a system "
                    "key limited to other API areas, or a caller without "
                    "Promote on the target."
                ),
                "404": _text_error("Unknown feed, repository or tag."),
                "413": _text_error(TOO_LARGE),
                "415": _text_error("The body is not JSON, form or multipart."),
                "429": THROTTLED,
            },
        }
    }


def _promotion_list() -> dict:
    return {
        "get": {
            "operationId": "listPromotions",
            "tags": ["Promotions"],
            "summary": "List promoted images",
            "description": "Succeeded promotions the caller may view, grouped by image and "
            "version, oldest promotion first (the newest 1000 promotions are "
            "considered). An empty result is `[]`. Errors are plain text.",
            "security": SECURITY_OPTIONAL,
            "parameters": [
                _query("fromFeed", "Only promotions from this registry."),
                _query("toFeed", "Only promotions into this registry."),
                _query("group", "Only repositories under this path, e.g. `team`."),
                _query("groupName", "Same as `group`."),
                _query(
                    "package",
                    "The repository (`team/api`), or its last component with `group`, or alone.",
                ),
                _query("packageName", "Same as `package`."),
                _query("version", "A tag, or a `sha256:` digest."),
            ],
            "responses": {
                "200": _json(
                    {"type": "array", "items": _ref("PromotedPackage")}, "The promoted images."
                ),
                "400": _text_error("A parameter is repeated or holds control characters."),
                "403": _both_errors(
                    "An unknown, expired or revoked key, or a system key "
                    "limited to other API areas."
                ),
                "429": THROTTLED,
            },
        }
    }


def _promotion_status() -> dict:
    return {
        "get": {
            "operationId": "promotionStatus",
            "tags": ["Promotions"],
            "summary": "Status and progress of a promotion",
            "security": SECURITY_OPTIONAL,
            "parameters": [_path_id("promotion_id", "The promotion's id.")],
            "responses": {
                "200": _json(_ref("PromotionStatus"), "The promotion."),
                **_json_errors(
                    400,
                    403,
                    404,
                    not_found="No such promotion, or the caller may "
                    "view neither of its registries.",
                ),
            },
        }
    }


def _feeds() -> dict[str, dict]:
    name = _path_name("The feed (registry) name.")
    feed = _json(_ref("Feed"), "The feed.")
    return {
        "/api/management/feeds/list": {
            "get": {
                "operationId": "listFeeds",
                "tags": ["Feeds"],
                "summary": "List feeds",
                "description": "The registries the caller may manage (Manage Feed).",
                "security": SECURITY,
                "responses": {
                    "200": _json({"type": "array", "items": _ref("Feed")}, "The feeds."),
                    **_json_errors(400, 403),
                },
            }
        },
        "/api/management/feeds/get/{name}": {
            "get": {
                "operationId": "getFeed",
                "tags": ["Feeds"],
                "summary": "Get a feed",
                "description": "Needs Manage Feed on it.",
                "security": SECURITY,
                "parameters": [name],
                "responses": {
                    "200": feed,
                    **_json_errors(400, 403, 404, not_found="No such feed."),
                },
            }
        },
        "/api/management/feeds/create": {
            "post": {
                "operationId": "createFeed",
                "tags": ["Feeds"],
                "summary": "Create a feed",
                "description": "Needs Administer. `name` and `feedType` (`docker`) are required.",
                "security": SECURITY,
                "requestBody": _json_body("FeedCreate"),
                "responses": {
                    "201": _json(_ref("Feed"), "The new feed."),
                    **_json_errors(
                        400, 403, 404, 413, 415, not_found="The promoteTo feed does not exist."
                    ),
                },
            }
        },
        "/api/management/feeds/update/{name}": {
            "post": {
                "operationId": "updateFeed",
                "tags": ["Feeds"],
                "summary": "Change a feed",
                "description": "Needs Manage Feed. Omitted or null properties stay as they are; "
                "the name and usage type cannot change.",
                "security": SECURITY,
                "parameters": [name],
                "requestBody": _json_body("FeedWrite"),
                "responses": {
                    "200": feed,
                    **_json_errors(
                        400, 403, 404, 413, 415, not_found="No such feed (or promoteTo)."
                    ),
                },
            }
        },
        "/api/management/feeds/delete/{name}": {
            "post": {
                "operationId": "deleteFeed",
                "tags": ["Feeds"],
                "summary": "Delete a feed",
                "description": "Needs Administer. A feed with promotions in its History cannot be "
                "deleted (400); set it inactive instead. Images stay in the "
                "backing registry.",
                "security": SECURITY,
                "parameters": [name],
                "requestBody": _json_body("KeyOnly", required=False),
                "responses": {
                    "200": _json(_ref("Deleted"), "Deleted."),
                    **_json_errors(400, 403, 404, 413, 415, not_found="No such feed."),
                },
            }
        },
    }


def _api_keys() -> dict[str, dict]:
    return {
        "/api/api-keys/create": {
            "post": {
                "operationId": "createApiKey",
                "tags": ["API keys"],
                "summary": "Create an API key",
                "description": "Needs Administer; anyone signed in may create a personal key for "
                "themselves. The answer carries the key, once.",
                "security": SECURITY,
                "requestBody": _json_body("ApiKeyCreate"),
                "responses": {
                    "201": _json(_ref("ApiKeyCreated"), "The new key, with its secret."),
                    **_json_errors(400, 403, 404, 413, 415, not_found="An unknown feed or user."),
                },
            }
        },
        "/api/api-keys/list": {
            "get": {
                "operationId": "listApiKeys",
                "tags": ["API keys"],
                "summary": "List API keys",
                "description": "All keys for administrators, a person's own personal keys "
                "otherwise. Never the secret.",
                "security": SECURITY,
                "responses": {
                    "200": _json({"type": "array", "items": _ref("ApiKey")}, "The keys."),
                    **_json_errors(400, 403),
                },
            }
        },
        "/api/api-keys/delete/{api_key_id}": {
            "post": {
                "operationId": "deleteApiKey",
                "tags": ["API keys"],
                "summary": "Revoke an API key",
                "description": "Refused from now on; it stays listed with its revocation date.",
                "security": SECURITY,
                "parameters": [_path_id("api_key_id", "The key's id.")],
                "requestBody": _json_body("KeyOnly", required=False),
                "responses": {
                    "200": _json(_ref("ApiKey"), "The revoked key."),
                    **_json_errors(400, 403, 404, 413, 415, not_found="No such key."),
                },
            }
        },
    }


def openapi_document(server: str | None = None) -> dict:
    """The whole OpenAPI 3.1 document."""
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "Promoter API",
            "version": "1",
            "description": (
                "Promote container images between registries (ProGet-compatible), and manage "
                "feeds and API keys. Authenticate with an API key in the `X-ApiKey` header, the "
                "`key` query or form value, the `API_Key` JSON property, or Basic auth as "
                "`api:<key>`; a person's Basic user name and password work too. Bodies are "
                f"limited to {MAX_BODY_BYTES // 1024} KiB."
            ),
        },
        "paths": {
            "/api/promotions/promote": _promote(),
            "/api/promotions/list": _promotion_list(),
            "/api/promotions/status/{promotion_id}": _promotion_status(),
            **_feeds(),
            **_api_keys(),
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-ApiKey"},
                "apiKeyQuery": {"type": "apiKey", "in": "query", "name": "key"},
                "basic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "`api:<key>`, or a person's user name and password.",
                },
            },
        },
    }
    if server:
        document["servers"] = [{"url": server}]
    return document


# --- the page ---------------------------------------------------------------------------
def _prose(text: str) -> SafeString:
    """Escaped text with `code` spans as <code> (the document's descriptions use them)."""
    return mark_safe(re.sub(r"`([^`]+)`", r'<code class="mono">\1</code>', escape(text)))


def _schema_name(schema: dict) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if schema.get("type") == "array" and "items" in schema:
        return f"array of {_schema_name(schema['items'])}"
    kind = schema.get("type", "object")
    return " or ".join(kind) if isinstance(kind, list) else kind


def _properties(schema: dict) -> list[dict]:
    """Rows (name, type, required, description) of an object schema, following allOf."""
    parts = schema.get("allOf", [schema])
    rows, required = [], set()
    for part in parts:
        if "$ref" in part:
            part = SCHEMAS[part["$ref"].rsplit("/", 1)[-1]]
            nested = _properties(part)
            rows.extend(nested)
            required |= {r["name"] for r in nested if r["required"]}
            continue
        required |= set(part.get("required", []))
        for name, prop in part.get("properties", {}).items():
            kind = _schema_name(prop)
            if "enum" in prop:
                kind += ": " + " | ".join(str(v) for v in prop["enum"] if v is not None)
            if "const" in prop:
                kind += f": {prop['const']}"
            rows.append(
                {
                    "name": name,
                    "type": kind,
                    "description": _prose(prop.get("description", "")),
                    "required": False,
                }
            )
    for row in rows:
        row["required"] = row["required"] or row["name"] in required
    return rows


def docs_context(document: dict) -> dict:
    """What templates/api/docs.html shows: endpoints grouped by tag, then schemas."""
    groups: dict[str, list[dict]] = {}
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            body = op.get("requestBody")
            responses = []
            for code, answer in op["responses"].items():
                content = answer.get("content", {})
                responses.append(
                    {
                        "code": code,
                        "description": _prose(answer["description"]),
                        "types": ", ".join(content),
                        "schema": ", ".join(
                            sorted({_schema_name(c["schema"]) for c in content.values()})
                        ),
                    }
                )
            groups.setdefault(op["tags"][0], []).append(
                {
                    "id": op["operationId"],
                    "method": method.upper(),
                    "path": path,
                    "summary": op["summary"],
                    "description": _prose(op.get("description", "")),
                    "anonymous": {} in op.get("security", []),
                    "parameters": [
                        {**p, "description": _prose(p.get("description", ""))}
                        for p in op.get("parameters", [])
                    ],
                    "body_types": ", ".join(body["content"]) if body else "",
                    "body_required": bool(body and body.get("required")),
                    "body_schema": (
                        _schema_name(next(iter(body["content"].values()))["schema"]) if body else ""
                    ),
                    "responses": responses,
                }
            )
    schemas = [
        {
            "name": name,
            "description": _prose(schema.get("description", "")),
            "rows": _properties(schema),
        }
        for name, schema in SCHEMAS.items()
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
