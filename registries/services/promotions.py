"""Promotion services: request (validate, pin the digest), run again, reclaim stale ones.

The worker's side (claim, copy, succeed or fail) is `registries.runner`.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Permission
from accounts.permissions import Principal
from promoter.errors import Conflict, Forbidden, Invalid, NotFound, TooManyRequests
from registries.accessories import accessory_of
from registries.connections import client_for
from registries.models import COMMENT_MAX, Image, Promotion, Registry, Tag
from registries.oci import manifest as oci_manifest
from registries.oci.deadline import deadline
from registries.oci.errors import NameUnknown, RegistryError
from registries.records import promotion_failure_record
from registries.runner import MAX_ATTEMPTS, stale_after
from registries.services.policies import policy_require
from registries.tasks import promote

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PromotionOrder:
    """A promotion checked and pinned, not yet stored (promotion_prepare)."""

    source: Registry
    target: Registry
    repository: str
    tag: str  # the tag promoted; for a digest, the newest tag pointing at it ("" if none)
    digest: str
    media_type: str
    by_digest: bool
    comment: str


def promotion_route_check(*, source: Registry, target: Registry, actor: Principal) -> None:
    """May `actor` promote from `source` to `target` at all (the pipeline, the permissions)?"""
    if source.pk == target.pk:
        raise Invalid(f"The target is the source ({source.name}); choose another registry.")
    if not actor.has(Permission.VIEW, source):
        raise NotFound(f"There is no registry called {source.name!r}.")
    if source.promote_to_id and source.promote_to_id != target.pk:
        raise Invalid(
            f"{source.name} promotes only to {source.promote_to.name} (its Promote To registry), "
            f"not to {target.name}."
        )
    if not target.active:
        raise Invalid(f"The registry {target.name} is not active.")
    if not actor.can_promote(source, target):
        raise Forbidden(
            f"You may not promote into {target.name}: that needs Promote Packages on {target.name}."
        )


def promotion_comment_check(*, target: Registry, comment: str) -> None:
    """A target that requires a comment gets one."""
    if target.require_comment and not (comment or "").strip():
        raise Invalid(
            f"A comment is required to promote into {target.name}: say why (it is kept in History)."
        )


def promotion_prepare(
    *,
    source: Registry,
    repository: str,
    tag: str,
    target: Registry,
    actor: Principal,
    comment: str = "",
    rate_limited: bool = True,
) -> PromotionOrder:
    """Validate a promotion and pin the digest the tag has now; nothing is written.

    `rate_limited=False` for a dry run, which starts nothing and so counts for nothing."""
    comment = (comment or "").strip()
    if len(comment) > COMMENT_MAX:
        raise Invalid(f"The comment is {len(comment)} characters; the limit is {COMMENT_MAX}.")
    try:
        oci_manifest.validate_name(repository)
    except RegistryError as exc:
        raise Invalid(f"{repository!r} is not a valid repository name.") from exc
    is_digest = tag.startswith("sha256:")
    try:
        (oci_manifest.validate_digest if is_digest else oci_manifest.validate_tag)(tag)
    except RegistryError as exc:
        raise Invalid(f"{tag!r} is not a valid tag or digest.") from exc
    promotion_route_check(source=source, target=target, actor=actor)
    accessory = accessory_of(tag)
    if accessory is not None:
        raise Invalid(
            f"{tag} is not an image: it belongs to {accessory.subject} and travels with it. "
            "Promote that image instead."
        )
    promotion_comment_check(target=target, comment=comment)
    if rate_limited:
        _rate_limit(actor)
    digest, media_type, tag_name = _pin(source, repository, tag)
    return PromotionOrder(
        source, target, repository, tag_name, digest, media_type, is_digest, comment
    )


def promotion_request(
    *,
    source: Registry,
    repository: str,
    tag: str,
    target: Registry,
    actor: Principal,
    comment: str = "",
    expect_digest: str = "",
) -> Promotion:
    """Validate, pin the digest the tag has now, check the target's policy, store a queued
    Promotion and enqueue it. `expect_digest`: refuse when the tag has moved from it (an
    approved request promotes what was approved, nothing else).

    Asking again for what is already done or under way returns that promotion: the same
    digest queued or running to the same target tag, or already promoted there and still
    what the target tag points at ("already there": no new promotion, no new History).
    Each principal may ask for at most PROMOTER_PROMOTIONS_PER_MINUTE new promotions a
    minute.
    """
    order = promotion_prepare(
        source=source, repository=repository, tag=tag, target=target, actor=actor, comment=comment
    )
    if expect_digest and order.digest != expect_digest:
        raise Conflict(
            f"{source.name}/{repository}:{tag} now points at {order.digest}, not at "
            f"{expect_digest}."
        )
    existing = promotion_already(source, target, repository, order.tag, order.digest)
    if existing is not None:
        return existing
    # The one place the target's rules are applied (pages, API, bulk actions, retries).
    policy_require(
        source=source,
        target=target,
        repository=repository,
        tag=order.tag,
        digest=order.digest,
        actor=actor,
        by_digest=order.by_digest,
    )
    with transaction.atomic():
        promotion = Promotion.objects.create(
            source=source,
            target=target,
            repository=repository,
            tag=order.tag,
            digest=order.digest,
            media_type=order.media_type,
            by_digest=order.by_digest,
            comment=order.comment,
            actor=actor.name,
            requested_by=actor.history_user,
        )
        transaction.on_commit(lambda: _enqueue(promotion.pk))
    return promotion


def _rate_limit(actor: Principal) -> None:
    if actor.system:
        return
    limit = settings.PROMOTER_PROMOTIONS_PER_MINUTE
    since = timezone.now() - dt.timedelta(minutes=1)
    recent = Promotion.objects.filter(actor=actor.name, created_at__gte=since)
    if limit and recent.count() >= limit:
        raise TooManyRequests(
            f"{actor.name} asked for {limit} promotions within a minute, the most allowed; "
            "wait a minute, then try again."
        )


def promotion_already(
    source: Registry, target: Registry, repository: str, tag: str, digest: str
) -> Promotion | None:
    """The promotion that already does (or did) this, if asking again would add nothing."""
    same = Promotion.objects.filter(
        source=source, target=target, repository=repository, tag=tag, digest=digest
    )
    # Asked on every request, and mostly answered "no": look at ids and digests only.
    pending = same.filter(status__in=[Promotion.Status.QUEUED, Promotion.Status.RUNNING])
    found = pending.order_by("-created_at").values_list("pk", flat=True).first()
    if found is not None:
        existing = same.select_related("source", "target").filter(pk=found).first()
        if existing is not None:
            return existing
    at_target = (
        Tag.objects.filter(registry=target, repository__name=repository, name=tag)
        .values_list("digest", flat=True)
        .first()
    )
    if at_target != digest:
        return None
    last = (
        Promotion.objects.filter(target=target, repository=repository, tag=tag)
        .exclude(status=Promotion.Status.FAILED)
        .order_by("-created_at")
        .first()
    )
    if last is None or last.digest != digest or last.source_id != source.pk:
        return None
    if _accessories_since(source, repository, digest, last.created_at):
        # A signature or attestation arrived after: asking again carries it over.
        return None
    log.info("promotion %s asked again: already there", last.pk)
    return last


def _accessories_since(source: Registry, repository: str, digest: str, since) -> bool:
    """Whether the source got a cosign-style tag for `digest` (sha256-<hex>.sig/.att/.sbom)
    or an untagged manifest (an OCI referrer) in this repository after `since`."""
    prefix = digest.replace(":", "-", 1) + "."
    tags = Tag.objects.filter(registry=source, repository__name=repository)
    images = Image.objects.filter(repository__registry=source, repository__name=repository)
    return (
        tags.filter(name__startswith=prefix, pushed_at__gt=since).exists()
        or images.filter(pushed_at__gt=since).exists()
    )


def _pin(source: Registry, repository: str, reference: str) -> tuple[str, str, str]:
    """The digest `reference` has in the source right now (the registry is the truth)."""
    # Inside a web request: one try and a short hard deadline (PROMOTER_WEB_REGISTRY_DEADLINE),
    # so a slow or hostile registry never holds the threads that serve pages.
    client = client_for(source, web=True)
    path = source.backing_path(repository)
    try:
        with deadline(settings.PROMOTER_WEB_REGISTRY_DEADLINE):
            head = client.head_manifest(path, reference)
    except NameUnknown as exc:
        raise NotFound(f"There is no repository {repository} in {source.name}.") from exc
    except RegistryError as exc:
        raise Invalid(f"{source.name} could not be read: {exc.message}") from exc
    if head is None:
        if reference.startswith("sha256:"):
            raise NotFound(f"There is no image {reference} in {source.name}/{repository}.")
        raise NotFound(f"There is no tag {reference} in {source.name}/{repository}.")
    tag_name = reference
    if reference.startswith("sha256:"):
        # Promoting a digest moves every tag pointing at it (the worker lists them before
        # and after the copy); the newest names the promotion, "" when it has no tag.
        found = (
            Tag.objects.filter(
                repository__registry=source, repository__name=repository, digest=head.digest
            )
            .order_by("-pushed_at", "name")
            .first()
        )
        tag_name = found.name if found else ""
    return head.digest, head.media_type, tag_name


def _enqueue(promotion_id: int, *, priority: int = 0) -> None:
    (promote.using(priority=priority) if priority else promote).enqueue(promotion_id=promotion_id)


# A promotion whose worker died goes before the queue: it has waited its turn already.
RECLAIMED_PRIORITY = 50


def promotion_retry(*, promotion: Promotion, actor: Principal) -> Promotion:
    """Queue a failed promotion again (same pinned digest); content already there is skipped."""
    if not actor.can_promote(promotion.source, promotion.target):
        raise Forbidden(f"You may not promote into {promotion.target.name}.")
    if promotion.status == Promotion.Status.FAILED:
        # Running again is promoting again: the target's rules hold now as they did then.
        policy_require(
            source=promotion.source,
            target=promotion.target,
            repository=promotion.repository,
            tag=promotion.tag,
            digest=promotion.digest,
            actor=actor,
            by_digest=promotion.by_digest,
        )
    updated = Promotion.objects.filter(pk=promotion.pk, status=Promotion.Status.FAILED).update(
        status=Promotion.Status.QUEUED, error="", finished_at=None
    )
    if not updated:
        raise Invalid("Only a failed promotion can be run again.")
    transaction.on_commit(lambda: _enqueue(promotion.pk))
    promotion.refresh_from_db()
    return promotion


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
            message = (
                f"The worker running this promotion stopped {attempts} times; it was not "
                "run again. Run it again once the worker is healthy; it is safe."
            )
            with transaction.atomic():
                if still_stale.update(
                    status=Promotion.Status.FAILED, finished_at=timezone.now(), error=message
                ):
                    promotion_failure_record(
                        promotion=Promotion.objects.select_related("source", "target").get(pk=pk),
                        error=message,
                    )
                    _task_runs_abandon(pk)
            continue
        if still_stale.update(status=Promotion.Status.QUEUED, heartbeat_at=None):
            _task_runs_abandon(pk)
            log.warning("promotion %s lost its worker; requeued", pk)
            transaction.on_commit(lambda pk=pk: _enqueue(pk, priority=RECLAIMED_PRIORITY))
            reclaimed += 1
    return reclaimed


def _task_runs_abandon(promotion_id: int) -> None:
    """Mark the task-queue rows of a dead worker's run failed (they would stay RUNNING)."""
    from django_tasks_db.models import DBTaskResult

    DBTaskResult.objects.filter(
        status="RUNNING",
        task_path=promote.module_path,
        args_kwargs__kwargs__promotion_id=promotion_id,
    ).update(
        status="FAILED",
        finished_at=timezone.now(),
        exception_class_path="registries.runner.WorkerLost",
        traceback="The worker running this task stopped (no heartbeat); the promotion was "
        "reclaimed and queued again as a new task.\n",
    )
