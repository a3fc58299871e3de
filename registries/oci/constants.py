"""Media types, limits and timeouts of the OCI distribution protocol."""

# Manifest media types a registry may store. Distribution 2.8 converts to schema1, picks
# one platform of a list, or answers 404 for OCI content unless all four are accepted.
DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

IMAGE_MANIFEST_TYPES = frozenset({DOCKER_MANIFEST_V2, OCI_MANIFEST})
INDEX_TYPES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
MANIFEST_TYPES = IMAGE_MANIFEST_TYPES | INDEX_TYPES

MANIFEST_ACCEPT = ", ".join((DOCKER_MANIFEST_V2, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX))

# Config and layer media types.
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
# Layers fetched from their `urls` rather than the registry (Windows base layers, licensed
# content): a registry may not hold them, so copies skip them when the source lacks them.
NONDISTRIBUTABLE_PREFIXES = (
    DOCKER_LAYER_FOREIGN,
    "application/vnd.oci.image.layer.nondistributable.",
)

# BuildKit lists provenance/SBOM attestation manifests in an index with this annotation.
DOCKER_REFERENCE_TYPE = "vnd.docker.reference.type"
DOCKER_REFERENCE_DIGEST = "vnd.docker.reference.digest"

# An index of indexes is legal; deeper graphs than this are not real images.
MAX_INDEX_DEPTH = 4

# Referrers (OCI 1.1): bounds of the walk from an image to its signatures, SBOMs and
# attestations, and the referrers of those (a signature on an SBOM).
MAX_REFERRER_DEPTH = 4
MAX_REFERRERS = 256
# Cosign's tags next to the image (`sha256-<hex>.sig`), beside the OCI 1.1 fallback tag.
COSIGN_SUFFIXES = (".sig", ".att", ".sbom")

# Registries refuse bigger manifests (distribution: 4 MiB); reading more is a waste or an
# attack, so the client stops at this size.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024

# Wall-clock seconds one registry call may take in all (connect, headers, a small body).
DEFAULT_DEADLINE = 120.0

# Listings (catalog, tags): pages, names, bytes per page and seconds in all. A registry
# answering rel="next" forever is given up on, not followed.
MAX_LIST_PAGES = 1000
MAX_LIST_ITEMS = 100_000
MAX_LIST_PAGE_BYTES = 8 * 1024 * 1024
LIST_BUDGET_SECONDS = 300.0
MAX_REFERRERS_LISTED = 1000  # descriptors in one referrers answer

# An image: children of one index, and manifest bytes held for one copy plan. Real
# multi-arch images have a few dozen children and well under a megabyte of manifests.
MAX_INDEX_CHILDREN = 256
MAX_PLAN_MANIFEST_BYTES = 32 * 1024 * 1024

# (connect, read) seconds for every request; a read timeout applies between bytes, so long
# blob transfers are fine as long as data keeps flowing.
DEFAULT_TIMEOUT = (5.0, 60.0)

# Tokens without expires_in live 60 s (docker token spec); renew a little early.
DEFAULT_TOKEN_TTL = 60
TOKEN_EXPIRY_MARGIN = 10

STREAM_CHUNK_BYTES = 1024 * 1024

# Artifact types of signatures (OCI 1.1 referrers): cosign, notation, sigstore bundles.
SIGNATURE_ARTIFACT_TYPES = frozenset(
    {
        "application/vnd.dev.cosign.artifact.sig.v1+json",
        "application/vnd.cncf.notary.signature",
        "application/vnd.dev.sigstore.bundle.v0.3+json",
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
    }
)
