"""What real teams push, promoted dev → rc through the API, checked digest by digest.

One row per kind of content. Real clients where one installs here (skopeo; the docker
CLI's `docker manifest`), by hand where none does (cosign, BuildKit, oras/notation, helm,
Windows layers), built from their specifications. Each row is pushed into devdocker as
Admin (token auth), promoted with `POST /api/promotions/promote`, and then every manifest
of the image, every referrer and every tag is read back from rcdocker.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from registries.models import HistoryEvent, Image, Promotion, Tag
from registries.oci import RegistryClient
from tests.api.conftest import Api, make_key
from tests.conftest import PASSWORD, signed_in, wait_for
from tests.support import artifacts as art
from tests.support.images import make_oci_layout, skopeo_inspect_raw

pytestmark = pytest.mark.django_db(transaction=True)

ADMIN = f"Admin:{PASSWORD}"


@dataclass
class Ctx:
    """What a row needs to push: a client signed in as Admin, where, and scratch space."""

    client: RegistryClient
    hostport: str
    repo: str  # inside devdocker, e.g. team/app-1a2b
    tmp: Path
    url: str  # the portal

    def page(self, path: str) -> requests.Response:
        """A page as Admin sees it (signed in: pages ignore Basic credentials)."""
        return signed_in(self.url).get(self.url + path, timeout=30)

    @property
    def dev(self) -> str:
        return f"devdocker/{self.repo}"


@dataclass
class Pushed:
    """What a row pushed and what must be true at the target after the promotion."""

    version: str  # what the API is asked to promote: a tag or a digest
    digest: str  # the image's top manifest
    tags: list[str]  # tags that must point at `digest` in rcdocker
    referrers: list[art.Pushed] = field(default_factory=list)  # must be in rcdocker
    fallback: dict[str, list[str]] = field(default_factory=dict)  # subject -> listed digests
    cosign_tags: list[str] = field(default_factory=list)
    check: Callable[[Ctx], None] | None = None  # anything else this row must show


def skopeo_copy(ctx: Ctx, layout: Path, tag: str, dest: str, *extra: str) -> None:
    result = subprocess.run(
        [
            "skopeo",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--dest-creds",
            ADMIN,
            *extra,
            f"oci:{layout}:{tag}",
            f"docker://{ctx.hostport}/{ctx.dev}{dest}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def top_digest(ctx: Ctx, ref: str) -> str:
    return art.sha256(skopeo_inspect_raw(f"docker://{ctx.hostport}/{ctx.dev}{ref}", creds=ADMIN))


# --- rows ----------------------------------------------------------------------------


def docker_v2s2(ctx: Ctx) -> Pushed:
    make_oci_layout(ctx.tmp / "l", tag="1.0", seed=11)
    skopeo_copy(ctx, ctx.tmp / "l", "1.0", ":1.0", "--format", "v2s2")
    digest = top_digest(ctx, ":1.0")
    assert ctx.client.get_manifest(ctx.dev, digest).media_type == art.DOCKER_MANIFEST
    return Pushed("1.0", digest, ["1.0"])


def oci_image(ctx: Ctx) -> Pushed:
    info = make_oci_layout(ctx.tmp / "l", tag="1.0", seed=12)
    skopeo_copy(ctx, ctx.tmp / "l", "1.0", ":1.0", "--preserve-digests")
    return Pushed("1.0", info.digest, ["1.0"])


def oci_multi_arch(ctx: Ctx) -> Pushed:
    info = make_oci_layout(
        ctx.tmp / "l", tag="1.0", seed=13, platforms=["linux/amd64", "linux/arm64/v8"]
    )
    skopeo_copy(ctx, ctx.tmp / "l", "1.0", ":1.0", "--all", "--preserve-digests")

    def check(ctx: Ctx) -> None:
        tag = Tag.objects.get(repository__registry__name="rcdocker", repository__name=ctx.repo)
        assert tag.platforms == ["linux/amd64", "linux/arm64/v8"]

    return Pushed("1.0", info.digest, ["1.0"], check=check)


def docker_manifest_list(ctx: Ctx) -> Pushed:
    """`docker manifest create/annotate/push --insecure`: the real docker CLI."""
    for n, arch in enumerate(("amd64", "arm64")):
        make_oci_layout(ctx.tmp / arch, tag=arch, seed=20 + n)
        skopeo_copy(ctx, ctx.tmp / arch, arch, f":{arch}", "--format", "v2s2")
    config = ctx.tmp / "docker"
    config.mkdir()
    auth = base64.b64encode(ADMIN.encode()).decode()
    (config / "config.json").write_text(json.dumps({"auths": {ctx.hostport: {"auth": auth}}}))
    env = {**os.environ, "DOCKER_CONFIG": str(config)}
    ref = f"{ctx.hostport}/{ctx.dev}"
    for args in (
        ["create", "--insecure", f"{ref}:1.0", f"{ref}:amd64", f"{ref}:arm64"],
        ["annotate", "--os", "linux", "--arch", "arm64", f"{ref}:1.0", f"{ref}:arm64"],
        ["push", "--insecure", f"{ref}:1.0"],
    ):
        done = subprocess.run(
            ["docker", "manifest", *args], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
    digest = top_digest(ctx, ":1.0")
    assert ctx.client.get_manifest(ctx.dev, digest).media_type == (
        "application/vnd.docker.distribution.manifest.list.v2+json"
    )
    return Pushed("1.0", digest, ["1.0"])


def buildx_attestations(ctx: Ctx) -> Pushed:
    top = art.buildx_index(ctx.client, ctx.dev, "1.0", seed=30)

    def check(ctx: Ctx) -> None:
        tag = Tag.objects.get(repository__registry__name="rcdocker", repository__name=ctx.repo)
        assert tag.platforms == ["linux/amd64", "linux/arm64"]  # attestations are no platform

    return Pushed("1.0", top.digest, ["1.0"], check=check)


def cosign_tags(ctx: Ctx) -> Pushed:
    image = art.image(ctx.client, ctx.dev, "1.0", seed=40)
    sig = art.cosign(ctx.client, ctx.dev, image, "sig")
    att = art.cosign(ctx.client, ctx.dev, image, "att")
    return Pushed(
        "1.0",
        image.digest,
        ["1.0"],
        referrers=[sig, att],
        cosign_tags=[art.tag_for(image.digest, ".sig"), art.tag_for(image.digest, ".att")],
    )


def oci11_referrers(ctx: Ctx) -> Pushed:
    """An SBOM attached to the image (oras attach) and a signature on the SBOM (notation),
    both through the referrers tag schema, as on any registry without the referrers API."""
    make_oci_layout(ctx.tmp / "l", tag="1.0", seed=50)
    skopeo_copy(ctx, ctx.tmp / "l", "1.0", ":1.0", "--preserve-digests")
    image_digest = top_digest(ctx, ":1.0")
    image = art.Pushed(
        image_digest, art.OCI_MANIFEST, ctx.client.get_manifest(ctx.dev, image_digest).body
    )
    sbom = art.referrer(
        ctx.client,
        ctx.dev,
        image,
        artifact_type=art.SPDX,
        payload=b'{"spdxVersion": "SPDX-2.3", "name": "app"}',
        layer_media_type=art.SPDX,
    )
    signature = art.referrer(
        ctx.client,
        ctx.dev,
        sbom,
        artifact_type=art.NOTATION_SIGNATURE,
        payload=b"eyJhbGciOiJQUzI1NiJ9..",
        layer_media_type=art.JOSE,
        annotations={"io.cncf.notary.x509chain.thumbprint#S256": '["0a1b"]'},
    )
    return Pushed(
        "1.0",
        image_digest,
        ["1.0"],
        referrers=[sbom, signature],
        fallback={image_digest: [sbom.digest], sbom.digest: [signature.digest]},
    )


def helm_chart(ctx: Ctx) -> Pushed:
    chart = art.helm_chart(ctx.client, ctx.dev, "0.1.0")
    return Pushed("0.1.0", chart.digest, ["0.1.0"])


def zstd_layers(ctx: Ctx) -> Pushed:
    # Seed 0 gives uncompressed layers, which skopeo compresses with zstd on the way.
    make_oci_layout(ctx.tmp / "l", tag="1.0", seed=0)
    skopeo_copy(ctx, ctx.tmp / "l", "1.0", ":1.0", "--dest-compress-format", "zstd")
    digest = top_digest(ctx, ":1.0")
    layers = json.loads(ctx.client.get_manifest(ctx.dev, digest).body)["layers"]
    assert {layer["mediaType"] for layer in layers} == {
        "application/vnd.oci.image.layer.v1.tar+zstd"
    }
    return Pushed("1.0", digest, ["1.0"])


def foreign_layer(ctx: Ctx) -> Pushed:
    manifest, foreign = art.foreign_layer_image(ctx.client, ctx.dev, "ltsc2019")

    def check(ctx: Ctx) -> None:
        assert ctx.client.blob_size(f"rcdocker/{ctx.repo}", foreign) is None

    return Pushed("ltsc2019", manifest.digest, ["ltsc2019"], check=check)


def no_layers(ctx: Ctx) -> Pushed:
    info = make_oci_layout(ctx.tmp / "l", tag="1.0", seed=60, layers=0)
    assert json.loads(info.body)["layers"] == []
    skopeo_copy(ctx, ctx.tmp / "l", "1.0", ":1.0", "--preserve-digests")
    return Pushed("1.0", info.digest, ["1.0"])


def index_of_index(ctx: Ctx) -> Pushed:
    amd = art.image(ctx.client, ctx.dev, None, seed=70, platform="linux/amd64")
    arm = art.image(ctx.client, ctx.dev, None, seed=71, platform="linux/arm64")
    inner = art.index(
        ctx.client,
        ctx.dev,
        None,
        [(amd, art.platform_of("linux/amd64"), None), (arm, art.platform_of("linux/arm64"), None)],
    )
    armv7 = art.image(ctx.client, ctx.dev, None, seed=72, platform="linux/arm/v7")
    top = art.index(
        ctx.client,
        ctx.dev,
        "1.0",
        [(inner, None, None), (armv7, art.platform_of("linux/arm/v7"), None)],
    )
    expected_size = sum(
        d["size"]
        for m in (amd, arm, armv7)
        for d in [json.loads(m.body)["config"], *json.loads(m.body)["layers"]]
    )

    def check(ctx: Ctx) -> None:
        tag = Tag.objects.get(repository__registry__name="rcdocker", repository__name=ctx.repo)
        assert tag.size == expected_size
        assert sorted(tag.platforms) == ["linux/amd64", "linux/arm/v7", "linux/arm64"]

    return Pushed("1.0", top.digest, ["1.0"], check=check)


def digest_only(ctx: Ctx) -> Pushed:
    """Pushed by digest, no tag: visible on the repository page, promoted untagged."""
    info = make_oci_layout(ctx.tmp / "l", tag="1.0", seed=80)
    skopeo_copy(ctx, ctx.tmp / "l", "1.0", f"@{info.digest}", "--preserve-digests")
    assert wait_for(
        lambda: Image.objects.filter(
            repository__registry__name="devdocker", digest=info.digest
        ).exists(),
        timeout=10,
    ), "the push by digest never reached the index"
    page = ctx.page(f"/registries/devdocker/images/{ctx.repo}")
    assert page.status_code == 200 and "Untagged images" in page.text
    assert info.digest in page.text

    def check(ctx: Ctx) -> None:
        promotion = Promotion.objects.get(repository=ctx.repo)
        assert (promotion.tag, promotion.moved_tags) == ("", [])
        assert not Tag.objects.filter(repository__registry__name="rcdocker").filter(
            repository__name=ctx.repo
        )
        page = ctx.page(f"/registries/rcdocker/images/{ctx.repo}")
        assert page.status_code == 200 and info.digest in page.text
        event = HistoryEvent.objects.get(action="promoted", repository=ctx.repo)
        assert (event.tag, event.digest, event.to_registry) == ("", info.digest, "rcdocker")

    return Pushed(info.digest, info.digest, [], check=check)


def one_digest_two_tags(ctx: Ctx) -> Pushed:
    """Promoting a digest moves every tag that points at it, not just the newest."""
    info = make_oci_layout(ctx.tmp / "l", tag="1.0", seed=90)
    for tag in ("1.0", "stable"):
        skopeo_copy(ctx, ctx.tmp / "l", "1.0", f":{tag}", "--preserve-digests")
    assert wait_for(
        lambda: (
            Tag.objects.filter(
                repository__registry__name="devdocker", repository__name=ctx.repo
            ).count()
            == 2
        ),
        timeout=10,
    )

    def check(ctx: Ctx) -> None:
        assert sorted(Promotion.objects.get(repository=ctx.repo).moved_tags) == ["1.0", "stable"]
        events = HistoryEvent.objects.filter(action="promoted", repository=ctx.repo)
        assert sorted(e.tag for e in events) == ["1.0", "stable"]

    return Pushed(info.digest, info.digest, ["1.0", "stable"], check=check)


ROWS = [
    docker_v2s2,
    oci_image,
    oci_multi_arch,
    docker_manifest_list,
    buildx_attestations,
    cosign_tags,
    oci11_referrers,
    helm_chart,
    zstd_layers,
    foreign_layer,
    no_layers,
    index_of_index,
    digest_only,
    one_digest_two_tags,
]


def manifest_tree(client: RegistryClient, path: str, reference: str) -> dict[str, bytes]:
    """Every manifest of an image by digest (the index and, recursively, its children)."""
    top = client.get_manifest(path, reference)
    found = {top.digest: top.body}
    for entry in json.loads(top.body).get("manifests") or []:
        found.update(manifest_tree(client, path, entry["digest"]))
    return found


@pytest.fixture
def admin_client(demo):
    from django.conf import settings

    with RegistryClient(
        settings.PROMOTER_REGISTRY_URL, username="Admin", password=PASSWORD, timeout=(5, 30)
    ) as client:
        yield client


@pytest.mark.parametrize("row", ROWS, ids=[row.__name__ for row in ROWS])
def test_pushed_content_is_promoted_digest_for_digest_with_its_referrers(
    row, demo, admin_client, unique_repo, tmp_path
):
    ctx = Ctx(admin_client, demo.hostport, unique_repo, tmp_path, demo.url)
    pushed = row(ctx)
    api = Api(demo.url, key=make_key("system", name="ci"))

    response = api.post(
        "/api/promotions/promote",
        json={
            "name": unique_repo,
            "version": pushed.version,
            "fromFeed": "devdocker",
            "toFeed": "rcdocker",
        },
    )

    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["digest"]) == ("succeeded", pushed.digest)
    dev, rc = f"devdocker/{unique_repo}", f"rcdocker/{unique_repo}"
    source = manifest_tree(admin_client, dev, pushed.digest)
    for digest, body in source.items():
        assert admin_client.get_manifest(rc, digest).body == body, f"{digest} differs in rc"
    for tag in pushed.tags:
        at_rc = skopeo_inspect_raw(f"docker://{demo.hostport}/{rc}:{tag}", creds=ADMIN)
        assert art.sha256(at_rc) == pushed.digest, f"{tag} in rc"
        indexed = Tag.objects.get(
            repository__registry__name="rcdocker", repository__name=unique_repo, name=tag
        )
        assert indexed.digest == pushed.digest
    for referrer in pushed.referrers:
        assert admin_client.get_manifest(rc, referrer.digest).body == referrer.body
    for subject, listed in pushed.fallback.items():
        assert art.fallback_digests(admin_client, rc, subject) == listed
    for tag in pushed.cosign_tags:
        assert admin_client.get_manifest(rc, tag).body == admin_client.get_manifest(dev, tag).body
    promotion = Promotion.objects.get(repository=unique_repo)
    assert promotion.signatures_copied == len(pushed.referrers)
    if pushed.check:
        pushed.check(ctx)


@pytest.mark.slow
def test_untagged_images_follow_the_registry(demo, admin_client, unique_repo, tmp_path):
    """Children of a multi-arch push are parts, not untagged images; a digest deleted at
    the registry leaves the page; sync forgets one whose delete notification was lost."""
    from django.utils import timezone

    from registries.models import Registry, Repository
    from registries.services.index import sync_registry

    ctx = Ctx(admin_client, demo.hostport, unique_repo, tmp_path, demo.url)
    multi = make_oci_layout(
        tmp_path / "m", tag="1.0", seed=100, platforms=["linux/amd64", "linux/arm64"]
    )
    skopeo_copy(ctx, tmp_path / "m", "1.0", ":1.0", "--all", "--preserve-digests")
    single = make_oci_layout(tmp_path / "s", tag="1.0", seed=101)
    skopeo_copy(ctx, tmp_path / "s", "1.0", f"@{single.digest}", "--preserve-digests")
    untagged = Image.objects.filter(repository__name=unique_repo)
    assert wait_for(lambda: untagged.filter(digest=single.digest).exists(), timeout=10)
    assert Tag.objects.get(repository__name=unique_repo, name="1.0").digest == multi.digest
    # The index's children were pushed by digest before it; they are parts of the image.
    assert list(untagged.values_list("digest", flat=True)) == [single.digest]

    deleted = subprocess.run(
        [
            "skopeo",
            "delete",
            "--tls-verify=false",
            "--creds",
            ADMIN,
            f"docker://{demo.hostport}/{ctx.dev}@{single.digest}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert deleted.returncode == 0, deleted.stderr
    assert wait_for(lambda: not untagged.exists(), timeout=10)
    assert single.digest not in ctx.page(f"/registries/devdocker/images/{unique_repo}").text

    lost = Image.objects.create(
        repository=Repository.objects.get(registry__name="devdocker", name=unique_repo),
        digest="sha256:" + "0" * 64,
        pushed_at=timezone.now(),
    )
    sync_registry(Registry.objects.get(name="devdocker"))
    assert not Image.objects.filter(pk=lost.pk).exists()
    assert Tag.objects.filter(repository__name=unique_repo, name="1.0").exists()
