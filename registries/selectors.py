"""Reads: querysets and small dataclasses, with the permission filter applied here.

Every read of registries, tags, History and promotions, for pages, the API and the token
service. No HTTP and no network: what needs the registry is a service.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import Count, Q, QuerySet, Sum

from accounts.models import Permission
from accounts.permissions import Principal
from promoter.errors import Forbidden, Invalid, NotFound
from registries.models import (
    REGISTRY_NAME_VALIDATOR,
    HistoryEvent,
    Image,
    Promotion,
    Registry,
    Repository,
    Tag,
)

PAGE_SIZE = 50
PROMOTION_LIST_LIMIT = 1000


def registry_list(*, principal: Principal):
    """Registries the principal may view, with repository and tag counts (one query)."""
    return (
        Registry.objects.restrict(principal, Permission.VIEW)
        .select_related("promote_to")
        .annotate(
            repository_count=Count("repositories", distinct=True),
            tag_count=Count("repositories__tags", distinct=True),
        )
    )


def registry_get(*, principal: Principal, name: str, permission: str = Permission.VIEW) -> Registry:
    """The registry called `name`.

    NotFound when there is none or the principal may not see it (so names cannot be
    probed); Forbidden when it sees the registry but lacks `permission`.
    """
    registry = None
    if len(name) <= 64 and REGISTRY_NAME_VALIDATOR.regex.fullmatch(name):
        registry = Registry.objects.select_related("promote_to").filter(name=name).first()
    if registry is None or not (
        principal.has(Permission.VIEW, registry) or principal.has(permission, registry)
    ):
        raise NotFound(f"There is no registry called {name!r}.")
    if not principal.has(permission, registry):
        label = Permission(permission).label
        raise Forbidden(f"You may not do this in {registry.name}: that needs {label}.")
    return registry


def registries_managed(*, principal: Principal) -> QuerySet[Registry]:
    """Registries the principal may manage (Manage Feed)."""
    return Registry.objects.restrict(principal, Permission.MANAGE_FEED).select_related("promote_to")


def repository_page(*, registry: Registry, query: str = "", page: int | str = 1) -> Page:
    """One page of the registry's repositories, filtered by name, with tag counts and sizes."""
    repositories = Repository.objects.filter(registry=registry)
    if query:
        repositories = repositories.filter(name__icontains=query.strip())
    repositories = repositories.annotate(
        tag_count=Count("tags"), total_size=Sum("tags__size")
    ).order_by("name")
    return Paginator(repositories, PAGE_SIZE).get_page(page)


def repository_get(*, registry: Registry, name: str) -> Repository:
    repository = Repository.objects.filter(registry=registry, name=name).first()
    if repository is None:
        raise NotFound(f"There is no repository {name!r} in {registry.name}.")
    return repository


def tag_page(*, repository: Repository, query: str = "", page: int | str = 1) -> Page:
    tags = Tag.objects.filter(repository=repository)
    if query:
        tags = tags.filter(name__icontains=query.strip())
    return Paginator(tags.order_by("-pushed_at", "name"), PAGE_SIZE).get_page(page)


def untagged_images(*, repository: Repository, limit: int = PAGE_SIZE) -> list[Image]:
    """Images the repository holds by digest that no tag points at, newest first."""
    tagged = Tag.objects.filter(repository=repository).values("digest")
    return list(
        Image.objects.filter(repository=repository)
        .exclude(digest__in=tagged)
        .order_by("-pushed_at", "digest")[:limit]
    )


def tag_get(*, repository: Repository, name: str) -> Tag:
    tag = (
        Tag.objects.filter(repository=repository, name=name)
        .select_related("repository__registry")
        .first()
    )
    if tag is None:
        raise NotFound(f"There is no tag {name!r} in {repository.registry.name}/{repository.name}.")
    return tag


def _visible_names(principal: Principal) -> list[str]:
    return list(
        Registry.objects.restrict(principal, Permission.VIEW).values_list("name", flat=True)
    )


def image_history(
    *, principal: Principal, repository: str, digest: str, page: int | str = 1
) -> Page:
    """The trail of one image across registries (same repository and digest), newest first."""
    visible = _visible_names(principal)
    events = (
        HistoryEvent.objects.filter(repository=repository, digest=digest)
        .filter(Q(registry__in=visible) | Q(to_registry__in=visible))
        .order_by("-created_at", "-id")
    )
    return Paginator(events, 20).get_page(page)


def tag_history(*, principal: Principal, tag: Tag, page: int | str = 1) -> Page:
    """History of the tag page: events of this image, and of this tag in this registry."""
    visible = _visible_names(principal)
    registry = tag.repository.registry.name
    events = (
        HistoryEvent.objects.filter(repository=tag.repository.name)
        .filter(Q(digest=tag.digest) | Q(registry=registry, tag=tag.name))
        .filter(Q(registry__in=visible) | Q(to_registry__in=visible))
        .order_by("-created_at", "-id")
    )
    return Paginator(events, 20).get_page(page)


def promotions_for_registry(*, registry: Registry, limit: int = 10):
    """Recent promotions into and out of a registry."""
    return (
        Promotion.objects.filter(Q(source=registry) | Q(target=registry))
        .select_related("source", "target")
        .order_by("-created_at", "-id")[:limit]
    )


def promotion_list(*, principal: Principal, page: int | str = 1) -> Page:
    visible = Registry.objects.restrict(principal, Permission.VIEW)
    promotions = (
        Promotion.objects.filter(Q(source__in=visible) | Q(target__in=visible))
        .select_related("source", "target")
        .order_by("-created_at", "-id")
    )
    return Paginator(promotions, PAGE_SIZE).get_page(page)


def promotion_get(*, principal: Principal, promotion_id: int) -> Promotion:
    """One promotion the principal may see (View on its source or target), else NotFound."""
    promotion = Promotion.objects.select_related("source", "target").filter(pk=promotion_id).first()
    if promotion is None or not (
        principal.has(Permission.VIEW, promotion.source)
        or principal.has(Permission.VIEW, promotion.target)
    ):
        raise NotFound(f"There is no promotion {promotion_id}.")
    return promotion


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
    visible = Registry.objects.restrict(principal, Permission.VIEW)
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


_waiting = 0  # synchronous promotion waits in progress in this process
_waiting_lock = threading.Lock()


@contextmanager
def _wait_slot() -> Iterator[bool]:
    """One of PROMOTER_API_MAX_WAITS places to wait in; False when all are taken."""
    global _waiting
    with _waiting_lock:
        granted = _waiting < settings.PROMOTER_API_MAX_WAITS
        if granted:
            _waiting += 1
    try:
        yield granted
    finally:
        if granted:
            with _waiting_lock:
                _waiting -= 1


def promotion_wait(*, promotion_id: int, timeout: float) -> Promotion:
    """The promotion once it has finished, or as it is after `timeout` seconds (polls the DB).

    Each wait holds a web thread, so at most PROMOTER_API_MAX_WAITS wait at once per
    process; beyond that the promotion is returned as it is now (unfinished: the API answers
    202 with its status URL), and health checks, tokens and pages keep their threads.
    """
    with _wait_slot() as granted:
        return _promotion_wait(promotion_id, timeout if granted else 0.0)


def _promotion_wait(promotion_id: int, timeout: float) -> Promotion:
    deadline = time.monotonic() + max(0.0, timeout)
    delay = 0.05
    while True:
        promotion = Promotion.objects.select_related("source", "target").get(pk=promotion_id)
        remaining = deadline - time.monotonic()
        if promotion.is_finished or remaining <= 0:
            return promotion
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 1.0)


def promotion_targets(*, source: Registry, principal: Principal) -> list[Registry]:
    """Where the principal may promote from `source`: its Promote To target, or any other.

    The one answer to "which target may I promote to", for pages, the API and the CLI.
    """
    if source.promote_to_id:
        candidates = [source.promote_to]
    else:
        candidates = list(Registry.objects.filter(active=True).exclude(pk=source.pk))
    return [t for t in candidates if t.active and principal.can_promote(source, t)]


def promotion_target(*, source: Registry, name: str | None) -> Registry:
    """The target a request names, or the source's Promote To registry when it names none."""
    if not name:
        if source.promote_to_id is None:
            raise Invalid(f"Name a target registry: {source.name} has no Promote To registry.")
        return source.promote_to
    target = None
    if len(name) <= 64 and REGISTRY_NAME_VALIDATOR.regex.fullmatch(name):
        target = Registry.objects.filter(name=name).first()
    if target is None:
        raise NotFound(f"There is no registry called {name!r}.")
    return target


def registry_for_path(path: str) -> tuple[Registry, str] | None:
    """The bundled registry and repository a backing path like `devdocker/team/api` belongs to."""
    head, _, rest = path.partition("/")
    if not rest:
        return None
    registry = Registry.objects.filter(name=head, endpoint="").first()
    return (registry, rest) if registry else None
