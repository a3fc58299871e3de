"""The HTTP API's views: ProGet-compatible promotions, feed and API-key management, health.

Each is a row of the endpoint table (api.endpoints): by the time it runs, the dispatcher
(api.http) has read and validated its inputs (api.schemas) and found the caller. A view
makes one service or selector call and returns the answer's model.
"""

from __future__ import annotations

import functools
import tomllib

from django.conf import settings
from django.contrib.auth import get_user_model

from accounts import selectors as account_selectors
from accounts.models import Permission
from accounts.permissions import Principal
from accounts.services import api_key_create as accounts_api_key_create
from accounts.services import api_key_revoke as accounts_api_key_revoke
from api.http import Answer
from api.schemas import (
    APPLICATION_NAME,
    ApiKey,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyIdQuery,
    AuditEvent,
    AuditEvents,
    AuditQuery,
    Deleted,
    Feed,
    FeedCreate,
    FeedUpdate,
    Health,
    KeyOnly,
    PromotedPackage,
    PromoteQuery,
    PromoteRequest,
    PromotionListQuery,
    PromotionStatus,
    ReplicationStatus,
    one_of,
    status_url,
)
from api.schemas_batches import (
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
from promoter.errors import Invalid, NotFound
from registries import selectors, selectors_audit
from registries.models import Promotion
from registries.services import registries as feeds
from registries.services.batches import Selection, batch_request, batch_rerun_failed
from registries.services.health import health_checks
from registries.services.previews import promotion_preview
from registries.services.promotions import promotion_request


# --- promotions (ProGet) ----------------------------------------------------------------
def promote(*, principal: Principal, body: PromoteRequest, query: PromoteQuery) -> Answer:
    """Promote one image; waits for it (200/400) unless ?async=true (202 + Location);
    ?dryRun=true says what it would do (200) and does nothing."""
    source = selectors.registry_get(principal=principal, name=body.from_feed)
    target = selectors.promotion_target(source=source, name=body.to_feed)
    if query.dry_run:
        preview = promotion_preview(
            source=source,
            repository=body.repository,
            tag=body.version,
            target=target,
            actor=principal,
            comment=body.comment_text,
        )
        if preview.exception is not None:
            raise preview.exception  # refused as the promotion itself would be (404, 403, …)
        return Answer(PromotionPreview.of(preview), 200)
    promotion = promotion_request(
        source=source,
        repository=body.repository,
        tag=body.version,
        target=target,
        actor=principal,
        comment=body.comment_text,
    )
    if query.async_:
        promotion.refresh_from_db()
        return Answer(PromotionStatus.of(promotion), 202, status_url(promotion))
    promotion = selectors.promotion_wait(
        promotion_id=promotion.pk, timeout=settings.PROMOTER_API_WAIT_SECONDS
    )
    if promotion.status == Promotion.Status.FAILED:
        raise Invalid(f"The promotion failed: {promotion.error}")
    status = 200 if promotion.status == Promotion.Status.SUCCEEDED else 202
    return Answer(PromotionStatus.of(promotion), status, status_url(promotion))


def promotion_list(*, principal: Principal, query: PromotionListQuery) -> list[PromotedPackage]:
    """Succeeded promotions, grouped by image (packageName, groupName, version)."""
    where = selectors.PromotionFilter(
        from_feed=query.from_feed or None,
        to_feed=query.to_feed or None,
        group=one_of(query, "group", "group_name") or None,
        package=one_of(query, "package", "package_name") or None,
        version=query.version or None,
    )
    packages = selectors.promoted_packages(principal=principal, where=where)
    return [PromotedPackage.of(*package) for package in packages]


def promotion_status(*, principal: Principal, promotion_id: int) -> PromotionStatus:
    """Status and progress of one promotion."""
    promotion = selectors.promotion_get(principal=principal, promotion_id=promotion_id)
    return PromotionStatus.of(promotion)


# --- audit ------------------------------------------------------------------------------
def audit_events(*, principal: Principal, query: AuditQuery) -> AuditEvents:
    """The audit page's query: History and configuration changes, filtered, newest first."""
    where = selectors_audit.audit_filter_parse(query.filters())
    page = selectors_audit.audit_page(principal=principal, where=where, cursor=query.cursor or "")
    return AuditEvents(events=[AuditEvent.of(row) for row in page], next=page.next_cursor or None)


# --- many at once, dry runs, reads for scripts ------------------------------------------
def batch_create(*, principal: Principal, body: BatchRequest, query: DryRunQuery) -> Answer:
    """Promote many images (202 + Location: the batch), or ?dryRun=true: what it would do."""
    source = selectors.registry_get(principal=principal, name=body.from_feed)
    target = selectors.promotion_target(source=source, name=body.to_feed)
    selection = Selection.of(repositories=body.repositories, tags=body.tags, images=body.images)
    result = batch_request(
        source=source,
        target=target,
        selection=selection,
        comment=body.comment_text,
        actor=principal,
        dry_run=query.dry_run,
    )
    if query.dry_run:
        return Answer(BatchPreview.of(result), 200)
    return batch_answer(principal, result.pk, 202)


def batch_answer(principal: Principal, batch_id: int, status: int = 200) -> Answer:
    batch = selectors.batch_get(principal=principal, batch_id=batch_id)
    answer = BatchStatus.of(batch, selectors.batch_progress(batch))
    return Answer(answer, status, answer.status_url)


def batch_status(*, principal: Principal, batch_id: int) -> BatchStatus:
    """A batch: n of m images, bytes, each image's state."""
    batch = selectors.batch_get(principal=principal, batch_id=batch_id)
    return BatchStatus.of(batch, selectors.batch_progress(batch))


def batch_rerun(*, principal: Principal, body: KeyOnly, batch_id: int) -> Answer:
    """Ask again for the images of a batch that failed or were refused."""
    batch = selectors.batch_get(principal=principal, batch_id=batch_id)
    batch_rerun_failed(batch=batch, actor=principal)
    return batch_answer(principal, batch.pk, 202)


def promotion_search(*, principal: Principal, query: SearchQuery) -> PromotionPage:
    """Promotions of any status, filtered, newest first, by cursor."""
    page = selectors.promotion_search(
        principal=principal,
        from_feed=query.from_feed,
        to_feed=query.to_feed,
        status=query.status,
        cursor=query.cursor or "",
        size=query.limit,
    )
    return PromotionPage.of(page)


def image_history(*, principal: Principal, query: HistoryQuery) -> HistoryPage:
    """History of a tag and its image across the registries the caller may view."""
    registry = selectors.registry_get(principal=principal, name=query.feed)
    repository = selectors.repository_get(registry=registry, name=query.name)
    tag = selectors.tag_get(repository=repository, name=query.version)
    return HistoryPage.of(
        selectors.tag_history(principal=principal, tag=tag, cursor=query.cursor or "")
    )


# --- feeds (registries) -----------------------------------------------------------------
def feed_list(*, principal: Principal) -> list[Feed]:
    return [Feed.of(r) for r in selectors.registries_managed(principal=principal)]


def feed_get(*, principal: Principal, name: str) -> Feed:
    registry = selectors.registry_get(
        principal=principal, name=name, permission=Permission.MANAGE_FEED
    )
    return Feed.of(registry)


def feed_create(*, principal: Principal, body: FeedCreate) -> Feed:
    registry = feeds.registry_create(name=body.name, actor=principal, values=body.values())
    return Feed.of(registry)


def feed_update(*, principal: Principal, body: FeedUpdate, name: str) -> Feed:
    registry = selectors.registry_get(
        principal=principal, name=name, permission=Permission.MANAGE_FEED
    )
    if body.name is not None and body.name != registry.name:
        raise Invalid("A feed cannot be renamed; create a new one instead.")
    registry = feeds.registry_update(registry=registry, actor=principal, values=body.values())
    return Feed.of(registry)


def feed_delete(*, principal: Principal, body: KeyOnly, name: str) -> Deleted:
    registry = selectors.registry_get(
        principal=principal, name=name, permission=Permission.ADMINISTER
    )
    feeds.registry_delete(registry=registry, actor=principal)
    return Deleted(deleted=name)


# --- API keys ---------------------------------------------------------------------------
def api_key_create(*, principal: Principal, body: ApiKeyCreate) -> ApiKeyCreated:
    """Create a key; the answer carries the secret, once."""
    registries = [selectors.registry_get(principal=principal, name=n) for n in body.feed_names]
    user = None
    if body.user:
        user = get_user_model().objects.filter(username=body.user).first()
        if user is None:
            raise NotFound(f"There is no user called {body.user!r}.")
    key, secret = accounts_api_key_create(
        name=body.key_name,
        kind=body.kind,
        actor=principal,
        description=body.description or "",
        user=user,
        registries=registries,
        permissions=body.feed_permissions,
        areas=body.api_areas,
        expires_at=body.expiration,
    )
    return ApiKeyCreated.of(key, secret)


def api_key_list(*, principal: Principal) -> list[ApiKey]:
    """Keys without their secrets: all for administrators, a person's own otherwise."""
    return [ApiKey.of(k) for k in account_selectors.api_keys_for(principal=principal)]


def api_key_delete(*, principal: Principal, body: KeyOnly, api_key_id: int) -> ApiKey:
    """Revoke a key at once (it stays listed, with its revocation date)."""
    key = account_selectors.api_key_for(principal=principal, api_key_id=api_key_id)
    return ApiKey.of(accounts_api_key_revoke(api_key=key, actor=principal))


def api_key_delete_by_query(*, principal: Principal, body: KeyOnly, query: ApiKeyIdQuery):
    """ProGet's form of the same: POST /api/api-keys/delete?id=N."""
    return api_key_delete(principal=principal, body=body, api_key_id=query.id)


# --- health (ProGet) --------------------------------------------------------------------
@functools.cache
def version() -> str:
    with open(settings.BASE_DIR / "pyproject.toml", "rb") as file:
        return tomllib.load(file)["project"]["version"]


def health() -> Answer:
    """ProGet's health object; 503 when the database or the backing registry is down."""
    checks = health_checks()
    database = checks.pop("database")
    # ProGet's "service": the backing registry and its identity (see registries.services.health).
    registry = next((state for state in checks.values() if state != "ok"), "ok")
    answer = Health(
        application_name=APPLICATION_NAME,
        database_status="OK" if database == "ok" else "Error",
        database_status_details=None if database == "ok" else database,
        license_status="OK",
        license_status_detail=None,
        version_number=version(),
        release_number=version(),
        service_status="OK" if registry == "ok" else "Error",
        service_status_detail=None if registry == "ok" else f"The backing registry: {registry}",
        replication_status=ReplicationStatus(
            server_status=None, server_error=None, client_status=None, client_error=None
        ),
    )
    healthy = database == registry == "ok"
    return Answer(answer, 200 if healthy else 503)
