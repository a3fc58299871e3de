"""Fixtures shared by the registry page and promotion tests."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from registries.models import Tag
from tests.conftest import wait_for


@pytest.fixture
def admin_client(client, demo):
    """Django's test client signed in as Admin."""
    client.force_login(get_user_model().objects.get(username="Admin"))
    return client


@pytest.fixture
def indexed(pushed):
    """A pushed image, once its notification has put it in the index."""
    repo, info = pushed
    wait_for(lambda: Tag.objects.filter(repository__name=repo, name="1.0").exists(), timeout=5)
    return repo, info
