"""Reading image facts (size, platforms, layers, labels) from a registry through the OCI client."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from registries.oci import RegistryClient
from registries.oci import manifest as oci_manifest
from registries.oci.errors import ManifestInvalid, RegistryError

CONFIG_MAX_BYTES = 4 * 1024 * 1024


@dataclass
class ImageSummary:
    digest: str
    media_type: str
    size: int
    platforms: list[str] = field(default_factory=list)


@dataclass
class PlatformImage:
    platform: str
    digest: str
    size: int
    layers: list[dict]
    labels: dict
    created: str = ""


@dataclass
class ImageDetails:
    summary: ImageSummary
    images: list[PlatformImage]
    raw_manifest: str


def _manifest_size(parsed: dict) -> int:
    return sum(d.size for d in oci_manifest.blobs(parsed))


def describe_image(client: RegistryClient, path: str, reference: str) -> ImageSummary:
    """Digest, media type, total size and platforms of the image a tag or digest points at."""
    top = client.get_manifest(path, reference)
    parsed = oci_manifest.parse(top.body, top.media_type)
    if not oci_manifest.is_index(top.media_type):
        platform = _platform_of_config(client, path, parsed)
        return ImageSummary(
            top.digest, top.media_type, _manifest_size(parsed), [platform] if platform else []
        )
    size = 0
    for child in oci_manifest.child_manifests(parsed):
        try:
            child_manifest = client.get_manifest(path, child.digest)
        except RegistryError:
            continue
        size += _manifest_size(oci_manifest.parse(child_manifest.body, child_manifest.media_type))
    return ImageSummary(top.digest, top.media_type, size, oci_manifest.platforms(parsed))


def _config(client: RegistryClient, path: str, parsed: dict) -> dict:
    config = parsed.get("config") or {}
    digest = config.get("digest")
    if not digest:
        return {}
    try:
        return json.loads(client.read_blob(path, digest, CONFIG_MAX_BYTES))
    except (ValueError, RegistryError):
        return {}


def _platform_of_config(client: RegistryClient, path: str, parsed: dict) -> str:
    config = _config(client, path, parsed)
    if not config.get("os"):
        return ""
    parts = [config.get("os", ""), config.get("architecture", "")]
    if config.get("variant"):
        parts.append(config["variant"])
    return "/".join(p for p in parts if p)


def _platform_image(client, path, digest, media_type, body, platform="") -> PlatformImage:
    parsed = oci_manifest.parse(body, media_type)
    config = _config(client, path, parsed)
    if not platform and config.get("os"):
        platform = "/".join(
            p for p in (config.get("os"), config.get("architecture"), config.get("variant")) if p
        )
    return PlatformImage(
        platform=platform or "unknown",
        digest=digest,
        size=_manifest_size(parsed),
        layers=list(parsed.get("layers") or []),
        labels=dict((config.get("config") or {}).get("Labels") or {}),
        created=str(config.get("created") or ""),
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
        )
        return ImageDetails(summary, [image], raw)
    images = []
    for child in oci_manifest.child_manifests(parsed):
        if not child.platform or child.platform.startswith("unknown/"):
            continue  # attestation manifests carry unknown/unknown
        try:
            manifest = client.get_manifest(path, child.digest)
        except (RegistryError, ManifestInvalid):
            continue
        images.append(
            _platform_image(
                client, path, manifest.digest, manifest.media_type, manifest.body, child.platform
            )
        )
    summary = ImageSummary(
        top.digest, top.media_type, sum(i.size for i in images), oci_manifest.platforms(parsed)
    )
    return ImageDetails(summary, images, raw)
