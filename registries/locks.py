"""Cluster-wide try-locks in the shared database, so N nodes do periodic work once.

PostgreSQL: a session advisory lock (`pg_try_advisory_lock`), released on unlock or when
the holder's connection ends, so a killed worker never keeps it. SQLite (one machine): a
lease row in `Coordination`, taken by one conditional UPDATE and expiring after `lease`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from registries.models import Coordination

log = logging.getLogger(__name__)
NAMESPACE = "promoter:"


def _advisory_key(name: str) -> int:
    """A stable signed 64-bit key for `name` (the same on every node)."""
    digest = hashlib.sha256((NAMESPACE + name).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def database_lock(name: str, *, lease: float = 600.0) -> Iterator[bool]:
    """Try to take the lock `name` without waiting; yields True when this caller holds it."""
    if connection.vendor == "postgresql":
        with _advisory_lock(name) as held:
            yield held
    else:
        with _lease_lock(name, lease) as held:
            yield held


@contextmanager
def _advisory_lock(name: str) -> Iterator[bool]:
    key = _advisory_key(name)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        held = bool(cursor.fetchone()[0])
    try:
        yield held
    finally:
        if held:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
            except Exception:  # a lost connection released the lock with it
                log.warning("could not release lock %s; its connection is gone", name)


@contextmanager
def _lease_lock(name: str, lease: float) -> Iterator[bool]:
    row = f"lock:{name}"[:64]
    holder = f"{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:8]}"
    now = timezone.now()
    epoch = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    Coordination.objects.get_or_create(name=row, defaults={"value": "", "updated_at": epoch})
    held = bool(
        Coordination.objects.filter(name=row)
        .filter(Q(value="") | Q(updated_at__lt=now - dt.timedelta(seconds=lease)))
        .update(value=holder, updated_at=now)
    )
    try:
        yield held
    finally:
        if held:
            Coordination.objects.filter(name=row, value=holder).update(value="")


def transaction_lock(name: str) -> None:
    """Inside the caller's transaction, wait for the lock `name` (released when it ends).

    PostgreSQL: `pg_advisory_xact_lock`. SQLite needs none: its transactions begin IMMEDIATE
    (settings), so writers already go one at a time.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_advisory_key(f"xact:{name}")])
