"""End-to-end tests of RegistryClient against a real distribution 2.8 registry (+ stubs)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from registries.bundled import BackingRegistry
from registries.oci import (
    DOCKER_MANIFEST_LIST,
    DOCKER_MANIFEST_V2,
    MANIFEST_ACCEPT,
    OCI_INDEX,
    OCI_MANIFEST,
    BlobTooLarge,
    BlobUnknown,
    Denied,
    DigestInvalid,
    DigestMismatch,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    RegistryClient,
    RegistryError,
    RegistryTimeout,
    RegistryUnreachable,
    ServerError,
    TooManyRequests,
    Unauthorized,
    Unsupported,
    error_from_response,
    manifest,
    parse_challenges,
    sha256_digest,
)
from registries.oci.constants import DOCKER_CONFIG, DOCKER_LAYER_GZIP, OCI_CONFIG, OCI_LAYER
from tests.support.images import push_image, skopeo_inspect_raw
from tests.support.net import free_port
from tests.support.stubs import Recorded, Stub

MiB = 1024 * 1024


# -- helpers ----------------------------------------------------------------------------


def put_blob(client: RegistryClient, repo: str, data: bytes, media_type: str) -> dict:
    """Upload `data` and return its descriptor."""
    digest = client.upload_blob(repo, sha256_digest(data), [data], size=len(data))
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def put_image(
    client: RegistryClient, repo: str, tag: str, *, docker: bool = False, content: bytes = b""
) -> tuple[bytes, str]:
    """Write a one-layer image with the client; return (manifest bytes, digest)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": content.hex()}).encode()
    layer = b"layer:" + (content or os.urandom(16))
    document = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST_V2 if docker else OCI_MANIFEST,
        "config": put_blob(client, repo, config, DOCKER_CONFIG if docker else OCI_CONFIG),
        "layers": [put_blob(client, repo, layer, DOCKER_LAYER_GZIP if docker else OCI_LAYER)],
    }
    body = json.dumps(document, indent=3).encode()  # unusual spacing: bytes must survive
    digest = client.put_manifest(repo, tag, body, document["mediaType"])
    return body, digest


def read_all(client: RegistryClient, repo: str, digest: str) -> bytes:
    with client.open_blob(repo, digest) as chunks:
        return b"".join(chunks)


def random_chunks(total: int, piece: int, seed: bytes) -> Iterator[bytes]:
    """Deterministic pseudo-random bytes generated piece by piece (never all in memory)."""
    counter = 0
    produced = 0
    while produced < total:
        block = hashlib.sha256(seed + counter.to_bytes(8, "big")).digest() * (piece // 32 + 1)
        block = block[: min(piece, total - produced)]
        produced += len(block)
        counter += 1
        yield block


def stream_digest(total: int, piece: int, seed: bytes) -> str:
    hasher = hashlib.sha256()
    for block in random_chunks(total, piece, seed):
        hasher.update(block)
    return f"sha256:{hasher.hexdigest()}"


class CountingSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        response = super().request(method, url, *args, **kwargs)
        self.urls.append(response.url)
        return response


# -- basics -----------------------------------------------------------------------------


def test_ping_answers(client: RegistryClient) -> None:
    client.ping()


def test_catalog_pages_past_100_repositories_via_link(registry: BackingRegistry) -> None:
    session = CountingSession()
    client = RegistryClient(registry.url, session=session)
    config = b"{}"
    first = put_blob(client, "catalog/r000", config, OCI_CONFIG)
    names = [f"catalog/r{i:03d}" for i in range(105)]
    body = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": first, "layers": []}
    ).encode()
    for name in names:
        if name != names[0]:
            assert client.mount_blob(name, first["digest"], names[0])
        client.put_manifest(name, "v1", body, OCI_MANIFEST)
    session.urls.clear()

    listed = list(client.catalog(page_size=50))

    assert [n for n in listed if n.startswith("catalog/")] == names
    assert len(listed) == len(set(listed))
    pages = [u for u in session.urls if "/v2/_catalog" in u]
    assert len(pages) >= 3
    assert all("n=50" in u for u in pages) and "last=" in pages[1]


def test_tags_lists_every_tag(client: RegistryClient, repo: str) -> None:
    body, _ = put_image(client, repo, "1.0")
    for tag in ("1.1", "latest", "sha256-abc.sig"):
        client.put_manifest(repo, tag, body, OCI_MANIFEST)
    assert sorted(client.tags(repo)) == ["1.0", "1.1", "latest", "sha256-abc.sig"]


# -- manifests --------------------------------------------------------------------------


def test_single_arch_image_pushed_by_skopeo(
    client: RegistryClient, registry: BackingRegistry, repo: str, tmp_path: Path
) -> None:
    image = push_image(registry.hostport, repo, "1.0", tmp_path=tmp_path, layers=3)

    got = client.get_manifest(repo, "1.0")
    head = client.head_manifest(repo, "1.0")

    assert got.digest == image.digest and got.media_type == OCI_MANIFEST
    assert got.body == image.body
    assert head == manifest.Descriptor(image.digest, OCI_MANIFEST, image.size)
    assert [b.digest for b in manifest.blobs(got.parsed())] == image.blob_digests
    assert client.get_manifest(repo, image.digest).body == image.body


def test_multi_arch_index_pushed_by_skopeo(
    client: RegistryClient, registry: BackingRegistry, repo: str, tmp_path: Path
) -> None:
    platforms = ["linux/amd64", "linux/arm64/v8"]
    image = push_image(registry.hostport, repo, "2.0", tmp_path=tmp_path, platforms=platforms)

    index = client.get_manifest(repo, "2.0")

    assert (index.digest, index.media_type, index.body) == (image.digest, OCI_INDEX, image.body)
    parsed = index.parsed()
    assert manifest.platforms(parsed) == platforms
    assert [c.digest for c in manifest.child_manifests(parsed)] == image.child_digests
    for child in manifest.child_manifests(parsed):
        got = client.get_manifest(repo, child.digest)
        assert got.digest == child.digest and got.media_type == OCI_MANIFEST
        assert client.head_manifest(repo, child.digest).size == child.size  # type: ignore[union-attr]


def test_docker_schema2_and_manifest_list_keep_exact_bytes(
    client: RegistryClient, registry: BackingRegistry, repo: str
) -> None:
    child_body, child_digest = put_image(client, repo, child_digest_tag := "amd64", docker=True)
    listing = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST_LIST,
        "manifests": [
            {
                "mediaType": DOCKER_MANIFEST_V2,
                "digest": child_digest,
                "size": len(child_body),
                "platform": {"architecture": "amd64", "os": "linux"},
            }
        ],
    }
    list_body = json.dumps(listing, separators=(",", ":")).encode()
    list_digest = client.put_manifest(repo, "multi", list_body, DOCKER_MANIFEST_LIST)

    child = client.get_manifest(repo, child_digest_tag)
    top = client.get_manifest(repo, "multi")

    assert (child.body, child.digest, child.media_type) == (
        child_body,
        sha256_digest(child_body),
        DOCKER_MANIFEST_V2,
    )
    assert (top.body, top.digest, top.media_type) == (list_body, list_digest, DOCKER_MANIFEST_LIST)
    assert client.head_manifest(repo, "multi").digest == list_digest  # type: ignore[union-attr]
    assert skopeo_inspect_raw(f"{registry.hostport}/{repo}:multi") == list_body


def test_put_manifest_by_digest_then_by_tag(client: RegistryClient, repo: str) -> None:
    body, digest = put_image(client, repo, "seed")
    other = f"{repo}-copy"
    config_and_layers = manifest.blobs(manifest.parse(body, OCI_MANIFEST))
    for blob in config_and_layers:
        assert client.mount_blob(other, blob.digest, repo)

    assert client.put_manifest(other, digest, body, OCI_MANIFEST) == digest
    assert client.head_manifest(other, "release") is None
    assert client.put_manifest(other, "release", body, OCI_MANIFEST) == digest
    assert client.get_manifest(other, "release").digest == digest
    assert client.tags(other) == ["release"]


def test_put_manifest_refuses_bytes_that_do_not_match_the_digest(
    client: RegistryClient, repo: str
) -> None:
    with pytest.raises(DigestMismatch):
        client.put_manifest(repo, sha256_digest(b"other"), b"{}", OCI_MANIFEST)


def test_delete_by_digest_then_manifest_unknown(client: RegistryClient, repo: str) -> None:
    _, digest = put_image(client, repo, "doomed")
    client.delete_manifest(repo, digest)

    assert client.head_manifest(repo, "doomed") is None
    with pytest.raises(ManifestUnknown):
        client.get_manifest(repo, digest)
    with pytest.raises(ManifestUnknown):
        client.delete_manifest(repo, digest)


# -- blobs ------------------------------------------------------------------------------


def test_blob_head_and_streaming_get(client: RegistryClient, repo: str) -> None:
    data = os.urandom(2 * MiB + 5)
    digest = put_blob(client, repo, data, OCI_LAYER)["digest"]

    assert client.blob_size(repo, digest) == len(data)
    assert client.blob_size(repo, sha256_digest(b"absent")) is None
    with client.open_blob(repo, digest) as chunks:
        pieces = list(chunks)
    assert len(pieces) > 1 and b"".join(pieces) == data
    assert client.read_blob(repo, digest, max_bytes=len(data)) == data
    with pytest.raises(BlobTooLarge):
        client.read_blob(repo, digest, max_bytes=1024)


@pytest.mark.parametrize(
    ("size", "chunk_size", "declare_size"),
    [
        (3 * MiB, None, True),  # monolithic, Content-Length
        (3 * MiB + 7, None, False),  # monolithic, Transfer-Encoding: chunked
        (3 * MiB, MiB, True),  # PATCH chunks
        (3 * MiB + 17, MiB, False),  # PATCH chunks, short last chunk
        (0, MiB, True),  # empty blob: no PATCH, just PUT
    ],
)
def test_upload_streams_and_reads_back(
    client: RegistryClient,
    repo: str,
    size: int,
    chunk_size: int | None,
    declare_size: bool,
) -> None:
    seed = os.urandom(8)
    digest = stream_digest(size, 100_000, seed)

    returned = client.upload_blob(
        repo,
        digest,
        random_chunks(size, 100_000, seed),  # odd source chunking vs. upload chunking
        size=size if declare_size else None,
        chunk_size=chunk_size,
    )

    assert returned == digest
    assert client.blob_size(repo, digest) == size
    assert sha256_digest(read_all(client, repo, digest)) == digest


def test_mount_between_repositories(client: RegistryClient, repo: str) -> None:
    data = os.urandom(1000)
    digest = put_blob(client, repo, data, OCI_LAYER)["digest"]

    assert client.mount_blob(f"{repo}-dst", digest, repo) is True
    assert read_all(client, f"{repo}-dst", digest) == data


def test_mount_from_repository_without_the_blob_falls_back_to_upload(
    client: RegistryClient, repo: str
) -> None:
    data = os.urandom(1000)
    digest = sha256_digest(data)

    assert client.mount_blob(repo, digest, f"{repo}-empty") is False
    assert client.blob_size(repo, digest) is None
    client.upload_blob(repo, digest, [data])
    assert read_all(client, repo, digest) == data


def test_referrers_unsupported_by_distribution_2_8(client: RegistryClient, repo: str) -> None:
    _, digest = put_image(client, repo, "x")
    assert client.referrers(repo, digest) is None


# -- typed errors from the real registry -------------------------------------------------


def test_tags_of_unknown_repository_is_name_unknown(client: RegistryClient) -> None:
    with pytest.raises(NameUnknown) as caught:
        client.tags("never/pushed")
    assert caught.value.status == 404 and "never/pushed" in caught.value.message


def test_unknown_manifest_is_manifest_unknown(client: RegistryClient, repo: str) -> None:
    put_image(client, repo, "present")
    with pytest.raises(ManifestUnknown) as caught:
        client.get_manifest(repo, "absent")
    assert caught.value.code == "MANIFEST_UNKNOWN"
    assert client.head_manifest(repo, "absent") is None


def test_unknown_blob_is_blob_unknown(client: RegistryClient, repo: str) -> None:
    put_image(client, repo, "present")
    with pytest.raises(BlobUnknown):
        with client.open_blob(repo, sha256_digest(b"nothing")):
            pass


def test_manifest_with_missing_layer_is_manifest_blob_unknown(
    client: RegistryClient, repo: str
) -> None:
    config = put_blob(client, repo, b"{}", OCI_CONFIG)
    missing = {"mediaType": OCI_LAYER, "digest": sha256_digest(b"missing"), "size": 7}
    body = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [missing]}
    ).encode()
    with pytest.raises(ManifestBlobUnknown) as caught:
        client.put_manifest(repo, "broken", body, OCI_MANIFEST)
    assert "before the manifest" in caught.value.message


def test_garbage_manifest_is_manifest_invalid(client: RegistryClient, repo: str) -> None:
    with pytest.raises(ManifestInvalid):
        client.put_manifest(repo, "junk", b"not json", OCI_MANIFEST)


def test_upload_with_wrong_digest_is_digest_invalid(client: RegistryClient, repo: str) -> None:
    with pytest.raises(DigestInvalid):
        client.upload_blob(repo, sha256_digest(b"expected"), [b"something else"])
    with pytest.raises(DigestInvalid):
        client.upload_blob(repo, sha256_digest(b"expected"), [b"other"], chunk_size=2)


def test_invalid_names_are_refused_before_any_request(client: RegistryClient) -> None:
    with pytest.raises(NameInvalid):
        client.tags("Upper/Case")
    with pytest.raises(DigestInvalid):
        client.blob_size("ok", "sha256:xyz")


def test_closed_port_is_registry_unreachable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RegistryUnreachable) as caught:
        RegistryClient(url).ping()
    # One generic message, whatever the cause: no port-scan oracle (the log has the cause).
    assert caught.value.message == (
        f"Registry at {url} is unreachable. Is it running, and is its address right?"
    )


def test_silent_server_is_registry_timeout() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(RegistryTimeout) as caught:
            RegistryClient(url, timeout=(1, 0.3)).get_manifest("a", "b")
        assert "did not answer" in caught.value.message
    finally:
        for conn in accepted:
            conn.close()
        listener.close()


# -- stubs: behaviour a healthy distribution never shows ---------------------------------


def test_registry_lying_about_manifest_digest_is_digest_mismatch(stub_server) -> None:
    body = b'{"schemaVersion": 2}'
    lie = sha256_digest(b"something else")
    stub: Stub = stub_server(
        lambda r: (200, {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": lie}, body)
    )
    client = RegistryClient(stub.url)
    with pytest.raises(DigestMismatch) as caught:
        client.get_manifest("a/b", "latest")
    assert caught.value.detail == {"expected": lie, "actual": sha256_digest(body)}
    assert stub.requests[0].headers["Accept"] == MANIFEST_ACCEPT


def test_manifest_by_digest_with_other_content_is_digest_mismatch(stub_server) -> None:
    stub = stub_server(lambda r: (200, {"Content-Type": OCI_MANIFEST}, b"{}"))
    with pytest.raises(DigestMismatch):
        RegistryClient(stub.url).get_manifest("a", sha256_digest(b"[]"))


def test_put_manifest_with_rewritten_digest_is_digest_mismatch(stub_server) -> None:
    lie = sha256_digest(b"rewritten")
    stub = stub_server(lambda r: (201, {"Docker-Content-Digest": lie}, b""))
    body = b'{"schemaVersion":2}'
    with pytest.raises(DigestMismatch):
        RegistryClient(stub.url).put_manifest("a", "t", body, OCI_MANIFEST)
    assert stub.requests[0].body == body
    assert stub.requests[0].headers["Content-Type"] == OCI_MANIFEST


def test_blob_with_other_content_is_digest_mismatch(stub_server) -> None:
    stub = stub_server(lambda r: (200, {}, b"tampered"))
    client = RegistryClient(stub.url)
    with pytest.raises(DigestMismatch):
        read_all(client, "a", sha256_digest(b"original"))


def test_manifest_over_4_mib_is_manifest_invalid(stub_server) -> None:
    big = b" " * (4 * MiB + 1)
    stub = stub_server(lambda r: (200, {"Content-Type": OCI_MANIFEST}, big))
    with pytest.raises(ManifestInvalid, match="larger than"):
        RegistryClient(stub.url).get_manifest("a", "big")


def test_basic_auth_wrong_password_is_unauthorized(stub_server) -> None:
    good = "Basic " + base64.b64encode(b"bob:right").decode()

    def route(request: Recorded):
        if request.headers.get("Authorization") == good:
            return 200, {}, b"{}"
        return 401, {"WWW-Authenticate": 'Basic realm="reg"'}, b""

    stub = stub_server(route)
    RegistryClient(stub.url, username="bob", password="right").ping()
    with pytest.raises(Unauthorized) as caught:
        RegistryClient(stub.url, username="bob", password="wrong").ping()
    assert caught.value.status == 401 and "username" in caught.value.message
    with pytest.raises(Unauthorized):
        RegistryClient(stub.url).ping()


def test_denied_and_rate_limited_and_server_errors_are_typed(stub_server) -> None:
    answers = {
        "/v2/denied/tags/list": (403, b'{"errors":[{"code":"DENIED","message":"no"}]}'),
        "/v2/slow/tags/list": (429, b'{"errors":[{"code":"TOOMANYREQUESTS","message":"x"}]}'),
        "/v2/broken/tags/list": (503, b"<html>upstream down</html>"),
    }
    stub = stub_server(lambda r: (*answers[r.path][:1], {}, answers[r.path][1]))
    client = RegistryClient(stub.url)
    for name, error in (("denied", Denied), ("slow", TooManyRequests), ("broken", ServerError)):
        with pytest.raises(error) as caught:
            client.tags(name)
        assert caught.value.status == answers[f"/v2/{name}/tags/list"][0]


def test_redirect_to_another_host_does_not_leak_credentials(stub_server) -> None:
    payload = b"blob bytes"
    storage = stub_server(lambda r: (200, {}, payload), host="127.0.0.2")
    registry = stub_server(
        lambda r: (
            (307, {"Location": f"{storage.url}/signed-url"}, b"")
            if r.headers.get("Authorization")
            else (401, {"WWW-Authenticate": 'Basic realm="r"'}, b"")
        )
    )
    client = RegistryClient(registry.url, username="u", password="p")
    assert read_all(client, "a", sha256_digest(payload)) == payload
    assert "Authorization" not in storage.requests[0].headers
    assert storage.requests[0].headers["Accept-Encoding"] == "identity"


def test_relative_upload_locations_are_resolved(stub_server) -> None:
    def route(request: Recorded):
        if request.method == "POST":
            return 202, {"Location": "/upload/1?_state=abc"}, b""
        if request.method == "PATCH":
            return 202, {"Location": "/upload/2?_state=def"}, b""
        return 201, {"Docker-Content-Digest": sha256_digest(b"abcd")}, b""

    stub = stub_server(route)
    RegistryClient(stub.url).upload_blob("a", sha256_digest(b"abcd"), [b"ab", b"cd"], chunk_size=3)
    assert [(r.method, r.path) for r in stub.requests] == [
        ("POST", "/v2/a/blobs/uploads/"),
        ("PATCH", "/upload/1?_state=abc"),
        ("PATCH", "/upload/2?_state=def"),
        ("PUT", f"/upload/2?_state=def&digest={sha256_digest(b'abcd').replace(':', '%3A')}"),
    ]
    assert [r.headers.get("Content-Range") for r in stub.requests[1:3]] == ["0-2", "3-3"]


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (404, b'{"errors":[{"code":"NAME_UNKNOWN","message":"m"}]}', NameUnknown),
        (400, b'{"errors":[{"code":"MANIFEST_INVALID","message":"m"}]}', ManifestInvalid),
        (400, b'{"errors":[{"code":"MANIFEST_UNVERIFIED","message":"m"}]}', ManifestInvalid),
        (405, b'{"errors":[{"code":"UNSUPPORTED","message":"m"}]}', Unsupported),
        (405, b"", Unsupported),
        (401, b"", Unauthorized),
        (403, b"", Denied),
        (429, b"", TooManyRequests),
        (500, b'{"errors":[{"code":"UNKNOWN","message":"m"}]}', ServerError),
        (418, b"{not json", RegistryError),
        (404, b"", ManifestUnknown),  # not_found default for this call
    ],
)
def test_error_from_response_maps_codes_and_statuses(status, body, expected) -> None:
    response = requests.Response()
    response.status_code, response._content, response.reason = status, body, "Reason"
    error = error_from_response(response, action="do it", not_found=ManifestUnknown)
    assert type(error) is expected
    assert error.status == status and error.message.startswith("Could not do it: ")


# -- token auth --------------------------------------------------------------------------


def test_parse_challenges() -> None:
    header = (
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:a/b:pull,push repository:c:pull",error="insufficient_scope"'
    )
    (challenge,) = parse_challenges(header)
    assert challenge.scheme == "bearer"
    assert challenge.params["realm"] == "https://auth.example/token"
    assert challenge.scopes == ["repository:a/b:pull,push", "repository:c:pull"]
    assert [c.scheme for c in parse_challenges('Basic realm="x", Bearer realm="y"')] == [
        "basic",
        "bearer",
    ]
    assert parse_challenges("") == []


def test_token_flow_sends_basic_creds_and_scopes_caches_and_retries(stub_server) -> None:
    tokens_issued: list[str] = []

    def realm(request: Recorded):
        tokens_issued.append(request.path)
        body = {"token": f"tok{len(tokens_issued)}", "expires_in": 300}
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    auth = stub_server(realm)

    def registry(request: Recorded):
        if request.headers.get("Authorization", "").startswith("Bearer tok"):
            if request.method == "POST":
                return 201, {}, b""  # mounted
            return 200, {"Content-Type": "application/json"}, b'{"tags": ["1"]}'
        challenge = f'Bearer realm="{auth.url}/token",service="reg",scope="repository:a:pull"'
        return 401, {"WWW-Authenticate": challenge}, b""

    stub = stub_server(registry)
    client = RegistryClient(stub.url, username="alice", password="pw")

    assert client.tags("a") == ["1"]
    assert client.tags("a") == ["1"]  # cached token: straight through
    assert client.mount_blob("a", sha256_digest(b"x"), "b") is True

    basic = "Basic " + base64.b64encode(b"alice:pw").decode()
    realm_requests = [r for r in auth.requests]
    assert [r.headers["Authorization"] for r in realm_requests] == [basic, basic]
    assert realm_requests[0].path == "/token?service=reg&scope=repository%3Aa%3Apull&account=alice"
    # A mount needs both scopes in one token: repeated scope parameters.
    assert "scope=repository%3Aa%3Apull%2Cpush&scope=repository%3Ab%3Apull" in (
        realm_requests[1].path
    )
    statuses = [r.headers.get("Authorization", "")[:10] for r in stub.requests]
    assert statuses == ["", "Bearer tok", "Bearer tok", "Bearer tok"]


def test_token_expiry_fetches_a_new_token(stub_server) -> None:
    issued: list[str] = []
    auth = stub_server(
        lambda r: (issued.append(r.path) or 200, {}, b'{"access_token": "t", "expires_in": 20}')
    )
    challenge = {"WWW-Authenticate": f'Bearer realm="{auth.url}/t",service="s"'}
    stub = stub_server(
        lambda r: (200, {}, b"{}") if r.headers.get("Authorization") else (401, challenge, b"")
    )
    client = RegistryClient(stub.url)
    now = [1000.0]
    client._auth._clock = lambda: now[0]
    client.ping()
    now[0] += 5
    client.ping()
    assert len(issued) == 1
    now[0] += 10  # 20 s token, renewed 10 s early
    client.ping()
    assert len(issued) == 2


def test_real_registry_with_token_provider(token_registry, repo: str) -> None:
    issuer = token_registry.issuer
    client = RegistryClient(token_registry.registry.url, token_provider=issuer.mint)

    body, digest = put_image(client, repo, "1.0")
    assert client.get_manifest(repo, "1.0").body == body
    assert client.mount_blob(f"{repo}-b", manifest.blobs(manifest.parse(body))[0].digest, repo)
    assert repo in list(client.catalog())
    client.delete_manifest(repo, digest)
    assert client.head_manifest(repo, digest) is None
    assert [f"repository:{repo}-b:pull,push", f"repository:{repo}:pull"] in issuer.minted
    assert ["registry:catalog:*"] in issuer.minted
    assert [f"repository:{repo}:delete"] in issuer.minted


def test_real_registry_token_without_push_is_denied(token_registry, repo: str) -> None:
    def pull_only(scopes: list[str]) -> str:
        return token_registry.issuer.mint(scopes, allow="pull")

    client = RegistryClient(token_registry.registry.url, token_provider=pull_only)
    with pytest.raises(Denied) as caught:
        client.upload_blob(repo, sha256_digest(b"x"), [b"x"])
    # Distribution lists the actions in Go map order: either order names the push.
    assert any(
        f"repository:{repo}:{actions}" in caught.value.message
        for actions in ("pull,push", "push,pull")
    ), caught.value.message


def test_a_connection_a_fork_hands_back_serves_another_fork_that_instant(
    registry: BackingRegistry, repo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forks share one pool, so another thread may take a connection the moment it is
    handed back: after a HEAD (nothing to read) too, it must be ready for a new request."""
    from urllib3.connectionpool import HTTPConnectionPool

    first = RegistryClient(registry.url, timeout=(2, 10), retries=1)  # an error shows, no retry
    second = first.fork()
    data = os.urandom(100)
    digest = put_blob(first, repo, data, OCI_LAYER)["digest"]
    handed_back = HTTPConnectionPool._put_conn
    taken: list[int | None] = []

    def hand_back_then_take(pool, conn):  # type: ignore[no-untyped-def]
        handed_back(pool, conn)
        if not taken:  # the other thread takes it at once (the pool gives the newest first)
            taken.append(None)
            taken.append(second.blob_size(repo, digest))

    monkeypatch.setattr(HTTPConnectionPool, "_put_conn", hand_back_then_take)

    assert first.head_manifest(repo, "no-such-tag") is None
    assert taken == [None, len(data)]


def test_a_proxy_from_the_environment_carries_the_calls_to_a_plain_http_registry(
    stub_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Calls to a plain-HTTP registry skip requests' per-call work, but not a proxy the
    environment names for it: those still go through the proxy."""
    proxy = stub_server(lambda request: (200, {"Docker-Distribution-Api-Version": "2"}, b"{}"))
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("http_proxy", proxy.url)

    RegistryClient("http://registry.invalid:5000").ping()

    assert [r.path for r in proxy.requests] == ["http://registry.invalid:5000/v2/"]


def test_forks_in_many_threads_share_one_token_fetched_once(token_registry, repo: str) -> None:
    """A copy's threads each use a fork of one client: the realm is asked once per scope,
    even when they all start at once without a token (one fetch, the others wait for it)."""
    client = RegistryClient(token_registry.registry.url, username="alice", password="secret")
    body, _ = put_image(client, repo, "1.0")
    layer = manifest.blobs(manifest.parse(body))[0]
    parent = RegistryClient(token_registry.registry.url, username="alice", password="secret")
    realm = token_registry.realm.requests
    asked_before = len(realm)
    start = threading.Barrier(8)
    sizes: list[int | None] = []

    def look() -> None:
        fork = parent.fork()
        start.wait(timeout=10)
        for _ in range(3):
            sizes.append(fork.blob_size(repo, layer.digest))

    threads = [threading.Thread(target=look) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sizes == [layer.size] * 24
    assert len(realm) - asked_before == 1


def test_real_registry_token_realm_with_basic_credentials(token_registry, repo: str) -> None:
    client = RegistryClient(token_registry.registry.url, username="alice", password="secret")
    body, digest = put_image(client, repo, "1.0")
    assert client.head_manifest(repo, "1.0").digest == digest  # type: ignore[union-attr]

    with pytest.raises(Unauthorized, match="refused user 'alice'"):
        RegistryClient(token_registry.registry.url, username="alice", password="no").ping()
    with pytest.raises(Unauthorized):
        RegistryClient(token_registry.registry.url).tags(repo)


def test_skopeo_pushes_through_the_token_realm(token_registry, repo: str, tmp_path: Path) -> None:
    image = push_image(
        token_registry.registry.hostport, repo, "1.0", tmp_path=tmp_path, creds=("alice", "secret")
    )
    client = RegistryClient(token_registry.registry.url, username="alice", password="secret")
    assert client.get_manifest(repo, "1.0").digest == image.digest


def test_stream_copy_between_repositories_without_buffering(
    client: RegistryClient, repo: str
) -> None:
    data = os.urandom(3 * MiB)
    digest = put_blob(client, repo, data, OCI_LAYER)["digest"]
    size = client.blob_size(repo, digest)

    with client.open_blob(repo, digest) as chunks:
        client.upload_blob(f"{repo}-copy", digest, chunks, size=size)

    assert read_all(client, f"{repo}-copy", digest) == data


def test_failing_source_aborts_upload_with_its_own_error(client: RegistryClient, repo: str) -> None:
    def source() -> Iterator[bytes]:
        yield b"x" * MiB
        raise DigestMismatch("the source lied")

    for kwargs in ({}, {"size": 2 * MiB}, {"chunk_size": MiB // 2}):
        with pytest.raises(DigestMismatch, match="the source lied"):
            client.upload_blob(repo, sha256_digest(b"y"), source(), **kwargs)
    assert client.blob_size(repo, sha256_digest(b"y")) is None


def test_token_provider_sends_tokens_without_waiting_for_a_challenge(stub_server) -> None:
    stub = stub_server(lambda r: (200, {}, b'{"tags": []}'))
    asked: list[list[str]] = []
    client = RegistryClient(stub.url, token_provider=lambda s: asked.append(s) or "minted")
    client.tags("team/api")
    assert stub.requests[0].headers["Authorization"] == "Bearer minted"
    assert asked == [["repository:team/api:pull"]]
