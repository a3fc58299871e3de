"""Builds the OCI client for a Registry (the portal's glue to registries/oci/)."""

from __future__ import annotations

from django.conf import settings

from registries.models import Registry
from registries.oci import RegistryClient


def client_options(*, web: bool = False) -> dict:
    """Timeout, deadline, retry and size settings every registry client shares.

    `web`: the client serves a web request, which must never wait long on a registry
    (a slow one would hold the threads that serve pages and health checks): one try, and
    PROMOTER_WEB_REGISTRY_DEADLINE seconds in all.
    """
    read = float(settings.PROMOTER_REGISTRY_TIMEOUT)
    deadline = float(
        settings.PROMOTER_WEB_REGISTRY_DEADLINE if web else settings.PROMOTER_REGISTRY_DEADLINE
    )
    return {
        # (connect, read): a registry that accepts but never answers times out after `read`.
        "timeout": (min(5.0, read, deadline), min(read, deadline)),
        "deadline": deadline,
        "retries": 1 if web else settings.PROMOTER_REGISTRY_RETRIES,
        "backoff": settings.PROMOTER_REGISTRY_BACKOFF,
        "min_rate": float(settings.PROMOTER_MIN_TRANSFER_RATE),
        "max_blob_bytes": settings.PROMOTER_MAX_BLOB_BYTES or None,
    }


def _quick(options: dict, deadline: float | None) -> dict:
    """Options for a read a person waits for: one try, `deadline` seconds per call."""
    if deadline is None:
        return options
    return {
        **options,
        "timeout": (min(2.0, deadline), deadline),
        "deadline": min(options.get("deadline") or deadline, deadline),
        "retries": 1,
    }


def bundled_client(*, web: bool = False, deadline: float | None = None) -> RegistryClient:
    """The portal's client for the bundled registry; it mints its own tokens, no password stored."""
    provider = None
    if settings.PROMOTER_REGISTRY_TOKEN_AUTH:
        from accounts.tokens import system_token_provider

        provider = system_token_provider
    return RegistryClient(
        settings.PROMOTER_REGISTRY_URL,
        token_provider=provider,
        **_quick(client_options(web=web), deadline),
    )


def client_for(
    registry: Registry, *, web: bool = False, deadline: float | None = None
) -> RegistryClient:
    """A client that reaches `registry`'s backing OCI registry with the right credentials.

    `web=True` inside a web request (see client_options); `deadline`: seconds per call and a
    single try, for reads a person waits for (policies). External registries obey
    PROMOTER_FORBID_PRIVATE_ENDPOINTS on every connection (redirects included).
    """
    if registry.is_bundled:
        return bundled_client(web=web, deadline=deadline)
    return RegistryClient(
        registry.endpoint,
        username=registry.username or None,
        password=registry.password or None,
        forbid_private=settings.PROMOTER_FORBID_PRIVATE_ENDPOINTS,
        **_quick(client_options(web=web), deadline),
    )


def same_backing_host(a: Registry, b: Registry) -> bool:
    """True when blobs can be cross-repository mounted between the two registries."""
    if a.is_bundled and b.is_bundled:
        return True
    return (
        not a.is_bundled
        and not b.is_bundled
        and a.endpoint.rstrip("/") == b.endpoint.rstrip("/")
        and a.username == b.username
    )
