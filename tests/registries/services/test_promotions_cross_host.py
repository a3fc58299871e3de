"""Promotions between two registry processes: streamed blobs, and a registry that stops mid-copy."""

from __future__ import annotations

import pytest

from accounts.permissions import Principal
from registries.models import Promotion, Registry, Tag
from registries.oci.copy import ImageCopier
from registries.runner import promotion_execute
from registries.services.promotions import promotion_request, promotion_retry
from tests.support.images import push_image, skopeo_inspect_raw

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def two_hosts(demo_db, fresh_registry):
    """Two plain registries, registered as hosta (General) and hostb (Validated)."""
    a, b = fresh_registry(), fresh_registry()
    source = Registry.objects.create(name="hosta", endpoint=a.url)
    target = Registry.objects.create(
        name="hostb", endpoint=b.url, usage_type=Registry.UsageType.VALIDATED
    )
    return source, target, a, b


def hostport(backing) -> str:
    return backing.url.split("://", 1)[1]


def admin() -> Principal:
    from django.contrib.auth import get_user_model

    return Principal(user=get_user_model().objects.get(username="Admin"))


def test_cross_host_promotion_streams_blobs_and_keeps_the_digest(two_hosts, unique_repo, tmp_path):
    source, target, a, b = two_hosts
    info = push_image(
        hostport(a),
        unique_repo,
        "1.0",
        layers=3,
        layer_size=256 * 1024,
        platforms=["linux/amd64", "linux/arm64"],
        tmp_path=tmp_path,
    )

    promotion = promotion_request(
        source=source, repository=unique_repo, tag="1.0", target=target, actor=admin()
    )
    promotion.refresh_from_db()

    assert promotion.status == "succeeded", promotion.error
    assert promotion.blobs_copied == promotion.blobs_total > 0
    assert promotion.blobs_mounted == 0
    assert promotion.bytes_done == promotion.bytes_total > 3 * 256 * 1024
    at_b = skopeo_inspect_raw(f"docker://{hostport(b)}/{unique_repo}:1.0")
    assert at_b == skopeo_inspect_raw(f"docker://{hostport(a)}/{unique_repo}:1.0")
    assert Tag.objects.get(repository__registry=target).digest == info.digest

    # Promoting again skips every blob: nothing is copied twice.
    again = promotion_request(
        source=source, repository=unique_repo, tag="1.0", target=target, actor=admin()
    )
    again.refresh_from_db()
    assert again.status == "succeeded"
    assert again.blobs_skipped == again.blobs_total and again.blobs_copied == 0


def test_target_registry_stopping_mid_copy_fails_cleanly_and_retry_succeeds(
    two_hosts, unique_repo, tmp_path, monkeypatch, settings, queued_only
):
    source, target, a, b = two_hosts
    settings.PROMOTER_COPY_PARALLELISM = 1
    old = push_image(hostport(a), unique_repo, "1.0", layers=1, tmp_path=tmp_path / "old", seed=1)
    first = promotion_request(
        source=source, repository=unique_repo, tag="1.0", target=target, actor=admin()
    )
    assert promotion_execute(promotion_id=first.pk).status == "succeeded"
    new = push_image(
        hostport(a),
        unique_repo,
        "1.0",
        layers=4,
        layer_size=64 * 1024,
        tmp_path=tmp_path / "new",
        seed=2,
    )
    promotion = promotion_request(
        source=source, repository=unique_repo, tag="1.0", target=target, actor=admin()
    )

    # Stop the target registry right after the first blob lands.
    original = ImageCopier._count

    def count_then_stop(self, kind, size):
        original(self, kind, size)
        if b.running:
            b.stop()

    monkeypatch.setattr(ImageCopier, "_count", count_then_stop)
    failed = promotion_execute(promotion_id=promotion.pk)

    assert failed.status == "failed"
    assert "unreachable" in failed.error.lower()
    assert "was not changed" in failed.error
    assert 0 < failed.blobs_copied < failed.blobs_total
    assert Tag.objects.get(repository__registry=target).digest == old.digest

    monkeypatch.setattr(ImageCopier, "_count", original)
    b.start()
    assert skopeo_inspect_raw(f"docker://{hostport(b)}/{unique_repo}:1.0") == skopeo_inspect_raw(
        f"docker://{hostport(a)}/{unique_repo}@{old.digest}"
    )  # untouched
    promotion_retry(promotion=failed, actor=admin())
    done = promotion_execute(promotion_id=promotion.pk)
    assert done.status == "succeeded", done.error
    assert done.blobs_skipped >= 1  # what landed before the failure is not copied again
    assert Tag.objects.get(repository__registry=target).digest == new.digest
    assert Promotion.objects.filter(status="succeeded").count() == 2
