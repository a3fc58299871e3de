"""Reads for policies before production: a registry's policy, approval requests, webhooks.

The permission filter is applied here, as in registries.selectors; no network.
"""

from __future__ import annotations

from django.core.paginator import Page, Paginator
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import Permission
from accounts.permissions import Principal
from promoter.errors import Forbidden, NotFound
from registries.models import (
    ApprovalRequest,
    PromotionPolicy,
    Registry,
    Webhook,
    WebhookDelivery,
)

PAGE_SIZE = 50


def policy_get(*, registry: Registry) -> PromotionPolicy:
    """The registry's promotion policy; an unsaved empty one when none was set."""
    return PromotionPolicy.objects.filter(registry=registry).first() or PromotionPolicy(
        registry=registry
    )


# --- approvals ----------------------------------------------------------------------------
def approval_inbox(*, principal: Principal) -> QuerySet[ApprovalRequest]:
    """Pending requests the principal may decide: Approve Promotions on the target, not its
    own request, not decided by it yet, not expired."""
    user = principal.history_user
    if user is None:
        return ApprovalRequest.objects.none()
    targets = Registry.objects.restrict(principal, Permission.APPROVE)
    return (
        ApprovalRequest.objects.filter(
            status=ApprovalRequest.Status.PENDING,
            target__in=targets,
            expires_at__gt=timezone.now(),
        )
        .exclude(requested_by=user)
        .exclude(approvals__user=user)
        .select_related("source", "target")
        .prefetch_related("approvals")
        .order_by("created_at", "id")
    )


def approval_inbox_count(*, principal: Principal) -> int:
    """How many requests wait for the principal (the count in the top bar)."""
    if principal.history_user is None:
        return 0
    # Asked on every page: most of the time nothing is pending for anyone, which one indexed
    # read says before the permission filter and the joins of the inbox.
    pending = ApprovalRequest.objects.filter(
        status=ApprovalRequest.Status.PENDING, expires_at__gt=timezone.now()
    )
    if not pending.exists():
        return 0
    return approval_inbox(principal=principal).count()


def approval_list(*, principal: Principal, page: int | str = 1) -> Page:
    """Approval requests the principal may see (View on the source or the target), newest first."""
    visible = Registry.objects.restrict(principal, Permission.VIEW)
    requests = (
        ApprovalRequest.objects.filter(Q(source__in=visible) | Q(target__in=visible))
        .select_related("source", "target", "promotion")
        .prefetch_related("approvals")
        .order_by("-created_at", "-id")
    )
    return Paginator(requests, PAGE_SIZE).get_page(page)


def approval_get(*, principal: Principal, request_id: int) -> ApprovalRequest:
    """One approval request the principal may see, else NotFound."""
    found = (
        ApprovalRequest.objects.select_related("source", "target", "promotion")
        .filter(pk=request_id)
        .first()
    )
    if found is None or not (
        principal.has(Permission.VIEW, found.source) or principal.has(Permission.VIEW, found.target)
    ):
        raise NotFound(f"There is no approval request {request_id}.")
    return found


def approval_pending_for(
    *, source: Registry, target: Registry, repository: str, tag: str, digest: str
) -> ApprovalRequest | None:
    """The pending request for this image, if one was made."""
    return (
        ApprovalRequest.objects.filter(
            source=source,
            target=target,
            repository=repository,
            tag=tag,
            digest=digest,
            status=ApprovalRequest.Status.PENDING,
            expires_at__gt=timezone.now(),
        )
        .order_by("-created_at")
        .first()
    )


# --- webhooks -----------------------------------------------------------------------------
def _may_manage(principal: Principal, registry: Registry | None) -> bool:
    if registry is None:
        return principal.is_administrator()
    return principal.has(Permission.MANAGE_FEED, registry)


def webhook_list(*, principal: Principal) -> list[Webhook]:
    """Webhooks the principal may manage: global ones for administrators, and those of the
    registries it manages (Manage Feed)."""
    hooks = Webhook.objects.select_related("registry").order_by("name", "id")
    return [h for h in hooks if _may_manage(principal, h.registry)]


def webhook_get(*, principal: Principal, webhook_id: int) -> Webhook:
    """One webhook the principal may manage, else NotFound."""
    hook = Webhook.objects.select_related("registry").filter(pk=webhook_id).first()
    if hook is None or not _may_manage(principal, hook.registry):
        raise NotFound(f"There is no webhook {webhook_id}.")
    return hook


def webhook_deliveries(*, webhook: Webhook, page: int | str = 1) -> Page:
    """The delivery log of one webhook, newest first."""
    return Paginator(webhook.deliveries.order_by("-created_at", "-id"), PAGE_SIZE).get_page(page)


def webhook_delivery_get(*, principal: Principal, delivery_id: int) -> WebhookDelivery:
    """One delivery of a webhook the principal may manage, else NotFound."""
    delivery = (
        WebhookDelivery.objects.select_related("webhook__registry").filter(pk=delivery_id).first()
    )
    if delivery is None or not _may_manage(principal, delivery.webhook.registry):
        raise NotFound(f"There is no webhook delivery {delivery_id}.")
    return delivery


def webhook_may_create(*, principal: Principal, registry: Registry | None) -> None:
    """Forbidden unless the principal may add a webhook there (Administer for global ones)."""
    if not _may_manage(principal, registry):
        where = registry.name if registry else "all registries"
        need = "Manage Feed" if registry else "Administer"
        raise Forbidden(f"You may not manage webhooks of {where}: that needs {need}.")
