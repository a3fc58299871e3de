"""Promotion end to end, as a user meets it, vs `skopeo copy --all` (run by hand).

The user's path: `POST /api/promotions/promote` (synchronous) to gunicorn, the real
`manage.py worker` copying, until the 200. Next to it, in the same run and on the same
images, `skopeo copy --all` between the same registries. Each side copies into a fresh
target repository, so neither finds the blobs already there.

1. Same host: 10 layers × 1 MiB between two namespaces of one registry (mounts).
2. Across hosts: 5 layers × 20 MiB between two registry processes (streamed GET→PUT).
3. The worker's RSS growth while it promotes a 200 MiB image across hosts.

On SQLite and on PostgreSQL (a throwaway server). Results go to bench/README.md.

    .venv/bin/python bench/promotion.py [--db sqlite,postgres] [--runs 5] [--no-readme]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import Postgres, Web, free_port, machine, readme_section  # noqa: E402

PASSWORD = "bench-password"
MiB = 1024 * 1024


def _skopeo(src: str, dst: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--all",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "-q",
            src,
            dst,
        ],
        check=True,
    )
    return time.perf_counter() - started


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class PeakRss:
    """Peak resident memory of another process while the block runs (sampled every 10 ms)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._stop = threading.Event()

    def __enter__(self):
        self.base = self.peak = _rss(self.pid)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, _rss(self.pid))

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def child(runs: int, out: Path, tmp: Path) -> None:
    """One database: registries, worker and web up; measure; write JSON to `out`."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "promoter.settings")
    import django

    django.setup()
    import requests
    from django.core.management import call_command

    from accounts.permissions import Principal
    from accounts.services import api_key_create
    from registries.bootstrap import admin_ensure, tasks_ensure
    from registries.bundled import BackingRegistry, write_registry_config
    from registries.models import Promotion, Registry
    from tests.support.images import push_image

    call_command("migrate", verbosity=0)
    tasks_ensure()
    admin_ensure(PASSWORD)
    _, key = api_key_create(
        name="bench",
        kind="system",
        user=None,
        actor=Principal.promoter(),
        registries=[],
        permissions=(),
        areas=(),
    )

    def start(name: str) -> BackingRegistry:
        port = free_port()
        config = write_registry_config(tmp / f"{name}.json", port=port, storage_dir=str(tmp / name))
        registry = BackingRegistry(config, port=port)
        registry.start()
        return registry

    a, b = start("host-a"), start("host-b")
    host_a, host_b = a.url.split("://", 1)[1], b.url.split("://", 1)[1]
    env = {**os.environ, "PROMOTER_TASKS_BACKEND": "django_tasks_db.DatabaseBackend"}
    worker = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "worker",
            "--queue-name",
            "*",
            "--interval",
            "0.5",  # what `make run` uses: the wake-up, not the poll, starts the work
            "--no-startup-delay",
        ],
        cwd=ROOT,
        env=env,
        stdout=open(tmp / "worker.log", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    web = Web(env, tmp / "web.log")
    session = requests.Session()
    session.headers["X-ApiKey"] = key

    phases: list[dict] = []

    def promote(source: str, target: str, repo: str) -> float:
        started = time.perf_counter()
        answer = session.post(
            web.url + "/api/promotions/promote",
            data={"name": repo, "version": "1.0", "fromFeed": source, "toFeed": target},
            timeout=600,
        )
        elapsed = time.perf_counter() - started
        if answer.status_code != 200:
            raise SystemExit(f"promotion failed: {answer.status_code} {answer.text[:500]}")
        # Where the time went, from the promotion's own timestamps (same clock, this host).
        p = Promotion.objects.get(pk=answer.json()["id"])
        request_start = time.time() - elapsed
        phases.append(
            {
                "request": p.created_at.timestamp() - request_start,
                "queue": (p.started_at - p.created_at).total_seconds(),
                "copy": (p.finished_at - p.started_at).total_seconds(),
                "answer": request_start + elapsed - p.finished_at.timestamp(),
            }
        )
        return elapsed

    def side_by_side(run: int, into: dict, ours: tuple, theirs: tuple) -> None:
        # The two sides alternate going first, so neither always meets a warmer cache.
        for side in ("promoter", "skopeo") if run % 2 == 0 else ("skopeo", "promoter"):
            into[side].append(promote(*ours) if side == "promoter" else _skopeo(*theirs))
            if side == "promoter":
                into.setdefault("phases", []).append(phases[-1])

    try:
        web.wait_up()
        Registry.objects.create(name="same-src", endpoint=a.url, namespace="src")
        Registry.objects.create(name="cross-a", endpoint=a.url)
        # Warm up: the first request of each gunicorn worker, the worker's first task.
        push_image(host_a, "src/warm", "1.0", layers=1, layer_size=1024, tmp_path=tmp, seed=1)
        Registry.objects.create(name="warm-dst", endpoint=a.url, namespace="warm")
        for _ in range(2):
            promote("same-src", "warm-dst", "warm")

        same = {"promoter": [], "skopeo": []}
        for run in range(runs):
            repo = f"bench/same{run}"
            push_image(
                host_a, f"src/{repo}", "1.0", layers=10, layer_size=MiB, tmp_path=tmp, seed=run
            )
            Registry.objects.create(name=f"same-dst{run}", endpoint=a.url, namespace=f"dst{run}")
            side_by_side(
                run,
                same,
                ("same-src", f"same-dst{run}", repo),
                (f"docker://{host_a}/src/{repo}:1.0", f"docker://{host_a}/sk{run}/{repo}:1.0"),
            )
        assert all(
            p.blobs_mounted == p.blobs_total
            for p in Promotion.objects.filter(target__name__startswith="same-dst")
        )

        cross = {"promoter": [], "skopeo": []}
        if os.environ.get("BENCH_ONLY_SAME"):  # a quick look at the same-host case alone
            out.write_text(json.dumps({"same": same}))
            return
        for run in range(runs):
            repo = f"bench/cross{run}"
            push_image(
                host_a, repo, "1.0", layers=5, layer_size=20 * MiB, tmp_path=tmp, seed=100 + run
            )
            Registry.objects.create(name=f"cross-b{run}", endpoint=b.url, namespace=f"b{run}")
            side_by_side(
                run,
                cross,
                ("cross-a", f"cross-b{run}", repo),
                (f"docker://{host_a}/{repo}:1.0", f"docker://{host_b}/sk{run}/{repo}:1.0"),
            )

        push_image(host_a, "bench/big", "1.0", layers=4, layer_size=50 * MiB, tmp_path=tmp, seed=7)
        Registry.objects.create(name="big-b", endpoint=b.url, namespace="big")
        with PeakRss(worker.pid) as rss:
            big_seconds = promote("cross-a", "big-b", "bench/big")
        result = {
            "same": same,
            "cross": cross,
            "big_seconds": big_seconds,
            "rss_growth": rss.peak - rss.base,
            "rss_base": rss.base,
        }
        out.write_text(json.dumps(result))
    finally:
        web.stop()
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        a.stop()
        b.stop()


def run_one(db: str, runs: int, tmp: Path) -> dict:
    pg = Postgres() if db == "postgres" else None
    data = tmp / db
    data.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        PROMOTER_DATA_DIR=str(data),
        PROMOTER_LOG_LEVEL="WARNING",
        PROMOTER_ADMIN_PASSWORD=PASSWORD,
        PYTHONPATH=str(ROOT),
    )
    if pg is not None:
        env.update(pg.node_env(data / "secrets"))
    try:
        out = tmp / f"{db}.json"
        subprocess.run(
            [sys.executable, __file__, "--child", "--runs", str(runs), "--out", str(out)],
            env=env,
            cwd=ROOT,
            check=True,
        )
        return {"db": db, **json.loads(out.read_text())}
    finally:
        if pg is not None:
            pg.stop()


def _fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} s ({min(values):.3f}–{max(values):.3f})"


def report(results: list[dict], runs: int) -> str:
    lines = [
        f"Machine: {machine()}. Registries: distribution (`docker-registry`) on loopback; "
        f"skopeo {_skopeo_version()}; {runs} runs per case, the two sides alternating first.",
        "",
        "Promoter = `POST /api/promotions/promote` (synchronous) to gunicorn → the real "
        "`manage.py worker` (`--interval 0.5`, woken at once) → the 200. Ratio = median of "
        "the per-run ratios Promoter / skopeo (target ≤ 1.0).",
        "",
        "| database | case | Promoter, median (min–max) | skopeo copy --all | ratio "
        "| Promoter's median ms: request · queue · copy · answer |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        for case, label in (
            ("same", "same host, 10 × 1 MiB"),
            ("cross", "across hosts, 5 × 20 MiB"),
        ):
            if case not in r:  # BENCH_ONLY_SAME
                continue
            ours, theirs = r[case]["promoter"], r[case]["skopeo"]
            ratio = statistics.median(o / t for o, t in zip(ours, theirs, strict=True))
            phases = r[case].get("phases") or [{}]
            split = " · ".join(
                f"{name} {statistics.median(p.get(name, 0) for p in phases) * 1000:.0f}"
                for name in ("request", "queue", "copy", "answer")
            )
            lines.append(
                f"| {r['db']} | {label} | {_fmt(ours)} | {_fmt(theirs)} | **{ratio:.2f}** "
                f"| {split} |"
            )
    lines.append("")
    for r in results:
        if "big_seconds" not in r:
            continue
        lines.append(
            f"- {r['db']}: a 200 MiB image (4 × 50 MiB) across hosts took "
            f"{r['big_seconds']:.2f} s; the worker's RSS grew by "
            f"**{r['rss_growth'] / MiB:.1f} MiB** (from {r['rss_base'] / MiB:.0f} MiB; "
            "target < 100 MB)."
        )
    return "\n".join(lines)


def _skopeo_version() -> str:
    out = subprocess.run(["skopeo", "--version"], capture_output=True, text=True, check=False)
    return out.stdout.split()[-1] if out.stdout else "?"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.runs, args.out, Path(tempfile.mkdtemp(prefix="promoter-bench-")))
        return
    tmp = Path(tempfile.mkdtemp(prefix="promoter-promotion-"))
    results = [run_one(db, args.runs, tmp) for db in args.db.split(",")]
    text = report(results, args.runs)
    print(text)
    if not args.no_readme:
        readme_section("Promotion end to end vs `skopeo copy --all` (`bench/promotion.py`)", text)


if __name__ == "__main__":
    main()
