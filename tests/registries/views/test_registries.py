"""Server-rendered pages over the real registry: what a person sees, and no 500s."""

from __future__ import annotations

import pytest

from registries.models import Registry, Repository, Tag
from tests.support.wait import wait_for

pytestmark = pytest.mark.django_db  # `demo` makes a test transactional (a live server reads)


def test_registry_list_shows_the_pipeline(admin_client):
    page = admin_client.get("/registries/")
    assert page.status_code == 200
    html = page.content.decode()
    for name in ("devdocker", "rcdocker", "proddocker"):
        assert name in html
    assert "Validated/Promoted" in html


def test_registry_page_lists_repositories_with_filter_and_breadcrumbs(admin_client, indexed):
    repo, _ = indexed
    page = admin_client.get("/registries/devdocker/")
    html = page.content.decode()
    assert page.status_code == 200
    assert repo in html
    assert 'aria-label="Breadcrumb"' in html
    filtered = admin_client.get("/registries/devdocker/", {"q": "no-such-thing"})
    assert "No repository matches" in filtered.content.decode()


def test_tag_page_shows_digest_layers_and_pull_command(admin_client, indexed):
    repo, info = indexed
    page = admin_client.get(f"/registries/devdocker/images/{repo}:1.0")
    html = page.content.decode()
    assert page.status_code == 200
    assert info.digest in html
    assert f"/devdocker/{repo}@{info.digest}" in html  # docker pull command
    for layer in info.layer_digests:
        assert layer[7:19] in html
    assert "Registries</a>" in html and "devdocker</a>" in html


def test_tag_history_tab_lists_the_push(admin_client, indexed):
    repo, _ = indexed
    page = admin_client.get(f"/registries/devdocker/images/{repo}:1.0", {"tab": "history"})
    html = page.content.decode()
    assert "Pushed" in html and "by Admin" in html


def test_htmx_tab_request_gets_only_the_partial(admin_client, indexed):
    repo, _ = indexed
    page = admin_client.get(
        f"/registries/devdocker/images/{repo}:1.0",
        {"tab": "history"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="tab-content",
    )
    html = page.content.decode()
    assert 'id="tab-content"' in html
    assert "<html" not in html


@pytest.mark.parametrize(
    "path",
    [
        "/registries/nope/",
        "/registries/devdocker/images/no/such:1.0",
        "/registries/devdocker/images/no/such",
        "/registries/UPPER/",
        "/registries/devdocker/images/bad..name:1.0",
        "/promotions/999999/",
    ],
)
def test_unknown_names_give_404_pages(admin_client, path):
    page = admin_client.get(path)
    assert page.status_code == 404
    assert "Promoter" in page.content.decode()


def test_tag_page_with_registry_down_shows_a_banner_not_a_500(admin_client):
    from tests.support.net import free_port

    down = Registry.objects.create(name="offline", endpoint=f"http://127.0.0.1:{free_port()}")
    repo = Repository.objects.create(registry=down, name="team/api")
    from django.utils import timezone

    Tag.objects.create(
        repository=repo,
        name="1.0",
        digest="sha256:" + "a" * 64,
        media_type="application/vnd.oci.image.manifest.v1+json",
        size=10,
        pushed_at=timezone.now(),
    )
    page = admin_client.get("/registries/offline/images/team/api:1.0")
    assert page.status_code == 200
    assert "could not be read" in page.content.decode()


def test_healthz_is_liveness_and_readyz_names_the_registry_that_is_down(client, demo, settings):
    ok = client.get("/readyz")
    assert ok.status_code == 200
    assert ok.json() == {
        "status": "ok",
        "database": "ok",
        "registry": "ok",
        "registry_identity": "ok",
    }
    from tests.support.net import free_port

    settings.PROMOTER_REGISTRY_URL = f"http://127.0.0.1:{free_port()}"
    down = client.get("/readyz")
    assert down.status_code == 503
    assert down.json()["registry"].startswith("down")
    # Liveness does not depend on the registry: a load balancer keeps this node.
    alive = client.get("/healthz")
    assert alive.status_code == 200
    assert alive.json() == {"status": "ok", "database": "ok"}


def test_repository_page_paginates_thousands_of_tags_in_few_queries(
    admin_client, django_assert_max_num_queries
):
    from django.utils import timezone

    registry = Registry.objects.get(name="devdocker")
    repo = Repository.objects.create(registry=registry, name="big/repo")
    now = timezone.now()
    Tag.objects.bulk_create(
        Tag(repository=repo, name=f"v{i}", digest=f"sha256:{i:064x}", size=i, pushed_at=now)
        for i in range(2000)
    )
    with django_assert_max_num_queries(12):
        page = admin_client.get("/registries/devdocker/images/big/repo", {"page": 3})
    assert page.status_code == 200
    assert page.content.decode().count("<tr>") >= 50


def test_multi_arch_tag_page_shows_each_platform_and_config_labels(
    admin_client, demo, admin_creds, unique_repo, tmp_path
):
    from tests.support.images import push_image

    info = push_image(
        demo.hostport,
        f"devdocker/{unique_repo}",
        "2.0",
        layers=1,
        platforms=["linux/amd64", "linux/arm64"],
        creds=admin_creds,
        tmp_path=tmp_path,
        labels={"org.opencontainers.image.source": "git.example/app"},
    )
    wait_for(lambda: Tag.objects.filter(repository__name=unique_repo).exists(), timeout=5)

    html = admin_client.get(f"/registries/devdocker/images/{unique_repo}:2.0").content.decode()

    assert "linux/amd64, linux/arm64" in html  # the Platforms row
    assert html.count('class="platform-image"') == 2
    for child in info.child_digests:
        assert child[7:19] in html
    assert "org.opencontainers.image.source" in html and "git.example/app" in html
