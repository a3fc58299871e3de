"""Whether this node's database and the bundled registry answer (for /healthz)."""

from __future__ import annotations

from django.db import connection

from registries.connections import bundled_client
from registries.oci.errors import RegistryError


def health_checks() -> dict[str, str]:
    """{component: "ok" | "down: why"} for the database and the bundled registry."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means "down"
        checks["database"] = f"down: {exc.__class__.__name__}"
    try:
        bundled_client().ping()
        checks["registry"] = "ok"
    except RegistryError as exc:
        checks["registry"] = f"down: {exc.message}"
    return checks
