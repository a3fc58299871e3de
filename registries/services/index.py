"""Keeps the index equal to the registries: notifications (within a second) and sync."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.permissions import Principal
from registries.accessories import accessory_of
from registries.connections import bundled_client, client_for
from registries.locks import database_lock, transaction_lock
from registries.models import HistoryEvent, Image, Registry, Repository, Tag
from registries.oci import manifest as oci_manifest
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
from registries.services.approvals import approvals_void, pushed_announce
from registries.services.identity import registry_identity

log = logging.getLogger(__name__)
SYNC_ACTOR = "sync"
# Distribution sends a few events per batch; a batch far larger is not from it.
MAX_EVENTS_PER_BATCH = 1000


def principal_from_token_subject(subject: str) -> Principal | str:
    """Who acted, from the JWT `sub` the registry echoes in notifications."""
    found = Principal.from_token_subject(subject)
    return "Anonymous" if isinstance(found, Principal) and found.is_anonymous else found


def _event_fields(event: dict) -> tuple[str, str, str, str, str, str, str] | None:
    """(action, path, tag, digest, media type, actor subject, id) of a well-formed event,
    else None.

    Events come over the network: every field is type-checked and validated before use.
    """
    action = event.get("action")
    target = event.get("target")
    actor = event.get("actor")
    if not isinstance(action, str) or not isinstance(target, dict):
        return None
    if actor is not None and not isinstance(actor, dict):
        return None
    path, tag, digest = target.get("repository"), target.get("tag"), target.get("digest")
    media_type = target.get("mediaType") or ""
    if not isinstance(media_type, str):
        return None
    subject = (actor or {}).get("name") or ""
    event_id = event.get("id") or ""
    if not isinstance(subject, str) or not isinstance(event_id, str | int):
        return None
    try:
        oci_manifest.validate_name(path)
        if tag:
            oci_manifest.validate_tag(tag)
        if digest:
            oci_manifest.validate_digest(digest)
    except RegistryError:
        return None
    return action, path, tag or "", digest or "", media_type, subject[:255], str(event_id)[:128]


def notification_apply(*, event: dict, describe, exists=None) -> str:
    """Apply one registry notification event to the index; safe to receive twice.

    `describe(path, reference) -> ImageSummary` reads the image from the registry;
    `exists(path, digest) -> bool` asks it whether a manifest is there, so a delete is
    recorded only once the registry confirms it (without `exists`, deletes are left to
    sync). Returns what happened, for logs and tests.
    """
    if not isinstance(event, dict) or not isinstance(event.get("action"), str | None):
        return "invalid"
    if event.get("action") not in {"push", "delete"}:
        return "ignored"
    fields = _event_fields(event)
    if fields is None:
        return "invalid"
    action, path, tag, digest, media_type, subject, event_id = fields
    found = registry_for_path(path)
    if found is None:
        return "unknown-registry"
    registry, repository = found
    actor = principal_from_token_subject(subject)
    if action == "push":
        if not tag and media_type not in MANIFEST_TYPES:
            return "ignored"  # a blob
        if isinstance(actor, Principal) and actor.system:
            # The promotion (or roll back) moves the index and records History itself,
            # in its own transaction; this echo must not race it.
            return "promotion"
        reference = digest or tag
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
                accessory = accessory_of(tag)
                history_record(
                    action="pushed",
                    registry=registry,
                    repository=repository,
                    tag=tag,
                    digest=summary.digest,
                    actor=actor,
                    source_event_id=event_id,
                    subject=accessory.subject if accessory else "",
                )
                pushed_announce(
                    registry=registry,
                    repository=repository,
                    tag=tag,
                    digest=summary.digest,
                    actor=actor,
                )
        except IntegrityError:
            return "duplicate"
        return "pushed"
    # delete: distribution deletes manifests by digest; drop every tag pointing there, once
    # the registry confirms the manifest is gone (a forged or stale event changes nothing).
    if not digest:
        return "invalid"
    tags = Tag.objects.filter(
        repository__registry=registry, repository__name=repository, digest=digest
    )
    untagged = Image.objects.filter(
        repository__registry=registry, repository__name=repository, digest=digest
    )
    if not tags.exists() and not untagged.exists():
        return "unchanged"
    try:
        still_there = exists(path, digest) if exists is not None else None
    except Exception as exc:  # unknown: leave it to sync
        log.warning("delete notification for %s@%s not confirmed: %s", path, digest, exc)
        still_there = None
    if still_there is None:
        return "unconfirmed"
    if still_there:
        return "not-deleted"
    removed = 0
    try:
        with transaction.atomic():
            removed += untagged_remove(registry=registry, repository=repository, digest=digest)
            for tag_name in list(tags.values_list("name", flat=True)):
                tag_remove(registry=registry, repository=repository, tag=tag_name)
                history_record(
                    action="deleted",
                    registry=registry,
                    repository=repository,
                    tag=tag_name,
                    digest=digest,
                    actor=actor,
                    source_event_id=f"{event_id}:{tag_name}" if event_id else "",
                )
                removed += 1
    except IntegrityError:
        return "duplicate"
    return "deleted" if removed else "unchanged"


def notifications_apply(*, events: list) -> list[str]:
    """Apply a batch of notification events from the bundled registry; one outcome each.

    Runs in a web request: the client has the short web deadline, and one bad event never
    fails the batch (the registry would redeliver it forever).
    """
    # No claim here: a notification must be quick (workers and sync claim the identity).
    if not registry_identity(claim=False).ok:
        # Events from a registry the index does not describe (logged by registry_identity).
        return ["refused"] * len(events)
    client = bundled_client(web=True)

    def exists(path: str, digest: str) -> bool:
        return client.head_manifest(path, digest) is not None

    outcomes = []
    for event in events[:MAX_EVENTS_PER_BATCH]:
        try:
            outcome = notification_apply(
                event=event,
                describe=lambda path, ref: describe_image(client, path, ref),
                exists=exists,
            )
        except Exception:  # never a 500: log it, answer for the others
            log.exception("notification event not applied")
            outcome = "failed"
        outcomes.append(outcome)
    outcomes.extend("ignored" for _ in events[MAX_EVENTS_PER_BATCH:])
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
    skipped: str = ""  # why this run did nothing (another node holds the sync lock)

    def __str__(self) -> str:
        text = (
            f"{self.registry}: {self.added} added, {self.changed} changed, "
            f"{self.removed} removed, {self.unchanged} unchanged"
        )
        if self.skipped:
            return f"{self.registry}: skipped, {self.skipped}"
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
    """Make the index of one registry equal to its backing registry; idempotent.

    One node at a time per registry (a database lock; a second caller skips). Safe even
    without the lock: each change re-reads the tag inside its transaction and records its
    History event under an id derived from what it saw, so two syncs record it once.
    """
    report = SyncReport(registry.name)
    if registry.is_bundled:
        identity = registry_identity()
        if not identity.ok:
            report.errors.append(identity.problem)
            return report
    with database_lock(f"sync:{registry.name}") as held:
        if not held:
            report.skipped = "another node is syncing it"
            return report
        _sync_registry(registry, report)
    return report


def _sync_registry(registry: Registry, report: SyncReport) -> None:
    client = client_for(registry)
    try:
        at_registry = _repositories_at_registry(client, registry)
    except RegistryError as exc:
        Registry.objects.filter(pk=registry.pk).update(last_sync_error=exc.message)
        report.errors.append(exc.message)
        return
    known_digests: dict[str, ImageSummary] = {}
    seen: dict[str, set[str] | None] = {}
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
            t.name: t.digest
            for t in Tag.objects.filter(repository__registry=registry, repository__name=repo_name)
        }
        for tag_name in tag_names:
            try:
                head = client.head_manifest(path, tag_name)
                if head is None:
                    continue
                if indexed.get(tag_name) == head.digest:
                    report.unchanged += 1
                    continue
                summary = known_digests.get(head.digest) or describe_image(
                    client, path, head.digest
                )
                known_digests[summary.digest] = summary
            except RegistryError as exc:
                report.errors.append(f"{path}:{tag_name}: {exc.message}")
                continue
            outcome = _sync_tag_found(registry, repo_name, tag_name, summary)
            if outcome == "added":
                report.added += 1
            elif outcome == "changed":
                report.changed += 1
            else:
                report.unchanged += 1
    # Tags and repositories the registry no longer has.
    for tag in Tag.objects.filter(repository__registry=registry).select_related("repository"):
        names = seen.get(tag.repository.name, set())
        if names is None or tag.name in names:
            continue
        try:
            # Confirmed with the registry before it is recorded: a listing can be stale.
            still_there = client.head_manifest(registry.backing_path(tag.repository.name), tag.name)
        except RegistryError as exc:
            report.errors.append(f"{tag.repository.name}:{tag.name}: {exc.message}")
            continue
        if still_there is not None:
            continue
        if _sync_tag_gone(registry, tag.repository.name, tag.name, tag.digest):
            report.removed += 1
    report.removed += _sync_untagged(client, registry, seen)
    Repository.objects.filter(registry=registry, tags__isnull=True, images__isnull=True).delete()
    repository_counts_refresh(registry=registry)  # heals counters moved outside the services
    Registry.objects.filter(pk=registry.pk).update(
        last_synced_at=timezone.now(), last_sync_error="; ".join(report.errors)[:2000]
    )


def _sync_event_id(action: str, registry: Registry, repository: str, tag: str, *facts) -> str:
    """The same id for the same change seen from the same index state (any node, any run)."""
    last = (
        HistoryEvent.objects.filter(registry=registry.name, repository=repository, tag=tag)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    )
    text = "|".join([action, registry.name, repository, tag, *facts, str(last or 0)])
    return f"sync:{hashlib.sha256(text.encode()).hexdigest()[:64]}"


def _locked_digest(registry: Registry, repository: str, tag: str) -> str | None:
    """The digest the index has for `repository:tag`, with the tag's sync lock held (one
    writer per tag: a second sync waits, then finds the change made). Inside a transaction."""
    transaction_lock(f"sync:{registry.name}/{repository}:{tag}")
    return (
        Tag.objects.select_for_update()
        .filter(repository__registry=registry, repository__name=repository, name=tag)
        .values_list("digest", flat=True)
        .first()
    )


def _sync_tag_found(registry: Registry, repository: str, tag: str, summary: ImageSummary) -> str:
    """Index `repository:tag` at the summary's digest unless it already is; returns what it did."""
    try:
        with transaction.atomic():
            current = _locked_digest(registry, repository, tag)
            if current == summary.digest:
                return "unchanged"  # a notification or another sync was first
            event_id = _sync_event_id(
                "pushed", registry, repository, tag, current or "", summary.digest
            )
            tag_upsert(registry=registry, repository=repository, tag=tag, summary=summary)
            untagged_forget_parts(registry=registry, repository=repository, summary=summary)
            history_record(
                action="pushed",
                registry=registry,
                repository=repository,
                tag=tag,
                digest=summary.digest,
                actor=SYNC_ACTOR,
                comment="found by sync",
                source_event_id=event_id,
            )
            approvals_void(
                registry=registry,
                repository=repository,
                tag=tag,
                digest=summary.digest,
                actor=SYNC_ACTOR,
            )
    except IntegrityError:
        return "unchanged"  # another sync recorded the same change at the same moment
    return "changed" if current else "added"


def _sync_tag_gone(registry: Registry, repository: str, tag: str, digest: str) -> bool:
    """Drop `repository:tag` from the index if it still points at `digest`; True if dropped."""
    try:
        with transaction.atomic():
            current = _locked_digest(registry, repository, tag)
            if current != digest:
                return False  # moved or removed meanwhile
            event_id = _sync_event_id("deleted", registry, repository, tag, digest)
            tag_remove(registry=registry, repository=repository, tag=tag)
            history_record(
                action="deleted",
                registry=registry,
                repository=repository,
                tag=tag,
                digest=digest,
                actor=SYNC_ACTOR,
                comment="gone from the registry",
                source_event_id=event_id,
            )
    except IntegrityError:
        return False
    return True


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
