"""Secrets every node must share: given by configuration, or (single node only) made once.

With PostgreSQL, several web and worker nodes share one database; a secret one of them
made up for itself (a session key, the notification secret, the token signing key) would
not match the others', so a missing one is a start-up error. Only the SQLite setup of
`make run`, one machine by construction, generates them into its data dir, and does so
atomically: processes starting together on an empty data dir all end with the one value
the first of them published (written to a temporary file, then linked into place, which
fails when the name exists).
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured


def missing_secret(variable: str, what: str) -> ImproperlyConfigured:
    """The start-up error for a shared secret that is not configured."""
    return ImproperlyConfigured(
        f"{variable} is not set ({what}). With PostgreSQL every web and worker node must "
        f"share it: give every node the same value in {variable} or a file in "
        f"{variable}_FILE. Only the SQLite single-node setup (make run) generates secrets."
    )


def publish_once(path: Path, make: Callable[[], bytes], *, mode: int = 0o600) -> bytes:
    """The content of `path`; when it does not exist, `make()` it and publish it atomically.

    Concurrent callers all return the same bytes: the first link wins, the others read it.
    Readers never see a half-written file, because the file appears complete or not at all.
    """
    try:
        return _read_complete(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(make())
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        try:
            os.link(temporary, path)  # like O_EXCL: fails when another process published
        except FileExistsError:
            pass
    finally:
        os.unlink(temporary)
    return _read_complete(path)


def _read_complete(path: Path) -> bytes:
    content = path.read_bytes()
    if not content:
        # Written by an older, non-atomic version and cut short: never use an empty secret.
        raise ImproperlyConfigured(f"{path} is empty; delete it to have it generated again.")
    return content


def shared_secret(
    *, variable: str, value: str, what: str, data_dir: Path, file_name: str, generate: bool
) -> str:
    """`value` when configured; else generated into `data_dir` when allowed; else an error."""
    if value:
        return value
    if not generate:
        raise missing_secret(variable, what)
    made = publish_once(data_dir / file_name, lambda: secrets.token_urlsafe(48).encode())
    return made.decode().strip()
