"""Wall-clock deadlines for registry calls, and the guard against private addresses.

requests' timeout bounds each socket read, not a call: a registry that sends one header
byte every few seconds keeps a call alive forever. Here every connection a client opens
is watched: while a `Deadline` is active on the calling thread, the connections used are
registered with it, and one watchdog thread shuts their sockets down once it expires,
which wakes the blocked read at once. The client then reports a timeout.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_local = threading.local()


class Deadline:
    """One wall-clock limit; the sockets registered with it are shut down when it passes."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires = time.monotonic() + seconds
        self.expired = False
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def remaining(self) -> float:
        return self.expires - time.monotonic()

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            if self.expired:
                _shutdown(sock)
            else:
                self._sockets.add(sock)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _shutdown(sock)

    def close(self) -> None:
        with self._lock:
            self._sockets.clear()


def _shutdown(sock: socket.socket) -> None:
    # shutdown (not close) wakes a thread blocked in recv() on Linux and elsewhere.
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _Watchdog:
    """One daemon thread that expires deadlines in order."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._counter = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, deadline: Deadline) -> None:
        with self._cond:
            heapq.heappush(self._heap, (deadline.expires, next(self._counter), deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="registry-deadlines", daemon=True
                )
                self._thread.start()
            if self._heap[0][2] is deadline:
                # The watchdog sleeps until the earliest deadline: wake it only for an
                # earlier one (not once per registry call).
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                expires, _, deadline = self._heap[0]
                wait = expires - time.monotonic()
                if wait > 0:
                    self._cond.wait(timeout=min(wait, 60))
                    continue
                heapq.heappop(self._heap)
            # A finished deadline has no sockets left: expiring it then is harmless.
            deadline.expire()


_watchdog = _Watchdog()


def _active() -> list[Deadline]:
    stack = getattr(_local, "deadlines", None)
    if stack is None:
        stack = _local.deadlines = []
    return stack


@contextmanager
def deadline(seconds: float | None) -> Iterator[Deadline | None]:
    """Bound everything this thread sends and reads inside the block to `seconds` in all."""
    if seconds is None or seconds <= 0:
        yield None
        return
    limit = Deadline(seconds)
    stack = _active()
    stack.append(limit)
    _watchdog.add(limit)
    try:
        yield limit
    finally:
        stack.remove(limit)
        limit.close()


def expired() -> bool:
    """True when a deadline active on this thread has passed."""
    return any(d.expired or d.remaining() <= 0 for d in _active())


def expired_seconds() -> float:
    """The length of the (shortest) deadline on this thread that has passed; 0 if none."""
    passed = [d.seconds for d in _active() if d.expired or d.remaining() <= 0]
    return min(passed) if passed else 0.0


def _register(sock: socket.socket | None) -> None:
    for limit in _active():
        limit.watch(sock)


class PrivateAddress(urllib3.exceptions.HTTPError):
    """The connection went to a loopback, private or link-local address that is forbidden."""


def is_private_address(address: str) -> bool:
    """True for loopback, private, link-local, reserved and multicast addresses."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


class _Watched:
    """Mixin for urllib3 connections: register sockets with the thread's deadlines, and
    refuse private peers (checked on the connected socket, so DNS tricks do not help)."""

    forbid_private = False

    def _new_conn(self):  # type: ignore[no-untyped-def]
        if self.forbid_private:
            # Resolve once, check every address, and connect to a checked one: no packet
            # ever goes to a private address, and a second lookup cannot answer otherwise.
            host = self._dns_host  # type: ignore[attr-defined]
            infos = socket.getaddrinfo(host, self.port, type=socket.SOCK_STREAM)  # type: ignore[attr-defined]
            addresses = [info[4][0] for info in infos]
            if not addresses or any(is_private_address(a) for a in addresses):
                raise PrivateAddress("the registry's address is not allowed")
            self._dns_host = addresses[0]
        return super()._new_conn()  # type: ignore[misc]

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        sock = self.sock  # type: ignore[attr-defined]
        if self.forbid_private:
            peer = sock.getpeername()[0]
            if is_private_address(peer):
                sock.close()
                raise PrivateAddress("the registry's address is not allowed")
        _register(sock)

    def request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        _register(self.sock)  # type: ignore[attr-defined]
        return super().request(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_Watched, HTTPConnection):
    pass


class _HTTPSConnection(_Watched, HTTPSConnection):
    pass


class _PrivateHTTPConnection(_HTTPConnection):
    forbid_private = True


class _PrivateHTTPSConnection(_HTTPSConnection):
    forbid_private = True


def _pool(base: type, connection: type) -> type:
    return type(f"Watched{base.__name__}", (base,), {"ConnectionCls": connection})


class WatchedAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections obey the thread's deadlines (and, when asked,
    refuse loopback, private and link-local peers)."""

    def __init__(self, *, forbid_private: bool = False, **kwargs) -> None:  # type: ignore[no-untyped-def]
        self._forbid_private = forbid_private
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().init_poolmanager(*args, **kwargs)
        private = self._forbid_private
        self.poolmanager.pool_classes_by_scheme = {
            "http": _pool(
                HTTPConnectionPool, _PrivateHTTPConnection if private else _HTTPConnection
            ),
            "https": _pool(
                HTTPSConnectionPool, _PrivateHTTPSConnection if private else _HTTPSConnection
            ),
        }


def watched_session(*, forbid_private: bool = False) -> requests.Session:
    """A requests session whose calls can be bounded with `deadline()`."""
    session = requests.Session()
    adapter = WatchedAdapter(forbid_private=forbid_private)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
