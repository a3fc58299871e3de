"""HTTP stubs and a registry token issuer for tests (no Django)."""

from __future__ import annotations

import base64
import datetime
import http.server
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

# -- HTTP stubs -------------------------------------------------------------------------


@dataclass
class Recorded:
    """One request a stub received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Reply = tuple[int, dict[str, str], bytes]


@dataclass
class Stub:
    """A tiny HTTP server; `route(request) -> (status, headers, body)` decides each answer."""

    route: Callable[[Recorded], Reply]
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""


class _Handler(http.server.BaseHTTPRequestHandler):
    stub: Stub

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        recorded = Recorded(self.command, self.path, dict(self.headers.items()), body)
        self.server.stub.requests.append(recorded)  # type: ignore[attr-defined]
        status, headers, payload = self.server.stub.route(recorded)  # type: ignore[attr-defined]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle


def start_stub(
    route: Callable[[Recorded], Reply], host: str = "127.0.0.1"
) -> tuple[Stub, http.server.ThreadingHTTPServer]:
    """Serve `route` on a free port of `host` in a daemon thread; shut the server down after."""
    stub = Stub(route)
    server = http.server.ThreadingHTTPServer((host, 0), _Handler)
    server.daemon_threads = True
    server.stub = stub  # type: ignore[attr-defined]
    stub.url = f"http://{host}:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return stub, server


# -- token auth -------------------------------------------------------------------------


@dataclass
class TokenIssuer:
    """Mints registry JWTs the way the portal's token service will (RS256, x5c header)."""

    key: rsa.RSAPrivateKey
    cert_der: bytes
    issuer: str
    service: str
    minted: list[list[str]] = field(default_factory=list)

    def mint(self, scopes: list[str], subject: str = "tester", allow: str | None = None) -> str:
        """A token for `scopes`; `allow` limits the actions granted (e.g. "pull")."""
        self.minted.append(list(scopes))
        access = []
        for scope in scopes:
            kind, rest = scope.split(":", 1)
            name, actions = rest.rsplit(":", 1)
            wanted = actions.split(",")
            if allow is not None:
                wanted = [a for a in wanted if a in allow.split(",")]
            access.append({"type": kind, "name": name, "actions": wanted})
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 5,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        x5c = [base64.b64encode(self.cert_der).decode()]
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"x5c": x5c})


def self_signed_cert(key: rsa.RSAPrivateKey) -> x509.Certificate:
    """A one-day self-signed certificate: the registry's auth.token.rootcertbundle."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "promoter test token signer")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
