"""`make run`: the backing registry, migrations, first-start setup, worker and web, supervised."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from accounts.tokens import ensure_signing_key
from registries.backing import BackingRegistry, write_registry_config


class Command(BaseCommand):
    help = "Start the backing registry, the task worker and the web server; stop them all on Ctrl-C."

    def handle(self, *args, **options):
        data = settings.DATA_DIR
        registry_port = int(os.environ.get("PROMOTER_REGISTRY_PORT", "5000"))
        web_port = int(os.environ.get("PROMOTER_PORT", "8000"))
        portal = f"http://127.0.0.1:{web_port}"
        key_path, cert_path = ensure_signing_key()
        config = write_registry_config(
            data / "registry.json",
            port=registry_port,
            storage_dir=str(data / "registry"),
            notify_url=f"{portal}/registry/notifications",
            notify_secret=settings.PROMOTER_NOTIFY_SECRET,
            token_realm=f"{settings.PUBLIC_URL}/auth/token",
            token_service=settings.PROMOTER_TOKEN_SERVICE,
            token_issuer=settings.PROMOTER_TOKEN_ISSUER,
            token_rootcertbundle=str(cert_path),
        )
        children: list[subprocess.Popen] = []
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
            env = {**os.environ, "PROMOTER_DATA_DIR": str(data)}
            children.append(subprocess.Popen([*manage, "db_worker", "--queue-name", "*", "--interval", "0.5", "--no-startup-delay"],
                                             env=env, start_new_session=True))
            children.append(subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "promoter.wsgi", "--bind",
                 f"127.0.0.1:{web_port}", "--workers", os.environ.get("PROMOTER_WEB_WORKERS", "2"),
                 "--threads", "4", "--timeout", "120", "--access-logfile", "-"],
                env=env, start_new_session=True, cwd=settings.BASE_DIR,
            ))
            self.stdout.write(self.style.SUCCESS(
                f"Promoter is up: {settings.PUBLIC_URL}  (registry: {settings.PROMOTER_REGISTRY_HOST})"
                "\nPress Ctrl-C to stop."
            ))
            interval = int(os.environ.get("PROMOTER_SYNC_INTERVAL", "300"))
            next_sync = time.monotonic() + 2
            sync: subprocess.Popen | None = None
            while not stopping:
                for child in children:
                    if child.poll() is not None:
                        self.stderr.write(f"{child.args[1:3]} exited ({child.returncode}); stopping.")
                        stopping = True
                if not registry.running:
                    self.stderr.write("The backing registry exited; stopping.")
                    stopping = True
                if not stopping and time.monotonic() >= next_sync and (sync is None or sync.poll() is not None):
                    # Periodic reconcile: notifications are lost when the registry restarts.
                    sync = subprocess.Popen([*manage, "sync_registries"], env=env,
                                            stdout=subprocess.DEVNULL, start_new_session=True)
                    next_sync = time.monotonic() + interval
                time.sleep(0.5)
            if sync is not None and sync.poll() is None:
                children.append(sync)
        finally:
            self.stdout.write("Stopping …")
            for child in children:
                _terminate(child)
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
