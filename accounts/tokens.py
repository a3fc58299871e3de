"""Docker registry tokens: the signing key, its libtrust key id, and minting JWTs."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
import time
from functools import lru_cache
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.conf import settings

from promoter.shared_secrets import missing_secret, publish_once


def ensure_signing_key(
    key_path: Path | None = None, cert_path: Path | None = None
) -> tuple[Path, Path]:
    """The RSA signing key and its self-signed cert (the registry's rootcertbundle).

    Given by configuration with PostgreSQL (several nodes must sign with one key); made
    once for the single-node SQLite setup, atomically, so processes starting together
    all use one key and a certificate that matches it.
    """
    key_path = Path(key_path or settings.PROMOTER_TOKEN_KEY)
    cert_path = Path(cert_path or settings.PROMOTER_TOKEN_CERT)
    if key_path.exists() and cert_path.exists():
        return key_path, cert_path
    if not settings.SINGLE_NODE:
        raise missing_secret("PROMOTER_TOKEN_KEY", f"{key_path} or {cert_path} does not exist")
    pem = publish_once(key_path, _new_private_key_pem)
    # Every process derives the certificate from the one published key, so whichever
    # certificate is published first matches it.
    publish_once(cert_path, lambda: _certificate_pem(pem), mode=0o644)
    return key_path, cert_path


def _new_private_key_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _certificate_pem(key_pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(key_pem, password=None)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "promoter token signer")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def libtrust_kid(public_key) -> str:
    """The key id distribution expects: SHA-256 of the DER SPKI, 30 bytes, base32, groups of 4."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


@lru_cache(maxsize=4)
def _load_key(key_path: str, mtime: float):
    pem = Path(key_path).read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    return key, libtrust_kid(key.public_key())


def signing_key():
    """The private key and its kid (cached; reloaded when the file changes)."""
    key_path, _ = ensure_signing_key()
    return _load_key(str(key_path), key_path.stat().st_mtime)


def mint_token(*, subject: str, access: list[dict], ttl: int | None = None) -> tuple[str, int]:
    """Sign a registry token granting `access`; returns (jwt, expires_in seconds)."""
    key, kid = signing_key()
    ttl = ttl or settings.PROMOTER_TOKEN_TTL
    now = int(time.time())
    claims = {
        "iss": settings.PROMOTER_TOKEN_ISSUER,
        "sub": subject,
        "aud": settings.PROMOTER_TOKEN_SERVICE,  # a string: distribution 2.8 rejects a list
        "exp": now + ttl,
        "nbf": now - 5,
        "iat": now,
        "jti": secrets.token_hex(16),
        "access": access,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid}), ttl


def parse_scope(scope: str) -> dict | None:
    """`repository:team/api:pull,push` -> {type, name, actions}; None when malformed.

    Repository names must be valid OCI names (no `..`, no empty components): a registry's
    own path cleaning must never be what decides which repository a token names.
    """
    from registries.oci.manifest import MAX_NAME_LENGTH, NAME_RE

    if len(scope) > 512:
        return None
    parts = scope.split(":")
    if len(parts) < 3:
        return None
    kind, actions = parts[0], parts[-1]
    name = ":".join(parts[1:-1])
    if not kind or not name:
        return None
    if kind == "repository" and (len(name) > MAX_NAME_LENGTH or not NAME_RE.fullmatch(name)):
        return None
    return {"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]}


def system_token_provider(scopes: list[str]) -> str:
    """Token provider for the portal's own client: the promotion identity gets what it asks."""
    access = [s for s in (parse_scope(scope) for scope in scopes) if s is not None]
    from accounts.permissions import SYSTEM_SUBJECT

    token, _ = mint_token(subject=SYSTEM_SUBJECT, access=access)
    return token
