"""Issue 11, items 4 to 6: a source registry that tries to exhaust the worker or litter the
target. Each test runs the attack against the real stack (the portal, the bundled
distribution registry as the target) with a hostile registry as the source, and checks
the bounds: memory, requests, and what is left in the target's storage."""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from registries.connections import bundled_client
from registries.models import HistoryEvent, Promotion, Registry, Tag
from registries.oci import RegistryClient
from registries.oci.errors import LimitExceeded
from registries.services.index import sync_registry
from registries.services.promotions import promotion_request
from tests.security.conftest import (
    PeakRss,
    admin,
    external,
    repo_name,
    settle,
    small_image,
    uploads_of,
)
from tests.support.hostile_registry import (
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    index_manifest,
    sha256,
    zeros,
)

MB = 1024 * 1024


def promote(source: Registry, repo: str, tag: str = "1.0") -> Promotion:
    """Request (and, with the in-process task backend, run) a promotion into devdocker."""
    promotion = promotion_request(
        source=source,
        repository=repo,
        tag=tag,
        target=Registry.objects.get(name="devdocker"),
        actor=admin(),
    )
    promotion.refresh_from_db()
    return promotion


def child(digest: str) -> dict:
    return {
        "mediaType": OCI_MANIFEST,
        "digest": digest,
        "size": 1,
        "platform": {"os": "linux", "architecture": "amd64"},
    }


# --- 4: a wide index ----------------------------------------------------------------------
def test_an_index_of_300_children_is_refused_before_any_child_is_fetched(demo, hostile):
    repo = repo_name()
    children = [child(sha256(f"child {i}".encode())) for i in range(300)]
    hostile.add_manifest(repo, "1.0", index_manifest(children), OCI_INDEX)

    with PeakRss() as rss:
        promotion = promote(external("wide", hostile.url), repo)

    assert promotion.status == "failed"
    assert "lists 300 images" in promotion.error and "at most 256" in promotion.error
    child_digests = {c["digest"] for c in children}
    fetched = [
        r for r in hostile.seen("GET", "/manifests/") if r.path.rsplit("/", 1)[1] in child_digests
    ]
    assert fetched == []
    assert rss.growth < 50 * MB, rss.growth
    assert not Tag.objects.filter(
        repository__registry__name="devdocker", repository__name=repo
    ).exists()


def test_manifest_bytes_held_for_one_plan_are_bounded(demo, hostile):
    """40 distinct children of almost 4 MiB each: 160 MiB held before, at most 32 now."""
    repo = repo_name()
    pad = 4 * MB - 4096

    def body(i: int) -> bytes:
        return json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.empty.v1+json",
                    "digest": sha256(b"{}"),
                    "size": 2,
                },
                "layers": [],
                "annotations": {"pad": f"{i:04d}" + "x" * pad},
            }
        ).encode()

    children = []
    for i in range(40):
        digest = "sha256:" + hashlib.sha256(body(i)).hexdigest()
        hostile.add_generated_manifest(repo, digest, OCI_MANIFEST, lambda i=i: body(i))
        children.append(child(digest))
    hostile.add_manifest(repo, "1.0", index_manifest(children), OCI_INDEX)

    with PeakRss() as rss:
        promotion = promote(external("heavy", hostile.url), repo)

    assert promotion.status == "failed"
    assert "bytes of manifests" in promotion.error
    fetched = hostile.seen("GET", r"/manifests/sha256:")
    assert 8 <= len(fetched) <= 10  # stopped once 32 MiB were held
    assert rss.growth < 120 * MB, rss.growth


def test_a_child_listed_many_times_is_fetched_once(demo, hostile):
    repo = repo_name()
    only = small_image(hostile, repo, tag="amd64")
    hostile.add_manifest(repo, "1.0", index_manifest([child(only)] * 200), OCI_INDEX)

    promotion = promote(external("repeats", hostile.url), repo)

    assert promotion.status == "succeeded", promotion.error
    # Read once to plan the copy, at most once more for the image's facts: never per listing.
    fetched = len(hostile.seen("GET", f"/manifests/{only}"))
    assert fetched <= 2
    # And 10,000 repeats are refused by count, before any child request.
    hostile.add_manifest(repo, "2.0", index_manifest([child(only)] * 10_000), OCI_INDEX)
    promotion = promote(Registry.objects.get(name="repeats"), repo, "2.0")
    assert promotion.status == "failed" and "lists 10000 images" in promotion.error
    assert len(hostile.seen("GET", f"/manifests/{only}")) == fetched


# --- 5: endless pagination ------------------------------------------------------------------
def test_endless_tag_pages_do_not_stall_a_promotion(demo, hostile):
    """Signatures are found by HEADing their tags, never by listing every tag."""
    repo = repo_name()
    small_image(hostile, repo)
    hostile.endless_lists = True

    with PeakRss() as rss:
        promotion = promote(external("endless", hostile.url), repo)

    assert promotion.status == "succeeded", promotion.error
    assert hostile.seen(pattern="/tags/list") == []
    assert len(hostile.seen("HEAD", r"/manifests/sha256-[0-9a-f]{64}\.(sig|att|sbom)$")) == 3
    assert rss.growth < 50 * MB, rss.growth


def test_endless_listings_are_given_up_after_bounded_pages(demo, hostile):
    hostile.endless_lists = True
    registry = external("endless", hostile.url)

    with PeakRss() as rss:
        report = sync_registry(registry)

    assert report.errors and "more than 1000 pages" in report.errors[0]
    assert len(hostile.seen("GET", "/v2/_catalog")) == 1000
    assert rss.growth < 100 * MB, rss.growth
    with pytest.raises(LimitExceeded, match="more than 1000 pages"):
        RegistryClient(hostile.url).tags("team/app")


# --- 6: garbage in the target ---------------------------------------------------------------
def upload_data(portal, path: str) -> tuple[int, int]:
    """(data files, their bytes) in the repository's _uploads in the bundled registry."""
    data = [p for p in uploads_of(portal, path) if p.name == "data"]
    return len(data), sum(p.stat().st_size for p in data)


def layered_image(hostile, repo: str, *, digest: str, size: int) -> None:
    config = hostile.add_small_blob(json.dumps({"os": "linux", "repo": repo}).encode())
    hostile.add_blob(digest, size, zeros(size))
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config,
            "layers": [{"mediaType": OCI_LAYER, "digest": digest, "size": size}],
        }
    ).encode()
    hostile.add_manifest(repo, "1.0", body, OCI_MANIFEST)


def test_a_layer_with_a_false_digest_leaves_nothing_in_the_target(demo, hostile):
    repo = repo_name()
    bogus = sha256(b"not the bytes that will be sent")
    size = 256 * MB
    layered_image(hostile, repo, digest=bogus, size=size)

    with PeakRss() as rss:
        promotion = promote(external("liar", hostile.url), repo)

    assert promotion.status == "failed"
    assert promotion.error.startswith("Digest mismatch")
    assert hostile.blobs[bogus].sent == size  # the whole body came, and was refused
    path = f"devdocker/{repo}"
    # No upload data is left. (Distribution 2.8 itself leaves a ~100-byte hashstates/0
    # file behind for every cancelled upload, even a plain POST + DELETE; its upload
    # purger removes those. Before the fix, the whole 256 MiB stayed.)
    assert settle(lambda: upload_data(demo, path) == (0, 0), seconds=10), uploads_of(demo, path)
    time.sleep(1)  # a late write from the abandoned upload would show now
    assert upload_data(demo, path) == (0, 0)
    assert sum(p.stat().st_size for p in uploads_of(demo, path)) < 4096
    assert bundled_client().blob_size(path, bogus) is None
    assert rss.growth < 200 * MB, rss.growth
    # History holds the failure, with its reason, and nothing that says the image arrived.
    assert list(HistoryEvent.objects.filter(repository=repo).values_list("action", flat=True)) == [
        "failed"
    ]
    assert HistoryEvent.objects.get(repository=repo).error.startswith("Digest mismatch")


def test_a_download_that_breaks_midway_leaves_nothing_in_the_target(demo, hostile):
    repo = repo_name()
    digest = sha256(b"whatever: the body never ends")
    size = 64 * MB
    layered_image(hostile, repo, digest=digest, size=size)
    hostile.blobs[digest].chunks = zeros(size // 2)  # hangs up halfway, every time

    promotion = promote(external("breaking", hostile.url), repo)

    assert promotion.status == "failed"
    assert "broke while reading" in promotion.error
    assert len(hostile.seen("GET", f"/blobs/{digest}")) == 3  # tried 3 times in all
    path = f"devdocker/{repo}"
    assert settle(lambda: upload_data(demo, path) == (0, 0), seconds=10), uploads_of(demo, path)


def test_a_blob_over_the_limit_is_refused_before_it_is_copied(demo, hostile, settings):
    settings.PROMOTER_MAX_BLOB_BYTES = 8 * MB
    repo = repo_name()
    huge = sha256(b"two gibibytes, supposedly")
    layered_image(hostile, repo, digest=huge, size=2 * 1024 * MB)

    promotion = promote(external("huge", hostile.url), repo)

    assert promotion.status == "failed"
    assert "more than the limit of 8388608" in promotion.error
    assert hostile.blobs[huge].sent < 64 * MB  # the download was dropped at its headers
    assert upload_data(demo, f"devdocker/{repo}") == (0, 0)
