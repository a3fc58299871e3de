"""The index follows the registry: notifications within a second, sync_registries for the rest."""

from __future__ import annotations

import subprocess

import pytest
from django.core.management import call_command

from registries.models import HistoryEvent, Repository, Tag
from tests.support.images import push_image
from tests.support.wait import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _tag(registry: str, repository: str, tag: str):
    return Tag.objects.filter(
        repository__registry__name=registry, repository__name=repository, name=tag
    ).first()


def test_push_notification_indexes_tag_with_pushed_event_naming_actor(
    demo, admin_creds, unique_repo, tmp_path
):
    info = push_image(
        demo.hostport,
        f"devdocker/{unique_repo}",
        "1.0",
        layers=2,
        layer_size=2048,
        creds=admin_creds,
        tmp_path=tmp_path,
    )

    tag = wait_for(lambda: _tag("devdocker", unique_repo, "1.0"), timeout=5)

    assert tag is not None, "the push did not reach the index through a notification"
    assert tag.digest == info.digest
    assert tag.size > 0
    event = HistoryEvent.objects.get(repository=unique_repo, tag="1.0", action="pushed")
    assert event.actor == "Admin"
    assert event.digest == info.digest


def test_multi_arch_push_records_platforms(demo, admin_creds, unique_repo, tmp_path):
    info = push_image(
        demo.hostport,
        f"devdocker/{unique_repo}",
        "2.0",
        layers=1,
        platforms=["linux/amd64", "linux/arm64"],
        creds=admin_creds,
        tmp_path=tmp_path,
    )

    tag = wait_for(lambda: _tag("devdocker", unique_repo, "2.0"), timeout=5)

    assert tag.digest == info.digest
    assert sorted(tag.platforms) == ["linux/amd64", "linux/arm64"]


@pytest.fixture
def external(demo_db, fresh_registry):
    """A second, plain registry (no auth, no notifications) registered as an external registry."""
    from registries.models import Registry

    backing = fresh_registry()
    registry = Registry.objects.create(name="extdocker", endpoint=backing.url, namespace="mirror")
    return registry, backing


def test_sync_registries_finds_new_changed_and_deleted_tags(external, unique_repo, tmp_path):
    registry, backing = external
    hostport = backing.url.split("://", 1)[1]
    first = push_image(hostport, f"mirror/{unique_repo}", "1.0", tmp_path=tmp_path / "a")
    push_image(hostport, f"mirror/{unique_repo}", "gone", tmp_path=tmp_path / "b")
    push_image(hostport, f"elsewhere/{unique_repo}", "1.0", tmp_path=tmp_path / "x")
    assert _tag("extdocker", unique_repo, "1.0") is None  # no notifications from there

    call_command("sync_registries", "extdocker")
    assert _tag("extdocker", unique_repo, "1.0").digest == first.digest
    assert _tag("extdocker", unique_repo, "gone") is not None
    assert not Repository.objects.filter(name__startswith="elsewhere").exists()

    # Change 1.0, delete "gone" at the registry, then sync again.
    second = push_image(hostport, f"mirror/{unique_repo}", "1.0", tmp_path=tmp_path / "c", seed=7)
    gone = _tag("extdocker", unique_repo, "gone")
    subprocess.run(
        [
            "skopeo",
            "delete",
            "--tls-verify=false",
            f"docker://{hostport}/mirror/{unique_repo}@{gone.digest}",
        ],
        check=True,
        capture_output=True,
    )
    call_command("sync_registries", "extdocker")

    assert second.digest != first.digest
    assert _tag("extdocker", unique_repo, "1.0").digest == second.digest
    assert _tag("extdocker", unique_repo, "gone") is None
    assert HistoryEvent.objects.filter(
        repository=unique_repo, tag="gone", action="deleted"
    ).exists()

    # Idempotent: a second run changes nothing.
    before = HistoryEvent.objects.count()
    call_command("sync_registries", "extdocker")
    assert HistoryEvent.objects.count() == before


def test_sync_of_unreachable_registry_records_the_error(demo_db):
    from registries.models import Registry
    from registries.services.index import sync_registry
    from tests.support.net import free_port

    registry = Registry.objects.create(
        name="downdocker", endpoint=f"http://127.0.0.1:{free_port()}"
    )
    report = sync_registry(registry)
    registry.refresh_from_db()
    assert report.errors and "unreachable" in report.errors[0].lower()
    assert "unreachable" in registry.last_sync_error.lower()


def test_notification_receiver_refuses_wrong_secret_and_bad_bodies(demo_db, live_server):
    import requests

    url = live_server.url + "/registry/notifications"
    assert requests.post(url, json={"events": []}, timeout=5).status_code == 401
    from django.conf import settings

    auth = {"Authorization": f"Bearer {settings.PROMOTER_NOTIFY_SECRET}"}
    assert requests.post(url, data=b"{not json", headers=auth, timeout=5).status_code == 400
    assert requests.post(url, json={"events": "x"}, headers=auth, timeout=5).status_code == 400
    ok = requests.post(url, json={"events": [{"action": "pull"}, "junk"]}, headers=auth, timeout=5)
    assert ok.status_code == 200
    assert ok.json()["outcomes"] == ["ignored", "invalid"]


def test_redelivered_notification_is_recorded_once(demo, pushed):
    import requests
    from django.conf import settings

    repo, info = pushed
    wait_for(lambda: _tag("devdocker", repo, "1.0"), timeout=5)
    event = {
        "id": "evt-redelivered-1",
        "action": "push",
        "target": {
            "repository": f"devdocker/{repo}",
            "tag": "1.0",
            "digest": info.digest,
            "mediaType": info.media_type,
        },
        "actor": {"name": "Admin"},
    }
    auth = {"Authorization": f"Bearer {settings.PROMOTER_NOTIFY_SECRET}"}
    for _ in range(2):
        requests.post(
            demo.url + "/registry/notifications", json={"events": [event]}, headers=auth, timeout=5
        )
    assert HistoryEvent.objects.filter(source_event_id="evt-redelivered-1").count() == 1
    assert Repository.objects.filter(registry__name="devdocker", name=repo).count() == 1


def test_the_bundled_registry_notifies_pushes_but_not_pulls(tmp_path):
    """Every manifest GET and HEAD is a pull event in distribution; Promoter's config asks it
    for pushes and deletes only, so reading an image (skopeo, Promoter's own checks) sends
    nothing to the web. Observed with the real registry and a recording receiver."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from tests.support.images import skopeo_inspect_raw
    from tests.support.registry import start_registry

    actions: list[str] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            actions.extend(e.get("action", "") for e in json.loads(body or b"{}")["events"])
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    registry = start_registry(
        tmp_path / "reg", notify_url=f"http://127.0.0.1:{server.server_port}/events"
    )
    try:
        host = f"127.0.0.1:{registry.port}"
        push_image(host, "team/api", "1.0", tmp_path=tmp_path / "img")
        assert wait_for(lambda: "push" in actions, timeout=10), "no push event arrived"
        for _ in range(3):
            skopeo_inspect_raw(f"docker://{host}/team/api:1.0")
        push_image(host, "team/api", "marker", tmp_path=tmp_path / "img2", seed=2)
        # Events are delivered in order per endpoint: the marker's arrival means the pulls
        # (made before it) would have arrived by now.
        assert wait_for(lambda: actions.count("push") >= 2, timeout=10), actions
        assert "pull" not in actions, actions
    finally:
        registry.stop()
        server.shutdown()
