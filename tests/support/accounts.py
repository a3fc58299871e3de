"""Builders for people, privileges and API keys, made the way the portal makes them.

The one set of account helpers of the suite (tests/accounts/helpers.py and
tests/api/conftest.py re-export them). Django is imported inside the functions: this
module is imported by tests/conftest.py, which the Django-free oci tests load too.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accounts.models import ApiKey, Privilege
    from registries.models import Registry

# The password of Admin (the `demo` fixtures) and of every user `user_with` makes.
PASSWORD = "correct horse battery staple"


def pipeline() -> dict[str, Registry]:
    """devdocker (General) → rcdocker → proddocker (Validated), and the built-in tasks."""
    from registries.bootstrap import demo_ensure, tasks_ensure
    from registries.models import Registry

    tasks_ensure()
    demo_ensure(require_comments=False)  # these tests promote without a comment
    return {r.name: r for r in Registry.objects.all()}


def _registry(registry: Registry | str | None) -> Registry | None:
    from registries.models import Registry

    if isinstance(registry, str):
        return Registry.objects.get(name=registry)
    return registry


def grant(
    task: str,
    *,
    user=None,
    group=None,
    anonymous: bool = False,
    registry: Registry | str | None = None,
    restrict: bool = False,
) -> Privilege:
    """Grant (or with `restrict`, restrict) `task` to a user, group or Anonymous on one
    registry (object or name) or, without `registry`, on all."""
    from accounts.models import Privilege, Task

    return Privilege.objects.create(
        task=Task.objects.get(name=task),
        user=user,
        group=group,
        anonymous=anonymous,
        registry=_registry(registry),
        effect=Privilege.Effect.RESTRICT if restrict else Privilege.Effect.GRANT,
    )


def user_with(
    task: str | None = None,
    *,
    registry: Registry | str | None = None,
    username: str | None = None,
    restrict: bool = False,
):
    """A user (password PASSWORD) holding `task` on one registry or all; reused by name."""
    from django.contrib.auth import get_user_model

    users = get_user_model()
    username = username or f"user-{uuid.uuid4().hex[:8]}"
    user = users.objects.filter(username=username).first() or users.objects.create_user(
        username, password=PASSWORD
    )
    if task:
        grant(task, user=user, registry=registry, restrict=restrict)
    return user


def make_key(
    kind: str = "system",
    *,
    user=None,
    registries: Iterable[Registry | str] = (),
    permissions: Iterable[str] = (),
    areas: Iterable[str] = (),
    name: str | None = None,
    expires_at: dt.datetime | None = None,
) -> tuple[ApiKey, str]:
    """A key made the way the API Keys page makes it; returns (key, raw secret).

    Personal keys are made by their user, the others by the system principal; `registries`
    are Registry objects or names; `areas` limits a system key to those API areas.
    """
    from accounts.models import ApiKey
    from accounts.permissions import Principal
    from accounts.services import api_key_create

    personal = kind == ApiKey.Kind.PERSONAL and user is not None
    return api_key_create(
        name=name or f"key-{uuid.uuid4().hex[:6]}",
        kind=kind,
        user=user,
        actor=Principal(user=user) if personal else Principal.promoter(),
        registries=[_registry(r) for r in registries],
        permissions=permissions,
        areas=areas,
        expires_at=expires_at,
    )


def key_secret(kind: str = "system", *, feeds: Iterable[Registry | str] = (), **kwargs) -> str:
    """Only the raw secret of `make_key` (the API tests' shape: `feeds` are registries)."""
    return make_key(kind, registries=feeds, **kwargs)[1]


def expire(key: ApiKey) -> None:
    """Make `key` expired a minute ago."""
    from django.utils import timezone

    from accounts.models import ApiKey

    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
