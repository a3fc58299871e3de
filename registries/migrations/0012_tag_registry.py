"""Each tag carries its repository's registry, so the board reads a registry's newest tags
off one index (registry, -pushed_at, name) instead of walking every tag newest first."""

import django.db.models.deletion
from django.db import migrations, models

FILL = """
UPDATE registries_tag SET registry_id = (
    SELECT registry_id FROM registries_repository
    WHERE registries_repository.id = registries_tag.repository_id
)
"""


class Migration(migrations.Migration):
    dependencies = [
        ("registries", "0011_tag_pushed_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="tag",
            name="registry",
            field=models.ForeignKey(
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="registries.registry",
            ),
        ),
        migrations.RunSQL(FILL, migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="tag",
            name="registry",
            field=models.ForeignKey(
                db_index=False,
                editable=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="registries.registry",
            ),
        ),
        migrations.RemoveIndex(model_name="tag", name="tag_pushed_idx"),
        migrations.AddIndex(
            model_name="tag",
            index=models.Index(
                fields=["registry", "-pushed_at", "name"], name="tag_registry_pushed_idx"
            ),
        ),
    ]
