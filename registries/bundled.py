"""The bundled registry's config: token auth and notifications pointed at this portal."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from accounts.tokens import ensure_signing_key
from registries.backing import write_registry_config


def write_bundled_registry_config(
    path: Path, *, port: int, storage_dir: Path, notify_base: str, realm_base: str
) -> Path:
    """Write the config `make run` and the tests give the bundled docker-registry."""
    _, cert_path = ensure_signing_key()
    return write_registry_config(
        path,
        port=port,
        storage_dir=str(storage_dir),
        notify_url=f"{notify_base}/registry/notifications",
        notify_secret=settings.PROMOTER_NOTIFY_SECRET,
        token_realm=f"{realm_base}/auth/token",
        token_service=settings.PROMOTER_TOKEN_SERVICE,
        token_issuer=settings.PROMOTER_TOKEN_ISSUER,
        token_rootcertbundle=str(cert_path),
    )
