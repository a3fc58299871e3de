"""Writes to the index: tags, History events, registry settings. Each write takes its actor."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.permissions import Principal
from registries.images import ImageSummary
from registries.models import HistoryEvent, Registry, Repository, Tag

log = logging.getLogger(__name__)


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


def principal_from_token_subject(subject: str) -> Principal | str:
    """Map the JWT `sub` the registry echoes in notifications back to who acted."""
    from django.contrib.auth import get_user_model

    from accounts.models import ApiKey

    if not subject:
        return "Anonymous"
    if subject == "promoter":
        return Principal.promoter()
    if subject.startswith("apikey:"):
        key = (
            ApiKey.objects.filter(pk=subject.split(":", 1)[1]).first()
            if subject[7:].isdigit()
            else None
        )
        return Principal(api_key=key) if key else subject
    user = get_user_model().objects.filter(username=subject).first()
    return Principal(user=user) if user else subject


def registry_for_path(path: str) -> tuple[Registry, str] | None:
    """The bundled registry and repository a backing path like `devdocker/team/api` belongs to."""
    head, _, rest = path.partition("/")
    if not rest:
        return None
    registry = Registry.objects.filter(name=head, endpoint="").first()
    return (registry, rest) if registry else None


def notification_apply(*, event: dict, describe) -> str:
    """Apply one registry notification event to the index; safe to receive twice.

    `describe(path, reference) -> ImageSummary` reads the image from the registry.
    Returns what happened, for logs and tests.
    """
    action = event.get("action")
    target = event.get("target") or {}
    path = target.get("repository") or ""
    event_id = str(event.get("id") or "")[:128]
    if action not in {"push", "delete"}:
        return "ignored"
    found = registry_for_path(path)
    if found is None:
        return "unknown-registry"
    registry, repository = found
    actor = principal_from_token_subject(((event.get("actor") or {}).get("name")) or "")
    if action == "push":
        tag = target.get("tag")
        if not tag:
            return "ignored"  # blob pushes and push-by-digest carry no tag
        if isinstance(actor, Principal) and actor.system:
            # The promotion (or roll back) moves the index and records History itself,
            # in its own transaction; this echo must not race it.
            return "promotion"
        try:
            summary = describe(path, target.get("digest") or tag)
        except Exception as exc:  # the registry is the truth; sync will catch up
            log.warning("notification for %s:%s not applied: %s", path, tag, exc)
            return "unreadable"
        try:
            with transaction.atomic():
                _, old = tag_upsert(
                    registry=registry, repository=repository, tag=tag, summary=summary
                )
                if old == summary.digest and not event_id:
                    return "unchanged"
                history_record(
                    action="pushed",
                    registry=registry,
                    repository=repository,
                    tag=tag,
                    digest=summary.digest,
                    actor=actor,
                    source_event_id=event_id,
                )
        except IntegrityError:
            return "duplicate"
        return "pushed"
    # delete: distribution deletes manifests by digest; drop every tag pointing there.
    digest = target.get("digest") or ""
    removed = 0
    try:
        with transaction.atomic():
            tags = Tag.objects.filter(
                repository__registry=registry, repository__name=repository, digest=digest
            )
            for tag in list(tags.values_list("name", flat=True)):
                tag_remove(registry=registry, repository=repository, tag=tag)
                history_record(
                    action="deleted",
                    registry=registry,
                    repository=repository,
                    tag=tag,
                    digest=digest,
                    actor=actor,
                    source_event_id=f"{event_id}:{tag}" if event_id else "",
                )
                removed += 1
    except IntegrityError:
        return "duplicate"
    return "deleted" if removed else "unchanged"


def registry_save(*, form, actor: Principal) -> Registry:
    """Create or change a registry from a valid RegistryForm (Manage Feed)."""
    with transaction.atomic():
        registry = form.save()
        log.info("registry %s saved by %s", registry.name, actor.name)
    return registry
