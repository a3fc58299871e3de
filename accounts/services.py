"""Writes for accounts: tasks, privileges, API keys, users and groups.

Every function is keyword-only, takes the acting principal, checks it may act (the views
check too; this is the one that counts), validates, and runs in one transaction together
with its audit event. The Administration pages, the API and the Django admin all call these,
so the rules below (staff follows Administer; nobody leaves Promoter without an
administrator; built-in tasks never change) hold whichever way a change arrives. Not
`durable`: the Django admin calls them inside its own transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.audit import audit_record
from accounts.auth.keys import PREFIX_LENGTH, key_generate, key_hash
from accounts.models import ApiArea, ApiKey, Permission, Privilege, Task
from accounts.permissions import FEED_KEY_PERMISSIONS, Principal
from promoter.errors import Forbidden, Invalid
from registries.models import Registry

log = logging.getLogger(__name__)

LAST_ADMINISTRATOR = "That would leave nobody able to administer Promoter."
TASK_NAME_MAX = Task._meta.get_field("name").max_length
GROUP_NAME_MAX = Group._meta.get_field("name").max_length


def _require_administrator(actor: Principal) -> None:
    if not actor.is_administrator():
        raise Forbidden("Only administrators may change users, tasks and API keys.")


def _clean_permissions(permissions: Iterable[str], allowed: Iterable[str]) -> list[str]:
    allowed = {str(p) for p in allowed}
    chosen = [str(p) for p in permissions]
    unknown = sorted(set(chosen) - allowed)
    if unknown:
        raise Invalid(f"Unknown permission: {', '.join(unknown)}.")
    # Stable order: the order of Permission's members.
    return [p for p in Permission.values if p in set(chosen)]


def staff_sync(users: QuerySet | Iterable[AbstractBaseUser] | None = None) -> None:
    """Keep `is_staff` equal to "holds Administer" (Django's admin and the top bar read it)."""
    if users is None:
        users = get_user_model().objects.all()
    for user in users:
        staff = user.is_superuser or Principal(user=user).is_administrator()
        if user.is_staff != staff:
            user.is_staff = staff
            user.save(update_fields=["is_staff"])


def _users_affected(privilege: Privilege):
    users = get_user_model().objects
    if privilege.user_id:
        return users.filter(pk=privilege.user_id)
    if privilege.group_id:
        return users.filter(groups=privilege.group_id)
    return users.all()


def _still_administered() -> bool:
    users = get_user_model().objects.filter(is_active=True)
    return users.filter(is_superuser=True).exists() or any(
        Principal(user=u).is_administrator() for u in users.filter(is_staff=True)
    )


def _guard_administered(actor: Principal) -> None:
    """Refuse (rolling the change back) a person's change that leaves no administrator.

    Only a person is held to it: the portal itself and system keys keep full control of
    Promoter without anybody holding Administer, so they may set things up from nothing.
    Call it last inside the write's transaction, after staff_sync.
    """
    if not actor.system and actor.user is not None and not _still_administered():
        raise Invalid(LAST_ADMINISTRATOR)


def _names(objects: Iterable[Any]) -> list[str]:
    return sorted(str(o) for o in objects)


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {k: (before[k], after[k]) for k in after if before.get(k) != after[k]}


# --- tasks --------------------------------------------------------------------
def _task_snapshot(task: Task) -> dict[str, Any]:
    return {
        "name": task.name,
        "description": task.description,
        "permissions": list(task.permissions),
    }


def _task_values(name: str, description: str, permissions: Iterable[str], exclude: int | None):
    name = (name or "").strip()
    if not name:
        raise Invalid("A task needs a name.")
    if len(name) > TASK_NAME_MAX:
        raise Invalid(f"A task's name has at most {TASK_NAME_MAX} characters.")
    perms = _clean_permissions(permissions, Permission.values)
    if not perms:
        raise Invalid("Choose at least one permission for the task.")
    others = Task.objects.filter(name__iexact=name)
    if exclude is not None:
        others = others.exclude(pk=exclude)
    if others.exists():
        raise Invalid(f"A task called {name!r} already exists.")
    return name, description or "", perms


def task_create(
    *, name: str, description: str = "", permissions: Iterable[str], actor: Principal
) -> Task:
    """Create a custom task: a named bundle of permissions."""
    _require_administrator(actor)
    name, description, perms = _task_values(name, description, permissions, exclude=None)
    try:
        with transaction.atomic():
            task = Task.objects.create(
                name=name, description=description, permissions=perms, built_in=False
            )
            audit_record(
                actor=actor,
                action="task.created",
                obj=task,
                object_type="task",
                changes={k: (None, v) for k, v in _task_snapshot(task).items()},
            )
    except IntegrityError as exc:  # the same name created meanwhile
        raise Invalid(f"A task called {name!r} already exists.") from exc
    log.info("task %r created by %s", task.name, actor.name)
    return task


def task_update(
    *, task: Task, name: str, description: str = "", permissions: Iterable[str], actor: Principal
) -> Task:
    """Change a custom task (built-in tasks never change)."""
    _require_administrator(actor)
    try:
        with transaction.atomic():
            # The stored task, not the caller's copy (a form may have changed it in memory).
            task = Task.objects.select_for_update().get(pk=task.pk)
            if task.built_in:
                raise Invalid(f"{task.name} is a built-in task and cannot be changed.")
            before = _task_snapshot(task)
            name, description, perms = _task_values(name, description, permissions, task.pk)
            task.name, task.description, task.permissions = name, description, perms
            task.save()
            staff_sync()
            _guard_administered(actor)
            if changes := _changes(before, _task_snapshot(task)):
                audit_record(
                    actor=actor,
                    action="task.updated",
                    obj=task,
                    object_type="task",
                    changes=changes,
                )
    except IntegrityError as exc:
        raise Invalid(f"A task called {name!r} already exists.") from exc
    log.info("task %r changed by %s", task.name, actor.name)
    return task


def task_delete(*, task: Task, actor: Principal) -> None:
    """Delete a custom task and every privilege that uses it."""
    _require_administrator(actor)
    with transaction.atomic():
        task = Task.objects.select_for_update().get(pk=task.pk)
        if task.built_in:
            raise Invalid(f"{task.name} is a built-in task and cannot be deleted.")
        name = task.name
        audit_record(
            actor=actor,
            action="task.deleted",
            obj=task,
            object_type="task",
            changes={k: (v, None) for k, v in _task_snapshot(task).items()},
        )
        task.delete()
        staff_sync()
        _guard_administered(actor)
    log.info("task %r deleted by %s", name, actor.name)


# --- privileges -----------------------------------------------------------------
def _privilege_snapshot(privilege: Privilege) -> dict[str, Any]:
    return {
        "task": privilege.task.name,
        "principal": privilege.principal_name,
        "registry": privilege.scope_name,
        "effect": privilege.effect,
    }


def privilege_add(
    *,
    task: Task,
    user: AbstractBaseUser | None = None,
    group: Group | None = None,
    anonymous: bool = False,
    registry: Registry | None = None,
    effect: str = Privilege.Effect.GRANT,
    actor: Principal,
) -> Privilege:
    """Grant or restrict `task` for one user, group or Anonymous, on `registry` (None: all)."""
    _require_administrator(actor)
    if task is None:
        raise Invalid("Choose a task.")
    if sum([user is not None, group is not None, bool(anonymous)]) != 1:
        raise Invalid("Choose exactly one of a user, a group or Anonymous.")
    if effect not in Privilege.Effect.values:
        raise Invalid(f"Unknown effect {effect!r}.")
    fields = {
        "task": task,
        "user": user,
        "group": group,
        "anonymous": bool(anonymous),
        "registry": registry,
        "effect": effect,
    }
    with transaction.atomic():
        existing = Privilege.objects.filter(**fields).first()
        if existing is not None:
            return existing  # adding the same privilege twice changes nothing
        privilege = Privilege.objects.create(**fields)
        staff_sync(_users_affected(privilege))
        # A restriction of Administer can take it from the last administrator.
        _guard_administered(actor)
        audit_record(
            actor=actor,
            action="privilege.added",
            obj=privilege,
            object_type="privilege",
            changes={k: (None, v) for k, v in _privilege_snapshot(privilege).items()},
        )
    log.info("privilege added by %s: %s", actor.name, privilege)
    return privilege


def privilege_remove(*, privilege: Privilege, actor: Principal) -> None:
    """Remove a privilege (refused when it would leave nobody able to administer)."""
    _require_administrator(actor)
    with transaction.atomic():
        affected = list(_users_affected(privilege))
        description = str(privilege)
        audit_record(
            actor=actor,
            action="privilege.removed",
            obj=privilege,
            object_type="privilege",
            changes={k: (v, None) for k, v in _privilege_snapshot(privilege).items()},
        )
        privilege.delete()
        staff_sync(affected)
        _guard_administered(actor)
    log.info("privilege removed by %s: %s", actor.name, description)


# --- API keys -------------------------------------------------------------------
def api_key_create(
    *,
    name: str,
    kind: str,
    actor: Principal,
    description: str = "",
    user: AbstractBaseUser | None = None,
    registries: Iterable[Registry] = (),
    permissions: Iterable[str] = (),
    areas: Iterable[str] = (),
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Create an API key; returns (key, raw secret). The secret is shown once, stored hashed.

    Personal keys act as `user` (administrators may make them for anyone; a person may
    make one for themselves). Feed keys hold `permissions` (view/publish/promote/delete) on
    `registries`. System keys have full control, or, with `areas` (ApiArea values, stored in
    `permissions`), full control of those API areas only.
    """
    name = name.strip()
    if not name:
        raise Invalid("An API key needs a name.")
    if kind not in ApiKey.Kind.values:
        raise Invalid(f"Unknown kind of API key {kind!r}.")
    self_service = (
        kind == ApiKey.Kind.PERSONAL
        and actor.api_key is None
        and actor.user is not None
        and (user is None or user.pk == actor.user.pk)
    )
    if not self_service:
        _require_administrator(actor)
    if expires_at is not None and expires_at <= timezone.now():
        raise Invalid("The expiry date must be in the future.")
    registries = list(registries)
    areas = [str(a) for a in areas]
    if areas and kind != ApiKey.Kind.SYSTEM:
        raise Invalid("Only system keys are limited to API areas; leave the areas out.")
    perms: list[str] = []
    if kind == ApiKey.Kind.PERSONAL:
        user = user or actor.user
        if user is None:
            raise Invalid("A personal key needs the user it acts as.")
        registries = []
    elif kind == ApiKey.Kind.FEED:
        perms = _clean_permissions(permissions, FEED_KEY_PERMISSIONS)
        if not registries:
            raise Invalid("A feed key needs at least one registry.")
        if not perms:
            raise Invalid("A feed key needs at least one permission.")
        user = actor.user  # who created it
    else:
        perms = _clean_areas(areas)
        registries = []
        user = actor.user
    _refuse_escalation(actor, kind, perms)
    raw = key_generate()
    with transaction.atomic():
        key = ApiKey.objects.create(
            name=name,
            description=description,
            kind=kind,
            user=user,
            permissions=perms,
            key_prefix=raw[:PREFIX_LENGTH],
            key_hash=key_hash(raw),
            expires_at=expires_at,
        )
        key.registries.set(registries)
        audit_record(
            actor=actor,
            action="api_key.created",
            obj=key,
            object_type="api_key",
            changes={
                "name": (None, key.name),
                "kind": (None, key.kind),
                "user": (None, user.get_username() if user is not None else None),
                "registries": (None, _names(registries)),
                "permissions": (None, perms),
                "expires_at": (None, expires_at.isoformat() if expires_at else None),
                "key_prefix": (None, key.key_prefix),
            },
        )
    log.info("API key %r (%s) created by %s", key.name, kind, actor.name)
    return key, raw


def _refuse_escalation(actor: Principal, kind: str, areas: list[str]) -> None:
    """A key limited to API areas creates only system keys limited to (some of) its areas."""
    limits = actor.api_key.areas if actor.api_key is not None else []
    if not limits:
        return
    if kind != ApiKey.Kind.SYSTEM or not areas or not set(areas) <= set(limits):
        raise Invalid(
            "A key limited to the API areas " + ", ".join(limits) + " can only create system "
            "keys limited to some of those areas."
        )


def _clean_areas(areas: list[str]) -> list[str]:
    unknown = sorted(set(areas) - set(ApiArea.values))
    if unknown:
        raise Invalid(
            f"Unknown API area: {', '.join(unknown)}; choose from "
            f"{', '.join(ApiArea.values)} (none for full control)."
        )
    return [a for a in ApiArea.values if a in set(areas)]


def api_key_revoke(*, api_key: ApiKey, actor: Principal) -> ApiKey:
    """Revoke a key at once; it stays listed, refused from now on (revoking twice: no change)."""
    own = (
        api_key.kind == ApiKey.Kind.PERSONAL
        and actor.user is not None
        and api_key.user_id == actor.user.pk
    )
    if not own:
        _require_administrator(actor)
    with transaction.atomic():
        api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
        if api_key.revoked_at is None:
            api_key.revoked_at = timezone.now()
            api_key.save(update_fields=["revoked_at"])
            audit_record(
                actor=actor,
                action="api_key.revoked",
                obj=api_key,
                object_type="api_key",
                changes={"revoked_at": (None, api_key.revoked_at.isoformat())},
            )
            log.info("API key %r revoked by %s", api_key.name, actor.name)
    return api_key


# --- users and groups -------------------------------------------------------------
def _user_snapshot(user: AbstractBaseUser) -> dict[str, Any]:
    return {
        "username": user.get_username(),
        "first_name": getattr(user, "first_name", ""),
        "last_name": getattr(user, "last_name", ""),
        "email": user.email,
        "is_active": user.is_active,
        "groups": _names(user.groups.all()) if user.pk else [],
    }


def user_create(
    *,
    username: str,
    password: str | None,
    actor: Principal,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    groups: Iterable[Group] = (),
) -> AbstractBaseUser:
    """Create a person who signs in with `password` (None: no password sign-in)."""
    _require_administrator(actor)
    users = get_user_model()
    username = (username or "").strip()
    if not username:
        raise Invalid("A user needs a user name.")
    with transaction.atomic():
        if users.objects.filter(username__iexact=username).exists():
            raise Invalid(f"A user called {username!r} already exists.")
        user = users.objects.create_user(
            username, email=email, password=password, first_name=first_name, last_name=last_name
        )
        user.groups.set(list(groups))
        staff_sync([user])
        changes = {k: (None, v) for k, v in _user_snapshot(user).items()}
        changes["password"] = ("", "set" if password else "")
        audit_record(
            actor=actor, action="user.created", obj=user, object_type="user", changes=changes
        )
    log.info("user %r created by %s", user.get_username(), actor.name)
    return user


def user_update(
    *,
    user: AbstractBaseUser,
    actor: Principal,
    email: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    is_active: bool | None = None,
    groups: Iterable[Group] | None = None,
    password: str | None = None,
    password_usable: bool = True,
) -> AbstractBaseUser:
    """Change a user's names, e-mail, active flag, groups, or password (each only when given).

    `password_usable=False` turns password sign-in off for the user.
    """
    _require_administrator(actor)
    with transaction.atomic():
        user = get_user_model().objects.select_for_update().get(pk=user.pk)
        before = _user_snapshot(user)
        for field, value in (
            ("email", email),
            ("first_name", first_name),
            ("last_name", last_name),
        ):
            if value is not None:
                setattr(user, field, value)
        if is_active is not None:
            if not is_active and actor.user is not None and actor.user.pk == user.pk:
                raise Invalid("You cannot deactivate yourself.")
            user.is_active = is_active
        password_changed = False
        if not password_usable:
            user.set_unusable_password()
            password_changed = True
        elif password:
            user.set_password(password)
            password_changed = True
        user.save()
        if groups is not None:
            user.groups.set(list(groups))
        staff_sync([user])
        _guard_administered(actor)
        changes = _changes(before, _user_snapshot(user))
        if password_changed:
            changes["password"] = ("old", "new")  # stored as "(changed)", never the value
        if changes:
            audit_record(
                actor=actor, action="user.updated", obj=user, object_type="user", changes=changes
            )
    log.info("user %r changed by %s", user.get_username(), actor.name)
    return user


def user_delete(*, user: AbstractBaseUser, actor: Principal) -> None:
    """Delete a user with their privileges and API keys (History keeps their name)."""
    _require_administrator(actor)
    with transaction.atomic():
        user = get_user_model().objects.select_for_update().get(pk=user.pk)
        if actor.user is not None and actor.user.pk == user.pk:
            raise Invalid("You cannot delete yourself.")
        name = user.get_username()
        audit_record(
            actor=actor,
            action="user.deleted",
            obj=user,
            object_type="user",
            changes={k: (v, None) for k, v in _user_snapshot(user).items()},
        )
        user.delete()
        _guard_administered(actor)
    log.info("user %r deleted by %s", name, actor.name)


def _group_name(name: str, *, exclude: int | None) -> str:
    name = (name or "").strip()
    if not name:
        raise Invalid("A group needs a name.")
    if len(name) > GROUP_NAME_MAX:
        raise Invalid(f"A group's name has at most {GROUP_NAME_MAX} characters.")
    others = Group.objects.filter(name__iexact=name)
    if exclude is not None:
        others = others.exclude(pk=exclude)
    if others.exists():
        raise Invalid(f"A group called {name!r} already exists.")
    return name


def _group_snapshot(group: Group) -> dict[str, Any]:
    return {"name": group.name, "members": _names(u.get_username() for u in group.user_set.all())}


def group_create(*, name: str, actor: Principal, members: Iterable[AbstractBaseUser] = ()) -> Group:
    """Create a group (privileges granted to it apply to all its members)."""
    _require_administrator(actor)
    with transaction.atomic():
        name = _group_name(name, exclude=None)
        group = Group.objects.create(name=name)
        group.user_set.set(list(members))
        staff_sync(group.user_set.all())
        audit_record(
            actor=actor,
            action="group.created",
            obj=group,
            object_type="group",
            changes={k: (None, v) for k, v in _group_snapshot(group).items()},
        )
    log.info("group %r created by %s", name, actor.name)
    return group


def group_update(
    *,
    group: Group,
    actor: Principal,
    name: str | None = None,
    members: Iterable[AbstractBaseUser] | None = None,
) -> Group:
    """Rename a group and/or make `members` exactly its members (each only when given)."""
    _require_administrator(actor)
    with transaction.atomic():
        group = Group.objects.select_for_update().get(pk=group.pk)
        before = _group_snapshot(group)
        if name is not None:
            group.name = _group_name(name, exclude=group.pk)
            group.save(update_fields=["name"])
        if members is not None:
            old = set(group.user_set.values_list("pk", flat=True))
            group.user_set.set(list(members))
            new = set(group.user_set.values_list("pk", flat=True))
            staff_sync(get_user_model().objects.filter(pk__in=old | new))
            _guard_administered(actor)
        if changes := _changes(before, _group_snapshot(group)):
            audit_record(
                actor=actor,
                action="group.updated",
                obj=group,
                object_type="group",
                changes=changes,
            )
    log.info("group %r changed by %s", group.name, actor.name)
    return group


def group_membership_set(
    *, group: Group, members: Iterable[AbstractBaseUser], actor: Principal
) -> Group:
    """Make `members` exactly the group's members."""
    return group_update(group=group, members=members, actor=actor)


def group_delete(*, group: Group, actor: Principal) -> None:
    """Delete a group and its privileges; its members stay."""
    _require_administrator(actor)
    with transaction.atomic():
        group = Group.objects.select_for_update().get(pk=group.pk)
        members = list(group.user_set.all())
        audit_record(
            actor=actor,
            action="group.deleted",
            obj=group,
            object_type="group",
            changes={k: (v, None) for k, v in _group_snapshot(group).items()},
        )
        group.delete()
        staff_sync(members)
        _guard_administered(actor)
    log.info("group %r deleted by %s", group.name, actor.name)
