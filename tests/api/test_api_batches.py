"""Promote many at once through the API: 12 images across 4 repositories, one of which
fails in the copy (its layer is gone from the source's storage); the other 11 are promoted
and recorded, and the failure undoes none of them. The dry run before says what the real
run then did, and writes nothing."""

from __future__ import annotations

import pytest

from registries.models import Batch, HistoryEvent, Promotion, Registry, Tag
from tests.api.conftest import Api, make_key
from tests.support.batches import break_blob, push_release, row_counts, wait_indexed
from tests.support.images import skopeo_inspect_raw

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

COUNTERS = {
    "blobsTotal": "blobs_total",
    "blobsToCopy": "blobs_copied",
    "blobsToMount": "blobs_mounted",
    "blobsPresent": "blobs_skipped",
    "bytesTotal": "bytes_total",
    "bytesToCopy": "bytes_copied",
    "bytesToMount": "bytes_mounted",
    "bytesPresent": "bytes_skipped",
    "manifests": "manifests_total",
    "referrers": "signatures_copied",
}


def test_a_batch_of_12_across_4_repositories_promotes_11_and_the_failed_one_runs_again(
    api: Api, demo, admin_creds, tmp_path
):
    prefix, images = push_release(demo.hostport, creds=admin_creds, tmp_path=tmp_path)
    wait_indexed("devdocker", images)
    broken = (f"{prefix}/svc2", "4.2.1")
    path, data = break_blob(demo.registry, images[broken].layer_digests[0])
    body = {
        "fromFeed": "devdocker",
        "repositories": [f"{prefix}/*"],
        "tags": ["4.2.*"],
        "comments": "Release 4.2",
    }

    # The dry run: every image, its digest and what would move; nothing written.
    before = row_counts()
    dry = api.post("/api/promotions/batch?dryRun=true", json=body)
    assert dry.status_code == 200, dry.text
    preview = dry.json()
    assert row_counts() == before
    assert preview["dryRun"] is True and preview["toFeed"] == "rcdocker"
    assert [(i["repository"], i["version"]) for i in preview["images"]] == sorted(images)
    for image in preview["images"]:
        info = images[(image["repository"], image["version"])]
        assert image["digest"] == info.digest and image["ok"] is True
        assert image["targetTag"] is None and image["replaces"] is False
        # Same backing registry: every blob would be mounted, none streamed.
        assert image["transfer"]["blobsToMount"] == len(info.blob_digests)
        assert image["transfer"]["blobsToCopy"] == image["transfer"]["blobsPresent"] == 0
    assert not Tag.objects.filter(repository__registry__name="rcdocker").exists()

    answer = api.post("/api/promotions/batch", json=body)

    assert answer.status_code == 202, answer.text
    assert answer.headers["Location"] == f"/api/promotions/batches/{answer.json()['id']}"
    batch = api.get(answer.headers["Location"]).json()
    assert (batch["images"], batch["finished"]) == (12, 12)
    assert (batch["succeeded"], batch["failed"], batch["refused"]) == (11, 1, 0)
    assert batch["status"] == "failed"
    by_image = {(i["repository"], i["version"]): i for i in batch["items"]}
    assert by_image[broken]["status"] == "failed"
    assert images[broken].layer_digests[0] in by_image[broken]["error"]
    # The 11 others are at the target, digest-exact, each with its own History event.
    promoted = HistoryEvent.objects.filter(action="promoted", registry="rcdocker")
    assert promoted.count() == 11
    assert set(promoted.values_list("comment", flat=True)) == {"Release 4.2"}
    for (repository, tag), info in images.items():
        item = by_image[(repository, tag)]
        if (repository, tag) == broken:
            assert not Tag.objects.filter(
                repository__registry__name="rcdocker", repository__name=repository, name=tag
            ).exists()
            continue
        assert item["status"] == "succeeded" and item["digest"] == info.digest
        at_target = skopeo_inspect_raw(
            f"docker://{demo.hostport}/rcdocker/{repository}:{tag}", creds=admin_creds
        )
        assert at_target == info.body
        # The dry run's numbers are what the promotion did.
        done = Promotion.objects.get(pk=item["promotionId"])
        planned = next(
            i for i in preview["images"] if i["repository"] == repository and i["version"] == tag
        )
        assert {k: getattr(done, v) for k, v in COUNTERS.items()} == planned["transfer"]

    # Run again the failed ones, once the source is whole again: only that one moves.
    path.write_bytes(data)
    again = api.post(f"/api/promotions/batches/{batch['id']}/rerun-failed")
    assert again.status_code == 202, again.text
    batch = api.get(answer.headers["Location"]).json()
    assert (batch["succeeded"], batch["failed"], batch["status"]) == (12, 0, "succeeded")
    assert HistoryEvent.objects.filter(action="promoted", registry="rcdocker").count() == 12
    assert Promotion.objects.count() == 12  # the failed one ran again; no new promotions
    nothing = api.post(f"/api/promotions/batches/{batch['id']}/rerun-failed")
    assert nothing.status_code == 400 and "nothing to run again" in nothing.json()["error"]


def test_pairs_across_repositories_and_refusals_are_per_image(
    api: Api, demo, admin_creds, tmp_path
):
    prefix, images = push_release(
        demo.hostport, creds=admin_creds, tmp_path=tmp_path, repositories=2, tags=("1.0",)
    )
    wait_indexed("devdocker", images)
    pairs = [f"{prefix}/svc0:1.0", f"{prefix}/svc1:1.0", f"{prefix}/svc1:9.9"]

    answer = api.post("/api/promotions/batch", json={"fromFeed": "devdocker", "images": pairs})

    assert answer.status_code == 202, answer.text
    batch = answer.json()
    assert [i["status"] for i in batch["items"]] == ["succeeded", "succeeded", "refused"]
    missing = batch["items"][2]
    assert missing["refusal"] == "not_found" and "no tag 9.9" in missing["error"]
    assert Batch.objects.get().items.count() == 3
    # Asking again for what is there starts nothing new: "already there".
    again = api.post("/api/promotions/batch", json={"fromFeed": "devdocker", "images": pairs[:2]})
    assert [i["alreadyPromoted"] for i in again.json()["items"]] == [True, True]
    assert Promotion.objects.count() == 2


def test_batch_errors_are_clear_and_write_nothing(api: Api, demo):
    viewer = Api(demo.url, key=make_key("feed", feeds=["devdocker"], permissions=["view"]))
    before = row_counts()
    cases = [
        ({"fromFeed": "devdocker"}, 400, "Give repositories or images"),
        ({"fromFeed": "devdocker", "images": ["no-tag"]}, 400, "repository:tag"),
        ({"fromFeed": "nofeed", "images": ["a:1"]}, 404, "no registry called 'nofeed'"),
        ({"fromFeed": "devdocker", "repositories": ["nothing/*"]}, 404, "Nothing in devdocker"),
        (
            {"fromFeed": "devdocker", "tags": ["1.*"], "images": ["a:1"]},
            400,
            "name the repositories",
        ),
    ]
    for body, status, message in cases:
        answer = api.post("/api/promotions/batch", json=body)
        assert answer.status_code == status, (body, answer.text)
        assert message in answer.json()["error"], (body, answer.text)
    refused = viewer.post(
        "/api/promotions/batch", json={"fromFeed": "devdocker", "images": ["a:1"]}
    )
    assert refused.status_code == 403 and "Promote Packages on rcdocker" in refused.json()["error"]
    assert row_counts() == before


def test_the_rate_limit_refuses_the_images_over_it_and_run_again_asks_later(
    api: Api, demo, admin_creds, tmp_path, settings
):
    prefix, images = push_release(
        demo.hostport,
        creds=admin_creds,
        tmp_path=tmp_path,
        repositories=1,
        tags=("1.0", "1.1", "1.2"),
    )
    wait_indexed("devdocker", images)
    settings.PROMOTER_PROMOTIONS_PER_MINUTE = 2
    body = {"fromFeed": "devdocker", "repositories": [f"{prefix}/svc0"], "tags": ["1.*"]}

    batch = api.post("/api/promotions/batch", json=body).json()

    assert [i["status"] for i in batch["items"]] == ["succeeded", "succeeded", "refused"]
    assert batch["items"][2]["refusal"] == "rate_limited"
    assert "2 promotions within a minute" in batch["items"][2]["error"]
    settings.PROMOTER_PROMOTIONS_PER_MINUTE = 3  # a minute later, as it were: one more
    again = api.post(f"/api/promotions/batches/{batch['id']}/rerun-failed").json()
    assert [i["status"] for i in again["items"]] == ["succeeded"] * 3
    assert HistoryEvent.objects.filter(action="promoted").count() == 3


def test_a_target_that_requires_a_comment_gets_one_for_a_batch_and_its_dry_run(api: Api, demo):
    Registry.objects.filter(name="rcdocker").update(require_comment=True)
    body = {"fromFeed": "devdocker", "images": ["team/api:1.0"]}
    before = row_counts()

    for url in ("/api/promotions/batch?dryRun=true", "/api/promotions/batch"):
        answer = api.post(url, json=body)
        assert answer.status_code == 400, answer.text
        assert "A comment is required to promote into rcdocker" in answer.json()["error"]
    assert row_counts() == before
