"""Approval requests: ask, approve or reject, expire; the promotion runs once approved.

Where a target's policy needs approvals, Promote becomes "Request promotion": the digest is
pinned, every other rule must hold already, and people holding Approve Promotions on the
target (never the requester) decide. The approval that completes the count starts the
promotion through `promotion_request`, so the policy is checked once more, in its one place.
Requested, Approved, Rejected and Expired are History events.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import Permission
from accounts.permissions import Principal
from promoter.errors import Conflict, DomainError, Forbidden, Invalid, PolicyUnmet
from registries.models import COMMENT_MAX, Approval, ApprovalRequest, Registry
from registries.outbox import approval_data, webhook_event
from registries.records import history_record
from registries.services.policies import approvals_count, policy_evaluate, policy_of
from registries.services.promotions import promotion_prepare, promotion_request
from registries.tasks import webhooks_dispatch

log = logging.getLogger(__name__)
EXPIRY_ACTOR = "Promoter"


def _history(request: ApprovalRequest, action: str, actor, comment: str = "") -> None:
    history_record(
        action=action,
        registry=request.target,
        repository=request.repository,
        tag=request.tag,
        digest=request.digest,
        actor=actor,
        from_registry=request.source.name,
        to_registry=request.target.name,
        comment=comment,
    )


def _announce(event: str, request: ApprovalRequest, decision: dict | None = None) -> None:
    webhook_event(
        event=event,
        registry=request.target,
        also=request.source,
        data=approval_data(request, decision),
    )
    transaction.on_commit(webhooks_dispatch)


def _comment(comment: str) -> str:
    comment = (comment or "").strip()
    if len(comment) > COMMENT_MAX:
        raise Invalid(f"The comment is {len(comment)} characters; the limit is {COMMENT_MAX}.")
    return comment


def approval_request(
    *,
    source: Registry,
    repository: str,
    tag: str,
    target: Registry,
    actor: Principal,
    comment: str = "",
) -> ApprovalRequest:
    """Ask for approval to promote `tag` (its digest now) into `target`; every rule of the
    target's policy but approvals must hold already."""
    approvals_expire_due()
    order = promotion_prepare(
        source=source, repository=repository, tag=tag, target=target, actor=actor, comment=comment
    )
    if order.by_digest:
        raise Invalid("Ask for approval of a tag, not of a digest.")
    policy = policy_of(target)
    if policy is None or not policy.approvals_required:
        raise Invalid(f"{target.name} needs no approvals: promote the image instead.")
    checklist = policy_evaluate(
        source=source,
        target=target,
        repository=repository,
        tag=order.tag,
        digest=order.digest,
        actor=actor,
    )
    if checklist.ok:
        raise Conflict(f"{repository}:{order.tag} has its approvals already: promote it.")
    if not checklist.needs_approval:
        raise PolicyUnmet(checklist.summary(), checklist)
    with transaction.atomic():
        if ApprovalRequest.objects.filter(
            source=source,
            target=target,
            repository=repository,
            tag=order.tag,
            digest=order.digest,
            status=ApprovalRequest.Status.PENDING,
        ).exists():
            raise Conflict(
                f"Promoting {repository}:{order.tag} into {target.name} was requested already; "
                "it waits for approvals."
            )
        request = ApprovalRequest.objects.create(
            source=source,
            target=target,
            repository=repository,
            tag=order.tag,
            digest=order.digest,
            comment=order.comment,
            actor=actor.name,
            requested_by=actor.history_user,
            api_key=actor.api_key,
            expires_at=timezone.now() + timedelta(seconds=policy.approval_ttl_seconds),
        )
        _history(request, "requested", actor, order.comment)
        _announce("approval.requested", request)
    return request


def approval_decide(
    *, request: ApprovalRequest, actor: Principal, approve: bool, comment: str = ""
) -> ApprovalRequest:
    """Approve or reject a pending request. The approval that completes the count starts
    the promotion; a rejection ends the request."""
    comment = _comment(comment)
    if _expire_if_due(request):
        raise Conflict("This request expired before it was decided; ask again.")
    user = actor.history_user
    if user is None:
        raise Forbidden("Approvals come from people: sign in, or use a personal API key.")
    if not actor.has(Permission.APPROVE, request.target):
        raise Forbidden(
            f"You may not decide on promotions into {request.target.name}: that needs "
            f"Approve Promotions on {request.target.name}."
        )
    if request.requested_by_id == user.pk:
        raise Forbidden("You asked for this promotion; another person must approve it.")
    with transaction.atomic():
        locked = (
            ApprovalRequest.objects.select_for_update()
            .select_related("source", "target")
            .get(pk=request.pk)
        )
        if locked.status != ApprovalRequest.Status.PENDING:
            raise Conflict(f"This request is {locked.get_status_display().lower()} already.")
        if Approval.objects.filter(request=locked, user=user).exists():
            raise Conflict("You decided on this request already.")
        Approval.objects.create(
            request=locked, user=user, approver=actor.name, approved=approve, comment=comment
        )
        _history(locked, "approved" if approve else "rejected", actor, comment)
        if not approve:
            locked.status = ApprovalRequest.Status.REJECTED
            locked.decided_at = timezone.now()
            locked.save(update_fields=["status", "decided_at"])
        _announce(
            "approval.decided",
            locked,
            {"by": actor.name, "approved": approve, "comment": comment},
        )
    if approve:
        _start_if_approved(locked)
    locked.refresh_from_db()
    return locked


def _requester(request: ApprovalRequest) -> Principal | None:
    if request.requested_by_id is None and request.api_key_id is None:
        return None
    return Principal(user=request.requested_by, api_key=request.api_key)


def _start_if_approved(request: ApprovalRequest) -> None:
    """Once enough people approved, promote as the requester (the policy is checked again)."""
    policy = policy_of(request.target)
    required = policy.approvals_required if policy else 0
    requester = _requester(request)
    count = approvals_count(
        target=request.target,
        repository=request.repository,
        digest=request.digest,
        requester=requester,
    )
    if count < required:
        return
    now = timezone.now()
    claimed = ApprovalRequest.objects.filter(
        pk=request.pk, status=ApprovalRequest.Status.PENDING
    ).update(status=ApprovalRequest.Status.APPROVED, decided_at=now)
    if not claimed:
        return  # another approval, at the same moment, started it
    if requester is None:
        _block(request, "The person who asked no longer exists; ask again.")
        return
    try:
        promotion = promotion_request(
            source=request.source,
            repository=request.repository,
            tag=request.tag,
            target=request.target,
            actor=requester,
            comment=request.comment,
            expect_digest=request.digest,
        )
    except DomainError as exc:
        _block(request, exc.message)
        return
    ApprovalRequest.objects.filter(pk=request.pk).update(promotion=promotion)


def _block(request: ApprovalRequest, message: str) -> None:
    log.info("approved request %s could not start: %s", request.pk, message)
    ApprovalRequest.objects.filter(pk=request.pk).update(
        status=ApprovalRequest.Status.BLOCKED, error=message
    )


def _expire(request: ApprovalRequest, reason: str, actor) -> bool:
    with transaction.atomic():
        expired = ApprovalRequest.objects.filter(
            pk=request.pk, status=ApprovalRequest.Status.PENDING
        ).update(status=ApprovalRequest.Status.EXPIRED, decided_at=timezone.now(), error=reason)
        if expired:
            _history(request, "expired", actor, reason)
    return bool(expired)


def _expire_if_due(request: ApprovalRequest) -> bool:
    if request.status == ApprovalRequest.Status.PENDING and request.expires_at <= timezone.now():
        _expire(request, "no decision in time", EXPIRY_ACTOR)
        return True
    return False


def approvals_expire_due() -> int:
    """Expire pending requests past their time (recorded as Expired); returns how many."""
    due = ApprovalRequest.objects.filter(
        status=ApprovalRequest.Status.PENDING, expires_at__lte=timezone.now()
    ).select_related("source", "target")
    return sum(_expire(r, "no decision in time", EXPIRY_ACTOR) for r in due[:500])


def approvals_void(*, registry: Registry, repository: str, tag: str, digest: str, actor) -> int:
    """A new push of `tag` in `registry`: pending requests for another digest of that tag
    expire (what was approved is no longer what the tag is). Call in the push's transaction."""
    stale = (
        ApprovalRequest.objects.filter(
            source=registry,
            repository=repository,
            tag=tag,
            status=ApprovalRequest.Status.PENDING,
        )
        .exclude(digest=digest)
        .select_related("source", "target")
    )
    voided = 0
    for request in stale:
        expired = ApprovalRequest.objects.filter(
            pk=request.pk, status=ApprovalRequest.Status.PENDING
        ).update(
            status=ApprovalRequest.Status.EXPIRED,
            decided_at=timezone.now(),
            error=f"{tag} was pushed again (now {digest}).",
        )
        if expired:
            _history(request, "expired", actor, f"{tag} was pushed again (now {digest[:19]}…)")
            voided += 1
    return voided


def pushed_announce(*, registry: Registry, repository: str, tag: str, digest: str, actor) -> None:
    """A tag pushed (a notification): void approvals of its old digest, send `push`.
    Call inside the push's transaction."""
    approvals_void(registry=registry, repository=repository, tag=tag, digest=digest, actor=actor)
    name = actor.name if isinstance(actor, Principal) else str(actor)
    if webhook_event(
        event="push",
        registry=registry,
        data={
            "push": {
                "registry": registry.name,
                "repository": repository,
                "tag": tag,
                "digest": digest,
                "actor": name,
            }
        },
    ):
        transaction.on_commit(webhooks_dispatch)
