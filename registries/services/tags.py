"""Writes to the tag index and History: upsert, remove, roll back, record an event."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from accounts.models import Permission
from accounts.permissions import Principal
from promoter.errors import Forbidden, Invalid
from registries.connections import client_for
from registries.models import HistoryEvent, Registry, Repository, Tag
from registries.oci.errors import DigestMismatch, ManifestUnknown, RegistryError
from registries.oci.inspect import ImageSummary, describe_image


def history_record(
    *,
    action: str,
    registry: Registry | str,
    repository: str,
    tag: str,
    digest: str,
    actor: Principal | str,
    from_registry: str = "",
    to_registry: str = "",
    comment: str = "",
    promotion=None,
    source_event_id: str = "",
    created_at: dt.datetime | None = None,
) -> HistoryEvent:
    """Append one History event (call inside the write's transaction)."""
    user = actor.history_user if isinstance(actor, Principal) else None
    actor_name = actor.name if isinstance(actor, Principal) else actor
    return HistoryEvent.objects.create(
        action=action,
        registry=registry.name if isinstance(registry, Registry) else registry,
        repository=repository,
        tag=tag,
        digest=digest,
        actor=actor_name,
        user=user,
        from_registry=from_registry,
        to_registry=to_registry,
        comment=comment,
        promotion=promotion,
        source_event_id=source_event_id,
        created_at=created_at or timezone.now(),
    )


def tag_upsert(
    *,
    registry: Registry,
    repository: str,
    tag: str,
    summary: ImageSummary,
    pushed_at: dt.datetime | None = None,
    remember_previous: bool = False,
) -> tuple[Tag, str]:
    """Point `repository:tag` in the index at the summary's digest; returns (tag, old digest)."""
    repo, _ = Repository.objects.get_or_create(registry=registry, name=repository)
    existing = Tag.objects.select_for_update().filter(repository=repo, name=tag).first()
    now = pushed_at or timezone.now()
    if existing is None:
        created = Tag.objects.create(
            repository=repo,
            name=tag,
            digest=summary.digest,
            media_type=summary.media_type,
            size=summary.size,
            platforms=summary.platforms,
            pushed_at=now,
        )
        return created, ""
    old = existing.digest
    if old != summary.digest:
        if remember_previous:
            existing.previous_digest = old
        existing.pushed_at = now
    existing.digest = summary.digest
    existing.media_type = summary.media_type
    existing.size = summary.size
    existing.platforms = summary.platforms
    existing.save()
    return existing, old


def tag_remove(*, registry: Registry, repository: str, tag: str) -> Tag | None:
    """Drop a tag from the index (it was deleted at the registry); empty repositories go too."""
    found = (
        Tag.objects.select_for_update()
        .filter(repository__registry=registry, repository__name=repository, name=tag)
        .select_related("repository")
        .first()
    )
    if found is None:
        return None
    repo = found.repository
    found.delete()
    if not repo.tags.exists():
        repo.delete()
    return found


def tag_roll_back(*, tag: Tag, actor: Principal) -> Tag:
    """Re-point a promoted tag at the digest it had before the last promotion."""
    registry = tag.repository.registry
    if not actor.has(Permission.PROMOTE, registry):
        raise Forbidden(f"You may not roll back tags in {registry.name}.")
    if not tag.previous_digest:
        raise Invalid(f"{tag} has no earlier digest to roll back to.")
    client = client_for(registry)
    path = registry.backing_path(tag.repository.name)
    try:
        previous = client.get_manifest(path, tag.previous_digest)
        digest = client.put_manifest(path, tag.name, previous.body, previous.media_type)
        if digest != tag.previous_digest:
            raise DigestMismatch(f"the registry stored {digest}, not {tag.previous_digest}")
        summary = describe_image(client, path, digest)
    except ManifestUnknown as exc:
        raise Invalid(
            f"The earlier image {tag.previous_digest} is no longer in {registry.name}."
        ) from exc
    except RegistryError as exc:
        raise Invalid(f"Roll back failed, the tag was not changed: {exc.message}") from exc
    with transaction.atomic():
        updated, old = tag_upsert(
            registry=registry,
            repository=tag.repository.name,
            tag=tag.name,
            summary=summary,
            remember_previous=True,
        )
        history_record(
            action="rolled_back",
            registry=registry,
            repository=tag.repository.name,
            tag=tag.name,
            digest=digest,
            actor=actor,
            comment=f"from {old}",
        )
    return updated
