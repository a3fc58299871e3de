"""Webhook writes: create, update, delete, Send test, Redeliver.

Global webhooks (no registry) need Administer; a registry's webhooks need Manage Feed on it.
The signing secret is stored encrypted (registries.secretbox) and shown once, when set.
Events are recorded by registries.outbox and delivered by the worker (registries.delivery).
"""

from __future__ import annotations

import secrets
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction

from accounts.audit import audit_record
from accounts.permissions import Principal
from promoter.errors import Invalid
from registries.models import Registry, Tag, Webhook, WebhookDelivery, WebhookEvent
from registries.outbox import webhook_event, webhook_redeliver, webhook_test
from registries.secretbox import seal
from registries.selectors_policies import webhook_may_create
from registries.tasks import webhooks_dispatch

URL_MAX = 2000
SECRET_MIN = 16
SECRET_MAX = 200
EVENTS = [e.value for e in WebhookEvent]


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    if "name" in values:
        name = (values["name"] or "").strip() if isinstance(values["name"], str) else None
        if not name or len(name) > 100:
            raise Invalid("A webhook needs a name of at most 100 characters.")
        clean["name"] = name
    if "url" in values:
        url = values["url"].strip() if isinstance(values["url"], str) else ""
        try:
            if len(url) > URL_MAX:
                raise ValidationError("too long")
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError as exc:
            raise Invalid(f"{url[:100]!r} is not an http(s) URL a webhook can be sent to.") from exc
        clean["url"] = url
    if "events" in values:
        events = values["events"]
        if not isinstance(events, list | tuple) or not all(isinstance(e, str) for e in events):
            raise Invalid("Events must be a list of event names.")
        unknown = sorted(set(events) - set(EVENTS))
        if unknown:
            raise Invalid(f"Unknown events: {', '.join(unknown)}. Choose from {', '.join(EVENTS)}.")
        if not events:
            raise Invalid("Choose at least one event.")
        clean["events"] = [e for e in EVENTS if e in events]
    if "active" in values:
        if not isinstance(values["active"], bool):
            raise Invalid("active must be true or false.")
        clean["active"] = values["active"]
    return clean


def _secret(value: Any) -> str:
    if value is None or value == "":
        return secrets.token_urlsafe(32)
    if not isinstance(value, str) or not SECRET_MIN <= len(value) <= SECRET_MAX:
        raise Invalid(f"A webhook secret has {SECRET_MIN} to {SECRET_MAX} characters.")
    return value


def _snapshot(hook: Webhook) -> dict[str, Any]:
    return {
        "name": hook.name,
        "url": hook.url,
        "registry": hook.registry.name if hook.registry_id else "",
        "events": list(hook.events or []),
        "active": hook.active,
    }


def webhook_create(
    *,
    registry: Registry | None,
    actor: Principal,
    values: dict[str, Any],
    secret: str | None = None,
) -> tuple[Webhook, str]:
    """Add a webhook (of `registry`, or global); returns it and its secret (shown once)."""
    webhook_may_create(principal=actor, registry=registry)
    clean = _clean(values)
    for required in ("name", "url", "events"):
        if required not in clean:
            raise Invalid(f"A webhook needs {required}.")
    plain = _secret(secret)
    with transaction.atomic():
        hook = Webhook.objects.create(registry=registry, secret_encrypted=seal(plain), **clean)
        audit_record(
            actor=actor,
            action="webhook.created",
            obj=hook,
            object_type="webhook",
            changes={k: (None, v) for k, v in _snapshot(hook).items()},
        )
    return hook, plain


def webhook_update(
    *, webhook: Webhook, actor: Principal, values: dict[str, Any], new_secret: bool = False
) -> tuple[Webhook, str | None]:
    """Change a webhook; `new_secret` replaces its secret (returned once, else None)."""
    webhook_may_create(principal=actor, registry=webhook.registry)
    clean = _clean(values)
    plain = None
    with transaction.atomic():
        before = _snapshot(webhook)
        for name, value in clean.items():
            setattr(webhook, name, value)
        if new_secret:
            plain = _secret(values.get("secret"))
            webhook.secret_encrypted = seal(plain)
        webhook.save()
        after = _snapshot(webhook)
        changes = {k: (before[k], after[k]) for k in after if before[k] != after[k]}
        if new_secret:
            changes["secret"] = ("old", "new")
        if changes:
            audit_record(
                actor=actor,
                action="webhook.updated",
                obj=webhook,
                object_type="webhook",
                changes=changes,
            )
    return webhook, plain


def webhook_delete(*, webhook: Webhook, actor: Principal) -> None:
    """Remove a webhook and its delivery log."""
    webhook_may_create(principal=actor, registry=webhook.registry)
    with transaction.atomic():
        audit_record(actor=actor, action="webhook.deleted", obj=webhook, object_type="webhook")
        webhook.delete()


def webhook_send_test(*, webhook: Webhook, actor: Principal) -> WebhookDelivery:
    """Send Test: a `test` event to this webhook only, delivered by the worker."""
    webhook_may_create(principal=actor, registry=webhook.registry)
    with transaction.atomic():
        delivery = webhook_test(webhook=webhook, actor=actor.name)
        transaction.on_commit(webhooks_dispatch)
    return delivery


def webhook_redeliver_one(*, delivery: WebhookDelivery, actor: Principal) -> WebhookDelivery:
    """Redeliver: the same body again, as a new delivery (the log keeps both)."""
    webhook_may_create(principal=actor, registry=delivery.webhook.registry)
    if delivery.status == WebhookDelivery.Status.PENDING:
        raise Invalid("This delivery is still being tried; wait for it to finish.")
    with transaction.atomic():
        again = webhook_redeliver(delivery=delivery)
        transaction.on_commit(webhooks_dispatch)
    return again


def rolled_back_announce(
    *, registry: Registry, tag: Tag, digest_before: str, actor: Principal
) -> None:
    """`promotion.rolled_back` for a tag re-pointed at its earlier digest (in its transaction)."""
    if webhook_event(
        event="promotion.rolled_back",
        registry=registry,
        data={
            "rollBack": {
                "registry": registry.name,
                "repository": tag.repository.name,
                "tag": tag.name,
                "digest": tag.digest,
                "from": digest_before,
                "actor": actor.name,
            }
        },
    ):
        transaction.on_commit(webhooks_dispatch)
