"""Periodic duties every worker runs, each under a database lock so N workers do it once.

Reclaiming promotions whose worker died (no heartbeat for PROMOTER_STALE_SECONDS), and the
full resync of the index every PROMOTER_SYNC_INTERVAL seconds (the registry's notification
queue lives in memory and loses events when it restarts).
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.utils import timezone

from registries.locks import database_lock
from registries.models import Coordination
from registries.services.index import SyncReport, sync_all
from registries.services.promotions import promotion_reclaim_stale

log = logging.getLogger(__name__)
RESYNC_ROW = "resync-at"


def stale_promotions_reclaim() -> int | None:
    """Requeue promotions whose worker died; None when another worker is doing it now."""
    with database_lock("reclaim") as held:
        if not held:
            return None
        reclaimed = promotion_reclaim_stale()
    if reclaimed:
        log.warning("requeued %s promotion(s) whose worker stopped", reclaimed)
    return reclaimed


def resync_if_due(*, interval: float | None = None) -> list[SyncReport] | None:
    """Resync every registry when the last resync (by any worker) is `interval` seconds old.

    Returns the reports, or None when it was not due or another worker is running it.
    """
    interval = float(settings.PROMOTER_SYNC_INTERVAL if interval is None else interval)
    if interval <= 0 or not _resync_due(interval):  # 0: no periodic resync
        return None
    with database_lock("resync", lease=max(interval, 600.0)) as held:
        if not held or not _resync_due(interval):  # re-read: another worker just did it
            return None
        # Stamped first: a resync that crashes is not retried by every worker at once.
        Coordination.objects.update_or_create(
            name=RESYNC_ROW, defaults={"value": "", "updated_at": timezone.now()}
        )
        reports = sync_all()
    for report in reports:
        (log.warning if report.errors else log.info)("resync: %s", report)
    return reports


def _resync_due(interval: float) -> bool:
    # A new deployment starts the clock (notifications keep a fresh index current); after
    # downtime the stamp is old, so the first worker back resyncs at once.
    row, _ = Coordination.objects.get_or_create(
        name=RESYNC_ROW, defaults={"value": "", "updated_at": timezone.now()}
    )
    return timezone.now() - row.updated_at >= dt.timedelta(seconds=interval)
