"""A throwaway PostgreSQL and data dir for each process that runs tests.

Loaded with `-p tests.pgplugin` (see pyproject) so it runs before pytest-django reads the
settings. A serial run starts one server. Under pytest-xdist the controller runs no test and
starts none; every worker starts its own, so the test that stops PostgreSQL for seconds
(tests/reliability/test_faults.py) only disturbs its own worker. Each process also gets its
own PROMOTER_DATA_DIR (secrets, the token signing key), so workers never share files.

Everything lives under one directory per run, PROMOTER_TEST_ROOT, that the first process
makes and the workers inherit: `<root>/<worker id or "main">/{data,pg}`. Each process stops
its server when it ends; the process that made the root stops whatever is left (a worker
that crashed) and removes the root. Should a process be killed before it can (`timeout`'s
SIGTERM, a SIGKILL), a watchdog shell it started does the same once it is gone. The
`postgres_server` fixture returns a handle built from the environment variables set here,
so any test process can stop and start its server.

No server is started when DATABASE_URL is given.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT_ENV = "PROMOTER_TEST_ROOT"
PG_ENV = ("PROMOTER_TEST_PG_DATADIR", "PROMOTER_TEST_PG_PORT", "PROMOTER_TEST_PG_CTL")

# What this process set up: its own directory, its server, and whether it made the root.
_mine: dict = {}


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


@dataclass(frozen=True)
class PostgresServer:
    """A throwaway PostgreSQL this test process started: stop it, start it, restart it."""

    datadir: Path
    port: int
    pg_ctl: str

    @classmethod
    def from_env(cls) -> PostgresServer | None:
        """The server of this process, from the variables the plugin set (None: not ours)."""
        datadir, port, pg_ctl = (os.environ.get(name) for name in PG_ENV)
        if not (datadir and port and pg_ctl):
            return None
        return cls(Path(datadir), int(port), pg_ctl)

    @property
    def log(self) -> Path:
        return self.datadir.parent / "log"

    def _ctl(self, *args: str, check: bool = True) -> None:
        subprocess.run(
            _as_postgres([self.pg_ctl, "-D", str(self.datadir), *args]),
            check=check,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=60,
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        # The socket goes next to the data dir: never /var/run/postgresql, never shared.
        options = (
            f"-p {self.port} -k {self.datadir.parent} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._ctl("-o", options, "-l", str(self.log), "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast", *, check: bool = True) -> None:
        """Stop the server (`fast`: roll back and disconnect clients; `immediate`: no cleanup)."""
        self._ctl("-m", mode, "-w", "-t", "30", "stop", check=check)

    @property
    def running(self) -> bool:
        return (self.datadir / "postmaster.pid").exists()

    def restart(self, down_for: float = 0.0, during: Callable[[], None] | None = None) -> None:
        """Stop and start again; with `down_for` the server stays down that many seconds.

        `during()` runs while it is down, so clients really meet a refused connection
        rather than a quick blip.
        """
        self.stop()
        try:
            if during is not None:
                during()
            time.sleep(down_for)
        finally:
            self.start()


def _worker_id() -> str | None:
    return os.environ.get("PYTEST_XDIST_WORKER")


def _controller_distributes(early_config: pytest.Config) -> bool:
    """True in the controller of an xdist run: it collects and runs no test itself."""
    if _worker_id():
        return False
    args = early_config.known_args_namespace
    # Mirrors pytest-xdist: `-n N` (or auto/logical) distributes, `-n 0` and --pdb do not.
    return bool(getattr(args, "numprocesses", None)) and not getattr(args, "usepdb", False)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    if not os.environ.get(ROOT_ENV):
        root = Path(tempfile.mkdtemp(prefix="promoter-test-"))
        root.chmod(0o755)  # the postgres user must reach its data dir below
        os.environ[ROOT_ENV] = str(root)
        _mine["root"] = root
        _watch(root)
    here = Path(os.environ[ROOT_ENV]) / (_worker_id() or "main")
    here.mkdir(exist_ok=True)
    _mine["dir"] = here
    if "root" not in _mine:
        _watch(here)
    # Tests never touch a developer's .run/ data, and workers never share theirs.
    os.environ["PROMOTER_DATA_DIR"] = str(here / "data")
    (here / "data").mkdir(exist_ok=True)
    # With PostgreSQL every shared secret must be configured, as on every real node.
    _shared_secrets(here / "data")
    if _controller_distributes(early_config):
        _mine["distributing"] = True
        return
    if os.environ.get("DATABASE_URL") or early_config.pluginmanager.is_blocked("django"):
        return  # a server was given, or no test can use one (`-p no:django`)
    pgroot = here / "pg"
    pgroot.mkdir()
    if os.geteuid() == 0:
        shutil.chown(pgroot, "postgres", "postgres")
    server = PostgresServer(pgroot / "data", _free_port(), _pg_bin("pg_ctl"))
    subprocess.run(
        _as_postgres(
            [
                _pg_bin("initdb"),
                "-D",
                str(server.datadir),
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
    server.start()
    _mine["server"] = server
    os.environ["DATABASE_URL"] = f"postgres://promoter@127.0.0.1:{server.port}/postgres"
    os.environ.update(
        zip(PG_ENV, (str(server.datadir), str(server.port), server.pg_ctl), strict=True)
    )


def pytest_configure(config):
    if _mine.get("distributing") and config.getoption("dist", "no") == "no":
        # Started no server because xdist would run the tests elsewhere, and it will not.
        raise pytest.UsageError("tests.pgplugin: xdist is not distributing; run with -n 0")


def _shared_secrets(data: Path) -> None:
    """With PostgreSQL the shared secrets must be configured (as on every real node)."""

    from accounts.tokens import _certificate_pem, _new_private_key_pem

    for variable in ("PROMOTER_SECRET_KEY", "PROMOTER_NOTIFY_SECRET"):
        os.environ.setdefault(variable, secrets.token_urlsafe(48))
    os.environ.setdefault("PROMOTER_REGISTRY_HTTP_SECRET", secrets.token_hex(32))
    os.environ.setdefault("PROMOTER_CREDENTIALS_KEY", secrets.token_urlsafe(48))
    if "PROMOTER_TOKEN_KEY" not in os.environ:
        key = _new_private_key_pem()
        (data / "token.key").write_bytes(key)
        (data / "token.crt").write_bytes(_certificate_pem(key))
        os.environ["PROMOTER_TOKEN_KEY"] = str(data / "token.key")
        os.environ["PROMOTER_TOKEN_CERT"] = str(data / "token.crt")


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    """This test process's own PostgreSQL, to stop and start (skipped with DATABASE_URL)."""
    server = PostgresServer.from_env()
    if server is None:
        pytest.skip("DATABASE_URL names a server this suite did not start; it cannot restart it")
    return server


def _watch(directory: Path) -> None:
    """Once this process is gone, however it ended (SIGTERM from `timeout`, SIGKILL), stop
    every server under `directory` and remove it: a shell that polls this process's pid."""
    pg_ctl = shutil.which("pg_ctl") or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True)),
        None,
    )
    where = shlex.quote(str(directory))
    stop = ""
    if pg_ctl:
        command = " ".join(shlex.quote(a) for a in _as_postgres([pg_ctl, "-D"]))
        stop = (
            f"for d in {where}/pg/data {where}/*/pg/data; do "
            f'[ -f "$d/postmaster.pid" ] && {command} "$d" -m immediate -w stop; done; '
        )
    script = f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; {stop}rm -rf {where}"
    # Its own session: a Ctrl-C or a signal to pytest's process group does not reach it.
    _mine.setdefault("watchdogs", []).append(
        subprocess.Popen(
            ["sh", "-c", script],
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )


def _stop_and_remove(directory: Path) -> None:
    """Stop every server still running under `directory` (immediately), then remove it."""
    for pid_file in directory.glob("**/pg/data/postmaster.pid"):
        server = PostgresServer(pid_file.parent, 0, _pg_bin("pg_ctl"))
        server.stop("immediate", check=False)
        deadline = time.monotonic() + 10
        while server.running and time.monotonic() < deadline:
            time.sleep(0.1)
    shutil.rmtree(directory, ignore_errors=True)


def _clean_up() -> None:
    """Stop this process's server and remove its files (idempotent)."""
    if "server" in _mine:
        _mine.pop("server").stop("immediate", check=False)
    if "root" in _mine:
        _stop_and_remove(_mine.pop("root"))  # also what a crashed worker left behind
    elif "dir" in _mine:
        _stop_and_remove(_mine.pop("dir"))
    for watchdog in _mine.pop("watchdogs", []):  # nothing left for them to do
        watchdog.kill()
        watchdog.wait(timeout=10)


def pytest_unconfigure(config):
    _clean_up()


# pytest never unconfigures when start-up fails after the server started (a conftest that
# does not import): clean up when the interpreter exits instead.
atexit.register(_clean_up)
