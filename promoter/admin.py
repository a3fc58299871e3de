"""The Django admin as an adapter over the services (accounts.admin, registries.admin use it).

A ServiceAdmin's add, change and delete, the bulk "Delete selected" action included, call
the model's service, so its permission checks, validation and audit event hold in the admin
too. A refusal (DomainError) shows as a form error or an error message and leaves nothing
written: the admin's transaction around the request is rolled back.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpResponseRedirect
from django.urls import reverse

from accounts.permissions import Principal
from promoter.errors import DomainError


class ServiceForm(forms.ModelForm):
    """A ModelForm that leaves uniqueness and constraints to the service (one message)."""

    def validate_unique(self) -> None:
        """The service checks names and constraints, with the same message as elsewhere."""


class _DryRun(Exception):
    """Rolls a trial deletion back."""


@admin.action(permissions=["delete"], description="Delete selected %(verbose_name_plural)s")
def delete_selected(modeladmin, request, queryset):
    """Django's confirm-then-delete action, all or nothing, refusals shown as a message.

    The services are asked first (a trial run, rolled back), so a refusal shows with the
    service's message before Django's own confirmation or "cannot delete" page.
    """
    refusal = modeladmin.deletion_refusal(request, queryset)
    if refusal is None:
        try:
            with transaction.atomic():
                return django_delete_selected(modeladmin, request, queryset)
        except DomainError as exc:  # changed meanwhile
            refusal = exc
    modeladmin.message_user(request, refusal.message, messages.ERROR)
    return None


class ServiceAdmin(admin.ModelAdmin):
    """A ModelAdmin whose writes are service calls (subclasses say which).

    A DomainError from `service_save` rolls the admin's transaction back; the form is then
    shown again with the refusal as its error (a second pass that writes nothing).
    """

    form = ServiceForm
    actions = [delete_selected]  # named as Django's, so it replaces it

    # --- what subclasses provide ---------------------------------------------------
    def service_save(self, request, obj, form, change: bool, actor: Principal) -> Any:
        raise NotImplementedError

    def service_delete(self, request, obj, actor: Principal) -> None:
        raise NotImplementedError

    # --- Django admin hooks --------------------------------------------------------
    def save_model(self, request, obj, form, change):
        saved = self.service_save(request, obj, form, change, Principal.from_request(request))
        if saved is not None and saved is not obj:
            # The admin goes on with `obj` (its log entry, message and redirect).
            obj.pk = saved.pk
            obj._state.adding = False
            obj._state.db = saved._state.db
            obj.refresh_from_db()

    def save_related(self, request, form, formsets, change):
        """The service wrote the relations (groups, members, registries) already."""

    def delete_model(self, request, obj):
        self.service_delete(request, obj, Principal.from_request(request))

    def delete_queryset(self, request, queryset):
        actor = Principal.from_request(request)
        with transaction.atomic():
            for obj in queryset:
                self.service_delete(request, obj, actor)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        refusal = getattr(request, "_service_refusal", None)
        if refusal is None:
            return form

        class Refused(form):
            def clean(self):
                super().clean()
                raise ValidationError(refusal.message)

        Refused.__name__ = form.__name__
        return Refused

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as exc:
            if request.method != "POST" or getattr(request, "_service_refusal", None):
                raise
            request._service_refusal = exc
            return super().changeform_view(request, object_id, form_url, extra_context)

    def deletion_refusal(self, request, objs) -> DomainError | None:
        """What the services would answer to deleting `objs` (tried, then rolled back)."""
        actor = Principal.from_request(request)
        # Fresh copies: deleting clears the primary key of the instance it is given.
        trial = self.model._default_manager.filter(pk__in=[obj.pk for obj in objs])
        try:
            with transaction.atomic():
                for obj in trial:
                    self.service_delete(request, obj, actor)
                raise _DryRun
        except _DryRun:
            return None
        except DomainError as exc:
            return exc

    def delete_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        refusal = None
        if obj is not None and self.has_delete_permission(request):
            # Before Django's confirmation (or its "cannot delete" page): the service's word.
            refusal = self.deletion_refusal(request, [obj])
        if refusal is None:
            try:
                return super().delete_view(request, object_id, extra_context)
            except DomainError as exc:  # changed between the trial and the deletion
                refusal = exc
        self.message_user(request, refusal.message, messages.ERROR)
        info = (self.opts.app_label, self.opts.model_name)
        return HttpResponseRedirect(reverse("admin:{}_{}_changelist".format(*info)))
