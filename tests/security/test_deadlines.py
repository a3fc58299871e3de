"""Issue 11, item 7: a registry trickling its headers (one byte every half second) hung web
threads forever, because requests' timeout bounds each read, not a call. Every call now
has a wall-clock deadline, and inside a web request a short one with a single try."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import requests

from registries.models import Promotion, Registry
from registries.runner import promotion_execute
from registries.services.promotions import promotion_request
from tests.conftest import PASSWORD
from tests.security.conftest import admin, external, repo_name, small_image


def test_trickled_headers_never_hold_web_threads(demo, hostile, settings):
    settings.PROMOTER_WEB_REGISTRY_DEADLINE = 2
    repo = repo_name()
    small_image(hostile, repo)
    hostile.trickle_headers = 0.5  # a 200-byte header block would take 100 s
    external("slow", hostile.url)
    body = {"packageName": repo, "version": "1.0", "fromFeed": "slow", "toFeed": "devdocker"}

    def promote() -> tuple[int, str, float]:
        started = time.monotonic()
        answer = requests.post(
            f"{demo.url}/api/promotions/promote?async=true",
            json=body,
            auth=("Admin", PASSWORD),
            timeout=60,
        )
        return answer.status_code, answer.text, time.monotonic() - started

    with ThreadPoolExecutor(max_workers=8) as pool:
        calls = [pool.submit(promote) for _ in range(8)]
        time.sleep(0.5)  # all eight are now waiting on the hostile registry
        health = requests.get(f"{demo.url}/healthz", timeout=10)
        answers = [call.result(timeout=60) for call in calls]

    assert health.status_code == 200
    for status, text, seconds in answers:
        assert status == 400, text
        assert "within 2s (timeout)" in text
        assert seconds < 15, seconds  # deadline 2 s, one try: bounded, not 100 s or forever
    assert not Promotion.objects.filter(source__name="slow").exists()


def test_the_worker_gives_up_on_a_trickling_registry(demo, hostile, settings, queued_only):
    settings.PROMOTER_REGISTRY_DEADLINE = 2
    settings.PROMOTER_REGISTRY_BACKOFF = 0.01
    repo = repo_name()
    small_image(hostile, repo)
    promotion = promotion_request(
        source=external("slow", hostile.url),
        repository=repo,
        tag="1.0",
        target=Registry.objects.get(name="devdocker"),
        actor=admin(),
    )
    hostile.trickle_headers = 0.5  # from now on

    started = time.monotonic()
    promotion = promotion_execute(promotion_id=promotion.pk)

    assert promotion.status == "failed"
    assert "within 2s (timeout)" in promotion.error
    assert time.monotonic() - started < 30  # 3 tries of 2 s each, bounded
