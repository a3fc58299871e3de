"""`make run`: the backing registry, migrations, first-start setup, worker and web, supervised."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from registries.bundled import BackingRegistry, write_bundled_registry_config

RESTART_BACKOFF_MAX = 30.0
HEALTHY_AFTER = 60.0  # a child that ran this long starts again with the shortest backoff


@dataclass
class Child:
    """A supervised subprocess, restarted with exponential backoff when it exits."""

    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    backoff: float = 1.0
    restart_at: float | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.argv, env=self.env, start_new_session=True, cwd=settings.BASE_DIR
        )
        self.started_at = time.monotonic()
        self.restart_at = None

    def check(self, log) -> None:
        """Restart the child if it exited (after its backoff)."""
        now = time.monotonic()
        if self.restart_at is not None:
            if now >= self.restart_at:
                log(f"Restarting {self.name} …")
                self.start()
            return
        if self.process is None or self.process.poll() is None:
            return
        if now - self.started_at >= HEALTHY_AFTER:
            self.backoff = 1.0
        log(f"{self.name} exited ({self.process.returncode}); restarting in {self.backoff:.0f}s.")
        self.restart_at = now + self.backoff
        self.backoff = min(self.backoff * 2, RESTART_BACKOFF_MAX)


class Command(BaseCommand):
    help = "Start the backing registry, the task worker and the web server; Ctrl-C stops all."

    def handle(self, *args, **options):
        data = settings.DATA_DIR
        registry_port = settings.PROMOTER_REGISTRY_PORT
        web_port = settings.PROMOTER_PORT
        # Where the web server listens; the registry posts notifications here. Clients are
        # sent to PUBLIC_URL (by default this same address; see settings).
        portal = f"http://127.0.0.1:{web_port}"
        config = write_bundled_registry_config(
            data / "registry.json",
            port=registry_port,
            storage_dir=data / "registry",
            notify_base=portal,
            realm_base=settings.PUBLIC_URL,
        )
        children: list[Child] = []
        registry = BackingRegistry(config, port=registry_port)
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            self.stdout.write(f"Starting the backing registry on 127.0.0.1:{registry_port} …")
            registry.start()
            call_command("migrate", interactive=False, verbosity=0)
            call_command("bootstrap")
            manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
            # The children read the same environment (and so the same settings).
            env = {**os.environ, "PROMOTER_DATA_DIR": str(data)}
            # `worker` is db_worker that waits out database restarts; it is restarted
            # here too if it dies anyway (e.g. killed), and so is the web server.
            children.append(
                Child(
                    "the worker",
                    [
                        *manage,
                        "worker",
                        "--queue-name",
                        "*",
                        "--interval",
                        "0.5",
                        "--no-startup-delay",
                    ],
                    env,
                )
            )
            # The image's gunicorn settings (PROMOTER_WEB_* variables; no control socket at
            # the $HOME/.gunicorn/gunicorn.ctl every gunicorn on the host would share).
            children.append(
                Child(
                    "the web server",
                    [
                        sys.executable,
                        "-m",
                        "gunicorn",
                        "--config",
                        str(settings.BASE_DIR / "deploy" / "gunicorn.conf.py"),
                    ],
                    {**env, "PROMOTER_BIND": f"127.0.0.1:{web_port}"},
                )
            )
            for child in children:
                child.start()
            public = "" if settings.PUBLIC_URL == portal else f", public URL {settings.PUBLIC_URL}"
            self.stdout.write(
                self.style.SUCCESS(
                    f"Promoter is up: {portal}  "
                    f"(registry: {settings.PROMOTER_REGISTRY_HOST}{public})\n"
                    "Press Ctrl-C to stop."
                )
            )
            self.stdout.flush()  # seen at once when the output is a file or a pipe
            # Reclaiming stale promotions and the periodic resync are the worker's own duties
            # (registries.management.duties), as on every other node.
            while not stopping:
                for child in children:
                    child.check(self.stderr.write)
                if not registry.running:
                    self.stderr.write("The backing registry exited; restarting it.")
                    try:
                        registry.start()
                    except RuntimeError as exc:
                        self.stderr.write(str(exc))
                time.sleep(0.5)
        finally:
            self.stdout.write("Stopping …")
            for process in [c.process for c in children]:
                if process is not None:
                    _terminate(process)
            registry.stop()
            self.stdout.write("Stopped.")


def _terminate(child: subprocess.Popen) -> None:
    if child.poll() is not None:
        return
    try:
        os.killpg(child.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=5)
