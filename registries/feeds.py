"""Registry (ProGet "feed") management writes for the API: create, update, delete.

The pages use `registries.services.registry_save` with a ModelForm; these take plain values,
validate them with the model's own validators, and answer with typed errors a person can act
on. Permission checks are the callers' (Manage Feed, Administer), as for every service.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError, Q

from accounts.permissions import Principal
from registries.models import Promotion, Registry

log = logging.getLogger(__name__)

# What can be written through registry_create/registry_update (model field names).
WRITABLE = (
    "description",
    "usage_type",
    "promote_to",
    "active",
    "endpoint",
    "namespace",
    "username",
    "password",
)


class FeedError(Exception):
    """A registry write that cannot be done; `message` says why."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class FeedInvalid(FeedError):
    status = 400


class FeedNotFound(FeedError):
    status = 404


def _promote_to(value: str | None, *, own_name: str) -> Registry | None:
    if not value:
        return None
    if value == own_name:
        raise FeedInvalid("A registry cannot promote to itself.")
    target = Registry.objects.filter(name=value).first()
    if target is None:
        raise FeedNotFound(f"There is no registry called {value!r} to promote to.")
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
        raise FeedInvalid(_validation_message(exc)) from exc
    try:
        with transaction.atomic():
            registry.save(force_insert=creating)
    except IntegrityError as exc:  # a concurrent create of the same name
        raise FeedInvalid(f"A registry called {registry.name!r} already exists.") from exc
    return registry


def registry_create(*, name: str, actor: Principal, values: dict[str, Any]) -> Registry:
    """Create a registry; `values` holds model fields (promote_to as a registry name)."""
    values = {k: v for k, v in values.items() if k in WRITABLE and v is not None}
    promote_to = _promote_to(values.pop("promote_to", None), own_name=name)
    if Registry.objects.filter(name=name).exists():
        raise FeedInvalid(f"A registry called {name!r} already exists.")
    registry = Registry(name=name, promote_to=promote_to, **values)
    with transaction.atomic():
        _save(registry, creating=True)
        log.info("registry %s created by %s", registry.name, actor.name)
    return registry


def registry_update(*, registry: Registry, actor: Principal, values: dict[str, Any]) -> Registry:
    """Change the given fields of a registry; None leaves a field as it is."""
    values = {k: v for k, v in values.items() if k in WRITABLE and v is not None}
    if "usage_type" in values and values["usage_type"] != registry.usage_type:
        raise FeedInvalid("The usage type is chosen when a registry is created; it cannot change.")
    values.pop("usage_type", None)
    if "promote_to" in values:
        registry.promote_to = _promote_to(values.pop("promote_to"), own_name=registry.name)
    for field, value in values.items():
        setattr(registry, field, value)
    with transaction.atomic():
        _save(registry, creating=False)
        log.info("registry %s changed by %s", registry.name, actor.name)
    return registry


def registry_delete(*, registry: Registry, actor: Principal) -> None:
    """Delete a registry from the portal (its index and privileges; not the registry's content)."""
    used = Promotion.objects.filter(Q(source=registry) | Q(target=registry)).exists()
    message = (
        f"{registry.name} has promotions in its History, which must stay; set it "
        "inactive instead of deleting it."
    )
    if used:
        raise FeedInvalid(message)
    try:
        with transaction.atomic():
            registry.delete()
    except ProtectedError as exc:  # a promotion requested meanwhile
        raise FeedInvalid(message) from exc
    log.info("registry %s deleted by %s", registry.name, actor.name)
