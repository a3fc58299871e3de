"""Reads: querysets and small dataclasses, with the permission filter applied here.

Every read of registries, tags, History and promotions, for pages, the API and the token
service. No HTTP and no network: what needs the registry is a service.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from accounts.models import Permission
from accounts.permissions import Principal
from promoter.errors import Forbidden, Invalid, NotFound
from registries.models import (
    REGISTRY_NAME_VALIDATOR,
    Batch,
    BatchItem,
    HistoryEvent,
    Image,
    Promotion,
    Registry,
    Repository,
    Tag,
    split_repository,
)
from registries.wakeup import PROMOTIONS, Waiter

PAGE_SIZE = 50
PROMOTION_LIST_LIMIT = 1000


HISTORY_PAGE_SIZE = 20


def registry_list(*, principal: Principal):
    """Registries the principal may view, with repository and tag counts (one query).

    The counts are subqueries over the repositories' kept counters (registries.records),
    never a join over every tag.
    """
    repositories = Repository.objects.filter(registry=OuterRef("pk")).order_by()
    per_registry = repositories.values("registry")
    return (
        Registry.objects.restrict(principal, Permission.VIEW)
        .select_related("promote_to")
        .annotate(
            repository_count=Coalesce(
                Subquery(per_registry.annotate(n=Count("pk")).values("n")), 0
            ),
            tag_count=Coalesce(Subquery(per_registry.annotate(n=Sum("tag_count")).values("n")), 0),
        )
    )


def registry_get(
    *,
    principal: Principal,
    name: str,
    permission: str = Permission.VIEW,
    registries: list[Registry] | None = None,
) -> Registry:
    """The registry called `name` (looked for in `registries` when the page has read them).

    NotFound when there is none or the principal may not see it (so names cannot be
    probed); Forbidden when it sees the registry but lacks `permission`.
    """
    registry = None
    if registries is not None:
        registry = next((r for r in registries if r.name == name), None)
    elif len(name) <= 64 and REGISTRY_NAME_VALIDATOR.regex.fullmatch(name):
        registry = Registry.objects.select_related("promote_to").filter(name=name).first()
    if registry is None or not (
        principal.has(Permission.VIEW, registry) or principal.has(permission, registry)
    ):
        raise NotFound(f"There is no registry called {name!r}.")
    if not principal.has(permission, registry):
        label = Permission(permission).label
        raise Forbidden(f"You may not do this in {registry.name}: that needs {label}.")
    return registry


def registries_managed(*, principal: Principal) -> QuerySet[Registry]:
    """Registries the principal may manage (Manage Feed)."""
    return Registry.objects.restrict(principal, Permission.MANAGE_FEED).select_related("promote_to")


def repository_page(*, registry: Registry, query: str = "", page: int | str = 1) -> Page:
    """One page of the registry's repositories, filtered by name, with tag counts and sizes.

    Counts and sizes are the repositories' kept counters: nothing is aggregated per request.
    """
    repositories = Repository.objects.filter(registry=registry)
    if query:
        repositories = repositories.filter(name__icontains=query.strip())
    return Paginator(repositories.order_by("name"), PAGE_SIZE).get_page(page)


def repository_get(*, registry: Registry, name: str) -> Repository:
    repository = Repository.objects.filter(registry=registry, name=name).first()
    if repository is None:
        raise NotFound(f"There is no repository {name!r} in {registry.name}.")
    repository.registry = registry  # the caller's, so reading it costs no query
    return repository


def tag_page(*, repository: Repository, query: str = "", page: int | str = 1) -> Page:
    tags = Tag.objects.filter(repository=repository)
    if query:
        tags = tags.filter(name__icontains=query.strip())
    return Paginator(tags.order_by("-pushed_at", "name"), PAGE_SIZE).get_page(page)


def untagged_images(*, repository: Repository, limit: int = PAGE_SIZE) -> list[Image]:
    """Images the repository holds by digest that no tag points at, newest first."""
    tagged = Tag.objects.filter(repository=repository).values("digest")
    return list(
        Image.objects.filter(repository=repository)
        .exclude(digest__in=tagged)
        .order_by("-pushed_at", "digest")[:limit]
    )


def tag_at(*, registry: Registry, repository: str, name: str) -> Tag:
    """The tag `repository:name` in the registry, with its repository, in one read; NotFound
    naming what is missing (the repository, or the tag in it)."""
    tag = (
        Tag.objects.filter(registry=registry, repository__name=repository, name=name)
        .select_related("repository")
        .first()
    )
    if tag is None:
        found = repository_get(registry=registry, name=repository)
        raise NotFound(f"There is no tag {name!r} in {registry.name}/{found.name}.")
    tag.repository.registry = registry  # the caller's, so reading it costs no query
    return tag


def tag_get(*, repository: Repository, name: str) -> Tag:
    tag = (
        Tag.objects.filter(repository=repository, name=name)
        .select_related("repository__registry")
        .first()
    )
    if tag is None:
        raise NotFound(f"There is no tag {name!r} in {repository.registry.name}/{repository.name}.")
    return tag


def _visible_names(principal: Principal) -> list[str]:
    return list(
        Registry.objects.restrict(principal, Permission.VIEW).values_list("name", flat=True)
    )


def image_history(
    *, principal: Principal, repository: str, digest: str, cursor: str = ""
) -> KeysetPage:
    """The trail of one image across registries (same repository and digest), newest first."""
    visible = _visible_names(principal)
    events = HistoryEvent.objects.filter(repository=repository, digest=digest).filter(
        Q(registry__in=visible) | Q(to_registry__in=visible)
    )
    return keyset_page([events], cursor=cursor, size=HISTORY_PAGE_SIZE)


def tag_history(*, principal: Principal, tag: Tag, cursor: str = "") -> KeysetPage:
    """History of the tag page: events of this image, and of this tag in this registry.

    Two ordered, limited reads (one per index: this tag in this registry; this digest in
    the repository) merged here, so a tag with 25 events inside a repository with 300,000
    costs what a tag alone costs; pages follow a cursor, never an OFFSET or a COUNT.
    """
    visible = _visible_names(principal)
    registry = tag.repository.registry.name
    seen = Q(registry__in=visible) | Q(to_registry__in=visible)
    of_tag = HistoryEvent.objects.filter(repository=tag.repository.name, registry=registry)
    of_tag = of_tag.filter(tag=tag.name).filter(seen)
    of_image = HistoryEvent.objects.filter(repository=tag.repository.name, digest=tag.digest)
    return keyset_page([of_tag, of_image.filter(seen)], cursor=cursor, size=HISTORY_PAGE_SIZE)


def promotions_for_registry(*, registry: Registry, limit: int = 10) -> list[Promotion]:
    """Recent promotions into and out of a registry (two index reads, merged)."""
    out = Promotion.objects.filter(source=registry).order_by("-created_at", "-id")[:limit]
    into = Promotion.objects.filter(target=registry).order_by("-created_at", "-id")[:limit]
    merged = {p.pk: p for p in [*out, *into]}.values()
    newest = sorted(merged, key=lambda p: (p.created_at, p.pk), reverse=True)[:limit]
    _attach_registries(newest, {r.pk: r for r in Registry.objects.all()})
    return newest


def promotion_list(*, principal: Principal, cursor: str = "") -> KeysetPage:
    """Promotions the principal may see (View on source or target), newest first, by cursor."""
    registries = {r.pk: r for r in Registry.objects.all()}
    visible = [pk for pk, r in registries.items() if principal.has(Permission.VIEW, r)]
    promotions = Promotion.objects.all()
    if len(visible) < len(registries):
        promotions = promotions.filter(Q(source_id__in=visible) | Q(target_id__in=visible))
    page = keyset_page([promotions], cursor=cursor, size=PAGE_SIZE)
    _attach_registries(page.object_list, registries)
    return page


def _attach_registries(promotions, registries: dict[int, Registry]) -> None:
    # A handful of registries serve every row: attach them instead of joining per row.
    for promotion in promotions:
        promotion.source = registries[promotion.source_id]
        promotion.target = registries[promotion.target_id]


def promotion_get(*, principal: Principal, promotion_id: int) -> Promotion:
    """One promotion the principal may see (View on its source or target), else NotFound."""
    promotion = Promotion.objects.select_related("source", "target").filter(pk=promotion_id).first()
    if promotion is None or not (
        principal.has(Permission.VIEW, promotion.source)
        or principal.has(Permission.VIEW, promotion.target)
    ):
        raise NotFound(f"There is no promotion {promotion_id}.")
    return promotion


@dataclass(frozen=True)
class PromotionFilter:
    from_feed: str | None = None
    to_feed: str | None = None
    group: str | None = None
    package: str | None = None
    version: str | None = None


def promoted_packages(
    *, principal: Principal, where: PromotionFilter
) -> list[tuple[str, str, list[PromotedRow]]]:
    """Succeeded promotions the caller may see, grouped by (repository, tag), oldest first.

    A promotion is visible with View on its source or its target. At most the newest
    PROMOTION_LIST_LIMIT promotions are considered.
    """
    registries = {r.pk: r for r in Registry.objects.all()}
    by_name = {r.name: r.pk for r in registries.values()}
    visible = [pk for pk, r in registries.items() if principal.has(Permission.VIEW, r)]
    promotions = Promotion.objects.filter(status=Promotion.Status.SUCCEEDED)
    if len(visible) < len(registries):
        promotions = promotions.filter(Q(source_id__in=visible) | Q(target_id__in=visible))
    if where.from_feed:
        promotions = promotions.filter(source_id=by_name.get(where.from_feed, 0))
    if where.to_feed:
        promotions = promotions.filter(target_id=by_name.get(where.to_feed, 0))
    group = (where.group or "").strip("/")
    if where.package and group:
        promotions = promotions.filter(repository=f"{group}/{where.package}")
    elif where.package:
        # ProGet's package is the last part of the repository, or its tail ("team/app").
        package_group, package = split_repository(where.package)
        promotions = promotions.filter(package_name=package)
        if package_group:
            promotions = promotions.filter(
                Q(group_name=package_group) | Q(group_name__endswith="/" + package_group)
            )
    elif group:
        promotions = promotions.filter(Q(group_name=group) | _nested_groups(group))
    if where.version:
        field_name = "digest" if where.version.startswith("sha256:") else "tag"
        promotions = promotions.filter(**{field_name: where.version})
    # Only the columns the answer shows, as plain rows (building up to 1,000 model instances
    # was most of this list's time); the registries come from the dict above.
    rows = promotions.order_by("-created_at", "-id").values_list(
        "id",
        "source_id",
        "target_id",
        "repository",
        "tag",
        "digest",
        "actor",
        "comment",
        "created_at",
        "finished_at",
    )[:PROMOTION_LIST_LIMIT]
    newest = [
        PromotedRow(pk, registries[src], registries[dst], *rest) for pk, src, dst, *rest in rows
    ]
    grouped: dict[tuple[str, str], list[PromotedRow]] = {}
    for promotion in reversed(newest):
        grouped.setdefault((promotion.repository, promotion.tag), []).append(promotion)
    return [(repo, tag, items) for (repo, tag), items in sorted(grouped.items())]


def _nested_groups(group: str) -> Q:
    """Groups inside `group` ("team" → "team/tools"), as a condition an index can serve."""
    if connection.vendor == "sqlite":
        # SQLite's LIKE is case-insensitive and never uses the index; on its binary
        # collation the names starting with "team/" are exactly those in ["team/", "team0").
        return Q(group_name__gte=group + "/", group_name__lt=group + "0")
    # PostgreSQL: Django gives an indexed CharField a pattern-ops index for LIKE 'team/%'.
    return Q(group_name__startswith=group + "/")


@dataclass(frozen=True, slots=True)
class PromotedRow:
    """A succeeded promotion as the API's list shows it: only the columns it serializes."""

    id: int
    source: Registry
    target: Registry
    repository: str
    tag: str
    digest: str
    actor: str
    comment: str
    created_at: dt.datetime
    finished_at: dt.datetime | None

    @property
    def pk(self) -> int:
        return self.id


_waiting = 0  # synchronous promotion waits in progress in this process
_waiting_lock = threading.Lock()


@contextmanager
def _wait_slot() -> Iterator[bool]:
    """One of PROMOTER_API_MAX_WAITS places to wait in; False when all are taken."""
    global _waiting
    with _waiting_lock:
        granted = _waiting < settings.PROMOTER_API_MAX_WAITS
        if granted:
            _waiting += 1
    try:
        yield granted
    finally:
        if granted:
            with _waiting_lock:
                _waiting -= 1


def promotion_wait(*, promotion_id: int, timeout: float) -> Promotion:
    """The promotion once it has finished, or as it is after `timeout` seconds (polls the DB).

    Each wait holds a web thread, so at most PROMOTER_API_MAX_WAITS wait at once per
    process; beyond that the promotion is returned as it is now (unfinished: the API answers
    202 with its status URL), and health checks, tokens and pages keep their threads.
    """
    with _wait_slot() as granted:
        return _promotion_wait(promotion_id, timeout if granted else 0.0)


def _promotion_wait(promotion_id: int, timeout: float) -> Promotion:
    """Woken by the worker's notification when the promotion finishes (registries.wakeup),
    so the answer follows the finish at once; it still looks every second, in case a
    notification was lost."""
    deadline = time.monotonic() + max(0.0, timeout)
    waiter = Waiter(PROMOTIONS)
    waiter.listen()  # before the first look, so a finish in between is not missed
    try:
        while True:
            promotion = Promotion.objects.select_related("source", "target").get(pk=promotion_id)
            remaining = deadline - time.monotonic()
            if promotion.is_finished or remaining <= 0:
                return promotion
            waiter.wait(min(remaining, 1.0), payload=str(promotion_id))
    finally:
        waiter.close()


def promotion_targets(*, source: Registry, principal: Principal) -> list[Registry]:
    """Where the principal may promote from `source`: its Promote To target, or any other.

    The one answer to "which target may I promote to", for pages, the API and the CLI.
    """
    if source.promote_to_id:
        candidates = [source.promote_to]
    else:
        candidates = list(Registry.objects.filter(active=True).exclude(pk=source.pk))
    return [t for t in candidates if t.active and principal.can_promote(source, t)]


def promotion_target(*, source: Registry, name: str | None) -> Registry:
    """The target a request names, or the source's Promote To registry when it names none."""
    if not name:
        if source.promote_to_id is None:
            raise Invalid(f"Name a target registry: {source.name} has no Promote To registry.")
        return source.promote_to
    target = None
    if len(name) <= 64 and REGISTRY_NAME_VALIDATOR.regex.fullmatch(name):
        target = Registry.objects.filter(name=name).first()
    if target is None:
        raise NotFound(f"There is no registry called {name!r}.")
    return target


def registry_for_path(path: str) -> tuple[Registry, str] | None:
    """The bundled registry and repository a backing path like `devdocker/team/api` belongs to."""
    head, _, rest = path.partition("/")
    if not rest:
        return None
    registry = Registry.objects.filter(name=head, endpoint="").first()
    return (registry, rest) if registry else None


# --- keyset (cursor) pages -------------------------------------------------------------

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# "b<microseconds>.<id>": rows before (older than) that row; "a…": rows after (newer).
_CURSOR = re.compile(r"^([ab])(\d{1,18})\.(\d{1,18})$")  # ids within a bigint


@dataclass
class KeysetPage:
    """One page of rows in (created_at, id) order, newest first, with cursors to its sides.

    A cursor names the row a page starts after, so a page link stays valid and cheap at
    any depth: `b…` reads older rows than it, `a…` newer ones. Rows need created_at and pk.
    """

    object_list: list
    next_cursor: str = ""  # the older page; "" on the last page
    previous_cursor: str = ""  # the newer page; "" on the first page
    keyset: bool = field(default=True, init=False)

    def __iter__(self):
        return iter(self.object_list)

    def __len__(self) -> int:
        return len(self.object_list)

    def has_next(self) -> bool:
        return bool(self.next_cursor)

    def has_previous(self) -> bool:
        return bool(self.previous_cursor)

    def has_other_pages(self) -> bool:
        return self.has_next() or self.has_previous()


def cursor_for(row, direction: str = "b") -> str:
    """The cursor of the page that starts after `row` (`b` older, `a` newer)."""
    micros = (row.created_at - _EPOCH) // dt.timedelta(microseconds=1)
    return f"{direction}{micros}.{row.pk}"


def _cursor_parse(cursor: str) -> tuple[str, dt.datetime, int] | None:
    match = _CURSOR.match(cursor or "")
    if not match:
        return None
    direction, micros, pk = match.group(1), int(match.group(2)), int(match.group(3))
    try:
        return direction, _EPOCH + dt.timedelta(microseconds=micros), pk
    except OverflowError:
        return None


def keyset_page(branches: list[QuerySet], *, cursor: str = "", size: int) -> KeysetPage:
    """A page of the union of `branches`, newest first, starting after `cursor`.

    Each branch is read ordered and limited (size + 1 rows: one to know there is more),
    so every branch walks its own index; the union is merged here. An unreadable cursor
    reads the first page, as a page number past the end does.
    """
    parsed = _cursor_parse(cursor)
    if parsed is None:
        rows = _merged(branches, None, "b", size + 1)
        more = len(rows) > size
        rows = rows[:size]
        return KeysetPage(rows, next_cursor=cursor_for(rows[-1]) if more else "")
    direction, at, pk = parsed
    rows = _merged(branches, (at, pk), direction, size + 1)
    more = len(rows) > size
    rows = rows[:size]
    if not rows:  # a cursor past the oldest row: show the first page
        return keyset_page(branches, size=size)
    if direction == "b":
        return KeysetPage(
            rows,
            next_cursor=cursor_for(rows[-1]) if more else "",
            previous_cursor=cursor_for(rows[0], "a"),
        )
    if not more:  # reached the newest rows: that is the first page
        return keyset_page(branches, size=size)
    rows.reverse()
    return KeysetPage(
        rows, next_cursor=cursor_for(rows[-1]), previous_cursor=cursor_for(rows[0], "a")
    )


def _merged(branches: list[QuerySet], after, direction: str, limit: int) -> list:
    older = direction == "b"
    order = ("-created_at", "-id") if older else ("created_at", "id")
    found: dict[int, object] = {}
    for branch in branches:
        if after is not None:
            at, pk = after
            if older:
                # The plain bound lets the index range start at the cursor.
                branch = branch.filter(created_at__lte=at).filter(
                    Q(created_at__lt=at) | Q(created_at=at, pk__lt=pk)
                )
            else:
                branch = branch.filter(created_at__gte=at).filter(
                    Q(created_at__gt=at) | Q(created_at=at, pk__gt=pk)
                )
        for row in branch.order_by(*order)[:limit]:
            found[row.pk] = row
    return sorted(found.values(), key=lambda r: (r.created_at, r.pk), reverse=older)[:limit]


# --- batches and previews ------------------------------------------------------------------


@dataclass(frozen=True)
class TagNow:
    """What a tag points at now (the index), and who put it there when (History)."""

    digest: str
    actor: str
    at: dt.datetime | None


def tag_now(*, registry: Registry, repository: str, tag: str) -> TagNow | None:
    """The tag in `registry` as the index knows it, None when it does not exist there."""
    found = Tag.objects.filter(
        repository__registry=registry, repository__name=repository, name=tag
    ).first()
    if found is None:
        return None
    event = (
        HistoryEvent.objects.filter(
            registry=registry.name,
            repository=repository,
            tag=tag,
            digest=found.digest,
            action__in=[
                HistoryEvent.Action.PUSHED,
                HistoryEvent.Action.PROMOTED,
                HistoryEvent.Action.ROLLED_BACK,
            ],
        )
        .order_by("-created_at", "-id")
        .first()
    )
    if event is None:
        return TagNow(found.digest, "", found.pushed_at)
    return TagNow(found.digest, event.actor, event.created_at)


# Tags that travel with their image (cosign's .sig/.att/.sbom, the referrers tag schema's
# sha256-<hex>): a whole repository or a pattern never selects them on their own.
_REFERRER_TAG = re.compile(r"^sha256-[0-9a-f]{64}(\.(sig|att|sbom))?$")


def selection_expand(
    *, source: Registry, repositories: list[str], tags: list[str], limit: int
) -> list[tuple[str, str]]:
    """(repository, tag) of the source's index matching the repository names or patterns and
    the tag names or patterns (fnmatch: `team/*`, `4.2.*`; no tags: every tag), sorted.

    At most `limit` + 1 are returned, so a caller can tell a selection that is too big.
    """
    if not repositories:
        return []
    names = set(Repository.objects.filter(registry=source).values_list("name", flat=True))
    chosen = sorted(
        {name for pattern in repositories for name in names if fnmatch.fnmatchcase(name, pattern)}
    )
    found: list[tuple[str, str]] = []
    rows = (
        Tag.objects.filter(repository__registry=source, repository__name__in=chosen)
        .order_by("repository__name", "name")
        .values_list("repository__name", "name")
    )
    for repository, tag in rows.iterator(chunk_size=2000):
        if _REFERRER_TAG.match(tag):
            continue
        if tags and not any(fnmatch.fnmatchcase(tag, pattern) for pattern in tags):
            continue
        found.append((repository, tag))
        if len(found) > limit:
            break
    return found


def batch_get(*, principal: Principal, batch_id: int):
    """One batch the principal may see (View on its source or target), else NotFound; its
    items (with their promotions) in order as `batch.item_list`."""
    batch = Batch.objects.select_related("source", "target").filter(pk=batch_id).first()
    if batch is None or not (
        principal.has(Permission.VIEW, batch.source) or principal.has(Permission.VIEW, batch.target)
    ):
        raise NotFound(f"There is no batch {batch_id}.")
    items = list(
        BatchItem.objects.filter(batch=batch).select_related("promotion").order_by("position")
    )
    for item in items:
        if item.promotion is not None:
            item.promotion.source, item.promotion.target = batch.source, batch.target
    batch.item_list = items
    return batch


@dataclass(frozen=True)
class BatchProgress:
    """A batch in numbers: n of m images finished, bytes, and how each ended."""

    total: int
    queued: int
    running: int
    succeeded: int
    failed: int
    refused: int
    bytes_total: int
    bytes_done: int

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed + self.refused

    @property
    def status(self) -> str:
        """running while any image is queued or running; then succeeded or failed."""
        if self.queued or self.running:
            return "running"
        return "failed" if self.failed or self.refused else "succeeded"

    @property
    def label(self) -> str:
        from django.template.defaultfilters import filesizeformat

        return (
            f"{self.finished} of {self.total} images · {filesizeformat(self.bytes_done)} of "
            f"{filesizeformat(self.bytes_total)}"
        )

    @property
    def percent(self) -> int:
        if self.status == "succeeded":
            return 100
        if not self.bytes_total:
            return 0
        return int(min(self.bytes_done, self.bytes_total) * 100 / self.bytes_total)


def batch_progress(batch) -> BatchProgress:
    """The numbers of a batch from `batch_get` (its items and promotions, already read)."""
    counts = dict.fromkeys(["queued", "running", "succeeded", "failed", "refused"], 0)
    bytes_total = bytes_done = 0
    seen: set[int] = set()
    for item in batch.item_list:
        counts[item.status] += 1
        promotion = item.promotion
        if promotion is not None and promotion.pk not in seen:
            seen.add(promotion.pk)
            bytes_total += promotion.bytes_total
            done = promotion.bytes_total if promotion.status == "succeeded" else 0
            bytes_done += max(promotion.bytes_done, done)
    return BatchProgress(
        total=len(batch.item_list), bytes_total=bytes_total, bytes_done=bytes_done, **counts
    )


def batches_recent(*, principal: Principal, limit: int = 10) -> list:
    """The newest batches the principal may see."""
    registries = {r.pk: r for r in Registry.objects.all()}
    visible = [pk for pk, r in registries.items() if principal.has(Permission.VIEW, r)]
    batches = Batch.objects.filter(Q(source_id__in=visible) | Q(target_id__in=visible))
    newest = list(batches.order_by("-created_at", "-id")[:limit])
    for batch in newest:
        batch.source, batch.target = registries[batch.source_id], registries[batch.target_id]
    return newest


def promotion_search(
    *,
    principal: Principal,
    from_feed: str | None = None,
    to_feed: str | None = None,
    status: str | None = None,
    cursor: str = "",
    size: int = PAGE_SIZE,
) -> KeysetPage:
    """Promotions of any status the principal may see, filtered, newest first, by cursor."""
    registries = {r.pk: r for r in Registry.objects.all()}
    by_name = {r.name: r.pk for r in registries.values()}
    visible = [pk for pk, r in registries.items() if principal.has(Permission.VIEW, r)]
    promotions = Promotion.objects.all()
    if len(visible) < len(registries):
        promotions = promotions.filter(Q(source_id__in=visible) | Q(target_id__in=visible))
    if from_feed:
        promotions = promotions.filter(source_id=by_name.get(from_feed, 0))
    if to_feed:
        promotions = promotions.filter(target_id=by_name.get(to_feed, 0))
    if status:
        promotions = promotions.filter(status=status)
    page = keyset_page([promotions], cursor=cursor, size=size)
    _attach_registries(page.object_list, registries)
    return page
