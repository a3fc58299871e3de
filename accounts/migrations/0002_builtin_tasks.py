from django.db import migrations

BUILT_IN = [
    ("View & Download Packages", "See registries and pull images.", ["view"]),
    (
        "Publish Packages",
        "Push images (never into Validated/Promoted registries).",
        ["view", "publish"],
    ),
    ("Promote Packages", "Accept promotions into a registry.", ["view", "promote"]),
    ("Delete Packages", "Delete tags and images.", ["view", "delete"]),
    (
        "Manage Feed",
        "Change a registry's settings.",
        ["view", "publish", "promote", "delete", "manage_feed"],
    ),
    ("Administer", "Everything, including users, tasks and API keys.", ["administer"]),
]


def create(apps, schema_editor):
    Task = apps.get_model("accounts", "Task")
    for name, description, permissions in BUILT_IN:
        Task.objects.update_or_create(
            name=name,
            defaults={"description": description, "permissions": permissions, "built_in": True},
        )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
