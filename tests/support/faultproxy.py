"""A loopback HTTP proxy that delays, drops or fails a chosen share of requests.

Put it in front of a real registry to test how Promoter copes with a slow or flaky one:

    with FaultProxy(backing.url, FaultPolicy(error_rate=0.3, seed=7)) as proxy:
        Registry.objects.create(name="flaky", endpoint=proxy.url)

Bodies stream both ways in small pieces (blobs are never held whole), and the absolute
upload `Location` URLs distribution answers with are rewritten to the proxy's address.
Decisions come from a seeded random generator, so a single-threaded run is repeatable.
"""

from __future__ import annotations

import http.client
import http.server
import random
import re
import socket
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

PIECE = 64 * 1024
# Headers that describe one connection, not the message; never forwarded as they are.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)
Action = Literal["forward", "error", "drop"]


@dataclass
class FaultPolicy:
    """What happens to requests whose "METHOD /path?query" line matches `match` (all if None).

    Each matching request first waits `delay` seconds; then the first `fail_first` of them
    fail as `fail_with` says; after that a share `drop_rate` has its connection closed
    without an answer and a share `error_rate` gets one of `statuses`.
    """

    delay: float = 0.0
    error_rate: float = 0.0
    drop_rate: float = 0.0
    fail_first: int = 0
    fail_with: Literal["error", "drop"] = "error"
    statuses: tuple[int, ...] = (502, 503)
    match: str | None = None
    seed: int = 0

    def matches(self, method: str, path: str) -> bool:
        """True when the rules apply to this request."""
        return self.match is None or re.search(self.match, f"{method} {path}") is not None


@dataclass(frozen=True)
class Decision:
    action: Action
    delay: float = 0.0
    status: int = 0


class FaultProxy:
    """A threaded proxy on 127.0.0.1:<free port> in front of `upstream` (http://host:port)."""

    def __init__(
        self,
        upstream: str,
        policy: FaultPolicy | None = None,
        *,
        host: str = "127.0.0.1",
        upstream_timeout: float = 60.0,
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"upstream {upstream!r} must look like http://host:port")
        self.upstream = upstream.rstrip("/")
        self.upstream_host, self.upstream_port = parts.hostname, parts.port
        self.upstream_timeout = upstream_timeout
        self.stats: Counter[str] = Counter()
        self.log: list[tuple[str, str, str]] = []  # (method, path, what happened)
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._connections: set[socket.socket] = set()
        self.set_policy(policy or FaultPolicy())
        self._server = _Server((host, 0), _Handler)
        self._server.proxy = self
        self.host = host
        self.port = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL of the proxy, e.g. http://127.0.0.1:40123."""
        return f"http://{self.host}:{self.port}"

    @property
    def hostport(self) -> str:
        """host:port of the proxy, as skopeo references want it."""
        return f"{self.host}:{self.port}"

    def set_policy(self, policy: FaultPolicy) -> None:
        """Apply a new policy from the next request on (restarts its counter and its seed)."""
        with self._lock:
            self.policy = policy
            self._rng = random.Random(policy.seed)
            self._matched = 0

    def decide(self, method: str, path: str) -> Decision:
        """What to do with one request (thread-safe)."""
        with self._lock:
            policy = self.policy
            if not policy.matches(method, path):
                return Decision("forward")
            self._matched += 1
            roll = self._rng.random()
            status = self._rng.choice(policy.statuses) if policy.statuses else 503
            if self._matched <= policy.fail_first:
                action: Action = policy.fail_with
            elif roll < policy.drop_rate:
                action = "drop"
            elif roll < policy.drop_rate + policy.error_rate:
                action = "error"
            else:
                action = "forward"
            return Decision(action, policy.delay, status if action == "error" else 0)

    def record(self, method: str, path: str, what: str) -> None:
        with self._lock:
            self.stats[what] += 1
            self.log.append((method, path, what))

    def rewrite_location(self, value: str) -> str:
        """Point absolute URLs at the upstream back at the proxy."""
        if value.startswith(self.upstream):
            return self.url + value[len(self.upstream) :]
        return value

    def start(self) -> FaultProxy:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(0.05,),
            name=f"faultproxy-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, end delays early and close every client connection."""
        self._stopped.set()
        self._server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not hold up stop()
    proxy: FaultProxy


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120  # idle keep-alive connections end eventually
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.proxy._lock:
            self.server.proxy._connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.proxy._lock:
                self.server.proxy._connections.discard(self.connection)

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def _handle(self) -> None:
        proxy = self.server.proxy
        decision = proxy.decide(self.command, self.path)
        if decision.delay and proxy._stopped.wait(decision.delay):
            self.close_connection = True
            return
        if decision.action == "drop":
            proxy.record(self.command, self.path, "drop")
            self.close_connection = True  # no answer at all: the client sees a closed socket
            return
        if decision.action == "error":
            proxy.record(self.command, self.path, f"error {decision.status}")
            self._answer(decision.status, b"<html>fault proxy: injected failure</html>")
            return
        try:
            self._forward()
        except (OSError, http.client.HTTPException) as exc:
            proxy.record(self.command, self.path, f"upstream failed: {exc.__class__.__name__}")
            if not getattr(self, "_answered", False):
                self._answer(502, b"<html>fault proxy: upstream unreachable</html>")
            self.close_connection = True

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

    def _answer(self, status: int, body: bytes) -> None:
        # The request body may be unread: answer and close rather than reuse the connection.
        self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _forward(self) -> None:
        proxy = self.server.proxy
        upstream = http.client.HTTPConnection(
            proxy.upstream_host, proxy.upstream_port, timeout=proxy.upstream_timeout
        )
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            upstream.putheader("Host", f"{proxy.upstream_host}:{proxy.upstream_port}")
            for name, value in self.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    upstream.putheader(name, value)
            chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
            if chunked:
                upstream.putheader("Transfer-Encoding", "chunked")
            upstream.endheaders()
            if chunked:
                self._pipe_chunked_request(upstream)
            else:
                self._pipe_exact(upstream, int(self.headers.get("Content-Length") or 0))
            response = upstream.getresponse()
            self._relay(response)
            proxy.record(self.command, self.path, f"forwarded {response.status}")
        finally:
            upstream.close()

    def _pipe_exact(self, upstream: http.client.HTTPConnection, length: int) -> None:
        while length > 0:
            piece = self.rfile.read(min(PIECE, length))
            if not piece:
                raise ConnectionError("the client closed the connection mid-body")
            upstream.send(piece)
            length -= len(piece)

    def _pipe_chunked_request(self, upstream: http.client.HTTPConnection) -> None:
        # Pass the chunk framing through verbatim, one chunk at a time.
        while True:
            line = self.rfile.readline(1024)
            if not line:
                raise ConnectionError("the client closed the connection mid-body")
            upstream.send(line)
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    trailer = self.rfile.readline(1024)
                    upstream.send(trailer)
                    if trailer in (b"\r\n", b"\n", b""):
                        return
            self._pipe_exact(upstream, size + 2)  # the data and its CRLF

    def _relay(self, response: http.client.HTTPResponse) -> None:
        proxy = self.server.proxy
        self._answered = True
        self.send_response_only(response.status, response.reason)
        length = response.getheader("Content-Length")
        no_body = self.command == "HEAD" or response.status in (204, 304) or response.status < 200
        for name, value in response.getheaders():
            if name.lower() in HOP_BY_HOP:
                continue
            if name.lower() == "location":
                value = proxy.rewrite_location(value)
            self.send_header(name, value)
        chunked = not no_body and length is None
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        if response.will_close and length is None and not chunked:
            self.close_connection = True
        self.end_headers()
        if no_body:
            return
        while True:
            piece = response.read(PIECE)
            if not piece:
                break
            if chunked:
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            else:
                self.wfile.write(piece)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
