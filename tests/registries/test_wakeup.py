"""Waking on SQLite: every commit of another connection is noticed, nothing else is."""

from __future__ import annotations

import sqlite3
import threading

from registries.wakeup import SqliteWatch


def test_every_commit_of_another_connection_is_noticed_even_in_a_reused_log(tmp_path):
    path = str(tmp_path / "promoter.sqlite3")
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE task (id INTEGER PRIMARY KEY)")
    watch = SqliteWatch(path)
    try:
        assert watch.changed() is False
        for number in range(200):
            # The log is rewound each time, so it keeps its size: only the content says
            # that something was committed (the file's size and time may not).
            writer.execute("PRAGMA wal_checkpoint(RESTART)")
            assert watch.changed() is False
            writer.execute("INSERT INTO task (id) VALUES (?)", (number,))
            assert watch.changed() is True, number
            assert watch.changed() is False, number
    finally:
        watch.close()
        writer.close()


def test_a_commit_is_rarely_missed_while_another_connection_writes_at_full_speed(tmp_path):
    """What the worker relies on: after a look that says "nothing", the database almost
    never holds a commit made before that look. Under a writer at full speed with the log
    rewound again and again and the CPU contended, SQLite's data_version (with the log's
    stamp) was seen to miss at most 3 of 1,500 such looks; file times alone missed about one
    in seven. A miss costs the worker one poll interval, never the promotion."""
    path = str(tmp_path / "promoter.sqlite3")
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("PRAGMA wal_autocheckpoint=20")  # the log is rewound again and again
    setup.execute("CREATE TABLE task (id INTEGER PRIMARY KEY)")
    setup.close()
    commits = 1500

    def write() -> None:
        writer = sqlite3.connect(path, isolation_level=None, timeout=10)
        writer.execute("PRAGMA wal_autocheckpoint=20")
        for number in range(commits):
            writer.execute("INSERT INTO task (id) VALUES (?)", (number,))
        writer.close()

    reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    watch = SqliteWatch(path)
    writer = threading.Thread(target=write)
    writer.start()
    known, missed = 0, 0
    try:
        while known < commits:
            if watch.changed():
                known = reader.execute("SELECT count(*) FROM task").fetchone()[0]
                continue
            now = reader.execute("SELECT count(*) FROM task").fetchone()[0]
            # A commit between the look and the count is seen by the next look.
            if now != known and not watch.changed():
                missed += 1
            known = now
    finally:
        writer.join(timeout=60)
        watch.close()
        reader.close()
    assert missed < commits // 100, f"{missed} of {commits} commits were not noticed"


def test_a_database_that_cannot_be_watched_never_claims_a_change(tmp_path):
    watch = SqliteWatch(str(tmp_path / "missing" / "promoter.sqlite3"))
    assert watch.changed() is False
    watch.close()
