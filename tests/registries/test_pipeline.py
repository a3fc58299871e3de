"""The pipeline in view, read back from the server: chains, the board's lists, reasons, the
whole trail, travelled signatures, failures on record, the audit log and its exports."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json

import pytest
from django.contrib.auth import get_user_model

from accounts.permissions import Principal
from promoter.errors import Invalid
from registries import selectors_audit, selectors_pipeline
from registries.models import HistoryEvent, Registry, Tag
from tests.conftest import user_with
from tests.registries.pipeline_seed import Seed, seed_pipeline

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def comments_required(demo):
    """The demo as make run creates it: rc and prod require a comment."""
    Registry.objects.filter(name__in=["rcdocker", "proddocker"]).update(require_comment=True)
    return demo


@pytest.fixture
def seed(comments_required, tmp_path) -> Seed:
    return seed_pipeline(comments_required, tmp_path)


def names(chains) -> list[list[str]]:
    return [[r.name for r in chain] for chain in chains]


# --- without a registry ----------------------------------------------------------------


def test_the_demo_requires_a_comment_into_its_validated_registries(db):
    from registries.bootstrap import demo_ensure

    demo_ensure()
    required = dict(Registry.objects.values_list("name", "require_comment"))
    assert required == {"devdocker": False, "rcdocker": True, "proddocker": True}


def test_chains_are_drawn_from_promote_to_any_number_in_pipeline_order(db):
    from registries.bootstrap import tasks_ensure

    tasks_ensure()
    made = {}
    for name, target in [
        ("c", None),
        ("b", "c"),
        ("a", "b"),
        ("w", "b"),
        ("y", None),
        ("x", "y"),
        ("z", None),
    ]:
        made[name] = Registry.objects.create(name=name, promote_to=made.get(target))
    everyone = Principal.promoter()

    chains = selectors_pipeline.pipeline_chains(principal=everyone)

    assert names(chains) == [["a", "b", "c"], ["w", "b", "c"], ["x", "y"], ["z"]]
    ordered = selectors_pipeline.registries_in_pipeline_order(Registry.objects.all())
    assert [r.name for r in ordered] == ["a", "b", "c", "w", "x", "y", "z"]
    # Someone who sees only b and c sees one chain of two stages, not two copies.
    viewer = user_with("View & Download Packages", registry="b")
    user_with("View & Download Packages", registry="c", username=viewer.username)
    assert names(selectors_pipeline.pipeline_chains(principal=Principal(user=viewer))) == [
        ["b", "c"]
    ]


def test_a_disabled_promote_says_why(db):
    from tests.accounts.helpers import pipeline as demo_pipeline

    registries = demo_pipeline()
    eve = user_with("View & Download Packages")
    user_with("Promote Packages", registry="devdocker", username=eve.username)
    dana = user_with("View & Download Packages")
    user_with("Promote Packages", registry="rcdocker", username=dana.username)
    dev, rc = registries["devdocker"], registries["rcdocker"]

    refused = selectors_pipeline.promote_option(principal=Principal(user=eve), source=dev)
    allowed = selectors_pipeline.promote_option(principal=Principal(user=dana), source=dev)
    anonymous = selectors_pipeline.promote_option(principal=Principal.anonymous(), source=dev)

    assert (refused.allowed, refused.reason) == (False, "needs Promote Packages on rcdocker")
    assert refused.label == "Promote to rcdocker"
    assert (allowed.allowed, allowed.label, allowed.reason) == (True, "Promote to rcdocker", "")
    assert anonymous.reason == "sign in to promote"
    Registry.objects.filter(pk=rc.pk).update(active=False)
    dev.refresh_from_db()
    inactive = selectors_pipeline.promote_option(principal=Principal(user=dana), source=dev)
    assert inactive.reason == "rcdocker is not active"


def test_the_board_waits_by_tag_and_digest_among_the_newest_images(admin_client, monkeypatch):
    """What waits between stages: a tag the next stage lacks, or holds at another digest (a
    re-push); not one it holds at the same digest, nor an accessory. Looked for among the
    source's newest images only (a window, so the board costs the same at any size), and
    the page says so when the source holds more."""
    from django.utils import timezone

    from registries.models import Repository

    monkeypatch.setattr(selectors_pipeline, "COUNT_CAP", 6)
    monkeypatch.setattr(selectors_pipeline, "WAITING_WINDOW", 6)
    dev, rc = Registry.objects.get(name="devdocker"), Registry.objects.get(name="rcdocker")
    now = timezone.now()
    api = Repository.objects.create(registry=dev, name="team/api")
    api_rc = Repository.objects.create(registry=rc, name="team/api")

    def tag(repo, name, n, age):
        return Tag.objects.create(
            repository=repo,
            name=name,
            digest=f"sha256:{n:064x}",
            pushed_at=now - dt.timedelta(minutes=age),
        )

    for i in range(6):  # 1.0 newest … 1.5 oldest; 1.9 beyond the window
        tag(api, f"1.{i}", i, age=i)
    tag(api, "1.9", 9, age=60)
    tag(api, f"sha256-{0:064x}.sig", 50, age=0)  # an accessory: never waits
    tag(api_rc, "1.0", 0, age=0)  # promoted: same digest
    tag(api_rc, "1.1", 99, age=0)  # rc holds 1.1 at another digest: 1.1 waits
    tag(api_rc, "1.2", 2, age=0)

    board = selectors_pipeline.pipeline_board(
        principal=Principal(user=get_user_model().objects.get(username="Admin"))
    )
    [chain] = [c for c in board if c.stages[0].registry == dev]
    wait = chain.waiting[0]
    assert (wait.source, wait.target) == (dev, rc)
    assert [t.name for t in wait.tags] == ["1.1", "1.3", "1.4", "1.5"]
    assert (wait.count, wait.windowed, chain.stages[0].count_label) == (4, True, "6+")
    assert all(t.registry_id == dev.pk for t in wait.tags)

    page = html.unescape(admin_client.get("/").content.decode())
    assert "Looked for among the newest 6 images of devdocker." in page
    assert "1.9" not in page


def test_the_privilege_form_previews_the_effect_in_words(admin_client):
    from accounts.models import Task

    dana = user_with("View & Download Packages", username="dana")
    promote = Task.objects.get(name="Promote Packages")
    rc = Registry.objects.get(name="rcdocker")

    grant = selectors_pipeline.privilege_effect(
        permissions=promote.permissions, registry=rc, restrict=False, user=dana
    )
    page = admin_client.get(
        "/administration/users-tasks",
        {
            "preview": "1",
            "task": promote.pk,
            "principal": f"user:{dana.pk}",
            "registry": rc.pk,
            "effect": "grant",
        },
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="privilege-preview",
    )

    # proddocker has no Promote To registry, so it may promote anywhere: into rc too.
    assert grant == [
        "dana can promote devdocker → rcdocker",
        "dana can promote proddocker → rcdocker",
    ]
    assert page.status_code == 200
    assert "dana can promote devdocker → rcdocker" in page.content.decode()
    assert "<html" not in page.content.decode()
    user_with("Promote Packages", registry="rcdocker", username="dana")
    restrict = selectors_pipeline.privilege_effect(
        permissions=promote.permissions, registry=rc, restrict=True, user=dana
    )
    assert "dana can no longer promote devdocker → rcdocker" in restrict


def test_the_image_facts_show_labels_once_and_link_source_and_revision():
    from registries.oci.inspect import ImageDetails, ImageSummary, PlatformImage

    shared = {
        "org.opencontainers.image.source": "https://github.com/example/api.git",
        "org.opencontainers.image.revision": "abc123",
        "team": "api",
    }
    details = ImageDetails(
        ImageSummary("sha256:" + "a" * 64, "x", 1),
        [
            PlatformImage("linux/amd64", "d1", 1, [], {**shared, "arch": "amd64"}, ""),
            PlatformImage("linux/arm64", "d2", 1, [], {**shared, "arch": "arm64"}, ""),
        ],
        "",
        {"org.opencontainers.image.created": "2026-01-02T03:04:05Z"},
    )

    about = selectors_pipeline.image_about(details)

    assert about.labels == shared
    assert about.platform_labels == {
        "linux/amd64": {"arch": "amd64"},
        "linux/arm64": {"arch": "arm64"},
    }
    facts = {f.key: (f.value, f.url) for f in about.facts}
    assert facts["source"] == (
        "https://github.com/example/api.git",
        "https://github.com/example/api.git",
    )
    assert facts["revision"] == ("abc123", "https://github.com/example/api/commit/abc123")
    assert about.created == "2026-01-02T03:04:05Z" and about.created_at.year == 2026


@pytest.mark.parametrize(
    "params, message",
    [
        ({"action": "exploded"}, "There is no action 'exploded'"),
        ({"status": "maybe"}, "succeeded or failed"),
        ({"since": "yesterday"}, "not a date"),
        ({"since": "2026-02-02", "until": "2026-01-01"}, "swap them"),
        ({"digest": "sha256:xyz"}, "is not a digest"),
        ({"source": "Not A Registry"}, "is not a registry name"),
        ({"user": "x" * 300}, "at most 255"),
    ],
)
def test_bad_audit_filters_get_a_clear_message_and_a_400(admin_client, params, message):
    page = admin_client.get("/audit/", params)
    export = admin_client.get("/audit/export.csv", params)

    assert page.status_code == 400 and message in html.unescape(page.content.decode())
    assert export.status_code == 400 and message in export.content.decode()


# --- on a seeded pipeline ---------------------------------------------------------------


@pytest.mark.slow
def test_the_seeded_pipeline_reads_back_as_a_release_manager_needs(seed, admin_client):
    admin = Principal(user=get_user_model().objects.get(username="Admin"))

    (chain,) = selectors_pipeline.pipeline_board(principal=admin)
    assert [s.registry.name for s in chain.stages] == ["devdocker", "rcdocker", "proddocker"]
    dev_rc, rc_prod = chain.waiting
    # Not yet in prod: the web build rolled back in rc and the signed worker; api is there.
    assert {f"{t.repository.name}:{t.name}" for t in rc_prod.tags} == {
        f"{seed.web}:2.0.1",
        f"{seed.worker}:3.1",
    }
    # Not yet in rc: api re-pushed (A2) and web W2 (rc was rolled back to W1); the signature
    # tag is never listed as an image.
    assert {f"{t.repository.name}:{t.name}" for t in dev_rc.tags} == {
        f"{seed.api}:1.0",
        f"{seed.web}:2.0.1",
    }
    assert all(not t.name.startswith("sha256-") for s in chain.stages for t in s.newest)

    # The whole trail of dev's api:1.0 keeps the promotions of A1 after the re-push.
    dev_api = Tag.objects.get(repository__registry__name="devdocker", repository__name=seed.api)
    assert dev_api.digest == seed.a2
    trail = list(selectors_pipeline.tag_trail(principal=admin, tag=dev_api))
    seen = {(e.action, e.registry, e.digest) for e in trail}
    assert ("promoted", "rcdocker", seed.a1) in seen
    assert ("promoted", "proddocker", seed.a1) in seen
    assert ("pushed", "devdocker", seed.a2) in seen and ("pushed", "devdocker", seed.a1) in seen

    # The signature travelled with the promotion and is on record as such; sync finds
    # nothing to call a push.
    from registries.services.index import sync_registry

    travelled = HistoryEvent.objects.get(registry="rcdocker", tag=seed.signature_tag)
    assert (travelled.action, travelled.subject, travelled.from_registry) == (
        "promoted",
        seed.signed,
        "devdocker",
    )
    # (The registry outlives each test's database: other tests' repositories may be synced
    # in too, so only this pipeline's repositories are looked at.)
    sync_registry(Registry.objects.get(name="rcdocker"))
    assert not HistoryEvent.objects.filter(
        registry="rcdocker", repository__in=seed.repositories, actor="sync"
    ).exists()
    rc_worker = Tag.objects.get(
        repository__registry__name="rcdocker", repository__name=seed.worker, name="3.1"
    )
    rc_trail = selectors_pipeline.tag_trail(principal=admin, tag=rc_worker)
    assert any(e.tag == seed.signature_tag for e in rc_trail)

    # The failure is on rcdocker's record, with what went wrong.
    failed = HistoryEvent.objects.get(action="failed")
    assert (failed.registry, failed.from_registry, failed.actor) == (
        "rcdocker",
        "devdocker",
        "dana",
    )
    assert seed.failed_digest in failed.error and "no longer in devdocker" in failed.error

    # Where the signed image is: dev and rc, by digest.
    places = selectors_pipeline.image_locations(principal=admin, digest=seed.signed)
    assert [(p.registry.name, p.tag) for p in places] == [("devdocker", "3.1"), ("rcdocker", "3.1")]
    chips = selectors_pipeline.stage_chips(
        registry=Registry.objects.get(name="devdocker"),
        repository=seed.worker,
        digests=[seed.signed],
    )[seed.signed]
    assert [(c.registry.name, c.held) for c in chips] == [
        ("devdocker", True),
        ("rcdocker", True),
        ("proddocker", False),
    ]

    # Promote's rules, in the one place: a comment into rc, and never an accessory alone.
    from registries.services.promotions import promotion_request

    dev = Registry.objects.get(name="devdocker")
    rc = Registry.objects.get(name="rcdocker")
    with pytest.raises(Invalid, match="A comment is required to promote into rcdocker"):
        promotion_request(
            source=dev, repository=seed.api, tag="1.0", target=rc, actor=admin, comment=" "
        )
    with pytest.raises(Invalid, match="travels with it"):
        promotion_request(
            source=dev,
            repository=seed.worker,
            tag=seed.signature_tag,
            target=rc,
            actor=admin,
            comment="sig alone",
        )

    # The replace warning's facts: rc's web:2.0.1 holds W1 (rolled back by Admin).
    dev_web = Tag.objects.get(repository__registry__name="devdocker", repository__name=seed.web)
    (state,) = selectors_pipeline.target_states(tag=dev_web, targets=[rc])
    assert (state.digest, state.replaces, state.actor, state.action) == (
        seed.w1,
        True,
        "Admin",
        "rolled_back",
    )

    check_audit(seed, admin, admin_client)


def rows(principal, **where) -> list[selectors_audit.AuditRow]:
    return list(
        selectors_audit.audit_rows(principal=principal, where=selectors_audit.AuditFilter(**where))
    )


def check_audit(seed: Seed, admin: Principal, client) -> None:
    everything = rows(admin)
    assert {r.kind for r in everything} == {"history", "configuration"}
    assert everything == sorted(everything, key=lambda r: r.created_at, reverse=True)
    # Each filter narrows to what it names.
    promoted_prod = rows(admin, action="promoted", target="proddocker")
    assert [(r.repository, r.actor, r.from_registry) for r in promoted_prod] == [
        (seed.api, "Admin", "rcdocker")
    ]
    assert {r.action for r in rows(admin, status="failed")} == {"failed"}
    assert {r.from_registry for r in rows(admin, source="devdocker")} == {"devdocker"}
    assert {r.actor for r in rows(admin, user="DANA")} == {"dana"}
    assert {r.repository for r in rows(admin, repository=seed.web)} == {seed.web}
    assert {r.repository for r in rows(admin, repository=f"{seed.prefix}/")} == {
        seed.api,
        seed.web,
        seed.worker,
        seed.old_repository,
    }
    assert {r.tag for r in rows(admin, tag="2.0.1")} == {"2.0.1"}
    by_digest = rows(admin, digest=seed.signed[:19])
    assert {r.tag for r in by_digest} >= {"3.1", seed.signature_tag}
    old = rows(admin, until=seed.old_day)
    assert [r.repository for r in old] == [seed.old_repository]
    newer = rows(admin, since=seed.old_day + dt.timedelta(days=1))
    assert newer and seed.old_repository not in {r.repository for r in newer}
    assert [r.action for r in rows(admin, action="configuration")] == ["registry.updated"]

    # Pages follow a cursor and lose nothing.
    where = selectors_audit.AuditFilter()
    first = selectors_audit.audit_page(principal=admin, where=where, size=5)
    second = selectors_audit.audit_page(
        principal=admin, where=where, cursor=first.next_cursor, size=5
    )
    back = selectors_audit.audit_page(
        principal=admin, where=where, cursor=second.previous_cursor, size=5
    )
    assert [r.id for r in back] == [r.id for r in first]
    assert [(r.kind, r.id) for r in first.rows + second.rows] == [
        (r.kind, r.id) for r in everything[:10]
    ]

    # The CSV and JSON exports hold exactly the rows of the same query.
    query = {"action": "promoted", "target": "rcdocker"}
    expected = [r.as_dict() for r in rows(admin, **query)]
    exported = client.get("/audit/export.csv", query)
    assert exported.status_code == 200 and exported["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert [(r["created_at"], r["tag"], r["digest"]) for r in table] == [
        (e["created_at"], e["tag"], e["digest"]) for e in expected
    ]
    as_json = json.loads(b"".join(client.get("/audit/export.json", query).streaming_content))
    assert [(r["created_at"], r["tag"], r["digest"]) for r in as_json] == [
        (e["created_at"], e["tag"], e["digest"]) for e in expected
    ]

    # The same query through the API (an API key, as scripts call it).
    from accounts.models import ApiKey
    from tests.accounts.helpers import make_key

    _, key = make_key(ApiKey.Kind.SYSTEM)
    answer = client.get("/api/audit/events", query, HTTP_X_APIKEY=key).json()
    assert [(e["createdAt"][:19], e["tag"], e["digest"]) for e in answer["events"]] == [
        (e["created_at"][:19], e["tag"], e["digest"]) for e in expected
    ]
    assert answer["next"] is None
    first = client.get("/api/audit/events", HTTP_X_APIKEY=key).json()
    api_rows = [(e["kind"], e["id"]) for e in first["events"]]
    while first["next"]:  # bounded: the log is finite and each page moves on
        first = client.get("/api/audit/events", {"cursor": first["next"]}, HTTP_X_APIKEY=key).json()
        api_rows += [(e["kind"], e["id"]) for e in first["events"]]
    assert api_rows == [(r.kind, r.id) for r in rows(admin)]
    refused = client.get("/api/audit/events", {"status": "maybe"}, HTTP_X_APIKEY=key)
    assert refused.status_code == 400 and "succeeded or failed" in refused.text

    # A limited user sees only the registries they may view, and no configuration.
    limited = user_with("View & Download Packages", registry="proddocker")
    mine = rows(Principal(user=limited))
    assert mine and {r.kind for r in mine} == {"history"}
    assert all("proddocker" in (r.registry, r.from_registry) for r in mine)
