"""The copy engine's round trips against real distribution 2.8 registries: mounts without a
HEAD first, a mount answered 202 streamed into its own session, one manifest PUT when
nothing refers to the image, and referrers asked for while the blobs move."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from registries.bundled import BackingRegistry
from registries.oci import RegistryClient
from registries.oci.copy import ImageCopier, plan_image
from registries.oci.errors import BlobUnknown
from tests.support import artifacts as art
from tests.support.registry import start_registry


class Recording(RegistryClient):
    """A real client that writes down which calls the copier made (shared across threads)."""

    def __init__(self, url: str, calls: list[tuple[str, str]], lock: threading.Lock) -> None:
        super().__init__(url, timeout=(2, 10))
        self._calls, self._calls_lock = calls, lock

    def _note(self, name: str, detail: str = "") -> None:
        with self._calls_lock:
            self._calls.append((name, detail))

    def blob_size(self, repository, digest):
        self._note("blob_size", digest)
        return super().blob_size(repository, digest)

    def mount_or_open_upload(self, repository, digest, from_repo):
        self._note("mount", digest)
        return super().mount_or_open_upload(repository, digest, from_repo)

    def upload_blob(self, repository, digest, chunks, **kwargs):
        self._note("upload", "into the mount's session" if kwargs.get("location") else "new")
        return super().upload_blob(repository, digest, chunks, **kwargs)

    def put_manifest(self, repository, reference, body, media_type):
        self._note("put_manifest", reference)
        return super().put_manifest(repository, reference, body, media_type)


def engine(source_url: str, target_url: str, src: str, dst: str) -> tuple[ImageCopier, list]:
    calls: list[tuple[str, str]] = []
    lock = threading.Lock()
    copier = ImageCopier(
        source_factory=lambda: RegistryClient(source_url, timeout=(2, 10)),
        target_factory=lambda: Recording(target_url, calls, lock),
        source_path=src,
        target_path=dst,
        same_host=True,
        parallelism=2,
        retries=1,
        backoff=0,
    )
    return copier, calls


def sessions_with_data(registry: BackingRegistry, repository: str) -> list[Path]:
    """Upload sessions holding bytes in `repository` (a session's `data` file; distribution
    keeps a small hash-state file even of a cancelled session)."""
    root = registry.config_path.parent / "storage" / "docker/registry/v2/repositories"
    folder = root / repository / "_uploads"
    return sorted(folder.rglob("data")) if folder.is_dir() else []


@pytest.fixture
def other_registry(tmp_path) -> BackingRegistry:
    """A second real registry: a mount there from a repository it lacks answers 202."""
    backing = start_registry(tmp_path / "other")
    yield backing
    backing.stop()


def test_on_one_host_every_blob_is_mounted_unasked_and_the_manifest_put_once_by_tag(
    registry, client, repo
):
    src, dst = f"{repo}/dev", f"{repo}/rc"
    image = art.image(client, src, "1.0", seed=11, layers=3)
    copier, calls = engine(registry.url, registry.url, src, dst)
    plan = plan_image(copier.source, src, "1.0")

    copier.copy_image(plan, tag="1.0")

    assert client.get_manifest(dst, "1.0").body == image.body
    assert copier.counters.blobs_mounted == len(plan.blobs) == 4  # config and 3 layers
    assert [name for name, _ in calls if name != "mount"] == [("put_manifest")]
    assert ("put_manifest", "1.0") in calls  # by the tag, never by digest first
    assert sum(1 for name, _ in calls if name == "mount") == 4


def test_a_mount_answered_202_streams_the_blob_into_the_session_it_opened(
    registry, client, repo, other_registry
):
    """The target is another registry than the copier was told (so it cannot mount): its
    202 opens an ordinary upload session, and the blob is streamed into exactly that one."""
    src, dst = f"{repo}/dev", f"{repo}/rc"
    image = art.image(client, src, "1.0", seed=12, layers=2)
    copier, calls = engine(registry.url, other_registry.url, src, dst)
    plan = plan_image(copier.source, src, "1.0")

    copier.copy_image(plan, tag="1.0")

    with RegistryClient(other_registry.url, timeout=(2, 10)) as target:
        stored = target.get_manifest(dst, "1.0")
        assert stored.body == image.body and stored.digest == image.digest
        for digest in plan.blobs:
            assert target.blob_size(dst, digest) == plan.blobs[digest]
    assert copier.counters.blobs_copied == len(plan.blobs) == 3
    assert copier.counters.blobs_mounted == 0
    uploads = [detail for name, detail in calls if name == "upload"]
    assert uploads == ["into the mount's session"] * 3
    assert sessions_with_data(other_registry, dst) == []


def test_a_blob_the_source_lacks_after_a_202_mount_leaves_no_session_behind(
    registry, repo, other_registry
):
    src, dst = f"{repo}/dev", f"{repo}/rc"
    missing = art.sha256(os.urandom(64))
    copier, calls = engine(registry.url, other_registry.url, src, dst)

    with pytest.raises(BlobUnknown):
        copier.copy_blobs({missing: 64})

    assert ("mount", missing) in calls
    assert sessions_with_data(other_registry, dst) == []  # the mount's session was cancelled


def test_signatures_and_referrers_asked_for_at_once_all_travel_and_the_tag_moves_last(
    registry, client, repo
):
    src, dst = f"{repo}/dev", f"{repo}/rc"
    amd = art.image(client, src, None, seed=13, platform="linux/amd64")
    arm = art.image(client, src, None, seed=14, platform="linux/arm64")
    top = art.index(
        client,
        src,
        "1.0",
        [(amd, art.platform_of("linux/amd64"), None), (arm, art.platform_of("linux/arm64"), None)],
    )
    sig = art.cosign(client, src, top, "sig")
    att = art.cosign(client, src, arm, "att")
    sbom = art.referrer(
        client, src, amd, artifact_type=art.SPDX, payload=b"{}", layer_media_type=art.SPDX
    )
    copier, calls = engine(registry.url, registry.url, src, dst)
    plan = plan_image(copier.source, src, "1.0")

    copier.copy_image(plan, tag="1.0")

    assert client.get_manifest(dst, "1.0").body == top.body
    assert client.get_manifest(dst, art.tag_for(top.digest, ".sig")).body == sig.body
    assert client.get_manifest(dst, art.tag_for(arm.digest, ".att")).body == att.body
    assert client.get_manifest(dst, sbom.digest).body == sbom.body
    assert art.fallback_digests(client, dst, amd.digest) == [sbom.digest]
    assert copier.counters.signatures_copied == 3
    puts = [detail for name, detail in calls if name == "put_manifest"]
    # Content first: children, the index by digest, then what refers to them; the tag last.
    assert puts.index(top.digest) < puts.index(art.tag_for(top.digest, ".sig"))
    assert puts[-1] == "1.0" and puts.count("1.0") == 1
    assert {amd.digest, arm.digest} <= set(puts[: puts.index(top.digest)])
