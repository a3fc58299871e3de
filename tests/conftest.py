"""Fixtures: the settings every test starts from, the make-run data (`demo_db`), and the
portal live on a loopback port over a real registry with token auth (`portal`, `demo`).

Markers (declared in pyproject, all run by `make test`): `e2e` is added here to every test
that uses a live server, a real registry or the real worker; `browser` to every test that
drives Chromium; `slow` is set by hand on tests that take more than about 5 seconds.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from tests.support.accounts import PASSWORD, user_with
from tests.support.images import push_image
from tests.support.inflight import InFlight
from tests.support.net import free_port
from tests.support.runner import worker_env
from tests.support.wait import wait_for

# One Chromium per test process (browser, page fixtures; login, screenshot helpers).
pytest_plugins = ["tests.browser_support"]

# Re-exported: tests import these from here (new code: from tests.support…).
__all__ = ["PASSWORD", "user_with", "wait_for"]

ROOT = Path(__file__).resolve().parent.parent

# Fixtures whose use makes a test end-to-end: a live server, a real registry, a real worker.
E2E_FIXTURES = {
    "live_server",
    "portal",
    "registry",
    "token_registry",
    "fresh_registry",
    "real_worker",
}
BROWSER_FIXTURES = {"browser", "page"}

IMMEDIATE_TASKS = {
    "default": {
        "BACKEND": "django.tasks.backends.immediate.ImmediateBackend",
        "QUEUES": ["default", "promotions", "webhooks"],
    }
}
DATABASE_TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default", "promotions", "webhooks"],
    }
}


def pytest_collection_modifyitems(items):
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & E2E_FIXTURES:
            item.add_marker(pytest.mark.e2e)
        if used & BROWSER_FIXTURES:
            item.add_marker(pytest.mark.browser)
    # Slow tests first (otherwise in order): under xdist they start early on different
    # workers instead of one of them finishing alone while the others idle.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session", autouse=True)
def suite_settings():
    """What the suite changes in the settings, for the whole session (undone at its end).

    - TASKS: an enqueued promotion runs at once in the caller's thread (ImmediateBackend),
      so a test, or the live server answering the API, sees it finished. The settings'
      default is the database backend `make run` uses; `real_worker` switches back to it and
      runs the real worker process, `queued_only` makes promotions wait for the test.
    - PASSWORD_HASHERS: PBKDF2 on every token request makes each skopeo push seconds
      slower; tests use MD5.
    - PROMOTER_REGISTRY_URL/HOST: a closed port (nothing may listen on 9 without root), so a
      test that forgot the `portal` fixture fails instead of reaching a developer's registry
      on the default port 5000.
    """
    from django.conf import settings
    from django.test import override_settings

    if not settings.configured:  # `-p no:django` (tests/registries/oci): nothing to change
        yield
        return
    override = override_settings(
        TASKS=IMMEDIATE_TASKS,
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        PROMOTER_REGISTRY_URL="http://127.0.0.1:9",
        PROMOTER_REGISTRY_HOST="127.0.0.1:9",
    )
    override.enable()
    yield
    override.disable()


@pytest.fixture(scope="session")
def portal(live_server, tmp_path_factory):
    """The bundled registry (token auth + notifications to the live portal), wired into settings."""
    from django.test import override_settings

    from registries.bundled import BackingRegistry, write_bundled_registry_config

    port = free_port()
    root = tmp_path_factory.mktemp("bundled-registry")
    config = write_bundled_registry_config(
        root / "config.json",
        port=port,
        storage_dir=root / "storage",
        notify_base=live_server.url,
        realm_base=live_server.url,
    )
    registry = BackingRegistry(config, port=port)
    registry.start()
    in_flight = InFlight()
    in_flight.connect()
    wired = override_settings(
        PROMOTER_REGISTRY_URL=registry.url, PROMOTER_REGISTRY_HOST=f"127.0.0.1:{port}"
    )
    wired.enable()
    try:
        yield Portal(
            url=live_server.url,
            registry=registry,
            hostport=f"127.0.0.1:{port}",
            in_flight=in_flight,
        )
    finally:
        wired.disable()
        registry.stop()


class Portal:
    def __init__(self, *, url: str, registry, hostport: str, in_flight: InFlight) -> None:
        self.url = url
        self.registry = registry
        self.hostport = hostport
        self.in_flight = in_flight  # requests the live server is answering now

    def ref(self, registry: str, repository: str, tag: str) -> str:
        """docker:// reference for skopeo."""
        return f"docker://{self.hostport}/{registry}/{repository}:{tag}"


@pytest.fixture
def fresh_registry(tmp_path_factory):
    """Factory: fresh_registry() starts a real plain registry (no auth, no notifications) on a
    free port, for this test only; every one started is stopped after the test."""
    from tests.support.registry import start_registry

    started = []

    def start():
        started.append(start_registry(tmp_path_factory.mktemp("registry")))
        return started[-1]

    yield start
    for backing in started:
        backing.stop()


@pytest.fixture
def demo_db(db):
    """The make-run data only: built-in tasks, Admin (password PASSWORD) and
    devdocker → rcdocker → proddocker. No registry, no live server."""
    from registries.bootstrap import admin_ensure, demo_ensure, tasks_ensure

    tasks_ensure()
    admin_ensure(PASSWORD)
    # Without the demo's "Require a comment" on rc and prod: most tests promote without
    # one. The pipeline tests (tests/registries/test_pipeline*.py) turn it on.
    demo_ensure(require_comments=False)


@pytest.fixture
def demo(demo_db, portal, transactional_db):
    """`demo_db` committed, with the live portal over the bundled registry; returns the Portal."""
    yield portal
    # The registry's notifications reach the live server a moment after the push or delete
    # that caused them. One still being answered when the test's database is flushed can
    # deadlock with the flush's TRUNCATE, which then leaves this test's rows to the next
    # test. Let the requests in flight finish first (flushed after this teardown).
    portal.in_flight.wait_idle(timeout=15)


@pytest.fixture
def admin_creds() -> str:
    return f"Admin:{PASSWORD}"


@pytest.fixture
def unique_repo() -> str:
    """A repository name no other test uses (the registry outlives each test's database)."""
    return f"team/app-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def pushed(demo, admin_creds, unique_repo, tmp_path):
    """Push a fresh single-arch image into devdocker as Admin; returns (repository, ImageInfo)."""
    info = push_image(
        demo.hostport,
        f"devdocker/{unique_repo}",
        "1.0",
        layers=2,
        layer_size=4096,
        creds=admin_creds,
        tmp_path=tmp_path,
    )
    return unique_repo, info


@pytest.fixture
def queued_only(settings):
    """Promotions are queued and nobody runs them (tests call promotion_execute themselves)."""
    settings.TASKS = {
        "default": {
            "BACKEND": "django.tasks.backends.dummy.DummyBackend",
            "QUEUES": ["default", "promotions", "webhooks"],
        }
    }


@pytest.fixture
def real_worker(portal, transactional_db, settings):
    """The real django-tasks-db worker in its own process, on the test database.

    Promotions go through the database queue (as in production) instead of running in the
    caller's thread: this fixture sets TASKS back to the database backend for its test.
    """
    settings.TASKS = DATABASE_TASKS
    proc = subprocess.Popen(
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
        env=worker_env(),
        cwd=ROOT,
        start_new_session=True,
    )
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def signed_in(url: str, username: str = "Admin", password: str = PASSWORD) -> requests.Session:
    """A requests session signed in through the login page (pages ignore Basic auth)."""
    session = requests.Session()
    session.get(f"{url}/accounts/login/", timeout=30)
    answer = session.post(
        f"{url}/accounts/login/",
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        timeout=30,
    )
    assert answer.ok and "sessionid" in session.cookies, answer.status_code
    return session


def http(portal, method: str, path: str, **kwargs) -> requests.Response:
    kwargs.setdefault("timeout", 30)
    return requests.request(method, portal.url + path, **kwargs)
