"""Registry (ProGet "feed") writes: create, update, delete, from plain values.

The Manage Feed page, the API and the Django admin all call these; each checks who may act
(Administer to create or delete, Manage Feed to change; Administer again to change where a
registry points or its credentials), validates with the model's own validators, and records
an audit event in the same transaction. (Not `durable`: the Django admin calls them inside
its own transaction.)

Stored passwords are write-only: nothing here returns or logs them, the audit event says
only that one changed, and a new endpoint drops the stored password (credentials meant for
one host are never sent to another).
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError, Q

from accounts.audit import audit_record
from accounts.models import Permission
from accounts.permissions import Principal
from promoter.errors import Forbidden, Invalid, NotFound
from registries.models import Promotion, Registry

log = logging.getLogger(__name__)

# What can be written through registry_create/registry_update (model field names).
WRITABLE = (
    "description",
    "usage_type",
    "promote_to",
    "require_comment",
    "active",
    "endpoint",
    "namespace",
    "username",
    "password",
)
# Where the portal connects and with which secret: Administer only. A Manage Feed holder
# could otherwise send the stored password to a listener of their own, or cut production
# off by pointing it at a dead address.
CONNECTION = ("endpoint", "namespace", "username", "password")
PASSWORD_MAX = 1024


def _promote_to(value: str | None, *, own_name: str) -> Registry | None:
    if not value:
        return None
    if value == own_name:
        raise Invalid("A registry cannot promote to itself.")
    target = Registry.objects.filter(name=value).first()
    if target is None:
        raise NotFound(f"There is no registry called {value!r} to promote to.")
    return target


def _validation_message(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        parts = []
        for field, errors in exc.message_dict.items():
            label = "" if field == "__all__" else f"{field}: "
            parts.append(label + " ".join(errors))
        return " ".join(parts)
    return " ".join(exc.messages)


def _save(registry: Registry, *, creating: bool) -> Registry:
    try:
        registry.full_clean(validate_unique=True)
    except ValidationError as exc:
        raise Invalid(_validation_message(exc)) from exc
    try:
        with transaction.atomic():
            registry.save(force_insert=creating)
    except IntegrityError as exc:  # a concurrent create of the same name
        raise Invalid(f"A registry called {registry.name!r} already exists.") from exc
    return registry


def _require(actor: Principal, permission: str, registry: Registry | None = None) -> None:
    if not actor.has(permission, registry):
        what = "create or delete registries" if registry is None else f"change {registry.name}"
        raise Forbidden(f"You may not {what}: that needs {Permission(permission).label}.")


def _snapshot(registry: Registry) -> dict[str, Any]:
    """The writable fields, for the audit log (which never stores the password)."""
    values = {field: getattr(registry, field) for field in WRITABLE}
    values["promote_to"] = registry.promote_to.name if registry.promote_to_id else ""
    return values


def _audit_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    # audit_record masks the password (accounts.audit.SECRET_FIELDS).
    return {k: (before[k], after[k]) for k in WRITABLE if before[k] != after[k]}


def _clean_values(values: dict[str, Any]) -> dict[str, Any]:
    values = {k: v for k, v in values.items() if k in WRITABLE and v is not None}
    if isinstance(values.get("endpoint"), str):
        values["endpoint"] = values["endpoint"].strip().rstrip("/")
    if len(values.get("password") or "") > PASSWORD_MAX:
        raise Invalid(f"The password is longer than {PASSWORD_MAX} characters.")
    return values


def _promote_to_name(value: Registry | str | None) -> str | None:
    """Adapters may pass the chosen registry (forms) or its name (the API)."""
    return value.name if isinstance(value, Registry) else value


def registry_create(*, name: str, actor: Principal, values: dict[str, Any]) -> Registry:
    """Create a registry; `values` holds model fields (promote_to as a registry or a name)."""
    _require(actor, Permission.ADMINISTER)
    values = _clean_values(values)
    promote_to = _promote_to(_promote_to_name(values.pop("promote_to", None)), own_name=name)
    if Registry.objects.filter(name=name).exists():
        raise Invalid(f"A registry called {name!r} already exists.")
    registry = Registry(name=name, promote_to=promote_to, **values)
    with transaction.atomic():
        _save(registry, creating=True)
        audit_record(
            actor=actor,
            action="registry.created",
            obj=registry,
            object_type="registry",
            changes={k: (None, v) for k, v in _snapshot(registry).items()},
        )
    log.info("registry %s created by %s", registry.name, actor.name)
    return registry


def registry_update(*, registry: Registry, actor: Principal, values: dict[str, Any]) -> Registry:
    """Change the given fields of a registry; None leaves a field as it is.

    An empty password also leaves the stored one as it is (forms never show it). Changing
    the endpoint, namespace, user name or password needs Administer; a new endpoint drops
    the stored password unless a new one comes with it.
    """
    _require(actor, Permission.MANAGE_FEED, registry)
    values = _clean_values(values)
    if values.get("password") == "":
        values.pop("password")
    if "usage_type" in values and values["usage_type"] != registry.usage_type:
        raise Invalid("The usage type is chosen when a registry is created; it cannot change.")
    values.pop("usage_type", None)
    registry = Registry.objects.select_related("promote_to").get(pk=registry.pk)
    changing = [f for f in CONNECTION if f in values and values[f] != getattr(registry, f)]
    if changing and not actor.has(Permission.ADMINISTER, registry):
        raise Forbidden(
            f"You may not change the {', '.join(changing)} of {registry.name}: where a "
            "registry points and its credentials need Administer."
        )
    if "endpoint" in changing and "password" not in values:
        values["password"] = ""  # never send the old host's password to the new one
    before = _snapshot(registry)
    if "promote_to" in values:
        registry.promote_to = _promote_to(
            _promote_to_name(values.pop("promote_to")), own_name=registry.name
        )
    for field, value in values.items():
        setattr(registry, field, value)
    with transaction.atomic():
        _save(registry, creating=False)
        changes = _audit_changes(before, _snapshot(registry))
        if changes:
            audit_record(
                actor=actor,
                action="registry.updated",
                obj=registry,
                object_type="registry",
                changes=changes,
            )
    log.info("registry %s changed by %s", registry.name, actor.name)
    return registry


def registry_delete(*, registry: Registry, actor: Principal) -> None:
    """Delete a registry from the portal (its index and privileges; not the registry's content)."""
    _require(actor, Permission.ADMINISTER)
    used = Promotion.objects.filter(Q(source=registry) | Q(target=registry)).exists()
    message = (
        f"{registry.name} has promotions in its History, which must stay; set it "
        "inactive instead of deleting it."
    )
    if used:
        raise Invalid(message)
    try:
        with transaction.atomic():
            audit_record(
                actor=actor, action="registry.deleted", obj=registry, object_type="registry"
            )
            registry.delete()
    except ProtectedError as exc:  # a promotion requested meanwhile
        raise Invalid(message) from exc
    log.info("registry %s deleted by %s", registry.name, actor.name)
