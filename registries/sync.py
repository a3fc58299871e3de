"""Reconciles the index with what the registries really hold (new, changed, deleted tags)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from registries.clients import client_for
from registries.images import ImageSummary, describe_image
from registries.models import Registry, Repository, Tag
from registries.oci.errors import NameUnknown, RegistryError
from registries.services import history_record, tag_remove, tag_upsert

log = logging.getLogger(__name__)
SYNC_ACTOR = "sync"


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
    Repository.objects.filter(registry=registry, tags__isnull=True).delete()
    Registry.objects.filter(pk=registry.pk).update(
        last_synced_at=timezone.now(), last_sync_error="; ".join(report.errors)[:2000]
    )
    return report


def sync_all() -> list[SyncReport]:
    """Sync every active registry."""
    return [sync_registry(r) for r in Registry.objects.filter(active=True)]
