"""Load, reduced: 50 promotions requested at once through the API, many onto one target tag."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from registries.models import HistoryEvent, Promotion, Registry, Tag
from tests.support.accounts import PASSWORD
from tests.support.images import push_image
from tests.support.wait import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
SOURCES = 10
REQUESTS = 50


@pytest.mark.slow
def test_fifty_concurrent_api_promotions_lose_nothing(demo, admin_creds, tmp_path):
    # Ten General registries, each holding a different image as team/load:1.0; all of them
    # promote into the same target tag rcdocker/team/load:1.0.
    images = {}
    for n in range(SOURCES):
        Registry.objects.create(name=f"load{n}")
        images[f"load{n}"] = push_image(
            demo.hostport,
            f"load{n}/team/load",
            "1.0",
            layers=1,
            layer_size=512,
            creds=admin_creds,
            tmp_path=tmp_path / str(n),
            seed=1000 + n,
        )
    wait_for(
        lambda: Tag.objects.filter(repository__name="team/load").count() == SOURCES, timeout=10
    )

    def promote(i: int) -> requests.Response:
        return requests.post(
            demo.url + "/api/promotions/promote",
            json={
                "packageName": "team/load",
                "version": "1.0",
                "fromFeed": f"load{i % SOURCES}",
                "toFeed": "rcdocker",
                "comments": f"load {i}",
            },
            auth=("Admin", PASSWORD),
            timeout=300,
        )

    with ThreadPoolExecutor(max_workers=REQUESTS) as pool:
        answers = list(pool.map(promote, range(REQUESTS)))

    statuses = [a.status_code for a in answers]
    assert all(s in {200, 202, 400} for s in statuses), statuses  # never 5xx
    assert all(a.text for a in answers if a.status_code == 400)  # failures say why
    wait_for(
        lambda: not Promotion.objects.filter(status__in=["queued", "running"]).exists(),
        timeout=120,
        interval=0.5,
    )
    succeeded = Promotion.objects.filter(status="succeeded")
    failed = Promotion.objects.filter(status="failed")
    assert succeeded.count() + failed.count() == REQUESTS
    assert all(p.error for p in failed)
    events = list(
        HistoryEvent.objects.filter(
            action="promoted", registry="rcdocker", repository="team/load"
        ).order_by("created_at", "id")
    )
    assert len(events) == succeeded.count()
    assert {e.promotion_id for e in events} == set(succeeded.values_list("pk", flat=True))
    final = Tag.objects.get(
        repository__registry__name="rcdocker", repository__name="team/load", name="1.0"
    )
    assert final.digest == events[-1].digest
    from registries.oci.manifest import sha256_digest
    from tests.support.images import skopeo_inspect_raw

    at_registry = skopeo_inspect_raw(
        f"docker://{demo.hostport}/rcdocker/team/load:1.0", creds=admin_creds
    )
    assert sha256_digest(at_registry) == events[-1].digest
