"""Reads of the audit page: all of History and the configuration changes, filtered.

One filter (`AuditFilter`, parsed from a page's query string or the API's) over two
append-only logs: registries' History (pushed, promoted, failed, rolled back, deleted) and
accounts' AuditEvent (registries, privileges, keys, users). The permission filter is
applied here: a person sees History only of registries they may view, and configuration
changes only as an administrator. Pages are keyset pages (a cursor in the URL, never an
OFFSET); exports stream, bounded.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields

from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import AuditEvent, Permission
from accounts.permissions import Principal
from promoter.errors import Invalid
from registries.accessories import accessory_of
from registries.models import REGISTRY_NAME_VALIDATOR, HistoryEvent, Registry

PAGE_SIZE = 50
EXPORT_LIMIT = 100_000  # rows in one CSV or JSON export
CONFIGURATION = "configuration"
STATUSES = ("succeeded", "failed")
_CONFIG_ACTION = re.compile(r"^[a-z_]{1,20}\.[a-z_]{1,20}$")
_DIGEST_PREFIX = re.compile(r"^(sha256:)?[0-9a-f]{1,64}$")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_CURSOR = re.compile(r"^([ab])(\d{1,20})\.([hc])(\d{1,20})$")
TEXT_MAX = 255


@dataclass(frozen=True)
class AuditFilter:
    """What the audit page and the API are asked for; "" or None means any."""

    action: str = ""  # a History action, "configuration", or a configuration action
    status: str = ""  # "succeeded" | "failed"
    source: str = ""  # registry promoted from
    target: str = ""  # registry it happened in (promoted into, pushed to, …)
    user: str = ""  # who acted (case-insensitive)
    repository: str = ""  # exact; "team/" for everything under team/
    tag: str = ""
    digest: str = ""  # a prefix: "sha256:4f2a" or "4f2a"; an image's accessories match too
    since: dt.date | None = None  # from this day on (the portal's time zone)
    until: dt.date | None = None  # up to and including this day

    def query(self) -> dict[str, str]:
        """The filter as query parameters (for links, exports and the API)."""
        found = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if value:
                found[item.name] = value.isoformat() if isinstance(value, dt.date) else value
        return found

    @property
    def history_only(self) -> bool:
        """Asks for something only image events have (configuration changes drop out)."""
        history_action = self.action in HistoryEvent.Action.values
        return bool(
            history_action
            or self.status == "failed"
            or self.source
            or self.repository
            or self.tag
            or self.digest
        )

    @property
    def configuration_only(self) -> bool:
        return self.action == CONFIGURATION or bool(_CONFIG_ACTION.match(self.action))


def _text(params: Mapping, name: str) -> str:
    value = params.get(name) or ""
    if isinstance(value, list):
        value = value[-1] if value else ""
    value = str(value).strip()
    if len(value) > TEXT_MAX or any(ord(c) < 32 for c in value):
        raise Invalid(f"The {name} filter is not valid (at most {TEXT_MAX} plain characters).")
    return value


def _date(params: Mapping, name: str) -> dt.date | None:
    value = _text(params, name)
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise Invalid(f"The {name} date {value!r} is not a date like 2026-11-27.") from exc


def audit_filter_parse(params: Mapping) -> AuditFilter:
    """An AuditFilter from query parameters (a page's or the API's); Invalid says what is wrong."""
    action = _text(params, "action")
    allowed = set(HistoryEvent.Action.values) | {CONFIGURATION}
    if action and action not in allowed and not _CONFIG_ACTION.match(action):
        raise Invalid(
            f"There is no action {action!r}: use one of {', '.join(sorted(allowed))}, or a "
            "configuration action such as registry.updated."
        )
    status = _text(params, "status")
    if status and status not in STATUSES:
        raise Invalid(f"The status is succeeded or failed, not {status!r}.")
    registries = {}
    for name in ("source", "target"):
        value = _text(params, name)
        if value and not REGISTRY_NAME_VALIDATOR.regex.fullmatch(value):
            raise Invalid(f"{value!r} is not a registry name.")
        registries[name] = value
    digest = _text(params, "digest").lower()
    if digest and not _DIGEST_PREFIX.match(digest):
        raise Invalid(f"{digest!r} is not a digest (sha256:… or the start of its hex).")
    since, until = _date(params, "since"), _date(params, "until")
    if since and until and since > until:
        raise Invalid("The first day comes after the last day; swap them.")
    return AuditFilter(
        action=action,
        status=status,
        user=_text(params, "user"),
        repository=_text(params, "repository"),
        tag=_text(params, "tag"),
        digest=digest,
        since=since,
        until=until,
        **registries,
    )


# --- the rows ------------------------------------------------------------------------


@dataclass
class AuditRow:
    """One event of either log, in the shape the page, the exports and the API share."""

    kind: str  # "history" | "configuration"
    id: int
    created_at: dt.datetime
    action: str
    action_label: str
    status: str  # "succeeded" | "failed"
    actor: str
    registry: str = ""
    repository: str = ""
    tag: str = ""
    digest: str = ""
    from_registry: str = ""
    to_registry: str = ""
    comment: str = ""
    error: str = ""
    subject: str = ""  # for a signature or other accessory: its image's digest
    promotion_id: int | None = None
    object_type: str = ""
    object_repr: str = ""
    changes: dict | None = None

    @property
    def accessory(self):
        return accessory_of(self.tag)

    def as_dict(self) -> dict:
        """Plain values for CSV/JSON (ISO time)."""
        found = asdict(self)
        found["created_at"] = self.created_at.isoformat()
        return found


EXPORT_COLUMNS = [
    "created_at",
    "kind",
    "action",
    "status",
    "actor",
    "registry",
    "repository",
    "tag",
    "digest",
    "from_registry",
    "to_registry",
    "comment",
    "error",
    "subject",
    "promotion_id",
    "object_type",
    "object_repr",
    "changes",
]
_KIND_RANK = {"history": 0, "configuration": 1}  # ties at one microsecond: History first


def _history_row(event: HistoryEvent) -> AuditRow:
    return AuditRow(
        kind="history",
        id=event.pk,
        created_at=event.created_at,
        action=event.action,
        action_label=event.get_action_display(),
        status="failed" if event.action == HistoryEvent.Action.FAILED else "succeeded",
        actor=event.actor,
        registry=event.registry,
        repository=event.repository,
        tag=event.tag,
        digest=event.digest,
        from_registry=event.from_registry,
        to_registry=event.to_registry,
        comment=event.comment,
        error=event.error,
        subject=event.subject,
        promotion_id=event.promotion_id,
    )


def _audit_row(event: AuditEvent) -> AuditRow:
    return AuditRow(
        kind="configuration",
        id=event.pk,
        created_at=event.created_at,
        action=event.action,
        action_label=event.action.replace(".", " ").replace("_", " ").capitalize(),
        status="succeeded",
        actor=event.actor,
        object_type=event.object_type,
        object_repr=event.object_repr,
        changes=event.changes or {},
    )


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _branches(principal: Principal, where: AuditFilter) -> tuple[QuerySet | None, QuerySet | None]:
    """The History and configuration querysets the filter selects (None: none of that log)."""
    history = None if where.configuration_only else HistoryEvent.objects.all()
    config = None
    if principal.is_administrator() and not where.history_only:
        config = AuditEvent.objects.all()
    if history is not None:
        if not principal.system:
            visible = [r.name for r in Registry.objects.all() if principal.has(Permission.VIEW, r)]
            # A promotion out of a registry is that registry's event too.
            history = history.filter(Q(registry__in=visible) | Q(from_registry__in=visible))
        if where.action:
            history = history.filter(action=where.action)
        if where.status == "failed":
            history = history.filter(action=HistoryEvent.Action.FAILED)
        elif where.status == "succeeded":
            history = history.exclude(action=HistoryEvent.Action.FAILED)
        if where.source:
            history = history.filter(from_registry=where.source)
        if where.target:
            history = history.filter(registry=where.target)
        if where.user:
            history = history.filter(actor__iexact=where.user)
        if where.repository:
            if where.repository.endswith("/"):
                history = history.filter(repository__startswith=where.repository)
            else:
                history = history.filter(repository=where.repository)
        if where.tag:
            history = history.filter(tag=where.tag)
        if where.digest:
            prefix = (
                where.digest if where.digest.startswith("sha256:") else "sha256:" + where.digest
            )
            history = history.filter(Q(digest__startswith=prefix) | Q(subject__startswith=prefix))
    if config is not None:
        if _CONFIG_ACTION.match(where.action):
            config = config.filter(action=where.action)
        if where.target:
            config = config.filter(object_type="registry", object_repr=where.target)
        if where.user:
            config = config.filter(actor__iexact=where.user)
    for name in ("history", "config"):
        queryset = history if name == "history" else config
        if queryset is None:
            continue
        if where.since:
            queryset = queryset.filter(created_at__gte=_day_start(where.since))
        if where.until:
            queryset = queryset.filter(
                created_at__lt=_day_start(where.until + dt.timedelta(days=1))
            )
        if name == "history":
            history = queryset
        else:
            config = queryset
    return history, config


# --- pages ---------------------------------------------------------------------------


@dataclass
class AuditPage:
    rows: list[AuditRow]
    next_cursor: str = ""  # older rows
    previous_cursor: str = ""  # newer rows

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


def _key(row: AuditRow) -> tuple:
    return (row.created_at, _KIND_RANK[row.kind], row.id)


def _cursor(row: AuditRow, direction: str) -> str:
    micros = (row.created_at - _EPOCH) // dt.timedelta(microseconds=1)
    return f"{direction}{micros}.{row.kind[0]}{row.id}"


def _parse_cursor(cursor: str):
    match = _CURSOR.match(cursor or "")
    if not match:
        return None
    direction, micros, kind, pk = match.groups()
    try:
        at = _EPOCH + dt.timedelta(microseconds=int(micros))
    except OverflowError:
        return None
    return direction, (at, 0 if kind == "h" else 1, int(pk))


def _beyond(queryset: QuerySet, rank: int, key: tuple, older: bool) -> QuerySet:
    """Rows strictly older (or newer) than `key` = (created_at, kind rank, id)."""
    at, key_rank, pk = key
    if older:
        tie = Q() if rank < key_rank else Q(pk__lt=pk) if rank == key_rank else None
        bound = queryset.filter(created_at__lte=at)
        condition = Q(created_at__lt=at)
    else:
        tie = Q() if rank > key_rank else Q(pk__gt=pk) if rank == key_rank else None
        bound = queryset.filter(created_at__gte=at)
        condition = Q(created_at__gt=at)
    if tie is not None:
        condition |= Q(created_at=at) & tie
    return bound.filter(condition)


def _read(history, config, key, older: bool, limit: int) -> list[AuditRow]:
    order = ("-created_at", "-id") if older else ("created_at", "id")
    rows: list[AuditRow] = []
    for queryset, rank, convert in ((history, 0, _history_row), (config, 1, _audit_row)):
        if queryset is None:
            continue
        if key is not None:
            queryset = _beyond(queryset, rank, key, older)
        rows += [convert(e) for e in queryset.order_by(*order)[:limit]]
    return sorted(rows, key=_key, reverse=older)[:limit]


def audit_page(
    *, principal: Principal, where: AuditFilter, cursor: str = "", size: int = PAGE_SIZE
) -> AuditPage:
    """One page of events, newest first, after `cursor` ("b…" older, "a…" newer)."""
    history, config = _branches(principal, where)
    parsed = _parse_cursor(cursor)
    if parsed is None:
        rows = _read(history, config, None, True, size + 1)
        return AuditPage(
            rows[:size], next_cursor=_cursor(rows[size - 1], "b") if len(rows) > size else ""
        )
    direction, key = parsed
    rows = _read(history, config, key, direction == "b", size + 1)
    more = len(rows) > size
    rows = rows[:size]
    if not rows:
        return audit_page(principal=principal, where=where, size=size)
    if direction == "b":
        return AuditPage(
            rows,
            next_cursor=_cursor(rows[-1], "b") if more else "",
            previous_cursor=_cursor(rows[0], "a"),
        )
    if not more:
        return audit_page(principal=principal, where=where, size=size)
    rows.reverse()
    return AuditPage(
        rows, next_cursor=_cursor(rows[-1], "b"), previous_cursor=_cursor(rows[0], "a")
    )


def audit_rows(
    *, principal: Principal, where: AuditFilter, limit: int = EXPORT_LIMIT
) -> Iterator[AuditRow]:
    """Every matching event, newest first, at most `limit`: the two logs are read with
    server-side cursors (iterator) and merged as they stream, so memory stays flat."""
    history, config = _branches(principal, where)
    streams: list[Iterable[AuditRow]] = []
    if history is not None:
        ordered = history.order_by("-created_at", "-id").iterator(chunk_size=2000)
        streams.append(_history_row(e) for e in ordered)
    if config is not None:
        ordered = config.order_by("-created_at", "-id").iterator(chunk_size=2000)
        streams.append(_audit_row(e) for e in ordered)
    merged = heapq.merge(*streams, key=_key, reverse=True)
    return itertools.islice(merged, limit)


def audit_count(*, principal: Principal, where: AuditFilter, cap: int = EXPORT_LIMIT) -> int:
    """How many events match, counted up to `cap` + 1 (so an export knows it is cut)."""
    history, config = _branches(principal, where)
    total = 0
    for queryset in (history, config):
        if queryset is not None:
            total += queryset[: cap + 1].count()
    return total
