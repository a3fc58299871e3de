"""The worker's state machine for one promotion: claim, heartbeat, copy, succeed or fail.

`promotion_execute` is the only code that writes into a target registry.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from concurrent.futures import wait
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError, close_old_connections, transaction
from django.dispatch import receiver
from django.tasks.signals import task_enqueued
from django.utils import timezone

from registries.connections import client_for, same_backing_host
from registries.models import Promotion, Registry, Tag
from registries.oci import manifest as oci_manifest
from registries.oci.copy import (
    CopyCounters,
    CopyPlan,
    ImageCopier,
    TaggedReferrer,
    in_background,
    plan_image,
)
from registries.oci.errors import (
    DigestMismatch,
    ManifestUnknown,
    NameUnknown,
    RegistryError,
)
from registries.oci.inspect import ImageSummary, describe_image, describe_manifest
from registries.oci.manifest import Manifest
from registries.outbox import promotion_data, webhook_event
from registries.records import (
    history_record,
    promotion_failure_record,
    tag_upsert,
    untagged_record,
)
from registries.wakeup import PROMOTIONS, TASKS, notify

log = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 600
# A promotion whose worker died this many times is failed instead of requeued again.
MAX_ATTEMPTS = 3


def stale_after() -> timedelta:
    """A running promotion without a heartbeat this long has lost its worker."""
    return timedelta(seconds=float(settings.PROMOTER_STALE_SECONDS))


@receiver(task_enqueued, dispatch_uid="promoter-wake-worker")
def _wake_worker(sender, **kwargs) -> None:
    """A task was enqueued: wake an idle worker now rather than at its next poll."""
    try:
        notify(TASKS)
    except DatabaseError:  # the task is stored; the worker's poll still finds it
        log.warning("could not wake the worker", exc_info=True)


PROGRESS_EVERY = 0.5  # seconds between progress writes while a promotion runs


def heartbeat_every() -> float:
    """Seconds between heartbeats: well inside the stale timeout (60 s → 5 s)."""
    return max(0.05, float(settings.PROMOTER_STALE_SECONDS) / 12)


def _claim(promotion: Promotion) -> bool:
    """Take the per-target-tag lock (the one-running constraint); False while another runs."""
    try:
        return _claim_once(promotion)
    except IntegrityError:
        pass
    # Another promotion holds the lock: free it if its worker died, then try once more.
    if not _fail_stale_holders(promotion):
        return False
    try:
        return _claim_once(promotion)
    except IntegrityError:
        return False


def _claim_once(promotion: Promotion) -> bool:
    """Claim the promotion as loaded (same attempt number), so the row need not be read
    again; when it changed meanwhile, look at it and claim what it is now."""
    for _ in range(MAX_ATTEMPTS + 1):
        now = timezone.now()
        with transaction.atomic():
            claimed = Promotion.objects.filter(
                pk=promotion.pk, status=Promotion.Status.QUEUED, attempts=promotion.attempts
            ).update(
                status=Promotion.Status.RUNNING,
                started_at=now,
                heartbeat_at=now,
                attempts=promotion.attempts + 1,
            )
        if claimed:
            promotion.status = Promotion.Status.RUNNING
            promotion.started_at = promotion.heartbeat_at = now
            promotion.attempts += 1
            return True
        promotion.refresh_from_db(fields=["status", "attempts"])
        if promotion.status != Promotion.Status.QUEUED:
            break
    raise _AlreadyHandled()


def _fail_stale_holders(promotion: Promotion) -> int:
    """Fail the running promotions to the same target tag whose worker died; how many."""
    now = timezone.now()
    failed = 0
    with transaction.atomic():
        stale = Promotion.objects.filter(
            target=promotion.target,
            repository=promotion.repository,
            tag=promotion.tag,
            status=Promotion.Status.RUNNING,
            heartbeat_at__lt=now - stale_after(),
        ).exclude(pk=promotion.pk)
        message = "The worker running this promotion stopped. Run it again; it is safe."
        for dead in stale.select_related("source", "target"):
            if Promotion.objects.filter(pk=dead.pk, status=Promotion.Status.RUNNING).update(
                status=Promotion.Status.FAILED, finished_at=now, error=message
            ):
                promotion_failure_record(promotion=dead, error=message)
                failed += 1
    return failed


class _AlreadyHandled(Exception):
    pass


def promotion_execute(*, promotion_id: int) -> Promotion:
    """Run one queued promotion: lock, copy, verify, then move the tag and record History."""
    promotion = Promotion.objects.select_related("source", "target").get(pk=promotion_id)
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    try:
        while not _claim(promotion):
            if time.monotonic() > deadline:
                return _fail(
                    promotion,
                    "Another promotion to this tag has been running for too long; try again later.",
                    attempt=None,
                )
            time.sleep(0.25)
    except _AlreadyHandled:
        promotion.refresh_from_db()
        return promotion
    # The claim is ours while status is running with this attempt number: if the promotion
    # is reclaimed (heartbeat lost) and run by another worker, this one records nothing.
    attempt = promotion.attempts
    stop_heartbeat = threading.Event()
    live: dict = {}  # the copier's counters, written by the heartbeat thread
    heartbeat = threading.Thread(
        target=_heartbeat, args=(promotion.pk, attempt, stop_heartbeat, live), daemon=True
    )
    heartbeat.start()
    try:
        counters, tags, referrers = _copy(promotion, live)
        summary = live.get("summary")
    except (RegistryError, oci_manifest.ManifestInvalid) as exc:
        return _fail(promotion, _explain(promotion, exc), attempt=attempt)
    except Exception as exc:  # never leave a promotion "running" on a bug
        log.exception("promotion %s crashed", promotion.pk)
        return _fail(
            promotion, f"Unexpected error: {exc.__class__.__name__}: {exc}", attempt=attempt
        )
    finally:
        stop_heartbeat.set()
        heartbeat.join(timeout=2)
    return _succeed(promotion, counters, tags, referrers, attempt=attempt, summary=summary)


def _heartbeat(promotion_id: int, attempt: int, stop: threading.Event, live: dict) -> None:
    """Keep the claim alive and publish progress (blob threads never touch the database)."""
    from django.db import connection

    last_beat = 0.0
    try:
        while not stop.wait(min(PROGRESS_EVERY, heartbeat_every())):
            now = time.monotonic()
            counters = live.get("counters")
            if counters is None and now - last_beat < heartbeat_every():
                continue
            last_beat = now
            try:
                fields = {"heartbeat_at": timezone.now()}
                if counters is not None:
                    fields.update(_counter_fields(counters))
                Promotion.objects.filter(
                    pk=promotion_id, status=Promotion.Status.RUNNING, attempts=attempt
                ).update(**fields)
            except Exception:  # a database hiccup must not kill the copy
                close_old_connections()
    finally:
        connection.close()


def _tags_pointing_at(copier: ImageCopier, candidates: list[str], digest: str) -> list[str]:
    """Those of `candidates` that point at `digest` in the source now (HEAD each)."""
    found = []
    for tag in candidates:
        try:
            head = copier.source.head_manifest(copier.source_path, tag)
        except NameUnknown:
            return []
        if head is not None and head.digest == digest:
            found.append(tag)
    return found


def _source_tags(promotion: Promotion) -> list[str]:
    """Tags the index knows point at the promoted digest (the registry confirms them)."""
    names = list(
        Tag.objects.filter(
            repository__registry=promotion.source,
            repository__name=promotion.repository,
            digest=promotion.digest,
        )
        .order_by("-pushed_at", "name")
        .values_list("name", flat=True)
    )
    if promotion.tag and promotion.tag not in names:
        names.insert(0, promotion.tag)
    return names


def image_copier(
    source: Registry,
    target: Registry,
    repository: str,
    *,
    on_progress=None,
    web: bool = False,
    dry_run: bool = False,
) -> ImageCopier:
    """The copier of one promotion; the dry run (a preview) is built here too, so it asks
    the target exactly what the copy will (`web`: the short, single-try clients of a web
    request). All its threads share one connection pool and token cache per registry."""
    source_client, target_client = client_for(source, web=web), client_for(target, web=web)
    return ImageCopier(
        source_factory=source_client.fork,
        target_factory=target_client.fork,
        source_path=source.backing_path(repository),
        target_path=target.backing_path(repository),
        same_host=same_backing_host(source, target),
        parallelism=settings.PROMOTER_COPY_PARALLELISM,
        on_progress=on_progress,
        retries=1 if web else settings.PROMOTER_REGISTRY_RETRIES,
        backoff=settings.PROMOTER_REGISTRY_BACKOFF,
        dry_run=dry_run,
    )


def _copy(promotion: Promotion, live: dict) -> tuple[CopyCounters, list[str], list[TaggedReferrer]]:
    """Copy the image and its referrers; returns the counters, the tags moved at the target
    and the referrer tags (signatures, the referrers index) set there.

    A promotion by digest moves every source tag that points at the digest both before and
    after the copy (a tag re-pushed meanwhile stays where it is); with none, the image is
    copied by digest only.
    """
    source, target = promotion.source, promotion.target

    def progress(counters: CopyCounters) -> None:
        live["counters"] = counters  # published by the heartbeat thread

    copier = image_copier(source, target, promotion.repository, on_progress=progress)
    try:
        plan = plan_image(
            copier.source, copier.source_path, promotion.digest, expect_digest=promotion.digest
        )
    except ManifestUnknown as exc:
        raise _Vanished() from exc
    except NameUnknown as exc:
        raise _Vanished() from exc
    # What the index will say about the image, read from the source while the blobs move
    # (same digest, same content), so describing it adds nothing to the promotion's time.
    describer = in_background(
        _describe_into, live, copier.source_factory(), copier.source_path, plan
    )
    try:
        if promotion.by_digest:
            candidates = _source_tags(promotion)
            tags = _tags_pointing_at(copier, candidates, promotion.digest)
            # Content first (image, then its signatures and other referrers), the tags last.
            copier.copy_image(plan)
            still = set(_tags_pointing_at(copier, tags, promotion.digest))
            tags = [t for t in tags if t in still]
            for tag in tags:
                copier.put_manifest(plan.top, tag)
        else:
            tags = [promotion.tag]
            copier.copy_image(plan, tag=promotion.tag)  # the tag moves last
    except BaseException:
        _save_counters_quietly(promotion.pk, copier.counters)  # what was done before failing
        raise
    finally:
        wait([describer], timeout=30)  # informative: _succeed copes without it
    return copier.counters, tags, copier.tagged_referrers


def _describe_into(live: dict, client, path: str, plan: CopyPlan) -> None:
    """The image's summary for the index, from the manifests the plan holds already."""
    read = {m.digest: Manifest(m.digest, m.media_type, m.body) for m in plan.manifests}
    try:
        live["summary"] = describe_manifest(client, path, read[plan.top.digest], read)
    except Exception:  # informative only: _succeed falls back to the index or the target
        log.info("could not describe %s from the source", plan.top.digest, exc_info=True)


class _Vanished(RegistryError):
    def __init__(self) -> None:
        super().__init__("vanished")


def _explain(promotion: Promotion, exc: Exception) -> str:
    where = f"{promotion.source.name}/{promotion.repository}"
    if isinstance(exc, _Vanished):
        return (
            f"The image {promotion.digest} is no longer in {where} (deleted or re-pushed "
            "after the promotion was requested). Nothing was changed in "
            f"{promotion.target.name}."
        )
    if isinstance(exc, DigestMismatch):
        return f"Digest mismatch, refused: {exc.message}"
    message = getattr(exc, "message", str(exc))
    return (
        f"{message} The tag in {promotion.target.name} was not changed; run the promotion "
        "again when fixed."
    )


def _counter_fields(counters: CopyCounters) -> dict:
    # The Promotion's progress columns carry the copier's counter names (one list: the
    # CopyCounters dataclass).
    return dataclasses.asdict(counters)


def _save_counters(promotion_id: int, counters: CopyCounters) -> None:
    Promotion.objects.filter(pk=promotion_id).update(
        **_counter_fields(counters), heartbeat_at=timezone.now()
    )


def _save_counters_quietly(promotion_id: int, counters: CopyCounters) -> None:
    """Progress is informative: a database hiccup while saving it must not fail the copy."""
    try:
        _save_counters(promotion_id, counters)
    except DatabaseError:
        log.warning("could not save the progress of promotion %s", promotion_id, exc_info=True)
        close_old_connections()


def _fail(promotion: Promotion, message: str, *, attempt: int | None = None) -> Promotion:
    """Mark failed: our running claim (`attempt`), or a promotion still queued (None)."""
    if attempt is None:
        mine = Promotion.objects.filter(pk=promotion.pk, status=Promotion.Status.QUEUED)
    else:
        mine = Promotion.objects.filter(
            pk=promotion.pk, status=Promotion.Status.RUNNING, attempts=attempt
        )
    with transaction.atomic():
        failed = mine.update(
            status=Promotion.Status.FAILED, error=message, finished_at=timezone.now()
        )
        if failed:
            promotion.refresh_from_db()
            # On the target's record too, with the error: nothing changed there.
            promotion_failure_record(promotion=promotion, error=message)
            webhook_event(
                event="promotion.failed",
                registry=promotion.target,
                also=promotion.source,
                data=promotion_data(promotion),
            )
    if not failed:
        log.warning(
            "promotion %s was taken over by another worker; not marking it failed", promotion.pk
        )
    else:
        notify(PROMOTIONS, str(promotion.pk))  # wakes an API request waiting for it
    promotion.refresh_from_db()
    return promotion


def _summary_otherwise(promotion: Promotion, counters: CopyCounters) -> ImageSummary:
    """The image's summary when the source could not be read during the copy."""
    target = promotion.target
    try:
        return describe_image(
            client_for(target), target.backing_path(promotion.repository), promotion.digest
        )
    except RegistryError:
        pass
    source_tag = Tag.objects.filter(
        repository__registry=promotion.source,
        repository__name=promotion.repository,
        digest=promotion.digest,
    ).first()
    return ImageSummary(
        promotion.digest,
        promotion.media_type,
        source_tag.size if source_tag else counters.bytes_total,
        source_tag.platforms if source_tag else [],
    )


def _succeed(
    promotion: Promotion,
    counters: CopyCounters,
    tags: list[str],
    referrers: list[TaggedReferrer],
    *,
    attempt: int,
    summary: ImageSummary | None = None,
) -> Promotion:
    target = promotion.target
    if summary is None or summary.digest != promotion.digest:
        summary = _summary_otherwise(promotion, counters)
    with transaction.atomic():
        finished = {
            # The final counters again: a heartbeat racing the copy's last save may have
            # written older ones (the heartbeat has stopped by now).
            **_counter_fields(counters),
            "status": Promotion.Status.SUCCEEDED,
            "finished_at": timezone.now(),
            "error": "",
            "moved_tags": tags,
            "tag": tags[0] if tags else "",
        }
        # Finish our claim first, which locks the row: a reclaimed promotion is finished by
        # the worker that owns it now, so History gets exactly one Promoted event.
        owned = Promotion.objects.filter(
            pk=promotion.pk, status=Promotion.Status.RUNNING, attempts=attempt
        ).update(**finished)
        if not owned:
            log.warning(
                "promotion %s was taken over by another worker; not recording it", promotion.pk
            )
            promotion.refresh_from_db()
            return promotion
        previous = ""
        for position, tag in enumerate(tags):
            _, old = tag_upsert(
                registry=target,
                repository=promotion.repository,
                tag=tag,
                summary=summary,
                remember_previous=True,
            )
            if position == 0 and old != promotion.digest:
                previous = old
        if previous:
            Promotion.objects.filter(pk=promotion.pk).update(previous_digest=previous)
        finished["previous_digest"] = previous
        for name, value in finished.items():  # what the row now holds, without reading it
            setattr(promotion, name, value)
        if not tags:
            # Copied by digest only: the target's repository page lists it as untagged.
            untagged_record(
                registry=target,
                repository=promotion.repository,
                summary=summary,
                actor=promotion.actor,
            )
        for tag in tags or [""]:
            history_record(
                action="promoted",
                registry=target,
                repository=promotion.repository,
                tag=tag,
                digest=promotion.digest,
                actor=promotion.actor,
                from_registry=promotion.source.name,
                to_registry=target.name,
                comment=promotion.comment,
                promotion=promotion,
            )
        _record_referrers(promotion, referrers)
        webhook_event(
            event="promotion.succeeded",
            registry=target,
            also=promotion.source,
            data=promotion_data(promotion),
        )
        notify(PROMOTIONS, str(promotion.pk))  # delivered at commit, to a waiting request
    return promotion


def _record_referrers(promotion: Promotion, referrers: list[TaggedReferrer]) -> None:
    """Signatures and referrer indexes that travelled with the image: into the target's
    index, and into History as promoted with it (so sync never finds them as a push)."""
    target = promotion.target
    for referrer in referrers:
        summary = ImageSummary(
            referrer.digest, referrer.media_type, referrer.size, [], subject=referrer.subject
        )
        _, old = tag_upsert(
            registry=target, repository=promotion.repository, tag=referrer.tag, summary=summary
        )
        if old == referrer.digest:
            continue  # already there: a promotion run again, or the same signature
        history_record(
            action="promoted",
            registry=target,
            repository=promotion.repository,
            tag=referrer.tag,
            digest=referrer.digest,
            actor=promotion.actor,
            from_registry=promotion.source.name,
            to_registry=target.name,
            promotion=promotion,
            subject=referrer.subject,
        )
