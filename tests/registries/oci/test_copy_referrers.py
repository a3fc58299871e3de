"""The copy engine's referrers and foreign layers against a real distribution 2.8 (which has
no referrers API: OCI 1.1 clients store referrers under the `sha256-<hex>` tag there)."""

from __future__ import annotations

import json

import pytest

from registries.oci import RegistryClient
from registries.oci import copy as oci_copy
from registries.oci.copy import ImageCopier, plan_image
from registries.oci.errors import ManifestInvalid, RegistryError
from tests.support import artifacts as art


class NoTagListing(RegistryClient):
    """The source client, failing the test if the copier lists a repository's tags."""

    def tags(self, repository: str) -> list[str]:
        raise AssertionError("the copier listed every tag; it must HEAD the specific ones")


def copier_for(registry, source: str, target: str) -> ImageCopier:
    return ImageCopier(
        source_factory=lambda: NoTagListing(registry.url, timeout=(2, 10)),
        target_factory=lambda: RegistryClient(registry.url, timeout=(2, 10)),
        source_path=source,
        target_path=target,
        same_host=False,  # stream every blob, as between two hosts
        parallelism=2,
        retries=1,
        backoff=0,
    )


def promote(engine: ImageCopier, reference: str) -> tuple[object, int]:
    plan = plan_image(engine.source, engine.source_path, reference)
    engine.copy_plan(plan, tag=None)
    copied = engine.copy_referrers(plan.digests())
    engine.put_manifest(plan.top, reference)
    return plan, copied


def raw(client: RegistryClient, repo: str, ref: str) -> bytes:
    return client.get_manifest(repo, ref).body


def test_referrers_of_referrers_travel_and_the_targets_fallback_index_is_merged(
    registry, client, repo
):
    src, dst = f"{repo}/dev", f"{repo}/rc"
    image = art.image(client, src, "1.0", seed=1)
    sbom = art.referrer(
        client,
        src,
        image,
        artifact_type=art.SPDX,
        payload=b'{"spdxVersion": "SPDX-2.3"}',
        layer_media_type=art.SPDX,
    )
    signature = art.referrer(
        client,
        src,
        sbom,
        artifact_type=art.NOTATION_SIGNATURE,
        payload=b"jws",
        layer_media_type=art.JOSE,
        annotations={"io.cncf.notary.x509chain.thumbprint#S256": '["ab"]'},
    )
    sig, att = art.cosign(client, src, image, "sig"), art.cosign(client, src, image, "att")
    # The target already lists another referrer of the same image (e.g. a scan report
    # attached there): promotion adds to that index, it never replaces it.
    art.image(client, dst, None, seed=1)  # the subject's blobs, so the report can refer
    report = art.referrer(
        client,
        dst,
        image,
        artifact_type="application/vnd.example.scan+json",
        payload=b'{"critical": 0}',
        layer_media_type="application/json",
    )

    plan, copied = promote(copier_for(registry, src, dst), "1.0")

    assert copied == 4  # the SBOM, the signature on it, cosign's .sig and .att
    assert plan.digests() == [image.digest]
    assert art.fallback_digests(client, dst, image.digest) == [report.digest, sbom.digest]
    merged = json.loads(raw(client, dst, art.tag_for(image.digest)))
    assert merged["manifests"][1] == sbom.referrer_descriptor  # artifactType, annotations kept
    # Nothing was there for the SBOM: the source's index travels byte for byte.
    assert raw(client, dst, art.tag_for(sbom.digest)) == raw(client, src, art.tag_for(sbom.digest))
    for pushed in (sbom, signature, sig, att):
        assert raw(client, dst, pushed.digest) == pushed.body
    assert raw(client, dst, art.tag_for(image.digest, ".sig")) == sig.body
    assert raw(client, dst, art.tag_for(image.digest, ".att")) == att.body
    assert raw(client, dst, "1.0") == image.body

    # Again: nothing new, nothing rewritten.
    before = raw(client, dst, art.tag_for(image.digest))
    promote(copier_for(registry, src, dst), "1.0")
    assert raw(client, dst, art.tag_for(image.digest)) == before


def test_a_stale_entry_in_the_source_fallback_index_is_left_out(registry, client, repo):
    src, dst = f"{repo}/dev", f"{repo}/rc"
    image = art.image(client, src, "1.0", seed=2)
    sbom = art.referrer(
        client, src, image, artifact_type=art.SPDX, payload=b"{}", layer_media_type=art.SPDX
    )
    gone = art.referrer(
        client, src, image, artifact_type=art.SPDX, payload=b"old", layer_media_type=art.SPDX
    )
    client.delete_manifest(src, gone.digest)  # deleting never updates the fallback index
    assert gone.digest in art.fallback_digests(client, src, image.digest)

    _, copied = promote(copier_for(registry, src, dst), "1.0")

    assert copied == 1
    assert art.fallback_digests(client, dst, image.digest) == [sbom.digest]


def test_a_target_tag_that_is_not_a_referrers_index_is_not_overwritten(registry, client, repo):
    src, dst = f"{repo}/dev", f"{repo}/rc"
    image = art.image(client, src, "1.0", seed=3)
    art.referrer(
        client, src, image, artifact_type=art.SPDX, payload=b"{}", layer_media_type=art.SPDX
    )
    squatter = art.image(client, dst, art.tag_for(image.digest), seed=4)

    with pytest.raises(ManifestInvalid, match="not an index of referrers"):
        promote(copier_for(registry, src, dst), "1.0")

    assert raw(client, dst, art.tag_for(image.digest)) == squatter.body


def test_referrer_chains_and_counts_are_bounded(registry, client, repo, monkeypatch):
    src, dst = f"{repo}/dev", f"{repo}/rc"
    image = art.image(client, src, "1.0", seed=5)
    subject = image
    for depth in range(oci_copy.MAX_REFERRER_DEPTH + 1):
        subject = art.referrer(
            client,
            src,
            subject,
            artifact_type=art.NOTATION_SIGNATURE,
            payload=f"sig-{depth}".encode(),
            layer_media_type=art.JOSE,
        )
    with pytest.raises(RegistryError, match="nest more than"):
        promote(copier_for(registry, src, dst), "1.0")

    monkeypatch.setattr(oci_copy, "MAX_REFERRERS", 2)
    with pytest.raises(RegistryError, match="more than 2 signatures"):
        promote(copier_for(registry, src, f"{dst}2"), "1.0")


@pytest.mark.parametrize("oci", [False, True], ids=["docker-foreign", "oci-nondistributable"])
def test_a_foreign_layer_the_source_lacks_is_skipped_and_the_digest_stays(
    registry, client, repo, oci
):
    src, dst = f"{repo}/dev", f"{repo}/rc"
    manifest, foreign = art.foreign_layer_image(client, src, "1.0", oci=oci)
    assert client.blob_size(src, foreign) is None  # never uploaded: clients use its urls
    engine = copier_for(registry, src, dst)

    promote(engine, "1.0")

    assert raw(client, dst, "1.0") == manifest.body
    assert client.blob_size(dst, foreign) is None
    assert engine.counters.blobs_copied == 2  # the config and the image's own layer
    assert engine.counters.blobs_skipped == 1


def test_referrers_from_the_api_are_listed_in_the_fallback_index_of_a_target_without_it(
    registry, client, repo
):
    """A source answering the referrers API (distribution 2.8 does not: one method stands
    in for it) and a target without it: the target gets a `sha256-<hex>` index, so the
    referrers stay discoverable there."""
    src, dst = f"{repo}/dev", f"{repo}/rc"
    image = art.image(client, src, "1.0", seed=6)
    sbom = art.referrer(
        client,
        src,
        image,
        artifact_type=art.SPDX,
        payload=b"{}",
        layer_media_type=art.SPDX,
        fallback=False,  # only the API knows it
    )

    class WithReferrersApi(NoTagListing):
        def referrers(self, repository, digest):
            return [sbom.referrer_descriptor] if digest == image.digest else []

    engine = copier_for(registry, src, dst)
    # The referrers are asked for from the copier's threads, each with a client of its own.
    engine.source_factory = lambda: WithReferrersApi(registry.url, timeout=(2, 10))
    engine.source = engine.source_factory()

    _, copied = promote(engine, "1.0")

    assert copied == 1
    assert raw(client, dst, sbom.digest) == sbom.body
    listed = json.loads(raw(client, dst, art.tag_for(image.digest)))["manifests"]
    assert listed == [sbom.referrer_descriptor]
