"""Helpers of the benchmarks (run by hand): a throwaway PostgreSQL, the web server, numbers."""

from __future__ import annotations

import datetime as dt
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise SystemExit(f"PostgreSQL's {name} was not found: apt-get install postgresql")


def _as_postgres(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class Postgres:
    """A throwaway PostgreSQL server on a free loopback port (stopped by stop())."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="promoter-bench-pg-"))
        self.datadir = self.root / "data"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o755)
        self.port = free_port()
        initdb = [_pg_bin("initdb"), "-D", str(self.datadir), "-U", "promoter", "-A", "trust"]
        subprocess.run(
            _as_postgres([*initdb, "-E", "UTF8", "--no-sync"]),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        # Durability off: the numbers are about query shapes, not the disk of a busy VM.
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100 "
            "-c shared_buffers=256MB -c work_mem=16MB -c maintenance_work_mem=256MB"
        )
        pg_ctl = [_pg_bin("pg_ctl"), "-D", str(self.datadir), "-o", options]
        subprocess.run(
            _as_postgres([*pg_ctl, "-l", str(self.root / "log"), "-w", "-t", "60", "start"]),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self.url = f"postgres://promoter@127.0.0.1:{self.port}/postgres"

    def node_env(self, data: Path) -> dict[str, str]:
        """DATABASE_URL and the shared secrets every node needs with PostgreSQL (made once
        into `data`, as an operator would hand them to each node)."""
        from accounts.tokens import _certificate_pem, _new_private_key_pem

        data.mkdir(parents=True, exist_ok=True)
        key, cert = data / "token.key", data / "token.crt"
        if not key.exists():
            pem = _new_private_key_pem()
            key.write_bytes(pem)
            cert.write_bytes(_certificate_pem(pem))
        env = {"DATABASE_URL": self.url, "PROMOTER_TOKEN_KEY": str(key)}
        env["PROMOTER_TOKEN_CERT"] = str(cert)
        for name, make in (
            ("PROMOTER_SECRET_KEY", lambda: secrets.token_urlsafe(48)),
            ("PROMOTER_NOTIFY_SECRET", lambda: secrets.token_urlsafe(32)),
            ("PROMOTER_REGISTRY_HTTP_SECRET", lambda: secrets.token_hex(32)),
            ("PROMOTER_CREDENTIALS_KEY", lambda: secrets.token_urlsafe(48)),
        ):
            stored = data / name.lower()
            if not stored.exists():
                stored.write_text(make())
            env[name] = stored.read_text()
        return env

    def version(self) -> str:
        out = subprocess.run(
            [_pg_bin("postgres"), "--version"], capture_output=True, text=True, check=False
        )
        parts = out.stdout.split()
        return parts[2] if len(parts) > 2 else "?"

    def stop(self) -> None:
        subprocess.run(
            _as_postgres([_pg_bin("pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop"]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        shutil.rmtree(self.root, ignore_errors=True)


class Web:
    """The web process as production runs it (gunicorn, 2 workers × 4 threads)."""

    def __init__(self, env: dict, log: Path, workers: int = 2) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "promoter.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(workers),
                "--threads",
                "4",
                "--timeout",
                "120",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_up(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the web server exited; see {self.log.name}")
            try:
                requests.get(self.url + "/accounts/login/", timeout=2)
                return
            except requests.RequestException:
                time.sleep(0.2)
        raise SystemExit("the web server did not come up")

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.log.close()


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of `values`."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def machine() -> str:
    """One line naming the machine, for the README's tables."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = os.getloadavg()[0]
    return (
        f"{os.cpu_count()} vCPU {cpu}, {mem:.0f} GiB, {platform.platform(terse=True)}, "
        f"Python {platform.python_version()}; load average {load:.1f} at the start; "
        f"{dt.date.today().isoformat()}"
    )


def readme_section(title: str, body: str) -> None:
    """Replace (or append) the `## title` section of bench/README.md with `body`."""
    readme = ROOT / "bench" / "README.md"
    text = readme.read_text()
    head = f"## {title}\n"
    block = head + "\n" + body.strip() + "\n"
    if head in text:
        start = text.index(head)
        nxt = text.find("\n## ", start + len(head))
        text = text[:start] + block + (text[nxt:] if nxt != -1 else "")
    else:
        text = text.rstrip() + "\n\n" + block
    readme.write_text(text)


def signed_in(url: str, username: str, password: str):
    """A session signed in through the login page, as a person's browser is: pages take no
    Basic auth (only the API does), and a page asked with it redirects to sign in."""
    import requests

    session = requests.Session()
    session.get(url + "/accounts/login/", timeout=60)
    answer = session.post(
        url + "/accounts/login/",
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        timeout=60,
    )
    if "sessionid" not in session.cookies:
        raise SystemExit(f"{username} could not sign in: {answer.status_code}")
    return session
