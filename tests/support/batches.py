"""Helpers for bulk promotion tests: a release of images across repositories, pushed for
real; breaking one image's blob in the registry's storage; counting every table's rows."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from tests.support.images import ImageInfo, push_image
from tests.support.wait import wait_for

RELEASE_TAGS = ("4.2.0", "4.2.1", "4.2.2")


def push_release(
    hostport: str,
    *,
    creds: str,
    tmp_path: Path,
    repositories: int = 4,
    tags: tuple[str, ...] = RELEASE_TAGS,
    registry: str = "devdocker",
) -> tuple[str, dict[tuple[str, str], ImageInfo]]:
    """Push `repositories` × `tags` small images (and one 4.1.0 the pattern must leave out)
    under a fresh prefix, and wait until the index has them all; returns
    (prefix, {(repository, tag): ImageInfo})."""
    prefix = f"rel-{uuid.uuid4().hex[:8]}"
    images: dict[tuple[str, str], ImageInfo] = {}
    for n in range(repositories):
        repository = f"{prefix}/svc{n}"
        for tag in tags:
            images[(repository, tag)] = push_image(
                hostport,
                f"{registry}/{repository}",
                tag,
                layers=2,
                layer_size=2048 + 512 * n,
                creds=creds,
                tmp_path=tmp_path,
            )
    push_image(
        hostport, f"{registry}/{prefix}/svc0", "4.1.0", layers=1, creds=creds, tmp_path=tmp_path
    )
    # Every push indexed (4.1.0 too) before a test counts rows or reads the index.
    wait_indexed(registry, [*images, (f"{prefix}/svc0", "4.1.0")])
    return prefix, images


def wait_indexed(registry: str, pairs) -> None:
    """Until the registry's notifications have put every (repository, tag) in the index."""
    from registries.models import Tag

    wanted = set(pairs)

    def indexed() -> bool:
        have = set(
            Tag.objects.filter(repository__registry__name=registry).values_list(
                "repository__name", "name"
            )
        )
        return wanted <= have

    assert wait_for(indexed, timeout=30), "the pushes did not reach the index"


def storage_root(backing) -> Path:
    """The filesystem storage of a BackingRegistry (from its config file)."""
    config = json.loads(Path(backing.config_path).read_text())
    return Path(config["storage"]["filesystem"]["rootdirectory"])


def break_blob(backing, digest: str) -> tuple[Path, bytes]:
    """Remove one blob's data from the registry's storage (the repository still links it,
    so the manifest reads fine and only copying the blob fails). Returns (path, bytes) to
    put it back."""
    hexpart = digest.split(":", 1)[1]
    path = (
        storage_root(backing) / "docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart / "data"
    )
    data = path.read_bytes()
    path.unlink()
    return path, data


def row_counts() -> dict[str, int]:
    """Rows of every table the portal has (its models and the task queue's)."""
    from django.apps import apps

    return {model._meta.label: model.objects.count() for model in apps.get_models()}
