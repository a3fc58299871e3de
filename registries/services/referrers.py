"""What refers to an image, read live for its tag page: the referrers tag schema's index."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from registries.connections import client_for
from registries.models import Registry, Tag
from registries.oci import manifest as oci_manifest
from registries.oci.deadline import deadline
from registries.oci.errors import ManifestInvalid, RegistryError

MAX_SHOWN = 100

# artifactType → what a person calls it.
KINDS = (
    ("signature", "Signature", ("signature", "notary", ".sig")),
    ("sbom", "SBOM", ("spdx", "cyclonedx", "sbom", "syft")),
    ("attestation", "Attestation", ("in-toto", "dsse", "attestation", "provenance", "vuln")),
)


@dataclass
class Referrer:
    digest: str
    artifact_type: str
    kind: str
    label: str


@dataclass
class Referrers:
    entries: list[Referrer] = field(default_factory=list)
    error: str = ""


def _kind(artifact_type: str) -> tuple[str, str]:
    lowered = artifact_type.lower()
    for kind, label, needles in KINDS:
        if any(n in lowered for n in needles):
            return kind, label
    return "referrer", "Referrer"


def image_referrers(
    *, registry: Registry, repository: str, digest: str, indexed: bool | None = None
) -> Referrers:
    """The OCI 1.1 referrers listed under `sha256-<hex>` for the image (when the index holds
    that tag, which `indexed` may already say; one bounded manifest read), each with its
    artifact type."""
    if not digest.startswith("sha256:"):
        return Referrers()
    tag = oci_manifest.referrers_tag(digest)
    if indexed is None:
        indexed = Tag.objects.filter(
            repository__registry=registry, repository__name=repository, name=tag
        ).exists()
    if not indexed:
        return Referrers()
    try:
        # A web request: the read stays within the web deadline (registries.oci.deadline).
        with deadline(settings.PROMOTER_WEB_REGISTRY_DEADLINE):
            index = client_for(registry, web=True).get_manifest(
                registry.backing_path(repository), tag
            )
        entries = index.parsed().get("manifests") or []
    except (RegistryError, ManifestInvalid) as exc:
        return Referrers(error=getattr(exc, "message", str(exc)))
    found = []
    for entry in entries[:MAX_SHOWN]:
        if not isinstance(entry, dict) or not isinstance(entry.get("digest"), str):
            continue
        artifact_type = str(entry.get("artifactType") or entry.get("mediaType") or "")
        kind, label = _kind(artifact_type)
        found.append(Referrer(entry["digest"], artifact_type, kind, label))
    return Referrers(found)
