"""Waking whoever waits on the database at once, instead of polling it.

On PostgreSQL: LISTEN/NOTIFY (a notification sent inside a transaction is delivered at its
commit). On SQLite (`make run`, one machine): a waiter watches the database's
`PRAGMA data_version` on a connection of its own (it changes with every commit of another
connection; read from the shared memory of the write-ahead log, no disk read) and asks
the database again only when it changed. (The WAL file's size and time are not enough:
once the log is reused its size stays put, and its time ticks too coarsely to tell two
commits apart.) Either way a waiter also looks again after its `timeout`, so a lost
notification costs one interval, never a hang.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time

from django.db import connection

log = logging.getLogger(__name__)

TASKS = "promoter_tasks"  # a task was enqueued: the worker looks for work
PROMOTIONS = "promoter_promotions"  # payload: the id of a promotion that finished
SQLITE_WATCH_EVERY = 0.005  # seconds between two looks at SQLite's data_version
# While the database is busy (it changed within SQLITE_BUSY_FOR seconds), looks come this
# often: a promotion being requested, run and waited for is a chain of such wake-ups.
SQLITE_WATCH_BUSY = 0.001
SQLITE_BUSY_FOR = 2.0


def notify(channel: str, payload: str = "") -> None:
    """Wake the listeners of `channel` (PostgreSQL); on SQLite the commit itself wakes them."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [channel, payload])


class Waiter:
    """Sleeps until `channel` is notified (or, on SQLite, the database is written) or a timeout.

    `dedicated=True` listens on a connection of its own (the worker: Django may close its
    connection between tasks); otherwise on Django's connection of this thread, for the
    duration of one wait (a web request waiting for its promotion).
    """

    def __init__(self, channel: str, *, dedicated: bool = False) -> None:
        self.channel = channel
        self.dedicated = dedicated
        self.postgres = connection.vendor == "postgresql"
        self._conn = None
        self._watch: SqliteWatch | None = None
        if not self.postgres:
            name = str(connection.settings_dict.get("NAME") or "")
            if name and name != ":memory:" and "mode=memory" not in name:
                self._watch = SqliteWatch(name)
        self._changed_at = time.monotonic()  # a waiter is made when something is going on

    # --- PostgreSQL -----------------------------------------------------------------
    def listen(self) -> None:
        """Start listening (before looking at the database, so no change slips between)."""
        if not self.postgres or self._conn is not None:
            return
        try:
            if self.dedicated:
                import psycopg

                params = connection.get_connection_params()
                params.pop("cursor_factory", None)
                params.pop("context", None)
                self._conn = psycopg.connect(**params, autocommit=True)
            else:
                connection.ensure_connection()
                if connection.in_atomic_block:
                    return  # LISTEN would wait for the commit: fall back to the timeout
                self._conn = connection.connection
            self._conn.execute(f'LISTEN "{self.channel}"')
        except Exception as exc:  # a waiter that cannot listen still waits out its timeout
            log.warning("cannot LISTEN on %s (%s); polling instead", self.channel, exc)
            self._drop()

    def close(self) -> None:
        """Stop listening; Django's connection is left as it was found."""
        if self._watch is not None:
            self._watch.close()
        if self._conn is None:
            return
        try:
            if self.dedicated:
                self._conn.close()
            else:
                self._conn.execute(f'UNLISTEN "{self.channel}"')
                for _ in self._conn.notifies(timeout=0):  # drop what is still queued
                    pass
        except Exception:  # closing is best effort; a broken connection is discarded anyway
            pass
        self._conn = None

    def _drop(self) -> None:
        if self._conn is not None and self.dedicated:
            try:
                self._conn.close()
            except Exception:
                pass
        self._conn = None

    # --- waiting ----------------------------------------------------------------------
    def wait(self, timeout: float, payload: str | None = None) -> bool:
        """Block up to `timeout` seconds; True when woken (by `payload`, if one is given)."""
        deadline = time.monotonic() + max(0.0, timeout)
        if self.postgres:
            self.listen()
            if self._conn is None:
                time.sleep(max(0.0, deadline - time.monotonic()))
                return False
            try:
                while (remaining := deadline - time.monotonic()) > 0:
                    for note in self._conn.notifies(timeout=remaining, stop_after=1):
                        if payload is None or note.payload == payload:
                            return True
                return False
            except Exception as exc:  # the database went away: listen again next time
                log.warning("lost LISTEN on %s (%s)", self.channel, exc)
                self._drop()
                return False
        while (remaining := deadline - time.monotonic()) > 0:
            if self._watch is not None and self._watch.changed():
                self._changed_at = time.monotonic()
                return True
            busy = time.monotonic() - self._changed_at < SQLITE_BUSY_FOR
            time.sleep(min(SQLITE_WATCH_BUSY if busy else SQLITE_WATCH_EVERY, remaining))
        return False


class SqliteWatch:
    """Tells whether an SQLite database was written since the last look (by anyone else).

    Two signals, either enough: the watching connection's `PRAGMA data_version` (changes
    with every other connection's commit) and the write-ahead log's size, time and inode (a
    commit writes the log; a checkpoint does not). Under a writer at full speed with the
    log rewound again and again and the CPU contended, this still misses a commit rarely
    (up to 3 looks in 1,500; file times alone missed one in seven): the waiter's timeout
    (the worker's poll interval) bounds what a miss costs."""

    def __init__(self, path: str) -> None:
        self._db: sqlite3.Connection | None = None
        self._log = path + "-wal"
        try:
            # Its own connection, which never writes: every commit is another connection's.
            self._db = sqlite3.connect(path, timeout=1.0, check_same_thread=False)
            self._seen = self._look()
        except sqlite3.Error as exc:  # a waiter that cannot watch still waits out its timeout
            log.warning("cannot watch %s (%s); polling instead", path, exc)
            self.close()

    def _look(self) -> tuple:
        assert self._db is not None
        try:
            st = os.stat(self._log)
            stamp = (st.st_size, st.st_mtime_ns, st.st_ino)
        except OSError:
            stamp = None
        return (self._db.execute("PRAGMA data_version").fetchone()[0], stamp)

    def changed(self) -> bool:
        """True once for each look that follows one or more commits."""
        if self._db is None:
            return False
        try:
            seen = self._look()
        except sqlite3.Error:
            return True  # look at the database itself; it says what is there
        if seen == self._seen:
            return False
        self._seen = seen
        return True

    def close(self) -> None:
        """Close the watching connection."""
        if self._db is not None:
            self._db.close()
            self._db = None
