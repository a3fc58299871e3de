"""Fixtures for the HTTP API tests: keys made the way the API Keys page makes them, and a
tiny client that talks plain HTTP to the live portal."""

from __future__ import annotations

import pytest
import requests

from tests.support.accounts import PASSWORD
from tests.support.accounts import key_secret as make_key

__all__ = ["Api", "make_key"]  # make_key(kind, *, feeds=…, …) -> the raw secret


class Api:
    """Plain HTTP against the live portal (no Django test client: real headers, real bodies)."""

    def __init__(self, url: str, key: str | None = None) -> None:
        self.url = url
        self.key = key

    def request(self, method: str, path: str, *, key: str | None = None, **kwargs):
        headers = dict(kwargs.pop("headers", {}) or {})
        key = key if key is not None else self.key
        if key and "X-ApiKey" not in headers and "auth" not in kwargs:
            headers["X-ApiKey"] = key
        kwargs.setdefault("timeout", 60)
        return requests.request(method, self.url + path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.request("POST", path, **kwargs)

    def anonymous(self) -> Api:
        return Api(self.url, key="")


@pytest.fixture
def system_key(demo) -> str:
    return make_key("system", name="ci")


@pytest.fixture
def api(demo, system_key) -> Api:
    """The API as a system key (Administer everywhere)."""
    return Api(demo.url, key=system_key)


@pytest.fixture
def password() -> str:
    return PASSWORD
