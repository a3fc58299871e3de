"""`manage.py registry_identity`: which backing registry the index describes (see README)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from registries.services.identity import registry_identity, registry_identity_claim


class Command(BaseCommand):
    help = (
        "Check that this node's backing registry is the one the index describes; with "
        "--claim, make it so (only when its storage was emptied on purpose)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--claim",
            action="store_true",
            help="give the index this registry's identity, even though it lacks the index's "
            "images (the next sync then records them as deleted)",
        )

    def handle(self, *args, **options):
        state = registry_identity_claim() if options["claim"] else registry_identity()
        if not state.ok:
            raise CommandError(state.problem)
        self.stdout.write(f"ok: the index describes this registry (identity {state.identity})")
