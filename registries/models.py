"""Registries, repositories, tags, promotions and the append-only History."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import socket

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from registries.accessories import accessory_of
from registries.credentials import EncryptedTextField
from registries.oci.copy import CopyCounters

REGISTRY_NAME_VALIDATOR = RegexValidator(
    r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$",
    "Use lower-case letters, digits and single . _ - between them, e.g. devdocker.",
)


COMMENT_MAX = 4000  # characters of a promotion comment
# A Promotion's progress columns, named as the copier's counters (one list: CopyCounters).
PROMOTION_COUNTERS = tuple(f.name for f in dataclasses.fields(CopyCounters))
# Repositories under this top-level name on the bundled registry are Promoter's own.
RESERVED_REGISTRY_NAME = "promoter-system"

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# scheme://host[:port] and nothing else: no user info, path, query or fragment, so an
# endpoint can never smuggle anything into a URL or a displayed shell command.
ENDPOINT_RE = re.compile(
    rf"(?P<scheme>https?)://(?P<host>{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?"
)
ENDPOINT_HELP = "Use scheme://host[:port] only, e.g. https://registry.example.com:5000."


def _is_private(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def endpoint_host(endpoint: str) -> str:
    """The host of a valid endpoint (IPv6 without brackets)."""
    match = ENDPOINT_RE.fullmatch(endpoint)
    return match["host"].strip("[]") if match else ""


def endpoint_is_private(endpoint: str) -> bool:
    """True when the endpoint's host is, or resolves to, a loopback/private/link-local address."""
    host = endpoint_host(endpoint)
    try:
        return _is_private(host)
    except ValueError:
        pass  # a name: check every address it resolves to
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False  # does not resolve: it cannot be reached either
    return any(_is_private(info[4][0]) for info in infos)


def validate_namespace(value: str) -> None:
    """A path prefix on an external registry: repository-name components joined by '/'."""
    from registries.oci.manifest import MAX_NAME_LENGTH, NAME_RE

    if value and (len(value) > MAX_NAME_LENGTH or not NAME_RE.fullmatch(value.strip("/"))):
        raise ValidationError(
            f"{value[:100]!r} is not a namespace: use lower-case name components joined by "
            "'/', e.g. mirror/library."
        )


def validate_endpoint(value: str) -> None:
    """An external registry's address: scheme://host[:port] only (see ENDPOINT_RE)."""
    match = ENDPOINT_RE.fullmatch(value or "")
    if match is None or len(value) > 200:
        raise ValidationError(f"{value[:100]!r} is not a registry address. {ENDPOINT_HELP}")
    if match["host"].startswith("["):
        try:
            ipaddress.IPv6Address(match["host"].strip("[]"))
        except ValueError:
            raise ValidationError(f"{value!r} has an invalid IPv6 address.") from None
    if match["port"] is not None and not 0 < int(match["port"]) < 65536:
        raise ValidationError(f"{value!r} has an invalid port.")
    if settings.PROMOTER_FORBID_PRIVATE_ENDPOINTS and endpoint_is_private(value):
        raise ValidationError(
            f"{value!r} is on a loopback, private or link-local address, which this portal "
            "does not connect to (PROMOTER_FORBID_PRIVATE_ENDPOINTS)."
        )


def split_repository(repository: str) -> tuple[str, str]:
    """`team/tools/api` -> ("team/tools", "api"): ProGet's group and package name."""
    group, _, package = repository.rpartition("/")
    return group, package


class RegistryQuerySet(models.QuerySet):
    def restrict(self, principal, permission: str) -> RegistryQuerySet:
        """The registries on which `principal` holds `permission`: the one choke point for
        lists (NetBox's `restrict`). Decisions are the principal's (accounts.permissions)."""
        if principal.system:
            return self
        allowed = [r.pk for r in Registry.objects.all() if principal.has(permission, r)]
        return self.filter(pk__in=allowed)


class Registry(models.Model):
    """ProGet's feed: a named place images live, on the bundled registry or an external one."""

    class UsageType(models.TextChoices):
        GENERAL = "general", "General"
        VALIDATED = "validated", "Validated/Promoted"

    name = models.CharField(max_length=64, unique=True, validators=[REGISTRY_NAME_VALIDATOR])
    description = models.TextField(blank=True, max_length=4000)
    usage_type = models.CharField(
        max_length=16, choices=UsageType.choices, default=UsageType.GENERAL
    )
    promote_to = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="promoted_from",
        verbose_name="Promote To",
    )
    # Blank endpoint: a namespace (the registry's name) on the bundled backing registry.
    endpoint = models.CharField(
        max_length=200,
        blank=True,
        validators=[validate_endpoint],
        help_text="Leave empty for the bundled registry. " + ENDPOINT_HELP,
    )
    namespace = models.CharField(
        max_length=255,
        blank=True,
        validators=[validate_namespace],
        help_text="Path prefix on an external registry, if any.",
    )
    username = models.CharField(max_length=255, blank=True)
    # Encrypted at rest (registries.credentials); never rendered, never returned by the API.
    password = EncryptedTextField(blank=True)
    active = models.BooleanField(default=True)
    # Checked by promotion_request (the one place): a promotion into this registry must say why.
    require_comment = models.BooleanField(
        default=False,
        verbose_name="Require a comment to promote into this registry",
        help_text="Promotions into this registry must give a reason (shown in History).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_sync_error = models.TextField(blank=True)

    objects = RegistryQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "registries"

    def __str__(self) -> str:
        return self.name

    @property
    def is_bundled(self) -> bool:
        return not self.endpoint

    @property
    def is_validated(self) -> bool:
        return self.usage_type == self.UsageType.VALIDATED

    @property
    def prefix(self) -> str:
        """Path prefix of this registry's repositories on its backing registry."""
        if self.is_bundled:
            return self.name
        return self.namespace.strip("/")

    def backing_path(self, repository: str) -> str:
        """`team/api` in this registry -> the repository name on the backing registry."""
        return f"{self.prefix}/{repository}" if self.prefix else repository

    def repository_from_backing(self, path: str) -> str | None:
        """Inverse of backing_path; None when the path is not inside this registry."""
        if not self.prefix:
            return path
        head = self.prefix + "/"
        return path[len(head) :] if path.startswith(head) and len(path) > len(head) else None

    @property
    def pull_host(self) -> str:
        if self.is_bundled:
            return settings.PROMOTER_REGISTRY_HOST
        return self.endpoint.split("://", 1)[-1].rstrip("/")

    def clean(self) -> None:
        if self.name == RESERVED_REGISTRY_NAME:
            # The bundled registry keeps its identity marker under this name.
            raise ValidationError({"name": f"{self.name!r} is reserved; choose another name."})
        if self.promote_to_id and self.promote_to_id == self.pk:
            raise ValidationError({"promote_to": "A registry cannot promote to itself."})


class Repository(models.Model):
    """An image name inside a registry, e.g. team/api."""

    registry = models.ForeignKey(Registry, on_delete=models.CASCADE, related_name="repositories")
    name = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    # Counters kept by registries.records (and recounted by sync), so the registry pages
    # never aggregate every tag on a request.
    tag_count = models.IntegerField(default=0)
    total_size = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["registry", "name"], name="unique_repository")
        ]
        verbose_name_plural = "repositories"

    def __str__(self) -> str:
        return f"{self.registry.name}/{self.name}"


class TagQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        """As save() does: each tag carries its repository's registry."""
        objs = list(objs)
        for tag in objs:
            if tag.registry_id is None and tag.repository_id is not None:
                tag.registry_id = tag.repository.registry_id
        return super().bulk_create(objs, *args, **kwargs)


class Tag(models.Model):
    """A name pointing at a digest inside a repository."""

    objects = TagQuerySet.as_manager()

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="tags")
    # The repository's registry, kept on the tag (a repository never moves) so a registry's
    # tags are read newest first off one index (the board) instead of through every
    # repository. save() and bulk_create() fill it; raw inserts must pass it.
    registry = models.ForeignKey(
        Registry, on_delete=models.CASCADE, related_name="+", editable=False, db_index=False
    )
    name = models.CharField(max_length=128)
    digest = models.CharField(max_length=140, db_index=True)
    media_type = models.CharField(max_length=128, blank=True)
    size = models.BigIntegerField(default=0)
    platforms = models.JSONField(default=list, blank=True)
    pushed_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)
    # The digest the tag pointed at before the last promotion, for Roll back.
    previous_digest = models.CharField(max_length=140, blank=True)

    class Meta:
        ordering = ["-pushed_at", "name"]
        constraints = [models.UniqueConstraint(fields=["repository", "name"], name="unique_tag")]
        # The repository page's order, so a page of 50 is read off the index, not sorted.
        indexes = [
            models.Index(fields=["repository", "-pushed_at", "name"], name="tag_repo_pushed_idx"),
            # The board's newest images of a registry (and what waits for the next stage):
            # read newest first in that registry and stop at a few, not sort them all.
            models.Index(fields=["registry", "-pushed_at", "name"], name="tag_registry_pushed_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.repository}:{self.name}"

    def save(self, *args, **kwargs) -> None:
        if self.registry_id is None and self.repository_id is not None:
            self.registry_id = self.repository.registry_id
        super().save(*args, **kwargs)

    @property
    def short_digest(self) -> str:
        return self.digest.split(":", 1)[-1][:12]

    @property
    def accessory_info(self):
        """What this tag is when it is an accessory of an image (cosign, referrers), else None."""
        return accessory_of(self.name)


class Image(models.Model):
    """An image a repository holds by digest: pushed or promoted without a tag.

    Distribution cannot list untagged manifests, so the index remembers them from push
    notifications and promotions; the repository page lists those no tag points at.
    """

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="images")
    digest = models.CharField(max_length=140)
    media_type = models.CharField(max_length=128, blank=True)
    size = models.BigIntegerField(default=0)
    platforms = models.JSONField(default=list, blank=True)
    pushed_at = models.DateTimeField()
    pushed_by = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-pushed_at", "digest"]
        constraints = [
            models.UniqueConstraint(fields=["repository", "digest"], name="unique_image")
        ]

    def __str__(self) -> str:
        return f"{self.repository}@{self.digest}"

    @property
    def short_digest(self) -> str:
        return self.digest.split(":", 1)[-1][:12]


class HistoryEventQuerySet(models.QuerySet):
    def update(self, **kwargs):  # noqa: ARG002
        raise TypeError("History is append-only.")

    def delete(self):
        raise TypeError("History is append-only.")


class HistoryEvent(models.Model):
    """Append-only record on an image: who did what, when, from where to where, and why."""

    class Action(models.TextChoices):
        PUSHED = "pushed", "Pushed"
        PROMOTED = "promoted", "Promoted"
        DELETED = "deleted", "Deleted"
        ROLLED_BACK = "rolled_back", "Rolled back"
        # Approval requests (registries.services.approvals).
        REQUESTED = "requested", "Requested"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"
        # A promotion that failed: recorded on the target, with the error, nothing changed.
        FAILED = "failed", "Promotion failed"

    action = models.CharField(max_length=16, choices=Action.choices)
    registry = models.CharField(max_length=64, db_index=True)
    repository = models.CharField(max_length=255)
    tag = models.CharField(max_length=128, blank=True)
    digest = models.CharField(max_length=140, db_index=True)
    actor = models.CharField(max_length=255)
    # No database constraint: deleting a user must not rewrite History (the actor name stays).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
    )
    from_registry = models.CharField(max_length=64, blank=True)
    to_registry = models.CharField(max_length=64, blank=True)
    comment = models.TextField(blank=True, max_length=4000)
    # Why a promotion failed (action "failed"), as the person who asked for it was told.
    error = models.TextField(blank=True)
    # For an accessory (a signature, attestation, SBOM or other referrer, by its tag): the
    # digest of the image it belongs to. Accessories travel with their image's promotion.
    subject = models.CharField(max_length=140, blank=True, db_index=True)
    promotion = models.ForeignKey(
        "Promotion", null=True, blank=True, on_delete=models.PROTECT, related_name="events"
    )
    # Identifies one registry notification, so a redelivered event is recorded once.
    source_event_id = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(db_index=True)

    objects = HistoryEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        # The tag page's History is two ordered, limited reads: this tag in this registry,
        # and this image (digest) in every registry; each walks one of these in order.
        indexes = [
            models.Index(
                fields=["repository", "registry", "tag", "-created_at", "-id"],
                name="history_tag_idx",
            ),
            models.Index(
                fields=["repository", "digest", "-created_at", "-id"], name="history_image_idx"
            ),
            # The whole trail (registries.selectors_pipeline.tag_trail) adds two: this tag
            # name in every registry, and the accessories (signatures, …) of the images it
            # has held.
            models.Index(
                fields=["repository", "tag", "-created_at", "-id"], name="history_trail_idx"
            ),
            models.Index(
                fields=["repository", "subject", "-created_at", "-id"],
                name="history_subject_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["source_event_id"],
                condition=~Q(source_event_id=""),
                name="unique_history_source_event",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.registry}/{self.repository}:{self.tag}"

    @property
    def accessory(self):
        """The signature, attestation, SBOM or referrers tag this event is about, if any."""
        return accessory_of(self.tag)

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError("History is append-only: events cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("History is append-only: events cannot be deleted.")


class Promotion(models.Model):
    """One image copied by digest from (registry, repository, tag) to a target registry."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    source = models.ForeignKey(Registry, on_delete=models.PROTECT, related_name="promotions_out")
    target = models.ForeignKey(Registry, on_delete=models.PROTECT, related_name="promotions_in")
    repository = models.CharField(max_length=255)
    # The repository split ProGet's way (group/package), stored so the API's filters are
    # index lookups; set from `repository` on save.
    group_name = models.CharField(max_length=255, blank=True, db_index=True)
    package_name = models.CharField(max_length=255, blank=True, db_index=True)
    # The tag promoted; for a promotion by digest the newest tag pointing at it, "" if none.
    tag = models.CharField(max_length=128, blank=True)
    digest = models.CharField(max_length=140)
    media_type = models.CharField(max_length=128, blank=True)
    # Asked for by digest: every source tag pointing at the digest (before and after the
    # copy) moves at the target; with none, the image is copied by digest only.
    by_digest = models.BooleanField(default=False)
    # The tags this promotion set at the target, once it succeeded.
    moved_tags = models.JSONField(default=list, blank=True)
    comment = models.TextField(blank=True, max_length=4000)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    actor = models.CharField(max_length=255)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    blobs_total = models.IntegerField(default=0)
    blobs_copied = models.IntegerField(default=0)
    blobs_mounted = models.IntegerField(default=0)
    blobs_skipped = models.IntegerField(default=0)
    bytes_total = models.BigIntegerField(default=0)
    bytes_done = models.BigIntegerField(default=0)
    bytes_copied = models.BigIntegerField(default=0)
    bytes_mounted = models.BigIntegerField(default=0)
    bytes_skipped = models.BigIntegerField(default=0)
    manifests_total = models.IntegerField(default=0)
    manifests_copied = models.IntegerField(default=0)
    signatures_copied = models.IntegerField(default=0)
    error = models.TextField(blank=True)
    # The digest the target tag pointed at before this promotion ("" when new).
    previous_digest = models.CharField(max_length=140, blank=True)
    attempts = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # Keyset pages of the promotions list, the API list (succeeded, newest first) and
        # the recent promotions of one registry read these in order.
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="promotion_newest_idx"),
            models.Index(fields=["status", "-created_at", "-id"], name="promotion_status_idx"),
            models.Index(fields=["source", "-created_at", "-id"], name="promotion_source_idx"),
            models.Index(fields=["target", "-created_at", "-id"], name="promotion_target_idx"),
        ]
        constraints = [
            # One running promotion per target tag: the lock that serializes them.
            models.UniqueConstraint(
                fields=["target", "repository", "tag"],
                condition=Q(status="running"),
                name="one_running_promotion_per_target_tag",
            )
        ]

    def __str__(self) -> str:
        return f"{self.source.name}/{self.repository}:{self.tag} -> {self.target.name}"

    def save(self, *args, **kwargs):
        self.group_name, self.package_name = split_repository(self.repository)
        super().save(*args, **kwargs)

    @property
    def image_label(self) -> str:
        """`team/api:1.0`, or `team/api@sha256:…` for an image promoted without a tag."""
        if self.tag:
            return f"{self.repository}:{self.tag}"
        return f"{self.repository}@{self.digest}"

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED}

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    @property
    def progress_label(self) -> str:
        from django.template.defaultfilters import filesizeformat

        done = self.blobs_copied + self.blobs_mounted + self.blobs_skipped
        return (
            f"{done} of {self.blobs_total} blobs · {filesizeformat(self.bytes_done)} of "
            f"{filesizeformat(self.bytes_total)}"
        )

    @property
    def percent(self) -> int:
        total = self.bytes_total or 0
        if self.status == self.Status.SUCCEEDED:
            return 100
        if not total:
            return 0
        done = min(self.bytes_done, total)
        return int(done * 100 / total)


BATCH_MAX_IMAGES = 200  # images one batch promotes (each is requested in the web request)


class Batch(models.Model):
    """Many images promoted at once from one registry to its target: each is its own
    Promotion (own policy check, own History event); a failure of one undoes no other."""

    source = models.ForeignKey(Registry, on_delete=models.PROTECT, related_name="+")
    target = models.ForeignKey(Registry, on_delete=models.PROTECT, related_name="+")
    # What was asked for: {"repositories": [...], "tags": [...], "images": ["repo:tag", ...]}
    selection = models.JSONField(default=dict)
    comment = models.TextField(blank=True, max_length=4000)
    actor = models.CharField(max_length=255)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        return f"Batch {self.pk}: {self.source.name} -> {self.target.name}"


class BatchItem(models.Model):
    """One image of a batch: its promotion, or why none was started (refused)."""

    class Refusal(models.TextChoices):
        POLICY = "policy", "Policy not met"
        NOT_FOUND = "not_found", "Not found"
        FORBIDDEN = "forbidden", "Not allowed"
        RATE_LIMITED = "rate_limited", "Too many promotions"
        INVALID = "invalid", "Invalid"

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    repository = models.CharField(max_length=255)
    tag = models.CharField(max_length=128)
    # The promotion doing this image: a new one, or the one already doing or done it.
    promotion = models.ForeignKey(
        Promotion, null=True, blank=True, on_delete=models.PROTECT, related_name="batch_items"
    )
    already = models.BooleanField(default=False)  # an earlier promotion already did it
    refusal = models.CharField(max_length=16, choices=Refusal.choices, blank=True)
    error = models.TextField(blank=True)  # why no promotion was started
    checklist = models.JSONField(null=True, blank=True)  # the policy's, when it refused
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["batch", "position"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "position"], name="unique_batch_position")
        ]

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag}"

    @property
    def image_label(self) -> str:
        return f"{self.repository}:{self.tag}"

    @property
    def status(self) -> str:
        """queued, running, succeeded, failed (the promotion's), or refused (none started:
        refused, or never asked for because the request that made the batch was cut short)."""
        if self.promotion_id is not None:
            return self.promotion.status
        return "refused"


class Coordination(models.Model):
    """A small fact the nodes of one deployment agree on, in the database they share.

    The backing registry's identity (`registry-identity`), when the periodic resync last
    ran (`resync-at`), and lock rows (`lock:<name>`) where the database has no advisory
    locks (SQLite).
    """

    name = models.CharField(max_length=64, primary_key=True)
    value = models.CharField(max_length=255, blank=True)
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


# --- policies before production (registries.services.policies, approvals, webhooks) --------

LABEL_RULES_MAX = 20  # required labels/annotations per policy
LABEL_PATTERN_MAX = 200  # characters of one label pattern


class PromotionPolicy(models.Model):
    """What an image must satisfy before it is promoted into `registry`; every rule optional."""

    registry = models.OneToOneField(Registry, on_delete=models.CASCADE, related_name="policy")
    # Approvals from distinct people holding Approve Promotions on the registry (0: none).
    approvals_required = models.PositiveSmallIntegerField(default=0)
    # How long the digest must have been in the source (pushed or promoted there) first.
    soak_seconds = models.PositiveIntegerField(default=0)
    require_signature = models.BooleanField(default=False)
    # When set, a signature must name this key identity (an annotation value, a cosign
    # certificate's subject, or a notation certificate thumbprint).
    signature_identity = models.CharField(max_length=255, blank=True)
    # [{"key": "org.opencontainers.image.revision", "pattern": ""}]: a label of every image
    # (or an annotation of the manifest) present, and matching `pattern` when one is given.
    required_labels = models.JSONField(default=list, blank=True)
    # A tag that exists here may be moved to another digest only with Overwrite Tags.
    immutable_tags = models.BooleanField(default=False)
    # Pending approval requests expire after this long.
    approval_ttl_seconds = models.PositiveIntegerField(default=7 * 24 * 3600)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "promotion policy"
        verbose_name_plural = "promotion policies"

    def __str__(self) -> str:
        return f"Policy of {self.registry.name}"

    @property
    def is_empty(self) -> bool:
        return not (
            self.approvals_required
            or self.soak_seconds
            or self.require_signature
            or self.required_labels
            or self.immutable_tags
        )


class ApprovalRequest(models.Model):
    """A promotion asked for where the target's policy needs approvals; it runs once approved."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"  # the promotion was started
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"
        BLOCKED = "blocked", "Blocked"  # approved, but another rule failed by then

    source = models.ForeignKey(Registry, on_delete=models.CASCADE, related_name="+")
    target = models.ForeignKey(Registry, on_delete=models.CASCADE, related_name="approval_requests")
    repository = models.CharField(max_length=255)
    tag = models.CharField(max_length=128)
    digest = models.CharField(max_length=140, db_index=True)
    comment = models.TextField(blank=True, max_length=4000)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    actor = models.CharField(max_length=255)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    promotion = models.ForeignKey(
        Promotion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.source.name}/{self.repository}:{self.tag} -> {self.target.name}"

    @property
    def image_label(self) -> str:
        return f"{self.repository}:{self.tag}"


class Approval(models.Model):
    """One person's decision on an approval request: approve or reject, with a comment."""

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="approvals")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    approver = models.CharField(max_length=255)
    approved = models.BooleanField()
    comment = models.TextField(blank=True, max_length=4000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["request", "user"], name="one_decision_per_person")
        ]

    def __str__(self) -> str:
        return f"{'Approved' if self.approved else 'Rejected'} by {self.approver}"


class WebhookEvent(models.TextChoices):
    PROMOTION_SUCCEEDED = "promotion.succeeded", "promotion.succeeded"
    PROMOTION_FAILED = "promotion.failed", "promotion.failed"
    PROMOTION_ROLLED_BACK = "promotion.rolled_back", "promotion.rolled_back"
    APPROVAL_REQUESTED = "approval.requested", "approval.requested"
    APPROVAL_DECIDED = "approval.decided", "approval.decided"
    PUSH = "push", "push"


WEBHOOK_TEST_EVENT = "test"  # what Send test delivers; not subscribable


class Webhook(models.Model):
    """An HTTP receiver told about events: of one registry, or of all (no registry)."""

    name = models.CharField(max_length=100)
    url = models.URLField(max_length=2000)
    registry = models.ForeignKey(
        Registry, null=True, blank=True, on_delete=models.CASCADE, related_name="webhooks"
    )
    events = models.JSONField(default=list)
    # The signing secret, encrypted (registries.secretbox); shown once, when set.
    secret_encrypted = models.TextField(blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def scope_name(self) -> str:
        return self.registry.name if self.registry_id else "all registries"


class WebhookDelivery(models.Model):
    """One event sent (or to be sent) to one webhook: the exact body, and how it went."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=40)
    event_id = models.CharField(max_length=64)
    # The exact bytes signed and sent (a redelivery sends the same).
    body = models.TextField()
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    redelivery_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Set when handed to the task queue, so a delivery is enqueued once.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["enqueued_at"], name="webhook_delivery_unqueued"),
        ]

    def __str__(self) -> str:
        return f"{self.event} to {self.webhook}"


class ImageFacts(models.Model):
    """What the tag page shows of one manifest, read once from the registry.

    Manifests and configs are immutable by digest, so a row never goes stale: the tag page
    reads the registry only for digests it has not seen.
    """

    digest = models.CharField(max_length=140, unique=True)
    media_type = models.CharField(max_length=128)
    # An image (or a nested index): {"images": [{"platform", "digest", "size", "layers",
    # "labels", "created"}]}; a top index: {"children": [{"digest", "platform", "index",
    # "attestation"}]}, each child's images in its own row.
    facts = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "image facts"

    def __str__(self) -> str:
        return self.digest
