"""The endpoint table: every API endpoint declared once.

api.urls routes each path to api.http's dispatcher from this table, and api.openapi
generates the OpenAPI document (and the /api/docs page) from it and the models of
api.schemas. Errors every endpoint may give (400, 401, 403, 413, 415, 429) are added by the
document from the row (auth, body); `errors` names the others and the specific meanings.
"""

from __future__ import annotations

from api import views
from api.endpoints_policies import POLICY_ENDPOINTS, REFUSED
from api.http import Auth, Endpoint, Reply
from api.schemas import (
    ApiKey,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyId,
    ApiKeyIdQuery,
    AuditEvents,
    AuditQuery,
    Deleted,
    Feed,
    FeedCreate,
    FeedName,
    FeedUpdate,
    Health,
    KeyOnly,
    PromotedPackage,
    PromoteQuery,
    PromoteRequest,
    PromotionId,
    PromotionListQuery,
    PromotionStatus,
)
from api.schemas_batches import (
    BatchId,
    BatchPreview,
    BatchRequest,
    BatchStatus,
    DryRunQuery,
    HistoryPage,
    HistoryQuery,
    PromotionPage,
    PromotionPreview,
    SearchQuery,
)
from registries.models import BATCH_MAX_IMAGES

PROMOTIONS, FEEDS, API_KEYS, HEALTH = "Promotions", "Feeds", "API keys", "Health"
AUDIT = "Audit"
NO_FEED = "No such feed, or the caller may not see it."

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "POST",
        "/api/promotions/promote",
        views.promote,
        operation_id="promote",
        tag=PROMOTIONS,
        summary="Promote an image",
        description="ProGet's promote call. Pins the digest the tag has now and copies that "
        "image to the target registry, digest-exact. Waits for the promotion to finish (up "
        "to a configured limit) unless `async=true`. With `dryRun=true` it answers what it "
        "would do and starts nothing. Errors are plain text.",
        body=PromoteRequest,
        body_required=True,
        forms=True,
        query=PromoteQuery,
        replies=(
            Reply(
                200,
                PromotionStatus | PromotionPreview,
                "The promotion succeeded (a promotion's status, with Location); with "
                "`dryRun=true`, what it would do (a preview; nothing was started or written).",
                location=True,
            ),
            Reply(
                202,
                PromotionStatus,
                "Queued or still running (async, or the wait ran out); poll Location.",
                location=True,
            ),
            REFUSED,
        ),
        errors={
            400: "Invalid input (the message says which), a target the pipeline forbids, "
            "or a promotion that failed (and why).",
            403: "An unknown, expired or revoked key, a system key limited to other API "
            "areas, or a caller without Promote on the target.",
            404: "Unknown feed, repository or tag.",
        },
    ),
    Endpoint(
        "GET",
        "/api/promotions/list",
        views.promotion_list,
        operation_id="listPromotions",
        tag=PROMOTIONS,
        summary="List promoted images",
        description="Succeeded promotions the caller may view, grouped by image and version, "
        "oldest promotion first (the newest 1000 promotions are considered). An empty "
        "result is `[]`. Errors are plain text.",
        query=PromotionListQuery,
        replies=(Reply(200, list[PromotedPackage], "The promoted images."),),
        errors={400: "A parameter is repeated or holds control characters."},
    ),
    Endpoint(
        "GET",
        "/api/promotions/status/{promotion_id}",
        views.promotion_status,
        operation_id="promotionStatus",
        tag=PROMOTIONS,
        summary="Status and progress of a promotion",
        auth=Auth.OPTIONAL,
        path_params=PromotionId,
        replies=(Reply(200, PromotionStatus, "The promotion."),),
        errors={404: "No such promotion, or the caller may view neither of its registries."},
    ),
    Endpoint(
        "POST",
        "/api/promotions/batch",
        views.batch_create,
        operation_id="promoteBatch",
        tag=PROMOTIONS,
        summary="Promote many images at once",
        description="Several tags, whole repositories, tag patterns (`4.2.*`) or "
        "`repository:tag` pairs, from one feed to its target. Each image is its own "
        "promotion, with its own policy check and History event; one refused or failed "
        "undoes none of the others (see each item). Answers at once with the batch; poll "
        "Location. With `dryRun=true` it answers what each promotion would do and starts "
        f"nothing. At most {BATCH_MAX_IMAGES} images.",
        body=BatchRequest,
        body_required=True,
        query=DryRunQuery,
        replies=(
            Reply(202, BatchStatus, "The batch: each image requested or refused.", location=True),
            Reply(200, BatchPreview, "With `dryRun=true`: what would happen; nothing written."),
        ),
        errors={
            400: "Invalid input, a target the pipeline forbids, or more images than a batch holds.",
            403: "An unknown, expired or revoked key, or a caller without Promote on the target.",
            404: "Unknown feed, or nothing in the feed matches the selection.",
        },
    ),
    # Before the batch's own path: its {batch_id} would take `5/rerun-failed` too.
    Endpoint(
        "POST",
        "/api/promotions/batches/{batch_id}/rerun-failed",
        views.batch_rerun,
        operation_id="rerunBatch",
        tag=PROMOTIONS,
        summary="Run again the failed images of a batch",
        description="Failed promotions run again (same pinned digest; what is at the target "
        "already is skipped); refused images are requested again. Each on its own.",
        path_params=BatchId,
        body=KeyOnly,
        replies=(Reply(202, BatchStatus, "The batch as it is now.", location=True),),
        errors={
            400: "Nothing in the batch failed.",
            403: "A caller without Promote on the target.",
            404: "No such batch, or the caller may view neither of its registries.",
        },
    ),
    Endpoint(
        "GET",
        "/api/promotions/batches/{batch_id}",
        views.batch_status,
        operation_id="batchStatus",
        tag=PROMOTIONS,
        summary="Status and progress of a batch",
        description="n of m images finished, bytes, and each image's state.",
        auth=Auth.OPTIONAL,
        path_params=BatchId,
        replies=(Reply(200, BatchStatus, "The batch."),),
        errors={404: "No such batch, or the caller may view neither of its registries."},
    ),
    Endpoint(
        "GET",
        "/api/promotions/search",
        views.promotion_search,
        operation_id="searchPromotions",
        tag=PROMOTIONS,
        summary="List promotions of any status",
        description="Promotions the caller may view, newest first, filtered by source, "
        "target and status; pages follow `next`.",
        auth=Auth.OPTIONAL,
        query=SearchQuery,
        replies=(Reply(200, PromotionPage, "A page of promotions."),),
    ),
    Endpoint(
        "GET",
        "/api/promotions/history",
        views.image_history,
        operation_id="imageHistory",
        tag=PROMOTIONS,
        summary="History of a tag",
        description="Pushes, promotions and roll backs of the tag and of its image in every "
        "registry the caller may view, newest first; pages follow `next`.",
        auth=Auth.OPTIONAL,
        query=HistoryQuery,
        replies=(Reply(200, HistoryPage, "A page of History events."),),
        errors={404: "Unknown feed, repository or tag."},
    ),
    Endpoint(
        "GET",
        "/api/audit/events",
        views.audit_events,
        operation_id="listAuditEvents",
        tag=AUDIT,
        summary="Audit events: History and configuration changes",
        description="What the audit page (`/audit/`) shows, with the same filters: every "
        "push, promotion (failed ones too), roll back and delete in the registries the caller "
        "may view, and, for administrators, every configuration change. Newest first, 50 a "
        "page; pass `next` as `cursor` for older events.",
        query=AuditQuery,
        replies=(Reply(200, AuditEvents, "A page of events."),),
        errors={400: "A filter is not valid (the message says which)."},
    ),
    Endpoint(
        "GET",
        "/api/management/feeds/list",
        views.feed_list,
        operation_id="listFeeds",
        tag=FEEDS,
        summary="List feeds",
        description="The registries the caller may manage (Manage Feed).",
        replies=(Reply(200, list[Feed], "The feeds."),),
    ),
    Endpoint(
        "GET",
        "/api/management/feeds/get/{name}",
        views.feed_get,
        operation_id="getFeed",
        tag=FEEDS,
        summary="Get a feed",
        description="Needs Manage Feed on it.",
        path_params=FeedName,
        replies=(Reply(200, Feed, "The feed."),),
        errors={404: NO_FEED},
    ),
    Endpoint(
        "POST",
        "/api/management/feeds/create",
        views.feed_create,
        operation_id="createFeed",
        tag=FEEDS,
        summary="Create a feed",
        description="Needs Administer. `name` and `feedType` (`docker`) are required.",
        body=FeedCreate,
        body_required=True,
        replies=(Reply(201, Feed, "The new feed."),),
        errors={404: "The promoteTo feed does not exist."},
    ),
    Endpoint(
        "POST",
        "/api/management/feeds/update/{name}",
        views.feed_update,
        operation_id="updateFeed",
        tag=FEEDS,
        summary="Change a feed",
        description="Needs Manage Feed. Changes exactly the properties given: left out, a "
        "property stays as it is; null clears it where it can be empty. The name and the "
        "usage type never change.",
        path_params=FeedName,
        body=FeedUpdate,
        body_required=True,
        replies=(Reply(200, Feed, "The feed as it is now."),),
        errors={404: "No such feed (or promoteTo)."},
    ),
    *(
        Endpoint(
            method,
            "/api/management/feeds/delete/{name}",
            views.feed_delete,
            operation_id=operation_id,
            tag=FEEDS,
            summary="Delete a feed",
            description="Needs Administer. A feed with promotions in its History cannot be "
            "deleted (400); set it inactive instead. Images stay in the backing registry."
            + (" pgutil's way; POST works too." if method == "DELETE" else ""),
            path_params=FeedName,
            body=KeyOnly,
            replies=(Reply(200, Deleted, "Deleted."),),
            errors={404: NO_FEED},
        )
        for method, operation_id in (("POST", "deleteFeed"), ("DELETE", "removeFeed"))
    ),
    Endpoint(
        "POST",
        "/api/api-keys/create",
        views.api_key_create,
        operation_id="createApiKey",
        tag=API_KEYS,
        summary="Create an API key",
        description="Needs Administer; anyone signed in may create a personal key for "
        "themselves. The answer carries the key, once.",
        body=ApiKeyCreate,
        body_required=True,
        replies=(Reply(201, ApiKeyCreated, "The new key, with its secret."),),
        errors={404: "An unknown feed or user."},
    ),
    Endpoint(
        "GET",
        "/api/api-keys/list",
        views.api_key_list,
        operation_id="listApiKeys",
        tag=API_KEYS,
        summary="List API keys",
        description="All keys for administrators, a person's own personal keys otherwise. "
        "Never the secret.",
        replies=(Reply(200, list[ApiKey], "The keys."),),
    ),
    Endpoint(
        "POST",
        "/api/api-keys/delete",
        views.api_key_delete_by_query,
        operation_id="deleteApiKeyById",
        tag=API_KEYS,
        summary="Revoke an API key (ProGet's form)",
        description="pgutil's way: the key's id in `?id=`. Refused from now on; it stays "
        "listed with its revocation date.",
        query=ApiKeyIdQuery,
        body=KeyOnly,
        replies=(Reply(200, ApiKey, "The revoked key."),),
        errors={404: "No such key."},
    ),
    Endpoint(
        "POST",
        "/api/api-keys/delete/{api_key_id}",
        views.api_key_delete,
        operation_id="deleteApiKey",
        tag=API_KEYS,
        summary="Revoke an API key",
        description="Refused from now on; it stays listed with its revocation date.",
        path_params=ApiKeyId,
        body=KeyOnly,
        replies=(Reply(200, ApiKey, "The revoked key."),),
        errors={404: "No such key."},
    ),
    Endpoint(
        "GET",
        "/health",
        views.health,
        operation_id="health",
        tag=HEALTH,
        summary="Health of this node",
        description="ProGet's health object (at the site's root, as in ProGet): the database, "
        "the backing registry (as ProGet's service) and the version.",
        auth=Auth.NONE,
        replies=(
            Reply(200, Health, "Everything answers."),
            Reply(503, Health, "The database or the backing registry is down (which, and why)."),
        ),
    ),
    *POLICY_ENDPOINTS,
)


def paths() -> dict[str, list[Endpoint]]:
    """The endpoints by path, in the table's order."""
    grouped: dict[str, list[Endpoint]] = {}
    for endpoint in ENDPOINTS:
        grouped.setdefault(endpoint.path, []).append(endpoint)
    return grouped
