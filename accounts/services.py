"""Writes for accounts: tasks, privileges, API keys, users and groups.

Every function is keyword-only, takes the acting principal, checks it may act (the views
check too; this is the one that counts) and runs in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.auth.keys import PREFIX_LENGTH, key_generate, key_hash
from accounts.models import ApiArea, ApiKey, Permission, Privilege, Task
from accounts.permissions import FEED_KEY_PERMISSIONS, Principal
from promoter.errors import Forbidden, Invalid
from registries.models import Registry

log = logging.getLogger(__name__)


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


# --- tasks --------------------------------------------------------------------
def task_create(
    *, name: str, description: str = "", permissions: Iterable[str], actor: Principal
) -> Task:
    """Create a custom task: a named bundle of permissions."""
    _require_administrator(actor)
    name = name.strip()
    perms = _clean_permissions(permissions, Permission.values)
    if not name:
        raise Invalid("A task needs a name.")
    if not perms:
        raise Invalid("Choose at least one permission for the task.")
    try:
        with transaction.atomic():
            task = Task.objects.create(
                name=name, description=description, permissions=perms, built_in=False
            )
    except IntegrityError as exc:
        raise Invalid(f"A task called {name!r} already exists.") from exc
    log.info("task %r created by %s", task.name, actor.name)
    return task


def task_update(
    *, task: Task, name: str, description: str = "", permissions: Iterable[str], actor: Principal
) -> Task:
    """Change a custom task (built-in tasks never change)."""
    _require_administrator(actor)
    if task.built_in:
        raise Invalid(f"{task.name} is a built-in task and cannot be changed.")
    perms = _clean_permissions(permissions, Permission.values)
    if not perms:
        raise Invalid("Choose at least one permission for the task.")
    task.name, task.description, task.permissions = name.strip(), description, perms
    try:
        with transaction.atomic():
            task.save()
            staff_sync()
    except IntegrityError as exc:
        raise Invalid(f"A task called {name!r} already exists.") from exc
    log.info("task %r changed by %s", task.name, actor.name)
    return task


@transaction.atomic
def task_delete(*, task: Task, actor: Principal) -> None:
    """Delete a custom task and every privilege that uses it."""
    _require_administrator(actor)
    if task.built_in:
        raise Invalid(f"{task.name} is a built-in task and cannot be deleted.")
    name = task.name
    task.delete()
    staff_sync()
    log.info("task %r deleted by %s", name, actor.name)


# --- privileges -----------------------------------------------------------------
@transaction.atomic
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
    if sum([user is not None, group is not None, bool(anonymous)]) != 1:
        raise Invalid("Choose exactly one of a user, a group or Anonymous.")
    if effect not in Privilege.Effect.values:
        raise Invalid(f"Unknown effect {effect!r}.")
    existing = Privilege.objects.filter(
        task=task,
        user=user,
        group=group,
        anonymous=bool(anonymous),
        registry=registry,
        effect=effect,
    ).first()
    if existing is not None:
        return existing  # adding the same privilege twice changes nothing
    privilege = Privilege.objects.create(
        task=task,
        user=user,
        group=group,
        anonymous=bool(anonymous),
        registry=registry,
        effect=effect,
    )
    staff_sync(_users_affected(privilege))
    log.info("privilege added by %s: %s", actor.name, privilege)
    return privilege


@transaction.atomic
def privilege_remove(*, privilege: Privilege, actor: Principal) -> None:
    """Remove a privilege."""
    _require_administrator(actor)
    affected = list(_users_affected(privilege))
    description = str(privilege)
    privilege.delete()
    staff_sync(affected)
    if not actor.system and actor.user is not None and not _still_administered():
        raise Invalid("That would leave nobody able to administer Promoter.")
    log.info("privilege removed by %s: %s", actor.name, description)


def _still_administered() -> bool:
    users = get_user_model().objects.filter(is_active=True)
    return users.filter(is_superuser=True).exists() or any(
        Principal(user=u).is_administrator() for u in users.filter(is_staff=True)
    )


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


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: Principal) -> ApiKey:
    """Revoke a key at once; it stays listed, refused from now on."""
    own = (
        api_key.kind == ApiKey.Kind.PERSONAL
        and actor.user is not None
        and api_key.user_id == actor.user.pk
    )
    if not own:
        _require_administrator(actor)
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        log.info("API key %r revoked by %s", api_key.name, actor.name)
    return api_key


# --- users and groups -------------------------------------------------------------
@transaction.atomic
def user_create(
    *, username: str, password: str, actor: Principal, email: str = "", groups: Iterable[Group] = ()
) -> AbstractBaseUser:
    """Create a person who signs in with `password`."""
    _require_administrator(actor)
    users = get_user_model()
    if users.objects.filter(username__iexact=username.strip()).exists():
        raise Invalid(f"A user called {username.strip()!r} already exists.")
    user = users.objects.create_user(username.strip(), email=email, password=password)
    user.groups.set(list(groups))
    staff_sync([user])
    log.info("user %r created by %s", user.get_username(), actor.name)
    return user


@transaction.atomic
def user_update(
    *,
    user: AbstractBaseUser,
    actor: Principal,
    email: str | None = None,
    is_active: bool | None = None,
    groups: Iterable[Group] | None = None,
    password: str | None = None,
) -> AbstractBaseUser:
    """Change a user's e-mail, active flag, groups, or password (each only when given)."""
    _require_administrator(actor)
    if email is not None:
        user.email = email
    if is_active is not None:
        if not is_active and actor.user is not None and actor.user.pk == user.pk:
            raise Invalid("You cannot deactivate yourself.")
        user.is_active = is_active
    if password:
        user.set_password(password)
    user.save()
    if groups is not None:
        user.groups.set(list(groups))
    staff_sync([user])
    log.info("user %r changed by %s", user.get_username(), actor.name)
    return user


@transaction.atomic
def group_create(*, name: str, actor: Principal, members: Iterable[AbstractBaseUser] = ()) -> Group:
    """Create a group (privileges granted to it apply to all its members)."""
    _require_administrator(actor)
    name = name.strip()
    if not name:
        raise Invalid("A group needs a name.")
    if Group.objects.filter(name__iexact=name).exists():
        raise Invalid(f"A group called {name!r} already exists.")
    group = Group.objects.create(name=name)
    group.user_set.set(list(members))
    staff_sync(group.user_set.all())
    log.info("group %r created by %s", name, actor.name)
    return group


@transaction.atomic
def group_membership_set(
    *, group: Group, members: Iterable[AbstractBaseUser], actor: Principal
) -> Group:
    """Make `members` exactly the group's members."""
    _require_administrator(actor)
    before = set(group.user_set.values_list("pk", flat=True))
    group.user_set.set(list(members))
    after = set(group.user_set.values_list("pk", flat=True))
    staff_sync(get_user_model().objects.filter(pk__in=before | after))
    return group


@transaction.atomic
def group_delete(*, group: Group, actor: Principal) -> None:
    """Delete a group and its privileges; its members stay."""
    _require_administrator(actor)
    members = list(group.user_set.all())
    group.delete()
    staff_sync(members)
