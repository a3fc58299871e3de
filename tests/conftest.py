"""Fixtures: the portal live on a loopback port over a real registry with token auth."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.support.images import push_image
from tests.support.net import free_port

# One Chromium for the whole session (browser, page fixtures; login, screenshot helpers).
pytest_plugins = ["tests.browser_support"]

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session", autouse=True)
def fast_password_hashing():
    """PBKDF2 on every token request makes each skopeo push seconds slower; tests use MD5."""
    from django.test import override_settings

    override = override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
    override.enable()
    yield
    override.disable()


@pytest.fixture(scope="session")
def portal(live_server, tmp_path_factory):
    """The bundled registry (token auth + notifications to the live portal), wired into settings."""
    from django.conf import settings

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
    settings.PROMOTER_REGISTRY_URL = registry.url
    settings.PROMOTER_REGISTRY_HOST = f"127.0.0.1:{port}"
    try:
        yield Portal(url=live_server.url, registry=registry, hostport=f"127.0.0.1:{port}")
    finally:
        registry.stop()


class Portal:
    def __init__(self, *, url: str, registry, hostport: str) -> None:
        self.url = url
        self.registry = registry
        self.hostport = hostport

    def ref(self, registry: str, repository: str, tag: str) -> str:
        """docker:// reference for skopeo."""
        return f"docker://{self.hostport}/{registry}/{repository}:{tag}"


@pytest.fixture
def demo(portal, transactional_db):
    """Built-in tasks, Admin, and devdocker → rcdocker → proddocker (the make-run setup)."""
    from registries.bootstrap import admin_ensure, demo_ensure, tasks_ensure

    tasks_ensure()
    admin_ensure(PASSWORD)
    demo_ensure()
    return portal


@pytest.fixture
def admin_creds() -> str:
    return f"Admin:{PASSWORD}"


@pytest.fixture
def unique_repo() -> str:
    """A repository name no other test uses (the registry outlives each test's database)."""
    return f"team/app-{uuid.uuid4().hex[:10]}"


def user_with(
    task: str | None = None,
    *,
    registry: str | None = None,
    username: str | None = None,
    restrict: bool = False,
):
    """A user (password PASSWORD) holding `task` on one registry or all."""
    from django.contrib.auth import get_user_model

    from accounts.models import Privilege, Task
    from registries.models import Registry

    username = username or f"user-{uuid.uuid4().hex[:8]}"
    users = get_user_model()
    user = users.objects.filter(username=username).first() or users.objects.create_user(
        username, password=PASSWORD
    )
    if task:
        Privilege.objects.create(
            task=Task.objects.get(name=task),
            user=user,
            registry=Registry.objects.get(name=registry) if registry else None,
            effect=Privilege.Effect.RESTRICT if restrict else Privilege.Effect.GRANT,
        )
    return user


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.1):
    """Poll `predicate` until truthy (bounded); returns its last value."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    return value


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
            "QUEUES": ["default", "promotions"],
        }
    }


@pytest.fixture
def real_worker(portal, transactional_db, settings):
    """The real django-tasks-db worker in its own process, on the test database."""
    from django.db import connection

    settings.TASKS = {
        "default": {
            "BACKEND": "django_tasks_db.DatabaseBackend",
            "QUEUES": ["default", "promotions"],
        }
    }
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "PROMOTER_TASKS_BACKEND": "django_tasks_db.DatabaseBackend",
        "PROMOTER_REGISTRY_URL": settings.PROMOTER_REGISTRY_URL,
        "PROMOTER_REGISTRY_HOST": settings.PROMOTER_REGISTRY_HOST,
        "PROMOTER_DATA_DIR": str(settings.DATA_DIR),
    }
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [
            sys.executable,
            str(root / "manage.py"),
            "worker",
            "--queue-name",
            "*",
            "--interval",
            "0.2",
            "--no-startup-delay",
        ],
        env=env,
        cwd=root,
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
