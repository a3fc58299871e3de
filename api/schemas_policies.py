"""The API's shapes for policies before production: a registry's promotion policy, the
checklist a refused promotion answers with (409), approval requests, webhooks.

Declared once, as api.schemas is: they read requests, shape answers and are the OpenAPI
document's schemas. Rules (ranges, patterns, event names, who may) are the services'.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from api.schemas import ID_MAX, Body, Flag, Line, Out, Query, Text
from promoter.errors import DomainError, PolicyUnmet
from registries.models import (
    COMMENT_MAX,
    LABEL_PATTERN_MAX,
    LABEL_RULES_MAX,
    ApprovalRequest,
    PromotionPolicy,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
)
from registries.services.policies import RULES

EVENTS = tuple(e.value for e in WebhookEvent)


# --- the checklist (409) --------------------------------------------------------------------
class PolicyCheck(Out):
    """One rule of the target's policy and whether the image meets it."""

    rule: Literal[RULES]
    ok: bool
    message: str
    """What a person reads: `soaked 3 days`, `not signed`, `1 of 2 approvals`."""


class Checklist(Out):
    """The target registry's policy applied to one image."""

    target: str
    ok: bool
    approvals_required: int
    approvals: int
    """Distinct people who approved this digest for the target (never the requester)."""
    rules: list[PolicyCheck]
    unmet: list[Literal[RULES]]
    """The rules not met, in the order of `rules`."""


class PolicyRefusal(Out):
    """409: the promotion (or request) conflicts with the target's policy or with its state."""

    error: str
    """What went wrong and what to do."""
    policy: Checklist | None
    """The checklist, when the target's policy is what refused it; null otherwise."""

    @classmethod
    def of(cls, exc: DomainError) -> PolicyRefusal:
        checklist = getattr(exc, "checklist", None) if isinstance(exc, PolicyUnmet) else None
        return cls(
            error=exc.message,
            policy=Checklist.model_validate(checklist.as_json()) if checklist else None,
        )


# --- the policy ---------------------------------------------------------------------------
class LabelRule(Out):
    key: str
    """A label of every image, or an annotation of the manifest, that must be present."""
    pattern: str
    """A regular expression the whole value must match; empty: any value."""


class LabelRuleIn(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        strict=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )

    key: Line
    pattern: Line | None = Field(None, json_schema_extra={"maxLength": LABEL_PATTERN_MAX})


class Policy(Out):
    """A registry's promotion policy; every rule optional (0, false or empty: off)."""

    feed: str
    approvals_required: int
    """Approvals from distinct people holding Approve Promotions on the feed."""
    soak_seconds: int
    """How long the digest must have been in the source first."""
    require_signature: bool
    signature_identity: str | None
    """A key identity the signature must name."""
    required_labels: list[LabelRule]
    immutable_tags: bool
    """A tag that exists here moves only for holders of Overwrite Tags."""
    approval_ttl_seconds: int
    """Pending approval requests expire after this long."""

    @classmethod
    def of(cls, policy: PromotionPolicy) -> Policy:
        return cls(
            feed=policy.registry.name,
            approvals_required=policy.approvals_required,
            soak_seconds=policy.soak_seconds,
            require_signature=policy.require_signature,
            signature_identity=policy.signature_identity or None,
            required_labels=[LabelRule(**rule) for rule in policy.required_labels or []],
            immutable_tags=policy.immutable_tags,
            approval_ttl_seconds=policy.approval_ttl_seconds,
        )


class PolicyUpdate(Body):
    """Changes exactly the properties given; left out, a rule stays as it is."""

    approvals_required: int | None = Field(None, ge=0, le=20)
    soak_seconds: int | None = Field(None, ge=0)
    require_signature: bool | None = None
    signature_identity: Line | None = Field(None, json_schema_extra={"maxLength": 255})
    required_labels: list[LabelRuleIn] | None = Field(
        None, json_schema_extra={"maxItems": LABEL_RULES_MAX}
    )
    immutable_tags: bool | None = None
    approval_ttl_seconds: int | None = Field(None, ge=60)

    def values(self) -> dict[str, Any]:
        given = self.model_dump(exclude_none=True, exclude={"api_key"})
        if "required_labels" in given:
            given["required_labels"] = [
                {"key": r["key"], "pattern": r.get("pattern") or ""}
                for r in given["required_labels"]
            ]
        return given


# --- approvals ----------------------------------------------------------------------------
class Decision(Out):
    by: str
    approved: bool
    comment: str
    created: dt.datetime


class ApprovalRequestOut(Out):
    """A request to promote an image where the target's policy needs approvals."""

    id: int
    status: Literal[tuple(ApprovalRequest.Status.values)]
    from_feed: str
    to_feed: str
    repository: str
    version: str
    """The tag."""
    digest: str
    """The digest pinned when it was asked for; only it is promoted."""
    comments: str
    user: str
    """Who asked."""
    created: dt.datetime
    expires: dt.datetime
    decisions: list[Decision]
    promotion_id: int | None
    """The promotion started once approved."""
    error: str | None
    """Why an approved request could not start, or why it expired."""

    @classmethod
    def of(cls, request: ApprovalRequest) -> ApprovalRequestOut:
        return cls(
            id=request.pk,
            status=request.status,
            from_feed=request.source.name,
            to_feed=request.target.name,
            repository=request.repository,
            version=request.tag,
            digest=request.digest,
            comments=request.comment,
            user=request.actor,
            created=request.created_at,
            expires=request.expires_at,
            decisions=[
                Decision(
                    by=a.approver, approved=a.approved, comment=a.comment, created=a.created_at
                )
                for a in request.approvals.all()
            ],
            promotion_id=request.promotion_id,
            error=request.error or None,
        )


class ApprovalListQuery(Query):
    waiting: Flag = False
    """Only the requests waiting for the caller's decision (the inbox)."""


class DecisionIn(Body):
    approve: bool
    """true approves, false rejects."""
    comment: Text | None = Field(None, json_schema_extra={"maxLength": COMMENT_MAX})


class RequestId(Query):
    request_id: int = Field(ge=1, le=ID_MAX, alias="request_id")
    """The approval request's id."""


# --- webhooks -----------------------------------------------------------------------------
class WebhookOut(Out):
    id: int
    name: str
    url: str
    feed: str | None
    """The registry whose events it gets; null: every registry."""
    events: list[Literal[EVENTS]]
    active: bool
    created: dt.datetime

    @classmethod
    def of(cls, webhook: Webhook) -> WebhookOut:
        return cls(**cls._values(webhook))

    @staticmethod
    def _values(webhook: Webhook) -> dict[str, Any]:
        return {
            "id": webhook.pk,
            "name": webhook.name,
            "url": webhook.url,
            "feed": webhook.registry.name if webhook.registry_id else None,
            "events": list(webhook.events),
            "active": webhook.active,
            "created": webhook.created_at,
        }


class WebhookCreated(WebhookOut):
    secret: str
    """The signing secret. Shown this once; store it now."""

    @classmethod
    def of(cls, webhook: Webhook, secret: str) -> WebhookCreated:
        return cls(**cls._values(webhook), secret=secret)


class WebhookUpdate(Body):
    """Changes exactly the properties given."""

    name: Line | None = Field(None, json_schema_extra={"maxLength": 100})
    url: Line | None = Field(None, json_schema_extra={"maxLength": 2000})
    events: list[Line] | None = None
    active: bool | None = None
    secret: Line | None = Field(None, json_schema_extra={"minLength": 16, "maxLength": 200})
    """A new signing secret of your own (16 to 200 characters)."""

    def values(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True, exclude={"api_key", "secret", "feed"})


class WebhookCreate(WebhookUpdate):
    name: Line = Field(json_schema_extra={"maxLength": 100})
    url: Line = Field(json_schema_extra={"maxLength": 2000})
    events: list[Line]
    """Of promotion.succeeded, promotion.failed, promotion.rolled_back, approval.requested,
    approval.decided, push."""
    feed: Line | None = None
    """Only this registry's events (needs Manage Feed on it); left out: every registry
    (needs Administer)."""
    secret: Line | None = Field(None, json_schema_extra={"minLength": 16, "maxLength": 200})
    """A signing secret of your own; left out, one is generated and answered once."""


class WebhookDeliveryOut(Out):
    id: int
    webhook_id: int
    event: str
    event_id: str
    """The same for every webhook and redelivery of one event."""
    status: Literal[tuple(WebhookDelivery.Status.values)]
    attempts: int
    response_code: int | None
    duration_ms: int | None
    error: str | None
    created: dt.datetime
    finished: dt.datetime | None

    @classmethod
    def of(cls, delivery: WebhookDelivery) -> WebhookDeliveryOut:
        return cls(
            id=delivery.pk,
            webhook_id=delivery.webhook_id,
            event=delivery.event,
            event_id=delivery.event_id,
            status=delivery.status,
            attempts=delivery.attempts,
            response_code=delivery.response_code,
            duration_ms=delivery.duration_ms,
            error=delivery.error or None,
            created=delivery.created_at,
            finished=delivery.finished_at,
        )


class WebhookId(Query):
    webhook_id: int = Field(ge=1, le=ID_MAX, alias="webhook_id")
    """The webhook's id."""


class DeliveryId(Query):
    delivery_id: int = Field(ge=1, le=ID_MAX, alias="delivery_id")
    """The delivery's id."""


class WebhookDeleted(Out):
    deleted: int
    """The id of the webhook deleted."""
