"""`manage.py worker_health`: exit 0 when this container's worker loop ran recently.

Cheap (reads one file, no database, no network): compose's health check runs it often.
"""

from __future__ import annotations

import sys

from django.conf import settings
from django.core.management.base import BaseCommand

from registries.management.duties import health_read, tick_seconds


class Command(BaseCommand):
    help = "Exit 0 when this node's worker loop ran within PROMOTER_STALE_SECONDS, else 1."
    requires_system_checks: list = []

    def handle(self, *args, **options):
        # A round may be slow (a database reconnect): allow the stale timeout, at least 3 ticks.
        limit = max(float(settings.PROMOTER_STALE_SECONDS), 3 * tick_seconds())
        healthy, reason = health_read(limit)
        if healthy:
            self.stdout.write(reason)
            return
        self.stderr.write(f"unhealthy: {reason}")
        sys.exit(1)
