"""Faults: registries that stop, stall or fail; a worker killed mid-copy; lost notifications;
a database restart. Real processes throughout: registries, PostgreSQL, the task worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.core.management import call_command
from django.db import connection

from accounts.permissions import Principal
from registries.models import HistoryEvent, Promotion, Registry, Repository, Tag
from registries.oci.copy import ImageCopier
from registries.runner import promotion_execute
from registries.services.promotions import promotion_request, promotion_retry
from tests.support.faultproxy import FaultPolicy, FaultProxy
from tests.support.images import push_image, skopeo_inspect_raw
from tests.support.runner import worker_env
from tests.support.wait import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parent.parent.parent
DUMMY_TASKS = {
    "default": {
        "BACKEND": "django.tasks.backends.dummy.DummyBackend",
        "QUEUES": ["default", "promotions"],
    }
}
DB_TASKS = {
    "default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default", "promotions"]}
}


def admin() -> Principal:
    from django.contrib.auth import get_user_model

    return Principal(user=get_user_model().objects.get(username="Admin"))


def hostport(url: str) -> str:
    return url.split("://", 1)[1]


def raw(url: str, repo: str, ref: str, creds: str | None = None) -> bytes:
    sep = "@" if ref.startswith("sha256:") else ":"
    return skopeo_inspect_raw(f"docker://{hostport(url)}/{repo}{sep}{ref}", creds=creds)


@pytest.fixture(autouse=True)
def quick_backoff(settings):
    """Real retries, short waits: the suite stays fast."""
    settings.PROMOTER_REGISTRY_BACKOFF = 0.02


@pytest.fixture
def hosts(demo_db, fresh_registry):
    """Two plain registries (no auth); returns their BackingRegistry objects."""
    return fresh_registry(), fresh_registry()


def external(name: str, url: str, validated: bool = False) -> Registry:
    usage = Registry.UsageType.VALIDATED if validated else Registry.UsageType.GENERAL
    return Registry.objects.create(name=name, endpoint=url, usage_type=usage)


def request(source: Registry, target: Registry, repo: str, tag: str = "1.0") -> Promotion:
    return promotion_request(source=source, repository=repo, tag=tag, target=target, actor=admin())


def stop_after_first_blob(monkeypatch, backing) -> None:
    """Stop `backing` right after the copy engine finishes its first blob."""
    original = ImageCopier._count

    def count_then_stop(self, kind, size):
        original(self, kind, size)
        if backing.running:
            backing.stop()

    monkeypatch.setattr(ImageCopier, "_count", count_then_stop)


# -- a registry stops in the middle of a promotion ---------------------------------------


def test_source_registry_stopping_mid_copy_fails_cleanly_and_retry_succeeds(
    hosts, unique_repo, tmp_path, monkeypatch, settings
):
    a, b = hosts
    settings.PROMOTER_COPY_PARALLELISM = 1
    settings.TASKS = DUMMY_TASKS
    source, target = external("srca", a.url), external("dstb", b.url, validated=True)
    old = push_image(hostport(a.url), unique_repo, "1.0", layers=1, tmp_path=tmp_path / "o")
    assert (
        promotion_execute(promotion_id=request(source, target, unique_repo).pk).status
        == "succeeded"
    )
    new = push_image(
        hostport(a.url), unique_repo, "1.0", layers=4, layer_size=64 * 1024, tmp_path=tmp_path / "n"
    )
    promotion = request(source, target, unique_repo)

    stop_after_first_blob(monkeypatch, a)
    failed = promotion_execute(promotion_id=promotion.pk)

    assert failed.status == "failed"
    assert f"Registry at {a.url} is unreachable: connection refused" in failed.error
    assert "The tag in dstb was not changed" in failed.error
    assert 0 < failed.blobs_copied < failed.blobs_total
    assert raw(b.url, unique_repo, "1.0") == raw(b.url, unique_repo, old.digest)
    assert Tag.objects.get(repository__registry=target).digest == old.digest

    monkeypatch.undo()
    a.start()
    promotion_retry(promotion=failed, actor=admin())
    done = promotion_execute(promotion_id=promotion.pk)
    assert done.status == "succeeded", done.error
    assert done.blobs_skipped >= 1  # what landed before the failure is not copied again
    assert raw(b.url, unique_repo, "1.0") == raw(a.url, unique_repo, "1.0")
    assert Tag.objects.get(repository__registry=target).digest == new.digest


def test_bundled_registry_stopping_mid_promotion_fails_cleanly_and_retry_succeeds(
    demo, admin_creds, unique_repo, tmp_path, monkeypatch, settings
):
    settings.PROMOTER_COPY_PARALLELISM = 1
    settings.TASKS = DUMMY_TASKS
    dev, rc = Registry.objects.get(name="devdocker"), Registry.objects.get(name="rcdocker")
    repo = f"devdocker/{unique_repo}"
    old = push_image(
        demo.hostport, repo, "1.0", layers=1, creds=admin_creds, tmp_path=tmp_path / "o"
    )
    wait_for(lambda: Tag.objects.filter(repository__name=unique_repo).exists(), timeout=5)
    assert promotion_execute(promotion_id=request(dev, rc, unique_repo).pk).status == "succeeded"
    new = push_image(
        demo.hostport, repo, "1.0", layers=4, creds=admin_creds, tmp_path=tmp_path / "n"
    )
    promotion = request(dev, rc, unique_repo)

    stop_after_first_blob(monkeypatch, demo.registry)
    try:
        failed = promotion_execute(promotion_id=promotion.pk)
    finally:
        monkeypatch.undo()
        demo.registry.start()

    assert failed.status == "failed"
    assert "unreachable" in failed.error and "The tag in rcdocker was not changed" in failed.error
    assert 0 < failed.blobs_mounted < failed.blobs_total
    at_rc = skopeo_inspect_raw(
        f"docker://{demo.hostport}/rcdocker/{unique_repo}:1.0", creds=admin_creds
    )
    assert at_rc == old.body
    promotion_retry(promotion=failed, actor=admin())
    done = promotion_execute(promotion_id=promotion.pk)
    assert done.status == "succeeded", done.error
    at_rc = skopeo_inspect_raw(
        f"docker://{demo.hostport}/rcdocker/{unique_repo}:1.0", creds=admin_creds
    )
    assert at_rc == new.body
    assert (
        Tag.objects.get(repository__registry=rc, repository__name=unique_repo).digest == new.digest
    )


# -- slow and flaky registries (the fault proxy) -----------------------------------------


def test_stalled_registry_times_out_instead_of_hanging(hosts, unique_repo, tmp_path, settings):
    a, b = hosts
    settings.PROMOTER_REGISTRY_TIMEOUT = 0.5
    settings.PROMOTER_REGISTRY_RETRIES = 2
    push_image(hostport(a.url), unique_repo, "1.0", layers=2, tmp_path=tmp_path)
    # Manifests answer; every blob download stalls far longer than the read timeout.
    with FaultProxy(a.url, FaultPolicy(delay=30, match=r"^GET /v2/.+/blobs/sha256:")) as proxy:
        source, target = external("slowa", proxy.url), external("dstb", b.url)
        started = time.monotonic()
        promotion = request(source, target, unique_repo)
        elapsed = time.monotonic() - started

    promotion.refresh_from_db()
    assert promotion.status == "failed"
    assert f"Registry at {proxy.url} did not answer GET" in promotion.error
    assert "within 0.5s (timeout)" in promotion.error
    assert "The tag in dstb was not changed" in promotion.error
    # 2 attempts per blob × 0.5 s, blobs in parallel: seconds, not the proxy's 30 s stall.
    assert elapsed < 8, elapsed
    assert not Tag.objects.filter(repository__registry=target).exists()


def test_transient_errors_and_drops_are_retried_and_the_copy_is_digest_exact(
    hosts, unique_repo, tmp_path, settings
):
    a, b = hosts
    # 30 % of requests on both sides fail. With 8 tries a request fails for good with
    # probability 0.3**8 ≈ 7e-5: the test shows retries work, not luck.
    settings.PROMOTER_REGISTRY_RETRIES = 8
    info = push_image(
        hostport(a.url),
        unique_repo,
        "1.0",
        layers=2,
        layer_size=96 * 1024,
        platforms=["linux/amd64", "linux/arm64"],
        tmp_path=tmp_path,
    )
    flaky = FaultPolicy(error_rate=0.2, drop_rate=0.1, seed=11)
    with FaultProxy(a.url, flaky) as pa, FaultProxy(b.url, flaky) as pb:
        source, target = external("flakya", pa.url), external("flakyb", pb.url, validated=True)
        promotion = request(source, target, unique_repo)
        promotion.refresh_from_db()

        assert promotion.status == "succeeded", promotion.error
        injected = [pa.stats[k] + pb.stats[k] for k in ("drop", "error 502", "error 503")]
        assert injected[0] > 0 and injected[1] + injected[2] > 0, (pa.stats, pb.stats)
        # Uploads follow the registry's Location, rewritten to the proxy: faults hit them too.
        assert any(m == "PUT" and "/blobs/uploads/" in path for m, path, _ in pb.log)
    assert raw(b.url, unique_repo, "1.0") == raw(a.url, unique_repo, "1.0") == info.body
    assert Tag.objects.get(repository__registry=target).digest == info.digest
    assert HistoryEvent.objects.filter(action="promoted", repository=unique_repo).count() == 1


def test_persistent_errors_fail_cleanly_and_leave_the_target_tag(
    hosts, unique_repo, tmp_path, settings
):
    a, b = hosts
    old = push_image(hostport(a.url), unique_repo, "1.0", layers=1, tmp_path=tmp_path / "o")
    with FaultProxy(b.url) as pb:
        source, target = external("srca", a.url), external("brokenb", pb.url, validated=True)
        first = request(source, target, unique_repo)
        first.refresh_from_db()
        assert first.status == "succeeded", first.error
        assert Tag.objects.get(repository__registry=target).digest == old.digest
        new = push_image(hostport(a.url), unique_repo, "1.0", layers=3, tmp_path=tmp_path / "n")
        # Every manifest PUT at the target fails: blobs land, the tag must not move.
        pb.set_policy(FaultPolicy(error_rate=1.0, match=r"^PUT /v2/.+/manifests/"))
        failed = request(source, target, unique_repo)
        failed.refresh_from_db()

        assert failed.status == "failed"
        assert "HTTP 50" in failed.error and "The tag in brokenb was not changed" in failed.error
        assert failed.blobs_copied + failed.blobs_skipped == failed.blobs_total
        assert pb.stats["error 502"] + pb.stats["error 503"] == settings.PROMOTER_REGISTRY_RETRIES
        assert raw(b.url, unique_repo, "1.0") == old.body
        assert Tag.objects.get(repository__registry=target).digest == old.digest

        # Once the registry is healthy, running it again finishes the job.
        pb.set_policy(FaultPolicy())
        promotion_retry(promotion=failed, actor=admin())
        failed.refresh_from_db()
        assert failed.status == "succeeded", failed.error
    assert raw(b.url, unique_repo, "1.0") == new.body


# -- the worker is killed in the middle of a promotion -----------------------------------


class Worker:
    """`manage.py worker` (db_worker that survives database restarts) as a subprocess."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "manage.py"),
                "worker",
                "--queue-name",
                "*",
                "--interval",
                "0.2",
                "--no-startup-delay",
            ],
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL: no cleanup, no graceful shutdown; what an OOM kill or lost node does."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def workers(portal, transactional_db, settings) -> Iterator:
    """Factory: workers(**env) starts a real worker on the test database; all stop after."""
    settings.TASKS = DB_TASKS
    started: list[Worker] = []

    def start(**extra: str) -> Worker:
        started.append(Worker(worker_env(**extra)))
        return started[-1]

    yield start
    for worker in started:
        worker.stop()


@pytest.mark.slow
def test_worker_killed_mid_promotion_is_reclaimed_and_finished_by_a_fresh_worker(
    demo, hosts, workers, unique_repo, tmp_path, settings
):
    a, b = hosts
    settings.PROMOTER_STALE_SECONDS = 2  # this process runs reconcile
    info = push_image(hostport(a.url), unique_repo, "1.0", layers=6, tmp_path=tmp_path)
    # Each blob download waits 0.5 s: the copy takes seconds, so the kill lands mid-copy.
    slow = FaultPolicy(delay=0.5, match=r"^GET /v2/.+/blobs/sha256:")
    with FaultProxy(a.url, slow) as pa:
        source, target = external("slowa", pa.url), external("dstb", b.url, validated=True)
        env = {"PROMOTER_STALE_SECONDS": "2", "PROMOTER_COPY_PARALLELISM": "1"}
        first = workers(**env)
        promotion = request(source, target, unique_repo)

        def mid_copy() -> bool:
            promotion.refresh_from_db()
            return promotion.status == "running" and 1 <= promotion.blobs_copied < 6

        assert wait_for(mid_copy, timeout=20), (promotion.status, promotion.blobs_copied)
        first.kill()

        # Its heartbeat is fresh: reconcile leaves it alone for now.
        call_command("reconcile", "--promotions-only")
        promotion.refresh_from_db()
        assert promotion.status == "running"
        assert not Tag.objects.filter(repository__registry=target).exists()

        time.sleep(2.5)  # > PROMOTER_STALE_SECONDS without a heartbeat
        workers(**env)
        call_command("reconcile", "--promotions-only")
        call_command("reconcile", "--promotions-only")  # again: harmless

        def finished() -> bool:
            promotion.refresh_from_db()
            return promotion.is_finished

        assert wait_for(finished, timeout=30), promotion.status
    assert promotion.status == "succeeded", promotion.error
    assert promotion.attempts == 2
    assert promotion.blobs_skipped >= 1  # the blobs copied before the kill were kept
    assert raw(b.url, unique_repo, "1.0") == info.body
    assert HistoryEvent.objects.filter(action="promoted", repository=unique_repo).count() == 1


# -- lost notifications ------------------------------------------------------------------


def test_reconcile_restores_the_index_after_lost_notifications(demo, pushed, admin_creds, tmp_path):
    repo, info = pushed
    wait_for(lambda: Tag.objects.filter(repository__name=repo).exists(), timeout=5)
    second = push_image(
        demo.hostport, f"devdocker/{repo}", "2.0", layers=1, creds=admin_creds, tmp_path=tmp_path
    )
    wait_for(lambda: Tag.objects.filter(repository__name=repo, name="2.0").exists(), timeout=5)
    # The events were lost (portal down, registry restarted): the index knows nothing.
    Repository.objects.filter(registry__name="devdocker", name=repo).delete()
    assert not Tag.objects.filter(repository__name=repo).exists()

    call_command("reconcile", "devdocker")

    tags = dict(
        Tag.objects.filter(
            repository__registry__name="devdocker", repository__name=repo
        ).values_list("name", "digest")
    )
    assert tags == {"1.0": info.digest, "2.0": second.digest}


# -- the database restarts ---------------------------------------------------------------


def test_web_and_worker_recover_from_a_database_restart(
    demo, pushed, workers, admin_creds, postgres_server
):
    repo, info = pushed
    worker = workers()
    auth = tuple(admin_creds.split(":", 1))
    assert requests.get(f"{demo.url}/healthz", timeout=10).status_code == 200

    while_down: list[requests.Response] = []
    # Down for 2 s: the worker's 0.2 s poll loop meets refused connections many times.
    postgres_server.restart(
        down_for=2,
        during=lambda: while_down.append(requests.get(f"{demo.url}/healthz", timeout=10)),
    )
    connection.close()  # this test's own connection died with the server

    assert while_down[0].status_code == 503  # an answer naming the problem, not a hang
    assert while_down[0].json()["database"].startswith("down")

    health = requests.get(f"{demo.url}/healthz", timeout=10)
    assert health.status_code == 200, health.text
    page = requests.get(f"{demo.url}/registries/devdocker/", auth=auth, timeout=10)
    assert page.status_code == 200
    assert worker.proc.poll() is None, "the worker exited on the database restart"

    promotion = request(
        Registry.objects.get(name="devdocker"), Registry.objects.get(name="rcdocker"), repo
    )

    def finished() -> bool:
        promotion.refresh_from_db()
        return promotion.is_finished

    assert wait_for(finished, timeout=30), promotion.status
    assert promotion.status == "succeeded", promotion.error
    assert (
        Tag.objects.get(repository__registry__name="rcdocker", repository__name=repo).digest
        == info.digest
    )


# -- make run supervises its processes ---------------------------------------------------


@pytest.mark.e2e
@pytest.mark.slow
def test_make_run_restarts_a_killed_worker(tmp_path):
    from tests.support.runner import Run, _descendants

    def workers_of(run: Run) -> list[int]:
        found = []
        for pid in _descendants(run.proc.pid):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"worker" in argv and any(a.endswith(b"manage.py") for a in argv):
                found.append(pid)
        return found

    run = Run(tmp_path / "data")
    try:
        run.wait_healthy()
        before = wait_for(lambda: workers_of(run), timeout=10)
        assert len(before) == 1
        os.kill(before[0], signal.SIGKILL)
        after = wait_for(lambda: [p for p in workers_of(run) if p not in before], timeout=15)
        assert after, "run_promoter did not restart the worker"
        assert run.proc.poll() is None
    finally:
        assert run.stop() == []
