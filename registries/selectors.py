"""Reads: querysets and small dataclasses, with the permission filter applied here."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import Count, Q, Sum
from django.http import Http404

from accounts.models import Permission
from accounts.permissions import Principal
from registries.clients import client_for
from registries.images import ImageDetails, image_details
from registries.models import HistoryEvent, Promotion, Registry, Repository, Tag
from registries.oci.errors import RegistryError

PAGE_SIZE = 50


def registry_list(*, principal: Principal):
    """Registries the principal may view, with repository and tag counts (one query)."""
    return (
        principal.registries_with(Permission.VIEW)
        .select_related("promote_to")
        .annotate(
            repository_count=Count("repositories", distinct=True),
            tag_count=Count("repositories__tags", distinct=True),
        )
    )


def registry_get(*, principal: Principal, name: str, permission: str = Permission.VIEW) -> Registry:
    """The registry called `name`, or 404; PermissionDenied when the principal may not."""
    registry = Registry.objects.select_related("promote_to").filter(name=name).first()
    if registry is None:
        raise Http404(f"There is no registry called {name!r}.")
    if not principal.has(permission, registry):
        raise PermissionDenied(f"You may not view the registry {name}.")
    return registry


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
        raise Http404(f"There is no repository {name!r} in {registry.name}.")
    return repository


def tag_page(*, repository: Repository, query: str = "", page: int | str = 1) -> Page:
    tags = Tag.objects.filter(repository=repository)
    if query:
        tags = tags.filter(name__icontains=query.strip())
    return Paginator(tags.order_by("-pushed_at", "name"), PAGE_SIZE).get_page(page)


def tag_get(*, repository: Repository, name: str) -> Tag:
    tag = (
        Tag.objects.filter(repository=repository, name=name)
        .select_related("repository__registry")
        .first()
    )
    if tag is None:
        raise Http404(f"There is no tag {name!r} in {repository.registry.name}/{repository.name}.")
    return tag


@dataclass
class LiveImage:
    details: ImageDetails | None
    error: str = ""


def tag_image(*, tag: Tag) -> LiveImage:
    """Layers, labels and platforms read live from the registry; an error message when down."""
    registry = tag.repository.registry
    try:
        details = image_details(
            client_for(registry), registry.backing_path(tag.repository.name), tag.digest
        )
    except RegistryError as exc:
        return LiveImage(None, exc.message)
    return LiveImage(details)


def image_history(
    *, principal: Principal, repository: str, digest: str, page: int | str = 1
) -> Page:
    """The trail of one image across registries (same repository and digest), newest first."""
    visible = list(principal.registries_with(Permission.VIEW).values_list("name", flat=True))
    events = (
        HistoryEvent.objects.filter(repository=repository, digest=digest)
        .filter(Q(registry__in=visible) | Q(to_registry__in=visible))
        .order_by("-created_at", "-id")
    )
    return Paginator(events, 20).get_page(page)


def tag_history(*, principal: Principal, tag: Tag, page: int | str = 1) -> Page:
    """History of the tag page: events of this image, and of this tag in this registry."""
    visible = list(principal.registries_with(Permission.VIEW).values_list("name", flat=True))
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
    visible = principal.registries_with(Permission.VIEW)
    promotions = (
        Promotion.objects.filter(Q(source__in=visible) | Q(target__in=visible))
        .select_related("source", "target")
        .order_by("-created_at", "-id")
    )
    return Paginator(promotions, PAGE_SIZE).get_page(page)


def promotion_get(*, principal: Principal, promotion_id: int) -> Promotion:
    promotion = Promotion.objects.select_related("source", "target").filter(pk=promotion_id).first()
    if promotion is None:
        raise Http404("There is no such promotion.")
    if not (
        principal.has(Permission.VIEW, promotion.source)
        or principal.has(Permission.VIEW, promotion.target)
    ):
        raise PermissionDenied("You may not view this promotion.")
    return promotion
