"""Health of this node: liveness (the process and its database) and readiness (registries).

Liveness (`/healthz`) must not depend on the registry: a load balancer that saw every web
node fail when the registry was down would take the whole site away, pages and sign-in
included. Readiness (`/readyz`) adds the bundled registry and its identity.
"""

from __future__ import annotations

from django.db import connection

from registries.connections import bundled_client
from registries.oci.errors import RegistryError
from registries.services.identity import registry_identity


def liveness_checks() -> dict[str, str]:
    """{"database": "ok" | "down: why"}: what this process needs to answer at all."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"database": "ok"}
    except Exception as exc:  # any driver error means "down"
        return {"database": f"down: {exc.__class__.__name__}"}


def health_checks() -> dict[str, str]:
    """{component: "ok" | "down: why"}: the database, the bundled registry and its identity."""
    checks = liveness_checks()
    try:
        bundled_client().ping()
        checks["registry"] = "ok"
    except RegistryError as exc:
        checks["registry"] = f"down: {exc.message}"
    if checks["database"] != "ok":
        checks["registry_identity"] = "unknown: the database is down"
    elif checks["registry"] != "ok":
        checks["registry_identity"] = "unknown: the registry is down"
    else:
        try:
            identity = registry_identity(claim=False)
        except Exception as exc:  # never a 500 from a health check
            checks["registry_identity"] = f"unknown: {exc.__class__.__name__}"
        else:
            checks["registry_identity"] = "ok" if identity.ok else f"down: {identity.problem}"
    return checks
