"""Reads of the pipeline: its chains and board, where an image is, a tag's whole trail, and
what a person may promote (and why not).

Selectors like registries.selectors (no network, the permission filter applied here), kept
in their own module so the pipeline's reads are found together.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from django.core.paginator import Paginator
from django.db.models import OuterRef, Q, QuerySet, Subquery

from accounts.models import Permission
from accounts.permissions import Principal
from registries.accessories import ACCESSORY_TAG_REGEX, Accessory, accessory_of
from registries.models import HistoryEvent, Image, PromotionPolicy, Registry, Repository, Tag
from registries.oci.manifest import cosign_tags, referrers_tag
from registries.selectors import KeysetPage, keyset_page, promotion_targets

BOARD_NEWEST = 5  # images shown per stage on the board
BOARD_WAITING = 8  # images shown per "in A, not yet in B" list
COUNT_CAP = 1000  # counts above this read "1000+" (a count never walks a whole registry)
WAITING_WINDOW = COUNT_CAP  # the source's newest images the board looks among for what waits
TRAIL_PAGE_SIZE = 20  # as the tag page's History has always had
LOCATIONS_LIMIT = 200
# Events that point a tag at a digest: how it arrived.
ARRIVALS = ("pushed", "promoted", "rolled_back")


# --- chains ------------------------------------------------------------------------------


def _all_chains(registries: list[Registry]) -> list[list[Registry]]:
    """Every Promote To chain, from a registry nobody promotes into, to its end.

    Two registries promoting into one give two chains sharing their tail; a cycle (which
    the forms refuse but the database does not) is cut where it closes.
    """
    by_pk = {r.pk: r for r in registries}
    promoted_into = {r.promote_to_id for r in registries if r.promote_to_id}
    roots = [r for r in registries if r.pk not in promoted_into]
    chains: list[list[Registry]] = []
    placed: set[int] = set()
    for root in sorted(roots, key=lambda r: r.name):
        chain, seen = [], set()
        current = root
        while current is not None and current.pk not in seen:
            chain.append(current)
            seen.add(current.pk)
            current = by_pk.get(current.promote_to_id)
        chains.append(chain)
        placed |= seen
    # Registries only reachable around a cycle: start each such loop at its first name.
    for registry in sorted(registries, key=lambda r: r.name):
        if registry.pk in placed:
            continue
        chain, current = [], registry
        while current is not None and current.pk not in placed:
            chain.append(current)
            placed.add(current.pk)
            current = by_pk.get(current.promote_to_id)
        chains.append(chain)
    # Longest pipelines first, then by name: dev → rc → prod before a lone scratch registry.
    return sorted(chains, key=lambda c: (-len(c), c[0].name))


def pipeline_chains(*, principal: Principal) -> list[list[Registry]]:
    """The Promote To chains as stages, each cut to the registries the principal may view."""
    registries = list(Registry.objects.select_related("promote_to"))
    visible = {r.pk for r in registries if principal.has(Permission.VIEW, r)}
    chains, shown = [], set()
    for chain in _all_chains(registries):
        stages = [r for r in chain if r.pk in visible]
        key = tuple(r.pk for r in stages)
        if stages and key not in shown:  # two chains may look the same once cut
            shown.add(key)
            chains.append(stages)
    return chains


def registries_in_pipeline_order(registries) -> list[Registry]:
    """The given registries (e.g. selectors.registry_list) sorted by their pipeline order."""
    items = list(registries)
    order: dict[int, int] = {}
    for chain in _all_chains(list(Registry.objects.all())):
        for registry in chain:
            order.setdefault(registry.pk, len(order))
    return sorted(items, key=lambda r: (order.get(r.pk, len(order)), r.name))


def registries_all() -> list[Registry]:
    """Every registry, with its Promote To (one read a page can share among these selectors)."""
    return list(Registry.objects.select_related("promote_to"))


def _stages_through(registry: Registry, registries: list[Registry] | None = None) -> list[Registry]:
    """The stages of every chain passing through `registry`, in order (for stage chips)."""
    registries = registries if registries is not None else registries_all()
    stages: list[Registry] = []
    for chain in _all_chains(registries):
        if any(r.pk == registry.pk for r in chain):
            for r in chain:
                if r.pk not in {s.pk for s in stages}:
                    stages.append(r)
    return stages or [registry]


# --- why (not) promote --------------------------------------------------------------------


@dataclass
class PromoteOption:
    """What the Promote button of one source registry says: its targets, or why not."""

    source: Registry
    targets: list[Registry]
    reason: str = ""  # why the principal may not promote; "" when it may
    # Does a target have a promotion policy (its checklist is in the dialog)? None: not read
    # yet (read when asked, so pages that never ask do not pay for it).
    known_policed: bool | None = None

    @property
    def policed(self) -> bool:
        if self.known_policed is None:
            policies = PromotionPolicy.objects.filter(registry__in=self.targets)
            self.known_policed = any(not p.is_empty for p in policies)
        return self.known_policed

    @property
    def allowed(self) -> bool:
        return bool(self.targets)

    @property
    def label(self) -> str:
        """ "Promote to rcdocker" for one target (or the fixed Promote To one), else "Promote"."""
        if len(self.targets) == 1:
            return f"Promote to {self.targets[0].name}"
        if not self.targets and self.source.promote_to_id:
            return f"Promote to {self.source.promote_to.name}"
        return "Promote"

    @property
    def comment_required(self) -> bool:
        return any(t.require_comment for t in self.targets)

    @property
    def asks(self) -> bool:
        """The dialog has something to ask or show first (a comment, a policy's checklist),
        so a one-click Promote opens it instead of promoting at once."""
        return self.comment_required or self.policed


def policed_registries() -> set[int]:
    """Ids of the registries with a promotion policy (one read a page can share)."""
    policies = PromotionPolicy.objects.all()
    return {p.registry_id for p in policies if not p.is_empty}


def promote_option(
    *, principal: Principal, source: Registry, policed: set[int] | None = None
) -> PromoteOption:
    """Where the principal may promote from `source` (promotion_targets), and if nowhere, why:
    the one answer behind every Promote button, enabled or disabled. `policed`: the
    registries with a policy, when the page has read them already."""
    targets = promotion_targets(source=source, principal=principal)
    if targets:
        known = None if policed is None else any(t.pk in policed for t in targets)
        return PromoteOption(source, targets, known_policed=known)
    return PromoteOption(source, [], _why_not(principal, source))


def _why_not(principal: Principal, source: Registry) -> str:
    if principal.is_anonymous:
        return "sign in to promote"
    if not principal.has(Permission.VIEW, source):
        return f"needs View & Download Packages on {source.name}"
    target = source.promote_to
    if target is not None:
        if not target.active:
            return f"{target.name} is not active"
        return f"needs Promote Packages on {target.name}"
    if not Registry.objects.filter(active=True).exclude(pk=source.pk).exists():
        return "there is no other active registry to promote to"
    return "needs Promote Packages on a registry to promote to"


@dataclass
class TargetState:
    """What a target registry holds now under the tag a promotion would move."""

    target: Registry
    digest: str = ""  # "" when the tag is not there yet
    actor: str = ""
    when: object = None
    action: str = ""  # how it got there: pushed / promoted / rolled_back
    from_registry: str = ""
    same: bool = False  # the target already holds the digest being promoted

    @property
    def replaces(self) -> bool:
        return bool(self.digest) and not self.same


def target_states(*, tag: Tag, targets: list[Registry]) -> list[TargetState]:
    """For each target: what `repository:tag` points at there now, by whom and when."""
    states = []
    for target in targets:
        held = Tag.objects.filter(
            repository__registry=target, repository__name=tag.repository.name, name=tag.name
        ).first()
        if held is None:
            states.append(TargetState(target))
            continue
        event = (
            HistoryEvent.objects.filter(
                registry=target.name,
                repository=tag.repository.name,
                tag=tag.name,
                digest=held.digest,
                action__in=ARRIVALS,
            )
            .order_by("-created_at", "-id")
            .first()
        )
        states.append(
            TargetState(
                target,
                digest=held.digest,
                actor=event.actor if event else "",
                when=event.created_at if event else held.pushed_at,
                action=event.action if event else "",
                from_registry=event.from_registry if event else "",
                same=held.digest == tag.digest,
            )
        )
    return states


# --- where an image is ---------------------------------------------------------------------


@dataclass
class Chip:
    """One stage of a chip row: does this registry hold the digest (same repository)?"""

    registry: Registry
    held: bool


def stage_chips(
    *,
    registry: Registry,
    repository: str,
    digests: list[str],
    registries: list[Registry] | None = None,
) -> dict[str, list[Chip]]:
    """{digest: [Chip per stage of registry's chain]}: which stages hold each digest, by
    digest, in the same repository (tagged or untagged). One query for a page of tags."""
    stages = _stages_through(registry, registries)
    pks = [s.pk for s in stages]
    where = {"repository__name": repository, "digest__in": digests}
    held: set[tuple[int, str]] = set(
        Tag.objects.filter(registry_id__in=pks, **where)
        .order_by()
        .values_list("registry_id", "digest")
        .union(
            Image.objects.filter(repository__registry_id__in=pks, **where)
            .order_by()
            .values_list("repository__registry_id", "digest")
        )
        .order_by()
    )
    return {d: [Chip(s, (s.pk, d) in held) for s in stages] for d in digests}


@dataclass
class Location:
    registry: Registry
    repository: str
    tag: str = ""  # "" for an image held by digest only


def image_locations(
    *, principal: Principal, digest: str, registries: list[Registry] | None = None
) -> list[Location]:
    """Every registry, repository and tag holding `digest` that the principal may view, in
    pipeline order."""
    registries = registries if registries is not None else registries_all()
    visible = [r.pk for r in registries if principal.has(Permission.VIEW, r)]
    order: dict[int, int] = {}
    for chain in _all_chains(registries):
        for registry in chain:
            order.setdefault(registry.pk, len(order))
    by_pk = {r.pk: r for r in registries}
    # Plain values, the registries taken from the list in hand: the page shows names only.
    tags = (
        Tag.objects.filter(digest=digest, registry_id__in=visible)
        .order_by("repository__name", "name")
        .values_list("registry_id", "repository__name", "name")[:LOCATIONS_LIMIT]
    )
    found = [Location(by_pk[reg], repo, name) for reg, repo, name in tags]
    tagged = {(loc.registry.pk, loc.repository) for loc in found}
    images = (
        Image.objects.filter(digest=digest, repository__registry_id__in=visible)
        .order_by()
        .values_list("repository__registry_id", "repository__name")[:LOCATIONS_LIMIT]
    )
    for reg, repo in images:
        if (reg, repo) not in tagged:
            found.append(Location(by_pk[reg], repo))
    return sorted(found, key=lambda loc: order.get(loc.registry.pk, len(order)))


# --- accessories ---------------------------------------------------------------------------


@dataclass
class HeldAccessory:
    """An accessory tag the index holds for an image: what it is and its own digest."""

    accessory: Accessory
    tag: Tag

    @property
    def label(self) -> str:
        return self.accessory.label

    @property
    def kind(self) -> str:
        return self.accessory.kind


def accessories_for(*, repository: Repository, digests: list[str]) -> dict[str, list]:
    """{image digest: [HeldAccessory]}: the signature, attestation, SBOM and referrer tags
    of each image (looked up by their names, never by scanning the repository's tags)."""
    names = []
    for digest in digests:
        if digest.startswith("sha256:"):
            names += cosign_tags(digest) + [referrers_tag(digest)]
    found: dict[str, list] = {d: [] for d in digests}
    if not names:
        return found
    for tag in Tag.objects.filter(repository=repository, name__in=names).order_by("name"):
        accessory = accessory_of(tag.name)
        if accessory is not None and accessory.subject in found:
            found[accessory.subject].append(HeldAccessory(accessory, tag))
    return found


def signed(accessories: list) -> bool:
    """True when a cosign signature tag is attached (presence, not a verification)."""
    return any(a.kind == "signature" for a in accessories)


# --- the repository page's tags -------------------------------------------------------------


def tag_rows(*, repository: Repository, query: str = "", page: int | str = 1, raw: bool = False):
    """A page of the repository's tags, newest first, accessories left out unless `raw`, each
    with how it arrived (`arrival_action`, `arrival_from`): pushed, or promoted from where."""
    tags = Tag.objects.filter(repository=repository)
    if not raw:
        tags = tags.exclude(name__regex=ACCESSORY_TAG_REGEX)
    if query:
        tags = tags.filter(name__icontains=query.strip())
    arrival = HistoryEvent.objects.filter(
        registry=repository.registry.name,
        repository=repository.name,
        tag=OuterRef("name"),
        digest=OuterRef("digest"),
        action__in=ARRIVALS,
    ).order_by("-created_at", "-id")
    tags = tags.annotate(
        arrival_action=Subquery(arrival.values("action")[:1]),
        arrival_from=Subquery(arrival.values("from_registry")[:1]),
        arrival_actor=Subquery(arrival.values("actor")[:1]),
    )
    return Paginator(tags.order_by("-pushed_at", "name"), 50).get_page(page)


def tag_arrival(*, tag: Tag) -> HistoryEvent | None:
    """The event that pointed the tag at its current digest here (pushed, promoted, rolled
    back), or None when History does not know."""
    return (
        HistoryEvent.objects.filter(
            registry=tag.repository.registry.name,
            repository=tag.repository.name,
            tag=tag.name,
            digest=tag.digest,
            action__in=ARRIVALS,
        )
        .order_by("-created_at", "-id")
        .first()
    )


# --- the whole trail ---------------------------------------------------------------------


def _visible_names(principal: Principal, registries: list[Registry] | None = None) -> list[str]:
    registries = registries if registries is not None else registries_all()
    return [r.name for r in registries if principal.has(Permission.VIEW, r)]


TRAIL_DIGESTS = 50  # digests a trail follows: the newest this tag name has held
TRAIL_SCAN = 500  # events of the tag name read to find them


def trail_digests(*, tag: Tag) -> list[str]:
    """The digests this repository and tag name has held in any registry, newest first (and
    its digest now): at most TRAIL_DIGESTS, so a tag re-pushed by CI all day stays cheap."""
    found = [tag.digest]
    recent = (
        HistoryEvent.objects.filter(repository=tag.repository.name, tag=tag.name)
        .order_by("-created_at", "-id")
        .values_list("digest", flat=True)[:TRAIL_SCAN]
    )
    for digest in recent:
        if digest not in found:
            found.append(digest)
        if len(found) >= TRAIL_DIGESTS:
            break
    return found


def tag_trail(
    *,
    principal: Principal,
    tag: Tag,
    cursor: str = "",
    registries: list[Registry] | None = None,
) -> KeysetPage:
    """The History tab: every event for this repository and tag name, and for every digest
    it has held (with their signatures), across the registries the principal may view;
    pushed, promoted, failed, rolled back and deleted, newest first. A re-push adds to it:
    nothing earlier disappears.

    Three ordered, limited reads (this tag name; those digests; their accessories), each
    walking its own index, merged by keyset_page: pages follow a cursor, never an OFFSET.
    """
    visible = _visible_names(principal, registries)
    digests = trail_digests(tag=tag)
    seen = Q(registry__in=visible) | Q(to_registry__in=visible)
    events = HistoryEvent.objects.filter(repository=tag.repository.name)
    branches = [
        events.filter(tag=tag.name).filter(seen),
        events.filter(digest__in=digests).filter(seen),
        events.filter(subject__in=digests).filter(seen),
    ]
    return keyset_page(branches, cursor=cursor, size=TRAIL_PAGE_SIZE)


# --- the board -----------------------------------------------------------------------------


def _images(registry: Registry) -> QuerySet[Tag]:
    """The registry's tags that are images (accessories left out), newest first: read off
    the index (registry, -pushed_at, name), so taking a few never sorts the registry."""
    return (
        Tag.objects.filter(registry=registry)
        .exclude(name__regex=ACCESSORY_TAG_REGEX)
        .order_by("-pushed_at", "name")
    )


@dataclass
class Stage:
    registry: Registry
    newest: list[Tag]
    count: int

    @property
    def count_label(self) -> str:
        return f"{COUNT_CAP}+" if self.count > COUNT_CAP else str(self.count)


@dataclass
class Waiting:
    """`in source, not yet in target`: tags of source whose digest target's same tag lacks,
    among the source's newest WAITING_WINDOW images (the board shows the flow of recent
    work; an old image never promoted is on the registry page, not here)."""

    source: Registry
    target: Registry
    tags: list[Tag]
    count: int
    option: PromoteOption
    windowed: bool = False  # the source holds more images than the window looked at

    @property
    def count_label(self) -> str:
        # Every image of a full window waits: there may be more beyond it.
        full = self.windowed and self.count >= WAITING_WINDOW
        return f"{WAITING_WINDOW}+" if full else str(self.count)


@dataclass
class Chain:
    stages: list[Stage] = field(default_factory=list)
    waiting: list[Waiting] = field(default_factory=list)


def _window(registry: Registry) -> list[tuple]:
    """(pk, repository name, tag name, digest) of the registry's newest COUNT_CAP + 1 images,
    off its newest-first index: the board's stage (its count and newest) and what may wait."""
    rows = _images(registry).values_list("pk", "repository__name", "name", "digest")
    return list(rows[: COUNT_CAP + 1])


def _tags(pks: list[int]) -> list[Tag]:
    """Those tags with their repositories."""
    return list(Tag.objects.filter(pk__in=pks).select_related("repository").order_by())


def _pending(window: list[tuple], target: Registry) -> list[int]:
    """Of the window's images, those target's same repository and tag do not hold at that
    digest, newest first. One bounded read (target's tags at those digests, off the digest
    index) and the comparison made here: left to itself, a planner anti-joins by hashing
    every tag of the target."""
    window = window[:WAITING_WINDOW]
    held = set(
        Tag.objects.filter(registry=target, digest__in={row[3] for row in window})
        .order_by()
        .values_list("repository__name", "name", "digest")
    )
    return [row[0] for row in window if row[1:] not in held]


def pipeline_board(
    *, principal: Principal, newest: int = BOARD_NEWEST, waiting: int = BOARD_WAITING
) -> list[Chain]:
    """The home page: each chain's stages with their newest images, and between adjacent
    stages what is in one and not yet in the next (with the principal's Promote option).

    Bounded reads whatever the registries' sizes: per stage a window of its newest images
    off its index (its count is capped there), per pair the next stage's tags at the
    window's digests, and per chain one read of the rows shown."""
    board = []
    policed = policed_registries()
    for registries in pipeline_chains(principal=principal):
        windows = {r.pk: _window(r) for r in registries}
        pairs = [
            (source, target, _pending(windows[source.pk], target))
            for source, target in zip(registries, registries[1:], strict=False)
            if source.promote_to_id == target.pk  # else a stage between is hidden
        ]
        # The rows shown (each stage's newest, each pair's first waiting) in one read.
        shown = {r.pk: [row[0] for row in windows[r.pk][:newest]] for r in registries}
        wanted = {pk for pks in shown.values() for pk in pks}
        wanted |= {pk for _, _, pending in pairs for pk in pending[:waiting]}
        rows = {tag.pk: tag for tag in _tags(list(wanted))}
        chain = Chain()
        for registry in registries:
            window = windows[registry.pk]
            newest_tags = [rows[pk] for pk in shown[registry.pk] if pk in rows]
            chain.stages.append(Stage(registry, newest_tags, len(window)))
        for source, target, pending in pairs:
            chain.waiting.append(
                Waiting(
                    source,
                    target,
                    [rows[pk] for pk in pending[:waiting] if pk in rows],
                    len(pending),
                    promote_option(principal=principal, source=source, policed=policed),
                    windowed=len(windows[source.pk]) > WAITING_WINDOW,
                )
            )
        board.append(chain)
    return board


# --- the privilege form's preview -----------------------------------------------------------


def privilege_effect(
    *,
    permissions: list[str],
    registry: Registry | None,
    restrict: bool,
    user=None,
    group=None,
    anonymous: bool = False,
) -> list[str]:
    """What adding a privilege would change, in words: "dana can promote devdocker →
    rcdocker". Decided by Principal (with the privilege added but not stored) and
    promotion_targets, as every Promote button is."""
    if user is not None:
        subjects = [(user.get_username(), Principal(user=user))]
    elif group is not None:
        members = list(group.user_set.order_by("username")[:20])
        if not members:
            return [f"Group {group.name} has no members yet: this changes nothing for now."]
        subjects = [(m.get_username(), Principal(user=m)) for m in members]
    elif anonymous:
        subjects = [("Everyone (Anonymous)", Principal.anonymous())]
    else:
        return []
    registries = list(Registry.objects.select_related("promote_to").order_by("name"))
    lines: list[str] = []
    for name, before in subjects:
        if before.user is not None and before.user.is_superuser:
            lines.append(f"{name} is a superuser and may already do everything.")
            continue
        after = before.with_privilege(
            permissions=permissions,
            registry_id=registry.pk if registry else None,
            restrict=restrict,
        )
        lines += _differences(name, before, after, registries)
    if not lines:
        who = subjects[0][0] if len(subjects) == 1 else "its members"
        lines.append(f"No change: {who} may already do this (or a restriction wins).")
    return lines


def _differences(name: str, before: Principal, after: Principal, registries) -> list[str]:
    lines = []

    def pairs(principal: Principal) -> set[tuple[str, str]]:
        return {
            (source.name, target.name)
            for source in registries
            if source.active
            for target in promotion_targets(source=source, principal=principal)
        }

    was, now = pairs(before), pairs(after)
    for source, target in sorted(now - was):
        lines.append(f"{name} can promote {source} → {target}")
    for source, target in sorted(was - now):
        lines.append(f"{name} can no longer promote {source} → {target}")
    verbs = [
        (Permission.VIEW, "view and pull from"),
        (Permission.DELETE, "delete in"),
        (Permission.MANAGE_FEED, "manage"),
    ]
    for permission, verb in verbs:
        gained = [
            r.name for r in registries if after.has(permission, r) > before.has(permission, r)
        ]
        lost = [r.name for r in registries if after.has(permission, r) < before.has(permission, r)]
        if gained:
            lines.append(f"{name} can {verb} {', '.join(gained)}")
        if lost:
            lines.append(f"{name} can no longer {verb} {', '.join(lost)}")
    pushed = [r.name for r in registries if after.can_push(r) > before.can_push(r)]
    unpushed = [r.name for r in registries if after.can_push(r) < before.can_push(r)]
    if pushed:
        lines.append(f"{name} can push to {', '.join(pushed)}")
    if unpushed:
        lines.append(f"{name} can no longer push to {', '.join(unpushed)}")
    if after.is_administrator() != before.is_administrator():
        change = "becomes" if after.is_administrator() else "is no longer"
        lines.append(f"{name} {change} an administrator")
    return lines


# --- the tag page's facts --------------------------------------------------------------------

OCI_PREFIX = "org.opencontainers.image."
# Code hosts whose commit pages are <repository URL>/commit/<revision>.
COMMIT_HOSTS = ("github.com", "gitlab.com", "codeberg.org", "bitbucket.org")


@dataclass
class Fact:
    key: str  # "source", "revision", …
    value: str
    url: str = ""


@dataclass
class ImageAbout:
    """What a release manager asks of an image: when it was built, from what, its labels."""

    created: str = ""  # as the image says it (RFC 3339)
    created_at: dt.datetime | None = None  # the same, parsed (None when unreadable)
    facts: list[Fact] = field(default_factory=list)  # OCI annotations (and labels of the same)
    labels: dict = field(default_factory=dict)  # labels every platform shares
    platform_labels: dict = field(default_factory=dict)  # platform: labels that differ


def _parse_time(value: str) -> dt.datetime | None:
    """RFC 3339 as images write it (nanoseconds, a Z); None when it is not a time."""
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$", value)
    if not match:
        return None
    zone = match.group(3) or "Z"
    try:
        return dt.datetime.fromisoformat(match.group(1) + ("+00:00" if zone == "Z" else zone))
    except ValueError:
        return None


def _link(value: str) -> str:
    return value if value.startswith(("https://", "http://")) and " " not in value else ""


def image_about(details) -> ImageAbout:
    """Created date, OCI annotations with links for source and revision, and labels shown
    once (per platform only where they differ), from the tag page's image details."""
    about = ImageAbout()
    if details is None:
        return about
    images = list(details.images)
    label_sets = [dict(i.labels) for i in images]
    common = dict(label_sets[0]) if label_sets else {}
    for labels in label_sets[1:]:
        common = {k: v for k, v in common.items() if labels.get(k) == v}
    about.labels = common
    if len(images) > 1:
        for image, labels in zip(images, label_sets, strict=True):
            differing = {k: v for k, v in labels.items() if k not in common}
            if differing:
                about.platform_labels[image.platform] = differing
    merged = {k: v for k, v in common.items() if k.startswith(OCI_PREFIX)}
    merged.update(
        {k: v for k, v in (details.annotations or {}).items() if k.startswith(OCI_PREFIX)}
    )
    created = merged.pop(OCI_PREFIX + "created", "")
    about.created = next((i.created for i in images if i.created), "") or created
    about.created_at = _parse_time(about.created)
    source = merged.get(OCI_PREFIX + "source", "")
    for key in sorted(merged, key=lambda k: (k != OCI_PREFIX + "source", k)):
        short, value = key[len(OCI_PREFIX) :], merged[key]
        url = _link(value)
        if short == "revision" and _link(source):
            host = source.split("://", 1)[1].split("/", 1)[0]
            if host in COMMIT_HOSTS:
                url = f"{source.rstrip('/').removesuffix('.git')}/commit/{value}"
        about.facts.append(Fact(short, value, url))
    return about
