"""The receiver of the backing registry's notifications (pushes and deletes)."""

from __future__ import annotations

import hmac
import json

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from registries.services.index import notifications_apply


@csrf_exempt
@require_POST
def registry_notifications(request: HttpRequest) -> JsonResponse:
    """Receiver of the backing registry's notifications (shared secret in Authorization)."""
    expected = f"Bearer {settings.PROMOTER_NOTIFY_SECRET}"
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return JsonResponse({"error": "unauthorized"}, status=401)
    try:
        envelope = json.loads(request.body)
        events = envelope.get("events", [])
        if not isinstance(events, list):
            raise ValueError("events is not a list")
    except (ValueError, AttributeError, RecursionError):  # deeply nested JSON included
        return JsonResponse({"error": 'body must be {"events": [...]}'}, status=400)
    outcomes = notifications_apply(events=events)
    if events and all(outcome == "refused" for outcome in outcomes):
        # Not the registry the index describes (see /readyz); the registry retries later.
        return JsonResponse({"error": "not the registry the index describes"}, status=503)
    return JsonResponse({"outcomes": outcomes})
