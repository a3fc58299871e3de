"""Reads for the API, with the permission filter applied here."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from accounts.models import ApiKey, Permission
from accounts.permissions import Principal
from accounts.selectors import api_key_list
from api.http import ApiError
from registries.models import REGISTRY_NAME_VALIDATOR, Promotion, Registry

PROMOTION_LIST_LIMIT = 1000


def feed_get(*, principal: Principal, name: str, permission: str = Permission.VIEW) -> Registry:
    """The registry called `name`: 404 when there is none or the caller may not see it,
    403 when the caller sees it but lacks `permission`."""
    registry = None
    if REGISTRY_NAME_VALIDATOR.regex.fullmatch(name) and len(name) <= 64:
        registry = Registry.objects.select_related("promote_to").filter(name=name).first()
    if registry is None or not (principal.has(Permission.VIEW, registry)
                                or principal.has(permission, registry)):
        raise ApiError(404, f"There is no feed called {name!r}.")
    if not principal.has(permission, registry):
        label = Permission(permission).label
        raise ApiError(403, f"You may not do this in {registry.name}: that needs {label}.")
    return registry


def feed_list(*, principal: Principal) -> QuerySet[Registry]:
    """Registries the caller may manage (Manage Feed)."""
    return principal.registries_with(Permission.MANAGE_FEED).select_related("promote_to")


@dataclass(frozen=True)
class PromotionFilter:
    from_feed: str | None = None
    to_feed: str | None = None
    group: str | None = None
    package: str | None = None
    version: str | None = None


def promoted_packages(
    *, principal: Principal, where: PromotionFilter
) -> list[tuple[str, str, list[Promotion]]]:
    """Succeeded promotions the caller may see, grouped by (repository, tag), oldest first.

    A promotion is visible with View on its source or its target. At most the newest
    PROMOTION_LIST_LIMIT promotions are considered.
    """
    visible = principal.registries_with(Permission.VIEW)
    promotions = Promotion.objects.filter(status=Promotion.Status.SUCCEEDED).filter(
        Q(source__in=visible) | Q(target__in=visible)
    )
    if where.from_feed:
        promotions = promotions.filter(source__name=where.from_feed)
    if where.to_feed:
        promotions = promotions.filter(target__name=where.to_feed)
    group = (where.group or "").strip("/")
    if where.package and group:
        promotions = promotions.filter(repository=f"{group}/{where.package}")
    elif where.package:
        promotions = promotions.filter(
            Q(repository=where.package) | Q(repository__endswith="/" + where.package)
        )
    elif group:
        promotions = promotions.filter(repository__startswith=group + "/")
    if where.version:
        field = "digest" if where.version.startswith("sha256:") else "tag"
        promotions = promotions.filter(**{field: where.version})
    newest = list(
        promotions.select_related("source", "target").order_by("-created_at", "-id")[
            :PROMOTION_LIST_LIMIT
        ]
    )
    grouped: dict[tuple[str, str], list[Promotion]] = {}
    for promotion in reversed(newest):
        grouped.setdefault((promotion.repository, promotion.tag), []).append(promotion)
    return [(repo, tag, items) for (repo, tag), items in sorted(grouped.items())]


def promotion_visible(*, principal: Principal, promotion_id: int) -> Promotion:
    """One promotion the caller may see (View on its source or target), else 404."""
    promotion = Promotion.objects.select_related("source", "target").filter(pk=promotion_id).first()
    if promotion is None or not (principal.has(Permission.VIEW, promotion.source)
                                 or principal.has(Permission.VIEW, promotion.target)):
        raise ApiError(404, f"There is no promotion {promotion_id}.")
    return promotion


def promotion_wait(*, promotion_id: int, timeout: float) -> Promotion:
    """The promotion once it has finished, or as it is after `timeout` seconds (polls the DB)."""
    deadline = time.monotonic() + max(0.0, timeout)
    delay = 0.05
    while True:
        promotion = Promotion.objects.select_related("source", "target").get(pk=promotion_id)
        remaining = deadline - time.monotonic()
        if promotion.is_finished or remaining <= 0:
            return promotion
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 1.0)


def api_keys_for(*, principal: Principal) -> QuerySet[ApiKey]:
    """All keys for administrators; a person's own personal keys otherwise."""
    keys = api_key_list().order_by("-created_at", "-id")
    if principal.is_administrator():
        return keys
    if principal.user is not None and (principal.api_key is None
                                       or principal.api_key.kind == ApiKey.Kind.PERSONAL):
        return keys.filter(kind=ApiKey.Kind.PERSONAL, user=principal.user)
    raise ApiError(403, "Listing API keys needs Administer (or a person's own credentials).")


def api_key_for(*, principal: Principal, api_key_id: int) -> ApiKey:
    """One key the caller may see (as api_keys_for), else 404."""
    key = api_keys_for(principal=principal).filter(pk=api_key_id).first()
    if key is None:
        raise ApiError(404, f"There is no API key {api_key_id}.")
    return key
