from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_builtin_tasks")]

    operations = [
        migrations.CreateModel(
            name="LoginFailure",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("username", models.CharField(max_length=150)),
                ("address", models.CharField(max_length=64)),
                ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
            ],
            options={
                "indexes": [models.Index(fields=["username", "address", "created_at"],
                                         name="login_failure_lookup")],
            },
        ),
    ]
