"""Starts a throwaway PostgreSQL for the suite before Django reads its settings.

Loaded with `-p tests.pgplugin` (see pyproject) so it runs before pytest-django
configures Django. Skipped when DATABASE_URL is already given.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

_state: dict = {}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise pytest.UsageError(
        f"PostgreSQL's {name} was not found: apt-get install postgresql (or set DATABASE_URL)."
    )


def _as_postgres(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root; run them as the unprivileged postgres user.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    # Tests never touch a developer's .run/ data.
    os.environ["PROMOTER_DATA_DIR"] = tempfile.mkdtemp(prefix="promoter-data-")
    # With PostgreSQL the credentials key must be given (never generated per node).
    os.environ.setdefault("PROMOTER_CREDENTIALS_KEY", secrets.token_urlsafe(48))
    # Promotions run in-process unless a test asks for the real worker (real_worker fixture).
    os.environ.setdefault(
        "PROMOTER_TASKS_BACKEND", "django.tasks.backends.immediate.ImmediateBackend"
    )
    if os.environ.get("DATABASE_URL"):
        return
    root = Path(tempfile.mkdtemp(prefix="promoter-pg-"))
    datadir = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    root.chmod(0o755)
    port = _free_port()
    subprocess.run(
        _as_postgres(
            [
                _pg_bin("initdb"),
                "-D",
                str(datadir),
                "-U",
                "promoter",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    subprocess.run(
        _as_postgres(
            [
                _pg_bin("pg_ctl"),
                "-D",
                str(datadir),
                "-o",
                options,
                "-l",
                str(root / "log"),
                "-w",
                "-t",
                "30",
                "start",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    _state.update(root=root, datadir=datadir, options=options)
    os.environ["DATABASE_URL"] = f"postgres://promoter@127.0.0.1:{port}/postgres"
    os.environ["PROMOTER_TEST_PG_DATADIR"] = str(datadir)


def pg_restart(down_for: float = 0.0, during: Callable[[], None] | None = None) -> None:
    """Restart the throwaway server (used by the database-restart reliability test).

    With `down_for`, the server stays stopped that many seconds (and `during()` runs while
    it is down), so clients really meet a refused connection rather than a quick blip.
    """
    datadir = _state["datadir"]
    if not down_for and during is None:
        subprocess.run(
            _as_postgres([_pg_bin("pg_ctl"), "-D", str(datadir), "-m", "fast", "-w", "restart"]),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return
    subprocess.run(
        _as_postgres([_pg_bin("pg_ctl"), "-D", str(datadir), "-m", "fast", "-w", "stop"]),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        if during is not None:
            during()
        time.sleep(down_for)
    finally:
        subprocess.run(
            _as_postgres(
                [
                    _pg_bin("pg_ctl"),
                    "-D",
                    str(datadir),
                    "-o",
                    _state["options"],
                    "-l",
                    str(_state["root"] / "log"),
                    "-w",
                    "-t",
                    "30",
                    "start",
                ]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )


def pytest_unconfigure(config):
    datadir = _state.get("datadir")
    if datadir is None:
        return
    subprocess.run(
        _as_postgres([_pg_bin("pg_ctl"), "-D", str(datadir), "-m", "immediate", "-w", "stop"]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (datadir / "postmaster.pid").exists():
        time.sleep(0.1)
    shutil.rmtree(_state["root"], ignore_errors=True)
    _state.clear()
