"""Promotion benchmarks (run by hand: `make bench`); results go to bench/README.md.

1. Same host: a 10-layer image promoted between two namespaces of one registry
   (cross-repository mounts) vs `skopeo copy --all` between the same repositories.
2. Cross host: 5 layers x 20 MiB between two registry processes (streamed) vs
   `skopeo copy --all`, with the promoting process's peak RSS growth.

Each side copies into a fresh target repository, so neither finds the blobs already there.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = Path(tempfile.mkdtemp(prefix="promoter-bench-"))
os.environ["PROMOTER_DATA_DIR"] = str(DATA)
os.environ["PROMOTER_TASKS_BACKEND"] = "django.tasks.backends.dummy.DummyBackend"
os.environ.pop("DATABASE_URL", None)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "promoter.settings")

import django  # noqa: E402

django.setup()
from django.core.management import call_command  # noqa: E402

call_command("migrate", verbosity=0)

from accounts.permissions import Principal  # noqa: E402
from registries.bundled import BackingRegistry, write_registry_config  # noqa: E402
from registries.models import Registry  # noqa: E402
from registries.runner import promotion_execute  # noqa: E402
from registries.services.promotions import promotion_request  # noqa: E402
from tests.support.images import push_image  # noqa: E402
from tests.support.net import free_port  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))


def start(name: str) -> BackingRegistry:
    port = free_port()
    config = write_registry_config(DATA / f"{name}.json", port=port, storage_dir=str(DATA / name))
    registry = BackingRegistry(config, port=port)
    registry.start()
    return registry


def hostport(registry: BackingRegistry) -> str:
    return registry.url.split("://", 1)[1]


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self):
        self.base = rss_bytes()
        self.peak = self.base
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def promote_once(source: Registry, target: Registry, repo: str) -> tuple[float, object]:
    started = time.perf_counter()
    promotion = promotion_request(
        source=source, repository=repo, tag="1.0", target=target, actor=Principal.promoter()
    )
    promotion = promotion_execute(promotion_id=promotion.pk)
    elapsed = time.perf_counter() - started
    assert promotion.status == "succeeded", promotion.error
    return elapsed, promotion


def promote_via_worker(source: Registry, target: Registry, repo: str) -> float:
    """Request in this process, run by the real worker process: request -> succeeded."""
    from registries.models import Promotion

    started = time.perf_counter()
    promotion = promotion_request(
        source=source, repository=repo, tag="1.0", target=target, actor=Principal.promoter()
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = Promotion.objects.values_list("status", flat=True).get(pk=promotion.pk)
        if status in {"succeeded", "failed"}:
            break
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    assert status == "succeeded", status
    return elapsed


def start_worker() -> subprocess.Popen:
    env = {**os.environ, "PROMOTER_TASKS_BACKEND": "django_tasks_db.DatabaseBackend"}
    return subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "worker",
            "--queue-name",
            "*",
            "--interval",
            "0.05",
            "--no-startup-delay",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def skopeo_once(src: str, dst: str) -> float:
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


def bench_same_host() -> dict:
    reg = start("same")
    try:
        source = Registry.objects.create(name="bench-src", endpoint=reg.url, namespace="src")
        ours, theirs = [], []
        for run in range(RUNS):
            repo = f"bench/same{run}"
            push_image(
                hostport(reg),
                f"src/{repo}",
                "1.0",
                layers=10,
                layer_size=2 * 1024 * 1024,
                tmp_path=DATA / f"img-same-{run}",
                seed=run,
            )
            target = Registry.objects.create(
                name=f"bench-dst{run}", endpoint=reg.url, namespace=f"dst{run}"
            )
            elapsed, promotion = promote_once(source, target, repo)
            assert promotion.blobs_mounted == promotion.blobs_total
            ours.append(elapsed)
            theirs.append(
                skopeo_once(
                    f"docker://{hostport(reg)}/src/{repo}:1.0",
                    f"docker://{hostport(reg)}/sk{run}/{repo}:1.0",
                )
            )
        # The same, end to end through the real worker process (django-tasks-db).
        from django.test import override_settings

        worker = start_worker()
        time.sleep(3)  # let it boot: we measure queueing and copying, not Django's start-up
        via_worker = []
        try:
            with override_settings(
                TASKS={
                    "default": {
                        "BACKEND": "django_tasks_db.DatabaseBackend",
                        "QUEUES": ["default", "promotions"],
                    }
                }
            ):
                for run in range(RUNS):
                    target = Registry.objects.create(
                        name=f"bench-w{run}", endpoint=reg.url, namespace=f"w{run}"
                    )
                    via_worker.append(promote_via_worker(source, target, f"bench/same{run}"))
        finally:
            worker.terminate()
            worker.wait(timeout=10)
        return {"promoter": ours, "skopeo": theirs, "worker": via_worker}
    finally:
        reg.stop()


def bench_cross_host() -> dict:
    a, b = start("host-a"), start("host-b")
    try:
        source = Registry.objects.create(name="bench-a", endpoint=a.url)
        target = Registry.objects.create(name="bench-b", endpoint=b.url)
        ours, theirs, growth = [], [], []
        for run in range(RUNS):
            repo = f"bench/cross{run}"
            push_image(
                hostport(a),
                repo,
                "1.0",
                layers=5,
                layer_size=20 * 1024 * 1024,
                tmp_path=DATA / f"img-cross-{run}",
                seed=100 + run,
            )
            with PeakRss() as rss:
                elapsed, promotion = promote_once(source, target, repo)
            assert promotion.blobs_copied == promotion.blobs_total
            ours.append(elapsed)
            growth.append(rss.peak - rss.base)
            theirs.append(
                skopeo_once(
                    f"docker://{hostport(a)}/{repo}:1.0", f"docker://{hostport(b)}/sk/{repo}:1.0"
                )
            )
        return {"promoter": ours, "skopeo": theirs, "rss_growth": growth}
    finally:
        a.stop()
        b.stop()


def fmt(values: list[float]) -> str:
    runs = ", ".join(f"{v:.3f}" for v in values)
    return f"median {statistics.median(values):.3f} s (runs: {runs})"


def main() -> None:
    same = bench_same_host()
    cross = bench_cross_host()
    print(
        f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, date {time.strftime('%Y-%m-%d')}"
    )
    print("same host, 10 layers x 2 MiB (mount):")
    print(f"  promoter request->succeeded  {fmt(same['promoter'])}  (executed in-process)")
    print(f"  skopeo copy --all            {fmt(same['skopeo'])}")
    print(f"  promoter via the worker      {fmt(same['worker'])}")
    print("cross host, 5 layers x 20 MiB (stream):")
    print(f"  promoter request->succeeded  {fmt(cross['promoter'])}")
    print(f"  skopeo copy --all            {fmt(cross['skopeo'])}")
    print(f"  promoter peak RSS growth     max {max(cross['rss_growth']) / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
