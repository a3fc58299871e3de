"""`make run`'s supervisor end to end: up on fresh data, a push shows within 2 s, Ctrl-C
leaves no process behind, and a restart on the same data loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.support.images import push_image
from tests.support.net import free_port

ROOT = Path(__file__).resolve().parent.parent


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


class Run:
    def __init__(self, data: Path) -> None:
        self.web, self.registry = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.web}"
        env = {k: v for k, v in os.environ.items()
               if k not in {"DATABASE_URL", "PROMOTER_TASKS_BACKEND"}}
        env.update(PROMOTER_DATA_DIR=str(data), PROMOTER_PORT=str(self.web),
                   PROMOTER_REGISTRY_PORT=str(self.registry), PROMOTER_PUBLIC_URL=self.url,
                   PROMOTER_ADMIN_PASSWORD="run-test-password", PROMOTER_WEB_WORKERS="1")
        self.log = open(data.parent / f"run-{self.web}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "manage.py", "run_promoter"], cwd=ROOT,
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)

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
        raise AssertionError("run_promoter did not become healthy: "
                             + Path(self.log.name).read_text()[-3000:])

    def stop(self) -> list[int]:
        family = _descendants(self.proc.pid)
        self.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        self.proc.wait(timeout=30)
        self.log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in family):
            time.sleep(0.2)
        return [p for p in family if _alive(p)]


def test_run_serves_the_demo_shows_a_push_within_two_seconds_and_stops_cleanly(tmp_path):
    data = tmp_path / "data"
    run = Run(data)
    try:
        run.wait_healthy()
        home = requests.get(run.url + "/", auth=("Admin", "run-test-password"), timeout=5)
        for name in ("devdocker", "rcdocker", "proddocker"):
            assert name in home.text
        info = push_image(f"localhost:{run.registry}", "devdocker/demo/app", "1.0",
                          creds="Admin:run-test-password", tmp_path=tmp_path / "img")
        pushed_at = time.monotonic()
        page_url = run.url + "/registries/devdocker/images/demo/app:1.0"
        while True:
            page = requests.get(page_url, auth=("Admin", "run-test-password"), timeout=5)
            if page.status_code == 200 or time.monotonic() - pushed_at > 2:
                break
            time.sleep(0.1)
        assert page.status_code == 200, "the pushed tag was not on its page within 2 seconds"
        assert info.digest in page.text
    finally:
        leftovers = run.stop()
    assert leftovers == [], f"processes left behind after Ctrl-C: {leftovers}"

    # Start again on the same data: nothing lost.
    again = Run(data)
    try:
        again.wait_healthy()
        page = requests.get(again.url + "/registries/devdocker/images/demo/app:1.0",
                            auth=("Admin", "run-test-password"), timeout=5)
        assert page.status_code == 200 and info.digest in page.text
    finally:
        assert again.stop() == []


