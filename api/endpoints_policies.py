"""Rows of the endpoint table (api.endpoints) for policies before production: a registry's
promotion policy, approval requests and webhooks."""

from __future__ import annotations

from api import views_policies as views
from api.http import Endpoint, Reply
from api.schemas import FeedName, KeyOnly, PromoteRequest
from api.schemas_policies import (
    ApprovalListQuery,
    ApprovalRequestOut,
    DecisionIn,
    DeliveryId,
    Policy,
    PolicyRefusal,
    PolicyUpdate,
    RequestId,
    WebhookCreate,
    WebhookCreated,
    WebhookDeleted,
    WebhookDeliveryOut,
    WebhookId,
    WebhookOut,
    WebhookUpdate,
)

POLICIES, APPROVALS, WEBHOOKS = "Policies", "Approvals", "Webhooks"
NO_FEED = "No such feed, or the caller may not see it."
NO_REQUEST = "No such approval request, or the caller may view neither of its feeds."
NO_WEBHOOK = "No such webhook, or the caller may not manage it."

# The 409 a refused promotion answers: the message and the target's checklist, as JSON (on
# ProGet's promote call too, whose other errors are plain text).
REFUSED = Reply(
    409,
    PolicyRefusal,
    "The target's policy is not met (`policy` holds the checklist: every rule, and which are "
    "unmet), or the request conflicts with the state of things (`policy` is null).",
)

POLICY_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        "/api/policies/get/{name}",
        views.policy_get,
        operation_id="getPolicy",
        tag=POLICIES,
        summary="Get a feed's promotion policy",
        description="What an image must satisfy before it is promoted into the feed. Needs "
        "Manage Feed on it.",
        path_params=FeedName,
        replies=(Reply(200, Policy, "The policy (all rules off when none was set)."),),
        errors={404: NO_FEED},
    ),
    Endpoint(
        "POST",
        "/api/policies/update/{name}",
        views.policy_set,
        operation_id="updatePolicy",
        tag=POLICIES,
        summary="Change a feed's promotion policy",
        description="Needs Manage Feed. Changes exactly the rules given.",
        path_params=FeedName,
        body=PolicyUpdate,
        body_required=True,
        replies=(Reply(200, Policy, "The policy as it is now."),),
        errors={404: NO_FEED},
    ),
    Endpoint(
        "POST",
        "/api/approvals/request",
        views.approval_ask,
        operation_id="requestApproval",
        tag=APPROVALS,
        summary="Ask for approval to promote an image",
        description="Where the target's policy needs approvals: pins the digest the tag has "
        "now and asks people holding Approve Promotions on the target. Every other rule of "
        "the policy must hold already. The promotion runs by itself once approved. The body "
        "is the promote call's.",
        body=PromoteRequest,
        body_required=True,
        forms=True,
        replies=(Reply(201, ApprovalRequestOut, "The request, pending."), REFUSED),
        errors={404: "Unknown feed, repository or tag."},
    ),
    Endpoint(
        "GET",
        "/api/approvals/list",
        views.approval_list,
        operation_id="listApprovals",
        tag=APPROVALS,
        summary="List approval requests",
        description="Requests the caller may view, newest first (50); `waiting=true`: those "
        "waiting for the caller's decision.",
        query=ApprovalListQuery,
        replies=(Reply(200, list[ApprovalRequestOut], "The requests."),),
    ),
    Endpoint(
        "GET",
        "/api/approvals/get/{request_id}",
        views.approval_get,
        operation_id="getApproval",
        tag=APPROVALS,
        summary="Get an approval request",
        path_params=RequestId,
        replies=(Reply(200, ApprovalRequestOut, "The request."),),
        errors={404: NO_REQUEST},
    ),
    Endpoint(
        "POST",
        "/api/approvals/decide/{request_id}",
        views.approval_decide_one,
        operation_id="decideApproval",
        tag=APPROVALS,
        summary="Approve or reject a request",
        description="Needs Approve Promotions on the target, and a person (a user, or a "
        "personal key): never the one who asked. The approval that completes the count "
        "starts the promotion (`promotionId`).",
        path_params=RequestId,
        body=DecisionIn,
        body_required=True,
        replies=(
            Reply(200, ApprovalRequestOut, "The request after the decision."),
            Reply(
                409,
                PolicyRefusal,
                "Decided already, by this person or for good (approved, rejected, expired).",
            ),
        ),
        errors={404: NO_REQUEST},
    ),
    Endpoint(
        "GET",
        "/api/webhooks/list",
        views.webhook_list,
        operation_id="listWebhooks",
        tag=WEBHOOKS,
        summary="List webhooks",
        description="Global webhooks for administrators, and those of the feeds the caller "
        "manages.",
        replies=(Reply(200, list[WebhookOut], "The webhooks."),),
    ),
    Endpoint(
        "POST",
        "/api/webhooks/create",
        views.webhook_add,
        operation_id="createWebhook",
        tag=WEBHOOKS,
        summary="Add a webhook",
        description="Of one feed (Manage Feed on it) or of every feed (Administer). The "
        "answer carries the signing secret, once: each delivery's "
        "`X-Promoter-Signature-256` is `sha256=` and the HMAC-SHA256 of the body under it.",
        body=WebhookCreate,
        body_required=True,
        replies=(Reply(201, WebhookCreated, "The webhook, with its secret."),),
        errors={404: NO_FEED},
    ),
    Endpoint(
        "POST",
        "/api/webhooks/update/{webhook_id}",
        views.webhook_change,
        operation_id="updateWebhook",
        tag=WEBHOOKS,
        summary="Change a webhook",
        path_params=WebhookId,
        body=WebhookUpdate,
        body_required=True,
        replies=(Reply(200, WebhookOut, "The webhook as it is now."),),
        errors={404: NO_WEBHOOK},
    ),
    Endpoint(
        "POST",
        "/api/webhooks/delete/{webhook_id}",
        views.webhook_remove,
        operation_id="deleteWebhook",
        tag=WEBHOOKS,
        summary="Delete a webhook",
        description="And its delivery log.",
        path_params=WebhookId,
        body=KeyOnly,
        replies=(Reply(200, WebhookDeleted, "Deleted."),),
        errors={404: NO_WEBHOOK},
    ),
    Endpoint(
        "GET",
        "/api/webhooks/deliveries/{webhook_id}",
        views.webhook_deliveries,
        operation_id="listWebhookDeliveries",
        tag=WEBHOOKS,
        summary="A webhook's delivery log",
        description="The newest 50 deliveries: status, response code, duration, tries.",
        path_params=WebhookId,
        replies=(Reply(200, list[WebhookDeliveryOut], "The deliveries."),),
        errors={404: NO_WEBHOOK},
    ),
    Endpoint(
        "POST",
        "/api/webhooks/test/{webhook_id}",
        views.webhook_test,
        operation_id="testWebhook",
        tag=WEBHOOKS,
        summary="Send a test event",
        description="A `test` event to this webhook only, delivered by the worker.",
        path_params=WebhookId,
        body=KeyOnly,
        replies=(Reply(202, WebhookDeliveryOut, "The delivery, queued."),),
        errors={404: NO_WEBHOOK},
    ),
    Endpoint(
        "POST",
        "/api/webhooks/redeliver/{delivery_id}",
        views.webhook_redeliver,
        operation_id="redeliverWebhook",
        tag=WEBHOOKS,
        summary="Redeliver",
        description="The same body again, as a new delivery; not while the delivery is "
        "still being tried (400).",
        path_params=DeliveryId,
        body=KeyOnly,
        replies=(Reply(202, WebhookDeliveryOut, "The new delivery, queued."),),
        errors={404: "No such delivery, or the caller may not manage its webhook."},
    ),
)
