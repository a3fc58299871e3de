"""A registry that trickles a blob (each byte resets the read timeout) is given up on."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from registries.oci import RegistryClient
from registries.oci.errors import RegistryTimeout

DIGEST = "sha256:" + "0" * 64


@pytest.fixture
def trickler():
    """Answers any request with a 1 MB Content-Length, then sends a byte every 50 ms."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    stop = threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n"
                    b"Content-Type: application/octet-stream\r\n\r\n"
                )
                deadline = time.monotonic() + 10  # bounded, whatever the client does
                try:
                    while not stop.is_set() and time.monotonic() < deadline:
                        conn.sendall(b"x")
                        time.sleep(0.05)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(timeout=5)
    server.close()


def test_a_trickling_blob_times_out_instead_of_hanging(trickler):
    client = RegistryClient(trickler, timeout=(1.0, 0.5), retries=1, min_rate=1024)
    started = time.monotonic()
    with pytest.raises(RegistryTimeout, match="below the minimum"):
        with client.open_blob("team/api", DIGEST) as chunks:
            for _ in chunks:
                pass
    assert time.monotonic() - started < 5


def test_without_a_floor_the_read_timeout_alone_would_not_fire(trickler):
    client = RegistryClient(trickler, timeout=(1.0, 0.5), retries=1, min_rate=0)
    received = 0
    started = time.monotonic()
    with client.open_blob("team/api", DIGEST) as chunks:
        for chunk in chunks:
            received += len(chunk)
            if time.monotonic() - started > 1.5:
                break  # still receiving well past the 0.5 s read timeout
    assert received > 0
