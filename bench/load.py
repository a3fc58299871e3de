"""Load run (by hand): concurrent clients drive the API and the pages of a real `make run`
stack for a bounded time; reports throughput, latency and error counts (target: zero 5xx).

    .venv/bin/python bench/load.py [--seconds 60] [--clients 16] [--images 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urljoin

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import signed_in  # noqa: E402
from tests.support.images import push_image  # noqa: E402
from tests.support.runner import PASSWORD, Run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--web-workers", type=int, default=2)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="promoter-load-"))
    run = Run(tmp / "data", web_workers=args.web_workers)
    try:
        run.wait_healthy()
        repos = [f"load/app{n}" for n in range(args.images)]
        for n, repo in enumerate(repos):
            push_image(
                f"localhost:{run.registry}",
                f"devdocker/{repo}",
                "1.0",
                layers=2,
                layer_size=64 * 1024,
                creds=f"Admin:{PASSWORD}",
                tmp_path=tmp / f"i{n}",
                seed=n,
            )
        time.sleep(1.5)  # notifications index the pushes
        results: list[tuple[str, int, float]] = []
        promotions: dict[int, str] = {}  # id -> status URL, from the 202 answers
        lock = threading.Lock()
        # Pages take a signed-in session (Basic on a page answers with a redirect to sign
        # in); the API takes Basic user:password, as pgutil sends it. Each client signs in
        # before the clock starts: a sign-in is a deliberately slow password hash, and
        # sixteen at once would be timed as the other clients' latency.
        sessions = [signed_in(run.url, "Admin", PASSWORD) for _ in range(args.clients)]
        deadline = time.monotonic() + args.seconds

        def client(seed: int) -> None:
            rng = random.Random(seed)
            session = sessions[seed]
            api = requests.Session()
            api.auth = ("Admin", PASSWORD)
            while time.monotonic() < deadline:
                repo = rng.choice(repos)
                kind = rng.choices(
                    ["page", "tag", "list", "promote", "status"], weights=[3, 3, 2, 1, 1]
                )[0]
                started = time.perf_counter()
                try:
                    if kind == "page":
                        path = rng.choice(
                            ["/", "/registries/devdocker/", "/promotions/", "/registries/rcdocker/"]
                        )
                        r = session.get(run.url + path, timeout=60, allow_redirects=False)
                    elif kind == "tag":
                        r = session.get(
                            f"{run.url}/registries/devdocker/images/{repo}:1.0",
                            timeout=60,
                            allow_redirects=False,
                        )
                    elif kind == "list":
                        r = api.get(run.url + "/api/promotions/list?fromFeed=devdocker", timeout=60)
                    elif kind == "promote":
                        r = api.post(
                            run.url + "/api/promotions/promote?async=true",
                            data={
                                "name": repo,
                                "version": "1.0",
                                "fromFeed": "devdocker",
                                "toFeed": "rcdocker",
                                "comments": "load bench",  # rcdocker asks for a reason
                            },
                            timeout=60,
                        )
                    else:
                        r = api.get(run.url + "/healthz", timeout=60)
                    status = r.status_code
                    if kind == "promote" and status == 202:
                        with lock:
                            promotions[r.json()["id"]] = r.headers.get("Location", "")
                except requests.RequestException:
                    status = -1
                with lock:
                    results.append((kind, status, time.perf_counter() - started))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        # Let queued promotions finish (bounded), then ask each for its outcome. Asking again
        # for an image already promoted returns that promotion ("already there"), so many
        # accepted requests share one promotion id.
        accepted = sum(1 for kind, status, _ in results if kind == "promote" and status == 202)
        outcome = Counter()
        finished: dict[int, str] = {}
        wait_until = time.monotonic() + 120
        while len(finished) < len(promotions) and time.monotonic() < wait_until:
            for pid, location in promotions.items():
                if pid in finished or not location:
                    continue
                state = requests.get(
                    urljoin(run.url, location), auth=("Admin", PASSWORD), timeout=60
                ).json()["status"]
                if state in ("succeeded", "failed"):
                    finished[pid] = state
            time.sleep(0.5)
        promoted = sum(1 for state in finished.values() if state == "succeeded")
        for _, status, _ in results:
            outcome["5xx" if status >= 500 else "error" if status < 0 else str(status)] += 1
        # Anything but a 200 (a 202 for an accepted promote) is an error: a redirect to the
        # sign-in page would otherwise time the sign-in page.
        unexpected = sum(
            1
            for kind, status, _ in results
            if 0 <= status < 500 and status != (202 if kind == "promote" else 200)
        )
        latencies = sorted(d for _, _, d in results)
        print(
            f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores; "
            f"date {time.strftime('%Y-%m-%d')}; {args.clients} clients, {args.seconds:.0f} s, "
            f"{args.web_workers} gunicorn workers x 4 threads, SQLite (make run default)"
        )
        print(f"requests: {len(results)} in {elapsed:.1f} s = {len(results) / elapsed:.1f} req/s")
        print(
            f"latency: median {statistics.median(latencies) * 1000:.0f} ms, "
            f"p95 {latencies[int(len(latencies) * 0.95)] * 1000:.0f} ms, "
            f"max {latencies[-1] * 1000:.0f} ms"
        )
        by_kind = Counter(kind for kind, _, _ in results)
        print("by kind: " + ", ".join(f"{k} {v}" for k, v in sorted(by_kind.items())))
        print("statuses: " + ", ".join(f"{k}: {v}" for k, v in sorted(outcome.items())))
        print(
            f"promotions: {accepted} accepted (202) for {len(promotions)} distinct promotions; "
            f"{promoted} of them succeeded"
        )
        for kind in sorted(by_kind):
            times = sorted(d for k, _, d in results if k == kind)
            print(
                f"  {kind}: median {statistics.median(times) * 1000:.0f} ms, "
                f"p95 {times[int(len(times) * 0.95)] * 1000:.0f} ms"
            )
        print(
            f"5xx: {outcome.get('5xx', 0)}  connection errors: {outcome.get('error', 0)}  "
            f"other unexpected statuses: {unexpected}"
        )
    finally:
        run.stop()


if __name__ == "__main__":
    main()
