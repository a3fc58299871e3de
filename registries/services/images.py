"""What a tag page shows of an image that only the registry knows: layers, labels, platforms.

Manifests and configs are immutable by digest, so what the page shows is kept in the
database by digest (ImageFacts) and the registry is read only for digests not seen yet:
a tag page of a 300-platform index reads the registry once, not on every view.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from registries.connections import client_for
from registries.models import ImageFacts, Registry, Tag
from registries.oci import manifest as oci_manifest
from registries.oci.errors import ManifestInvalid, RegistryError
from registries.oci.inspect import ImageDetails, ImageSummary, PlatformImage, image_details

FETCH_PARALLELISM = 8  # child manifests read at once when an index is new


@dataclass
class LiveImage:
    details: ImageDetails | None
    error: str = ""


def tag_image(*, tag: Tag) -> LiveImage:
    """Layers, labels and platforms (from the database once known); an error when unreadable."""
    registry = tag.repository.registry
    path = registry.backing_path(tag.repository.name)
    try:
        details = _details(registry, path, tag.digest)
    except (RegistryError, ManifestInvalid) as exc:
        return LiveImage(None, getattr(exc, "message", str(exc)))
    return LiveImage(details)


def _details(registry: Registry, path: str, digest: str) -> ImageDetails:
    top = ImageFacts.objects.filter(digest=digest).first()
    if top is None:
        top = _read_top(registry, path, digest)
    children = top.facts.get("children")
    if children is None:
        image = _platform_image(digest, top.facts)
        platforms = [image.platform] if image.platform != "unknown" else []
        return ImageDetails(
            ImageSummary(digest, top.media_type, image.size, platforms), [image], ""
        )
    # Attestation manifests carry the platform unknown/unknown: not an image to show.
    shown = [c for c in children if c["platform"] and not c["platform"].startswith("unknown/")]
    known = {
        f.digest: f for f in ImageFacts.objects.filter(digest__in=[c["digest"] for c in shown])
    }
    missing = [c["digest"] for c in shown if c["digest"] not in known]
    if missing:
        known.update(_read_children(registry, path, missing))
    images = [
        _platform_image(c["digest"], known[c["digest"]].facts, c["platform"])
        for c in shown
        if c["digest"] in known
    ]
    summary = ImageSummary(
        digest, top.media_type, sum(i.size for i in images), [c["platform"] for c in children]
    )
    return ImageDetails(summary, images, "")


def _read_top(registry: Registry, path: str, digest: str) -> ImageFacts:
    client = client_for(registry)
    top = client.get_manifest(path, digest)
    if oci_manifest.is_index(top.media_type):
        parsed = oci_manifest.parse(top.body, top.media_type)
        children = [
            {"digest": c.digest, "platform": c.platform or ""}
            for c in oci_manifest.child_manifests(parsed)
        ]
        return _store(
            [ImageFacts(digest=digest, media_type=top.media_type, facts={"children": children})]
        )[0]
    return _store([_image_facts(image_details(client, path, digest))])[0]


def _read_children(registry: Registry, path: str, digests: list[str]) -> dict[str, ImageFacts]:
    """Read new child manifests (and their configs) in parallel; unreadable ones are skipped."""

    def read(digest: str) -> ImageFacts | None:
        try:
            return _image_facts(image_details(client_for(registry), path, digest))
        except (RegistryError, ManifestInvalid):
            return None  # not stored: the next view tries again

    with ThreadPoolExecutor(max_workers=min(FETCH_PARALLELISM, len(digests))) as pool:
        found = [f for f in pool.map(read, digests) if f is not None]
    return {f.digest: f for f in _store(found)}


def _image_facts(details: ImageDetails) -> ImageFacts:
    image = details.images[0]
    return ImageFacts(
        digest=details.summary.digest,
        media_type=details.summary.media_type,
        facts={
            "platform": image.platform,
            "size": image.size,
            "layers": image.layers,
            "labels": image.labels,
            "created": image.created,
        },
    )


def _store(facts: list[ImageFacts]) -> list[ImageFacts]:
    # Two views of a new image may store the same digest at once: both rows are equal.
    ImageFacts.objects.bulk_create(facts, ignore_conflicts=True)
    return facts


def _platform_image(digest: str, facts: dict, platform: str = "") -> PlatformImage:
    return PlatformImage(
        platform=platform or facts.get("platform") or "unknown",
        digest=digest,
        size=int(facts.get("size") or 0),
        layers=list(facts.get("layers") or []),
        labels=dict(facts.get("labels") or {}),
        created=str(facts.get("created") or ""),
    )
