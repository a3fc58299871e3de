"""Bulk promotion: many images from one registry to its target in one request.

A batch is a list of images (several tags, whole repositories, tag patterns, or
`repository:tag` pairs); each image goes through `promotion_request` on its own, so each
has its own policy check, its own History event and the same "already there" and rate
limit rules as a promotion asked for alone. A refusal or a failure of one image is
recorded on its item and undoes none of the others. `batch_rerun_failed` asks again for
the images that failed or were refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction

from accounts.permissions import Principal
from promoter.errors import DomainError, Forbidden, Invalid, NotFound, PolicyUnmet
from registries import selectors
from registries.models import (
    BATCH_MAX_IMAGES,
    COMMENT_MAX,
    PROMOTION_COUNTERS,
    Batch,
    BatchItem,
    Promotion,
    Registry,
)
from registries.oci.copy import CopyCounters
from registries.services.previews import PromotionPreview, promotion_preview, refusal_of
from registries.services.promotions import (
    promotion_comment_check,
    promotion_request,
    promotion_retry,
    promotion_route_check,
)

PATTERN_MAX = 255  # characters of one repository or tag name or pattern
SELECTION_ENTRIES_MAX = BATCH_MAX_IMAGES  # names, patterns or pairs in one list


@dataclass(frozen=True)
class Selection:
    """Which images of the source a batch promotes.

    `repositories`: names or fnmatch patterns (`team/*`), with `tags` (names or patterns,
    `4.2.*`; none: every tag); `images`: explicit (repository, tag) pairs. Both may be given.
    """

    repositories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    images: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(
        cls,
        *,
        repositories: list[str] | None = None,
        tags: list[str] | None = None,
        images: list[str] | None = None,
    ) -> Selection:
        """From plain values: `images` as `repository:tag` strings; checked here."""
        pairs = []
        for image in images or []:
            repository, sep, tag = str(image).rpartition(":")
            if not sep or not repository or not tag or "/" in tag:
                raise Invalid(
                    f"{str(image)[:100]!r} is not an image: write repository:tag, e.g. "
                    "team/api:1.0."
                )
            pairs.append((repository, tag))
        selection = cls(
            tuple(str(r).strip() for r in repositories or [] if str(r).strip()),
            tuple(str(t).strip() for t in tags or [] if str(t).strip()),
            tuple(pairs),
        )
        selection.check()
        return selection

    def check(self) -> None:
        """Shape and size limits; the names themselves are checked per image."""
        if not self.repositories and not self.images:
            raise Invalid("Choose what to promote: repositories (with tags) or images.")
        if self.tags and not self.repositories:
            raise Invalid("Tags select within repositories: name the repositories too.")
        for what, values in (
            ("repositories", self.repositories),
            ("tags", self.tags),
            ("images", self.images),
        ):
            if len(values) > SELECTION_ENTRIES_MAX:
                raise Invalid(f"At most {SELECTION_ENTRIES_MAX} {what} in one batch.")
        for value in (*self.repositories, *self.tags, *(f"{r}:{t}" for r, t in self.images)):
            if len(value) > PATTERN_MAX or any(ord(c) < 32 for c in value):
                raise Invalid(f"{value[:100]!r} is not a name or pattern Promoter reads.")

    def as_json(self) -> dict:
        return {
            "repositories": list(self.repositories),
            "tags": list(self.tags),
            "images": [f"{r}:{t}" for r, t in self.images],
        }

    def describe(self) -> str:
        parts = []
        if self.repositories:
            what = ", ".join(self.repositories)
            parts.append(f"{what} ({', '.join(self.tags)})" if self.tags else what)
        if self.images:
            parts.append(", ".join(f"{r}:{t}" for r, t in self.images[:5]))
        return "; ".join(parts)


def selection_images(*, source: Registry, selection: Selection) -> list[tuple[str, str]]:
    """The (repository, tag) pairs a selection names: pairs as given, then the index's tags
    of the repositories; each once, at most BATCH_MAX_IMAGES (else Invalid), at least one
    (else NotFound)."""
    found: dict[tuple[str, str], None] = dict.fromkeys(selection.images)
    expanded = selectors.selection_expand(
        source=source,
        repositories=list(selection.repositories),
        tags=list(selection.tags),
        limit=BATCH_MAX_IMAGES,
    )
    found.update(dict.fromkeys(expanded))
    if len(found) > BATCH_MAX_IMAGES:
        raise Invalid(
            f"The selection names more than {BATCH_MAX_IMAGES} images, the most one batch "
            "promotes; narrow it (a tag pattern, fewer repositories) or split it."
        )
    if not found:
        literal = [r for r in selection.repositories if not _is_pattern(r)]
        tags = f" with a tag matching {', '.join(selection.tags)}" if selection.tags else ""
        if literal and not selection.tags:
            raise NotFound(f"There is no tag in {source.name}/{', '.join(literal)}.")
        raise NotFound(
            f"Nothing in {source.name} matches {', '.join(selection.repositories)}{tags}."
        )
    return list(found)


def _is_pattern(value: str) -> bool:
    return any(c in value for c in "*?[")


@dataclass
class BatchPreview:
    """A dry run of a batch: one PromotionPreview per image, nothing written."""

    source: Registry
    target: Registry
    images: list[PromotionPreview] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(image.ok for image in self.images)

    @property
    def transfer(self) -> CopyCounters:
        """The sums over the images that could be walked."""
        total = CopyCounters()
        for image in self.images:
            if image.planned:
                for name in PROMOTION_COUNTERS:
                    setattr(total, name, getattr(total, name) + getattr(image.transfer, name))
        return total


def batch_request(
    *,
    source: Registry,
    target: Registry,
    selection: Selection,
    comment: str = "",
    actor: Principal,
    dry_run: bool = False,
) -> Batch | BatchPreview:
    """Promote every image of `selection` from `source` to `target`, each through
    `promotion_request`; or, with `dry_run`, say what that would do and write nothing.

    The batch and its items are stored first; then each image is asked for on its own
    (its own transaction): its promotion, or why it was refused, goes on its item. A
    refusal or a failure never undoes the others.
    """
    selection.check()
    # The pipeline and the permissions once for all (each image is checked again on its own).
    promotion_route_check(source=source, target=target, actor=actor)
    images = selection_images(source=source, selection=selection)
    # The comment is checked once, before anything is stored (promotion_prepare's rules).
    comment = (comment or "").strip()
    if len(comment) > COMMENT_MAX:
        raise Invalid(f"The comment is {len(comment)} characters; the limit is {COMMENT_MAX}.")
    promotion_comment_check(target=target, comment=comment)
    if dry_run:
        return BatchPreview(
            source,
            target,
            [
                promotion_preview(
                    source=source,
                    repository=repository,
                    tag=tag,
                    target=target,
                    actor=actor,
                    comment=comment,
                )
                for repository, tag in images
            ],
        )
    with transaction.atomic(durable=True):
        batch = Batch.objects.create(
            source=source,
            target=target,
            selection=selection.as_json(),
            comment=comment,
            actor=actor.name,
            requested_by=actor.history_user,
        )
        BatchItem.objects.bulk_create(
            BatchItem(batch=batch, position=n, repository=repository, tag=tag)
            for n, (repository, tag) in enumerate(images)
        )
    for item in BatchItem.objects.filter(batch=batch).order_by("position"):
        _item_request(batch, item, actor)
    return batch


def _item_request(batch: Batch, item: BatchItem, actor: Principal) -> bool:
    """Ask for one image's promotion and record the outcome on its item; True when a
    promotion does it now (False: refused, and the item says why)."""
    values: dict = {
        "promotion": None,
        "already": False,
        "refusal": "",
        "error": "",
        "checklist": None,
    }
    try:
        with transaction.atomic(durable=True):
            promotion = promotion_request(
                source=batch.source,
                repository=item.repository,
                tag=item.tag,
                target=batch.target,
                actor=actor,
                comment=batch.comment,
            )
            # Asked for before this batch: it was already done or under way.
            values["already"] = promotion.created_at < batch.created_at
            values["promotion"] = promotion
            BatchItem.objects.filter(pk=item.pk).update(**values)
        return True
    except PolicyUnmet as exc:
        values["refusal"], values["error"] = BatchItem.Refusal.POLICY, exc.message
        values["checklist"] = exc.checklist.as_json()
    except DomainError as exc:
        values["refusal"], values["error"] = refusal_of(exc), exc.message
    BatchItem.objects.filter(pk=item.pk).update(**values)
    return False


def batch_rerun_failed(*, batch: Batch, actor: Principal) -> int:
    """Ask again for the images of `batch` that failed (run the promotion again) or were
    refused (request it again), each on its own; returns how many were run or requested
    again (an image refused again says why on its item)."""
    if not actor.can_promote(batch.source, batch.target):
        raise Forbidden(f"You may not promote into {batch.target.name}.")
    again = 0
    items = BatchItem.objects.filter(batch=batch).select_related("promotion").order_by("position")
    failed = [
        item
        for item in items
        if item.promotion is None or item.promotion.status == Promotion.Status.FAILED
    ]
    if not failed:
        raise Invalid("Nothing in this batch failed; there is nothing to run again.")
    for item in failed:
        promotion = item.promotion
        if promotion is None:
            again += _item_request(batch, item, actor)
        else:
            try:
                with transaction.atomic(durable=True):
                    promotion.source, promotion.target = batch.source, batch.target
                    promotion_retry(promotion=promotion, actor=actor)
            except DomainError as exc:
                # The promotion stays failed; the item says why it was not run again.
                BatchItem.objects.filter(pk=item.pk).update(error=exc.message)
            else:
                BatchItem.objects.filter(pk=item.pk).update(error="")
                again += 1
    return again
