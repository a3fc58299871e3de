"""The tag page reads an image from the registry once; later views come from the database."""

from __future__ import annotations

import pytest

from registries.models import ImageFacts

pytestmark = pytest.mark.django_db(transaction=True)


def test_tag_page_shows_layers_from_the_database_once_read(admin_client, indexed, settings):
    from tests.support.net import free_port

    repo, info = indexed
    url = f"/registries/devdocker/images/{repo}:1.0"
    first = admin_client.get(url).content.decode()
    for layer in info.layer_digests:
        assert layer[7:19] in first
    assert ImageFacts.objects.filter(digest=info.digest).exists()

    # The registry is gone: manifests are immutable by digest, so the page still shows them.
    settings.PROMOTER_REGISTRY_URL = f"http://127.0.0.1:{free_port()}"
    again = admin_client.get(url)
    html = again.content.decode()
    assert again.status_code == 200
    assert "could not be read" not in html
    for layer in info.layer_digests:
        assert layer[7:19] in html
