"""Promotion services: request (validate, pin the digest), execute (the worker), roll back.

`promotion_execute` is the only code that writes into a target registry.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError, close_old_connections, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Permission
from accounts.permissions import Principal
from registries.clients import client_for, same_backing_host
from registries.copying import CopyCounters, ImageCopier, plan_image
from registries.images import describe_image
from registries.models import Promotion, Registry, Tag
from registries.oci import manifest as oci_manifest
from registries.oci.errors import (
    DigestMismatch,
    ManifestUnknown,
    NameUnknown,
    RegistryError,
)
from registries.services import history_record, tag_upsert

log = logging.getLogger(__name__)

COMMENT_MAX = 4000
LOCK_WAIT_SECONDS = 600
# A promotion whose worker died this many times is failed instead of requeued again.
MAX_ATTEMPTS = 3


def stale_after() -> timedelta:
    """A running promotion without a heartbeat this long has lost its worker."""
    return timedelta(seconds=float(settings.PROMOTER_STALE_SECONDS))


PROGRESS_EVERY = 0.5  # seconds between progress writes while a promotion runs


def heartbeat_every() -> float:
    """Seconds between heartbeats: well inside the stale timeout (60 s → 5 s)."""
    return max(0.05, float(settings.PROMOTER_STALE_SECONDS) / 12)


class PromotionError(Exception):
    """A promotion that cannot be done, with a message a person can act on."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PromotionInvalid(PromotionError):
    status = 400


class PromotionNotFound(PromotionError):
    status = 404


class PromotionForbidden(PromotionError):
    status = 403


def allowed_targets(*, source: Registry, principal: Principal) -> list[Registry]:
    """Where the principal may promote from `source`: its Promote To target, or any other."""
    if source.promote_to_id:
        candidates = [source.promote_to]
    else:
        candidates = list(Registry.objects.filter(active=True).exclude(pk=source.pk))
    return [t for t in candidates if t.active and principal.can_promote(source, t)]


def promotion_request(
    *,
    source: Registry,
    repository: str,
    tag: str,
    target: Registry,
    actor: Principal,
    comment: str = "",
) -> Promotion:
    """Validate, pin the digest the tag has now, store a queued Promotion and enqueue it."""
    comment = (comment or "").strip()
    if len(comment) > COMMENT_MAX:
        raise PromotionInvalid(
            f"The comment is {len(comment)} characters; the limit is {COMMENT_MAX}."
        )
    try:
        oci_manifest.validate_name(repository)
    except RegistryError as exc:
        raise PromotionInvalid(f"{repository!r} is not a valid repository name.") from exc
    is_digest = tag.startswith("sha256:")
    try:
        (oci_manifest.validate_digest if is_digest else oci_manifest.validate_tag)(tag)
    except RegistryError as exc:
        raise PromotionInvalid(f"{tag!r} is not a valid tag or digest.") from exc
    if source.pk == target.pk:
        raise PromotionInvalid(
            f"The target is the source ({source.name}); choose another registry."
        )
    if not actor.has(Permission.VIEW, source):
        raise PromotionNotFound(f"There is no registry called {source.name!r}.")
    if source.promote_to_id and source.promote_to_id != target.pk:
        raise PromotionInvalid(
            f"{source.name} promotes only to {source.promote_to.name} (its Promote To registry), "
            f"not to {target.name}."
        )
    if not target.active:
        raise PromotionInvalid(f"The registry {target.name} is not active.")
    if not actor.can_promote(source, target):
        raise PromotionForbidden(
            f"You may not promote into {target.name}: that needs Promote Packages on {target.name}."
        )
    digest, media_type, tag_name = _pin(source, repository, tag)
    with transaction.atomic():
        promotion = Promotion.objects.create(
            source=source,
            target=target,
            repository=repository,
            tag=tag_name,
            digest=digest,
            media_type=media_type,
            comment=comment,
            actor=actor.name,
            requested_by=actor.history_user,
        )
        transaction.on_commit(lambda: _enqueue(promotion.pk))
    return promotion


def _pin(source: Registry, repository: str, reference: str) -> tuple[str, str, str]:
    """The digest `reference` has in the source right now (the registry is the truth)."""
    client = client_for(source)
    path = source.backing_path(repository)
    try:
        head = client.head_manifest(path, reference)
    except NameUnknown as exc:
        raise PromotionNotFound(f"There is no repository {repository} in {source.name}.") from exc
    except RegistryError as exc:
        raise PromotionInvalid(f"{source.name} could not be read: {exc.message}") from exc
    if head is None:
        if reference.startswith("sha256:"):
            raise PromotionNotFound(f"There is no image {reference} in {source.name}/{repository}.")
        raise PromotionNotFound(f"There is no tag {reference} in {source.name}/{repository}.")
    tag_name = reference
    if reference.startswith("sha256:"):
        # Promoting a digest: keep the tag that points at it in the index, if any.
        found = Tag.objects.filter(
            repository__registry=source, repository__name=repository, digest=head.digest
        ).order_by("-pushed_at").first()
        if found is None:
            raise PromotionInvalid(
                f"No tag in {source.name}/{repository} points at {reference}; promote a tag."
            )
        tag_name = found.name
    return head.digest, head.media_type, tag_name


def _enqueue(promotion_id: int) -> None:
    from registries.tasks import promote

    promote.enqueue(promotion_id=promotion_id)


def promotion_retry(*, promotion: Promotion, actor: Principal) -> Promotion:
    """Queue a failed promotion again (same pinned digest); content already there is skipped."""
    if not actor.can_promote(promotion.source, promotion.target):
        raise PromotionForbidden(f"You may not promote into {promotion.target.name}.")
    updated = Promotion.objects.filter(pk=promotion.pk, status=Promotion.Status.FAILED).update(
        status=Promotion.Status.QUEUED, error="", finished_at=None
    )
    if not updated:
        raise PromotionInvalid("Only a failed promotion can be run again.")
    transaction.on_commit(lambda: _enqueue(promotion.pk))
    promotion.refresh_from_db()
    return promotion


# --- execution (the worker) ---------------------------------------------------------
def _claim(promotion: Promotion) -> bool:
    """Take the per-target-tag lock (the one-running constraint); False while another runs."""
    now = timezone.now()
    with transaction.atomic():
        # A running promotion whose worker died holds the lock no longer.
        stale = Promotion.objects.filter(
            target=promotion.target, repository=promotion.repository, tag=promotion.tag,
            status=Promotion.Status.RUNNING, heartbeat_at__lt=now - stale_after(),
        ).exclude(pk=promotion.pk)
        stale.update(
            status=Promotion.Status.FAILED, finished_at=now,
            error="The worker running this promotion stopped. Run it again; it is safe.",
        )
    try:
        with transaction.atomic():
            claimed = Promotion.objects.filter(
                pk=promotion.pk, status=Promotion.Status.QUEUED
            ).update(
                status=Promotion.Status.RUNNING, started_at=now, heartbeat_at=now,
                attempts=F("attempts") + 1,
            )
    except IntegrityError:
        return False
    if not claimed:
        raise _AlreadyHandled()
    return True


class _AlreadyHandled(Exception):
    pass


def promotion_reclaim_stale() -> int:
    """Requeue running promotions whose worker died (no heartbeat); returns how many.

    Safe to run any time and from several places: each row moves only if it is still
    stale, and a promotion that lost its worker MAX_ATTEMPTS times is failed instead.
    Running it again is safe: blobs already at the target are skipped.
    """
    cutoff = timezone.now() - stale_after()
    stale = Promotion.objects.filter(status=Promotion.Status.RUNNING, heartbeat_at__lt=cutoff)
    reclaimed = 0
    for pk, attempts in stale.values_list("pk", "attempts"):
        still_stale = stale.filter(pk=pk, attempts=attempts)
        if attempts >= MAX_ATTEMPTS:
            still_stale.update(
                status=Promotion.Status.FAILED, finished_at=timezone.now(),
                error=f"The worker running this promotion stopped {attempts} times; it was not "
                      "run again. Run it again once the worker is healthy; it is safe.",
            )
            continue
        if still_stale.update(status=Promotion.Status.QUEUED, heartbeat_at=None):
            log.warning("promotion %s lost its worker; requeued", pk)
            transaction.on_commit(lambda pk=pk: _enqueue(pk))
            reclaimed += 1
    return reclaimed


def promotion_execute(*, promotion_id: int) -> Promotion:
    """Run one queued promotion: lock, copy, verify, then move the tag and record History."""
    promotion = Promotion.objects.select_related("source", "target").get(pk=promotion_id)
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    try:
        while not _claim(promotion):
            if time.monotonic() > deadline:
                return _fail(promotion, "Another promotion to this tag has been running for too "
                                        "long; try again later.", attempt=None)
            time.sleep(0.25)
    except _AlreadyHandled:
        promotion.refresh_from_db()
        return promotion
    promotion.refresh_from_db()
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
        counters = _copy(promotion, live)
    except (RegistryError, oci_manifest.ManifestInvalid) as exc:
        return _fail(promotion, _explain(promotion, exc), attempt=attempt)
    except Exception as exc:  # never leave a promotion "running" on a bug
        log.exception("promotion %s crashed", promotion.pk)
        return _fail(promotion, f"Unexpected error: {exc.__class__.__name__}: {exc}",
                     attempt=attempt)
    finally:
        stop_heartbeat.set()
        heartbeat.join(timeout=2)
    return _succeed(promotion, counters, attempt=attempt)


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


def _copy(promotion: Promotion, live: dict) -> CopyCounters:
    source, target = promotion.source, promotion.target

    def progress(counters: CopyCounters) -> None:
        live["counters"] = counters  # published by the heartbeat thread

    copier = ImageCopier(
        source_factory=lambda: client_for(source),
        target_factory=lambda: client_for(target),
        source_path=source.backing_path(promotion.repository),
        target_path=target.backing_path(promotion.repository),
        same_host=same_backing_host(source, target),
        parallelism=settings.PROMOTER_COPY_PARALLELISM,
        on_progress=progress,
        retries=settings.PROMOTER_REGISTRY_RETRIES,
        backoff=settings.PROMOTER_REGISTRY_BACKOFF,
    )
    try:
        plan = plan_image(copier.source, copier.source_path, promotion.digest,
                          expect_digest=promotion.digest)
    except ManifestUnknown as exc:
        raise _Vanished() from exc
    except NameUnknown as exc:
        raise _Vanished() from exc
    try:
        # Content first (image, then its signatures), the promoted tag last.
        copier.copy_plan(plan, tag=None)
        copier.copy_signatures(plan.digests())
        copier.put_manifest(plan.top, promotion.tag)
    finally:
        _save_counters_quietly(promotion.pk, copier.counters)  # what was done, even on failure
    return copier.counters


class _Vanished(RegistryError):
    def __init__(self) -> None:
        super().__init__("vanished")


def _explain(promotion: Promotion, exc: Exception) -> str:
    where = f"{promotion.source.name}/{promotion.repository}"
    if isinstance(exc, _Vanished):
        return (f"The image {promotion.digest} is no longer in {where} (deleted or re-pushed "
                "after the promotion was requested). Nothing was changed in "
                f"{promotion.target.name}.")
    if isinstance(exc, DigestMismatch):
        return f"Digest mismatch, refused: {exc.message}"
    message = getattr(exc, "message", str(exc))
    return (f"{message} The tag in {promotion.target.name} was not changed; run the promotion "
            "again when fixed.")


def _counter_fields(counters: CopyCounters) -> dict:
    return {
        "blobs_total": counters.blobs_total,
        "blobs_copied": counters.blobs_copied,
        "blobs_mounted": counters.blobs_mounted,
        "blobs_skipped": counters.blobs_skipped,
        "bytes_total": counters.bytes_total,
        "bytes_done": counters.bytes_done,
        "manifests_total": counters.manifests_total,
        "manifests_copied": counters.manifests_copied,
        "signatures_copied": counters.signatures_copied,
    }


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
    if not mine.update(status=Promotion.Status.FAILED, error=message, finished_at=timezone.now()):
        log.warning("promotion %s was taken over by another worker; not marking it failed",
                    promotion.pk)
    promotion.refresh_from_db()
    return promotion


def _succeed(promotion: Promotion, counters: CopyCounters, *, attempt: int) -> Promotion:
    target = promotion.target
    summary = None
    try:
        summary = describe_image(client_for(target), target.backing_path(promotion.repository),
                                 promotion.digest)
    except RegistryError:
        pass
    source_tag = Tag.objects.filter(
        repository__registry=promotion.source, repository__name=promotion.repository,
        digest=promotion.digest,
    ).first()
    if summary is None:
        from registries.images import ImageSummary

        summary = ImageSummary(promotion.digest, promotion.media_type,
                               source_tag.size if source_tag else counters.bytes_total,
                               source_tag.platforms if source_tag else [])
    with transaction.atomic():
        # Lock our claim: a reclaimed promotion is finished by the worker that owns it now,
        # so History gets exactly one Promoted event.
        owned = Promotion.objects.select_for_update().filter(
            pk=promotion.pk, status=Promotion.Status.RUNNING, attempts=attempt
        ).exists()
        if not owned:
            log.warning("promotion %s was taken over by another worker; not recording it",
                        promotion.pk)
            promotion.refresh_from_db()
            return promotion
        _, old = tag_upsert(registry=target, repository=promotion.repository, tag=promotion.tag,
                            summary=summary, remember_previous=True)
        history_record(
            action="promoted", registry=target, repository=promotion.repository,
            tag=promotion.tag, digest=promotion.digest, actor=promotion.actor,
            from_registry=promotion.source.name, to_registry=target.name,
            comment=promotion.comment, promotion=promotion,
        )
        Promotion.objects.filter(pk=promotion.pk).update(
            status=Promotion.Status.SUCCEEDED, finished_at=timezone.now(), error="",
            previous_digest=old if old != promotion.digest else "",
        )
    promotion.refresh_from_db()
    return promotion


def tag_roll_back(*, tag: Tag, actor: Principal) -> Tag:
    """Re-point a promoted tag at the digest it had before the last promotion."""
    registry = tag.repository.registry
    if not actor.has(Permission.PROMOTE, registry):
        raise PromotionForbidden(f"You may not roll back tags in {registry.name}.")
    if not tag.previous_digest:
        raise PromotionInvalid(f"{tag} has no earlier digest to roll back to.")
    client = client_for(registry)
    path = registry.backing_path(tag.repository.name)
    try:
        previous = client.get_manifest(path, tag.previous_digest)
        digest = client.put_manifest(path, tag.name, previous.body, previous.media_type)
        if digest != tag.previous_digest:
            raise DigestMismatch(f"the registry stored {digest}, not {tag.previous_digest}")
        summary = describe_image(client, path, digest)
    except ManifestUnknown as exc:
        raise PromotionInvalid(
            f"The earlier image {tag.previous_digest} is no longer in {registry.name}."
        ) from exc
    except RegistryError as exc:
        raise PromotionInvalid(f"Roll back failed, the tag was not changed: {exc.message}") from exc
    with transaction.atomic():
        updated, old = tag_upsert(registry=registry, repository=tag.repository.name, tag=tag.name,
                                  summary=summary, remember_previous=True)
        history_record(
            action="rolled_back", registry=registry, repository=tag.repository.name,
            tag=tag.name, digest=digest, actor=actor, comment=f"from {old}",
        )
    return updated
