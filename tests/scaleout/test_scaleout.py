"""Promoter on many machines: two webs, two workers, two registries on one S3 bucket.

Every node is a separate process with its own data dir, on one PostgreSQL database;
the registries share a bucket on moto's S3 server. See tests/scaleout/topology.py.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import pytest
import requests

from tests.scaleout.topology import (
    ROOT,
    HealthSampler,
    Topology,
    promote,
    push_tags,
    wait_until,
)
from tests.support.registry import start_registry

pytestmark = pytest.mark.scaleout

IMAGES = 10
TAGS_PER_IMAGE = 5  # 50 promotions
STALE_SECONDS = 6.0


@pytest.fixture(scope="module")
def topology(tmp_path_factory):
    """The scale-out deployment, on a database of the test session's PostgreSQL server."""
    server = os.environ["DATABASE_URL"]
    assert urlparse(server).scheme.startswith("postgres"), "the scale-out test needs PostgreSQL"
    deployment = Topology(
        root=tmp_path_factory.mktemp("scaleout"),
        server_url=server,
        stale_seconds=STALE_SECONDS,
        sync_interval=20,
    )
    try:
        deployment.start()
    except BaseException:
        print(deployment.logs())
        deployment.stop()
        raise
    yield deployment
    deployment.stop()


def _indexed_on(web, api_key: str, repository: str, tag: str) -> bool:
    """True when `web` shows the tag's page (404 while the index does not have it)."""
    tag_page = requests.get(
        f"{web.url}/registries/devdocker/images/{repository}:{tag}",
        headers={"X-ApiKey": api_key},
        timeout=30,
    )
    return tag_page.status_code == 200


def _running_on(topology: Topology, worker: str) -> int | None:
    rows = topology.sql(
        "SELECT p.id FROM django_tasks_database_dbtaskresult t "
        "JOIN registries_promotion p "
        "ON p.id = (t.args_kwargs->'kwargs'->>'promotion_id')::bigint "
        "WHERE t.status = 'RUNNING' AND t.worker_ids->>-1 = %s AND p.status = 'running'",
        (worker,),
    )
    return rows[0][0] if rows else None


def test_many_machines_promote_every_image_once_through_a_worker_crash(topology, tmp_path):
    web_a, web_b = topology.web_nodes
    pushed = push_tags(topology, tmp_path, images=IMAGES, tags_per_image=TAGS_PER_IMAGE)

    # Pushed through registry A (which notifies web A): web B shows them (one database).
    for repository, tag in pushed:
        wait_until(
            lambda r=repository, t=tag: _indexed_on(web_b, topology.api_key, r, t),
            timeout=30,
            what=f"devdocker/{repository}:{tag} shown by web B",
        )

    sampler = HealthSampler(web_b.url, topology.root).start()
    victim = topology.worker_nodes[0]
    killed: dict = {}

    def kill_mid_promotion() -> None:
        # SIGKILL worker-0 while it runs a promotion (bounded: the run lasts ~a minute).
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and victim.proc.alive:
            promotion_id = _running_on(topology, victim.name)
            if promotion_id is not None:
                victim.proc.kill()
                killed.update(id=promotion_id, at=time.time())
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_mid_promotion, daemon=True)
    killer.start()
    orders = sorted(pushed)
    with ThreadPoolExecutor(max_workers=len(orders)) as pool:
        futures = [
            pool.submit(
                promote,
                (web_a, web_b)[i % 2],
                topology.api_key,
                repository,
                tag,
                timeout=900,  # bounded; generous for a loaded machine (moto is slow)
            )
            for i, (repository, tag) in enumerate(orders)
        ]
        results = [future.result() for future in futures]
    killer.join(timeout=130)
    latencies, failures = sampler.finish()

    logs = topology.logs()
    p95 = statistics.quantiles(latencies, n=20)[-1] if len(latencies) > 1 else 0
    print(f"/healthz on web B: {len(latencies)} samples, p95 {p95 * 1000:.0f} ms")
    assert killed, "worker-0 never ran a promotion to be killed in\n" + logs
    assert [r["status"] for r in results] == ["succeeded"] * len(orders), (results, logs)
    # Some calls waited to the end (200), the rest were told where to look (202).
    assert {r["http_status"] for r in results} <= {200, 202}

    # Exactly once: 50 promotions succeeded, one Promoted event each, no task left RUNNING.
    assert topology.sql("SELECT status, count(*) FROM registries_promotion GROUP BY status") == [
        ("succeeded", len(orders))
    ]
    per_promotion = topology.sql(
        "SELECT promotion_id, count(*) FROM registries_historyevent "
        "WHERE action = 'promoted' GROUP BY promotion_id"
    )
    assert len(per_promotion) == len(orders) and {n for _, n in per_promotion} == {1}
    assert topology.sql(
        "SELECT count(*) FROM django_tasks_database_dbtaskresult "
        "WHERE status IN ('RUNNING', 'READY')"
    ) == [(0,)]

    # The killed worker's promotion was reclaimed by the other worker, by itself.
    attempts, finished = topology.sql(
        "SELECT attempts, extract(epoch FROM finished_at) FROM registries_promotion WHERE id = %s",
        (killed["id"],),
    )[0]
    assert attempts >= 2
    # Within the stale timeout plus a generous copy time (a bound on recovery, not speed).
    assert float(finished) - killed["at"] < STALE_SECONDS + 60
    lost = topology.sql(
        "SELECT status, exception_class_path FROM django_tasks_database_dbtaskresult "
        "WHERE worker_ids->>-1 = %s AND (args_kwargs->'kwargs'->>'promotion_id')::bigint = %s",
        (victim.name, killed["id"]),
    )
    assert lost == [("FAILED", "registries.runner.WorkerLost")]

    # Every digest is the pushed one, pulled through registry B (the other replica).
    registry_b = topology.registry_urls[1]
    for repository, tag in orders:
        at_b = topology.digest_at(registry_b, web_b, f"rcdocker/{repository}", tag)
        assert at_b == pushed[(repository, tag)], (repository, tag)

    # Liveness stayed fast while 50 synchronous promotions waited on the webs.
    assert len(latencies) >= 20, "too few health samples"
    assert not failures, failures[:5]
    assert p95 < 0.2, f"/healthz p95 {p95 * 1000:.0f} ms on web B during the run"


def test_two_syncs_at_once_record_each_found_tag_once(topology):
    node_a, node_b = topology.web_nodes
    before = topology.sql("SELECT count(*) FROM registries_tag")[0][0]
    assert before > 0, "runs after the promotion test, on its images"
    # Lost notifications: five tags the registry has are missing from the index.
    lost = topology.sql(
        "DELETE FROM registries_tag WHERE id IN (SELECT t.id FROM registries_tag t "
        "JOIN registries_repository r ON r.id = t.repository_id "
        "JOIN registries_registry g ON g.id = r.registry_id "
        "WHERE g.name = 'devdocker' ORDER BY t.id LIMIT 5) RETURNING name"
    )
    assert len(lost) == 5
    events_before = topology.sql("SELECT count(*) FROM registries_historyevent")[0][0]

    syncs = [
        subprocess.Popen(
            [sys.executable, "manage.py", "sync_registries"],
            cwd=ROOT,
            env=node.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for node in (node_a, node_b)
    ]
    outputs = [sync.communicate(timeout=300)[0] for sync in syncs]

    assert topology.sql("SELECT count(*) FROM registries_tag")[0][0] == before, outputs
    found = topology.sql(
        "SELECT registry, repository, tag, count(*) FROM registries_historyevent "
        "WHERE comment = 'found by sync' GROUP BY registry, repository, tag"
    )
    assert len(found) == 5 and {n for *_, n in found} == {1}, (found, outputs)
    new_events = topology.sql("SELECT count(*) FROM registries_historyevent")[0][0]
    assert new_events - events_before == 5, outputs
    assert topology.sql(
        "SELECT count(*) FROM registries_historyevent WHERE action = 'deleted'"
    ) == [(0,)]


def test_a_node_with_its_own_empty_registry_deletes_nothing(topology, tmp_path):
    own = start_registry(tmp_path / "own-registry")  # a second `make run` node's registry
    try:
        tags = topology.sql("SELECT count(*) FROM registries_tag")[0][0]
        env = {
            **topology.web_nodes[0].env,
            "PROMOTER_REGISTRY_URL": own.url,
            "PROMOTER_DATA_DIR": str(tmp_path / "data-stray"),
            "PROMOTER_WORKER_HEALTH_FILE": str(tmp_path / "stray-worker.alive"),
        }
        output = topology.manage(env, "sync_registries")

        assert "is not the one the index describes" in output, output
        assert topology.sql("SELECT count(*) FROM registries_tag")[0][0] == tags
        assert topology.sql(
            "SELECT count(*) FROM registries_historyevent WHERE action = 'deleted'"
        ) == [(0,)]

        # Its worker refuses too, and its health check says why.
        stray = topology.start_worker("worker-stray", env)
        try:
            wait_until(
                lambda: (tmp_path / "stray-worker.alive").exists() or not stray.proc.alive,
                timeout=60,
                what="the stray worker wrote its health file",
            )
            health = subprocess.run(
                [sys.executable, "manage.py", "worker_health"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
        finally:
            stray.proc.stop()
        assert health.returncode != 0
        assert "is not the one the index describes" in health.stderr, health.stderr
    finally:
        own.stop()
