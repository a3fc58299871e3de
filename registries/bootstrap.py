"""First-start setup: built-in tasks, the Admin user, the demo pipeline."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.db import transaction

from accounts.models import Permission, Task
from registries.models import Registry

BUILT_IN_TASKS = [
    ("View & Download Packages", "See registries and pull images.", [Permission.VIEW]),
    (
        "Publish Packages",
        "Push images (never into Validated/Promoted registries).",
        [Permission.VIEW, Permission.PUBLISH],
    ),
    (
        "Promote Packages",
        "Accept promotions into a registry.",
        [Permission.VIEW, Permission.PROMOTE],
    ),
    ("Delete Packages", "Delete tags and images.", [Permission.VIEW, Permission.DELETE]),
    (
        "Manage Feed",
        "Change a registry's settings.",
        [
            Permission.VIEW,
            Permission.PUBLISH,
            Permission.PROMOTE,
            Permission.DELETE,
            Permission.MANAGE_FEED,
        ],
    ),
    ("Administer", "Everything, including users, tasks and API keys.", [Permission.ADMINISTER]),
    (
        "Approve Promotions",
        "Approve or reject requests to promote into a registry whose policy needs approvals.",
        [Permission.VIEW, Permission.APPROVE],
    ),
    (
        "Overwrite Tags",
        "Move a tag that already exists in a registry with immutable tags (promote or roll back).",
        [Permission.VIEW, Permission.OVERWRITE_TAGS],
    ),
]


def tasks_ensure() -> None:
    """Create the built-in tasks (idempotent)."""
    for name, description, permissions in BUILT_IN_TASKS:
        Task.objects.update_or_create(
            name=name,
            defaults={
                "description": description,
                "permissions": [str(p) for p in permissions],
                "built_in": True,
            },
        )


def admin_ensure(password: str | None) -> str | None:
    """Create the `Admin` superuser once; returns the generated password when one was made."""
    users = get_user_model()
    if users.objects.filter(username="Admin").exists():
        return None
    generated = None
    if not password:
        password = generated = secrets.token_urlsafe(12)
    users.objects.create_superuser("Admin", email="", password=password)
    return generated


@transaction.atomic
def demo_ensure(*, require_comments: bool = True) -> bool:
    """Create devdocker (General) → rcdocker → proddocker (Validated/Promoted) once.

    Promotions into the validated registries must say why (`require_comments`).
    """
    if Registry.objects.exists():
        return False
    prod = Registry.objects.create(
        name="proddocker",
        usage_type=Registry.UsageType.VALIDATED,
        require_comment=require_comments,
        description="Production: what production pulls. Content arrives only by promotion.",
    )
    rc = Registry.objects.create(
        name="rcdocker",
        usage_type=Registry.UsageType.VALIDATED,
        require_comment=require_comments,
        promote_to=prod,
        description="Release candidates under test. Content arrives only by promotion.",
    )
    Registry.objects.create(
        name="devdocker",
        usage_type=Registry.UsageType.GENERAL,
        promote_to=rc,
        description="Development builds: CI pushes here.",
    )
    return True
