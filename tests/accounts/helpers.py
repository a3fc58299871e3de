"""Small builders for accounts tests: registries, keys, privileges."""

from __future__ import annotations

import datetime as dt
import uuid

from django.utils import timezone

from accounts.models import ApiKey, Privilege, Task
from accounts.permissions import Principal
from accounts.services import api_key_create
from registries.models import Registry


def pipeline() -> dict[str, Registry]:
    """devdocker (General) → rcdocker → proddocker (Validated), and the built-in tasks."""
    from registries.bootstrap import demo_ensure, tasks_ensure

    tasks_ensure()
    demo_ensure()
    return {r.name: r for r in Registry.objects.all()}


def grant(
    task: str,
    *,
    user=None,
    group=None,
    anonymous=False,
    registry: Registry | None = None,
    restrict: bool = False,
) -> Privilege:
    return Privilege.objects.create(
        task=Task.objects.get(name=task),
        user=user,
        group=group,
        anonymous=anonymous,
        registry=registry,
        effect=Privilege.Effect.RESTRICT if restrict else Privilege.Effect.GRANT,
    )


def make_key(
    kind: str,
    *,
    user=None,
    registries=(),
    permissions=(),
    areas=(),
    name: str | None = None,
    expires_at: dt.datetime | None = None,
) -> tuple[ApiKey, str]:
    """A key made the way the API Keys page makes it (by the system principal)."""
    actor = (
        Principal.promoter()
        if user is None or kind != ApiKey.Kind.PERSONAL
        else Principal(user=user)
    )
    return api_key_create(
        name=name or f"key-{uuid.uuid4().hex[:6]}",
        kind=kind,
        user=user,
        actor=actor,
        registries=registries,
        permissions=permissions,
        areas=areas,
        expires_at=expires_at,
    )


def expire(key: ApiKey) -> None:
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
