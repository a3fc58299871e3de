"""Webhook events, recorded as deliveries in the transaction of the write they announce.

An outbox: the event exists exactly when the write committed, and the worker delivers it
later (`registries.tasks.webhooks_dispatch` hands new deliveries to the queue), so a slow or
dead receiver never holds up the write. The payload is versioned (PAYLOAD_VERSION) and
documented in the README.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from registries.models import (
    WEBHOOK_TEST_EVENT,
    ApprovalRequest,
    Promotion,
    Registry,
    Webhook,
    WebhookDelivery,
)

PAYLOAD_VERSION = 1


def envelope(*, event: str, registry: Registry | None, data: dict[str, Any]) -> str:
    """The exact body every receiver of one event gets (signed as these bytes)."""
    document = {
        "version": PAYLOAD_VERSION,
        "id": str(uuid.uuid4()),
        "event": event,
        "occurredAt": timezone.now().isoformat().replace("+00:00", "Z"),
        "registry": registry.name if registry is not None else None,
        "portal": settings.PUBLIC_URL,
        "data": data,
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def webhook_event(
    *, event: str, registry: Registry | None, data: dict[str, Any], also: Registry | None = None
) -> list[int]:
    """Record one delivery of `event` per active webhook that wants it (global ones, and those
    of `registry` or `also`); returns their ids. Call inside the write's transaction."""
    scope = Q(registry__isnull=True)
    for reg in (registry, also):
        if reg is not None:
            scope |= Q(registry=reg)
    hooks = [h for h in Webhook.objects.filter(scope, active=True) if event in (h.events or [])]
    if not hooks:
        return []
    body = envelope(event=event, registry=registry, data=data)
    event_id = json.loads(body)["id"]
    created = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(webhook=hook, event=event, event_id=event_id, body=body) for hook in hooks
    )
    return [d.pk for d in created]


def webhook_test(*, webhook: Webhook, actor: str) -> WebhookDelivery:
    """Record a `test` delivery for one webhook (Send test)."""
    body = envelope(
        event=WEBHOOK_TEST_EVENT,
        registry=webhook.registry,
        data={"webhook": {"id": webhook.pk, "name": webhook.name}, "actor": actor},
    )
    return WebhookDelivery.objects.create(
        webhook=webhook, event=WEBHOOK_TEST_EVENT, event_id=json.loads(body)["id"], body=body
    )


def webhook_redeliver(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Record the same body again for the same webhook (a new delivery, same event id)."""
    return WebhookDelivery.objects.create(
        webhook=delivery.webhook,
        event=delivery.event,
        event_id=delivery.event_id,
        body=delivery.body,
        redelivery_of=delivery,
    )


# --- what the events say (see README, "Webhooks") ---------------------------------------------
def promotion_data(promotion: Promotion) -> dict[str, Any]:
    return {
        "promotion": {
            "id": promotion.pk,
            "source": promotion.source.name,
            "target": promotion.target.name,
            "repository": promotion.repository,
            "tag": promotion.tag,
            "digest": promotion.digest,
            "tags": list(promotion.moved_tags or []),
            "status": promotion.status,
            "actor": promotion.actor,
            "comment": promotion.comment,
            "error": promotion.error,
            "url": f"{settings.PUBLIC_URL}/promotions/{promotion.pk}/",
        }
    }


def approval_data(request: ApprovalRequest, decision: dict | None = None) -> dict[str, Any]:
    approvals = list(request.approvals.all())
    data: dict[str, Any] = {
        "request": {
            "id": request.pk,
            "source": request.source.name,
            "target": request.target.name,
            "repository": request.repository,
            "tag": request.tag,
            "digest": request.digest,
            "status": request.status,
            "requester": request.actor,
            "comment": request.comment,
            "approvals": sum(1 for a in approvals if a.approved),
            "url": f"{settings.PUBLIC_URL}/approvals/{request.pk}/",
        }
    }
    if decision is not None:
        data["decision"] = decision
    return data
