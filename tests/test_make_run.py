"""`make run`'s supervisor end to end: up on fresh data, a push shows within 2 s, Ctrl-C
leaves no process behind, and a restart on the same data loses nothing."""

from __future__ import annotations

import time

import pytest
import requests

from tests.support.images import push_image
from tests.support.runner import PASSWORD, Run


@pytest.mark.e2e
@pytest.mark.slow
def test_run_serves_the_demo_shows_a_push_within_two_seconds_and_stops_cleanly(tmp_path):
    data = tmp_path / "data"
    run = Run(data)
    try:
        run.wait_healthy()
        home = requests.get(run.url + "/", auth=("Admin", PASSWORD), timeout=5)
        for name in ("devdocker", "rcdocker", "proddocker"):
            assert name in home.text
        info = push_image(
            f"localhost:{run.registry}",
            "devdocker/demo/app",
            "1.0",
            creds=f"Admin:{PASSWORD}",
            tmp_path=tmp_path / "img",
        )
        pushed_at = time.monotonic()
        page_url = run.url + "/registries/devdocker/images/demo/app:1.0"
        while True:
            page = requests.get(page_url, auth=("Admin", PASSWORD), timeout=5)
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
        page = requests.get(
            again.url + "/registries/devdocker/images/demo/app:1.0",
            auth=("Admin", PASSWORD),
            timeout=5,
        )
        assert page.status_code == 200 and info.digest in page.text
    finally:
        assert again.stop() == []
