"""Django admin for registries and their index. History and promotions are read-only.

Registries are written through registries.services.registries (permissions, validation,
audit event), as on Manage Feed and in the API.
"""

from django import forms
from django.contrib import admin

from promoter.admin import ServiceAdmin, ServiceForm
from registries.models import (
    Approval,
    ApprovalRequest,
    HistoryEvent,
    Image,
    Promotion,
    PromotionPolicy,
    Registry,
    Repository,
    Tag,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
)
from registries.services.policies import FIELDS as POLICY_FIELDS
from registries.services.policies import policy_update
from registries.services.registries import (
    WRITABLE,
    registry_create,
    registry_delete,
    registry_update,
)
from registries.services.webhooks import webhook_create, webhook_delete, webhook_update


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class RegistryAdminForm(ServiceForm):
    class Meta:
        model = Registry
        fields = "__all__"
        widgets = {
            # Never echo a stored registry password back into the page.
            "password": forms.PasswordInput(render_value=False),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "password" in self.fields:
            self.fields["password"].required = False
            if self.instance.pk:
                self.fields["password"].help_text = "Leave empty to keep the stored password."
        if "promote_to" in self.fields and self.instance.pk:
            self.fields["promote_to"].queryset = Registry.objects.exclude(pk=self.instance.pk)


@admin.register(Registry)
class RegistryAdmin(ServiceAdmin):
    """Registries through registries.services.registries, as Manage Feed and the API."""

    form = RegistryAdminForm
    list_display = ["name", "usage_type", "promote_to", "endpoint", "active", "last_synced_at"]
    list_filter = ["usage_type", "active"]
    search_fields = ["name", "description", "endpoint"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "name",
                    "description",
                    "usage_type",
                    "promote_to",
                    "require_comment",
                    "active",
                ]
            },
        ),
        ("Backing registry", {"fields": ["endpoint", "namespace", "username", "password"]}),
        ("Sync", {"fields": ["created_at", "last_synced_at", "last_sync_error"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        sync = ["created_at", "last_synced_at", "last_sync_error"]
        # The name and the usage type are chosen when a registry is created.
        return sync if obj is None else ["name", "usage_type", *sync]

    def service_save(self, request, obj, form, change, actor):
        data = form.cleaned_data
        values = {field: data[field] for field in WRITABLE if field in data}
        # No Promote To chosen means none ("" clears it; None would leave it as it was).
        values["promote_to"] = data["promote_to"].name if data.get("promote_to") else ""
        if change:
            return registry_update(registry=obj, actor=actor, values=values)
        return registry_create(name=data["name"], actor=actor, values=values)

    def service_delete(self, request, obj, actor):
        registry_delete(registry=obj, actor=actor)


@admin.register(Repository)
class RepositoryAdmin(admin.ModelAdmin):
    list_display = ["name", "registry", "created_at"]
    list_filter = ["registry"]
    search_fields = ["name"]
    readonly_fields = ["registry", "name", "created_at"]

    def has_add_permission(self, request):
        return False  # the index follows the registry (pushes, promotions, sync)


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "repository", "digest", "size", "pushed_at"]
    list_filter = ["repository__registry"]
    search_fields = ["name", "repository__name", "digest"]
    readonly_fields = [
        "repository",
        "name",
        "digest",
        "media_type",
        "size",
        "platforms",
        "pushed_at",
        "updated_at",
        "previous_digest",
    ]

    def has_add_permission(self, request):
        return False


@admin.register(Image)
class ImageAdmin(ReadOnlyAdmin):
    """Images held by digest (pushed or promoted without a tag); the index follows them."""

    list_display = ["digest", "repository", "media_type", "size", "pushed_at", "pushed_by"]
    list_filter = ["repository__registry"]
    search_fields = ["digest", "repository__name"]


@admin.register(Promotion)
class PromotionAdmin(ReadOnlyAdmin):
    list_display = ["pk", "repository", "tag", "source", "target", "status", "actor", "created_at"]
    list_filter = ["status", "source", "target"]
    search_fields = ["repository", "tag", "digest", "actor"]


@admin.register(HistoryEvent)
class HistoryEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "action", "registry", "repository", "tag", "actor"]
    list_filter = ["action", "registry"]
    search_fields = ["repository", "tag", "digest", "actor", "comment"]


# --- policies before production -----------------------------------------------------------------
class PolicyAdminForm(ServiceForm):
    class Meta:
        model = PromotionPolicy
        fields = [
            "registry",
            "approvals_required",
            "soak_seconds",
            "require_signature",
            "signature_identity",
            "required_labels",
            "immutable_tags",
            "approval_ttl_seconds",
        ]


@admin.register(PromotionPolicy)
class PromotionPolicyAdmin(ServiceAdmin):
    """Policies through registries.services.policies.policy_update, as on Manage Feed."""

    form = PolicyAdminForm
    list_display = [
        "registry",
        "approvals_required",
        "soak_seconds",
        "require_signature",
        "immutable_tags",
        "updated_at",
    ]

    def get_readonly_fields(self, request, obj=None):
        return ["registry"] if obj is not None else []

    def has_delete_permission(self, request, obj=None):
        return False  # an empty policy is no policy: clear its rules instead

    def service_save(self, request, obj, form, change, actor):
        data = form.cleaned_data
        registry = obj.registry if change else data["registry"]
        values = {f: data[f] for f in POLICY_FIELDS if f in data}
        return policy_update(registry=registry, actor=actor, values=values)


class WebhookAdminForm(ServiceForm):
    events = forms.MultipleChoiceField(
        choices=WebhookEvent.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Webhook
        fields = ["name", "url", "registry", "events", "active"]


@admin.register(Webhook)
class WebhookAdmin(ServiceAdmin):
    """Webhooks through registries.services.webhooks; a new secret is shown once, as a message."""

    form = WebhookAdminForm
    list_display = ["name", "url", "registry", "active", "created_at"]
    list_filter = ["active", "registry"]

    def get_readonly_fields(self, request, obj=None):
        return ["registry"] if obj is not None else []

    def service_save(self, request, obj, form, change, actor):
        data = form.cleaned_data
        values = {k: data[k] for k in ("name", "url", "events", "active") if k in data}
        if change:
            hook, _ = webhook_update(webhook=obj, actor=actor, values=values)
            return hook
        hook, secret = webhook_create(registry=data.get("registry"), actor=actor, values=values)
        self.message_user(request, f"The signing secret of {hook.name}, shown once: {secret}")
        return hook

    def service_delete(self, request, obj, actor):
        webhook_delete(webhook=obj, actor=actor)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "webhook", "event", "status", "response_code", "attempts"]
    list_filter = ["status", "event"]


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyAdmin):
    list_display = ["pk", "repository", "tag", "source", "target", "status", "actor", "created_at"]
    list_filter = ["status", "target"]
    search_fields = ["repository", "tag", "digest", "actor"]


@admin.register(Approval)
class ApprovalAdmin(ReadOnlyAdmin):
    list_display = ["request", "approver", "approved", "created_at"]
