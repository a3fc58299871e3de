"""JSON shapes of the API (the OpenAPI document in api/openapi.py describes each)."""

from __future__ import annotations

import datetime as dt

from django.urls import reverse

from accounts.models import ApiKey
from registries.models import Promotion, Registry


def when(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def split_repository(repository: str) -> tuple[str | None, str]:
    """`team/api` -> ("team", "api"): ProGet's group and package name; no group -> None."""
    group, _, name = repository.rpartition("/")
    return (group or None), name


def feed(registry: Registry) -> dict:
    return {
        "name": registry.name,
        "feedType": "docker",
        "description": registry.description,
        "active": registry.active,
        "usageType": registry.usage_type,
        "promoteTo": registry.promote_to.name if registry.promote_to_id else None,
        "endpoint": registry.endpoint or None,
        "namespace": registry.namespace or None,
    }


def promotion_status(promotion: Promotion) -> dict:
    group, name = split_repository(promotion.repository)
    return {
        "id": promotion.pk,
        "status": promotion.status,
        "fromFeed": promotion.source.name,
        "toFeed": promotion.target.name,
        "repository": promotion.repository,
        "groupName": group,
        "packageName": name,
        "version": promotion.tag,
        "digest": promotion.digest,
        "comments": promotion.comment,
        "user": promotion.actor,
        "created": when(promotion.created_at),
        "started": when(promotion.started_at),
        "finished": when(promotion.finished_at),
        "error": promotion.error or None,
        "previousDigest": promotion.previous_digest or None,
        "progress": {
            "percent": promotion.percent,
            "blobsTotal": promotion.blobs_total,
            "blobsCopied": promotion.blobs_copied,
            "blobsMounted": promotion.blobs_mounted,
            "blobsSkipped": promotion.blobs_skipped,
            "bytesTotal": promotion.bytes_total,
            "bytesDone": promotion.bytes_done,
            "manifestsTotal": promotion.manifests_total,
            "manifestsCopied": promotion.manifests_copied,
            "signaturesCopied": promotion.signatures_copied,
        },
        "statusUrl": status_url(promotion),
        "pageUrl": reverse("registries:promotion_detail", args=[promotion.pk]),
    }


def status_url(promotion: Promotion) -> str:
    return reverse("api:promotion_status", args=[promotion.pk])


def promoted_package(repository: str, tag: str, promotions: list[Promotion]) -> dict:
    group, name = split_repository(repository)
    return {
        "packageName": name,
        "groupName": group,
        "repository": repository,
        "packageType": "docker",
        "version": tag,
        "promotions": [
            {
                "id": p.pk,
                "fromFeed": p.source.name,
                "toFeed": p.target.name,
                "date": when(p.finished_at or p.created_at),
                "user": p.actor,
                "comments": p.comment,
                "digest": p.digest,
            }
            for p in promotions
        ],
    }


def api_key(key: ApiKey, *, secret: str | None = None) -> dict:
    data = {
        "id": key.pk,
        "name": key.name,
        "description": key.description,
        "type": key.kind,
        "user": key.user.get_username() if key.user_id else None,
        "feeds": sorted(r.name for r in key.registries.all()),
        "permissions": key.feed_permissions,
        "areas": key.areas,
        "created": when(key.created_at),
        "expires": when(key.expires_at),
        "lastUsed": when(key.last_used_at),
        "revoked": when(key.revoked_at),
    }
    if secret is not None:
        data["key"] = secret
    return data
