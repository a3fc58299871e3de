"""Artifacts built by hand, as the clients that are not packaged here make them.

cosign (`.sig`/`.att` tags), oras/notation (OCI 1.1 referrers with `artifactType` and
`subject`, stored under the referrers tag schema's `sha256-<hex>` index on registries
without the referrers API), BuildKit (attestation manifests in an index), helm (a chart
as OCI), Windows (foreign layers) and nested indexes. Media types and annotations follow
the OCI image/distribution specs 1.1 and each tool's documented format. The bytes go
through any object with `upload_blob`, `blob_size`, `put_manifest`, `head_manifest` and
`get_manifest` (the portal's RegistryClient, with whatever credentials the test gives it).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import random
import tarfile
from dataclasses import dataclass, field

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
COSIGN_SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
SPDX = "application/spdx+json"
NOTATION_SIGNATURE = "application/vnd.cncf.notary.signature"
JOSE = "application/jose+json"
EMPTY_JSON = b"{}"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Pushed:
    """A manifest as stored: exact bytes, digest, media type (and what it refers to)."""

    digest: str
    media_type: str
    body: bytes
    artifact_type: str = ""
    annotations: dict[str, str] = field(default_factory=dict)
    children: list[Pushed] = field(default_factory=list)  # index entries, in order

    @property
    def descriptor(self) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.body)}

    @property
    def referrer_descriptor(self) -> dict:
        """How the referrers API and the referrers tag schema list this manifest."""
        entry = dict(self.descriptor)
        if self.artifact_type:
            entry["artifactType"] = self.artifact_type
        if self.annotations:
            entry["annotations"] = dict(self.annotations)
        return entry

    def all_manifests(self) -> list[Pushed]:
        """This manifest and every manifest below it (children first)."""
        found: list[Pushed] = []
        for child in self.children:
            found.extend(
                m for m in child.all_manifests() if m.digest not in {f.digest for f in found}
            )
        return found + [self]


def tag_for(digest: str, suffix: str = "") -> str:
    """`sha256-<hex>` (the referrers tag schema) or cosign's `sha256-<hex>.sig`."""
    algorithm, _, hex_ = digest.partition(":")
    return f"{algorithm}-{hex_[:64]}{suffix}"


def blob(client, repo: str, data: bytes, media_type: str, **extra) -> dict:
    """Upload `data` (unless there) and return its descriptor."""
    digest = sha256(data)
    if client.blob_size(repo, digest) is None:
        client.upload_blob(repo, digest, [data], size=len(data))
    return {"mediaType": media_type, "digest": digest, "size": len(data), **extra}


def put(client, repo: str, ref: str | None, document: dict, media_type: str) -> Pushed:
    """PUT a manifest under `ref` (a tag), or by its own digest when `ref` is None."""
    body = json.dumps(document, indent=3).encode()
    digest = sha256(body)
    stored = client.put_manifest(repo, ref or digest, body, media_type)
    assert stored == digest, (stored, digest)
    return Pushed(
        digest,
        media_type,
        body,
        artifact_type=document.get("artifactType") or "",
        annotations=dict(document.get("annotations") or {}),
    )


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), mtime=0)


def image(
    client,
    repo: str,
    tag: str | None,
    *,
    seed: int,
    platform: str = "linux/amd64",
    layers: int = 1,
    docker: bool = False,
) -> Pushed:
    """A small runnable-looking image (OCI, or Docker v2 schema 2)."""
    rng = random.Random(seed)
    os_name, arch, *variant = platform.split("/")
    layer_descriptors, diff_ids = [], []
    for n in range(layers):
        payload = _tar_gz({f"file-{n}-{seed}": rng.randbytes(512)})
        layer_descriptors.append(
            blob(client, repo, payload, DOCKER_LAYER if docker else OCI_LAYER_GZIP)
        )
        diff_ids.append(sha256(gzip.decompress(payload)))
    config = {
        "architecture": arch,
        "os": os_name,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    if variant:
        config["variant"] = variant[0]
    config_descriptor = blob(
        client, repo, json.dumps(config).encode(), DOCKER_CONFIG if docker else OCI_CONFIG
    )
    media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    document = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config_descriptor,
        "layers": layer_descriptors,
    }
    return put(client, repo, tag, document, media_type)


def index(
    client,
    repo: str,
    tag: str | None,
    entries: list[tuple[Pushed, dict | None, dict | None]],
    *,
    media_type: str = OCI_INDEX,
) -> Pushed:
    """An index of (manifest, platform, annotations) entries."""
    manifests = []
    for pushed, platform, notes in entries:
        entry = dict(pushed.descriptor)
        if platform:
            entry["platform"] = platform
        if notes:
            entry["annotations"] = notes
        manifests.append(entry)
    document = {"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}
    top = put(client, repo, tag, document, media_type)
    top.children = [pushed for pushed, _, _ in entries]
    return top


def platform_of(value: str) -> dict:
    os_name, arch, *variant = value.split("/")
    found = {"architecture": arch, "os": os_name}
    if variant:
        found["variant"] = variant[0]
    return found


def buildx_index(client, repo: str, tag: str, *, seed: int) -> Pushed:
    """What `docker buildx build --provenance --sbom --push` stores: per platform an image
    and an attestation manifest (platform unknown/unknown, in-toto layers) that names it
    in `vnd.docker.reference.digest`."""
    entries: list[tuple[Pushed, dict | None, dict | None]] = []
    attestations = []
    for n, platform in enumerate(("linux/amd64", "linux/arm64")):
        runnable = image(client, repo, None, seed=seed + n, platform=platform)
        entries.append((runnable, platform_of(platform), None))
        statement = json.dumps(
            {
                "_type": "https://in-toto.io/Statement/v0.1",
                "predicateType": "https://spdx.dev/Document",
                "subject": [{"name": "_", "digest": {"sha256": runnable.digest[7:]}}],
                "predicate": {"spdxVersion": "SPDX-2.3", "name": f"sbom-{seed}-{n}"},
            }
        ).encode()
        layer = blob(
            client,
            repo,
            statement,
            IN_TOTO,
            annotations={"in-toto.io/predicate-type": "https://spdx.dev/Document"},
        )
        config = json.dumps(
            {
                "architecture": "unknown",
                "os": "unknown",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [sha256(statement)]},
            }
        ).encode()
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": blob(client, repo, config, OCI_CONFIG),
            "layers": [layer],
        }
        attestation = put(client, repo, None, document, OCI_MANIFEST)
        attestations.append(
            (
                attestation,
                {"architecture": "unknown", "os": "unknown"},
                {
                    "vnd.docker.reference.digest": runnable.digest,
                    "vnd.docker.reference.type": "attestation-manifest",
                },
            )
        )
    return index(client, repo, tag, entries + attestations)


def cosign(client, repo: str, subject: Pushed, kind: str = "sig") -> Pushed:
    """Cosign's legacy storage: a manifest tagged `sha256-<hex>.sig` (or `.att`) whose
    layers are the simple-signing payload (or a DSSE envelope) with the signature in an
    annotation. No `subject`: the tag name is the link."""
    if kind == "sig":
        payload = json.dumps(
            {
                "critical": {
                    "identity": {"docker-reference": repo},
                    "image": {"docker-manifest-digest": subject.digest},
                    "type": "cosign container image signature",
                },
                "optional": None,
            }
        ).encode()
        media_type = COSIGN_SIMPLESIGNING
        annotations = {"dev.cosignproject.cosign/signature": base64.b64encode(b"sig").decode()}
    else:
        statement = json.dumps({"predicateType": "https://slsa.dev/provenance/v0.2"}).encode()
        payload = json.dumps(
            {
                "payloadType": "application/vnd.in-toto+json",
                "payload": base64.b64encode(statement).decode(),
                "signatures": [{"keyid": "", "sig": base64.b64encode(b"att").decode()}],
            }
        ).encode()
        media_type = DSSE_ENVELOPE
        annotations = {"predicateType": "https://slsa.dev/provenance/v0.2"}
    layer = blob(client, repo, payload, media_type, annotations=annotations)
    config = json.dumps(
        {
            "architecture": "",
            "os": "",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
        }
    ).encode()
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": blob(client, repo, config, OCI_CONFIG),
        "layers": [layer],
    }
    return put(client, repo, tag_for(subject.digest, f".{kind}"), document, OCI_MANIFEST)


def referrer(
    client,
    repo: str,
    subject: Pushed,
    *,
    artifact_type: str,
    payload: bytes,
    layer_media_type: str,
    annotations: dict[str, str] | None = None,
    fallback: bool = True,
) -> Pushed:
    """An OCI 1.1 artifact (`artifactType`, empty config, `subject`), pushed by digest as
    oras attach / notation sign do; with `fallback`, then listed in the subject's
    `sha256-<hex>` index the way those clients do on a registry without the referrers
    API (read the index, add the descriptor, push it back)."""
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": blob(client, repo, EMPTY_JSON, OCI_EMPTY),
        "layers": [blob(client, repo, payload, layer_media_type)],
        "subject": subject.descriptor,
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}
        | dict(annotations or {}),
    }
    pushed = put(client, repo, None, document, OCI_MANIFEST)
    if fallback:
        fallback_add(client, repo, subject.digest, pushed)
    return pushed


def fallback_add(client, repo: str, subject_digest: str, referrer_manifest: Pushed) -> Pushed:
    """Update the referrers tag schema index of `subject_digest` (client side)."""
    tag = tag_for(subject_digest)
    manifests: list[dict] = []
    if client.head_manifest(repo, tag) is not None:
        manifests = json.loads(client.get_manifest(repo, tag).body)["manifests"]
    if referrer_manifest.digest not in {m["digest"] for m in manifests}:
        manifests.append(referrer_manifest.referrer_descriptor)
    document = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    return put(client, repo, tag, document, OCI_INDEX)


def fallback_digests(client, repo: str, subject_digest: str) -> list[str]:
    """The digests a `sha256-<hex>` index lists, in order ([] when there is none)."""
    tag = tag_for(subject_digest)
    if client.head_manifest(repo, tag) is None:
        return []
    return [m["digest"] for m in json.loads(client.get_manifest(repo, tag).body)["manifests"]]


def helm_chart(client, repo: str, version: str) -> Pushed:
    """`helm push`: config `application/vnd.cncf.helm.config.v1+json`, one chart layer."""
    chart_yaml = f"apiVersion: v2\nname: demo\nversion: {version}\n".encode()
    config = json.dumps({"apiVersion": "v2", "name": "demo", "version": version}).encode()
    document = {
        "schemaVersion": 2,
        "config": blob(client, repo, config, HELM_CONFIG),
        "layers": [blob(client, repo, _tar_gz({"demo/Chart.yaml": chart_yaml}), HELM_CHART)],
        "annotations": {
            "org.opencontainers.image.title": "demo",
            "org.opencontainers.image.version": version,
        },
    }
    return put(client, repo, version, document, OCI_MANIFEST)


def foreign_layer_image(client, repo: str, tag: str, *, oci: bool = False) -> tuple[Pushed, str]:
    """A Windows-style image: a foreign base layer fetched from its `urls` (never uploaded)
    under a normal layer. Returns the manifest and the foreign layer's digest."""
    foreign = _tar_gz({"Files/windows.dll": random.Random(7).randbytes(256)})
    foreign_digest = sha256(foreign)
    url = f"https://mcr.example.com/v2/windows/nanoserver/blobs/{foreign_digest}"
    own = blob(client, repo, _tar_gz({"app.exe": b"MZ"}), OCI_LAYER_GZIP if oci else DOCKER_LAYER)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "windows",
            "os.version": "10.0.17763.1",
            "rootfs": {"type": "layers", "diff_ids": [foreign_digest, own["digest"]]},
        }
    ).encode()
    media_type = OCI_MANIFEST if oci else DOCKER_MANIFEST
    document = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": blob(client, repo, config, OCI_CONFIG if oci else DOCKER_CONFIG),
        "layers": [
            {
                "mediaType": OCI_NONDIST_GZIP if oci else DOCKER_FOREIGN,
                "digest": foreign_digest,
                "size": len(foreign),
                "urls": [url],
            },
            own,
        ],
    }
    return put(client, repo, tag, document, media_type), foreign_digest
