"""A many-machines Promoter on one host: the scale-out test's and bench's topology.

One PostgreSQL database (on a server the caller gives), moto's S3 server on loopback, two
`docker-registry` processes sharing one bucket and one http.secret, web nodes (gunicorn
with deploy/gunicorn.conf.py) and worker nodes (`manage.py worker`) as separate processes,
each with its own data dir and the shared secrets. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg
import requests

from registries.bundled import registry_config
from tests.support.images import OCI_MANIFEST, push_image
from tests.support.net import free_port

ROOT = Path(__file__).resolve().parent.parent.parent
ADMIN_PASSWORD = "scale-out-admin-password"
BUCKET = "promoter-scaleout"
START_TIMEOUT = 60.0


@dataclass
class Proc:
    """A subprocess in its own process group, logging to a file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen | None = None

    def start(self) -> Proc:
        """Start it (the log is appended to)."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def alive(self) -> bool:
        """True while the process runs."""
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the process group, as when a machine or container dies."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds; safe to call twice."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        except ProcessLookupError:
            pass

    def log_tail(self, lines: int = 30) -> str:
        """The end of the log, for assertion messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return f"--- {self.name} ---\n" + "\n".join(text.splitlines()[-lines:])


def wait_until(predicate, *, timeout: float, what: str, interval: float = 0.2):
    """Poll `predicate` until truthy (bounded); raise naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout:.0f}s")
        time.sleep(interval)


def _answers(url: str, ok=(200,)) -> bool:
    try:
        return requests.get(url, timeout=2).status_code in ok
    except requests.RequestException:
        return False


@dataclass
class Node:
    """A web or worker node: one process and the environment it was started with."""

    name: str
    proc: Proc
    env: dict[str, str]
    url: str = ""  # web nodes
    registry_url: str = ""


@dataclass
class Topology:
    """Start with `start()`, stop with `stop()`; see the module docstring."""

    root: Path
    server_url: str  # postgres://user@host:port/db of a server where a database may be made
    webs: int = 2
    workers: int = 2
    web_processes: int = 2
    web_threads: int = 4
    stale_seconds: float = 6.0
    sync_interval: int = 30
    database: str = field(default_factory=lambda: f"scaleout_{uuid.uuid4().hex[:10]}")
    procs: list[Proc] = field(default_factory=list)
    web_nodes: list[Node] = field(default_factory=list)
    worker_nodes: list[Node] = field(default_factory=list)
    registries: list[Proc] = field(default_factory=list)
    registry_urls: list[str] = field(default_factory=list)
    api_key: str = ""

    # --- the parts -------------------------------------------------------------------
    @property
    def database_url(self) -> str:
        """The database every node shares."""
        parsed = urlparse(self.server_url)
        return urlunparse(parsed._replace(path=f"/{self.database}"))

    def _create_database(self) -> None:
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')

    def _drop_database(self) -> None:
        try:
            with psycopg.connect(self.server_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        except psycopg.Error:
            pass  # the server is going away with the session anyway

    def _shared_secrets(self) -> dict[str, str]:
        from accounts.tokens import _certificate_pem, _new_private_key_pem

        shared = self.root / "shared"
        shared.mkdir(parents=True, exist_ok=True)
        key = _new_private_key_pem()
        (shared / "token.key").write_bytes(key)
        (shared / "token.crt").write_bytes(_certificate_pem(key))
        return {
            "PROMOTER_SECRET_KEY": secrets.token_urlsafe(48),
            "PROMOTER_NOTIFY_SECRET": secrets.token_urlsafe(32),
            "PROMOTER_CREDENTIALS_KEY": secrets.token_urlsafe(48),
            "PROMOTER_REGISTRY_HTTP_SECRET": secrets.token_hex(32),
            "PROMOTER_TOKEN_KEY": str(shared / "token.key"),
            "PROMOTER_TOKEN_CERT": str(shared / "token.crt"),
        }

    def _proc(self, name: str, argv: list[str], env: dict[str, str]) -> Proc:
        proc = Proc(name, argv, env, self.root / f"{name}.log")
        self.procs.append(proc)
        return proc.start()

    def node_env(self, name: str, *, registry_url: str, public_url: str) -> dict[str, str]:
        """What a node of this deployment is started with (its own data dir)."""
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("PROMOTER_") and k not in {"DATABASE_URL", "AWS_CA_BUNDLE"}
        }
        data = self.root / f"data-{name}"
        data.mkdir(parents=True, exist_ok=True)
        return {
            **base,
            **self.shared,
            "DATABASE_URL": self.database_url,
            "PROMOTER_DATA_DIR": str(data),
            "PROMOTER_REGISTRY_URL": registry_url,
            "PROMOTER_REGISTRY_HOST": registry_url.split("://", 1)[1],
            "PROMOTER_PUBLIC_URL": public_url,
            "PROMOTER_TASKS_BACKEND": "django_tasks_db.DatabaseBackend",
            "PROMOTER_STALE_SECONDS": str(self.stale_seconds),
            "PROMOTER_SYNC_INTERVAL": str(int(self.sync_interval)),
            "PROMOTER_WEB_WORKERS": str(self.web_processes),
            "PROMOTER_WEB_THREADS": str(self.web_threads),
            "PROMOTER_LOG_LEVEL": "WARNING",
            "PROMOTER_ADMIN_PASSWORD": ADMIN_PASSWORD,
        }

    def start_moto(self) -> str:
        """moto's S3 server on loopback with one bucket; returns its URL."""
        port = free_port()
        moto = Path(sys.executable).with_name("moto_server")
        self._proc("moto", [str(moto), "-H", "127.0.0.1", "-p", str(port)], dict(os.environ))
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(url + "/", ok=(200, 404)), timeout=30, what="moto answers")
        requests.put(f"{url}/{BUCKET}", timeout=10).raise_for_status()
        return url

    def start_s3_registry(self, name: str, *, s3_url: str, web_url: str) -> str:
        """A docker-registry on the shared bucket, token auth and notifications to `web_url`."""
        port = free_port()
        config = registry_config(
            port=port,
            storage_dir=self.root / "unused",
            notify_url=f"{web_url}/registry/notifications",
            notify_secret=self.shared["PROMOTER_NOTIFY_SECRET"],
            token_realm=f"{web_url}/auth/token",
            token_service="promoter-registry",
            token_issuer="promoter",
            token_rootcertbundle=self.shared["PROMOTER_TOKEN_CERT"],
            http_secret=self.shared["PROMOTER_REGISTRY_HTTP_SECRET"],
        )
        config["storage"].pop("filesystem")
        config["storage"]["s3"] = {
            "accesskey": "scaleout",
            "secretkey": "scaleout",
            "region": "us-east-1",
            "regionendpoint": s3_url,
            "bucket": BUCKET,
            "secure": False,
            "v4auth": True,
            "forcepathstyle": True,
        }
        # Every replica serves blobs itself (clients need not reach the S3 endpoint).
        config["storage"]["redirect"] = {"disable": True}
        path = self.root / f"{name}.json"
        path.write_text(json.dumps(config))
        # distribution 2.8 panics at start on AWS_CA_BUNDLE with S3 (LoadCustomCABundleError).
        env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
        proc = self._proc(name, ["docker-registry", "serve", str(path)], env)
        self.registries.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: proc.alive and _answers(url + "/v2/", ok=(200, 401)) or not proc.alive,
            timeout=START_TIMEOUT,
            what=f"{name} answers",
        )
        assert proc.alive, proc.log_tail()
        return url

    def manage(self, env: dict[str, str], *args: str, timeout: float = 300) -> str:
        """Run a management command as a node would; returns its output (raises on failure)."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout + result.stderr

    def start_web(self, name: str, env: dict[str, str], port: int) -> Node:
        """gunicorn with the image's config (deploy/gunicorn.conf.py) on `port`."""
        env = {**env, "PROMOTER_BIND": f"127.0.0.1:{port}"}
        proc = self._proc(
            name,
            [sys.executable, "-m", "gunicorn", "--config", "deploy/gunicorn.conf.py"],
            env,
        )
        return Node(name, proc, env, url=f"http://127.0.0.1:{port}")

    def start_worker(self, name: str, env: dict[str, str]) -> Node:
        """`manage.py worker` (django-tasks-db) with its periodic duties."""
        argv = [
            sys.executable,
            "manage.py",
            "worker",
            "--queue-name",
            "*",
            "--interval",
            "0.5",
            "--no-startup-delay",
            "--worker-id",
            name,
        ]
        return Node(name, self._proc(name, argv, env), env)

    # --- the whole --------------------------------------------------------------------
    def start(self) -> Topology:
        """Database, S3, two registries, the webs and the workers; ready when this returns."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.shared = self._shared_secrets()
        self._create_database()
        s3 = self.start_moto()
        web_ports = [free_port() for _ in range(self.webs)]
        web_urls = [f"http://127.0.0.1:{p}" for p in web_ports]
        # Registry i notifies web i and sends its clients to web i for tokens.
        for i in range(2):
            self.registry_urls.append(
                self.start_s3_registry(
                    f"registry-{'ab'[i]}", s3_url=s3, web_url=web_urls[i % self.webs]
                )
            )
        first = self.node_env("init", registry_url=self.registry_urls[0], public_url=web_urls[0])
        self.manage(first, "migrate", "--noinput", "-v", "0")  # once, for every node
        self.manage(first, "bootstrap")
        self.api_key = self.manage(first, "shell", "-c", API_KEY_SCRIPT).strip().splitlines()[-1]
        for i, port in enumerate(web_ports):
            registry = self.registry_urls[i % 2]
            env = self.node_env(f"web-{i}", registry_url=registry, public_url=web_urls[i])
            node = self.start_web(f"web-{i}", env, port)
            node.registry_url = registry
            self.web_nodes.append(node)
        for _ in range(self.workers):
            self.add_worker()
        for node in self.web_nodes:
            wait_until(
                lambda node=node: _answers(node.url + "/readyz") or not node.proc.alive,
                timeout=START_TIMEOUT,
                what=f"{node.name} is ready",
            )
            assert node.proc.alive, node.proc.log_tail()
        return self

    def add_worker(self) -> Node:
        """One more worker node (on registry A or B in turn)."""
        i = len(self.worker_nodes)
        registry = self.registry_urls[i % 2]
        env = self.node_env(f"worker-{i}", registry_url=registry, public_url=self.web_nodes[0].url)
        node = self.start_worker(f"worker-{i}", env)
        node.registry_url = registry
        self.worker_nodes.append(node)
        return node

    def stop(self) -> None:
        """Stop every process this topology started, then drop its database."""
        for proc in reversed(self.procs):
            proc.stop()
        self._drop_database()

    def logs(self) -> str:
        """The tails of every log, for a failing assertion."""
        return "\n".join(proc.log_tail() for proc in self.procs)

    # --- clients ----------------------------------------------------------------------
    def registry_token(self, web: Node, scope: str) -> str:
        """A registry token from `web`'s token service, for the API key's user."""
        answer = requests.get(
            f"{web.url}/auth/token",
            params={"service": "promoter-registry", "scope": scope},
            auth=("api", self.api_key),
            timeout=30,
        )
        answer.raise_for_status()
        return answer.json()["token"]

    def digest_at(self, registry_url: str, web: Node, repository: str, tag: str) -> str | None:
        """The digest `repository:tag` has at a registry (None when it has no such tag)."""
        token = self.registry_token(web, f"repository:{repository}:pull")
        answer = requests.head(
            f"{registry_url}/v2/{repository}/manifests/{tag}",
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": ", ".join(
                    [
                        "application/vnd.oci.image.manifest.v1+json",
                        "application/vnd.oci.image.index.v1+json",
                        "application/vnd.docker.distribution.manifest.v2+json",
                        "application/vnd.docker.distribution.manifest.list.v2+json",
                    ]
                ),
            },
            timeout=30,
        )
        if answer.status_code == 404:
            return None
        answer.raise_for_status()
        return answer.headers["Docker-Content-Digest"]

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        """Read the shared database directly (what every node sees)."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()


# A personal API key of Admin: scripts authenticate with it (hashed with SHA-256, so the
# clients do not spend PBKDF2 time on every node the way Basic user:password would).
API_KEY_SCRIPT = """
from django.contrib.auth import get_user_model
from accounts.permissions import Principal
from accounts.services import api_key_create
admin = get_user_model().objects.get(username="Admin")
_, raw = api_key_create(
    name="scale-out", kind="personal", actor=Principal(user=admin), user=admin
)
print(raw)
"""


def push_tags(
    topology: Topology, tmp_path: Path, *, images: int, tags_per_image: int, prefix: str = "scale"
) -> dict[tuple[str, str], str]:
    """Push `images` images through registry A with skopeo, each under `tags_per_image` tags."""
    registry_a = topology.registry_urls[0]
    hostport = registry_a.split("://", 1)[1]
    web_a = topology.web_nodes[0]
    pushed = {}
    for i in range(images):
        repository = f"{prefix}/app-{i}"
        info = push_image(
            hostport,
            f"devdocker/{repository}",
            "1",
            layers=2,
            layer_size=2048,
            creds=f"api:{topology.api_key}",
            tmp_path=tmp_path,
        )
        pushed[(repository, "1")] = info.digest
        # The other tags: the same manifest put under more names (as `docker tag; push`).
        token = topology.registry_token(web_a, f"repository:devdocker/{repository}:pull,push")
        for tag in range(2, tags_per_image + 1):
            answer = requests.put(
                f"{registry_a}/v2/devdocker/{repository}/manifests/{tag}",
                data=info.body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": OCI_MANIFEST},
                timeout=30,
            )
            assert answer.status_code == 201, answer.text
            pushed[(repository, str(tag))] = info.digest
    return pushed


def promote(web: Node, api_key: str, repository: str, tag: str, *, timeout: float) -> dict:
    """A synchronous promotion through `web`'s API; follows a 202 to the end (bounded)."""
    answer = requests.post(
        f"{web.url}/api/promotions/promote",
        data={
            "name": repository,
            "version": tag,
            "fromFeed": "devdocker",
            "toFeed": "rcdocker",
            "comments": "scale-out",
        },
        headers={"X-ApiKey": api_key},
        timeout=timeout,
    )
    body = answer.json()
    body["http_status"] = answer.status_code
    if answer.status_code != 202:
        return body
    # Beyond the web node's bound on waiting calls (or after its wait): poll the status URL.
    location = web.url + answer.headers["Location"]
    deadline = time.monotonic() + timeout
    pause = 0.5
    while body.get("status") not in {"succeeded", "failed"} and time.monotonic() < deadline:
        time.sleep(pause)
        pause = min(pause * 1.5, 2.0)  # as a polite client polls
        body = requests.get(location, headers={"X-ApiKey": api_key}, timeout=30).json()
    body["http_status"] = 202
    return body


# Samples GET /healthz every 50 ms in its own process (so the clients' threads in the test
# process do not slow the measurement) until the stop file appears; bounded in count.
HEALTH_SAMPLER = """
import json, sys, time, pathlib, requests
url, stop, out = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
latencies, failures = [], []
for _ in range(20000):
    if stop.exists():
        break
    started = time.monotonic()
    try:
        status = requests.get(url + "/healthz", timeout=10).status_code
        if status != 200:
            failures.append(f"status {status}")
    except requests.RequestException as exc:
        failures.append(str(exc))
    latencies.append(time.monotonic() - started)
    time.sleep(0.05)
out.write_text(json.dumps({"latencies": latencies, "failures": failures}))
"""


class HealthSampler:
    """The health sampler process for one web node: start(), then finish() -> results."""

    def __init__(self, url: str, workdir: Path) -> None:
        self.url = url
        self.stop_file = workdir / f"sampler-{uuid.uuid4().hex[:6]}.stop"
        self.out_file = self.stop_file.with_suffix(".json")
        self.process: subprocess.Popen | None = None

    def start(self) -> HealthSampler:
        """Begin sampling."""
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                HEALTH_SAMPLER,
                self.url,
                str(self.stop_file),
                str(self.out_file),
            ]
        )
        return self

    def finish(self) -> tuple[list[float], list[str]]:
        """Stop sampling; (latencies in seconds, failures)."""
        self.stop_file.touch()
        assert self.process is not None
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        result = json.loads(self.out_file.read_text())
        return result["latencies"], result["failures"]
