"""What a worker process does besides running tasks: periodic duties and its health file.

Two daemon threads, so neither a long copy (the task loop) nor a long resync delays the
reclaiming of a dead worker's promotions:
- `reclaim`: every tick, checks that this node's registry is the one the index describes,
  requeues stale promotions (under a database lock) and touches the health file that
  `manage.py worker_health` reads;
- `resync`: runs the full resync when it is due (under a database lock).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection

from registries.services.identity import registry_identity
from registries.services.maintenance import resync_if_due, stale_promotions_reclaim

log = logging.getLogger(__name__)


def tick_seconds() -> float:
    """Seconds between duty rounds: a quarter of the stale timeout, within 0.5..15 s."""
    return min(15.0, max(0.5, float(settings.PROMOTER_STALE_SECONDS) / 4))


def health_file() -> Path:
    """The file a worker touches each round (one per container or data dir)."""
    return Path(settings.PROMOTER_WORKER_HEALTH_FILE)


def health_write(status: str) -> None:
    """Replace the health file atomically with one line saying how the last round went."""
    path = health_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(descriptor, "w") as handle:
        handle.write(status.replace("\n", " ")[:500] + "\n")
    os.replace(temporary, path)


def health_read(max_age: float) -> tuple[bool, str]:
    """(healthy, one-line reason) from the health file's age and content."""
    path = health_file()
    try:
        age = time.time() - path.stat().st_mtime
        status = path.read_text(errors="replace").strip()
    except FileNotFoundError:
        return False, f"no worker has written {path} yet"
    except OSError as exc:
        return False, f"cannot read {path}: {exc}"
    if age > max_age:
        return False, f"the worker loop last ran {age:.0f}s ago (limit {max_age:.0f}s)"
    if status != "ok":
        return False, status
    return True, f"ok: the worker loop ran {age:.1f}s ago"


class Duties:
    """The periodic duties of one worker process (see the module docstring)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        # False while this node's registry is not the index's: the worker takes no tasks.
        self.may_run_tasks = True
        self._threads = [
            threading.Thread(target=self._loop, args=(self.reclaim_round,), daemon=True),
            threading.Thread(target=self._loop, args=(self.resync_round,), daemon=True),
        ]

    def start(self) -> None:
        """Run one round now (so tasks wait for the identity check), then keep going."""
        self.reclaim_round()
        for thread in self._threads:
            thread.start()

    def _loop(self, round_) -> None:
        try:
            while not self.stop.wait(tick_seconds()):
                round_()
        finally:
            connection.close()

    def reclaim_round(self) -> None:
        """Identity check, stale promotions, health file; never raises."""
        status = "ok"
        try:
            close_old_connections()
            identity = registry_identity()
            self.may_run_tasks = identity.ok
            if not identity.ok:
                status = f"refused: {identity.problem}"
            else:
                stale_promotions_reclaim()
        except DatabaseError as exc:
            first_line = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
            status = f"database unavailable: {first_line}"
            log.warning("worker duties: %s", status)
            connection.close()
        except Exception as exc:  # a bug here must not stop the rounds
            status = f"error: {exc.__class__.__name__}: {exc}"
            log.exception("worker duties failed")
        try:
            health_write(status)
        except OSError as exc:
            log.warning("cannot write the worker health file: %s", exc)

    def resync_round(self) -> None:
        """The periodic resync when due and this node's registry is the index's."""
        if not self.may_run_tasks:
            return
        try:
            close_old_connections()
            resync_if_due()
        except DatabaseError as exc:
            log.warning("resync postponed: %s", exc)
            connection.close()
        except Exception:
            log.exception("resync failed")
