"""The API's views for policies before production: policies, approval requests, webhooks.

Rows of the endpoint table (api.endpoints_policies); as in api.views, each makes one service
or selector call and returns the answer's model.
"""

from __future__ import annotations

from accounts.models import Permission
from accounts.permissions import Principal
from api.http import Answer
from api.schemas import KeyOnly, PromoteRequest
from api.schemas_policies import (
    ApprovalListQuery,
    ApprovalRequestOut,
    DecisionIn,
    Policy,
    PolicyUpdate,
    WebhookCreate,
    WebhookCreated,
    WebhookDeleted,
    WebhookDeliveryOut,
    WebhookOut,
    WebhookUpdate,
)
from registries import selectors, selectors_policies
from registries.services.approvals import approval_decide, approval_request
from registries.services.policies import policy_update
from registries.services.webhooks import (
    webhook_create,
    webhook_delete,
    webhook_redeliver_one,
    webhook_send_test,
    webhook_update,
)


# --- policies ------------------------------------------------------------------------------
def policy_get(*, principal: Principal, name: str) -> Policy:
    registry = selectors.registry_get(
        principal=principal, name=name, permission=Permission.MANAGE_FEED
    )
    return Policy.of(selectors_policies.policy_get(registry=registry))


def policy_set(*, principal: Principal, body: PolicyUpdate, name: str) -> Policy:
    registry = selectors.registry_get(
        principal=principal, name=name, permission=Permission.MANAGE_FEED
    )
    return Policy.of(policy_update(registry=registry, actor=principal, values=body.values()))


# --- approvals -----------------------------------------------------------------------------
def approval_ask(*, principal: Principal, body: PromoteRequest) -> ApprovalRequestOut:
    """Ask for approval to promote an image (ProGet's promote body)."""
    source = selectors.registry_get(principal=principal, name=body.from_feed)
    target = selectors.promotion_target(source=source, name=body.to_feed)
    asked = approval_request(
        source=source,
        repository=body.repository,
        tag=body.version,
        target=target,
        actor=principal,
        comment=body.comment_text,
    )
    return ApprovalRequestOut.of(asked)


def approval_list(*, principal: Principal, query: ApprovalListQuery) -> list[ApprovalRequestOut]:
    if query.waiting:
        found = selectors_policies.approval_inbox(principal=principal)
    else:
        found = selectors_policies.approval_list(principal=principal).object_list
    return [ApprovalRequestOut.of(r) for r in found]


def approval_get(*, principal: Principal, request_id: int) -> ApprovalRequestOut:
    return ApprovalRequestOut.of(
        selectors_policies.approval_get(principal=principal, request_id=request_id)
    )


def approval_decide_one(
    *, principal: Principal, body: DecisionIn, request_id: int
) -> ApprovalRequestOut:
    found = selectors_policies.approval_get(principal=principal, request_id=request_id)
    decided = approval_decide(
        request=found, actor=principal, approve=body.approve, comment=body.comment or ""
    )
    return ApprovalRequestOut.of(decided)


# --- webhooks ------------------------------------------------------------------------------
def webhook_list(*, principal: Principal) -> list[WebhookOut]:
    return [WebhookOut.of(h) for h in selectors_policies.webhook_list(principal=principal)]


def webhook_add(*, principal: Principal, body: WebhookCreate) -> WebhookCreated:
    registry = None
    if body.feed:
        registry = selectors.registry_get(
            principal=principal, name=body.feed, permission=Permission.MANAGE_FEED
        )
    hook, secret = webhook_create(
        registry=registry, actor=principal, values=body.values(), secret=body.secret
    )
    return WebhookCreated.of(hook, secret)


def webhook_change(*, principal: Principal, body: WebhookUpdate, webhook_id: int) -> WebhookOut:
    hook = selectors_policies.webhook_get(principal=principal, webhook_id=webhook_id)
    values = body.values()
    if body.secret is not None:
        values["secret"] = body.secret
    hook, _ = webhook_update(
        webhook=hook, actor=principal, values=values, new_secret=body.secret is not None
    )
    return WebhookOut.of(hook)


def webhook_remove(*, principal: Principal, body: KeyOnly, webhook_id: int) -> WebhookDeleted:
    hook = selectors_policies.webhook_get(principal=principal, webhook_id=webhook_id)
    webhook_delete(webhook=hook, actor=principal)
    return WebhookDeleted(deleted=webhook_id)


def webhook_deliveries(*, principal: Principal, webhook_id: int) -> list[WebhookDeliveryOut]:
    hook = selectors_policies.webhook_get(principal=principal, webhook_id=webhook_id)
    page = selectors_policies.webhook_deliveries(webhook=hook)
    return [WebhookDeliveryOut.of(d) for d in page.object_list]


def webhook_test(*, principal: Principal, body: KeyOnly, webhook_id: int) -> Answer:
    hook = selectors_policies.webhook_get(principal=principal, webhook_id=webhook_id)
    delivery = webhook_send_test(webhook=hook, actor=principal)
    delivery.refresh_from_db()  # a backend that runs tasks at once has sent it already
    return Answer(WebhookDeliveryOut.of(delivery), 202)


def webhook_redeliver(*, principal: Principal, body: KeyOnly, delivery_id: int) -> Answer:
    delivery = selectors_policies.webhook_delivery_get(principal=principal, delivery_id=delivery_id)
    again = webhook_redeliver_one(delivery=delivery, actor=principal)
    again.refresh_from_db()
    return Answer(WebhookDeliveryOut.of(again), 202)
