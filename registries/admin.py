"""Django admin for registries and their index. History and promotions are read-only."""

from django.contrib import admin

from registries.models import HistoryEvent, Image, Promotion, Registry, Repository, Tag


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Registry)
class RegistryAdmin(admin.ModelAdmin):
    list_display = ["name", "usage_type", "promote_to", "endpoint", "active", "last_synced_at"]
    list_filter = ["usage_type", "active"]
    search_fields = ["name", "description", "endpoint"]
    readonly_fields = ["created_at", "last_synced_at", "last_sync_error"]
    fieldsets = [
        (None, {"fields": ["name", "description", "usage_type", "promote_to", "active"]}),
        ("Backing registry", {"fields": ["endpoint", "namespace", "username", "password"]}),
        ("Sync", {"fields": ["created_at", "last_synced_at", "last_sync_error"]}),
    ]

    def get_form(self, request, obj=None, **kwargs):
        from django import forms

        form = super().get_form(request, obj, **kwargs)
        # Never echo a stored registry password back into the page.
        form.base_fields["password"].widget = forms.PasswordInput(render_value=False)
        form.base_fields["password"].required = False
        return form

    def save_model(self, request, obj, form, change):
        if change and not form.cleaned_data.get("password"):
            obj.password = Registry.objects.get(pk=obj.pk).password  # empty: keep the old one
        super().save_model(request, obj, form, change)


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
