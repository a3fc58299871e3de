"""Fixtures for the HTTP API tests: keys made the way the API Keys page makes them, and a
tiny client that talks plain HTTP to the live portal."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.conftest import PASSWORD


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


def make_key(
    kind: str = "system", *, user=None, feeds=(), permissions=(), areas=(), name=None
) -> str:
    """A key created through accounts.services (the page's way); returns the raw secret.

    `areas`: a system key limited to these API areas (none: full control)."""
    from accounts.permissions import Principal
    from accounts.services import api_key_create
    from registries.models import Registry

    personal = kind == "personal" and user is not None
    actor = Principal(user=user) if personal else Principal.promoter()
    _, raw = api_key_create(
        name=name or f"key-{uuid.uuid4().hex[:6]}",
        kind=kind,
        user=user,
        actor=actor,
        registries=list(Registry.objects.filter(name__in=feeds)),
        permissions=permissions,
        areas=areas,
    )
    return raw


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
