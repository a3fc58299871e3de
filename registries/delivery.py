"""The worker's side of webhooks: one attempt at one delivery, signed, with a deadline.

`registries.tasks.deliver_webhook` calls `delivery_attempt` and queues the next try after
the backoff it returns. A receiver is told the event in the body and the headers:

- `X-Promoter-Event`: the event (`promotion.succeeded`, …, `test`);
- `X-Promoter-Delivery`: the delivery's id (a redelivery has a new one, the same event id);
- `X-Promoter-Signature-256`: `sha256=` and the hex HMAC-SHA256 of the body, keyed with the
  webhook's secret.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from datetime import timedelta

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from registries.models import WebhookDelivery
from registries.secretbox import SecretUnreadable, unseal

log = logging.getLogger(__name__)

RESPONSE_EXCERPT = 1024  # bytes of the receiver's answer kept in the delivery log
USER_AGENT = "Promoter-Webhook/1"


def signature(secret: str, body: bytes) -> str:
    """The X-Promoter-Signature-256 value of `body` under `secret`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Outcome:
    status: str
    retry_in: float | None = None  # seconds until the next try; None: no more tries


def _backoff(attempts: int) -> float:
    return float(settings.PROMOTER_WEBHOOK_BACKOFF) * (2 ** max(0, attempts - 1))


def delivery_attempt(*, delivery_id: int) -> Outcome:
    """Send one delivery once; record status, response code, duration; say when to retry."""
    delivery = WebhookDelivery.objects.select_related("webhook").filter(pk=delivery_id).first()
    if delivery is None:
        return Outcome("gone")
    if delivery.status != WebhookDelivery.Status.PENDING:
        return Outcome(delivery.status)  # delivered (or given up) already: at most once more
    webhook = delivery.webhook
    body = delivery.body.encode()
    code, excerpt, error = None, "", ""
    started = time.monotonic()
    try:
        secret = unseal(webhook.secret_encrypted)
        timeout = float(settings.PROMOTER_WEBHOOK_TIMEOUT)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Promoter-Event": delivery.event,
            "X-Promoter-Delivery": str(delivery.pk),
            "X-Promoter-Signature-256": signature(secret, body),
        }
        # Redirects are not followed: the receiver is the URL configured, nowhere else.
        with requests.post(
            webhook.url,
            data=body,
            headers=headers,
            timeout=(min(timeout, 5.0), timeout),
            allow_redirects=False,
            stream=True,
        ) as response:
            code = response.status_code
            excerpt = _excerpt(response, started + timeout)
    except SecretUnreadable as exc:
        error = f"The webhook's secret cannot be read ({exc}); set a new secret."
    except requests.Timeout:
        error = f"No answer within {settings.PROMOTER_WEBHOOK_TIMEOUT:g} seconds."
    except requests.RequestException as exc:
        error = f"Could not deliver: {exc.__class__.__name__}: {str(exc)[:300]}"
    duration_ms = int((time.monotonic() - started) * 1000)
    ok = code is not None and 200 <= code < 300
    if code is not None and not ok:
        error = f"The receiver answered {code}."
    attempts = delivery.attempts + 1
    retry = (
        not ok
        and attempts < int(settings.PROMOTER_WEBHOOK_ATTEMPTS)
        and not error.startswith("The webhook's secret")
    )
    now = timezone.now()
    status = (
        WebhookDelivery.Status.SUCCEEDED
        if ok
        else (WebhookDelivery.Status.PENDING if retry else WebhookDelivery.Status.FAILED)
    )
    retry_in = _backoff(attempts) if retry else None
    with transaction.atomic():
        WebhookDelivery.objects.filter(
            pk=delivery.pk, status=WebhookDelivery.Status.PENDING
        ).update(
            status=status,
            attempts=attempts,
            response_code=code,
            response_excerpt=excerpt,
            error="" if ok else error,
            duration_ms=duration_ms,
            last_attempt_at=now,
            next_attempt_at=now + timedelta(seconds=retry_in) if retry_in else None,
            finished_at=None if retry else now,
        )
    if not ok:
        log.info("webhook delivery %s: %s (attempt %s)", delivery.pk, error, attempts)
    return Outcome(status, retry_in)


def _excerpt(response: requests.Response, deadline: float) -> str:
    """The start of the answer, read within the deadline (a trickling receiver is cut off)."""
    data = b""
    try:
        for chunk in response.iter_content(256):
            data += chunk
            if len(data) >= RESPONSE_EXCERPT or time.monotonic() > deadline:
                break
    except requests.RequestException:
        pass
    return data[:RESPONSE_EXCERPT].decode("utf-8", errors="replace")
