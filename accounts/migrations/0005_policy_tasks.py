from django.db import migrations

BUILT_IN = [
    (
        "Approve Promotions",
        "Approve or reject requests to promote into a registry whose policy needs approvals.",
        ["view", "approve"],
    ),
    (
        "Overwrite Tags",
        "Move a tag that already exists in a registry with immutable tags (promote or roll back).",
        ["view", "overwrite_tags"],
    ),
]


def create(apps, schema_editor):
    Task = apps.get_model("accounts", "Task")
    for name, description, permissions in BUILT_IN:
        Task.objects.update_or_create(
            name=name,
            defaults={"description": description, "permissions": permissions, "built_in": True},
        )


def remove(apps, schema_editor):
    Task = apps.get_model("accounts", "Task")
    Task.objects.filter(name__in=[name for name, _, _ in BUILT_IN], built_in=True).delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_auditevent")]
    operations = [migrations.RunPython(create, remove)]
