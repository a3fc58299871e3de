"""Django admin for tasks, privileges and API keys (users and groups keep Django's defaults).

API keys: the raw key is never stored, and the hash and prefix cannot be edited here;
create keys on Administration > API Keys, where the key is shown once.
"""

from django.contrib import admin

from accounts.models import ApiKey, LoginFailure, Privilege, Task


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["name", "permissions", "built_in"]
    list_filter = ["built_in"]
    search_fields = ["name"]

    def get_readonly_fields(self, request, obj=None):
        # Built-in tasks never change.
        if obj is not None and obj.built_in:
            return ["name", "description", "permissions", "built_in"]
        return ["built_in"]

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.built_in:
            return False
        return super().has_delete_permission(request, obj)


@admin.register(Privilege)
class PrivilegeAdmin(admin.ModelAdmin):
    list_display = ["task", "user", "group", "anonymous", "registry", "effect", "created_at"]
    list_filter = ["effect", "anonymous", "task", "registry"]
    search_fields = ["user__username", "group__name", "task__name"]
    autocomplete_fields = ["user", "group"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "kind",
        "user",
        "permissions",
        "key_prefix",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    ]
    list_filter = ["kind"]
    search_fields = ["name", "description", "key_prefix", "user__username"]
    exclude = ["key_hash"]
    readonly_fields = ["key_prefix", "kind", "created_at", "last_used_at"]
    filter_horizontal = ["registries"]

    def has_add_permission(self, request):
        return False  # keys are created on Administration > API Keys (shown once there)


@admin.register(LoginFailure)
class LoginFailureAdmin(admin.ModelAdmin):
    list_display = ["username", "address", "created_at"]
    search_fields = ["username", "address"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
