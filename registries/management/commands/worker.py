"""`manage.py worker`: django-tasks-db's db_worker, woken at once by an enqueue (LISTEN/NOTIFY
on PostgreSQL, a watch on the database file on SQLite), surviving database restarts."""

from __future__ import annotations

import logging
import random
import threading
import time

from django.db import InterfaceError, OperationalError, close_old_connections, connections
from django_tasks_db.management.commands.db_worker import Command as DbWorkerCommand
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception

from registries.management.duties import Duties, tick_seconds
from registries.wakeup import TASKS, Waiter

logger = logging.getLogger("django_tasks_db")
MAX_BACKOFF = 5.0


class ResilientWorker(Worker):
    """A db_worker whose loop waits for the database to come back instead of exiting.

    django-tasks-db's loop re-raises every OperationalError but "database is locked",
    so a database restart or failover would end the worker process.
    """

    duties: Duties | None = None

    def run_task(self, db_task_result: DBTaskResult) -> None:
        """Run a claimed task; hand it back while this node's registry is not the index's."""
        if self.duties is not None and not self.duties.may_run_tasks:
            DBTaskResult.objects.filter(pk=db_task_result.pk, status="RUNNING").update(
                status="READY", started_at=None
            )
            time.sleep(tick_seconds())  # another worker may take it meanwhile
            return
        super().run_task(db_task_result)

    def run(self) -> None:
        """Run the worker loop; on a lost database, close connections, wait, resume."""
        delay = 0.5
        while self.running:
            try:
                self._loop()
                return  # batch mode or --max-tasks reached
            except (OperationalError, InterfaceError) as exc:
                logger.warning(
                    "The database is unavailable (%s); retrying in %.1fs.",
                    str(exc).strip().splitlines()[0] if str(exc) else exc,
                    delay,
                )
                _close_connections()
                time.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)

    def _loop(self) -> None:
        """Claim and run ready tasks; between them wait for a wake-up, at most `interval`."""
        logger.info("Starting worker worker_id=%s queues=%s", self.worker_id, self.queue_names)
        if self.startup_delay and self.interval:
            time.sleep(random.random())  # workers started together do not poll in step
        waiter = Waiter(TASKS, dedicated=True)
        try:
            while self.running:
                waiter.listen()  # before looking, so an enqueue in between still wakes us
                close_old_connections()
                task_result, looked = self._claim_next()
                if task_result is not None:
                    self.run_task(task_result)
                if self.batch and looked and task_result is None:
                    return
                if self.max_tasks is not None and self._run_tasks >= self.max_tasks:
                    return
                close_old_connections()
                if self.running and task_result is None:
                    waiter.wait(self.interval)
        finally:
            waiter.close()

    def _claim_next(self) -> tuple[DBTaskResult | None, bool]:
        """The next ready task, claimed by this worker; (None, False) when the DB was locked."""
        tasks = DBTaskResult.objects.ready().filter(backend_name=self.backend_name)
        if not self.process_all_queues:
            tasks = tasks.filter(queue_name__in=self.queue_names)
        if self.excluded_queue_names:
            tasks = tasks.exclude(queue_name__in=self.excluded_queue_names)
        # Look before locking: every enqueue wakes every lane (on SQLite, every write does),
        # and a lane with nothing to do should not open a locking transaction beside the
        # one that claims the task (on SQLite it would take the one write lock).
        if not tasks.exists():
            return None, True
        with exclusive_transaction(tasks.db):
            try:
                task_result = tasks.get_locked()
            except OperationalError as exc:
                if is_locked_database_exception(exc):  # SQLite busy: look again soon
                    return None, False
                raise
            if task_result is not None:
                task_result.claim(self.worker_id)
        return task_result, True


def _close_connections() -> None:
    for conn in connections.all(initialized_only=True):
        try:
            conn.close()
        except Exception:  # a broken connection may fail to close; it is dropped anyway
            conn.connection = None


class Command(DbWorkerCommand):
    help = "Run the task worker (django-tasks-db), surviving database restarts"

    def handle(
        self,
        *,
        verbosity: int,
        queue_name: str,
        interval: float,
        batch: bool,
        backend_name: str,
        startup_delay: bool,
        reload: bool,
        max_tasks: int | None,
        worker_id: str,
        exclude_queues: str,
        **options: object,
    ) -> None:
        self.configure_logging(verbosity)
        queues = queue_name.split(",")
        excluded = exclude_queues.split(",") if exclude_queues else []
        if not batch and max_tasks is None:
            queues, excluded = webhook_lane_start(
                queues, excluded, interval, backend_name, worker_id
            )
        worker = ResilientWorker(
            queue_names=queues,
            interval=interval,
            batch=batch,
            backend_name=backend_name,
            startup_delay=startup_delay,
            max_tasks=max_tasks,
            worker_id=worker_id,
            excluded_queue_names=excluded,
        )
        worker.duties = Duties()  # reclaims, resyncs, health file; see registries.management.duties
        worker.duties.start()
        worker.configure_signals()
        worker.run()


WEBHOOK_QUEUE = "webhooks"


def webhook_lane_start(
    queues: list[str], excluded: list[str], interval: float, backend_name: str, worker_id: str
) -> tuple[list[str], list[str]]:
    """Run webhook deliveries in a thread of their own, so a slow or dead receiver never
    holds up a promotion; returns the queues left to the main loop."""
    wanted = WEBHOOK_QUEUE not in excluded and ("*" in queues or WEBHOOK_QUEUE in queues)
    others = [q for q in queues if q != WEBHOOK_QUEUE]
    if not wanted or not others:
        return queues, excluded  # not ours, or webhooks only: the main loop runs them
    lane = ResilientWorker(
        queue_names=[WEBHOOK_QUEUE],
        interval=interval,
        batch=False,
        backend_name=backend_name,
        startup_delay=False,
        max_tasks=None,
        worker_id=f"{worker_id[:55]}-webhooks",
        excluded_queue_names=[],
    )
    threading.Thread(target=lane.run, name="webhook-lane", daemon=True).start()
    if "*" in queues:
        return queues, [*excluded, WEBHOOK_QUEUE]
    return others, excluded
