"""Validation and inspection of manifest bytes; never re-serializes them."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from .constants import (
    COSIGN_SUFFIXES,
    DOCKER_MANIFEST_LIST,
    DOCKER_MANIFEST_V2,
    DOCKER_REFERENCE_TYPE,
    IMAGE_MANIFEST_TYPES,
    INDEX_TYPES,
    MANIFEST_TYPES,
    NONDISTRIBUTABLE_PREFIXES,
    OCI_INDEX,
    OCI_MANIFEST,
)
from .errors import DigestInvalid, ManifestInvalid, NameInvalid, TagInvalid, Unsupported

# Grammar from the OCI distribution spec ("Pulling manifests"). Distribution also caps the
# whole name at 255 characters.
_NAME_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"{_NAME_COMPONENT}(?:/{_NAME_COMPONENT})*")
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}")
MAX_NAME_LENGTH = 255

_HASHES = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}


@dataclass(frozen=True)
class Descriptor:
    """A reference to content: what it is, its digest and size (platform for index entries)."""

    digest: str
    media_type: str
    size: int
    platform: str | None = None
    annotations: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    urls: tuple[str, ...] = field(default=(), compare=False)
    artifact_type: str = field(default="", compare=False)

    @property
    def nondistributable(self) -> bool:
        """A foreign or non-distributable layer: fetched from its `urls`, maybe not stored."""
        return bool(self.urls) or self.media_type.startswith(NONDISTRIBUTABLE_PREFIXES)


@dataclass(frozen=True)
class Manifest:
    """Manifest bytes exactly as the registry served them, with their digest and media type."""

    digest: str
    media_type: str
    body: bytes

    def parsed(self) -> dict[str, Any]:
        """The validated JSON document."""
        return parse(self.body, self.media_type)

    @property
    def is_index(self) -> bool:
        return is_index(self.media_type)


def validate_name(name: object) -> str:
    """Return `name` if it is a valid repository name, else raise NameInvalid."""
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH or not NAME_RE.fullmatch(name):
        raise NameInvalid(
            f"{name!r} is not a valid repository name: use lowercase letters, digits and "
            "separators (. _ __ -), components joined by '/', at most 255 characters."
        )
    return name


def validate_tag(tag: object) -> str:
    """Return `tag` if it is a valid tag, else raise TagInvalid."""
    if not isinstance(tag, str) or not TAG_RE.fullmatch(tag):
        raise TagInvalid(
            f"{tag!r} is not a valid tag: use up to 128 letters, digits, '_', '.' or '-', "
            "not starting with '.' or '-'."
        )
    return tag


def validate_digest(digest: object) -> str:
    """Return `digest` if it is a sha256/sha512 digest, else raise DigestInvalid."""
    if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest):
        raise DigestInvalid(
            f"{digest!r} is not a valid digest: expected 'sha256:' and 64 lowercase hex "
            "characters (or 'sha512:' and 128)."
        )
    return digest


def is_digest(reference: str) -> bool:
    """True when a manifest reference is a digest rather than a tag."""
    return bool(DIGEST_RE.fullmatch(reference))


def validate_reference(reference: object) -> str:
    """Return a tag or digest reference, else raise TagInvalid/DigestInvalid."""
    if isinstance(reference, str) and ":" in reference:
        return validate_digest(reference)
    return validate_tag(reference)


def compute_digest(data: bytes, algorithm: str = "sha256") -> str:
    """`<algorithm>:<hex>` of data; algorithm is sha256 or sha512."""
    try:
        hasher = _HASHES[algorithm]
    except KeyError:
        raise DigestInvalid(f"Digest algorithm {algorithm!r} is not supported.") from None
    return f"{algorithm}:{hasher(data).hexdigest()}"


def sha256_digest(data: bytes) -> str:
    """`sha256:<hex>` of data."""
    return compute_digest(data, "sha256")


def new_hasher(digest: str) -> Any:
    """A hashlib object for the algorithm of a (validated) digest."""
    return _HASHES[validate_digest(digest).split(":", 1)[0]]()


def is_index(media_type: str) -> bool:
    """True for multi-platform media types (Docker manifest list, OCI index)."""
    return media_type in INDEX_TYPES


def _invalid(why: str) -> ManifestInvalid:
    return ManifestInvalid(f"The manifest is invalid: {why}.")


def _descriptor(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(f"{where} is not an object")
    media_type = value.get("mediaType")
    if not isinstance(media_type, str) or not media_type:
        raise _invalid(f"{where} has no mediaType")
    digest = value.get("digest")
    if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest):
        raise _invalid(f"{where} has an invalid digest {digest!r}")
    size = value.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _invalid(f"{where} has an invalid size {size!r}")
    platform = value.get("platform")
    if platform is not None:
        if not isinstance(platform, dict):
            raise _invalid(f"{where}.platform is not an object")
        for key in ("os", "architecture"):
            if not isinstance(platform.get(key), str):
                raise _invalid(f"{where}.platform has no {key}")
        if not isinstance(platform.get("variant", ""), str):
            raise _invalid(f"{where}.platform.variant is not a string")
    annotations = value.get("annotations")
    if annotations is not None and not isinstance(annotations, dict):
        raise _invalid(f"{where}.annotations is not an object")
    urls = value.get("urls")
    if urls is not None and (
        not isinstance(urls, list) or not all(isinstance(u, str) for u in urls)
    ):
        raise _invalid(f"{where}.urls is not a list of strings")
    artifact_type = value.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise _invalid(f"{where}.artifactType is not a string")
    return value


def _guess_media_type(document: dict[str, Any]) -> str:
    declared = document.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    # OCI makes mediaType optional; the shape tells which kind it is.
    return OCI_INDEX if "manifests" in document else OCI_MANIFEST


def parse(body: bytes, media_type: str | None = None) -> dict[str, Any]:
    """Decode and validate manifest bytes; raise ManifestInvalid or Unsupported.

    `media_type` is the Content-Type the bytes were served or will be stored with; when
    None it is taken from the document.
    """
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, TypeError, RecursionError) as exc:
        raise _invalid(f"it is not JSON ({type(exc).__name__})") from None
    if not isinstance(document, dict):
        raise _invalid("the top level is not an object")
    if media_type is None:
        media_type = _guess_media_type(document)
    if media_type not in MANIFEST_TYPES:
        raise Unsupported(
            f"Manifest media type {media_type!r} is not supported; expected a Docker v2 "
            "schema2 manifest or list, or an OCI manifest or index."
        )
    version = document.get("schemaVersion")
    if version != 2 or isinstance(version, bool):
        raise _invalid(f"schemaVersion is {version!r}, expected 2")
    declared = document.get("mediaType")
    if declared is not None and declared != media_type:
        raise _invalid(f"it declares mediaType {declared!r} but is served as {media_type!r}")
    if declared is None and media_type in (DOCKER_MANIFEST_V2, DOCKER_MANIFEST_LIST):
        raise _invalid("a Docker manifest must declare its mediaType")
    if media_type in IMAGE_MANIFEST_TYPES:
        _descriptor(document.get("config"), "config")
        layers = document.get("layers")
        if not isinstance(layers, list):
            raise _invalid("layers is not a list")
        for position, layer in enumerate(layers):
            _descriptor(layer, f"layers[{position}]")
    else:
        children = document.get("manifests")
        if not isinstance(children, list):
            raise _invalid("manifests is not a list")
        for position, child in enumerate(children):
            _descriptor(child, f"manifests[{position}]")
    if document.get("subject") is not None:
        _descriptor(document["subject"], "subject")
    return document


def _platform_string(platform: dict[str, Any] | None) -> str | None:
    if not platform:
        return None
    parts = [platform["os"], platform["architecture"]]
    if platform.get("variant"):
        parts.append(platform["variant"])
    return "/".join(parts)


def _to_descriptor(value: dict[str, Any]) -> Descriptor:
    return Descriptor(
        digest=value["digest"],
        media_type=value["mediaType"],
        size=value["size"],
        platform=_platform_string(value.get("platform")),
        annotations=dict(value.get("annotations") or {}),
        urls=tuple(value.get("urls") or ()),
        artifact_type=value.get("artifactType") or "",
    )


def child_manifests(parsed: dict[str, Any]) -> list[Descriptor]:
    """Descriptors of an index's child manifests ([] for an image manifest)."""
    return [_to_descriptor(child) for child in parsed.get("manifests") or []]


def blobs(parsed: dict[str, Any]) -> list[Descriptor]:
    """Config and layer descriptors of an image manifest ([] for an index)."""
    if "config" not in parsed:
        return []
    return [_to_descriptor(parsed["config"])] + [_to_descriptor(x) for x in parsed["layers"]]


def is_attestation(descriptor: Descriptor) -> bool:
    """An index entry that is not a runnable image: a BuildKit attestation manifest."""
    if descriptor.annotations.get(DOCKER_REFERENCE_TYPE):
        return True
    # BuildKit lists provenance/SBOM attestations as platform unknown/unknown.
    return bool(descriptor.platform and descriptor.platform.startswith("unknown/unknown"))


def platforms(parsed: dict[str, Any]) -> list[str]:
    """Platforms of an index like "linux/arm64/v8", without attestation entries."""
    found: list[str] = []
    for child in child_manifests(parsed):
        if child.platform and not is_attestation(child):
            if child.platform not in found:
                found.append(child.platform)
    return found


def total_size(parsed: dict[str, Any]) -> int:
    """Sum of the sizes the document references directly (config + layers, or children)."""
    return sum(d.size for d in blobs(parsed) + child_manifests(parsed))


def subject(parsed: dict[str, Any]) -> Descriptor | None:
    """The `subject` descriptor of a referrer manifest, if any."""
    value = parsed.get("subject")
    return _to_descriptor(value) if value else None


def artifact_type(parsed: dict[str, Any]) -> str:
    """What a referrer is, as its fallback-index descriptor says it (OCI image spec 1.1):
    `artifactType`, else the config's media type (none for an index without one)."""
    declared = parsed.get("artifactType")
    if isinstance(declared, str) and declared:
        return declared
    config = parsed.get("config")
    return config.get("mediaType", "") if isinstance(config, dict) else ""


def referrers_tag(digest: str) -> str:
    """The OCI 1.1 referrers tag schema's tag for a subject: `<alg>-<hex, at most 64>`."""
    algorithm, _, hex_ = validate_digest(digest).partition(":")
    return f"{algorithm}-{hex_[:64]}"


def cosign_tags(digest: str) -> list[str]:
    """Cosign's signature, attestation and SBOM tags for a digest (`sha256-<hex>.sig`…)."""
    algorithm, _, hex_ = validate_digest(digest).partition(":")
    tags = [f"{algorithm}-{hex_}{suffix}" for suffix in COSIGN_SUFFIXES]
    return [tag for tag in tags if TAG_RE.fullmatch(tag)]  # sha512's would be too long


def referrer_descriptor(manifest: Manifest) -> dict[str, Any]:
    """The descriptor listing `manifest` in a referrers index: media type, digest, size,
    artifactType and annotations (the referrers API's and tag schema's shape)."""
    parsed = manifest.parsed()
    entry: dict[str, Any] = {
        "mediaType": manifest.media_type,
        "digest": manifest.digest,
        "size": len(manifest.body),
    }
    kind = artifact_type(parsed)
    if kind:
        entry["artifactType"] = kind
    if isinstance(parsed.get("annotations"), dict) and parsed["annotations"]:
        entry["annotations"] = parsed["annotations"]
    return entry
