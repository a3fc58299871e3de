"""The copy engine: walk an image graph and copy it digest-exact to another repository.

Children before parents, blobs before manifests, the tag last. Blobs already at the
target are skipped, mounted across repositories on the same host, or streamed GET→PUT
with bounded parallelism and bounded memory.

A dry run (`ImageCopier(dry_run=True)`) walks exactly the same way and asks the target
the same questions (HEAD), but writes nothing: its counters say what a real copy would
copy, mount and find already there.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from registries.oci import RegistryClient
from registries.oci import manifest as oci_manifest
from registries.oci.constants import (
    MAX_INDEX_CHILDREN,
    MAX_INDEX_DEPTH,
    MAX_PLAN_MANIFEST_BYTES,
    MAX_REFERRER_DEPTH,
    MAX_REFERRERS,
    OCI_INDEX,
)
from registries.oci.errors import (
    DigestMismatch,
    LimitExceeded,
    ManifestInvalid,
    ManifestUnknown,
    NameUnknown,
    RegistryError,
)
from registries.oci.retry import RetryPolicy

# HEAD checks and cross-repository mounts move no bytes: they run this many at once, while
# streamed copies stay within the copier's `parallelism`.
CHECK_PARALLELISM = 8
# Threads of the copy engine, shared by every copy in the process and started once: a
# same-host promotion of small blobs spent more time starting threads than mounting.
COPY_THREADS = 16
_threads: ThreadPoolExecutor | None = None
_threads_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _threads
    with _threads_lock:
        if _threads is None:
            _threads = ThreadPoolExecutor(max_workers=COPY_THREADS, thread_name_prefix="copy")
        return _threads


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
    # Foreign/non-distributable layers: clients fetch them from their `urls`, so the source
    # may not hold them; they are copied only when it does.
    optional_blobs: set[str] = field(default_factory=set)
    manifest_bytes: int = 0  # bodies held by this plan (bounded: MAX_PLAN_MANIFEST_BYTES)

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
    # bytes_done split by what happened to each blob (streamed, mounted, already there)
    bytes_copied: int = 0
    bytes_mounted: int = 0
    bytes_skipped: int = 0
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
    plan = CopyPlan(top=root, manifest_bytes=len(top.body))
    _walk(client, path, root, plan, depth=0, seen=set())
    return plan


def _walk(
    client: RegistryClient,
    path: str,
    node: ManifestNode,
    plan: CopyPlan,
    depth: int,
    seen: set[str],
) -> None:
    seen.add(node.digest)
    parsed = oci_manifest.parse(node.body, node.media_type)
    if oci_manifest.is_index(node.media_type):
        if depth >= MAX_INDEX_DEPTH:
            raise ManifestInvalid(f"{path}@{node.digest} nests indexes too deeply.")
        children = oci_manifest.child_manifests(parsed)
        if len(children) > MAX_INDEX_CHILDREN:
            raise LimitExceeded(
                f"{path}@{node.digest} lists {len(children)} images; Promoter copies indexes "
                f"of at most {MAX_INDEX_CHILDREN}."
            )
        for child in children:
            if child.digest in seen:
                continue
            got = client.get_manifest(path, child.digest)
            plan.manifest_bytes += len(got.body)
            if plan.manifest_bytes > MAX_PLAN_MANIFEST_BYTES:
                raise LimitExceeded(
                    f"{path}@{plan.top.digest} has more than {MAX_PLAN_MANIFEST_BYTES} bytes of "
                    "manifests; refusing to copy it."
                )
            _walk(
                client,
                path,
                ManifestNode(got.digest, got.media_type, got.body),
                plan,
                depth + 1,
                seen,
            )
    for blob in oci_manifest.blobs(parsed):
        plan.blobs.setdefault(blob.digest, blob.size)
        if blob.nondistributable:
            plan.optional_blobs.add(blob.digest)
    plan.manifests.append(node)


def signature_tags(tags: list[str], digests: list[str]) -> list[str]:
    """Cosign's tags (`sha256-<hex>.sig|.att|.sbom`) among `tags`, for the given digests."""
    wanted = {tag for digest in digests for tag in oci_manifest.cosign_tags(digest)}
    return sorted(t for t in tags if t in wanted)


def in_background(call: Callable[..., Any], *args: Any) -> Future:
    """Run `call(*args)` on the copy engine's threads (already started) and return at once."""
    return _pool().submit(call, *args)


def _settled(futures: list[Future]) -> list[Any]:
    """The futures' results in order, once all have settled; the first error is raised."""
    results, first_error = [], None
    for future in futures:
        try:
            results.append(future.result())
        except Exception as exc:  # re-raised below after the others settle
            first_error = first_error or exc
    if first_error is not None:
        raise first_error
    return results


def _run_windowed(calls: list[Callable[[], Any]], width: int) -> None:
    """Run the calls on the copy engine's threads, at most `width` at once. Once one fails
    no further call starts; the first error is raised when those running have settled.

    Only callers outside the pool wait on it (a call never waits for another call), so a
    busy pool delays a copy but never deadlocks it."""
    pool, running, first_error = _pool(), set(), None
    pending = list(reversed(calls))
    while pending or running:
        while pending and first_error is None and len(running) < max(1, width):
            running.add(pool.submit(pending.pop()))
        if not running:
            break
        done, running = wait(running, return_when=FIRST_COMPLETED)
        for future in done:
            try:
                future.result()
            except Exception as exc:  # raised once the running calls have settled
                first_error = first_error or exc
    if first_error is not None:
        raise first_error


@dataclass(frozen=True)
class TaggedReferrer:
    """A tag the copy set at the target for a referrer: cosign's `sha256-<hex>.sig|.att|.sbom`
    or the referrers tag schema's `sha256-<hex>` index (the worker records them)."""

    tag: str
    digest: str
    media_type: str
    size: int
    subject: str


@dataclass
class _Referrers:
    """What the source says refers to one subject."""

    cosign: list[tuple[str, str]] = field(default_factory=list)  # (tag, digest)
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)  # digest -> descriptor
    fallback: oci_manifest.Manifest | None = None  # the source's referrers tag schema index


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
        dry_run: bool = False,
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
        self._referrers_api: bool | None = None  # does the target answer the referrers API?
        self._streams = threading.BoundedSemaphore(self.parallelism)
        self.tagged_referrers: list[TaggedReferrer] = []  # tags set at the target for referrers
        # Dry run: nothing is written; what a real copy would have put at the target by a
        # given point counts as there from then on (a layer shared by two referrers).
        self.dry_run = dry_run
        self._would_have: set[str] = set()

    # --- blobs -----------------------------------------------------------------
    def _thread_source(self) -> RegistryClient:
        # requests sessions are not shared across threads: one client per thread and side.
        if not hasattr(self._local, "source"):
            self._local.source = self.source_factory()
        return self._local.source

    def _thread_target(self) -> RegistryClient:
        if not hasattr(self._local, "target"):
            self._local.target = self.target_factory()
        return self._local.target

    def _count(self, kind: str, size: int) -> None:
        with self._lock:
            setattr(self.counters, kind, getattr(self.counters, kind) + 1)
            self.counters.bytes_done += size
            by_kind = "bytes_" + kind.removeprefix("blobs_")
            setattr(self.counters, by_kind, getattr(self.counters, by_kind) + size)
        self.on_progress(self.counters)

    def _copy_blob(self, digest: str, size: int, optional: bool = False) -> None:
        """Copy one blob; after a transient failure start over (it may have landed)."""
        self.blob_retry.run(lambda: self._copy_blob_once(digest, size, optional))

    def _copy_blob_once(self, digest: str, size: int, optional: bool = False) -> None:
        if self.same_host and not self.dry_run and not optional:
            self._mount_blob(digest, size)
            return
        source, target = self._thread_source(), self._thread_target()
        if self._present(target, digest):
            self._count("blobs_skipped", size)
            return
        if optional and source.blob_size(self.source_path, digest) is None:
            # A foreign layer the source does not hold either: clients fetch it elsewhere.
            self._count("blobs_skipped", size)
            return
        if self.dry_run:
            self._would_put(digest)
            # On one host a mount answers 201 for a blob the source repository holds (it
            # is read from there); a real copy falls back to streaming only when it does not.
            self._count("blobs_mounted" if self.same_host else "blobs_copied", size)
            return
        if self.same_host and target.mount_blob(self.target_path, digest, self.source_path):
            self._count("blobs_mounted", size)
            return
        self._stream_blob(digest, size)

    def _mount_blob(self, digest: str, size: int) -> None:
        """Same host: mount straight away, without asking first whether the target has the
        blob (a mount answers 201 either way, so it counts as mounted); when the registry
        opens an upload instead (202), the bytes are streamed into that very session."""
        location = self._thread_target().mount_or_open_upload(
            self.target_path, digest, self.source_path
        )
        if location is None:
            self._count("blobs_mounted", size)
            return
        self._stream_blob(digest, size, location=location)

    def _stream_blob(self, digest: str, size: int, *, location: str | None = None) -> None:
        """GET from the source, PUT to the target, never holding the blob in memory."""
        source, target = self._thread_source(), self._thread_target()
        uploading = False
        try:
            with self._streams, source.open_blob(self.source_path, digest) as chunks:
                uploading = True  # from here on upload_blob cancels the session on failure
                target.upload_blob(
                    self.target_path, digest, chunks, size=size or None, location=location
                )
        except BaseException:
            if location is not None and not uploading:
                target.cancel_upload(location, self.target_path)  # the mount's session
            raise
        self._count("blobs_copied", size)

    def _present(self, target: RegistryClient, digest: str) -> bool:
        with self._lock:
            if digest in self._would_have:
                return True
        return target.blob_size(self.target_path, digest) is not None

    def _would_put(self, digest: str) -> None:
        with self._lock:
            self._would_have.add(digest)

    def copy_blobs(
        self, blobs: dict[str, int], optional: set[str] | frozenset = frozenset()
    ) -> None:
        """Every blob present at the target; the first error wins.

        Checks and mounts run CHECK_PARALLELISM at once, streamed copies `parallelism`.
        `optional` blobs (foreign layers) are skipped when the source lacks them too."""
        calls = [
            functools.partial(self._copy_blob, digest, size, digest in optional)
            for digest, size in blobs.items()
        ]
        _run_windowed(calls, max(self.parallelism, CHECK_PARALLELISM))

    # --- manifests -------------------------------------------------------------
    def put_manifest(self, node: ManifestNode, reference: str) -> None:
        """PUT the exact source bytes; the digest the target computes must equal the source's."""
        if self.dry_run:
            return
        digest = self.target.put_manifest(self.target_path, reference, node.body, node.media_type)
        if digest != node.digest:
            raise DigestMismatch(
                f"{self.target_path}: the target stored {digest} for {node.digest}; refusing."
            )

    def copy_plan(self, plan: CopyPlan, *, tag: str | None, top: bool = True) -> None:
        """Blobs, then child manifests by digest, then the top: by `tag` when one is given
        (one PUT stores the manifest and moves the tag, last), else by digest.
        `top=False` leaves the top manifest for the caller (`_put_top`)."""
        self.counters.blobs_total += len(plan.blobs)
        self.counters.bytes_total += plan.bytes_total
        self.counters.manifests_total += len(plan.manifests)
        self.on_progress(self.counters)
        self.copy_blobs(plan.blobs, plan.optional_blobs)
        for node in plan.manifests:
            if node is plan.top:
                if top:
                    self._put_top(plan, tag or node.digest)
                continue
            self.put_manifest(node, node.digest)
            self.counters.manifests_copied += 1
            self.on_progress(self.counters)

    def _put_top(self, plan: CopyPlan, reference: str) -> None:
        self.put_manifest(plan.top, reference)
        self.counters.manifests_copied += 1
        self.on_progress(self.counters)

    def copy_image(self, plan: CopyPlan, *, tag: str | None = None) -> None:
        """The image's content, then its signatures and other referrers, then `tag` (if
        given) last. The source is asked for the referrers while the blobs move; when there
        are none, the top manifest is PUT once, by the tag."""
        asked = self._ask_referrers(plan.digests())
        try:
            self.copy_plan(plan, tag=None, top=False)
        except BaseException:
            for future in asked[1]:
                future.cancel()
            wait(asked[1])  # those already asking finish (each call has its deadline)
            raise
        found = self._referrers_found(asked)
        if tag and not any(f.cosign or f.entries for f in found.values()):
            self._put_top(plan, tag)
            return
        self._put_top(plan, plan.top.digest)
        self.copy_referrers(plan.digests(), found=found)
        if tag:
            self.put_manifest(plan.top, tag)

    # --- referrers ---------------------------------------------------------------
    def copy_referrers(
        self, digests: list[str], *, found: dict[str, _Referrers] | None = None
    ) -> int:
        """Copy what refers to the digests, recursively: cosign's `.sig/.att/.sbom` tags and
        OCI 1.1 referrers (referrers API and the `sha256-<hex>` fallback tag); the target's
        fallback index is merged, never overwritten. Returns how many manifests.

        `found`: what the source said refers to `digests` (asked already); the referrers of
        each further level are asked for all at once."""
        copied = 0
        seen = set(digests)
        level, depth = list(digests), 1
        while level:
            known = found if found is not None else self._referrers_of_all(level)
            found = None
            deeper: list[str] = []
            for subject in level:
                copied = self._copy_referrers_of(
                    subject, known[subject], depth, copied, seen, deeper
                )
            level, depth = deeper, depth + 1
        self.counters.signatures_copied = copied
        self.on_progress(self.counters)
        return copied

    def _copy_referrers_of(
        self,
        subject: str,
        found: _Referrers,
        depth: int,
        copied: int,
        seen: set[str],
        deeper: list[str],
    ) -> int:
        """Copy the referrers of one subject; returns the running count, and appends to
        `deeper` the referrers whose own referrers are asked for next."""
        for tag, digest in found.cosign:
            self._check_bounds(subject, depth, copied)
            plan = plan_image(self.source, self.source_path, digest)
            self.copy_plan(plan, tag=tag)
            self.tagged_referrers.append(
                TaggedReferrer(tag, digest, plan.top.media_type, plan.bytes_total, subject)
            )
            copied += 1
            if digest not in seen:
                seen.add(digest)
                deeper.append(digest)
        listed: list[dict[str, Any]] = []
        for digest, entry in found.entries.items():
            if digest in seen:
                listed.append(entry)
                continue
            self._check_bounds(subject, depth, copied)
            try:
                plan = plan_image(self.source, self.source_path, digest)
            except ManifestUnknown:
                continue  # deleted, but still listed by a stale fallback index
            self.copy_plan(plan, tag=None)
            copied += 1
            listed.append(entry)
            seen.add(digest)
            deeper.append(digest)
        if listed and (found.fallback is not None or not self._target_has_referrers_api()):
            self._merge_fallback(subject, listed, found.fallback)
        return copied

    copy_signatures = copy_referrers  # the name the worker used before referrers travelled

    def _check_bounds(self, subject: str, depth: int, copied: int) -> None:
        if depth > MAX_REFERRER_DEPTH:
            raise RegistryError(
                f"The referrers of {subject} nest more than {MAX_REFERRER_DEPTH} deep in "
                f"{self.source_path}; refusing to follow them further.",
                code="TOO_MANY_REFERRERS",
            )
        if copied >= MAX_REFERRERS:
            raise RegistryError(
                f"The image in {self.source_path} has more than {MAX_REFERRERS} signatures, "
                "attestations and other referrers; refusing to copy them all.",
                code="TOO_MANY_REFERRERS",
            )

    def _head(self, tag: str) -> str | None:
        try:
            found = self._thread_source().head_manifest(self.source_path, tag)
        except NameUnknown:
            return None
        return found.digest if found else None

    def _listed(self, subject: str) -> list[dict[str, Any]]:
        return self._thread_source().referrers(self.source_path, subject) or []

    def _fallback_index(self, subject: str) -> oci_manifest.Manifest | None:
        """The source's referrers tag schema index of `subject` (`sha256-<hex>`), if any."""
        tag = oci_manifest.referrers_tag(subject)
        digest = self._head(tag)
        if not digest:
            return None
        try:
            index = self._thread_source().get_manifest(self.source_path, digest)
        except ManifestUnknown:
            return None
        if not index.is_index:
            raise ManifestInvalid(
                f"{self.source_path}:{tag} is not an index of referrers (OCI referrers tag "
                "schema); refusing to copy it."
            )
        return index

    def _referrers_of_all(self, subjects: list[str]) -> dict[str, _Referrers]:
        """What refers to each subject at the source: its cosign tags, the referrers API and
        its fallback tag, every question asked at once (on the copy engine's threads).

        Only the specific tags are asked for (HEAD), never the repository's whole tag list.
        """
        return self._referrers_found(self._ask_referrers(subjects))

    def _ask_referrers(self, subjects: list[str]) -> tuple[list, list[Future]]:
        """Start asking about the subjects' referrers; _referrers_found collects the answers."""
        questions: list[tuple[str, str, str]] = []  # (subject, kind, cosign tag)
        for subject in subjects:
            questions += [(subject, "cosign", tag) for tag in oci_manifest.cosign_tags(subject)]
            questions += [(subject, "listed", ""), (subject, "fallback", "")]

        def ask(subject: str, kind: str, tag: str) -> Any:
            if kind == "cosign":
                return self._head(tag)
            return self._listed(subject) if kind == "listed" else self._fallback_index(subject)

        return questions, [_pool().submit(ask, *question) for question in questions]

    def _referrers_found(self, asked: tuple[list, list[Future]]) -> dict[str, _Referrers]:
        questions, futures = asked
        answers = _settled(futures)
        found = {subject: _Referrers() for subject, _, _ in questions}
        # Assembled in the order the questions were asked: cosign tags, then the referrers
        # API's entries, then the fallback index's.
        fallbacks: list[tuple[str, oci_manifest.Manifest]] = []
        for (subject, kind, tag), answer in zip(questions, answers, strict=True):
            if kind == "cosign" and answer:
                found[subject].cosign.append((tag, answer))
            elif kind == "listed":
                for entry in answer:
                    digest = entry.get("digest")
                    if isinstance(digest, str) and oci_manifest.DIGEST_RE.fullmatch(digest):
                        found[subject].entries.setdefault(digest, entry)
            elif kind == "fallback" and answer is not None:
                fallbacks.append((subject, answer))
        for subject, index in fallbacks:
            found[subject].fallback = index
            for entry in index.parsed().get("manifests") or []:
                found[subject].entries.setdefault(entry["digest"], entry)
        return found

    def _target_has_referrers_api(self) -> bool:
        if self._referrers_api is None:
            probe = "sha256:" + "0" * 64
            self._referrers_api = self.target.referrers(self.target_path, probe) is not None
        return self._referrers_api

    def _merge_fallback(
        self, subject: str, entries: list[dict[str, Any]], source: oci_manifest.Manifest | None
    ) -> None:
        """Make the target's `sha256-<hex>` index list `entries` too (union by digest)."""
        if self.dry_run:
            return
        tag = oci_manifest.referrers_tag(subject)
        try:
            current = self.target.get_manifest(self.target_path, tag)
        except (ManifestUnknown, NameUnknown):
            current = None
        if current is None:
            wanted = {e["digest"] for e in entries}
            if source is not None and wanted == {
                e["digest"] for e in source.parsed().get("manifests") or []
            }:
                # Nothing there yet: the source's exact bytes, so the digests match too.
                self.put_manifest(ManifestNode(source.digest, source.media_type, source.body), tag)
                self.tagged_referrers.append(
                    TaggedReferrer(tag, source.digest, source.media_type, len(source.body), subject)
                )
                return
            document: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
            have: set[str] = set()
        else:
            if not current.is_index:
                raise ManifestInvalid(
                    f"{self.target_path}:{tag} is not an index of referrers; refusing to "
                    "overwrite it."
                )
            document = current.parsed()
            have = {e["digest"] for e in document.get("manifests") or []}
        added = [e for e in entries if e["digest"] not in have]
        if not added:
            return
        document["manifests"] = list(document.get("manifests") or []) + added
        body = json.dumps(document, separators=(",", ":")).encode()
        media_type = current.media_type if current is not None else OCI_INDEX
        digest = self.target.put_manifest(self.target_path, tag, body, media_type)
        self.tagged_referrers.append(TaggedReferrer(tag, digest, media_type, len(body), subject))
