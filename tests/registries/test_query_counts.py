"""Every page and list costs the same number of SQL queries at any data size.

Each page is read at two seed sizes; the counts must be equal (so nothing runs a query per
row) and small. Times are measured by bench/scale.py, never asserted here.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from registries.models import HistoryEvent, ImageFacts, Promotion, Registry, Repository, Tag
from registries.oci.inspect import ImageSummary
from registries.records import repository_counts_refresh, tag_remove, tag_upsert
from tests.conftest import user_with

BIG = "big/repo"
TAG = "1.0"
LONELY = "lonely"  # a tag with few events inside the busy repository


def _digest(n: int) -> str:
    return f"sha256:{n:064x}"


@pytest.fixture
def pipeline(db):
    from registries.bootstrap import admin_ensure, demo_ensure, tasks_ensure

    tasks_ensure()
    admin_ensure("pw")
    demo_ensure()
    return {r.name: r for r in Registry.objects.all()}


def seed(registries: dict[str, Registry], scale: int) -> None:
    """`scale` × the rows: repositories, tags, History events and promotions."""
    dev, rc = registries["devdocker"], registries["rcdocker"]
    now = timezone.now()
    start = Repository.objects.count()
    repos = Repository.objects.bulk_create(
        Repository(registry=reg, name=f"team/app{start + i}", tag_count=3, total_size=30)
        for reg in (dev, rc)
        for i in range(10 * scale)
    )
    big, _ = Repository.objects.get_or_create(registry=dev, name=BIG)
    Tag.objects.bulk_create(
        Tag(repository=repo, name=f"t{i}", digest=_digest(i), size=10, pushed_at=now)
        for repo in repos
        for i in range(3)
    )
    first = Tag.objects.filter(repository=big).count()
    Tag.objects.bulk_create(
        Tag(repository=big, name=f"v{first + i}", digest=_digest(first + i), pushed_at=now)
        for i in range(60 * scale)
    )
    Tag.objects.get_or_create(
        repository=big, name=TAG, defaults={"digest": _digest(1), "pushed_at": now}
    )
    Tag.objects.get_or_create(
        repository=big, name=LONELY, defaults={"digest": _digest(2), "pushed_at": now}
    )
    ImageFacts.objects.get_or_create(
        digest=_digest(1),
        defaults={"media_type": "application/vnd.oci.image.manifest.v1+json", "facts": {}},
    )
    events = []
    for i in range(40 * scale):
        at = now - dt.timedelta(seconds=i)
        for tag, digest in ((TAG, _digest(i + 10)), (f"v{i}", _digest(1000 + i))):
            events.append(
                HistoryEvent(
                    action="pushed",
                    registry="devdocker",
                    repository=BIG,
                    tag=tag,
                    digest=digest,
                    actor="Admin",
                    created_at=at,
                )
            )
    events += [
        HistoryEvent(
            action="pushed",
            registry="devdocker",
            repository=BIG,
            tag=LONELY,
            digest=_digest(2),
            actor="Admin",
            created_at=now,
        )
    ]
    HistoryEvent.objects.bulk_create(events)
    Promotion.objects.bulk_create(
        Promotion(
            source=dev,
            target=rc,
            repository=f"team/app{i % 7}",
            group_name="team",
            package_name=f"app{i % 7}",
            tag="1.0",
            digest=_digest(i),
            status=Promotion.Status.SUCCEEDED,
            actor="Admin",
            created_at=now - dt.timedelta(seconds=i),
        )
        for i in range(80 * scale)
    )
    Repository.objects.filter(pk=big.pk).update(
        tag_count=Tag.objects.filter(repository=big).count()
    )


def _older_link(html: str) -> str:
    found = re.search(r'href="\?cursor=([^"&]+)[^"]*" rel="next"', html)
    assert found, "no Older link on the page"
    return found.group(1)


PAGES = [
    ("pipeline board", "/", {}),
    ("registries index", "/registries/", {}),
    ("registry page", "/registries/devdocker/", {}),
    ("repository page", f"/registries/devdocker/images/{BIG}", {}),
    ("repository page 2", f"/registries/devdocker/images/{BIG}", {"page": 2}),
    ("tag page", f"/registries/devdocker/images/{BIG}:{TAG}", {}),
    ("History page 1", f"/registries/devdocker/images/{BIG}:{TAG}", {"tab": "history"}),
    ("History, the lonely tag", f"/registries/devdocker/images/{BIG}:{LONELY}", {"tab": "history"}),
    ("promotions page 1", "/promotions/", {}),
    ("audit page 1", "/audit/", {}),
    ("audit, filtered", "/audit/", {"action": "pushed", "repository": BIG, "target": "devdocker"}),
    ("audit, by digest", "/audit/", {"digest": _digest(1)[:20]}),
    ("API audit events", "/api/audit/events", {"repository": BIG}),
    ("API list", "/api/promotions/list", {}),
    ("API list, filtered", "/api/promotions/list", {"packageName": "app3", "toFeed": "rcdocker"}),
    ("API list, by group", "/api/promotions/list", {"group": "team"}),
]


def _counts(client) -> dict[str, int]:
    counts = {}
    for name, path, params in PAGES:
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(path, params)
        assert response.status_code == 200, (name, response.content[:500])
        counts[name] = len(ctx.captured_queries)
    # Deep pages, through the cursor each page links to.
    for name, path, params in [
        ("History, older page", f"/registries/devdocker/images/{BIG}:{TAG}", {"tab": "history"}),
        ("promotions, older page", "/promotions/", {}),
        ("audit, older page", "/audit/", {}),
    ]:
        cursor = _older_link(client.get(path, params).content.decode())
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(path, {**params, "cursor": cursor})
        assert response.status_code == 200
        counts[name] = len(ctx.captured_queries)
    return counts


@pytest.mark.parametrize("who", ["Admin", "limited"])
def test_every_page_costs_the_same_queries_at_any_size(client, pipeline, who):
    if who == "Admin":
        user = get_user_model().objects.get(username="Admin")
    else:
        user = user_with("View & Download Packages", registry="devdocker")
    client.force_login(user)
    seed(pipeline, 1)
    small = _counts(client)
    seed(pipeline, 5)
    large = _counts(client)
    assert large == small, {k: (small[k], large[k]) for k in small if small[k] != large[k]}
    # Small and bounded as well as constant: a page is a handful of reads.
    assert max(large.values()) <= 16, large


def test_history_pages_link_to_each_other_by_cursor(client, pipeline):
    client.force_login(get_user_model().objects.get(username="Admin"))
    seed(pipeline, 1)
    url = f"/registries/devdocker/images/{BIG}:{TAG}"
    first = client.get(url, {"tab": "history"}).content.decode()
    cursor = _older_link(first)
    second = client.get(url, {"tab": "history", "cursor": cursor}).content.decode()
    rows = re.compile(r'<td data-label="On"><time datetime="([^"]+)"')  # each event's time
    assert len(rows.findall(first)) == 20
    assert len(rows.findall(second)) == 20
    assert not set(rows.findall(first)) & set(rows.findall(second))
    # The second page starts where the first stopped: newest first, no row twice.
    shown = [
        ev.pk
        for ev in HistoryEvent.objects.filter(repository=BIG, tag=TAG).order_by(
            "-created_at", "-id"
        )[:40]
    ]
    assert f"{shown[19]}" in cursor
    newer = re.search(r'href="\?cursor=([^"&]+)[^"]*" rel="prev"', second).group(1)
    back = client.get(url, {"tab": "history", "cursor": newer}).content.decode()
    assert rows.findall(back) == rows.findall(first)
    # A mangled cursor shows the first page rather than an error.
    for mangled in ("b99x", "b1." + "9" * 19, "a" + "9" * 18 + ".1"):
        assert client.get(url, {"tab": "history", "cursor": mangled}).status_code == 200


def test_repository_counters_follow_pushes_and_deletes(pipeline):
    dev = pipeline["devdocker"]
    summary = ImageSummary(_digest(1), "application/vnd.oci.image.manifest.v1+json", 100)
    tag_upsert(registry=dev, repository="team/counted", tag="a", summary=summary)
    tag_upsert(registry=dev, repository="team/counted", tag="b", summary=summary)
    bigger = ImageSummary(_digest(2), summary.media_type, 250)
    tag_upsert(registry=dev, repository="team/counted", tag="b", summary=bigger)
    repo = Repository.objects.get(registry=dev, name="team/counted")
    assert (repo.tag_count, repo.total_size) == (2, 350)
    tag_remove(registry=dev, repository="team/counted", tag="a")
    repo.refresh_from_db()
    assert (repo.tag_count, repo.total_size) == (1, 250)
    # A tag changed behind the services' back is healed by the recount that sync runs.
    Tag.objects.filter(repository=repo).update(size=7)
    repository_counts_refresh(registry=dev)
    repo.refresh_from_db()
    assert (repo.tag_count, repo.total_size) == (1, 7)
