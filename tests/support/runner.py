"""Subprocesses of the suite: `manage.py run_promoter` (what `make run` starts) on free
ports, and the environment of a `manage.py worker` on the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support.net import free_port

PASSWORD = "run-test-password"
ROOT = Path(__file__).resolve().parent.parent.parent


def _children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(proc.name))
    return found


def _descendants(pid: int) -> list[int]:
    todo, seen = [pid], []
    while todo:
        for child in _children(todo.pop()):
            seen.append(child)
            todo.append(child)
    return seen


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def worker_env(**extra: str) -> dict[str, str]:
    """Environment for a `manage.py worker` process on this test process's database,
    registry and data dir, with the database task backend (what production runs)."""
    from django.conf import settings
    from django.db import connection

    db = connection.settings_dict
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "PROMOTER_TASKS_BACKEND": "django_tasks_db.DatabaseBackend",
        "PROMOTER_REGISTRY_URL": settings.PROMOTER_REGISTRY_URL,
        "PROMOTER_REGISTRY_HOST": settings.PROMOTER_REGISTRY_HOST,
        "PROMOTER_DATA_DIR": str(settings.DATA_DIR),
        **extra,
    }


class Run:
    def __init__(self, data: Path, *, web_workers: int = 1, extra_env: dict | None = None) -> None:
        self.web, self.registry = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.web}"
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"DATABASE_URL", "PROMOTER_TASKS_BACKEND"}
        }
        env.update(
            PROMOTER_DATA_DIR=str(data),
            PROMOTER_PORT=str(self.web),
            PROMOTER_REGISTRY_PORT=str(self.registry),
            PROMOTER_PUBLIC_URL=self.url,
            PROMOTER_ADMIN_PASSWORD=PASSWORD,
            PROMOTER_WEB_WORKERS=str(web_workers),
        )
        env.update(extra_env or {})
        data.mkdir(parents=True, exist_ok=True)
        self.log = open(data.parent / f"run-{self.web}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "run_promoter"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, Path(self.log.name).read_text()[-3000:]
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise AssertionError(
            "run_promoter did not become healthy: " + Path(self.log.name).read_text()[-3000:]
        )

    def stop(self) -> list[int]:
        family = _descendants(self.proc.pid)
        self.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        self.proc.wait(timeout=30)
        self.log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in family):
            time.sleep(0.2)
        return [p for p in family if _alive(p)]


class Gunicorn:
    """Promoter under gunicorn (as `make run` and the image run it) on this test process's
    database and registry; `extra_env` e.g. the task backend. Stop it with stop()."""

    def __init__(self, log_dir: Path, **extra_env: str) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = worker_env(PROMOTER_DB_CONN_MAX_AGE="0", **extra_env)
        self.log = Path(log_dir) / f"gunicorn-{port}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "promoter.wsgi",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    "1",
                    "--threads",
                    "4",
                    "--timeout",
                    "120",
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                if requests.get(self.url + "/api/openapi.json", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError("gunicorn did not start: " + self.log.read_text()[-3000:])
            time.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
