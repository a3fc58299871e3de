from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("registries", "0004_untagged_images"),
    ]

    operations = [
        migrations.CreateModel(
            name="Coordination",
            fields=[
                (
                    "name",
                    models.CharField(max_length=64, primary_key=True, serialize=False),
                ),
                ("value", models.CharField(blank=True, max_length=255)),
                ("updated_at", models.DateTimeField()),
            ],
        ),
    ]
