"""Accessories: tags that belong to an image rather than being one.

Cosign stores a signature, attestation or SBOM under `sha256-<hex>.sig|.att|.sbom`, and
the OCI referrers tag schema lists referrers under `sha256-<hex>`. These travel with their
image's promotion; pages show them under the image, never as tags to promote.
Plain Python (names only), so models, selectors, services and templates share one rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ACCESSORY_TAG = re.compile(r"^(sha256)-([0-9a-f]{64})(\.sig|\.att|\.sbom)?$")

# suffix: (kind, label under the image, noun in sentences)
KINDS = {
    ".sig": ("signature", "Signed", "Signature"),
    ".att": ("attestation", "Attestation", "Attestation"),
    ".sbom": ("sbom", "SBOM", "SBOM"),
    "": ("referrers", "Referrers", "Referrers index"),
}


@dataclass(frozen=True)
class Accessory:
    """What an accessory tag says: the image it belongs to and what it is."""

    tag: str
    subject: str  # the image's digest, sha256:<hex>
    kind: str  # "signature" | "attestation" | "sbom" | "referrers"
    label: str  # "Signed" | "Attestation" | "SBOM" | "Referrers"
    noun: str  # "Signature" | "Attestation" | "SBOM" | "Referrers index"


def accessory_of(tag: str) -> Accessory | None:
    """The accessory a tag name is (cosign's or the referrers tag schema's), else None."""
    match = _ACCESSORY_TAG.match(tag or "")
    if match is None:
        return None
    kind, label, noun = KINDS[match.group(3) or ""]
    return Accessory(tag, f"{match.group(1)}:{match.group(2)}", kind, label, noun)


def is_accessory(tag: str) -> bool:
    """True for `sha256-<hex>.sig|.att|.sbom` and `sha256-<hex>` tags."""
    return accessory_of(tag) is not None


# For queries: a tag name that is an accessory (PostgreSQL and SQLite both know `regex`).
ACCESSORY_TAG_REGEX = _ACCESSORY_TAG.pattern
