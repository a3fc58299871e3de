"""The API's shapes for promoting many images at once (batches), dry runs (previews), and
the reads the command-line client needs: promotions of any status, an image's History.

Declared once, as api.schemas is (and in their own module because previews carry the
policy checklist of api.schemas_policies, which itself builds on api.schemas).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from django.urls import reverse
from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from api.schemas import (
    ID_MAX,
    Body,
    Flag,
    Given,
    Line,
    Out,
    Progress,
    PromotionStatus,
    Query,
    Text,
    one_of,
)
from api.schemas_policies import Checklist
from registries.models import (
    BATCH_MAX_IMAGES,
    COMMENT_MAX,
    PROMOTION_COUNTERS,
    BatchItem,
    HistoryEvent,
    Promotion,
)
from registries.selectors import BatchProgress, KeysetPage, TagNow
from registries.services.batches import BatchPreview as BatchPreviewResult
from registries.services.previews import PromotionPreview as PreviewResult

REFUSALS = tuple(BatchItem.Refusal.values)
ITEM_STATUSES = (*Promotion.Status.values, "refused")
BATCH_STATUSES = ("running", "succeeded", "failed")
NAMES_MAX = BATCH_MAX_IMAGES


# --- requests ---------------------------------------------------------------------------
class DryRunQuery(Query):
    dry_run: Flag = False
    """Say what would happen (per image: digest, blobs and bytes to copy, mount or already
    there, the target tag it replaces, the policy checklist); start nothing, write nothing."""


class BatchRequest(Body):
    """Many images from one feed to its target, each its own promotion. Give
    `repositories` (names or patterns such as `team/*`), optionally narrowed by `tags`
    (names or patterns such as `4.2.*`; none: every tag), and/or `images` as
    `repository:tag` pairs."""

    from_feed: Given
    """The source registry, e.g. `devdocker`."""
    to_feed: Line | None = None
    """The target registry; may be omitted when the source has a Promote To registry."""
    repositories: list[Line] | None = Field(None, max_length=NAMES_MAX)
    """Repositories, or fnmatch patterns of them (`team/*`): every tag, or those in `tags`."""
    tags: list[Line] | None = Field(None, max_length=NAMES_MAX)
    """Tags, or fnmatch patterns of them (`4.2.*`), within `repositories`."""
    images: list[Line] | None = Field(None, max_length=NAMES_MAX)
    """`repository:tag` pairs, e.g. `team/api:1.0`."""
    comments: Text | None = Field(None, json_schema_extra={"maxLength": COMMENT_MAX})
    """Why; recorded in the History of every image."""
    comment: Text | None = Field(None, json_schema_extra={"maxLength": COMMENT_MAX})
    """Same as `comments`."""

    @model_validator(mode="before")
    @classmethod
    def _something(cls, data):
        if isinstance(data, dict) and not (data.get("repositories") or data.get("images")):
            raise PydanticCustomError("sentence", "Give repositories or images to promote.")
        return data

    @field_validator("repositories", "tags", "images")
    @classmethod
    def _not_blank(cls, values: list[str] | None) -> list[str] | None:
        if values is not None and any(not v.strip() for v in values):
            raise PydanticCustomError("sentence", "A name or pattern is empty.")
        return values

    @property
    def comment_text(self) -> str:
        return one_of(self, "comments", "comment") or ""


class BatchId(Query):
    batch_id: int = Field(ge=1, le=ID_MAX, alias="batch_id")
    """The batch's id."""


class SearchQuery(Query):
    from_feed: Line | None = None
    """Only promotions from this registry."""
    to_feed: Line | None = None
    """Only promotions into this registry."""
    status: Literal[tuple(Promotion.Status.values)] | None = None
    """Only promotions in this state."""
    cursor: Line | None = Field(None, max_length=64)
    """The `next` of the page before."""
    limit: int = Field(50, ge=1, le=200)
    """Promotions per page."""


class HistoryQuery(Query):
    feed: Given
    """The registry, e.g. `devdocker`."""
    name: Given
    """The repository, e.g. `team/api`."""
    version: Given
    """The tag, e.g. `1.0`."""
    cursor: Line | None = Field(None, max_length=64)
    """The `next` of the page before."""


# --- answers ----------------------------------------------------------------------------
class Transfer(Out):
    """What copying one image moves (a dry run: would move): blobs and bytes streamed,
    mounted across repositories, or already at the target."""

    blobs_total: int
    blobs_to_copy: int
    blobs_to_mount: int
    blobs_present: int
    bytes_total: int
    bytes_to_copy: int
    bytes_to_mount: int
    bytes_present: int
    manifests: int
    """Manifests put (the image's, its children's and its referrers')."""
    referrers: int
    """Signatures, attestations and other referrers that travel with it."""

    @classmethod
    def of(cls, counters) -> Transfer:
        """From the copy engine's counters (registries.oci.copy.CopyCounters)."""
        return cls(
            blobs_total=counters.blobs_total,
            blobs_to_copy=counters.blobs_copied,
            blobs_to_mount=counters.blobs_mounted,
            blobs_present=counters.blobs_skipped,
            bytes_total=counters.bytes_total,
            bytes_to_copy=counters.bytes_copied,
            bytes_to_mount=counters.bytes_mounted,
            bytes_present=counters.bytes_skipped,
            manifests=counters.manifests_total,
            referrers=counters.signatures_copied,
        )


class TargetTag(Out):
    """The target tag as it is now: its digest, and who put it there when (History)."""

    digest: str
    user: str | None
    date: dt.datetime | None

    @classmethod
    def of(cls, now: TagNow) -> TargetTag:
        return cls(digest=now.digest, user=now.actor or None, date=now.at)


class PromotionPreview(Out):
    """A dry run of one promotion: what it would do. Nothing was written."""

    dry_run: Literal[True]
    from_feed: str
    to_feed: str
    repository: str
    version: str
    """The tag."""
    digest: str | None
    """The digest the tag has now, which would be copied; null when it cannot be read."""
    ok: bool
    """The promotion would start (and, as far as can be seen, succeed)."""
    error: str | None
    """Why not."""
    refusal: Literal[REFUSALS] | None
    """Why the request itself would be refused (`policy`: see `policy`)."""
    already_promoted: int | None
    """The promotion that already did it: asking again starts nothing."""
    transfer: Transfer | None
    """Blobs and bytes to copy, mount and already there; null when the image cannot be read."""
    target_tag: TargetTag | None
    """What the tag in the target points at now; null when it does not exist there."""
    replaces: bool
    """The target tag would move from another digest to this one."""
    policy: Checklist | None
    """The target's policy applied to this image; null when it has none."""

    @classmethod
    def of(cls, preview: PreviewResult) -> PromotionPreview:
        return cls(
            dry_run=True,
            from_feed=preview.source.name,
            to_feed=preview.target.name,
            repository=preview.repository,
            version=preview.tag,
            digest=preview.digest or None,
            ok=preview.ok,
            error=preview.error or (preview.checklist.summary() if preview.refusal else None),
            refusal=preview.refusal or None,
            already_promoted=preview.already,
            transfer=Transfer.of(preview.transfer) if preview.planned else None,
            target_tag=TargetTag.of(preview.target_tag) if preview.target_tag else None,
            replaces=preview.replaces,
            policy=(
                Checklist.model_validate(preview.checklist.as_json()) if preview.checklist else None
            ),
        )


class BatchPreview(Out):
    """A dry run of a batch: each image's preview, and the sums. Nothing was written."""

    dry_run: Literal[True]
    from_feed: str
    to_feed: str
    ok: bool
    """Every image would be promoted."""
    images: list[PromotionPreview]
    transfer: Transfer
    """The sums over the images that could be read."""

    @classmethod
    def of(cls, preview: BatchPreviewResult) -> BatchPreview:
        return cls(
            dry_run=True,
            from_feed=preview.source.name,
            to_feed=preview.target.name,
            ok=preview.ok,
            images=[PromotionPreview.of(image) for image in preview.images],
            transfer=Transfer.of(preview.transfer),
        )


class BatchItemOut(Out):
    """One image of a batch: its promotion's state, or why none was started."""

    repository: str
    version: str
    status: Literal[ITEM_STATUSES]
    """The promotion's status, or `refused` when none was started."""
    digest: str | None
    promotion_id: int | None
    already_promoted: bool
    """An earlier promotion already did (or was doing) it; no new one was started."""
    refusal: Literal[REFUSALS] | None
    error: str | None
    """Why it failed or was refused (or why running it again was refused)."""
    policy: Checklist | None
    """The checklist, when the target's policy refused it."""
    progress: Progress | None
    status_url: str | None
    """The promotion's status, to poll."""

    @classmethod
    def of(cls, item: BatchItem) -> BatchItemOut:
        promotion = item.promotion
        progress = None
        if promotion is not None:
            counters = {name: getattr(promotion, name) for name in PROMOTION_COUNTERS}
            progress = Progress(percent=promotion.percent, **counters)
        error = item.error or (promotion.error if promotion is not None else "")
        if promotion is None and not item.refusal:
            error = "Not requested: the request that made the batch was cut short."
        return cls(
            repository=item.repository,
            version=item.tag,
            status=item.status,
            digest=promotion.digest if promotion is not None else None,
            promotion_id=promotion.pk if promotion is not None else None,
            already_promoted=item.already,
            refusal=item.refusal or None,
            error=error or None,
            policy=Checklist.model_validate(item.checklist) if item.checklist else None,
            progress=progress,
            status_url=(
                reverse("api:promotionStatus", args=[promotion.pk])
                if promotion is not None
                else None
            ),
        )


class BatchSelection(Out):
    repositories: list[str]
    tags: list[str]
    images: list[str]


class BatchStatus(Out):
    """A batch: n of m images finished, bytes, and each image's state."""

    id: int
    status: Literal[BATCH_STATUSES]
    """`running` while any image is queued or running; then `succeeded` when every image
    was promoted, else `failed` (a failure of one undoes none of the others)."""
    from_feed: str
    to_feed: str
    comments: str
    user: str
    created: dt.datetime
    selection: BatchSelection
    images: int
    """How many images the batch holds (m)."""
    finished: int
    """How many have finished, whichever way (n)."""
    succeeded: int
    failed: int
    refused: int
    running: int
    queued: int
    bytes_total: int
    bytes_done: int
    percent: int = Field(ge=0, le=100)
    items: list[BatchItemOut]
    status_url: str
    page_url: str

    @classmethod
    def of(cls, batch, progress: BatchProgress) -> BatchStatus:
        selection = batch.selection or {}
        return cls(
            id=batch.pk,
            status=progress.status,
            from_feed=batch.source.name,
            to_feed=batch.target.name,
            comments=batch.comment,
            user=batch.actor,
            created=batch.created_at,
            selection=BatchSelection(
                repositories=selection.get("repositories", []),
                tags=selection.get("tags", []),
                images=selection.get("images", []),
            ),
            images=progress.total,
            finished=progress.finished,
            succeeded=progress.succeeded,
            failed=progress.failed,
            refused=progress.refused,
            running=progress.running,
            queued=progress.queued,
            bytes_total=progress.bytes_total,
            bytes_done=progress.bytes_done,
            percent=progress.percent,
            items=[BatchItemOut.of(item) for item in batch.item_list],
            status_url=reverse("api:batchStatus", args=[batch.pk]),
            page_url=reverse("registries:batch_detail", args=[batch.pk]),
        )


class PromotionPage(Out):
    """Promotions, newest first, and the cursor of the next (older) page."""

    promotions: list[PromotionStatus]
    next: str | None
    """Pass as `cursor` for the next page; null on the last one."""

    @classmethod
    def of(cls, page: KeysetPage) -> PromotionPage:
        return cls(
            promotions=[PromotionStatus.of(p) for p in page.object_list],
            next=page.next_cursor or None,
        )


class HistoryEventOut(Out):
    """One History event of an image: pushed, promoted, rolled back, …"""

    action: Literal[tuple(HistoryEvent.Action.values)]
    feed: str
    """The registry it happened in."""
    repository: str
    version: str | None
    """The tag; null for an image without one."""
    digest: str
    user: str
    date: dt.datetime
    from_feed: str | None
    to_feed: str | None
    comments: str | None
    promotion_id: int | None


class HistoryPage(Out):
    """History of a tag and its image across registries, newest first."""

    events: list[HistoryEventOut]
    next: str | None
    """Pass as `cursor` for the next page; null on the last one."""

    @classmethod
    def of(cls, page: KeysetPage) -> HistoryPage:
        return cls(
            events=[
                HistoryEventOut(
                    action=e.action,
                    feed=e.registry,
                    repository=e.repository,
                    version=e.tag or None,
                    digest=e.digest,
                    user=e.actor,
                    date=e.created_at,
                    from_feed=e.from_registry or None,
                    to_feed=e.to_registry or None,
                    comments=e.comment or None,
                    promotion_id=e.promotion_id,
                )
                for e in page.object_list
            ],
            next=page.next_cursor or None,
        )
