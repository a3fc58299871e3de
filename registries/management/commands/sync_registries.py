from django.core.management.base import BaseCommand

from registries.models import Registry
from registries.services.index import sync_all, sync_registry


class Command(BaseCommand):
    help = "Reconcile the index with the registries (new, changed and deleted tags)."

    def add_arguments(self, parser):
        parser.add_argument("registry", nargs="*", help="registry names (default: all active)")

    def handle(self, *args, **options):
        names = options["registry"]
        if names:
            reports = [sync_registry(r) for r in Registry.objects.filter(name__in=names)]
        else:
            reports = sync_all()
        failed = False
        for report in reports:
            self.stdout.write(str(report))
            failed = failed or bool(report.errors)
        if failed:
            self.stderr.write("Some registries could not be fully read; see the errors above.")
