"""Start real backing registries (CNCF distribution) for tests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from registries.bundled import BackingRegistry, write_registry_config

from .net import free_port


def start_registry(tmp_dir: str | os.PathLike[str], **config_kwargs: Any) -> BackingRegistry:
    """Start a registry on a free port with storage under tmp_dir; the caller stops it.

    Without config_kwargs it needs no auth; pass token_realm=… etc. for token auth.
    """
    base = Path(tmp_dir)
    base.mkdir(parents=True, exist_ok=True)
    host = config_kwargs.pop("host", "127.0.0.1")
    config_kwargs.setdefault("storage_dir", base / "storage")
    last_error: RuntimeError | None = None
    # The free port can be taken between free_port() and the registry's bind; retry.
    for _ in range(3):
        port = free_port(host)
        config = write_registry_config(
            base / "registry.json", port=port, host=host, **config_kwargs
        )
        registry = BackingRegistry(config, port=port, host=host)
        try:
            return registry.start()
        except RuntimeError as exc:
            if "address already in use" not in str(exc):
                raise
            last_error = exc
    assert last_error is not None
    raise last_error
