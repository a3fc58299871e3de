"""The receiver of the backing registry's notifications (pushes and deletes)."""

from __future__ import annotations

import hmac
import json

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from registries.connections import bundled_client
from registries.oci.inspect import describe_image
from registries.services.index import notification_apply


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
    except (ValueError, AttributeError):
        return JsonResponse({"error": 'body must be {"events": [...]}'}, status=400)
    client = bundled_client()
    outcomes = []
    for event in events:
        if not isinstance(event, dict):
            outcomes.append("invalid")
            continue
        outcomes.append(
            notification_apply(
                event=event, describe=lambda path, ref: describe_image(client, path, ref)
            )
        )
    return JsonResponse({"outcomes": outcomes})
