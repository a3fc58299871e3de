"""Forms for sign-in and the Administration pages."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import Group
from django.utils import timezone

from accounts.auth import throttle
from accounts.models import ApiArea, ApiKey, Permission, Privilege, Task
from accounts.permissions import FEED_KEY_PERMISSIONS
from registries.models import Registry

ANONYMOUS = "anonymous"


class LoginForm(AuthenticationForm):
    """Django's sign-in form, throttled per user name and address."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "The user name or password is not correct.",
        "throttled": throttle.BLOCKED_MESSAGE,
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "User name"  # the portal's word, as on Users & Groups

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        if username and throttle.login_blocked(username, self.request):
            raise forms.ValidationError(self.error_messages["throttled"], code="throttled")
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            if username:
                throttle.login_failed(username, self.request)
            raise
        throttle.login_succeeded(username, self.request)
        return cleaned


class TaskForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(
        required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 2})
    )
    permissions = forms.MultipleChoiceField(
        choices=Permission.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="The task allows exactly these. Administer allows everything.",
    )

    def __init__(self, *args, task: Task | None = None, **kwargs):
        if task is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": task.name,
                "description": task.description,
                "permissions": task.permissions,
            }
        super().__init__(*args, **kwargs)
        self.task = task

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        others = Task.objects.filter(name__iexact=name)
        if self.task is not None:
            others = others.exclude(pk=self.task.pk)
        if others.exists():
            raise forms.ValidationError(f"A task called {name!r} already exists.")
        return name


class PrivilegeForm(forms.Form):
    task = forms.ModelChoiceField(
        queryset=Task.objects.order_by("-built_in", "id"), empty_label="Choose a task…"
    )
    principal = forms.ChoiceField(label="User or group")
    registry = forms.ModelChoiceField(
        queryset=Registry.objects.order_by("name"),
        required=False,
        empty_label="All registries",
        label="Registry",
    )
    effect = forms.ChoiceField(
        choices=Privilege.Effect.choices,
        initial=Privilege.Effect.GRANT,
        widget=forms.RadioSelect,
        help_text="Restrict beats grant.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        users = [
            (f"user:{u.pk}", u.get_username())
            for u in get_user_model().objects.order_by("username")
        ]
        groups = [(f"group:{g.pk}", g.name) for g in Group.objects.order_by("name")]
        choices: list = [("", "Choose a user or group…")]
        if users:
            choices.append(("Users", users))
        if groups:
            choices.append(("Groups", groups))
        choices.append((ANONYMOUS, "Anonymous (everyone, signed in or not)"))
        self.fields["principal"].choices = choices

    def clean_principal(self) -> dict:
        value = self.cleaned_data["principal"]
        if value == ANONYMOUS:
            return {"anonymous": True}
        kind, _, pk = value.partition(":")
        if kind == "user":
            user = get_user_model().objects.filter(pk=pk).first() if pk.isdigit() else None
            if user is not None:
                return {"user": user}
        if kind == "group":
            group = Group.objects.filter(pk=pk).first() if pk.isdigit() else None
            if group is not None:
                return {"group": group}
        raise forms.ValidationError("Choose a user, a group or Anonymous.")


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(
        required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 2})
    )
    kind = forms.ChoiceField(
        choices=[
            (ApiKey.Kind.PERSONAL, "Personal: acts as a user, with that user's privileges"),
            (ApiKey.Kind.FEED, "Feed: chosen registries and permissions only"),
            (ApiKey.Kind.SYSTEM, "System: full control of Promoter, or of chosen API areas"),
        ],
        initial=ApiKey.Kind.FEED,
        widget=forms.RadioSelect,
        label="Kind",
    )
    user = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        required=False,
        empty_label="You",
        help_text="Personal keys: the user the key acts as.",
    )
    registries = forms.ModelMultipleChoiceField(
        queryset=Registry.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Feed keys: where the key works.",
    )
    permissions = forms.MultipleChoiceField(
        choices=[c for c in Permission.choices if c[0] in FEED_KEY_PERMISSIONS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Feed keys: what the key may do there. Nobody pushes into a "
        "Validated/Promoted registry; content arrives there only by promotion.",
    )
    areas = forms.MultipleChoiceField(
        choices=ApiArea.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="API areas",
        help_text="System keys: the only API areas the key may call; none = full control. "
        "A limited key works nowhere else: not on pages, not with docker clients. "
        "The API keys area can create any key, so it amounts to full control.",
    )
    expires_on = forms.DateField(
        required=False,
        label="Expires on",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Leave empty for a key that does not expire.",
    )

    def clean_expires_on(self):
        day = self.cleaned_data.get("expires_on")
        if day is not None and day <= timezone.localdate():
            raise forms.ValidationError("Choose a day after today.")
        return day

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("kind") == ApiKey.Kind.FEED:
            if not cleaned.get("registries"):
                self.add_error("registries", "A feed key needs at least one registry.")
            if not cleaned.get("permissions"):
                self.add_error("permissions", "A feed key needs at least one permission.")
        return cleaned

    @property
    def expires_at(self) -> dt.datetime | None:
        day = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


class UserCreateForm(forms.Form):
    username = forms.CharField(max_length=150, label="User name")
    email = forms.EmailField(required=False, label="E-mail")
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label="Password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    groups = forms.ModelMultipleChoiceField(
        queryset=Group.objects.order_by("name"), required=False, widget=forms.CheckboxSelectMultiple
    )

    def clean_username(self) -> str:
        username = self.cleaned_data["username"].strip()
        field = get_user_model()._meta.get_field("username")
        for validator in field.validators:
            validator(username)
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise forms.ValidationError(f"A user called {username!r} already exists.")
        return username

    def clean(self):
        cleaned = super().clean()
        p1, p2 = cleaned.get("password1"), cleaned.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", "The two passwords differ.")
        elif p1:
            try:
                password_validation.validate_password(p1)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return cleaned


class UserEditForm(forms.Form):
    email = forms.EmailField(required=False, label="E-mail")
    is_active = forms.BooleanField(
        required=False,
        label="Active",
        help_text="Inactive users cannot sign in; their keys stop working.",
    )
    groups = forms.ModelMultipleChoiceField(
        queryset=Group.objects.order_by("name"), required=False, widget=forms.CheckboxSelectMultiple
    )
    password = forms.CharField(
        required=False,
        strip=False,
        label="New password",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to keep the current password.",
    )

    def __init__(self, *args, user=None, **kwargs):
        if user is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "email": user.email,
                "is_active": user.is_active,
                "groups": list(user.groups.all()),
            }
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password = self.cleaned_data.get("password") or ""
        if password:
            password_validation.validate_password(password, self.user)
        return password


class GroupForm(forms.Form):
    name = forms.CharField(max_length=150, label="Group name")
    members = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.order_by("username"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if Group.objects.filter(name__iexact=name).exists():
            raise forms.ValidationError(f"A group called {name!r} already exists.")
        return name
