"""Dry runs: what a promotion would do, with nothing written.

`promotion_preview` validates and pins like `promotion_request`, evaluates the target's
policy, says what the target tag points at now (and who put it there, when), and walks the
image with the copy engine in its dry-run mode (registries.oci.copy), which asks the target
the same questions a real copy asks (HEAD) and counts what it would copy, mount and find
already there. No row is written, nothing is queued, no History event is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from accounts.permissions import Principal
from promoter.errors import DomainError, Forbidden, NotFound, PolicyUnmet, TooManyRequests
from registries import selectors
from registries.models import BatchItem, Registry
from registries.oci import manifest as oci_manifest
from registries.oci.copy import CopyCounters, plan_image
from registries.oci.deadline import deadline
from registries.oci.errors import RegistryError
from registries.runner import image_copier
from registries.services.policies import Checklist, policy_evaluate
from registries.services.promotions import promotion_already, promotion_prepare


def refusal_of(exc: DomainError) -> str:
    """The kind of refusal a DomainError is (BatchItem.Refusal), for pages, the API, the CLI."""
    if isinstance(exc, PolicyUnmet):
        return BatchItem.Refusal.POLICY
    if isinstance(exc, NotFound):
        return BatchItem.Refusal.NOT_FOUND
    if isinstance(exc, Forbidden):
        return BatchItem.Refusal.FORBIDDEN
    if isinstance(exc, TooManyRequests):
        return BatchItem.Refusal.RATE_LIMITED
    return BatchItem.Refusal.INVALID


@dataclass
class PromotionPreview:
    """What promoting one image would do; `ok` when it would start."""

    source: Registry
    target: Registry
    repository: str
    tag: str
    digest: str = ""
    media_type: str = ""
    transfer: CopyCounters = field(default_factory=CopyCounters)
    planned: bool = False  # the transfer numbers were read (the image could be walked)
    target_tag: selectors.TagNow | None = None  # the target tag now (None: new there)
    already: int | None = None  # the promotion that already did it: none would start
    checklist: Checklist | None = None
    error: str = ""
    refusal: str = ""  # a BatchItem.Refusal when the request itself would be refused
    exception: DomainError | None = None  # what the request would raise (not the policy)

    @property
    def replaces(self) -> bool:
        """The target tag exists and would move to another digest."""
        return self.target_tag is not None and self.target_tag.digest != self.digest

    @property
    def ok(self) -> bool:
        return not self.error and (
            self.already is not None or self.checklist is None or self.checklist.ok
        )

    @property
    def image_label(self) -> str:
        return f"{self.repository}:{self.tag}"


def promotion_preview(
    *,
    source: Registry,
    repository: str,
    tag: str,
    target: Registry,
    actor: Principal,
    comment: str = "",
) -> PromotionPreview:
    """A dry run of promoting `repository:tag` from `source` to `target`: never raises for
    a refusal (the preview says why), never writes."""
    preview = PromotionPreview(source, target, repository, tag)
    try:
        order = promotion_prepare(
            source=source,
            repository=repository,
            tag=tag,
            target=target,
            actor=actor,
            comment=comment,
            rate_limited=False,
        )
    except DomainError as exc:
        preview.error, preview.refusal, preview.exception = exc.message, refusal_of(exc), exc
        return preview
    preview.tag = order.tag or tag
    preview.digest, preview.media_type = order.digest, order.media_type
    if order.tag:
        preview.target_tag = selectors.tag_now(
            registry=target, repository=repository, tag=order.tag
        )
    existing = promotion_already(source, target, repository, order.tag, order.digest)
    preview.already = existing.pk if existing is not None else None
    checklist = policy_evaluate(
        source=source,
        target=target,
        repository=repository,
        tag=order.tag,
        digest=order.digest,
        actor=actor,
        by_digest=order.by_digest,
    )
    preview.checklist = checklist if checklist.checks else None
    if preview.checklist is not None and not checklist.ok and existing is None:
        preview.refusal = BatchItem.Refusal.POLICY
    try:
        preview.transfer = _transfer(source, target, repository, order.digest)
        preview.planned = True
    except (RegistryError, oci_manifest.ManifestInvalid) as exc:
        message = getattr(exc, "message", str(exc))
        preview.error = f"The image could not be read to plan the copy: {message}"
    return preview


def _transfer(source: Registry, target: Registry, repository: str, digest: str) -> CopyCounters:
    """The copy engine's dry run of this image: what it would copy, mount and skip."""
    copier = image_copier(source, target, repository, web=True, dry_run=True)
    # A web request: each call, and the walk of the manifests, within the web deadline.
    with deadline(settings.PROMOTER_WEB_REGISTRY_DEADLINE):
        plan = plan_image(copier.source, copier.source_path, digest, expect_digest=digest)
    copier.copy_image(plan)
    return copier.counters
