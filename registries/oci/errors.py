"""Typed registry errors and the mapping from HTTP responses to them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests


class RegistryError(Exception):
    """A registry call failed; `message` says what happened and what to do."""

    code = "UNKNOWN"
    hint = ""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        detail: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or type(self).code
        self.status = status
        self.detail = detail

    def __str__(self) -> str:
        return self.message


class RegistryUnreachable(RegistryError):
    code = "UNREACHABLE"


class RegistryTimeout(RegistryError):
    code = "TIMEOUT"


class Unauthorized(RegistryError):
    code = "UNAUTHORIZED"
    hint = "Check the username, password or token used for this registry."


class Denied(RegistryError):
    code = "DENIED"
    hint = "The credentials are valid but lack permission for this action."


class NameUnknown(RegistryError):
    code = "NAME_UNKNOWN"
    hint = "Check the repository name; it may not have been pushed yet."


class ManifestUnknown(RegistryError):
    code = "MANIFEST_UNKNOWN"
    hint = "Check the tag or digest; it may have been deleted."


class BlobUnknown(RegistryError):
    code = "BLOB_UNKNOWN"
    hint = "The blob is not in this repository."


class BlobUploadUnknown(RegistryError):
    code = "BLOB_UPLOAD_UNKNOWN"
    hint = "The upload session expired or was cancelled; start the upload again."


class BlobUploadInvalid(RegistryError):
    code = "BLOB_UPLOAD_INVALID"


class BlobTooLarge(RegistryError):
    code = "BLOB_TOO_LARGE"


class ManifestBlobUnknown(RegistryError):
    code = "MANIFEST_BLOB_UNKNOWN"
    hint = "Copy every layer, config and child manifest to the repository before the manifest."


class ManifestInvalid(RegistryError):
    code = "MANIFEST_INVALID"


class DigestInvalid(RegistryError):
    code = "DIGEST_INVALID"


class DigestMismatch(RegistryError):
    code = "DIGEST_MISMATCH"
    hint = "The content changed in transit or the registry rewrote it; do not trust it."


class SizeInvalid(RegistryError):
    code = "SIZE_INVALID"


class TagInvalid(RegistryError):
    code = "TAG_INVALID"


class NameInvalid(RegistryError):
    code = "NAME_INVALID"


class Unsupported(RegistryError):
    code = "UNSUPPORTED"
    hint = "The registry does not support this operation (for deletes: enable storage.delete)."


class LimitExceeded(RegistryError):
    """The registry sent more than Promoter reads: pages, names, children, manifest bytes."""

    code = "LIMIT_EXCEEDED"
    hint = "A real image or registry stays far below these limits; is this one broken?"


class TooManyRequests(RegistryError):
    code = "TOOMANYREQUESTS"
    hint = "The registry is rate limiting; try again later."


class ServerError(RegistryError):
    code = "SERVER_ERROR"
    hint = "The registry failed internally; check its logs and try again."


_BY_CODE: dict[str, type[RegistryError]] = {
    cls.code: cls
    for cls in (
        Unauthorized,
        Denied,
        NameUnknown,
        ManifestUnknown,
        BlobUnknown,
        BlobUploadUnknown,
        BlobUploadInvalid,
        ManifestBlobUnknown,
        ManifestInvalid,
        DigestInvalid,
        SizeInvalid,
        TagInvalid,
        NameInvalid,
        Unsupported,
        TooManyRequests,
    )
}
# Schema1 signature failures are an invalid manifest as far as callers are concerned.
_BY_CODE["MANIFEST_UNVERIFIED"] = ManifestInvalid
_BY_STATUS: dict[int, type[RegistryError]] = {
    401: Unauthorized,
    403: Denied,
    405: Unsupported,
    429: TooManyRequests,
}


def _first_error(body: bytes) -> dict[str, Any]:
    """The first entry of the spec's `{"errors": [...]}` body, or {} when there is none."""
    try:
        document = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {}
    if isinstance(document, dict):
        errors = document.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return errors[0]
    return {}


def error_from_response(
    response: requests.Response,
    *,
    action: str,
    not_found: type[RegistryError] | None = None,
    body: bytes | None = None,
) -> RegistryError:
    """Map a failed registry response to a typed error.

    `action` names what was attempted ("get manifest team/api:1.0 from http://…"), so the
    message reads "Could not <action>: <registry says>. <hint>". `not_found` is the type to
    use for a 404 without a recognisable error code (HEAD answers have no body). `body`
    overrides `response.content` for streamed responses.
    """
    status = response.status_code
    if body is None:
        body = (
            b""
            if response.request is not None and response.request.method == "HEAD"
            else (response.content or b"")
        )
    entry = _first_error(body[:65536])
    code = entry.get("code") if isinstance(entry.get("code"), str) else None
    cls: type[RegistryError] | None = _BY_CODE.get(code) if code else None
    if cls is None:
        if status >= 500:
            cls = ServerError
        elif status == 404 and not_found is not None:
            cls = not_found
        else:
            cls = _BY_STATUS.get(status, RegistryError)
    said = entry.get("message") if isinstance(entry.get("message"), str) else None
    if not said:
        said = f"HTTP {status} {response.reason or ''}".strip()
    else:
        said = f"{said} (HTTP {status})"
    message = f"Could not {action}: {said}."
    if cls.hint:
        message = f"{message} {cls.hint}"
    return cls(message, code=code or cls.code, status=status, detail=entry.get("detail"))
