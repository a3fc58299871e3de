"""Reading image facts (size, platforms, layers, labels) from a registry through the OCI client."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from registries.oci import RegistryClient
from registries.oci import manifest as oci_manifest
from registries.oci.constants import MAX_INDEX_DEPTH
from registries.oci.errors import ManifestInvalid, RegistryError
from registries.oci.manifest import Manifest

CONFIG_MAX_BYTES = 4 * 1024 * 1024
# Manifests read to describe one image: an index may list indexes, but pages and
# notifications should not fetch without end for a hostile fan-out.
MAX_FACT_MANIFESTS = 256


@dataclass
class ImageSummary:
    digest: str
    media_type: str
    size: int
    platforms: list[str] = field(default_factory=list)
    # Every manifest digest below an index (nested indexes included), and the digest a
    # referrer (OCI 1.1 `subject`) refers to.
    children: list[str] = field(default_factory=list)
    subject: str = ""


@dataclass
class PlatformImage:
    platform: str
    digest: str
    size: int
    layers: list[dict]
    labels: dict
    created: str = ""


MAX_ANNOTATIONS = 64
ANNOTATION_MAX = 1024  # characters of a key or value kept


@dataclass
class ImageDetails:
    summary: ImageSummary
    images: list[PlatformImage]
    raw_manifest: str
    # The top manifest's (or index's) OCI annotations, e.g. org.opencontainers.image.source.
    annotations: dict = field(default_factory=dict)


def annotations_of(parsed: dict) -> dict:
    """A manifest's or index's OCI annotations with plain values, at most MAX_ANNOTATIONS of
    them (they are kept with the image's facts and shown on its tag page)."""
    found = parsed.get("annotations")
    if not isinstance(found, dict):
        return {}
    plain = [(str(k), str(v)) for k, v in found.items() if isinstance(v, (str, int, float))]
    return {k[:ANNOTATION_MAX]: v[:ANNOTATION_MAX] for k, v in plain[:MAX_ANNOTATIONS]}


def _manifest_size(parsed: dict) -> int:
    return sum(d.size for d in oci_manifest.blobs(parsed))


def _subject_of(parsed: dict) -> str:
    found = oci_manifest.subject(parsed)
    return found.digest if found else ""


@dataclass
class _IndexFacts:
    size: int = 0
    platforms: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)


def _index_facts(
    client: RegistryClient,
    path: str,
    parsed: dict,
    facts: _IndexFacts,
    depth: int = 0,
    known: Mapping[str, Manifest] | None = None,
) -> _IndexFacts:
    """Size (config + layers of every image below) and platforms of an index, recursively:
    an index may list indexes (a multi-arch image of multi-arch images)."""
    for child in oci_manifest.child_manifests(parsed):
        if child.digest in facts.children or len(facts.children) >= MAX_FACT_MANIFESTS:
            continue  # listed twice, or a hostile fan-out: facts are best effort
        facts.children.append(child.digest)
        nested = oci_manifest.is_index(child.media_type)
        if child.platform and not nested and not oci_manifest.is_attestation(child):
            if child.platform not in facts.platforms:
                facts.platforms.append(child.platform)
        try:
            got = (known or {}).get(child.digest) or client.get_manifest(path, child.digest)
            child_parsed = oci_manifest.parse(got.body, got.media_type)
        except RegistryError:
            continue  # facts are best effort; the copy engine is strict
        if oci_manifest.is_index(got.media_type):
            if depth + 1 < MAX_INDEX_DEPTH:
                _index_facts(client, path, child_parsed, facts, depth + 1, known)
        else:
            facts.size += _manifest_size(child_parsed)
    return facts


def describe_image(client: RegistryClient, path: str, reference: str) -> ImageSummary:
    """Digest, media type, total size and platforms of the image a tag or digest points at."""
    return describe_manifest(client, path, client.get_manifest(path, reference))


def describe_manifest(
    client: RegistryClient,
    path: str,
    top: Manifest,
    known: Mapping[str, Manifest] | None = None,
) -> ImageSummary:
    """describe_image of a manifest already read; `known`: manifests below it already read
    (by digest), which are not fetched again (only image configs are)."""
    parsed = oci_manifest.parse(top.body, top.media_type)
    if not oci_manifest.is_index(top.media_type):
        platform = _platform_of_config(client, path, parsed)
        return ImageSummary(
            top.digest,
            top.media_type,
            _manifest_size(parsed),
            [platform] if platform else [],
            subject=_subject_of(parsed),
        )
    facts = _index_facts(client, path, parsed, _IndexFacts(), known=known)
    return ImageSummary(
        top.digest,
        top.media_type,
        facts.size,
        facts.platforms,
        children=facts.children,
        subject=_subject_of(parsed),
    )


def _config(client: RegistryClient, path: str, parsed: dict) -> dict:
    config = parsed.get("config") or {}
    digest = config.get("digest")
    if not digest:
        return {}
    try:
        document = json.loads(client.read_blob(path, digest, CONFIG_MAX_BYTES))
    except (ValueError, RegistryError):
        return {}
    return document if isinstance(document, dict) else {}


def _platform_of_config(client: RegistryClient, path: str, parsed: dict) -> str:
    config = _config(client, path, parsed)
    if not config.get("os"):
        return ""
    parts = [config.get("os", ""), config.get("architecture", "")]
    if config.get("variant"):
        parts.append(config["variant"])
    return "/".join(p for p in parts if isinstance(p, str) and p)


def _platform_image(client, path, digest, media_type, body, platform="") -> PlatformImage:
    parsed = oci_manifest.parse(body, media_type)
    config = _config(client, path, parsed)
    if not platform and config.get("os"):
        platform = "/".join(
            p
            for p in (config.get("os"), config.get("architecture"), config.get("variant"))
            if isinstance(p, str) and p
        )
    inner = config.get("config") if isinstance(config.get("config"), dict) else {}
    labels = inner.get("Labels") if isinstance(inner.get("Labels"), dict) else {}
    return PlatformImage(
        platform=platform or "unknown",
        digest=digest,
        size=_manifest_size(parsed),
        layers=list(parsed.get("layers") or []),
        labels=dict(labels),
        created=str(config.get("created") or ""),
    )


def _platform_images(
    client: RegistryClient, path: str, parsed: dict, images: list[PlatformImage], depth: int = 0
) -> None:
    """The runnable images below an index, nested indexes flattened, attestations left out."""
    for child in oci_manifest.child_manifests(parsed):
        if oci_manifest.is_attestation(child) or len(images) >= MAX_FACT_MANIFESTS:
            continue
        try:
            manifest = client.get_manifest(path, child.digest)
            child_parsed = oci_manifest.parse(manifest.body, manifest.media_type)
        except (RegistryError, ManifestInvalid):
            continue
        if oci_manifest.is_index(manifest.media_type):
            if depth + 1 < MAX_INDEX_DEPTH:
                _platform_images(client, path, child_parsed, images, depth + 1)
            continue
        if not child.platform:
            continue
        images.append(
            _platform_image(
                client, path, manifest.digest, manifest.media_type, manifest.body, child.platform
            )
        )


def image_details(client: RegistryClient, path: str, reference: str) -> ImageDetails:
    """Everything the tag page shows: per-platform layers and labels, and the raw manifest."""
    top = client.get_manifest(path, reference)
    parsed = oci_manifest.parse(top.body, top.media_type)
    raw = top.body.decode("utf-8", errors="replace")
    if not oci_manifest.is_index(top.media_type):
        image = _platform_image(client, path, top.digest, top.media_type, top.body)
        summary = ImageSummary(
            top.digest,
            top.media_type,
            image.size,
            [image.platform] if image.platform != "unknown" else [],
            subject=_subject_of(parsed),
        )
        return ImageDetails(summary, [image], raw, annotations_of(parsed))
    images: list[PlatformImage] = []
    _platform_images(client, path, parsed, images)
    platforms = list(dict.fromkeys(i.platform for i in images))
    summary = ImageSummary(
        top.digest,
        top.media_type,
        sum(i.size for i in images),
        platforms,
        children=[c.digest for c in oci_manifest.child_manifests(parsed)],
        subject=_subject_of(parsed),
    )
    return ImageDetails(summary, images, raw, annotations_of(parsed))
