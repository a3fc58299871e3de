"""A small OCI registry on loopback that misbehaves on purpose (issue 11's attacks).

It serves manifests and blobs by the distribution API's paths, read-only, and can:
- trickle its status line and headers, one byte at a time (`trickle_headers`);
- page `tags/list` and `_catalog` with `Link: rel="next"` forever (`endless_lists`);
- serve manifests generated on demand (`add_generated_manifest`), so an index of hundreds
  of 4 MiB children costs this process nothing until asked;
- serve a blob of any size from a generator, whatever digest it claims (`add_blob`);
- answer manifest GETs with a redirect to an HTML page (`redirect_manifests`);
- demand Basic credentials and record every Authorization header (`require_basic`).

Every request is recorded (method, path, headers). Every loop is bounded and stops when
the server stops, so a test can never hang on it.

    with HostileRegistry() as hostile:
        hostile.add_manifest("team/app", "1.0", body, OCI_MANIFEST)
        Registry.objects.create(name="evil", endpoint=hostile.url)
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
PIECE = 256 * 1024

_PATH = re.compile(r"^/v2/(?P<name>.+?)/(?P<kind>manifests|blobs|tags)/(?P<ref>[^/?]+)")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Blob:
    size: int
    chunks: Callable[[], Iterator[bytes]]
    sent: int = 0  # bytes written to clients (all requests)


@dataclass
class HostileRegistry:
    trickle_headers: float | None = None  # seconds between header bytes
    endless_lists: bool = False
    redirect_manifests: bool = False
    require_basic: tuple[str, str] | None = None
    requests: list[Seen] = field(default_factory=list)
    manifests: dict[tuple[str, str], tuple[str, Callable[[], bytes]]] = field(default_factory=dict)
    blobs: dict[str, Blob] = field(default_factory=dict)
    url: str = ""

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- content ---------------------------------------------------------------------
    def add_manifest(self, repo: str, ref: str, body: bytes, media_type: str) -> str:
        """Serve `body` under a tag (and always under its digest); returns the digest."""
        digest = sha256(body)
        self.manifests[(repo, ref)] = (media_type, lambda: body)
        self.manifests[(repo, digest)] = (media_type, lambda: body)
        return digest

    def add_generated_manifest(
        self, repo: str, digest: str, media_type: str, make: Callable[[], bytes]
    ) -> None:
        """Serve `make()` (built on each request) under `digest`."""
        self.manifests[(repo, digest)] = (media_type, make)

    def add_blob(self, digest: str, size: int, chunks: Callable[[], Iterator[bytes]]) -> None:
        """Serve `size` bytes from `chunks()` as blob `digest` (true or not)."""
        self.blobs[digest] = Blob(size, chunks)

    def add_small_blob(self, data: bytes) -> dict:
        """A real blob; returns its descriptor."""
        digest = sha256(data)
        self.add_blob(digest, len(data), lambda: iter([data]))
        return {"mediaType": OCI_CONFIG, "digest": digest, "size": len(data)}

    def seen(self, method: str | None = None, pattern: str = "") -> list[Seen]:
        """Recorded requests, filtered by method and a regular expression on the path."""
        with self._lock:
            found = list(self.requests)
        return [
            r
            for r in found
            if (method is None or r.method == method) and re.search(pattern, r.path)
        ]

    # --- lifecycle -------------------------------------------------------------------
    def __enter__(self) -> HostileRegistry:
        registry = self

        class Handler(_Handler):
            hostile = registry

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()


class _Handler(http.server.BaseHTTPRequestHandler):
    hostile: HostileRegistry
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_HEAD(self) -> None:  # noqa: N802
        self._handle(head=True)

    def do_GET(self) -> None:  # noqa: N802
        self._handle(head=False)

    def do_DELETE(self) -> None:  # noqa: N802
        self._record()
        self.close_connection = True  # a body we do not read must not poison the next request
        self._answer(405, {}, b"")

    do_POST = do_PUT = do_PATCH = do_DELETE  # read-only: a source, never a target

    # --- plumbing --------------------------------------------------------------------
    def _record(self) -> None:
        with self.hostile._lock:
            self.hostile.requests.append(Seen(self.command, self.path, dict(self.headers)))

    def _answer(
        self, status: int, headers: dict[str, str], body: bytes, *, head: bool = False
    ) -> None:
        headers = {"Content-Length": str(len(body)), **headers}
        if self.hostile.trickle_headers is not None:
            self._trickle(status, headers)
            return
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _trickle(self, status: int, headers: dict[str, str]) -> None:
        """One byte of the status line and headers at a time; bounded to 5 minutes."""
        text = f"HTTP/1.1 {status} OK\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        deadline = time.monotonic() + 300
        try:
            for byte in (text + "\r\n").encode():
                if self.hostile.stopped or time.monotonic() > deadline:
                    break
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                self.hostile._stop.wait(self.hostile.trickle_headers)
        except OSError:
            pass
        self.close_connection = True

    def _authorized(self) -> bool:
        wanted = self.hostile.require_basic
        if wanted is None:
            return True
        expected = "Basic " + base64.b64encode(f"{wanted[0]}:{wanted[1]}".encode()).decode()
        return self.headers.get("Authorization", "") == expected

    def _handle(self, *, head: bool) -> None:
        self._record()
        if not self._authorized():
            self._answer(
                401, {"WWW-Authenticate": 'Basic realm="hostile"'}, b'{"errors":[]}', head=head
            )
            return
        path, _, query = self.path.partition("?")
        if path == "/v2/" or path == "/v2":
            self._answer(200, {"Content-Type": "application/json"}, b"{}", head=head)
            return
        if path == "/v2/_catalog":
            self._list("repositories", "/v2/_catalog", query, head)
            return
        match = _PATH.match(path)
        if match is None:
            self._answer(404, {}, b"", head=head)
            return
        name, kind, ref = match["name"], match["kind"], match["ref"]
        if kind == "tags":
            self._list("tags", f"/v2/{name}/tags/list", query, head, name=name)
        elif kind == "manifests":
            self._manifest(name, ref, head)
        else:
            self._blob(ref, head)

    def _list(self, key: str, base: str, query: str, head: bool, name: str = "") -> None:
        page = int(re.search(r"last=(\d+)", query)[1]) if "last=" in query else 0
        values = [f"x{page}-{i}" for i in range(50)]
        body = json.dumps({key: values, **({"name": name} if name else {})}).encode()
        headers = {"Content-Type": "application/json"}
        if self.hostile.endless_lists:
            headers["Link"] = f'<{base}?n=50&last={page + 1}>; rel="next"'
        self._answer(200, headers, body, head=head)

    def _manifest(self, name: str, ref: str, head: bool) -> None:
        found = self.hostile.manifests.get((name, ref))
        if found is None:
            body = json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": ref}]})
            self._answer(404, {"Content-Type": "application/json"}, body.encode(), head=head)
            return
        if self.hostile.redirect_manifests:
            self._answer(302, {"Location": "/login.html"}, b"", head=head)
            return
        media_type, make = found
        body = make()
        self._answer(
            200,
            {"Content-Type": media_type, "Docker-Content-Digest": sha256(body)},
            body,
            head=head,
        )

    def _blob(self, digest: str, head: bool) -> None:
        blob = self.hostile.blobs.get(digest)
        if blob is None:
            self._answer(404, {}, b"", head=head)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(blob.size))
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Docker-Content-Digest", digest)
        self.end_headers()
        if head:
            return
        written = 0
        try:
            for chunk in blob.chunks():
                if self.hostile.stopped:
                    break
                self.wfile.write(chunk)
                written += len(chunk)
                with self.hostile._lock:
                    blob.sent += len(chunk)
        except OSError:
            pass
        if written != blob.size:
            self.close_connection = True  # a short body: hang up, as a broken server would


def zeros(size: int) -> Callable[[], Iterator[bytes]]:
    """A generator factory of `size` zero bytes, in pieces (never held whole)."""
    piece = bytes(PIECE)

    def chunks() -> Iterator[bytes]:
        left = size
        while left > 0:
            yield piece[: min(PIECE, left)]
            left -= PIECE

    return chunks


def image_manifest(config: dict, layers: list[dict]) -> bytes:
    """An OCI image manifest's bytes."""
    return json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers}
    ).encode()


def index_manifest(children: list[dict]) -> bytes:
    """An OCI index's bytes."""
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}).encode()
