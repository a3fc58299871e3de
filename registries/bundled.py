"""The bundled backing registry (CNCF distribution): its config and its process.

`registry_config` and `BackingRegistry` take plain values (benchmarks and fixtures use them
without settings); `write_bundled_registry_config` fills them in from this portal's settings.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

DEFAULT_BINARY = "docker-registry"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


def registry_config(
    *,
    port: int,
    storage_dir: str | os.PathLike[str],
    host: str = "127.0.0.1",
    notify_url: str | None = None,
    notify_secret: str | None = None,
    token_realm: str | None = None,
    token_service: str | None = None,
    token_issuer: str | None = None,
    token_rootcertbundle: str | os.PathLike[str] | None = None,
    http_secret: str | None = None,
) -> dict[str, Any]:
    """Distribution's configuration as a dict (serialize as JSON; JSON is valid YAML)."""
    config: dict[str, Any] = {
        "version": "0.1",
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(storage_dir)},
            # Promoter deletes by digest (rollback, cleanup); distribution refuses otherwise.
            "delete": {"enabled": True},
            # No blob descriptor cache: with deletes it can answer for blobs that are gone.
        },
        "http": {
            "addr": f"{host}:{port}",
            # Signs upload session state. Replicas behind one load balancer must share it
            # (an upload begun on one continues on another); random only for a throwaway.
            "secret": http_secret or secrets.token_hex(32),
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        },
        "health": {"storagedriver": {"enabled": False}},
        # Foreign (Windows) and non-distributable layers name the URLs they are fetched
        # from; without an allow list distribution 2.8 refuses such manifests with a 500.
        "validation": {"manifests": {"urls": {"allow": ["^https?://"]}}},
    }
    if notify_url:
        endpoint: dict[str, Any] = {
            "name": "promoter",
            "url": notify_url,
            "headers": {},
            "timeout": "1s",
            "threshold": 3,
            "backoff": "1s",
            # Blob events are noise: Promoter tracks manifests and tags. So are pulls (every
            # manifest GET and HEAD, Promoter's own included): only pushes and deletes change
            # the index.
            "ignoredmediatypes": ["application/octet-stream"],
            "ignore": {"actions": ["pull"]},
        }
        if notify_secret:
            endpoint["headers"]["Authorization"] = [f"Bearer {notify_secret}"]
        config["notifications"] = {"endpoints": [endpoint]}
    if token_realm:
        config["auth"] = {
            "token": {
                "realm": token_realm,
                "service": token_service or "promoter",
                "issuer": token_issuer or "promoter",
                "rootcertbundle": str(token_rootcertbundle or ""),
            }
        }
    return config


def write_registry_config(path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Write `registry_config(**kwargs)` to `path` as JSON and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    Path(kwargs["storage_dir"]).mkdir(parents=True, exist_ok=True)
    # The config holds the http secret; keep it private to the owner.
    target.write_text(json.dumps(registry_config(**kwargs), indent=2))
    target.chmod(0o600)
    return target


class BackingRegistry:
    """A `docker-registry serve CONFIG` subprocess in its own process group."""

    def __init__(
        self,
        config_path: str | os.PathLike[str],
        *,
        port: int,
        host: str = "127.0.0.1",
        binary: str | None = None,
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.config_path = Path(config_path)
        self.host = host
        self.port = port
        self.binary = binary or shutil.which(DEFAULT_BINARY) or f"/usr/bin/{DEFAULT_BINARY}"
        self.log_path = Path(log_path) if log_path else self.config_path.with_suffix(".log")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:5000."""
        return f"http://{self.host}:{self.port}"

    @property
    def hostport(self) -> str:
        """host:port, as docker and skopeo references want it."""
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """True while the subprocess is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = START_TIMEOUT) -> BackingRegistry:
        """Start the registry and wait until /v2/ answers; raise RuntimeError otherwise."""
        if self.running:
            return self
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [self.binary, "serve", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own process group: stop() signals the registry and nothing else, and a
                # Ctrl-C in the terminal of `make run` is handled by the parent.
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"docker-registry exited with status {self._process.returncode} at start. "
                    f"Its log ({self.log_path}) ends with:\n{self._log_tail()}"
                )
            try:
                status = requests.get(f"{self.url}/v2/", timeout=0.5).status_code
            except requests.RequestException:
                status = None
            # 401 is ready too: the registry is up and wants a token.
            if status in (200, 401):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"docker-registry did not answer at {self.url}/v2/ within {timeout:.0f}s. "
            f"Its log ({self.log_path}) ends with:\n{self._log_tail()}"
        )

    def stop(self) -> None:
        """SIGTERM the registry, SIGKILL it after 5 s; safe to call twice."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass

    def __enter__(self) -> BackingRegistry:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def write_bundled_registry_config(
    path: Path, *, port: int, storage_dir: Path, notify_base: str, realm_base: str
) -> Path:
    """Write the config `make run` and the tests give the bundled docker-registry."""
    from django.conf import settings

    from accounts.tokens import ensure_signing_key
    from promoter.shared_secrets import missing_secret

    _, cert_path = ensure_signing_key()
    if not settings.PROMOTER_REGISTRY_HTTP_SECRET:
        raise missing_secret("PROMOTER_REGISTRY_HTTP_SECRET", "the registry's http.secret")
    return write_registry_config(
        path,
        port=port,
        storage_dir=str(storage_dir),
        notify_url=f"{notify_base}/registry/notifications",
        notify_secret=settings.PROMOTER_NOTIFY_SECRET,
        token_realm=f"{realm_base}/auth/token",
        token_service=settings.PROMOTER_TOKEN_SERVICE,
        token_issuer=settings.PROMOTER_TOKEN_ISSUER,
        token_rootcertbundle=str(cert_path),
        http_secret=settings.PROMOTER_REGISTRY_HTTP_SECRET,
    )
