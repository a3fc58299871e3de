"""Keeps the index equal to the registries: notifications (within a second) and sync."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.permissions import Principal
from registries.connections import bundled_client, client_for
from registries.models import Image, Registry, Repository, Tag
from registries.oci.constants import MANIFEST_TYPES
from registries.oci.errors import NameUnknown, RegistryError
from registries.oci.inspect import ImageSummary, describe_image
from registries.records import (
    history_record,
    repository_counts_refresh,
    tag_remove,
    tag_upsert,
    untagged_forget_parts,
    untagged_record,
    untagged_remove,
)
from registries.selectors import registry_for_path

log = logging.getLogger(__name__)
SYNC_ACTOR = "sync"


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
        if not tag and target.get("mediaType") not in MANIFEST_TYPES:
            return "ignored"  # a blob
        if isinstance(actor, Principal) and actor.system:
            # The promotion (or roll back) moves the index and records History itself,
            # in its own transaction; this echo must not race it.
            return "promotion"
        reference = target.get("digest") or tag
        if not reference:
            return "ignored"
        try:
            summary = describe(path, reference)
        except Exception as exc:  # the registry is the truth; sync will catch up
            log.warning("notification for %s@%s not applied: %s", path, reference, exc)
            return "unreadable"
        if not tag:
            return _untagged_push(registry, repository, summary, actor)
        try:
            with transaction.atomic():
                _, old = tag_upsert(
                    registry=registry, repository=repository, tag=tag, summary=summary
                )
                untagged_forget_parts(registry=registry, repository=repository, summary=summary)
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
            removed += untagged_remove(registry=registry, repository=repository, digest=digest)
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


def notifications_apply(*, events: list) -> list[str]:
    """Apply a batch of notification events from the bundled registry; one outcome each."""
    client = bundled_client()
    outcomes = []
    for event in events:
        if not isinstance(event, dict):
            outcomes.append("invalid")
            continue
        outcomes.append(
            notification_apply(
                event=event, describe=lambda path, ref: describe_image(client, path, ref)
            )
        )
    return outcomes


def _untagged_push(registry: Registry, repository: str, summary: ImageSummary, actor) -> str:
    """A manifest pushed by digest: an image of its own, or a part of one still to come."""
    if summary.subject:
        # An OCI 1.1 referrer (signature, SBOM): it belongs to its subject, not the list
        # of images; clients find it through the referrers tag or API.
        return "referrer"
    name = actor.name if isinstance(actor, Principal) else str(actor)
    try:
        with transaction.atomic():
            untagged_record(registry=registry, repository=repository, summary=summary, actor=name)
    except IntegrityError:
        return "duplicate"  # the same push, delivered twice at once
    return "pushed-untagged"


# --- sync -----------------------------------------------------------------------


@dataclass
class SyncReport:
    registry: str
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = (
            f"{self.registry}: {self.added} added, {self.changed} changed, "
            f"{self.removed} removed, {self.unchanged} unchanged"
        )
        if self.errors:
            text += f", {len(self.errors)} errors ({self.errors[0]})"
        return text


def _repositories_at_registry(client, registry: Registry) -> list[str]:
    names = []
    for path in client.catalog():
        repo = registry.repository_from_backing(path)
        if repo:
            names.append(repo)
    return names


def sync_registry(registry: Registry) -> SyncReport:
    """Make the index of one registry equal to its backing registry; idempotent."""
    report = SyncReport(registry.name)
    client = client_for(registry)
    try:
        at_registry = _repositories_at_registry(client, registry)
    except RegistryError as exc:
        Registry.objects.filter(pk=registry.pk).update(last_sync_error=exc.message)
        report.errors.append(exc.message)
        return report
    known_digests: dict[str, ImageSummary] = {}
    seen: dict[str, set[str]] = {}
    for repo_name in at_registry:
        path = registry.backing_path(repo_name)
        try:
            tag_names = client.tags(path)
        except NameUnknown:
            tag_names = []
        except RegistryError as exc:
            report.errors.append(exc.message)
            seen[repo_name] = None  # unknown: don't delete what we cannot see
            continue
        seen[repo_name] = set(tag_names)
        indexed = {
            t.name: t
            for t in Tag.objects.filter(repository__registry=registry, repository__name=repo_name)
        }
        for tag_name in tag_names:
            try:
                head = client.head_manifest(path, tag_name)
                if head is None:
                    continue
                current = indexed.get(tag_name)
                if current is not None and current.digest == head.digest:
                    report.unchanged += 1
                    continue
                summary = known_digests.get(head.digest) or describe_image(
                    client, path, head.digest
                )
                known_digests[summary.digest] = summary
            except RegistryError as exc:
                report.errors.append(f"{path}:{tag_name}: {exc.message}")
                continue
            with transaction.atomic():
                tag_upsert(registry=registry, repository=repo_name, tag=tag_name, summary=summary)
                untagged_forget_parts(registry=registry, repository=repo_name, summary=summary)
                history_record(
                    action="pushed",
                    registry=registry,
                    repository=repo_name,
                    tag=tag_name,
                    digest=summary.digest,
                    actor=SYNC_ACTOR,
                    comment="found by sync",
                )
            if current is None:
                report.added += 1
            else:
                report.changed += 1
    # Tags and repositories the registry no longer has.
    for tag in Tag.objects.filter(repository__registry=registry).select_related("repository"):
        names = seen.get(tag.repository.name, set())
        if names is None or tag.name in names:
            continue
        with transaction.atomic():
            tag_remove(registry=registry, repository=tag.repository.name, tag=tag.name)
            history_record(
                action="deleted",
                registry=registry,
                repository=tag.repository.name,
                tag=tag.name,
                digest=tag.digest,
                actor=SYNC_ACTOR,
                comment="gone from the registry",
            )
        report.removed += 1
    report.removed += _sync_untagged(client, registry, seen)
    Repository.objects.filter(registry=registry, tags__isnull=True, images__isnull=True).delete()
    repository_counts_refresh(registry=registry)  # heals counters moved outside the services
    Registry.objects.filter(pk=registry.pk).update(
        last_synced_at=timezone.now(), last_sync_error="; ".join(report.errors)[:2000]
    )
    return report


def _sync_untagged(client, registry: Registry, seen: dict) -> int:
    """Forget untagged images the registry no longer has (it cannot list them; ask each)."""
    removed = 0
    for image in Image.objects.filter(repository__registry=registry).select_related("repository"):
        name = image.repository.name
        if name in seen and seen[name] is None:
            continue  # the repository could not be read: don't delete what we cannot see
        try:
            there = client.head_manifest(registry.backing_path(name), image.digest)
        except NameUnknown:
            there = None
        except RegistryError:
            continue
        if there is None:
            Image.objects.filter(pk=image.pk).delete()
            removed += 1
    return removed


def sync_all() -> list[SyncReport]:
    """Sync every active registry."""
    return [sync_registry(r) for r in Registry.objects.filter(active=True)]
