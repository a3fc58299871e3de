"""What a tag page shows of an image that only the registry knows: layers, labels, platforms.

Manifests and configs are immutable by digest, so what the page shows is kept in the
database by digest (ImageFacts) and the registry is read only for digests not seen yet:
a tag page of a 300-platform index reads the registry once, not on every view.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings

from registries.connections import client_for
from registries.models import ImageFacts, Registry, Tag
from registries.oci import manifest as oci_manifest
from registries.oci.deadline import deadline
from registries.oci.errors import ManifestInvalid, RegistryError
from registries.oci.inspect import (
    MAX_FACT_MANIFESTS,
    ImageDetails,
    ImageSummary,
    PlatformImage,
    annotations_of,
    image_details,
)

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
        # A web request: every call and all of them together within the web deadline.
        with deadline(settings.PROMOTER_WEB_REGISTRY_DEADLINE):
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
        images = _images(top.facts)
        platforms = [i.platform for i in images if i.platform != "unknown"]
        summary = ImageSummary(digest, top.media_type, sum(i.size for i in images), platforms)
        return ImageDetails(summary, images, "", _annotations(top.facts))
    # Attestations are not images to show; a child without a platform only when nested.
    shown = [c for c in children if not c["attestation"] and (c["platform"] or c["index"])][
        :MAX_FACT_MANIFESTS
    ]
    known = {
        f.digest: f for f in ImageFacts.objects.filter(digest__in=[c["digest"] for c in shown])
    }
    missing = [c["digest"] for c in shown if c["digest"] not in known]
    if missing:
        known.update(_read_children(registry, path, missing))
    images: list[PlatformImage] = []
    for child in shown:
        if child["digest"] in known:
            # A nested index brings its own platforms; an image takes the index's word.
            images += _images(
                known[child["digest"]].facts, "" if child["index"] else child["platform"]
            )
    platforms = list(dict.fromkeys(i.platform for i in images))
    summary = ImageSummary(digest, top.media_type, sum(i.size for i in images), platforms)
    return ImageDetails(summary, images, "", _annotations(top.facts))


def _annotations(facts: dict) -> dict:
    found = facts.get("annotations")
    return dict(found) if isinstance(found, dict) else {}


def _read_top(registry: Registry, path: str, digest: str) -> ImageFacts:
    client = client_for(registry, web=True)
    top = client.get_manifest(path, digest)
    if oci_manifest.is_index(top.media_type):
        parsed = oci_manifest.parse(top.body, top.media_type)
        children = [
            {
                "digest": c.digest,
                "platform": c.platform or "",
                "index": oci_manifest.is_index(c.media_type),
                "attestation": oci_manifest.is_attestation(c),
            }
            for c in oci_manifest.child_manifests(parsed)
        ]
        facts = ImageFacts(
            digest=digest,
            media_type=top.media_type,
            # The index's own annotations (source, revision, …) for the tag page.
            facts={"children": children, "annotations": annotations_of(parsed)},
        )
        return _store([facts])[0]
    return _store([_image_facts(image_details(client, path, digest))])[0]


def _read_children(registry: Registry, path: str, digests: list[str]) -> dict[str, ImageFacts]:
    """Read new child manifests (and their configs) in parallel; unreadable ones are skipped."""

    def read(digest: str) -> ImageFacts | None:
        try:
            return _image_facts(image_details(client_for(registry, web=True), path, digest))
        except (RegistryError, ManifestInvalid):
            return None  # not stored: the next view tries again

    with ThreadPoolExecutor(max_workers=min(FETCH_PARALLELISM, len(digests))) as pool:
        found = [f for f in pool.map(read, digests) if f is not None]
    return {f.digest: f for f in _store(found)}


def _image_facts(details: ImageDetails) -> ImageFacts:
    """The images one manifest digest shows: itself, or (a nested index) those below it."""
    return ImageFacts(
        digest=details.summary.digest,
        media_type=details.summary.media_type,
        facts={
            "images": [
                {
                    "platform": image.platform,
                    "digest": image.digest,
                    "size": image.size,
                    "layers": image.layers,
                    "labels": image.labels,
                    "created": image.created,
                }
                for image in details.images
            ],
            "annotations": details.annotations,
        },
    )


def _store(facts: list[ImageFacts]) -> list[ImageFacts]:
    # Two views of a new image may store the same digest at once: both rows are equal.
    ImageFacts.objects.bulk_create(facts, ignore_conflicts=True)
    return facts


def _images(facts: dict, platform: str = "") -> list[PlatformImage]:
    return [
        PlatformImage(
            platform=platform or image.get("platform") or "unknown",
            digest=image.get("digest", ""),
            size=int(image.get("size") or 0),
            layers=list(image.get("layers") or []),
            labels=dict(image.get("labels") or {}),
            created=str(image.get("created") or ""),
        )
        for image in facts.get("images") or []
    ]
