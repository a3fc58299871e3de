"""The index's write primitives: append a History event, move or drop a tag.

Called inside the transaction of a service (promotions, roll back, notifications, sync) or
of the runner, which own the checks; these only write.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from accounts.permissions import Principal
from registries.models import HistoryEvent, Registry, Repository, Tag
from registries.oci.inspect import ImageSummary


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
