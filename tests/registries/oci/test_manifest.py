"""Validators and manifest parsing: unit and property tests (typed errors, nothing else)."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registries.oci import manifest
from registries.oci.constants import (
    DOCKER_MANIFEST_LIST,
    DOCKER_MANIFEST_V2,
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
)
from registries.oci.errors import (
    DigestInvalid,
    ManifestInvalid,
    NameInvalid,
    RegistryError,
    TagInvalid,
    Unsupported,
)

HEX = "0123456789abcdef"
digests = st.text(HEX, min_size=64, max_size=64).map(lambda h: f"sha256:{h}")
sizes = st.integers(min_value=0, max_value=2**40)


def descriptor(digest: str, size: int = 10, media_type: str = OCI_LAYER_GZIP, **extra) -> dict:
    return {"mediaType": media_type, "digest": digest, "size": size, **extra}


def image(layers: int = 2, media_type: str = OCI_MANIFEST) -> dict:
    return {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": descriptor("sha256:" + "c" * 64, 100, OCI_CONFIG),
        "layers": [descriptor(f"sha256:{i:064x}", 1000 + i) for i in range(layers)],
    }


def index(*platforms: dict | None, media_type: str = OCI_INDEX) -> dict:
    children = []
    for n, platform in enumerate(platforms):
        child = descriptor(f"sha256:{n:064x}", 500, OCI_MANIFEST)
        if platform is not None:
            child["platform"] = platform
        children.append(child)
    return {"schemaVersion": 2, "mediaType": media_type, "manifests": children}


def encode(document: object) -> bytes:
    return json.dumps(document).encode()


# -- validators -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["a", "team/api", "a.b_c__d---e/f0", "library/ubuntu", "x" * 255, "a/b/c/d"],
)
def test_valid_names(name: str) -> None:
    assert manifest.validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "A", "a/", "/a", "a//b", "a_", "-a", "a___b", "a.-b", "a b", "x" * 256, "a\n", None, 3],
)
def test_invalid_names(name: object) -> None:
    with pytest.raises(NameInvalid, match="not a valid repository name"):
        manifest.validate_name(name)


@pytest.mark.parametrize("tag", ["latest", "1.4.2", "_x", "A" * 128, "sha256-abc.sig", "v1-rc.1"])
def test_valid_tags(tag: str) -> None:
    assert manifest.validate_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", ".x", "-x", "A" * 129, "a/b", "a:b", "ü", "x\n", None])
def test_invalid_tags(tag: object) -> None:
    with pytest.raises(TagInvalid):
        manifest.validate_tag(tag)


def test_digests() -> None:
    assert manifest.validate_digest("sha256:" + "a" * 64)
    assert manifest.validate_digest("sha512:" + "0" * 128)
    for bad in ("sha256:" + "A" * 64, "sha256:" + "a" * 63, "md5:" + "a" * 32, "sha256:", "", 1):
        with pytest.raises(DigestInvalid):
            manifest.validate_digest(bad)


def test_sha256_digest_and_reference_kinds() -> None:
    assert manifest.sha256_digest(b"") == (
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert manifest.is_digest(manifest.sha256_digest(b"x"))
    assert not manifest.is_digest("latest")
    with pytest.raises(DigestInvalid):
        manifest.validate_reference("sha256:nothex")


alnum = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)
separators = st.sampled_from([".", "_", "__", "-", "---"])
components = st.tuples(alnum, st.lists(st.tuples(separators, alnum), max_size=3)).map(
    lambda parts: parts[0] + "".join(sep + run for sep, run in parts[1])
)
names = st.lists(components, min_size=1, max_size=4).map("/".join)


@given(names)
def test_generated_valid_names_pass(name: str) -> None:
    assert manifest.validate_name(name) == name


@given(st.from_regex(manifest.TAG_RE, fullmatch=True))
def test_generated_valid_tags_pass(tag: str) -> None:
    assert manifest.validate_tag(tag) == tag


@given(digests)
def test_generated_valid_digests_pass(digest: str) -> None:
    assert manifest.validate_digest(digest) == digest


@given(st.one_of(st.text(), st.binary(), st.integers(), st.none()))
def test_validators_raise_only_typed_errors(value: object) -> None:
    for validate, error in (
        (manifest.validate_name, NameInvalid),
        (manifest.validate_tag, TagInvalid),
        (manifest.validate_digest, DigestInvalid),
    ):
        try:
            assert validate(value) == value
        except error:
            pass


@pytest.mark.parametrize(
    "name",
    ["a" + "-a" * 120 + "_", "a." * 127 + "-", "a" * 254 + "/", "a__" * 84 + "!", "a-" * 127],
)
def test_hostile_names_are_rejected_quickly(name: str) -> None:
    # The grammar nests repetitions; a backtracking blow-up would make this take seconds.
    started = time.perf_counter()
    with pytest.raises(NameInvalid):
        manifest.validate_name(name)
    assert time.perf_counter() - started < 0.05


# -- parse ------------------------------------------------------------------------------


@pytest.mark.parametrize("media_type", [OCI_MANIFEST, DOCKER_MANIFEST_V2])
def test_parse_image_manifest(media_type: str) -> None:
    document = image(3, media_type)
    parsed = manifest.parse(encode(document), media_type)
    assert parsed == document
    assert [b.digest for b in manifest.blobs(parsed)] == [
        document["config"]["digest"],
        *[layer["digest"] for layer in document["layers"]],
    ]
    assert manifest.child_manifests(parsed) == []
    assert manifest.platforms(parsed) == []
    assert manifest.total_size(parsed) == 100 + 1000 + 1001 + 1002
    assert not manifest.is_index(media_type)


def test_parse_index_platforms_skip_attestations() -> None:
    document = index(
        {"os": "linux", "architecture": "amd64"},
        {"os": "linux", "architecture": "arm64", "variant": "v8"},
        {"os": "unknown", "architecture": "unknown"},
        None,
    )
    parsed = manifest.parse(encode(document), OCI_INDEX)
    assert manifest.platforms(parsed) == ["linux/amd64", "linux/arm64/v8"]
    assert [c.platform for c in manifest.child_manifests(parsed)] == [
        "linux/amd64",
        "linux/arm64/v8",
        "unknown/unknown",
        None,
    ]
    assert manifest.blobs(parsed) == []
    assert manifest.total_size(parsed) == 2000
    assert manifest.is_index(OCI_INDEX) and manifest.is_index(DOCKER_MANIFEST_LIST)


def test_parse_without_media_type_uses_the_documents_shape() -> None:
    document = image(1)
    del document["mediaType"]  # optional in OCI
    assert manifest.parse(encode(document)) == document
    listing = index({"os": "linux", "architecture": "amd64"})
    del listing["mediaType"]
    assert manifest.child_manifests(manifest.parse(encode(listing)))


def test_manifest_dataclass_parses_its_body() -> None:
    body = encode(image(1))
    m = manifest.Manifest(manifest.sha256_digest(body), OCI_MANIFEST, body)
    assert m.parsed()["layers"] and not m.is_index


def test_subject_descriptor() -> None:
    document = image(1)
    document["subject"] = descriptor("sha256:" + "e" * 64, 5, OCI_MANIFEST)
    parsed = manifest.parse(encode(document), OCI_MANIFEST)
    assert manifest.subject(parsed).digest == "sha256:" + "e" * 64  # type: ignore[union-attr]


def _with(document: dict, path: list, value: object) -> dict:
    target = document
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return document


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (["schemaVersion"], 1),
        (["schemaVersion"], True),
        (["schemaVersion"], KeyError),
        (["mediaType"], OCI_INDEX),
        (["config"], KeyError),
        (["config"], "sha256:abc"),
        (["config", "digest"], "sha256:ABC"),
        (["config", "size"], -1),
        (["config", "size"], "10"),
        (["config", "size"], False),
        (["config", "mediaType"], ""),
        (["layers"], KeyError),
        (["layers"], {}),
        (["layers", 0], None),
        (["layers", 0, "platform"], "linux"),
        (["layers", 0, "annotations"], ["x"]),
        (["subject"], {"digest": "x"}),
    ],
)
def test_parse_rejects_wrong_shapes(path: list, value: object) -> None:
    with pytest.raises(ManifestInvalid, match="The manifest is invalid"):
        manifest.parse(encode(_with(image(1), path, value)), OCI_MANIFEST)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (["manifests"], KeyError),
        (["manifests"], None),
        (["manifests", 0, "platform"], {"os": "linux"}),
        (["manifests", 0, "platform", "variant"], 8),
    ],
)
def test_parse_rejects_wrong_index_shapes(path: list, value: object) -> None:
    document = index({"os": "linux", "architecture": "amd64"})
    with pytest.raises(ManifestInvalid):
        manifest.parse(encode(_with(document, path, value)), OCI_INDEX)


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[]", b"null", b"\xff\xfe", b'"string"', b"{" * 100_000, b"1e999999"],
)
def test_parse_rejects_non_manifests(body: bytes) -> None:
    with pytest.raises(ManifestInvalid):
        manifest.parse(body, OCI_MANIFEST)


def test_docker_manifest_must_declare_its_media_type() -> None:
    document = image(1, DOCKER_MANIFEST_V2)
    del document["mediaType"]
    with pytest.raises(ManifestInvalid, match="must declare"):
        manifest.parse(encode(document), DOCKER_MANIFEST_V2)


def test_unknown_media_type_is_unsupported() -> None:
    with pytest.raises(Unsupported):
        manifest.parse(encode(image(1)), "application/vnd.docker.distribution.manifest.v1+json")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "schemaVersion",
                    "mediaType",
                    "config",
                    "layers",
                    "manifests",
                    "digest",
                    "size",
                    "platform",
                    "os",
                    "architecture",
                    "variant",
                    "subject",
                    "annotations",
                    "x",
                ]
            ),
            children,
            max_size=6,
        )
    ),
    max_leaves=25,
)


@given(json_values, st.sampled_from(sorted(MANIFEST_TYPES) + [None]))
def test_parse_of_arbitrary_json_raises_only_typed_errors(value: object, media_type) -> None:
    try:
        parsed = manifest.parse(encode(value), media_type)
    except (ManifestInvalid, Unsupported):
        return
    # Whatever parses must be safe to inspect.
    manifest.child_manifests(parsed)
    manifest.blobs(parsed)
    manifest.platforms(parsed)
    assert manifest.total_size(parsed) >= 0


@given(st.binary(max_size=200), st.sampled_from(sorted(MANIFEST_TYPES)))
def test_parse_of_arbitrary_bytes_raises_only_typed_errors(body: bytes, media_type: str) -> None:
    try:
        manifest.parse(body, media_type)
    except RegistryError as exc:
        assert isinstance(exc, ManifestInvalid | Unsupported)


platform_strategy = st.fixed_dictionaries(
    {
        "os": st.sampled_from(["linux", "windows"]),
        "architecture": st.sampled_from(["amd64", "arm"]),
    },
    optional={"variant": st.sampled_from(["v6", "v7", "v8"])},
)


@given(
    st.lists(st.tuples(digests, sizes), max_size=8),
    digests,
    sizes,
    st.sampled_from([OCI_MANIFEST, DOCKER_MANIFEST_V2]),
)
def test_generated_images_round_trip(layers, config_digest, config_size, media_type) -> None:
    document = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": descriptor(config_digest, config_size, OCI_CONFIG),
        "layers": [descriptor(d, s) for d, s in layers],
    }
    parsed = manifest.parse(encode(document), media_type)
    found = manifest.blobs(parsed)
    assert [(b.digest, b.size) for b in found] == [(config_digest, config_size), *layers]
    assert manifest.total_size(parsed) == config_size + sum(s for _, s in layers)


@given(
    st.lists(st.tuples(digests, platform_strategy), max_size=6),
    st.sampled_from(sorted(INDEX_TYPES)),
)
def test_generated_indexes_round_trip(children, media_type) -> None:
    document = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [descriptor(d, 1, OCI_MANIFEST, platform=p) for d, p in children],
    }
    parsed = manifest.parse(encode(document), media_type)
    expected = []
    for _, p in children:
        text = "/".join([p["os"], p["architecture"]] + ([p["variant"]] if "variant" in p else []))
        if text not in expected:
            expected.append(text)
    assert manifest.platforms(parsed) == expected
    assert [c.digest for c in manifest.child_manifests(parsed)] == [d for d, _ in children]
