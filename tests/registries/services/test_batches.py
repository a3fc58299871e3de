"""Batches and dry runs between two registry processes (streamed copies): the dry run's
numbers are what the promotion then does, the dry run writes nothing, and each image of a
batch meets the target's policy on its own."""

from __future__ import annotations

import pytest

from accounts.permissions import Principal
from registries.models import HistoryEvent, Promotion, Registry
from registries.services.batches import Selection, batch_request
from registries.services.policies import policy_update
from registries.services.promotions import promotion_request
from tests.support.batches import row_counts
from tests.support.images import push_image, skopeo_inspect_raw

pytestmark = pytest.mark.django_db(transaction=True)

LABEL = "org.opencontainers.image.revision"
COUNTERS = (
    "blobs_total",
    "blobs_copied",
    "blobs_mounted",
    "blobs_skipped",
    "bytes_total",
    "bytes_done",
    "bytes_copied",
    "bytes_mounted",
    "bytes_skipped",
    "manifests_total",
    "signatures_copied",
)


@pytest.fixture
def two_hosts(demo_db, fresh_registry):
    a, b = fresh_registry(), fresh_registry()
    source = Registry.objects.create(name="hosta", endpoint=a.url)
    target = Registry.objects.create(
        name="hostb", endpoint=b.url, usage_type=Registry.UsageType.VALIDATED
    )
    return source, target, a.url.split("://")[1], b.url.split("://")[1]


def admin() -> Principal:
    from django.contrib.auth import get_user_model

    return Principal(user=get_user_model().objects.get(username="Admin"))


def test_a_dry_run_says_what_the_batch_then_does_and_writes_nothing(
    two_hosts, unique_repo, tmp_path
):
    source, target, a, b = two_hosts
    labels = {LABEL: "abc123"}
    old = push_image(a, unique_repo, "1.0", layers=2, seed=7, tmp_path=tmp_path, labels=labels)
    first = promotion_request(
        source=source, repository=unique_repo, tag="1.0", target=target, actor=admin()
    )
    first.refresh_from_db()
    assert first.status == "succeeded", first.error
    # 1.0 moves on in the source; 1.1 shares 1.0's two layers (same seed, one more layer);
    # 2.0 shares nothing; 3.0 lacks the label the target's policy now requires.
    new = push_image(a, unique_repo, "1.0", layers=1, seed=8, tmp_path=tmp_path, labels=labels)
    push_image(a, unique_repo, "1.1", layers=3, seed=7, tmp_path=tmp_path, labels=labels)
    push_image(a, unique_repo, "2.0", layers=2, seed=9, tmp_path=tmp_path, labels=labels)
    push_image(a, unique_repo, "3.0", layers=1, seed=10, tmp_path=tmp_path)
    policy_update(registry=target, actor=admin(), values={"required_labels": [{"key": LABEL}]})
    tags = ["1.0", "1.1", "2.0", "3.0"]
    selection = Selection.of(images=[f"{unique_repo}:{t}" for t in tags])

    before = row_counts()
    preview = batch_request(
        source=source, target=target, selection=selection, actor=admin(), dry_run=True
    )

    assert row_counts() == before  # nothing written, nothing queued, no History
    with pytest.raises(RuntimeError):
        skopeo_inspect_raw(f"docker://{b}/{unique_repo}:1.1")  # nothing copied either
    retag, shared, fresh, unlabelled = preview.images
    assert retag.digest == new.digest and retag.replaces
    assert retag.target_tag.digest == old.digest and retag.target_tag.actor == "Admin"
    assert retag.target_tag.at == HistoryEvent.objects.get(action="promoted").created_at
    assert shared.target_tag is None and not shared.replaces
    assert (shared.transfer.blobs_skipped, shared.transfer.blobs_copied) == (2, 2)
    assert (fresh.transfer.blobs_skipped, fresh.transfer.blobs_copied) == (0, 3)
    assert fresh.transfer.bytes_copied == fresh.transfer.bytes_total > 0
    assert [c.ok for c in fresh.checklist.checks] == [True]
    assert not unlabelled.ok and unlabelled.refusal == "policy"
    assert f"label {LABEL} missing" in unlabelled.checklist.summary()
    assert [p.ok for p in preview.images] == [True, True, True, False]

    batch = batch_request(source=source, target=target, selection=selection, actor=admin())

    items = list(batch.items.select_related("promotion").order_by("position"))
    assert [i.status for i in items] == ["succeeded", "succeeded", "succeeded", "refused"]
    assert items[3].refusal == "policy" and items[3].checklist["unmet"] == ["labels"]
    for item, planned in zip(items[:3], preview.images[:3], strict=True):
        done = item.promotion
        assert {c: getattr(done, c) for c in COUNTERS} == {
            c: getattr(planned.transfer, c) for c in COUNTERS
        }, item
        assert done.digest == planned.digest
    assert items[0].promotion.previous_digest == old.digest
    assert skopeo_inspect_raw(f"docker://{b}/{unique_repo}:1.0") == new.body
    assert HistoryEvent.objects.filter(action="promoted").count() == 4  # 1.0 before, and 3
    assert Promotion.objects.count() == 4
