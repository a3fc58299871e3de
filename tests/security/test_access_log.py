"""Issue 11: `?key=` reached gunicorn's access log. The real gunicorn, the real log file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_query_keys_never_reach_the_access_log(demo, tmp_path, settings):
    from django.db import connection

    db = connection.settings_dict
    port = free_port()
    log = tmp_path / "access.log"
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "PROMOTER_DATA_DIR": str(settings.DATA_DIR),
        "PROMOTER_REGISTRY_URL": settings.PROMOTER_REGISTRY_URL,
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    server = subprocess.Popen(
        [
            str(gunicorn),
            "promoter.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--access-logfile",
            str(log),
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/healthz", timeout=5).ok:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
        api = requests.get(f"{url}/api/management/feeds/list?key=pk_SECRETAPI1", timeout=30)
        assert api.status_code == 403  # not a key: refused, and still not logged
        requests.get(f"{url}/registries/?q=x&key=pk_SECRETPAGE2", timeout=30)
        requests.get(f"{url}/?api_key=pk_SECRET3&page=1", timeout=30)
        requests.get(f"{url}/healthz", headers={"Referer": f"{url}/?key=pk_SECRET4"}, timeout=30)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)

    text = log.read_text()
    assert "/api/management/feeds/list?key=[redacted]" in text
    assert "q=x&key=[redacted]" in text and "page=1" in text
    for secret in ("pk_SECRETAPI1", "pk_SECRETPAGE2", "pk_SECRET3", "pk_SECRET4"):
        assert secret not in text
