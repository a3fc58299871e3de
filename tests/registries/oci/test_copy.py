"""The copy engine against an in-memory registry (a fake, for what distribution 2.8 lacks:
the OCI referrers API), plus its ordering and refusal rules."""

from __future__ import annotations

import hashlib
import json
import threading
from contextlib import contextmanager

import pytest

from registries.oci.constants import OCI_INDEX, OCI_MANIFEST
from registries.oci.copy import ImageCopier, _run_windowed, plan_image, signature_tags
from registries.oci.errors import DigestMismatch, ManifestUnknown, NameUnknown
from registries.oci.manifest import Descriptor, Manifest


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class FakeRegistry:
    """Just enough of RegistryClient, in memory; records the order of writes."""

    def __init__(self, *, referrers_api: bool = True, lie: bool = False) -> None:
        self.blobs: dict[tuple[str, str], bytes] = {}
        self.manifests: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.writes: list[str] = []
        self.referrers_api = referrers_api
        self.lie = lie

    # reads
    def get_manifest(self, repo, ref):
        if (repo, ref) not in self.manifests:
            raise ManifestUnknown(f"{repo}@{ref}")
        body, media_type = self.manifests[(repo, ref)]
        return Manifest(digest_of(body), media_type, body)

    def head_manifest(self, repo, ref):
        if (repo, ref) not in self.manifests:
            return None
        body, media_type = self.manifests[(repo, ref)]
        return Descriptor(digest_of(body), media_type, len(body))

    def tags(self, repo):
        tags = [r for (p, r) in self.manifests if p == repo and not r.startswith("sha256:")]
        if not tags:
            raise NameUnknown(repo)
        return tags

    def referrers(self, repo, digest):
        if not self.referrers_api:
            return None
        found = []
        for (p, ref), (body, media_type) in self.manifests.items():
            if p == repo and ref.startswith("sha256:"):
                subject = json.loads(body).get("subject") or {}
                if subject.get("digest") == digest:
                    found.append({"digest": ref, "mediaType": media_type})
        return found

    def blob_size(self, repo, digest):
        blob = self.blobs.get((repo, digest))
        return None if blob is None else len(blob)

    @contextmanager
    def open_blob(self, repo, digest):
        data = self.blobs[(repo, digest)]
        yield iter([data[:3], data[3:]])

    # writes
    def mount_blob(self, repo, digest, from_repo):
        return False

    def upload_blob(self, repo, digest, chunks, *, size=None, chunk_size=None, location=None):
        data = b"".join(chunks)
        assert digest_of(data) == digest
        self.blobs[(repo, digest)] = data
        self.writes.append(f"blob {digest[:13]}")
        return digest

    def put_manifest(self, repo, ref, body, media_type):
        for blob in _blob_digests(body):
            if (repo, blob) not in self.blobs and (repo, blob) not in self.manifests:
                raise AssertionError(f"MANIFEST_BLOB_UNKNOWN {blob}")
        self.manifests[(repo, ref)] = (body, media_type)
        if ref.startswith("sha256:") is False:
            self.manifests[(repo, digest_of(body))] = (body, media_type)
        self.writes.append(f"manifest {ref[:13]}")
        return digest_of(body + b" ") if self.lie else digest_of(body)


def _blob_digests(body: bytes) -> list[str]:
    doc = json.loads(body)
    found = [d["digest"] for d in doc.get("layers", [])] + [
        d["digest"] for d in doc.get("manifests", [])
    ]
    if "config" in doc:
        found.append(doc["config"]["digest"])
    return found


def add_image(
    registry: FakeRegistry,
    repo: str,
    *,
    seed: str,
    tag: str | None = None,
    subject: str | None = None,
) -> str:
    config, layer = f'{{"os":"linux","seed":"{seed}"}}'.encode(), f"layer-{seed}".encode()
    for blob in (config, layer):
        registry.blobs[(repo, digest_of(blob))] = blob
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest_of(config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": digest_of(layer),
                "size": len(layer),
            }
        ],
    }
    if subject:
        doc["subject"] = {"mediaType": OCI_MANIFEST, "digest": subject, "size": 1}
    body = json.dumps(doc).encode()
    registry.manifests[(repo, digest_of(body))] = (body, OCI_MANIFEST)
    if tag:
        registry.manifests[(repo, tag)] = (body, OCI_MANIFEST)
    return digest_of(body)


def add_index(registry: FakeRegistry, repo: str, children: list[str], tag: str) -> str:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": c,
                "size": 1,
                "platform": {"os": "linux", "architecture": arch},
            }
            for c, arch in zip(children, ["amd64", "arm64"], strict=False)
        ],
    }
    body = json.dumps(doc).encode()
    registry.manifests[(repo, digest_of(body))] = (body, OCI_INDEX)
    registry.manifests[(repo, tag)] = (body, OCI_INDEX)
    return digest_of(body)


def copier(source: FakeRegistry, target: FakeRegistry) -> ImageCopier:
    return ImageCopier(
        source_factory=lambda: source,
        target_factory=lambda: target,
        source_path="dev/app",
        target_path="rc/app",
        same_host=False,
        parallelism=2,
        retries=1,
        backoff=0,
    )


def test_index_children_signatures_and_referrers_travel_and_the_tag_moves_last():
    source, target = FakeRegistry(), FakeRegistry()
    amd = add_image(source, "dev/app", seed="amd")
    arm = add_image(source, "dev/app", seed="arm")
    top = add_index(source, "dev/app", [amd, arm], tag="1.0")
    add_image(source, "dev/app", seed="sig", tag=top.replace(":", "-") + ".sig")
    add_image(source, "dev/app", seed="att-child", tag=arm.replace(":", "-") + ".att")
    sbom = add_image(source, "dev/app", seed="sbom", subject=amd)  # an OCI referrer
    add_image(source, "dev/app", seed="unrelated", tag="other")

    engine = copier(source, target)
    plan = plan_image(source, "dev/app", "1.0", expect_digest=top)
    engine.copy_plan(plan, tag=None)
    copied = engine.copy_signatures(plan.digests())
    engine.put_manifest(plan.top, "1.0")

    assert plan.digests() == [amd, arm, top]  # children before the parent
    assert copied == 3
    assert target.get_manifest("rc/app", "1.0").digest == top
    assert target.get_manifest("rc/app", sbom).digest == sbom
    assert ("rc/app", "other") not in target.manifests
    assert target.writes[-1] == "manifest 1.0"  # the tag last, after all content


def test_no_referrers_api_means_tags_only():
    source, target = FakeRegistry(referrers_api=False), FakeRegistry()
    image = add_image(source, "dev/app", seed="a", tag="1.0")
    add_image(source, "dev/app", seed="r", subject=image)
    engine = copier(source, target)
    assert engine.copy_signatures([image]) == 0


def test_a_target_that_stores_another_digest_is_refused():
    source, target = FakeRegistry(), FakeRegistry(lie=True)
    add_image(source, "dev/app", seed="a", tag="1.0")
    engine = copier(source, target)
    plan = plan_image(source, "dev/app", "1.0")
    with pytest.raises(DigestMismatch, match="refusing"):
        engine.copy_plan(plan, tag="1.0")


def test_a_tag_that_moved_since_it_was_pinned_is_refused():
    source = FakeRegistry()
    pinned = add_image(source, "dev/app", seed="old", tag="1.0")
    add_image(source, "dev/app", seed="new", tag="1.0")
    with pytest.raises(DigestMismatch, match="not the pinned"):
        plan_image(source, "dev/app", "1.0", expect_digest=pinned)


def test_signature_tag_names_follow_cosign():
    digest = "sha256:" + "ab" * 32
    tags = [
        f"sha256-{'ab' * 32}.sig",
        f"sha256-{'ab' * 32}.att",
        f"sha256-{'ab' * 32}.sbom",
        f"sha256-{'cd' * 32}.sig",
        "latest",
        f"sha256-{'ab' * 32}.sig.bak",
    ]
    assert signature_tags(tags, [digest]) == sorted(tags[:3])


class _Gauge(FakeRegistry):
    """Counts how many HEAD checks and uploads run at the same moment."""

    def __init__(self) -> None:
        super().__init__()
        import threading

        self.lock = threading.Lock()
        self.now = {"head": 0, "upload": 0}
        self.peak = {"head": 0, "upload": 0}

    def _during(self, kind: str):
        import time

        with self.lock:
            self.now[kind] += 1
            self.peak[kind] = max(self.peak[kind], self.now[kind])
        time.sleep(0.05)
        with self.lock:
            self.now[kind] -= 1

    def blob_size(self, repo, digest):
        self._during("head")
        return super().blob_size(repo, digest)

    def upload_blob(self, repo, digest, chunks, *, size=None, chunk_size=None, location=None):
        self._during("upload")
        return super().upload_blob(repo, digest, chunks, size=size, chunk_size=chunk_size)


def test_checks_run_wider_than_streams_and_streams_stay_within_parallelism():
    from registries.oci.copy import CHECK_PARALLELISM

    source, target = FakeRegistry(), _Gauge()
    blobs = {}
    for n in range(12):
        data = f"blob-{n}".encode()
        source.blobs[("dev/app", digest_of(data))] = data
        blobs[digest_of(data)] = len(data)
    engine = copier(source, target)  # parallelism=2
    engine.copy_blobs(blobs)
    assert all(("rc/app", d) in target.blobs for d in blobs)
    assert target.peak["upload"] <= 2
    assert 2 < target.peak["head"] <= CHECK_PARALLELISM


def test_a_dry_run_walks_the_same_way_counts_what_a_copy_does_and_writes_nothing():
    source = FakeRegistry(referrers_api=False)
    amd = add_image(source, "dev/app", seed="amd")
    arm = add_image(source, "dev/app", seed="arm")
    top = add_index(source, "dev/app", [amd, arm], tag="1.0")
    add_image(source, "dev/app", seed="sig", tag=top.replace(":", "-") + ".sig")
    # The target holds one of the children's blobs already; the signature shares none.
    present = FakeRegistry()
    layer = b"layer-amd"
    present.blobs[("rc/app", digest_of(layer))] = layer

    def run(dry_run: bool) -> ImageCopier:
        target = FakeRegistry()
        target.blobs.update(present.blobs)
        engine = ImageCopier(
            source_factory=lambda: source,
            target_factory=lambda: target,
            source_path="dev/app",
            target_path="rc/app",
            same_host=False,
            parallelism=2,
            retries=1,
            backoff=0,
            dry_run=dry_run,
        )
        engine.copy_image(plan_image(source, "dev/app", "1.0", expect_digest=top))
        engine.target_after = target
        return engine

    dry, real = run(True), run(False)

    assert dry.target_after.writes == [] and dry.target_after.manifests == {}
    assert real.target_after.writes  # the real one did write
    assert dry.counters == real.counters
    assert (dry.counters.blobs_skipped, dry.counters.bytes_skipped) == (1, len(layer))
    assert dry.counters.blobs_copied == dry.counters.blobs_total - 1 > 0
    assert dry.counters.signatures_copied == 1


def test_calls_run_a_window_at_a_time_and_none_starts_after_a_failure():
    """The copy engine's threads are shared by every copy in the process: each copy keeps
    its own window, and stops starting work once a call failed."""
    lock, release = threading.Lock(), threading.Event()
    running, most, started = 0, 0, []

    def call(number: int):
        def run() -> None:
            nonlocal running, most
            with lock:
                running += 1
                most = max(most, running)
                started.append(number)
            try:
                if number == 0:
                    threading.Timer(0.2, release.set).start()  # after the failure is seen
                    raise RuntimeError("the first blob failed")
                assert release.wait(timeout=10)
            finally:
                with lock:
                    running -= 1

        return run

    with pytest.raises(RuntimeError, match="the first blob failed"):
        _run_windowed([call(n) for n in range(6)], width=2)

    assert sorted(started) == [0, 1]  # the other four never started
    assert most <= 2
