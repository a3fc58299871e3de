"""The API's shapes, declared once with ProGet's names.

These models read requests, shape answers and are the OpenAPI document's schemas
(api.openapi generates the document from them and the endpoint table in api.endpoints).
ProGet's property names are the aliases (camelCase, `fromFeed`, `groupName`, `API_Key`, …)
and its enum values are C# names, read in any case.

Rules the services enforce (repository and tag names, comment length, registry fields, key
kinds and areas) are not repeated here: the value reaches the service, which raises Invalid.
What is checked here is the shape (types, which properties, one of two aliases), text
hygiene (no control characters: PostgreSQL refuses NUL) and the lengths of columns no
service checks, from the model's own max_length.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from accounts import models as accounts
from promoter.errors import Invalid
from registries.models import COMMENT_MAX, PROMOTION_COUNTERS, Promotion, Registry

PASSWORD_MAX = 1024  # characters of an external registry's password

FEED_TYPE = "docker"  # every Promoter feed (registry) holds container images
APPLICATION_NAME = "Promoter"
# ProGet's system API names that mean "everything"; the others are Promoter's API areas.
FULL_CONTROL = "full-control"
# ProGet's package permissions → Promoter's feed key permissions (the others are the same).
PROGET_PERMISSIONS = {"add": accounts.Permission.PUBLISH.value}
PROMOTER_PERMISSIONS = {v: k for k, v in PROGET_PERMISSIONS.items()}
# API keys never log bodies: ProGet's ApiKeyBodyLogging has only this value here.
LOGGING_NONE = "None"
KIND_NAMES = dict(accounts.ApiKey.Kind.choices)  # "system" → "System": ProGet's C# names


def _max_length(model, field: str) -> int:
    return model._meta.get_field(field).max_length


# --- value types ------------------------------------------------------------------------
_CONTROL_IN_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _clean(pattern: re.Pattern) -> AfterValidator:
    def check(value: str) -> str:
        if pattern.search(value):
            raise PydanticCustomError("control_characters", "contains control characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise PydanticCustomError("unicode", "is not valid Unicode text") from None
        return value

    return AfterValidator(check)


def _given(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("missing", "is required")
    return value


Line = Annotated[str, _clean(_CONTROL_IN_LINE)]  # one line: names, tags, keys
Text = Annotated[str, _clean(_CONTROL_IN_TEXT)]  # tabs and line breaks allowed
Given = Annotated[Line, AfterValidator(_given)]  # required, and not blank


def choice(names: Iterable[str]) -> Any:
    """A string that is one of `names` in any case (ProGet's C# enum values); reads as the
    spelling given here."""
    names = tuple(names)
    spelled = {n.lower(): n for n in names}

    def pick(value: Any) -> str:
        if isinstance(value, str) and value.lower() in spelled:
            return spelled[value.lower()]
        raise PydanticCustomError(
            "choice",
            "must be one of {names} (in any case); {value} is not supported",
            {"names": ", ".join(names), "value": repr(value)[:80]},
        )

    return Annotated[str, BeforeValidator(pick), WithJsonSchema({"enum": list(names)})]


MOMENT_HELP = "an ISO 8601 date or date-time, e.g. 2030-01-31 or 2030-01-31T12:00:00Z"


def _moment(value: Any) -> dt.datetime | None:
    """ISO 8601 date-time, or a date (its last second), in the portal's time zone if naive."""
    if value is None or isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and not value.strip():
        return None
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        # A date alone first: parse_datetime would read it as its midnight.
        day = parse_date(value)
        if day is not None:
            parsed = dt.datetime.combine(day, dt.time(23, 59, 59))
        else:
            parsed = parse_datetime(value)
        if parsed is None:
            raise ValueError(value)
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed)
        parsed.astimezone(dt.UTC)  # out-of-range instants fail here, not in the database
    except (ValueError, OverflowError):
        raise PydanticCustomError("moment", "must be " + MOMENT_HELP) from None
    return parsed


Moment = Annotated[
    dt.datetime | None,
    BeforeValidator(_moment),
    WithJsonSchema({"type": ["string", "null"], "description": MOMENT_HELP}),
]


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false", "1", "0"}:
        return value.lower() in {"true", "1"}
    raise PydanticCustomError("flag", "must be true or false")


Flag = Annotated[bool, BeforeValidator(_flag)]


def one_of(model: BaseModel, *names: str) -> Any:
    """The value given under one of two aliases (the same value twice is fine); else 400."""
    given = [n for n in names if getattr(model, n) is not None]
    values = {repr(getattr(model, n)) for n in given}
    if len(values) > 1:
        aliases = [model.__class__.model_fields[n].alias for n in names]
        raise Invalid(f"Give only one of {' or '.join(aliases)}.")
    return getattr(model, given[0]) if given else None


# --- bases ------------------------------------------------------------------------------
class Body(BaseModel):
    """A request body: strict JSON types, a property Promoter does not read is refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        strict=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )

    api_key: Line | None = Field(None, alias="API_Key")
    """An API key, ProGet's JSON property (instead of the X-ApiKey header)."""


class Query(BaseModel):
    """Query parameters: strings, read leniently; other parameters are ignored."""

    model_config = ConfigDict(alias_generator=to_camel, frozen=True, use_attribute_docstrings=True)


class Out(BaseModel):
    """An answer: every property is always present (null when it has no value)."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, use_attribute_docstrings=True
    )


# --- requests ---------------------------------------------------------------------------
class KeyOnly(Body):
    """Optional; only to carry ProGet's `API_Key` property."""


NAME_ALIASES = ("name", "packageName")


class PromoteRequest(Body):
    """ProGet's promote call. Give `name` or `packageName`; `group`/`groupName` is
    prepended to it with a `/` when given."""

    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": ["name"]}, {"required": ["packageName"]}]}
    )

    name: Line | None = None
    """The repository, e.g. `team/api`."""
    package_name: Line | None = None
    """Same as `name`."""
    group: Line | None = None
    """Leading path of the repository, e.g. `team` with name `api`."""
    group_name: Line | None = None
    """Same as `group`."""
    version: Given
    """The tag, e.g. `1.4.2`, or a `sha256:` digest a tag points at."""
    from_feed: Given
    """The source registry, e.g. `devdocker`."""
    to_feed: Line | None = None
    """The target registry; may be omitted when the source has a Promote To registry."""
    comments: Text | None = Field(None, json_schema_extra={"maxLength": COMMENT_MAX})
    """Why; recorded in History."""
    comment: Text | None = Field(None, json_schema_extra={"maxLength": COMMENT_MAX})
    """Same as `comments`."""
    key: Line | None = None
    """An API key, as a form field (ProGet's `key`)."""

    @model_validator(mode="before")
    @classmethod
    def _named(cls, data: Any) -> Any:
        # The repository first: without it nothing else about the request matters.
        if isinstance(data, dict) and not any(
            data.get(alias) is not None and data.get(alias) != "" for alias in NAME_ALIASES
        ):
            raise PydanticCustomError("sentence", "name is required.")
        return data

    @property
    def repository(self) -> str:
        name = one_of(self, "name", "package_name")
        group = (one_of(self, "group", "group_name") or "").strip("/")
        return f"{group}/{name}" if group else name

    @property
    def comment_text(self) -> str:
        return one_of(self, "comments", "comment") or ""


class PromoteQuery(Query):
    async_: Flag = Field(False, alias="async")
    """Answer 202 at once instead of waiting for the promotion."""
    dry_run: Flag = False
    """Say what the promotion would do (digest, blobs and bytes to copy, mount or already
    there, the target tag it replaces, the policy checklist); start nothing, write nothing."""


class PromotionListQuery(Query):
    from_feed: Line | None = None
    """Only promotions from this registry."""
    to_feed: Line | None = None
    """Only promotions into this registry."""
    group: Line | None = None
    """Only repositories under this path, e.g. `team`."""
    group_name: Line | None = None
    """Same as `group`."""
    package: Line | None = None
    """The repository (`team/api`), or its last component with `group`, or alone."""
    package_name: Line | None = None
    """Same as `package`."""
    version: Line | None = None
    """A tag, or a `sha256:` digest."""


class AuditQuery(Query):
    """The audit page's filters (its URL's query is the same); each one narrows."""

    action: Line | None = None
    """pushed, promoted, failed, rolled_back, deleted; `configuration` for configuration
    changes only, or one of them such as `registry.updated`."""
    status: Line | None = None
    """`succeeded` or `failed`."""
    source: Line | None = None
    """The registry promoted from."""
    target: Line | None = None
    """The registry it happened in (promoted into, pushed to, rolled back or deleted in)."""
    user: Line | None = None
    """Who acted (any case)."""
    repository: Line | None = None
    """A repository (`team/api`), or `team/` for everything under team/."""
    tag: Line | None = None
    digest: Line | None = None
    """The start of a digest (`sha256:4f2a…` or `4f2a…`); an image's signatures match too."""
    since: Line | None = None
    """From this day on (YYYY-MM-DD, the portal's time zone)."""
    until: Line | None = None
    """Up to and including this day."""
    cursor: Line | None = None
    """`next` of the previous answer: the page of older events."""

    def filters(self) -> dict[str, str]:
        """The filters given, by the names the audit page uses."""
        names = ("action", "status", "source", "target", "user", "repository", "tag")
        found = {n: getattr(self, n) for n in (*names, "digest", "since", "until")}
        return {k: v for k, v in found.items() if v}


class AuditEvent(Out):
    """One event: of History (`kind` history) or a configuration change (`configuration`)."""

    kind: Literal["history", "configuration"]
    id: int
    created_at: dt.datetime
    action: str
    status: Literal["succeeded", "failed"]
    actor: str
    registry: str
    repository: str
    tag: str
    digest: str
    from_registry: str
    to_registry: str
    comment: str
    error: str
    """Why a promotion failed."""
    subject: str
    """For a signature or other accessory: the digest of its image."""
    promotion_id: int | None
    object_type: str
    """What a configuration change changed: registry, privilege, api_key, user, …"""
    object_repr: str
    changes: dict[str, Any] | None
    """{field: [old, new]} of a configuration change."""

    @classmethod
    def of(cls, row) -> AuditEvent:
        return cls(**{k: v for k, v in vars(row).items()})


class AuditEvents(Out):
    events: list[AuditEvent]
    """Newest first, at most 50."""
    next: str | None
    """The cursor of the page of older events; null on the last page."""


USAGE_TYPES = choice(Registry.UsageType.values)
FEED_TYPES = choice([FEED_TYPE])
# Registry values this API writes; null clears those that can be empty.
FEED_VALUES = (
    "description",
    "active",
    "require_comment",
    "usage_type",
    "promote_to",
    "endpoint",
    "namespace",
    "username",
    "password",
)
CLEARABLE = {"description", "promote_to", "endpoint", "namespace", "username"}


class FeedUpdate(Body):
    """A feed (registry) to change. Properties left out stay as they are; `null` clears
    the ones that can be empty (description, promoteTo, endpoint, namespace, username).
    `password` is write-only. A feed is never renamed and its usage type never changes."""

    name: Line | None = None
    """The feed's name; on update only its current name."""
    feed_type: FEED_TYPES | None = None
    """Always `docker` (any case: pgutil sends `Docker`)."""
    # A TextField's max_length binds no validator: full_clean leaves it to forms, so here.
    description: Text | None = Field(None, max_length=_max_length(Registry, "description"))
    active: bool | None = None
    """An inactive feed accepts no promotions."""
    require_comment: bool | None = None
    """Promotions into this feed must give a comment."""
    usage_type: USAGE_TYPES | None = None
    """`general`, or `validated`: content only by promotion (chosen at creation)."""
    promote_to: Line | None = None
    """The Promote To registry (`""` or null: none)."""
    endpoint: Line | None = Field(
        None, json_schema_extra={"maxLength": _max_length(Registry, "endpoint")}
    )
    """URL of an external registry (`""` or null: the bundled one)."""
    namespace: Line | None = Field(
        None, json_schema_extra={"maxLength": _max_length(Registry, "namespace")}
    )
    """Path prefix on an external registry."""
    username: Line | None = Field(
        None, json_schema_extra={"maxLength": _max_length(Registry, "username")}
    )
    """User name for an external registry."""
    # Stored encrypted (a longer column): the limit is on the password a person types.
    password: Line | None = Field(None, json_schema_extra={"maxLength": PASSWORD_MAX})
    """Password for an external registry (never shown)."""
    alternate_names: list[Line] | None = None
    """ProGet's alternate names: Promoter's feeds have none, so only `[]`."""
    drop_path: Line | None = None
    """ProGet's drop path: Promoter's feeds have none, so only `""`."""

    @field_validator("alternate_names")
    @classmethod
    def _no_alternate_names(cls, value: list[str] | None) -> list[str] | None:
        if value:
            raise PydanticCustomError(
                "unsupported", "must be empty: a Promoter feed has one name, its registry's"
            )
        return value

    @field_validator("drop_path")
    @classmethod
    def _no_drop_path(cls, value: str | None) -> str | None:
        if value:
            raise PydanticCustomError(
                "unsupported", "must be empty: images enter a Promoter feed by push or promotion"
            )
        return value

    def values(self) -> dict[str, Any]:
        """The registry values given: absent ones are left out, null clears (400 where a
        value cannot be empty)."""
        values: dict[str, Any] = {}
        for field in FEED_VALUES:
            if field not in self.model_fields_set:
                continue
            value = getattr(self, field)
            if value is None:
                if field not in CLEARABLE:
                    alias = self.__class__.model_fields[field].alias
                    raise Invalid(f"{alias} cannot be null; leave it out to keep it as it is.")
                value = ""
            values[field] = value
        return values


class FeedCreate(FeedUpdate):
    """A new feed (registry); `name` and `feedType` are required. Omitted properties take
    their defaults (General, active, on the bundled registry)."""

    name: Given
    """The new feed's name, e.g. `qa-docker`."""
    feed_type: FEED_TYPES
    """`docker` (any case: pgutil sends `Docker`)."""

    def values(self) -> dict[str, Any]:
        """The registry values given (left out or null: the default)."""
        return {f: getattr(self, f) for f in FEED_VALUES if getattr(self, f) is not None}


class ApiKeyCreate(Body):
    """A new API key, in ProGet's ApiKeyInfo shape (pgutil's `apikeys create`); Promoter's
    own names (`name`, `feeds`, `permissions`, `areas`) work too."""

    type: choice(KIND_NAMES.values())
    """`System` (full control, or chosen API areas), `Feed` (permissions on feeds) or
    `Personal` (acts as its user); any case."""
    display_name: Line | None = Field(None, max_length=_max_length(accounts.ApiKey, "name"))
    """The key's name, shown in lists and History."""
    name: Line | None = Field(None, max_length=_max_length(accounts.ApiKey, "name"))
    """Same as `displayName`."""
    description: Text | None = Field(None, max_length=_max_length(accounts.ApiKey, "description"))
    system_apis: list[Line] | None = None
    """System keys: `full-control`, or API areas to limit the key to (`promotions`,
    `feeds`, `api-keys`). A limited key is refused (403) elsewhere in the API, on pages and
    by the docker token service."""
    areas: list[Line] | None = None
    """Same as `systemApis`, without `full-control` (none: full control)."""
    package_permissions: list[Line] | None = None
    """Feed keys: `view`, `add` (push), `promote`, `delete`."""
    permissions: list[Line] | None = None
    """Same as `packagePermissions`, in Promoter's words (`publish` for `add`)."""
    feed: Line | None = None
    """Feed keys: the feed they work on."""
    feeds: list[Line] | None = None
    """Feed keys: the feeds they work on (several)."""
    feed_group: Line | None = None
    """ProGet's feed groups: Promoter has none, so only null."""
    expiration: Moment = None
    """When the key stops working; omit for a key that never expires."""
    logging: choice([LOGGING_NONE]) | None = None
    """ProGet's body logging: Promoter logs no bodies, so only `None`."""
    user: Line | None = None
    """Personal keys: the user the key acts as (default: the caller)."""
    key: Line | None = None
    """ProGet lets a client choose the secret; Promoter makes every secret itself, so only
    null (the answer carries the secret, once)."""

    @field_validator("feed_group", "key")
    @classmethod
    def _absent(cls, value: str | None) -> str | None:
        if value:
            raise PydanticCustomError("unsupported", "must be left out in Promoter")
        return value

    @property
    def kind(self) -> str:
        return {label: value for value, label in KIND_NAMES.items()}[self.type]

    @property
    def key_name(self) -> str:
        return one_of(self, "display_name", "name") or ""

    @property
    def feed_names(self) -> list[str]:
        if self.feed is not None and self.feeds is not None:
            raise Invalid("Give only one of feed or feeds.")
        return [self.feed] if self.feed is not None else list(self.feeds or [])

    @property
    def feed_permissions(self) -> list[str]:
        """Feed key permissions in Promoter's words; 400 on any other kind of key."""
        given = one_of(self, "package_permissions", "permissions") or []
        if given and self.kind != accounts.ApiKey.Kind.FEED:
            raise Invalid("Only feed keys have package permissions; leave them out.")
        return [PROGET_PERMISSIONS.get(p, p) for p in given]

    @property
    def api_areas(self) -> list[str]:
        """A system key's API areas (none: full control)."""
        given = one_of(self, "system_apis", "areas") or []
        return [] if FULL_CONTROL in given else list(given)


# --- path parameters --------------------------------------------------------------------
ID_MAX = 2**63 - 1  # the largest id a BigAutoField holds


class FeedName(Query):
    name: str = Field(min_length=1)
    """The feed (registry) name."""


class PromotionId(Query):
    promotion_id: int = Field(ge=1, le=ID_MAX, alias="promotion_id")
    """The promotion's id."""


class ApiKeyId(Query):
    api_key_id: int = Field(ge=1, le=ID_MAX, alias="api_key_id")
    """The key's id."""


class ApiKeyIdQuery(Query):
    id: int = Field(ge=1, le=ID_MAX)
    """The key's id (ProGet's `?id=`)."""


# --- answers ----------------------------------------------------------------------------
class Error(Out):
    error: str
    """What went wrong and what to do."""


Progress = create_model(
    "Progress",
    __base__=Out,
    __doc__="How far the copy is: counts of blobs, bytes, manifests and signatures.",
    percent=(int, Field(ge=0, le=100, description="Bytes done of bytes to copy, in percent.")),
    **{name: (int, Field(ge=0)) for name in PROMOTION_COUNTERS},
)


def split_repository(repository: str) -> tuple[str | None, str]:
    """`team/api` -> ("team", "api"): ProGet's group and package name; no group -> None."""
    group, _, name = repository.rpartition("/")
    return (group or None), name


class PromotionStatus(Out):
    """One promotion: what, from where to where, its state and progress."""

    id: int
    status: Literal[tuple(Promotion.Status.values)]
    from_feed: str
    to_feed: str
    repository: str
    """The repository, e.g. `team/api`."""
    group_name: str | None
    """The repository's leading path, e.g. `team`; null when none."""
    package_name: str
    """Its last component, e.g. `api`."""
    version: str
    """The tag."""
    digest: str
    """The pinned digest that is copied."""
    comments: str
    user: str
    """Who asked: a user or `API key <name>`."""
    created: dt.datetime
    started: dt.datetime | None
    finished: dt.datetime | None
    error: str | None
    """Why it failed."""
    previous_digest: str | None
    """What the target tag pointed at before."""
    progress: Progress
    status_url: str
    """This status, to poll."""
    page_url: str
    """The promotion's page in the portal."""

    @classmethod
    def of(cls, promotion: Promotion) -> PromotionStatus:
        group, name = split_repository(promotion.repository)
        counters = {field: getattr(promotion, field) for field in PROMOTION_COUNTERS}
        return cls(
            id=promotion.pk,
            status=promotion.status,
            from_feed=promotion.source.name,
            to_feed=promotion.target.name,
            repository=promotion.repository,
            group_name=group,
            package_name=name,
            version=promotion.tag,
            digest=promotion.digest,
            comments=promotion.comment,
            user=promotion.actor,
            created=promotion.created_at,
            started=promotion.started_at,
            finished=promotion.finished_at,
            error=promotion.error or None,
            previous_digest=promotion.previous_digest or None,
            progress=Progress(percent=promotion.percent, **counters),
            status_url=status_url(promotion),
            page_url=reverse("registries:promotion_detail", args=[promotion.pk]),
        )


def status_url(promotion: Promotion) -> str:
    return reverse("api:promotionStatus", args=[promotion.pk])


class PromotionRecord(Out):
    id: int
    from_feed: str
    to_feed: str
    date: dt.datetime
    user: str
    comments: str
    digest: str


class PromotedPackage(Out):
    """An image version and the promotions it went through, oldest first."""

    package_name: str
    group_name: str | None
    repository: str
    package_type: Literal["docker"]
    version: str
    promotions: list[PromotionRecord]

    @classmethod
    def of(cls, repository: str, tag: str, promotions: list[Promotion]) -> PromotedPackage:
        group, name = split_repository(repository)
        return cls(
            package_name=name,
            group_name=group,
            repository=repository,
            package_type=FEED_TYPE,
            version=tag,
            promotions=[
                PromotionRecord(
                    id=p.pk,
                    from_feed=p.source.name,
                    to_feed=p.target.name,
                    date=p.finished_at or p.created_at,
                    user=p.actor,
                    comments=p.comment,
                    digest=p.digest,
                )
                for p in promotions
            ],
        )


class Feed(Out):
    """A feed (registry) in ProGet's ProGetFeed shape, with Promoter's own properties."""

    name: str
    alternate_names: list[str]
    """Always empty: a Promoter feed has one name."""
    feed_type: Literal["docker"]
    description: str
    active: bool
    require_comment: bool
    """Promotions into this feed must give a comment."""
    drop_path: str | None
    """Always null: images enter by push or promotion."""
    usage_type: Literal[tuple(Registry.UsageType.values)]
    promote_to: str | None
    """The Promote To registry."""
    endpoint: str | None
    """URL of an external registry; null for the bundled one."""
    namespace: str | None
    """Path prefix on an external registry."""

    @classmethod
    def of(cls, registry: Registry) -> Feed:
        return cls(
            name=registry.name,
            alternate_names=[],
            feed_type=FEED_TYPE,
            description=registry.description,
            active=registry.active,
            require_comment=registry.require_comment,
            drop_path=None,
            usage_type=registry.usage_type,
            promote_to=registry.promote_to.name if registry.promote_to_id else None,
            endpoint=registry.endpoint or None,
            namespace=registry.namespace or None,
        )


class Deleted(Out):
    deleted: str
    """The name of the feed deleted."""


class ApiKey(Out):
    """An API key in ProGet's ApiKeyInfo shape (never its secret), with Promoter's dates."""

    id: int
    type: Literal[tuple(KIND_NAMES.values())]
    display_name: str
    description: str
    system_apis: list[str] | None
    """System keys: `full-control`, or the API areas the key is limited to."""
    package_permissions: list[str] | None
    """Feed keys: `view`, `add`, `promote`, `delete`."""
    feed: str | None
    """Feed keys on one feed: that feed."""
    feeds: list[str]
    """Feed keys: every feed they work on."""
    feed_group: None
    """Always null: Promoter has no feed groups."""
    expiration: dt.datetime | None
    logging: Literal["None"]
    user: str | None
    """Personal keys: the user they act as; others: who created them."""
    created: dt.datetime
    last_used: dt.datetime | None
    revoked: dt.datetime | None
    """When it was revoked (refused from then on)."""

    @classmethod
    def of(cls, key: accounts.ApiKey) -> ApiKey:
        return cls(**cls._values(key))

    @staticmethod
    def _values(key: accounts.ApiKey) -> dict[str, Any]:
        kind = key.kind
        feeds = sorted(r.name for r in key.registries.all())
        system = kind == accounts.ApiKey.Kind.SYSTEM
        return {
            "id": key.pk,
            "type": KIND_NAMES[kind],
            "display_name": key.name,
            "description": key.description,
            "system_apis": (key.areas or [FULL_CONTROL]) if system else None,
            "package_permissions": (
                [PROMOTER_PERMISSIONS.get(p, p) for p in key.feed_permissions]
                if kind == accounts.ApiKey.Kind.FEED
                else None
            ),
            "feed": feeds[0] if len(feeds) == 1 else None,
            "feeds": feeds,
            "feed_group": None,
            "expiration": key.expires_at,
            "logging": LOGGING_NONE,
            "user": key.user.get_username() if key.user_id else None,
            "created": key.created_at,
            "last_used": key.last_used_at,
            "revoked": key.revoked_at,
        }


class ApiKeyCreated(ApiKey):
    """A new API key, with its secret: shown this once."""

    key: str
    """The secret. Shown this once; store it now."""

    @classmethod
    def of(cls, key: accounts.ApiKey, secret: str) -> ApiKeyCreated:
        return cls(**cls._values(key), key=secret)


class ReplicationStatus(Out):
    """ProGet's replication: Promoter does not replicate, so all null."""

    server_status: None
    server_error: None
    client_status: None
    client_error: None


class Health(Out):
    """ProGet's health object (pgutil's `health`): the database, the backing registry (as
    ProGet's service) and the version."""

    application_name: str
    database_status: Literal["OK", "Error"]
    database_status_details: str | None
    license_status: Literal["OK"]
    license_status_detail: None
    version_number: str
    release_number: str
    service_status: Literal["OK", "Error"]
    """The backing registry."""
    service_status_detail: str | None
    replication_status: ReplicationStatus


# --- validation errors as sentences ------------------------------------------------------
_SENTENCES = {
    "missing": "{field} is required.",
    "string_type": "{field} must be a string.",
    "string_unicode": "{field} is not valid Unicode text.",
    "bool_type": "{field} must be true or false.",
    "bool_parsing": "{field} must be true or false.",
    "list_type": "{field} must be an array of strings.",
    "int_type": "{field} must be an integer.",
    "int_parsing": "{field} must be an integer.",
    "int_from_float": "{field} must be an integer.",
    "greater_than_equal": "{field} must be at least {ctx[ge]}.",
    "less_than_equal": "{field} must be at most {ctx[le]}.",
    "string_too_short": "{field} is required.",
    "string_too_long": "{field} is {length} characters; the limit is {ctx[max_length]}.",
    "too_long": "{field} has {length} items; the limit is {ctx[max_length]}.",
    "extra_forbidden": "{field} is not a property Promoter reads here; see /api/docs.",
}


# Errors raised by the value types above: their message is a predicate of the field.
CUSTOM_ERRORS = {"control_characters", "unicode", "choice", "moment", "flag", "unsupported"}


def validation_message(exc: ValidationError) -> str:
    """The errors of a failed validation as sentences a person can act on."""
    sentences = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"] if not isinstance(part, int)]
        field = loc[0] if loc else ""
        kind = error["type"]
        in_list = any(isinstance(part, int) for part in error["loc"])
        if kind == "string_type" and in_list:
            kind = "list_type"
        if kind == "sentence" or not field:
            sentences.append(error["msg"])
        elif kind in _SENTENCES:
            length = len(error["input"]) if isinstance(error.get("input"), str | list) else 0
            if kind == "too_long" and isinstance(error.get("input"), str):
                kind = "string_too_long"
            template = _SENTENCES[kind]
            sentences.append(template.format(field=field, ctx=error.get("ctx", {}), length=length))
        elif kind in CUSTOM_ERRORS:
            sentences.append(f"{field} {error['msg']}.")
        else:
            sentences.append(f"{field}: {error['msg']}.")
    return " ".join(dict.fromkeys(sentences))
