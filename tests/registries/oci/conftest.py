"""Fixtures for registries/oci tests: real registries (plain and token auth) and HTTP stubs.

No Django here: these tests run with `-p no:django`.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from registries.bundled import BackingRegistry
from registries.oci import RegistryClient
from tests.support.registry import start_registry
from tests.support.stubs import Recorded, Reply, Stub, TokenIssuer, self_signed_cert, start_stub

TOKEN_SERVICE = "promoter-test"
TOKEN_ISSUER = "promoter-test-issuer"
USERS = {"alice": "secret"}


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackingRegistry]:
    """A real distribution 2.8 registry without auth, shared by the session."""
    backing = start_registry(tmp_path_factory.mktemp("registry"))
    yield backing
    backing.stop()


@pytest.fixture
def client(registry: BackingRegistry) -> Iterator[RegistryClient]:
    with RegistryClient(registry.url, timeout=(2, 10)) as registry_client:
        yield registry_client


@pytest.fixture
def repo(request: pytest.FixtureRequest) -> str:
    """A repository name unique to the test, so tests sharing a registry do not collide."""
    stem = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:50]
    stem = "-".join(part for part in stem.split("-") if part)
    return f"t/{stem}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def stub_server() -> Iterator[Callable[..., Stub]]:
    """Factory: stub_server(route, host="127.0.0.1") starts a stub, stopped after the test."""
    servers = []

    def start(route: Callable[[Recorded], Reply], host: str = "127.0.0.1") -> Stub:
        stub, server = start_stub(route, host)
        servers.append(server)
        return stub

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@dataclass
class TokenRegistry:
    registry: BackingRegistry
    issuer: TokenIssuer
    realm: Stub


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenRegistry]:
    """A real registry with `auth.token`; its realm is a stub that checks Basic creds."""
    workdir = tmp_path_factory.mktemp("token-registry")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = self_signed_cert(key)
    bundle = workdir / "token-ca.pem"
    bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    issuer = TokenIssuer(
        key, cert.public_bytes(serialization.Encoding.DER), TOKEN_ISSUER, TOKEN_SERVICE
    )

    def realm(request: Recorded) -> Reply:
        auth = request.headers.get("Authorization", "")
        user, _, password = base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
        if not auth.startswith("Basic ") or USERS.get(user) != password:
            return 401, {}, b'{"details": "wrong credentials"}'
        scopes = parse_qs(urlsplit(request.path).query).get("scope", [])
        body = {"token": issuer.mint(scopes, subject=user), "expires_in": 300}
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    realm_stub, server = start_stub(realm)
    backing = start_registry(
        workdir,
        token_realm=f"{realm_stub.url}/token",
        token_service=TOKEN_SERVICE,
        token_issuer=TOKEN_ISSUER,
        token_rootcertbundle=bundle,
    )
    yield TokenRegistry(backing, issuer, realm_stub)
    backing.stop()
    server.shutdown()
    server.server_close()
