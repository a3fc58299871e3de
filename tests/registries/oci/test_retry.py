"""Retries: transient failures are tried again a bounded number of times, with backoff."""

from __future__ import annotations

import random

import pytest

from registries.oci import RegistryClient, ServerError, TooManyRequests, sha256_digest
from registries.oci.errors import RegistryUnreachable
from registries.oci.retry import RetryPolicy, retry_after_seconds
from tests.support.stubs import Recorded


def failing_then_ok(failures: int, status: int = 503, headers: dict | None = None):
    seen: list[Recorded] = []

    def route(request: Recorded):
        seen.append(request)
        if len(seen) <= failures:
            return status, dict(headers or {}), b"<html>busy</html>"
        return 200, {}, b'{"name": "a", "tags": ["1"]}'

    return route


def test_a_transient_5xx_is_retried_and_succeeds(stub_server) -> None:
    stub = stub_server(failing_then_ok(2))
    assert RegistryClient(stub.url, backoff=0.01).tags("a") == ["1"]
    assert len(stub.requests) == 3


def test_retries_are_bounded(stub_server) -> None:
    stub = stub_server(failing_then_ok(100, status=502))
    with pytest.raises(ServerError) as caught:
        RegistryClient(stub.url, retries=4, backoff=0.01).tags("a")
    assert len(stub.requests) == 4
    assert "HTTP 502" in caught.value.message


def test_client_errors_are_not_retried(stub_server) -> None:
    stub = stub_server(lambda r: (404, {}, b'{"errors":[{"code":"NAME_UNKNOWN"}]}'))
    with pytest.raises(Exception):  # noqa: B017 - the type is tested elsewhere
        RegistryClient(stub.url, backoff=0.01).tags("a")
    assert len(stub.requests) == 1


def test_retry_after_is_respected_within_the_cap() -> None:
    waits: list[float] = []
    policy = RetryPolicy(
        attempts=3, backoff=0.01, max_delay=2.0, sleep=waits.append, rng=random.Random(1)
    )
    calls = []

    def call():
        calls.append(1)
        if len(calls) < 3:
            error = TooManyRequests("slow down", status=429)
            error.retry_after = 1.5 if len(calls) == 1 else 3600
            raise error
        return "done"

    assert policy.run(call) == "done"
    assert waits == [1.5, 2.0]  # the hour-long Retry-After is capped


def test_429_with_retry_after_header_waits_that_long(stub_server, monkeypatch) -> None:
    waits: list[float] = []
    stub = stub_server(failing_then_ok(1, status=429, headers={"Retry-After": "1"}))
    client = RegistryClient(stub.url)
    monkeypatch.setattr(client.retry, "sleep", waits.append)
    assert client.tags("a") == ["1"]
    assert waits == [1.0]


def test_backoff_grows_exponentially_with_jitter() -> None:
    policy = RetryPolicy(backoff=0.2, rng=random.Random(3))
    for attempt, base in ((1, 0.2), (2, 0.4), (3, 0.8)):
        assert 0.75 * base <= policy.delay(attempt) <= 1.25 * base


def test_retry_after_header_forms() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_a_streamed_upload_is_not_replayed_by_the_client(stub_server) -> None:
    def route(request: Recorded):
        if request.method == "POST":
            return 202, {"Location": "/upload/1"}, b""
        return 503, {}, b""  # the PATCH with the stream, and the cancelling DELETE

    stub = stub_server(route)
    with pytest.raises(ServerError):
        RegistryClient(stub.url, backoff=0.01).upload_blob("a", sha256_digest(b"ab"), [b"ab"])
    assert [r.method for r in stub.requests] == ["POST", "PATCH", "DELETE"]


def test_exhausted_errors_are_not_retried_again_by_an_outer_loop() -> None:
    inner = RetryPolicy(attempts=2, backoff=0, sleep=lambda s: None)
    outer = RetryPolicy(attempts=3, backoff=0, sleep=lambda s: None)
    calls = []

    def fail():
        calls.append(1)
        raise RegistryUnreachable("down")

    with pytest.raises(RegistryUnreachable):
        outer.run(lambda: inner.run(fail))
    assert len(calls) == 2  # not 2 × 3
