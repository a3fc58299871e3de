"""Scale-out run (by hand): promotions per minute with 1 and 3 workers on the scale-out
topology of tests/scaleout (one PostgreSQL, two registries on one moto S3 bucket, two web
nodes, N worker nodes; every node its own process and data dir).

    .venv/bin/python bench/scaleout.py [--workers 1,3] [--images 10] [--tags 6]

Each round starts a fresh topology, pushes images × tags through registry A, requests every
promotion at once with ?async=true through the two webs, and times request → last
succeeded. A throwaway PostgreSQL is started unless DATABASE_URL names a server.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.pgplugin import _as_postgres, _free_port, _pg_bin  # noqa: E402
from tests.scaleout.topology import Topology, push_tags, wait_until  # noqa: E402


@contextmanager
def postgres_server(root: Path):
    """DATABASE_URL when given, else a throwaway server (as the test suite starts one)."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    data = root / "pg"
    root.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    port = _free_port()
    initdb = [_pg_bin("initdb"), "-D", str(data), "-U", "promoter", "-A", "trust", "--no-sync"]
    subprocess.run(_as_postgres(initdb), check=True, stdout=subprocess.DEVNULL)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=300"
    start = [_pg_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log")]
    subprocess.run(_as_postgres([*start, "-w", "start"]), check=True, stdout=subprocess.DEVNULL)
    try:
        yield f"postgres://promoter@127.0.0.1:{port}/postgres"
    finally:
        stop = [_pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
        subprocess.run(_as_postgres(stop), stdout=subprocess.DEVNULL)


def one_round(server: str, workdir: Path, *, workers: int, images: int, tags: int) -> dict:
    """Promotions per minute with `workers` worker nodes."""
    topology = Topology(root=workdir, server_url=server, workers=workers)
    topology.start()
    try:
        pushed = push_tags(topology, workdir, images=images, tags_per_image=tags, prefix="bench")
        last = sorted(pushed)[-1]
        wait_until(
            lambda: topology.sql(
                "SELECT count(*) FROM registries_tag t JOIN registries_repository r "
                "ON r.id = t.repository_id WHERE r.name = %s AND t.name = %s",
                last,
            )[0][0],
            timeout=60,
            what="the pushes are indexed",
        )
        orders = sorted(pushed)

        def request(i: int) -> int:
            repository, tag = orders[i]
            web = topology.web_nodes[i % len(topology.web_nodes)]
            answer = requests.post(
                f"{web.url}/api/promotions/promote?async=true",
                data={
                    "name": repository,
                    "version": tag,
                    "fromFeed": "devdocker",
                    "toFeed": "rcdocker",
                },
                headers={"X-ApiKey": topology.api_key},
                timeout=60,
            )
            answer.raise_for_status()
            return answer.json()["id"]

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(request, range(len(orders))))
        wait_until(
            lambda: (
                topology.sql(
                    "SELECT count(*) FROM registries_promotion "
                    "WHERE status IN ('queued', 'running')"
                )
                == [(0,)]
            ),
            timeout=1800,
            interval=0.1,
            what="every promotion finished",
        )
        elapsed = time.monotonic() - started
        statuses = dict(
            topology.sql("SELECT status, count(*) FROM registries_promotion GROUP BY status")
        )
        return {
            "workers": workers,
            "promotions": len(orders),
            "seconds": elapsed,
            "per_minute": len(orders) * 60 / elapsed,
            "statuses": statuses,
        }
    finally:
        topology.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", default="1,3")
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--tags", type=int, default=6)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="promoter-scaleout-"))
    base.chmod(0o755)
    try:
        with postgres_server(base / "server") as server:
            for n in (int(w) for w in args.workers.split(",")):
                result = one_round(
                    server, base / f"w{n}", workers=n, images=args.images, tags=args.tags
                )
                print(
                    f"{result['workers']} worker(s): {result['promotions']} promotions in "
                    f"{result['seconds']:.1f} s = {result['per_minute']:.1f}/min "
                    f"{result['statuses']}",
                    flush=True,
                )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )


if __name__ == "__main__":
    main()
