from django.conf import settings
from django.core.management.base import BaseCommand

from registries.bootstrap import admin_ensure, demo_ensure, tasks_ensure


class Command(BaseCommand):
    help = (
        "First-start setup: built-in tasks, the Admin user and "
        "(unless PROMOTER_DEMO=0) the demo pipeline."
    )

    def handle(self, *args, **options):
        tasks_ensure()
        generated = admin_ensure(settings.PROMOTER_ADMIN_PASSWORD)
        if generated:
            self.stdout.write(
                self.style.WARNING(
                    f"Created user Admin with password: {generated}  "
                    "(shown once; change it after signing in)"
                )
            )
        if settings.PROMOTER_DEMO and demo_ensure():
            self.stdout.write("Created the demo pipeline: devdocker → rcdocker → proddocker")
