"""Administration pages: Users & Tasks, Customize Tasks, API Keys, Users. Administrators only."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from accounts import selectors, services
from accounts.forms import (
    ApiKeyForm,
    GroupForm,
    LoginForm,
    PrivilegeForm,
    TaskForm,
    UserCreateForm,
    UserEditForm,
)
from accounts.models import ApiKey
from accounts.permissions import Principal
from promoter.errors import Invalid
from registries.selectors_pipeline import privilege_effect

SHOWN_ONCE = "api_key_raw:{}"


def _confirm(
    request: HttpRequest,
    *,
    title: str,
    question: str,
    button: str,
    cancel: str,
    breadcrumb: tuple[str, str],
) -> HttpResponse:
    """The confirmation of a destructive action: a page, or a dialog when htmx asks.

    Its form POSTs to the same address, so it works without JavaScript.
    """
    context = {
        "title": title,
        "question": question,
        "button": button,
        "cancel_url": reverse(cancel),
        "breadcrumb": breadcrumb,
        "action_url": request.path,
    }
    template = "accounts/confirm_delete.html"
    return render(request, template + "#dialog" if request.htmx else template, context)


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True


def _administrator(request: HttpRequest) -> Principal:
    principal = Principal.from_request(request)
    selectors.administrator_required(principal)
    return principal


@require_GET
def administration(request: HttpRequest) -> HttpResponse:
    _administrator(request)
    return render(request, "accounts/administration.html", {"nav_section": "administration"})


# --- Users & Tasks ----------------------------------------------------------------
@require_http_methods(["GET", "POST"])
def users_tasks(request: HttpRequest) -> HttpResponse:
    actor = _administrator(request)
    form = PrivilegeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            privilege = services.privilege_add(
                task=data["task"],
                registry=data["registry"],
                effect=data["effect"],
                actor=actor,
                **data["principal"],
            )
        except Invalid as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Added: {privilege}.")
            return redirect("administration:users_tasks")
    preview = None
    if request.method == "GET" and request.GET.get("preview"):
        form = PrivilegeForm(request.GET)
        preview = _privilege_preview(form)
        if request.htmx:
            return render(
                request, "accounts/privilege_list.html#preview", {"preview": preview, "form": form}
            )
    context = {"data": selectors.users_and_tasks(), "form": form, "preview": preview}
    return render(
        request,
        "accounts/privilege_list.html",
        context,
        status=400 if form.errors and request.method == "POST" else 200,
    )


def _privilege_preview(form: PrivilegeForm) -> list[str]:
    """What the privilege in the form would change, in words (empty while incomplete)."""
    if not form.is_valid():
        return []
    data = form.cleaned_data
    return privilege_effect(
        permissions=list(data["task"].permissions),
        registry=data["registry"],
        restrict=data["effect"] == "restrict",
        **data["principal"],
    )


@require_http_methods(["GET", "POST"])
def privilege_remove(request: HttpRequest, privilege_id: int) -> HttpResponse:
    actor = _administrator(request)
    privilege = selectors.privilege_get(privilege_id=privilege_id)
    description = str(privilege)
    if request.method == "GET":
        return _confirm(
            request,
            title="Remove privilege",
            question=f"Remove the privilege {description}? Who holds it loses what it allows.",
            button="Remove privilege",
            cancel="administration:users_tasks",
            breadcrumb=("Users & Tasks", "administration:users_tasks"),
        )
    try:
        services.privilege_remove(privilege=privilege, actor=actor)
    except Invalid as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Removed: {description}.")
    return redirect("administration:users_tasks")


# --- Customize Tasks --------------------------------------------------------------
@require_http_methods(["GET", "POST"])
def task_list(request: HttpRequest) -> HttpResponse:
    actor = _administrator(request)
    form = TaskForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            task = services.task_create(actor=actor, **form.cleaned_data)
        except Invalid as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Created the task {task.name}. Grant it on Users & Tasks.")
            return redirect("administration:task_list")
    return render(
        request,
        "accounts/task_list.html",
        {"tasks": selectors.task_list(), "form": form},
        status=400 if form.errors else 200,
    )


@require_http_methods(["GET", "POST"])
def task_edit(request: HttpRequest, task_id: int) -> HttpResponse:
    actor = _administrator(request)
    task = selectors.task_get(task_id=task_id)
    form = TaskForm(request.POST or None, task=task)
    if task.built_in:
        messages.info(request, f"{task.name} is built in and cannot be changed.")
        return redirect("administration:task_list")
    if request.method == "POST" and form.is_valid():
        try:
            services.task_update(task=task, actor=actor, **form.cleaned_data)
        except Invalid as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Saved the task {task.name}.")
            return redirect("administration:task_list")
    return render(
        request,
        "accounts/task_form.html",
        {"task": task, "form": form},
        status=400 if form.errors else 200,
    )


@require_http_methods(["GET", "POST"])
def task_delete(request: HttpRequest, task_id: int) -> HttpResponse:
    actor = _administrator(request)
    task = selectors.task_get(task_id=task_id)
    if request.method == "GET":
        count = task.privileges.count()
        also = f" and its {count} privilege{'s' if count != 1 else ''}" if count else ""
        return _confirm(
            request,
            title=f"Delete task {task.name}",
            question=f"Delete the task {task.name}{also}? This cannot be undone.",
            button="Delete task",
            cancel="administration:task_list",
            breadcrumb=("Customize Tasks", "administration:task_list"),
        )
    try:
        services.task_delete(task=task, actor=actor)
    except Invalid as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Deleted the task {task.name} and its privileges.")
    return redirect("administration:task_list")


# --- API Keys -----------------------------------------------------------------------
@require_GET
def api_key_list(request: HttpRequest) -> HttpResponse:
    _administrator(request)
    return render(request, "accounts/apikey_list.html", {"api_keys": selectors.api_key_list()})


@require_http_methods(["GET", "POST"])
def api_key_create(request: HttpRequest) -> HttpResponse:
    actor = _administrator(request)
    form = ApiKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            key, raw = services.api_key_create(
                name=data["name"],
                description=data["description"],
                kind=data["kind"],
                user=data["user"],
                registries=data["registries"],
                permissions=data["permissions"],
                expires_at=form.expires_at,
                actor=actor,
                # Checked areas count only for a system key (the form shows them all).
                areas=data["areas"] if data["kind"] == ApiKey.Kind.SYSTEM else [],
            )
        except Invalid as exc:
            form.add_error(None, exc.message)
        else:
            # Shown once: kept in the server-side session only until the next page reads it.
            request.session[SHOWN_ONCE.format(key.pk)] = raw
            return redirect("administration:api_key_created", api_key_id=key.pk)
    return render(
        request, "accounts/apikey_form.html", {"form": form}, status=400 if form.errors else 200
    )


@require_GET
def api_key_created(request: HttpRequest, api_key_id: int) -> HttpResponse:
    _administrator(request)
    key = selectors.api_key_get(api_key_id=api_key_id)
    raw = request.session.pop(SHOWN_ONCE.format(key.pk), None)
    context = {
        "api_key": key,
        "raw_key": raw,
        "login_command": f"skopeo login -u api {settings.PROMOTER_REGISTRY_HOST}",
    }
    response = render(request, "accounts/apikey_created.html", context)
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "POST"])
def api_key_revoke(request: HttpRequest, api_key_id: int) -> HttpResponse:
    actor = _administrator(request)
    key = selectors.api_key_get(api_key_id=api_key_id)
    if request.method == "GET":
        return _confirm(
            request,
            title=f"Revoke API key {key.name}",
            question=f"Revoke the API key {key.name}? Scripts using it stop working at once; "
            "a revoked key cannot be restored.",
            button="Revoke key",
            cancel="administration:api_key_list",
            breadcrumb=("API Keys", "administration:api_key_list"),
        )
    try:
        services.api_key_revoke(api_key=key, actor=actor)
    except Invalid as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Revoked the API key {key.name}. It no longer works.")
    return redirect("administration:api_key_list")


# --- Users and groups -----------------------------------------------------------------
@require_GET
def user_list(request: HttpRequest) -> HttpResponse:
    _administrator(request)
    return render(
        request,
        "accounts/user_list.html",
        {"users": selectors.user_list(), "groups": selectors.group_list()},
    )


@require_http_methods(["GET", "POST"])
def user_create(request: HttpRequest) -> HttpResponse:
    actor = _administrator(request)
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = services.user_create(
                username=data["username"],
                email=data["email"],
                password=data["password1"],
                groups=data["groups"],
                actor=actor,
            )
        except Invalid as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(
                request, f"Created the user {user.get_username()}. Grant tasks on Users & Tasks."
            )
            return redirect("administration:user_list")
    return render(
        request, "accounts/user_form.html", {"form": form}, status=400 if form.errors else 200
    )


@require_http_methods(["GET", "POST"])
def user_edit(request: HttpRequest, user_id: int) -> HttpResponse:
    actor = _administrator(request)
    user = selectors.user_get(user_id=user_id)
    form = UserEditForm(request.POST or None, user=user)
    if request.method == "POST" and form.is_valid():
        try:
            services.user_update(user=user, actor=actor, **form.cleaned_data)
        except Invalid as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Saved the user {user.get_username()}.")
            return redirect("administration:user_list")
    return render(
        request,
        "accounts/user_form.html",
        {"form": form, "edited_user": user},
        status=400 if form.errors else 200,
    )


@require_http_methods(["GET", "POST"])
def group_create(request: HttpRequest) -> HttpResponse:
    actor = _administrator(request)
    form = GroupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            group = services.group_create(actor=actor, **form.cleaned_data)
        except Invalid as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Created the group {group.name}.")
            return redirect("administration:user_list")
    return render(
        request, "accounts/group_form.html", {"form": form}, status=400 if form.errors else 200
    )


@require_http_methods(["GET", "POST"])
def group_delete(request: HttpRequest, group_id: int) -> HttpResponse:
    actor = _administrator(request)
    group = selectors.group_get(group_id=group_id)
    if request.method == "GET":
        return _confirm(
            request,
            title=f"Delete group {group.name}",
            question=f"Delete the group {group.name}? Its members stay, but lose the "
            "privileges granted to the group.",
            button="Delete group",
            cancel="administration:user_list",
            breadcrumb=("Users & Groups", "administration:user_list"),
        )
    try:
        services.group_delete(group=group, actor=actor)
    except Invalid as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Deleted the group {group.name}; its members stay.")
    return redirect("administration:user_list")
