"""Django admin for tasks, privileges, API keys, users, groups and the audit log.

The admin is one more adapter over the services (DESIGN: pages, the API and the admin make
the same decisions): every add, change and delete, the bulk "Delete selected" action
included, calls the service of `accounts.services` or `registries.services.registries`, so
its permission checks, validation, staff sync, last-administrator guard and audit event hold
here too. A refusal (DomainError) shows as a form error or an error message and leaves
nothing written: the admin's transaction around the request is rolled back.

API keys: the raw key is never stored, and the hash and prefix cannot be edited here;
create keys on Administration > API Keys, where the key is shown once; revoke them here.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.auth import get_user_model, update_session_auth_hash
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import Group
from django.db import transaction
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from accounts import services
from accounts.models import ApiKey, AuditEvent, LoginFailure, Permission, Privilege, Task
from accounts.permissions import Principal
from promoter.admin import ServiceAdmin, ServiceForm
from promoter.errors import DomainError

User = get_user_model()


# --- tasks ---------------------------------------------------------------------------------
class TaskForm(ServiceForm):
    permissions = forms.MultipleChoiceField(
        choices=Permission.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="The task allows exactly these. Administer allows everything.",
    )

    class Meta:
        model = Task
        fields = ["name", "description", "permissions"]


@admin.register(Task)
class TaskAdmin(ServiceAdmin):
    form = TaskForm
    list_display = ["name", "permissions", "built_in"]
    list_filter = ["built_in"]
    search_fields = ["name"]

    def get_readonly_fields(self, request, obj=None):
        # Built-in tasks never change.
        if obj is not None and obj.built_in:
            return ["name", "description", "permissions", "built_in"]
        return ["built_in"]

    def has_delete_permission(self, request, obj=None):
        # No Delete button on a built-in task (the service refuses it, bulk delete included).
        if obj is not None and obj.built_in:
            return False
        return super().has_delete_permission(request, obj)

    def service_save(self, request, obj, form, change, actor):
        data = form.cleaned_data
        values = {
            "name": data.get("name", obj.name),
            "description": data.get("description", obj.description),
            "permissions": data.get("permissions", obj.permissions),
        }
        if change:
            return services.task_update(task=obj, actor=actor, **values)
        return services.task_create(actor=actor, **values)

    def service_delete(self, request, obj, actor):
        services.task_delete(task=obj, actor=actor)


# --- privileges ----------------------------------------------------------------------------
class PrivilegeForm(ServiceForm):
    class Meta:
        model = Privilege
        fields = ["task", "user", "group", "anonymous", "registry", "effect"]

    def validate_constraints(self) -> None:
        """privilege_add checks "exactly one principal", with its own message."""


@admin.register(Privilege)
class PrivilegeAdmin(ServiceAdmin):
    """Privileges are added and removed (as on Users & Tasks), never changed in place."""

    form = PrivilegeForm
    list_display = ["task", "user", "group", "anonymous", "registry", "effect", "created_at"]
    list_filter = ["effect", "anonymous", "task", "registry"]
    search_fields = ["user__username", "group__name", "task__name"]
    autocomplete_fields = ["user", "group"]

    def has_change_permission(self, request, obj=None):
        return False

    def service_save(self, request, obj, form, change, actor):
        data = form.cleaned_data
        return services.privilege_add(
            task=data["task"],
            user=data.get("user"),
            group=data.get("group"),
            anonymous=bool(data.get("anonymous")),
            registry=data.get("registry"),
            effect=data.get("effect") or Privilege.Effect.GRANT,
            actor=actor,
        )

    def service_delete(self, request, obj, actor):
        services.privilege_remove(privilege=obj, actor=actor)


# --- API keys ------------------------------------------------------------------------------
@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Read-only; revoke with the action (a revoked key stays listed, as on API Keys)."""

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
    actions = ["revoke_selected"]

    def has_add_permission(self, request):
        return False  # keys are created on Administration > API Keys (shown once there)

    def has_change_permission(self, request, obj=None):
        return False  # what a key may do is fixed when it is made

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the key stays listed with its revocation date

    def has_revoke_permission(self, request):
        return self.has_view_permission(request)

    @admin.action(permissions=["revoke"], description="Revoke selected API keys")
    def revoke_selected(self, request, queryset):
        actor = Principal.from_request(request)
        try:
            with transaction.atomic():
                revoked = [services.api_key_revoke(api_key=k, actor=actor) for k in queryset]
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        names = ", ".join(k.name for k in revoked)
        self.message_user(request, f"Revoked: {names}. They no longer work.", messages.SUCCESS)


# --- users and groups ----------------------------------------------------------------------
class UserCreateForm(ServiceForm, AdminUserCreationForm):
    def clean_username(self):
        """user_create checks that the name is free (one message everywhere)."""
        return self.cleaned_data.get("username")


class UserEditForm(ServiceForm, UserChangeForm):
    pass


try:
    admin.site.unregister(User)
    admin.site.unregister(Group)
except admin.sites.NotRegistered:  # pragma: no cover - contrib.auth registers both
    pass


@admin.register(User)
class UserAdmin(ServiceAdmin, DjangoUserAdmin):
    """Users through accounts.services: staff follows Administer, so it is not edited here."""

    form = UserEditForm
    add_form = UserCreateForm
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        ("Access", {"fields": ("is_active", "groups", "is_staff", "is_superuser")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    filter_horizontal = ("groups",)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        # Staff means "holds Administer" (grant it on Users & Tasks); superusers are made
        # by `manage.py bootstrap`/`createsuperuser`; user names do not change.
        return ("username", "is_staff", "is_superuser", "last_login", "date_joined")

    def service_save(self, request, obj, form, change, actor):
        data = form.cleaned_data
        if not change:
            usable = data.get("set_usable_password", True)
            return services.user_create(
                username=data["username"],
                password=data.get("password1") if usable else None,
                actor=actor,
            )
        return services.user_update(
            user=obj,
            actor=actor,
            first_name=data.get("first_name"),
            last_name=data.get("last_name"),
            email=data.get("email"),
            is_active=data.get("is_active"),
            groups=data.get("groups"),
        )

    def service_delete(self, request, obj, actor):
        services.user_delete(user=obj, actor=actor)

    @method_decorator(sensitive_post_parameters())
    def user_change_password(self, request, id, form_url=""):
        """Django's password page; the new password is set through user_update."""
        user = self.get_object(request, unquote(id))
        if (
            request.method != "POST"
            or user is None
            or not self.has_change_permission(request, user)
        ):
            return super().user_change_password(request, id, form_url)
        form = self.change_password_form(user, request.POST)
        if not form.is_valid():
            return super().user_change_password(request, id, form_url)  # shows the errors
        usable = form.cleaned_data.get("set_usable_password", True)
        try:
            with transaction.atomic():
                user = services.user_update(
                    user=user,
                    actor=Principal.from_request(request),
                    password=form.cleaned_data.get("password1") if usable else None,
                    password_usable=bool(usable),
                )
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
        if request.user.pk == user.pk:
            update_session_auth_hash(request, user)
        done = "Password changed successfully." if usable else "Password sign-in turned off."
        self.message_user(request, done, messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:auth_user_change", args=(user.pk,)))


class GroupForm(ServiceForm):
    members = forms.ModelMultipleChoiceField(
        queryset=User.objects.order_by("username"),
        required=False,
        widget=FilteredSelectMultiple("members", is_stacked=False),
        help_text="Privileges granted to the group apply to all its members.",
    )

    class Meta:
        model = Group
        fields = ["name"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["members"].initial = list(self.instance.user_set.all())


@admin.register(Group)
class GroupAdmin(ServiceAdmin, DjangoGroupAdmin):
    form = GroupForm
    filter_horizontal = ()
    fields = ["name", "members"]
    list_display = ["name"]

    def service_save(self, request, obj, form, change, actor):
        data = form.cleaned_data
        if change:
            return services.group_update(
                group=obj, name=data.get("name"), members=data.get("members"), actor=actor
            )
        return services.group_create(
            name=data.get("name", ""), members=data.get("members") or [], actor=actor
        )

    def service_delete(self, request, obj, actor):
        services.group_delete(group=obj, actor=actor)


# --- sign-in failures and the audit log ----------------------------------------------------
@admin.register(LoginFailure)
class LoginFailureAdmin(admin.ModelAdmin):
    list_display = ["username", "address", "created_at"]
    search_fields = ["username", "address"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit log: read-only, as it is append-only."""

    list_display = ["created_at", "action", "object_repr", "actor"]
    list_filter = ["action", "object_type"]
    search_fields = ["object_repr", "actor", "object_id"]
    date_hierarchy = "created_at"
    actions = None

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
