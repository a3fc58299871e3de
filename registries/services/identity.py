"""Which backing registry the index describes: an identity kept in it and in the database.

Several nodes share one database. If a node's bundled registry is not the one the index
was built from (a second `make run` with its own empty storage, a wrong
PROMOTER_REGISTRY_URL), its sync would "find" every tag gone and record deletions, its
notifications would index images nobody else can pull, and its worker would fail
promotions. So the first node to use an empty index claims an identity: a tiny manifest
tagged with a random id in the reserved repository `promoter-system/identity` of its
registry, and the same id in the database. A node whose registry lacks that tag refuses to
sync, to apply notifications and to run promotions, and says why in its log and on
/readyz. Registries sharing storage (replicas on one S3 bucket) share the tag.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from registries.connections import bundled_client
from registries.models import RESERVED_REGISTRY_NAME, Coordination, Registry, Tag
from registries.oci.errors import NameUnknown, RegistryError

log = logging.getLogger(__name__)

REPOSITORY = f"{RESERVED_REGISTRY_NAME}/identity"
ROW = "registry-identity"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EMPTY_CONFIG = b"{}"
OK_FOR = 30.0  # seconds a confirmed identity is trusted before the registry is asked again
PROBLEM_FOR = 5.0

_cache: dict[tuple[str, str], tuple[float, IdentityState]] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class IdentityState:
    """Whether this node's bundled registry is the one the index describes."""

    ok: bool
    identity: str = ""
    problem: str = ""


def registry_identity(*, claim: bool = True) -> IdentityState:
    """Check (cached briefly) that this node's bundled registry carries the index's identity.

    With `claim`, an index without an identity gets one from this registry, unless the index
    already lists bundled images that this registry does not have.
    """
    from django.conf import settings

    if not Registry.objects.filter(endpoint="").exists():
        # Every registry is external: the bundled registry holds nothing the index describes,
        # so there is nothing to guard (and a node without one may run promotions).
        return IdentityState(ok=True)
    url = settings.PROMOTER_REGISTRY_URL
    row = Coordination.objects.filter(name=ROW).first()
    identity = row.value if row else ""
    if not identity:
        if not claim:
            return IdentityState(ok=True, problem="")
        return _claim(url)
    key = (url, identity)
    with _cache_lock:
        cached = _cache.get(key)
    if cached and time.monotonic() < cached[0]:
        return cached[1]
    state = _check(identity, url)
    with _cache_lock:
        _cache[key] = (time.monotonic() + (OK_FOR if state.ok else PROBLEM_FOR), state)
    if not state.ok:
        log.error("%s", state.problem)
    return state


def _check(identity: str, url: str) -> IdentityState:
    try:
        found = bundled_client().head_manifest(REPOSITORY, identity) is not None
    except NameUnknown:
        found = False
    except RegistryError as exc:
        return IdentityState(
            ok=False,
            identity=identity,
            problem=f"The backing registry at {url} could not be checked: {exc.message}",
        )
    if found:
        return IdentityState(ok=True, identity=identity)
    return IdentityState(
        ok=False,
        identity=identity,
        problem=(
            f"The backing registry at {url} is not the one the index describes: it lacks "
            f"{REPOSITORY}:{identity}. This node does not sync, apply notifications or run "
            "promotions. Point PROMOTER_REGISTRY_URL at the shared registry (or give every "
            "registry replica the same storage)."
        ),
    )


def _claim(url: str, *, force: bool = False) -> IdentityState:
    """Give an index without identity this registry's: tag it there, then record it."""
    try:
        client = bundled_client()
        if not force and not _registry_matches_index(client):
            problem = (
                f"The index lists images in bundled registries, but the backing registry at "
                f"{url} has none of their repositories and no identity; it is not the "
                "registry the index describes. Nothing is synced or deleted. If it really is "
                "(its storage was emptied on purpose), run `manage.py registry_identity "
                "--claim`."
            )
            log.error("%s", problem)
            return IdentityState(ok=False, problem=problem)
        identity = uuid.uuid4().hex
        _tag_marker(client, identity)
    except RegistryError as exc:
        return IdentityState(
            ok=False, problem=f"The backing registry at {url} could not be reached: {exc.message}"
        )
    with transaction.atomic():
        row, created = Coordination.objects.get_or_create(
            name=ROW, defaults={"value": identity, "updated_at": timezone.now()}
        )
        if not created and not row.value:
            Coordination.objects.filter(name=ROW, value="").update(
                value=identity, updated_at=timezone.now()
            )
            row.refresh_from_db()
    if row.value == identity:
        log.info("the index now describes the registry at %s (identity %s)", url, identity)
        return IdentityState(ok=True, identity=identity)
    # Another node claimed at the same moment: ours must carry its tag too (shared storage).
    return _check(row.value, url)


def registry_identity_claim() -> IdentityState:
    """Make this node's registry the one the index describes (an operator's decision)."""
    with transaction.atomic():
        Coordination.objects.filter(name=ROW).delete()
    with _cache_lock:
        _cache.clear()
    from django.conf import settings

    return _claim(settings.PROMOTER_REGISTRY_URL, force=True)


def _registry_matches_index(client) -> bool:
    """True when the index has no bundled images, or this registry has one of their repos."""
    indexed = set()
    for registry in Registry.objects.filter(endpoint=""):
        names = Tag.objects.filter(repository__registry=registry).values_list(
            "repository__name", flat=True
        )
        indexed.update(registry.backing_path(name) for name in names.distinct())
    if not indexed:
        return True
    return any(path in indexed for path in client.catalog())


def _tag_marker(client, identity: str) -> None:
    digest = "sha256:" + hashlib.sha256(EMPTY_CONFIG).hexdigest()
    if client.blob_size(REPOSITORY, digest) is None:
        client.upload_blob(REPOSITORY, digest, [EMPTY_CONFIG], size=len(EMPTY_CONFIG))
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": digest,
            "size": len(EMPTY_CONFIG),
        },
        "layers": [],
        "annotations": {"dev.promoter.identity": identity},
    }
    client.put_manifest(
        REPOSITORY, identity, json.dumps(manifest, sort_keys=True).encode(), OCI_MANIFEST
    )
