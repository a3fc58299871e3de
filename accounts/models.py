"""Tasks (bundles of permissions), privileges and API keys."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class Permission(models.TextChoices):
    """The atomic permissions a Task bundles."""

    VIEW = "view", "View & Download"
    PUBLISH = "publish", "Publish (push)"
    PROMOTE = "promote", "Promote (accept promotions)"
    DELETE = "delete", "Delete"
    MANAGE_FEED = "manage_feed", "Manage Feed"
    ADMINISTER = "administer", "Administer"
    # Policies before production (registries.services.policies): who may approve a
    # promotion into a registry, and who may move a tag there that already exists.
    APPROVE = "approve", "Approve Promotions"
    OVERWRITE_TAGS = "overwrite_tags", "Overwrite Tags"


class ApiArea(models.TextChoices):
    """The parts of the HTTP API a system key may be limited to (by URL prefix)."""

    PROMOTIONS = "promotions", "Promotions (/api/promotions/…)"
    FEEDS = "feeds", "Feeds (/api/management/feeds/…)"
    API_KEYS = "api-keys", "API keys (/api/api-keys/…)"


class Task(models.Model):
    """ProGet's task: a named bundle of permissions, built-in or custom."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True, max_length=1000)
    permissions = models.JSONField(default=list)
    built_in = models.BooleanField(default=False)

    class Meta:
        ordering = ["-built_in", "name"]

    def __str__(self) -> str:
        return self.name

    def permission_labels(self) -> list[str]:
        labels = dict(Permission.choices)
        return [labels.get(p, p) for p in self.permissions]


class Privilege(models.Model):
    """A task granted to or restricted from a user, a group or Anonymous, on one registry or all."""

    class Effect(models.TextChoices):
        GRANT = "grant", "Grant"
        RESTRICT = "restrict", "Restrict"

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="privileges")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="privileges",
    )
    group = models.ForeignKey(
        "auth.Group", null=True, blank=True, on_delete=models.CASCADE, related_name="privileges"
    )
    anonymous = models.BooleanField(default=False)
    # Null: on all registries.
    registry = models.ForeignKey(
        "registries.Registry",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="privileges",
    )
    effect = models.CharField(max_length=8, choices=Effect.choices, default=Effect.GRANT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task__name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(user__isnull=False, group__isnull=True, anonymous=False)
                    | Q(user__isnull=True, group__isnull=False, anonymous=False)
                    | Q(user__isnull=True, group__isnull=True, anonymous=True)
                ),
                name="privilege_has_one_principal",
            )
        ]

    def __str__(self) -> str:
        return (
            f"{self.get_effect_display()} {self.task} to {self.principal_name} on {self.scope_name}"
        )

    @property
    def principal_name(self) -> str:
        if self.user_id:
            return self.user.username
        if self.group_id:
            return f"group {self.group.name}"
        return "Anonymous"

    @property
    def scope_name(self) -> str:
        return self.registry.name if self.registry_id else "all registries"


class ApiKey(models.Model):
    """A secret for scripts; stored hashed, shown once."""

    class Kind(models.TextChoices):
        PERSONAL = "personal", "Personal"
        FEED = "feed", "Feed"
        SYSTEM = "system", "System"

    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, max_length=1000)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # Personal keys act as this user; for other kinds it is who created the key.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="api_keys",
    )
    registries = models.ManyToManyField("registries.Registry", blank=True, related_name="+")
    # Feed keys: a subset of view/publish/promote/delete. System keys: API areas, empty = all.
    permissions = models.JSONField(default=list, blank=True)
    key_prefix = models.CharField(max_length=12, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def areas(self) -> list[str]:
        """A system key's API areas; empty for full control (and for other kinds)."""
        return list(self.permissions or []) if self.kind == self.Kind.SYSTEM else []

    @property
    def feed_permissions(self) -> list[str]:
        """A feed key's permissions (view/publish/promote/delete); empty for other kinds."""
        return list(self.permissions or []) if self.kind == self.Kind.FEED else []

    @property
    def status(self) -> str:
        """ "revoked", "expired" or "active"."""
        from django.utils import timezone

        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"


class LoginFailure(models.Model):
    """One failed sign-in (page or token service), counted per user name and client address."""

    username = models.CharField(max_length=150)
    address = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["username", "address", "created_at"], name="login_failure_lookup")
        ]

    def __str__(self) -> str:
        return f"{self.username} from {self.address} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):  # noqa: ARG002
        raise TypeError("The audit log is append-only.")

    def delete(self):
        raise TypeError("The audit log is append-only.")


class AuditEvent(models.Model):
    """Append-only record of a configuration change: registries, privileges, keys, users.

    Written by the service that makes the change, in the same transaction (as History is
    for images), whichever adapter called it: a page, the API or the Django admin.
    """

    action = models.CharField(max_length=40, db_index=True)  # e.g. "registry.updated"
    object_type = models.CharField(max_length=40)  # "registry", "privilege", "api_key", …
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=255)
    changes = models.JSONField(default=dict, blank=True)  # {field: [old, new]}; never secrets
    actor = models.CharField(max_length=255)
    # No database constraint: deleting a user must not rewrite the log.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.object_repr} by {self.actor}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError("The audit log is append-only: events cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("The audit log is append-only: events cannot be deleted.")
