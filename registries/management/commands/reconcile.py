"""`manage.py reconcile`: requeue promotions whose worker died, then resync the index."""

from django.core.management import call_command
from django.core.management.base import BaseCommand

from registries.services.promotions import promotion_reclaim_stale


class Command(BaseCommand):
    help = (
        "Requeue running promotions without a heartbeat (their worker died), then "
        "reconcile the index with the registries. Safe to run any time, repeatedly."
    )

    def add_arguments(self, parser):
        parser.add_argument("registry", nargs="*", help="registries to sync (default: all active)")
        parser.add_argument(
            "--promotions-only",
            action="store_true",
            help="only requeue stale promotions; skip the registry sync",
        )

    def handle(self, *args, **options):
        reclaimed = promotion_reclaim_stale()
        self.stdout.write(f"promotions: {reclaimed} requeued after their worker stopped")
        if not options["promotions_only"]:
            call_command(
                "sync_registries", *options["registry"], stdout=self.stdout, stderr=self.stderr
            )
