"""Build OCI image layouts with random content and push them with skopeo."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

SKOPEO = os.environ.get("PROMOTER_SKOPEO", "skopeo")


@dataclass
class ImageInfo:
    """What a test needs to know about an image it built or pushed."""

    digest: str  # of the top manifest or index
    media_type: str
    size: int  # of the top manifest or index
    body: bytes  # the top manifest or index, exact bytes
    child_digests: list[str] = field(default_factory=list)  # index children, in order
    layer_digests: list[str] = field(default_factory=list)  # every layer of every child
    config_digests: list[str] = field(default_factory=list)
    platforms: list[str] = field(default_factory=list)
    # Every manifest, config and layer byte of the image (what a full copy transfers).
    total_size: int = 0
    layout_dir: Path | None = None
    tag: str = "latest"

    @property
    def blob_digests(self) -> list[str]:
        """Configs and layers."""
        return self.config_digests + self.layer_digests


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


class _Layout:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blob_dir = root / "blobs" / "sha256"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.written = 0

    def put(self, data: bytes) -> str:
        digest = _digest(data)
        path = self.blob_dir / digest.split(":", 1)[1]
        if not path.exists():
            path.write_bytes(data)
        self.written += len(data)
        return digest


def _layer(rng: random.Random, index: int, size: int, compress: bool) -> tuple[bytes, bytes]:
    """A tar archive holding one random file, returned as (blob, uncompressed tar)."""
    payload = rng.randbytes(size)
    buffer = io.BytesIO()
    # Fixed metadata so the same seed gives the same digests.
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo(f"layer-{index}-{rng.getrandbits(32):08x}.bin")
        info.size, info.mtime, info.mode = len(payload), 0, 0o644
        archive.addfile(info, io.BytesIO(payload))
    tar = buffer.getvalue()
    blob = gzip.compress(tar, mtime=0) if compress else tar
    return blob, tar


def _image(
    layout: _Layout,
    rng: random.Random,
    info: ImageInfo,
    *,
    platform: str,
    layers: int,
    layer_size: int,
    labels: dict[str, str] | None,
    created: str = "",
) -> tuple[bytes, str]:
    os_name, arch, *variant = platform.split("/")
    layer_descriptors, diff_ids = [], []
    for index in range(layers):
        compress = rng.random() < 0.5
        blob, tar = _layer(rng, index, layer_size, compress)
        digest = layout.put(blob)
        info.layer_digests.append(digest)
        diff_ids.append(_digest(tar))
        layer_descriptors.append(
            {
                "mediaType": OCI_LAYER_GZIP if compress else OCI_LAYER,
                "digest": digest,
                "size": len(blob),
            }
        )
    config = {
        "architecture": arch,
        "os": os_name,
        "config": {"Labels": dict(labels or {})},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    if variant:
        config["variant"] = variant[0]
    if created:
        config["created"] = created
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_digest = layout.put(config_bytes)
    info.config_digests.append(config_digest)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
        "layers": layer_descriptors,
    }
    body = json.dumps(manifest, indent=2).encode()
    return body, layout.put(body)


def make_oci_layout(
    dir: str | os.PathLike[str],
    *,
    layers: int = 2,
    layer_size: int = 1024,
    platforms: list[str] | None = None,
    labels: dict[str, str] | None = None,
    tag: str = "latest",
    seed: int | None = None,
    created: str = "",
) -> ImageInfo:
    """Write an OCI image layout with random layers; an index when platforms are given
    (`created`: the config's build time, RFC 3339)."""
    root = Path(dir)
    layout = _Layout(root)
    rng = random.Random(seed)
    info = ImageInfo(digest="", media_type="", size=0, body=b"", layout_dir=root, tag=tag)
    if platforms:
        children = []
        for platform in platforms:
            body, digest = _image(
                layout,
                rng,
                info,
                platform=platform,
                layers=layers,
                layer_size=layer_size,
                labels=labels,
                created=created,
            )
            os_name, arch, *variant = platform.split("/")
            entry_platform = {"architecture": arch, "os": os_name}
            if variant:
                entry_platform["variant"] = variant[0]
            children.append(
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": digest,
                    "size": len(body),
                    "platform": entry_platform,
                }
            )
            info.child_digests.append(digest)
        top = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children})
        top_body, media_type = top.encode(), OCI_INDEX
        info.platforms = list(platforms)
    else:
        top_body, _ = _image(
            layout,
            rng,
            info,
            platform="linux/amd64",
            layers=layers,
            layer_size=layer_size,
            labels=labels,
            created=created,
        )
        media_type = OCI_MANIFEST
        info.platforms = ["linux/amd64"]
    info.digest = layout.put(top_body)
    info.media_type, info.size, info.body = media_type, len(top_body), top_body
    info.total_size = layout.written
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    ref = {
        "mediaType": media_type,
        "digest": info.digest,
        "size": len(top_body),
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [ref]}
    (root / "index.json").write_text(json.dumps(index))
    return info


def _run(args: list[str]) -> bytes:
    result = subprocess.run(args, capture_output=True, timeout=120)
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace")
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {stderr}")
    return result.stdout


def _creds_args(flag: str, creds: tuple[str, str] | str | None) -> list[str]:
    if creds is None:
        return []
    value = creds if isinstance(creds, str) else f"{creds[0]}:{creds[1]}"
    return [f"--{flag}", value]


def skopeo_inspect_raw(ref: str, *, creds: tuple[str, str] | str | None = None) -> bytes:
    """The exact manifest bytes skopeo reads for `docker://…` ref (TLS verification off)."""
    if not ref.startswith("docker://"):
        ref = f"docker://{ref}"
    return _run(
        [SKOPEO, "inspect", "--raw", "--tls-verify=false", *_creds_args("creds", creds), ref]
    )


def docker_manifest_inspect(hostport: str, ref: str, *, creds: str, config_dir) -> dict:
    """What the real `docker manifest inspect --insecure` CLI reads (no engine needed)."""
    import base64
    import json
    import os
    from pathlib import Path

    config_dir = Path(config_dir)
    config_dir.mkdir(parents=True, exist_ok=True)
    auth = base64.b64encode(creds.encode()).decode()
    (config_dir / "config.json").write_text(json.dumps({"auths": {hostport: {"auth": auth}}}))
    result = subprocess.run(
        ["docker", "manifest", "inspect", "--insecure", f"{hostport}/{ref}"],
        capture_output=True,
        timeout=60,
        env={**os.environ, "DOCKER_CONFIG": str(config_dir)},
    )
    if result.returncode != 0:
        raise RuntimeError(f"docker manifest inspect failed: {result.stderr.decode()}")
    return json.loads(result.stdout)


def push_image(
    registry_hostport: str,
    repo: str,
    tag: str,
    *,
    layers: int = 2,
    layer_size: int = 1024,
    platforms: list[str] | None = None,
    creds: tuple[str, str] | str | None = None,
    tmp_path: str | os.PathLike[str],
    labels: dict[str, str] | None = None,
    seed: int | None = None,
    created: str = "",
) -> ImageInfo:
    """Build a random image and push it with skopeo; its registry digest equals the layout's."""
    layout_dir = Path(tmp_path) / f"layout-{repo.replace('/', '_')}-{tag}-{os.urandom(4).hex()}"
    info = make_oci_layout(
        layout_dir,
        layers=layers,
        layer_size=layer_size,
        platforms=platforms,
        labels=labels,
        tag=tag,
        seed=seed,
        created=created,
    )
    target = f"docker://{registry_hostport}/{repo}:{tag}"
    _run(
        [
            SKOPEO,
            "copy",
            "--quiet",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
            *_creds_args("dest-creds", creds),
            f"oci:{layout_dir}:{tag}",
            target,
        ]
    )
    pushed = _digest(skopeo_inspect_raw(target, creds=creds))
    assert pushed == info.digest, f"skopeo pushed {pushed}, the layout has {info.digest}"
    return info
