"""The inputs of each write endpoint, read from the parsed body and checked (400 on error)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from accounts.models import ApiKey
from accounts.permissions import FEED_KEY_PERMISSIONS
from api.http import ApiError
from api.parsing import boolean, moment, string_list, text
from registries.models import COMMENT_MAX, Registry
from registries.oci import manifest as oci_manifest
from registries.oci.errors import RegistryError


@dataclass(frozen=True)
class PromoteInput:
    repository: str
    version: str
    from_feed: str
    to_feed: str | None
    comment: str


def promote_input(fields: dict[str, Any]) -> PromoteInput:
    """ProGet's promote fields: name|packageName, group|groupName, version, fromFeed, toFeed."""
    name = text(fields, "name", "packageName", required=True, max_length=300)
    group = text(fields, "group", "groupName", max_length=300)
    repository = f"{group.strip('/')}/{name}" if group and group.strip("/") else name
    try:
        oci_manifest.validate_name(repository)
    except RegistryError:
        raise ApiError(
            400,
            f"{repository!r} is not a valid repository name: use lowercase "
            "letters, digits and separators (. _ __ -), components joined by "
            "'/', at most 255 characters.",
        ) from None
    version = text(fields, "version", required=True, max_length=200)
    try:
        oci_manifest.validate_reference(version)
    except RegistryError:
        raise ApiError(
            400,
            f"{version!r} is not a valid tag (up to 128 letters, digits, '_', "
            "'.' or '-', not starting with '.' or '-') or sha256 digest.",
        ) from None
    return PromoteInput(
        repository=repository,
        version=version,
        from_feed=text(fields, "fromFeed", required=True, max_length=200),
        to_feed=text(fields, "toFeed", max_length=200) or None,
        comment=text(fields, "comments", "comment", multiline=True, max_length=COMMENT_MAX) or "",
    )


USAGE_TYPES = {"general": Registry.UsageType.GENERAL, "validated": Registry.UsageType.VALIDATED}


def feed_input(fields: dict[str, Any], *, creating: bool) -> tuple[str | None, dict[str, Any]]:
    """(name, model values) of a feed object; omitted and null properties are left out."""
    name = text(fields, "name", required=creating, max_length=64)
    feed_type = text(fields, "feedType", required=creating, max_length=64)
    if feed_type is not None and feed_type != "docker":
        raise ApiError(400, f"feedType {feed_type!r} is not supported; feeds are docker.")
    usage = text(fields, "usageType", max_length=32)
    if usage is not None and usage not in USAGE_TYPES:
        raise ApiError(400, "usageType must be general or validated.")
    values = {
        "description": text(fields, "description", multiline=True),
        "active": boolean(fields, "active"),
        "usage_type": USAGE_TYPES[usage] if usage is not None else None,
        "promote_to": text(fields, "promoteTo", max_length=64),
        "endpoint": text(fields, "endpoint", max_length=200),
        "namespace": text(fields, "namespace", max_length=255),
        "username": text(fields, "username", max_length=255),
        "password": text(fields, "password", max_length=1024),
    }
    return name, {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True)
class ApiKeyInput:
    kind: str
    name: str
    description: str
    feeds: list[str]
    permissions: list[str]
    areas: list[str]
    user: str | None
    expires_at: dt.datetime | None


def api_key_input(fields: dict[str, Any]) -> ApiKeyInput:
    """type (personal|feed|system), name, description, feeds, permissions, areas, user,
    expiration (accounts.services checks the areas)."""
    kind = text(fields, "type", "kind", required=True, max_length=16)
    if kind not in ApiKey.Kind.values:
        raise ApiError(400, "type must be personal, feed or system.")
    permissions = string_list(fields, "permissions") or []
    unknown = sorted(set(permissions) - set(FEED_KEY_PERMISSIONS))
    if unknown:
        raise ApiError(
            400,
            f"Unknown permission: {', '.join(unknown)}; a feed key may have "
            "view, publish, promote and delete.",
        )
    return ApiKeyInput(
        kind=kind,
        name=text(fields, "name", required=True, max_length=100).strip(),
        description=text(fields, "description", multiline=True, max_length=1000) or "",
        feeds=string_list(fields, "feeds") or [],
        permissions=permissions,
        areas=string_list(fields, "areas") or [],
        user=text(fields, "user", max_length=150),
        expires_at=moment(fields, "expiration"),
    )
