"""Fixtures shared by the registry page and promotion tests.

Django is imported inside the fixtures: tests/registries/oci also runs with `-p no:django`.
"""

from __future__ import annotations

import pytest

from tests.support.wait import wait_for


@pytest.fixture
def admin_client(client, demo_db):
    """Django's test client signed in as Admin (no registry: add `demo` or `indexed` for one)."""
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username="Admin"))
    return client


@pytest.fixture
def indexed(pushed):
    """A pushed image, once its notification has put it in the index."""
    from registries.models import Tag

    repo, info = pushed
    wait_for(lambda: Tag.objects.filter(repository__name=repo, name="1.0").exists(), timeout=5)
    return repo, info
