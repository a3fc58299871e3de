"""The copy engine: walk an image graph and copy it digest-exact to another repository.

Children before parents, blobs before manifests, the tag last. Blobs already at the
target are skipped, mounted across repositories on the same host, or streamed GET→PUT
with bounded parallelism and bounded memory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from registries.oci import RegistryClient
from registries.oci import manifest as oci_manifest
from registries.oci.errors import DigestMismatch, NameUnknown
from registries.oci.retry import RetryPolicy

SIGNATURE_SUFFIXES = (".sig", ".att", ".sbom")
MAX_DEPTH = 4  # an index of indexes is legal; deeper graphs are not real images


@dataclass
class ManifestNode:
    digest: str
    media_type: str
    body: bytes


@dataclass
class CopyPlan:
    """What one image is made of: its manifests (children first) and its blobs."""

    top: ManifestNode
    manifests: list[ManifestNode] = field(default_factory=list)  # children first, top last
    blobs: dict[str, int] = field(default_factory=dict)  # digest -> size

    @property
    def bytes_total(self) -> int:
        return sum(self.blobs.values())

    def digests(self) -> list[str]:
        return [m.digest for m in self.manifests]


@dataclass
class CopyCounters:
    blobs_total: int = 0
    blobs_copied: int = 0
    blobs_mounted: int = 0
    blobs_skipped: int = 0
    bytes_total: int = 0
    bytes_done: int = 0
    manifests_total: int = 0
    manifests_copied: int = 0
    signatures_copied: int = 0


def plan_image(
    client: RegistryClient, path: str, reference: str, *, expect_digest: str = ""
) -> CopyPlan:
    """Read the image graph from the source (manifests only; blobs are not fetched)."""
    top = client.get_manifest(path, reference)
    if expect_digest and top.digest != expect_digest:
        raise DigestMismatch(
            f"{path}@{reference} now has digest {top.digest}, not the pinned {expect_digest}."
        )
    root = ManifestNode(top.digest, top.media_type, top.body)
    plan = CopyPlan(top=root)
    _walk(client, path, root, plan, depth=0)
    return plan


def _walk(
    client: RegistryClient, path: str, node: ManifestNode, plan: CopyPlan, depth: int
) -> None:
    parsed = oci_manifest.parse(node.body, node.media_type)
    if oci_manifest.is_index(node.media_type):
        if depth >= MAX_DEPTH:
            raise oci_manifest.ManifestInvalid(f"{path}@{node.digest} nests indexes too deeply.")
        for child in oci_manifest.child_manifests(parsed):
            got = client.get_manifest(path, child.digest)
            if got.digest in {m.digest for m in plan.manifests}:
                continue
            _walk(client, path, ManifestNode(got.digest, got.media_type, got.body), plan, depth + 1)
    for blob in oci_manifest.blobs(parsed):
        plan.blobs.setdefault(blob.digest, blob.size)
    plan.manifests.append(node)


def signature_tags(tags: list[str], digests: list[str]) -> list[str]:
    """Cosign's fallback tags (`sha256-<hex>.sig|.att|.sbom`) for the given digests."""
    wanted = set()
    for digest in digests:
        algo, _, hex_ = digest.partition(":")
        wanted.update(f"{algo}-{hex_}{suffix}" for suffix in SIGNATURE_SUFFIXES)
    return sorted(t for t in tags if t in wanted)


class ImageCopier:
    """Copies plans from one (client, path) to another, reporting progress."""

    def __init__(
        self,
        *,
        source_factory: Callable[[], RegistryClient],
        target_factory: Callable[[], RegistryClient],
        source_path: str,
        target_path: str,
        same_host: bool,
        parallelism: int = 4,
        on_progress: Callable[[CopyCounters], None] | None = None,
        retries: int = 3,
        backoff: float = 0.2,
    ) -> None:
        self.source_factory = source_factory
        self.target_factory = target_factory
        self.source = source_factory()
        self.target = target_factory()
        self.source_path = source_path
        self.target_path = target_path
        self.same_host = same_host
        self.parallelism = max(1, parallelism)
        self.counters = CopyCounters()
        self.on_progress = on_progress or (lambda counters: None)
        # A streamed blob cannot be replayed by the client: the whole blob copy is retried.
        self.blob_retry = RetryPolicy(attempts=max(1, retries), backoff=backoff)
        self._lock = threading.Lock()
        self._local = threading.local()

    # --- blobs -----------------------------------------------------------------
    def _thread_clients(self) -> tuple[RegistryClient, RegistryClient]:
        # requests sessions are not shared across threads: one pair per worker thread.
        if not hasattr(self._local, "clients"):
            self._local.clients = (self.source_factory(), self.target_factory())
        return self._local.clients

    def _count(self, kind: str, size: int) -> None:
        with self._lock:
            setattr(self.counters, kind, getattr(self.counters, kind) + 1)
            self.counters.bytes_done += size
        self.on_progress(self.counters)

    def _copy_blob(self, digest: str, size: int) -> None:
        """Copy one blob; after a transient failure start over (HEAD first: it may have landed)."""
        self.blob_retry.run(lambda: self._copy_blob_once(digest, size))

    def _copy_blob_once(self, digest: str, size: int) -> None:
        source, target = self._thread_clients()
        if target.blob_size(self.target_path, digest) is not None:
            self._count("blobs_skipped", size)
            return
        if self.same_host and target.mount_blob(self.target_path, digest, self.source_path):
            self._count("blobs_mounted", size)
            return
        with source.open_blob(self.source_path, digest) as chunks:
            target.upload_blob(self.target_path, digest, chunks, size=size or None)
        self._count("blobs_copied", size)

    def copy_blobs(self, blobs: dict[str, int]) -> None:
        """Every blob present at the target, `parallelism` at a time; the first error wins."""
        todo = [(d, s) for d, s in blobs.items()]
        with ThreadPoolExecutor(max_workers=self.parallelism, thread_name_prefix="blob") as pool:
            futures = [pool.submit(self._copy_blob, d, s) for d, s in todo]
            first_error = None
            for future in futures:
                try:
                    future.result()
                except Exception as exc:  # re-raised below after the others settle
                    first_error = first_error or exc
            if first_error is not None:
                raise first_error

    # --- manifests -------------------------------------------------------------
    def put_manifest(self, node: ManifestNode, reference: str) -> None:
        """PUT the exact source bytes; the digest the target computes must equal the source's."""
        digest = self.target.put_manifest(self.target_path, reference, node.body, node.media_type)
        if digest != node.digest:
            raise DigestMismatch(
                f"{self.target_path}: the target stored {digest} for {node.digest}; refusing."
            )

    def copy_plan(self, plan: CopyPlan, *, tag: str | None) -> None:
        """Blobs, then child manifests by digest, then the top by digest, then (last) the tag."""
        self.counters.blobs_total += len(plan.blobs)
        self.counters.bytes_total += plan.bytes_total
        self.counters.manifests_total += len(plan.manifests)
        self.on_progress(self.counters)
        self.copy_blobs(plan.blobs)
        for node in plan.manifests:
            self.put_manifest(node, node.digest)
            self.counters.manifests_copied += 1
            self.on_progress(self.counters)
        if tag:
            self.put_manifest(plan.top, tag)

    def copy_signatures(self, digests: list[str]) -> int:
        """Copy cosign tags and OCI referrers of the promoted digests; returns how many."""
        copied = 0
        try:
            tags = self.source.tags(self.source_path)
        except NameUnknown:
            tags = []
        for sig_tag in signature_tags(tags, digests):
            plan = plan_image(self.source, self.source_path, sig_tag)
            self.copy_plan(plan, tag=sig_tag)
            copied += 1
        for digest in digests:
            referrers = self.source.referrers(self.source_path, digest) or []
            for ref in referrers:
                plan = plan_image(self.source, self.source_path, ref["digest"])
                self.copy_plan(plan, tag=None)
                copied += 1
        self.counters.signatures_copied = copied
        self.on_progress(self.counters)
        return copied
