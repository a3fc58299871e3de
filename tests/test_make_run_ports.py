"""`make run` on any port: nothing says 8000 unless the portal listens there.

The supervisor (`manage.py run_promoter`, what `make run` starts) is given random free
ports for web and registry and no PROMOTER_PUBLIC_URL: the URL it prints is where it
listens, the registry's token realm points there, and a real `skopeo copy` with Admin's
credentials into devdocker works.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.support.images import make_oci_layout, skopeo_inspect_raw
from tests.support.net import free_port
from tests.support.runner import PASSWORD, ROOT, _alive, _descendants


def _start(data: Path, web: int, registry: int) -> tuple[subprocess.Popen, Path]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "PROMOTER_TASKS_BACKEND", "PROMOTER_PUBLIC_URL"}
        and not k.startswith(("PROMOTER_REGISTRY_", "PROMOTER_ALLOWED_HOSTS"))
    }
    env.update(
        PROMOTER_DATA_DIR=str(data),
        PROMOTER_PORT=str(web),
        PROMOTER_REGISTRY_PORT=str(registry),
        PROMOTER_ADMIN_PASSWORD=PASSWORD,
        PROMOTER_WEB_WORKERS="1",
    )
    data.mkdir(parents=True, exist_ok=True)
    log = data.parent / f"run-{web}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "run_promoter"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc, log


def _wait_for_line(proc: subprocess.Popen, log: Path, pattern: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if match := re.search(pattern, text):
            return match.group(1)
        assert proc.poll() is None, f"run_promoter exited:\n{text[-3000:]}"
        time.sleep(0.3)
    raise AssertionError(f"no {pattern!r} in the output:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> list[int]:
    family = _descendants(proc.pid)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in family):
        time.sleep(0.2)
    return [p for p in family if _alive(p)]


@pytest.mark.e2e
@pytest.mark.slow
def test_run_on_random_ports_prints_where_it_listens_and_skopeo_pushes(tmp_path):
    web, registry_port = free_port(), free_port()
    while registry_port == web:
        registry_port = free_port()
    data = tmp_path / "data"
    proc, log = _start(data, web, registry_port)
    try:
        printed = _wait_for_line(proc, log, r"Promoter is up: (\S+)")
        assert printed == f"http://127.0.0.1:{web}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(printed + "/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.3)
        config = json.loads((data / "registry.json").read_text())
        assert config["auth"]["token"]["realm"] == f"{printed}/auth/token"
        assert config["http"]["addr"] == f"127.0.0.1:{registry_port}"

        info = make_oci_layout(tmp_path / "layout", tag="1.0")
        target = f"docker://localhost:{registry_port}/devdocker/demo/ports:1.0"
        pushed = subprocess.run(
            [
                "skopeo",
                "copy",
                "--quiet",
                "--preserve-digests",
                "--dest-tls-verify=false",
                "--dest-creds",
                f"Admin:{PASSWORD}",
                f"oci:{tmp_path / 'layout'}:1.0",
                target,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert pushed.returncode == 0, pushed.stderr
        raw = skopeo_inspect_raw(target, creds=f"Admin:{PASSWORD}")
        assert raw == info.body
    finally:
        leftovers = _stop(proc)
    assert leftovers == [], f"processes left behind after Ctrl-C: {leftovers}"
