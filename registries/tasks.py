"""Background tasks; they take ids, not objects, and hand over to the runner."""

import logging
import time
from datetime import timedelta

from django.tasks import task
from django.tasks.exceptions import InvalidTask
from django.utils import timezone

from registries.delivery import delivery_attempt
from registries.models import WebhookDelivery
from registries.runner import promotion_execute

log = logging.getLogger(__name__)
DISPATCH_BATCH = 500


@task(queue_name="promotions")
def promote(promotion_id: int) -> str:
    """Run one promotion in the worker."""
    status = promotion_execute(promotion_id=promotion_id).status
    webhooks_dispatch()  # promotion.succeeded / promotion.failed, recorded by the runner
    return status


@task(queue_name="webhooks")
def deliver_webhook(delivery_id: int) -> str:
    """One try at one webhook delivery; the next try is queued after the backoff."""
    outcome = delivery_attempt(delivery_id=delivery_id)
    if outcome.retry_in is not None:
        _enqueue_later(delivery_id, outcome.retry_in)
    return outcome.status


def _enqueue_later(delivery_id: int, seconds: float) -> None:
    try:
        deferred = deliver_webhook.using(run_after=timezone.now() + timedelta(seconds=seconds))
    except InvalidTask:
        deferred = None
    if deferred is not None:
        deferred.enqueue(delivery_id=delivery_id)
        return
    # A backend without deferred tasks (the immediate one of some tests): wait here.
    time.sleep(min(seconds, 5.0))
    deliver_webhook.enqueue(delivery_id=delivery_id)


def webhooks_dispatch() -> int:
    """Queue every recorded delivery not queued yet (each exactly once); returns how many."""
    queued = 0
    pending = WebhookDelivery.objects.filter(
        enqueued_at__isnull=True, status=WebhookDelivery.Status.PENDING
    ).order_by("pk")
    for pk in list(pending.values_list("pk", flat=True)[:DISPATCH_BATCH]):
        if pending.filter(pk=pk).update(enqueued_at=timezone.now()):
            try:
                deliver_webhook.enqueue(delivery_id=pk)
            except Exception:
                # Not queued after all: the next dispatch takes it.
                WebhookDelivery.objects.filter(pk=pk).update(enqueued_at=None)
                raise
            queued += 1
    return queued
