"""Helpers for the attacks of issue 11: a hostile registry as a source, memory sampling,
and where the bundled registry keeps its files."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.support.hostile_registry import (
    OCI_LAYER,
    HostileRegistry,
    image_manifest,
)


@pytest.fixture
def hostile():
    """A hostile registry on loopback, stopped after the test."""
    with HostileRegistry() as registry:
        yield registry


def small_image(hostile: HostileRegistry, repo: str, tag: str = "1.0", *, salt: str = "") -> str:
    """A tiny real image (config + one layer) in the hostile registry; returns its digest."""
    config = hostile.add_small_blob(json.dumps({"os": "linux", "salt": salt or repo}).encode())
    layer = hostile.add_small_blob(f"layer of {repo} {salt}".encode())
    layer["mediaType"] = OCI_LAYER
    return hostile.add_manifest(
        repo, tag, image_manifest(config, [layer]), "application/vnd.oci.image.manifest.v1+json"
    )


def external(name: str, endpoint: str, **fields):
    """An external registry (created directly: some tests need values the service refuses)."""
    from registries.models import Registry

    return Registry.objects.create(name=name, endpoint=endpoint, **fields)


def admin():
    from django.contrib.auth import get_user_model

    from accounts.permissions import Principal

    return Principal(user=get_user_model().objects.get(username="Admin"))


def repo_name() -> str:
    return f"team/sec-{uuid.uuid4().hex[:10]}"


def rss_bytes() -> int:
    """Resident memory of this process."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """Samples this process's RSS while the block runs; `growth` is peak minus start."""

    def __enter__(self) -> PeakRss:
        self.start = self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.peak = max(self.peak, rss_bytes())

    @property
    def growth(self) -> int:
        return self.peak - self.start


def storage_root(portal) -> Path:
    """The bundled registry's storage directory (from its config file)."""
    config = json.loads(Path(portal.registry.config_path).read_text())
    return Path(config["storage"]["filesystem"]["rootdirectory"])


def uploads_of(portal, path: str) -> list[Path]:
    """Files under the repository's _uploads directory in the bundled registry."""
    uploads = storage_root(portal) / "docker/registry/v2/repositories" / path / "_uploads"
    return [p for p in uploads.rglob("*") if p.is_file()] if uploads.exists() else []


def settle(predicate, seconds: float = 10.0, interval: float = 0.1) -> bool:
    """Wait (bounded) for `predicate` to hold; its final value."""
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(interval)
    return predicate()
