"""The index's write primitives: append a History event, move or drop a tag.

Called inside the transaction of a service (promotions, roll back, notifications, sync) or
of the runner, which own the checks; these only write.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, F, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.permissions import Principal
from registries.models import HistoryEvent, Image, Registry, Repository, Tag
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
    error: str = "",
    subject: str = "",
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
        error=error,
        subject=subject,
    )


def promotion_failure_record(*, promotion, error: str) -> HistoryEvent:
    """Record on the target that a promotion failed, with why (call where it is marked failed)."""
    return history_record(
        action=HistoryEvent.Action.FAILED,
        registry=promotion.target.name,
        repository=promotion.repository,
        tag=promotion.tag,
        digest=promotion.digest,
        actor=promotion.actor,
        from_registry=promotion.source.name,
        to_registry=promotion.target.name,
        comment=promotion.comment,
        promotion=promotion,
        error=error,
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
        _count(repo.pk, tags=1, size=summary.size)
        return created, ""
    old = existing.digest
    if existing.size != summary.size:
        _count(repo.pk, tags=0, size=summary.size - existing.size)
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
    if not repo.tags.exists() and not repo.images.exists():
        repo.delete()
    else:
        _count(repo.pk, tags=-1, size=-found.size)
    return found


# --- images held by digest ----------------------------------------------------------
# Distribution cannot list untagged manifests, so these rows are all the portal knows of
# them: recorded from push notifications and promotions, dropped on delete notifications
# and when sync finds the digest gone.


def untagged_record(
    *,
    registry: Registry,
    repository: str,
    summary: ImageSummary,
    actor: str,
    pushed_at: dt.datetime | None = None,
) -> Image:
    """Remember that `repository` holds the summary's digest; its children are parts of it."""
    repo, _ = Repository.objects.get_or_create(registry=registry, name=repository)
    image, _ = Image.objects.update_or_create(
        repository=repo,
        digest=summary.digest,
        defaults={
            "media_type": summary.media_type,
            "size": summary.size,
            "platforms": summary.platforms,
            "pushed_at": pushed_at or timezone.now(),
            "pushed_by": actor[:255],
        },
    )
    untagged_forget_parts(registry=registry, repository=repository, summary=summary)
    return image


def untagged_forget_parts(*, registry: Registry, repository: str, summary: ImageSummary) -> int:
    """Drop rows for the children of an index: clients push them by digest before the index,
    so they looked like untagged images until the index arrived."""
    if not summary.children:
        return 0
    deleted, _ = Image.objects.filter(
        repository__registry=registry,
        repository__name=repository,
        digest__in=summary.children,
    ).delete()
    return deleted


def untagged_remove(*, registry: Registry, repository: str, digest: str) -> int:
    """Forget a digest deleted at the registry; an emptied repository goes too."""
    deleted, _ = Image.objects.filter(
        repository__registry=registry, repository__name=repository, digest=digest
    ).delete()
    repository_prune(registry=registry, repository=repository)
    return deleted


def repository_prune(*, registry: Registry, repository: str) -> bool:
    """Delete the repository from the index when it holds neither tags nor untagged images."""
    deleted, _ = Repository.objects.filter(
        registry=registry, name=repository, tags__isnull=True, images__isnull=True
    ).delete()
    return bool(deleted)


def _count(repository_id: int, *, tags: int, size: int) -> None:
    # One UPDATE in the caller's transaction, so the counters move with the tag row.
    Repository.objects.filter(pk=repository_id).update(
        tag_count=F("tag_count") + tags, total_size=F("total_size") + size
    )


def repository_counts_refresh(*, registry: Registry) -> int:
    """Recount the tag counters of a registry's repositories (sync calls it); returns rows."""
    tags = Tag.objects.filter(repository=OuterRef("pk")).order_by().values("repository")
    return Repository.objects.filter(registry=registry).update(
        tag_count=Coalesce(Subquery(tags.annotate(n=Count("pk")).values("n")), 0),
        total_size=Coalesce(Subquery(tags.annotate(s=Sum("size")).values("s")), 0),
    )
