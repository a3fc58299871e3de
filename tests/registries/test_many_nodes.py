"""What a node needs when it is one of many: identity, shared config, workers' own duties.

The whole topology (two webs, two workers, two registries on S3) is tests/scaleout.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from io import StringIO
from pathlib import Path

import pytest
import requests
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.utils import timezone

from registries.models import Coordination, HistoryEvent, Promotion, Registry, Tag
from tests.conftest import wait_for
from tests.support.registry import start_registry

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def _indexed(repo: str):
    return Tag.objects.filter(repository__registry__name="devdocker", repository__name=repo)


@pytest.fixture
def own_registry(tmp_path):
    """An empty registry of its own, as a second `make run` node would have."""
    registry = start_registry(tmp_path / "own")
    yield registry
    registry.stop()


def test_a_node_whose_registry_is_not_the_index_s_refuses_to_sync_and_says_so(
    demo, pushed, own_registry, settings, client
):
    from registries.services.index import sync_registry

    repo, info = pushed
    assert wait_for(lambda: _indexed(repo).exists(), timeout=10)
    assert not sync_registry(Registry.objects.get(name="devdocker")).errors
    tags, events = Tag.objects.count(), HistoryEvent.objects.count()

    settings.PROMOTER_REGISTRY_URL = own_registry.url
    report = sync_registry(Registry.objects.get(name="devdocker"))

    assert "is not the one the index describes" in report.errors[0]
    assert Tag.objects.count() == tags and _indexed(repo).get().digest == info.digest
    assert HistoryEvent.objects.count() == events  # nothing deleted, nothing recorded
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert "is not the one the index describes" in ready.json()["registry_identity"]
    assert client.get("/healthz").status_code == 200  # alive: keep serving pages
    proget = client.get("/health")  # ProGet's health object names it as the service
    assert proget.status_code == 503 and proget.json()["serviceStatus"] == "Error"
    assert "is not the one the index describes" in proget.json()["serviceStatusDetail"]
    push = {
        "events": [
            {
                "id": "stray-1",
                "action": "push",
                "target": {"repository": f"devdocker/{repo}", "tag": "9.9", "digest": info.digest},
                "actor": {"name": "Admin"},
            }
        ]
    }
    refused = client.post(
        "/registry/notifications",
        json.dumps(push),
        content_type="application/json",
        headers={"Authorization": f"Bearer {settings.PROMOTER_NOTIFY_SECRET}"},
    )
    assert refused.status_code == 503
    assert not _indexed(repo).filter(name="9.9").exists()


def test_an_index_without_identity_is_not_claimed_by_a_registry_lacking_its_images(
    demo, pushed, own_registry, settings
):
    from registries.services.identity import registry_identity
    from registries.services.index import sync_registry

    repo, _ = pushed
    assert wait_for(lambda: _indexed(repo).exists(), timeout=10)
    Coordination.objects.filter(name="registry-identity").delete()  # an index from before
    shared_registry = settings.PROMOTER_REGISTRY_URL

    settings.PROMOTER_REGISTRY_URL = own_registry.url
    state = registry_identity()
    assert not state.ok and "has none of their repositories" in state.problem
    assert sync_registry(Registry.objects.get(name="devdocker")).errors
    assert _indexed(repo).exists()
    assert not Coordination.objects.filter(name="registry-identity").exists()

    settings.PROMOTER_REGISTRY_URL = shared_registry  # the registry with the index's images
    assert registry_identity().ok
    identity = Coordination.objects.get(name="registry-identity").value
    assert identity

    # An operator who emptied the storage on purpose says so; until then the command refuses.
    settings.PROMOTER_REGISTRY_URL = own_registry.url
    with pytest.raises(CommandError, match="is not the one the index describes"):
        call_command("registry_identity")
    out = StringIO()
    call_command("registry_identity", "--claim", stdout=out)
    assert out.getvalue().startswith("ok: the index describes this registry")
    assert Coordination.objects.get(name="registry-identity").value != identity


def test_synchronous_promote_beyond_the_bound_answers_202_with_the_status_url_at_once(
    demo, pushed, queued_only, settings
):
    from accounts.permissions import Principal
    from registries.selectors import promotion_wait
    from registries.services.promotions import promotion_request
    from tests.api.conftest import make_key

    repo, _ = pushed
    settings.PROMOTER_API_MAX_WAITS = 1
    settings.PROMOTER_API_WAIT_SECONDS = 30
    waiting = promotion_request(
        source=Registry.objects.get(name="devdocker"),
        repository=repo,
        tag="1.0",
        target=Registry.objects.get(name="rcdocker"),
        actor=Principal.promoter(),
    )

    # A synchronous call already waits (nobody runs promotions here): the one place is taken.
    def hold() -> None:
        from django.db import connection

        try:
            promotion_wait(promotion_id=waiting.pk, timeout=8)
        finally:
            connection.close()

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    time.sleep(0.3)

    answer = requests.post(
        f"{demo.url}/api/promotions/promote",
        data={"name": repo, "version": "1.0", "fromFeed": "devdocker", "toFeed": "rcdocker"},
        headers={"X-ApiKey": make_key("system")},
        timeout=20,
    )
    holder.join(timeout=20)

    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "queued"
    status = requests.get(
        demo.url + answer.headers["Location"], headers={"X-ApiKey": make_key("system")}, timeout=20
    )
    assert status.status_code == 200 and status.json()["id"] == answer.json()["id"]


def test_reclaiming_a_dead_worker_s_promotion_fails_its_task_row_and_queues_it_first(
    demo, settings
):
    from django_tasks_db.models import DBTaskResult

    from registries.services.promotions import RECLAIMED_PRIORITY, promotion_reclaim_stale
    from registries.tasks import promote

    settings.TASKS = {
        "default": {
            "BACKEND": "django_tasks_db.DatabaseBackend",
            "QUEUES": ["default", "promotions"],
        }
    }
    settings.PROMOTER_STALE_SECONDS = 2
    promotion = Promotion.objects.create(
        source=Registry.objects.get(name="devdocker"),
        target=Registry.objects.get(name="rcdocker"),
        repository="team/app",
        tag="1.0",
        digest="sha256:" + "a" * 64,
        actor="Admin",
        status=Promotion.Status.RUNNING,
        attempts=1,
        heartbeat_at=timezone.now() - dt.timedelta(seconds=30),
    )
    promote.enqueue(promotion_id=promotion.pk)
    DBTaskResult.objects.update(status="RUNNING", worker_ids=["killed-worker"])

    assert promotion_reclaim_stale() == 1

    promotion.refresh_from_db()
    assert promotion.status == "queued"
    lost = DBTaskResult.objects.get(worker_ids=["killed-worker"])
    assert lost.status == "FAILED"
    assert lost.exception_class_path == "registries.runner.WorkerLost"
    again = DBTaskResult.objects.get(status="READY")
    assert again.args_kwargs["kwargs"] == {"promotion_id": promotion.pk}
    assert again.priority == RECLAIMED_PRIORITY


def _worker_health(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "worker_health"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_real_worker_writes_the_health_file_worker_health_reads(demo, real_worker, settings):
    from django.db import connection

    db = connection.settings_dict
    alive = Path(settings.DATA_DIR) / "worker.alive"  # the session's: earlier workers wrote it
    since = time.time()
    # This worker's next round writes it again (every PROMOTER_STALE_SECONDS / 4 = 15 s).
    assert wait_for(lambda: alive.exists() and alive.stat().st_mtime >= since, timeout=60)
    env = {
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "PROMOTER_DATA_DIR": str(settings.DATA_DIR),
    }
    healthy = _worker_health(env)
    assert healthy.returncode == 0, healthy.stderr
    assert healthy.stdout.startswith("ok: the worker loop ran")


def test_worker_health_fails_with_one_line_saying_why(tmp_path):
    path = tmp_path / "worker.alive"
    env = {"PROMOTER_WORKER_HEALTH_FILE": str(path), "PROMOTER_STALE_SECONDS": "10"}

    missing = _worker_health(env)
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"unhealthy: no worker has written {path} yet"

    path.write_text("refused: The backing registry at http://x is not the one\n")
    refused = _worker_health(env)
    assert refused.returncode == 1 and "is not the one" in refused.stderr

    path.write_text("ok\n")
    old = time.time() - 600
    os.utime(path, (old, old))
    stale = _worker_health(env)
    assert stale.returncode == 1
    assert "the worker loop last ran 60" in stale.stderr and "(limit 10s)" in stale.stderr


def test_every_node_writes_the_same_registry_http_secret(settings, tmp_path):
    from registries.bundled import write_bundled_registry_config

    settings.PROMOTER_REGISTRY_HTTP_SECRET = "shared-" + "s" * 40
    secrets_seen = set()
    for node in ("a", "b"):
        path = write_bundled_registry_config(
            tmp_path / node / "registry.json",
            port=5000,
            storage_dir=tmp_path / node / "storage",
            notify_base="http://web",
            realm_base="http://web",
        )
        secrets_seen.add(json.loads(path.read_text())["http"]["secret"])
    assert secrets_seen == {settings.PROMOTER_REGISTRY_HTTP_SECRET}

    settings.PROMOTER_REGISTRY_HTTP_SECRET = ""
    with pytest.raises(ImproperlyConfigured, match="PROMOTER_REGISTRY_HTTP_SECRET is not set"):
        write_bundled_registry_config(
            tmp_path / "c" / "registry.json",
            port=5000,
            storage_dir=tmp_path / "c" / "storage",
            notify_base="http://web",
            realm_base="http://web",
        )


def test_two_syncs_seeing_the_same_new_tag_at_once_record_it_once_even_without_the_lock(demo):
    """The lock lets one sync run at a time; the writes are safe on their own as well."""
    from django.db import connection

    from registries.oci.inspect import ImageSummary
    from registries.services.index import _sync_tag_found

    registry = Registry.objects.get(name="devdocker")
    summary = ImageSummary("sha256:" + "b" * 64, "application/vnd.oci.image.manifest.v1+json", 9)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def sync() -> None:
        try:
            start.wait(timeout=10)
            outcomes.append(_sync_tag_found(registry, "team/race", "1.0", summary))
        finally:
            connection.close()

    threads = [threading.Thread(target=sync) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["added", "unchanged"]
    assert Tag.objects.get(repository__name="team/race", name="1.0").digest == summary.digest
    assert HistoryEvent.objects.filter(repository="team/race", comment="found by sync").count() == 1


@pytest.mark.django_db
def test_a_node_without_a_bundled_registry_runs_promotions_between_external_ones(settings):
    """With every registry external there is nothing for the identity to guard: a node whose
    bundled registry is absent still runs tasks (and claims no identity)."""
    from registries.services.identity import registry_identity

    settings.PROMOTER_REGISTRY_URL = "http://127.0.0.1:9"  # nothing listens there
    Registry.objects.all().delete()
    Registry.objects.create(name="ext-dev", endpoint="http://127.0.0.1:9")
    Registry.objects.create(name="ext-prod", endpoint="http://127.0.0.1:9")

    assert registry_identity().ok
    assert not Coordination.objects.filter(name="registry-identity").exists()

    Registry.objects.create(name="devdocker")  # a registry on the (unreachable) bundled one
    state = registry_identity()
    assert not state.ok and "http://127.0.0.1:9" in state.problem
