"""Reads for the Administration pages."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Count, Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from accounts.models import ApiKey, Privilege, Task
from accounts.permissions import Principal
from promoter.errors import Forbidden, NotFound
from registries.models import Registry


def administrator_required(principal: Principal) -> None:
    """Forbidden (the 403 page) unless the principal holds Administer."""
    if not principal.is_administrator():
        raise Forbidden("Only administrators may open Administration.")


def task_list() -> QuerySet[Task]:
    """Built-in tasks first, then custom ones, with how many privileges use each."""
    # Meta.ordering is not applied to GROUP BY queries: order explicitly (built-ins in
    # their natural order View → Administer, then custom tasks as they were created).
    return Task.objects.annotate(privilege_count=Count("privileges")).order_by("-built_in", "id")


def task_get(*, task_id: int) -> Task:
    return get_object_or_404(Task, pk=task_id)


def privilege_list() -> QuerySet[Privilege]:
    return Privilege.objects.select_related("task", "user", "group", "registry").order_by(
        "anonymous", "user__username", "group__name", "registry__name", "task__name"
    )


def privilege_get(*, privilege_id: int) -> Privilege:
    return get_object_or_404(Privilege, pk=privilege_id)


def user_list():
    return (
        get_user_model()
        .objects.prefetch_related(Prefetch("groups", queryset=Group.objects.order_by("name")))
        .order_by("username")
    )


def user_get(*, user_id: int):
    return get_object_or_404(get_user_model(), pk=user_id)


def group_list() -> QuerySet[Group]:
    return (
        Group.objects.prefetch_related("user_set")
        .annotate(member_count=Count("user", distinct=True))
        .order_by("name")
    )


def group_get(*, group_id: int) -> Group:
    return get_object_or_404(Group, pk=group_id)


def api_key_list() -> QuerySet[ApiKey]:
    return ApiKey.objects.select_related("user").prefetch_related(
        Prefetch("registries", queryset=Registry.objects.order_by("name"))
    )


def api_key_get(*, api_key_id: int) -> ApiKey:
    return get_object_or_404(ApiKey, pk=api_key_id)


@dataclass
class UsersAndTasks:
    users: QuerySet
    groups: QuerySet[Group]
    privileges: QuerySet[Privilege]


def users_and_tasks() -> UsersAndTasks:
    """Everything the Users & Tasks page lists."""
    return UsersAndTasks(users=user_list(), groups=group_list(), privileges=privilege_list())


def api_keys_for(*, principal: Principal) -> QuerySet[ApiKey]:
    """All keys for administrators; a person's own personal keys otherwise."""
    keys = api_key_list().order_by("-created_at", "-id")
    if principal.is_administrator():
        return keys
    if principal.user is not None and (
        principal.api_key is None or principal.api_key.kind == ApiKey.Kind.PERSONAL
    ):
        return keys.filter(kind=ApiKey.Kind.PERSONAL, user=principal.user)
    raise Forbidden("Listing API keys needs Administer (or a person's own credentials).")


def api_key_for(*, principal: Principal, api_key_id: int) -> ApiKey:
    """One key the caller may see (as api_keys_for), else 404."""
    key = api_keys_for(principal=principal).filter(pk=api_key_id).first()
    if key is None:
        raise NotFound(f"There is no API key {api_key_id}.")
    return key
