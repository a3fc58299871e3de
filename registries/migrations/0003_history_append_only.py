"""History is append-only in the database too: UPDATE and DELETE raise (PostgreSQL).

TRUNCATE (test flushes, deliberate resets) is not affected.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION promoter_history_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'History is append-only: % on registries_historyevent is not allowed', TG_OP;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS history_append_only ON registries_historyevent;
CREATE TRIGGER history_append_only BEFORE UPDATE OR DELETE ON registries_historyevent
    FOR EACH ROW EXECUTE FUNCTION promoter_history_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS history_append_only ON registries_historyevent;
DROP FUNCTION IF EXISTS promoter_history_append_only();
"""

SQLITE_CREATE = [
    "CREATE TRIGGER IF NOT EXISTS history_no_update BEFORE UPDATE ON registries_historyevent "
    "BEGIN SELECT RAISE(ABORT, 'History is append-only'); END;",
    "CREATE TRIGGER IF NOT EXISTS history_no_delete BEFORE DELETE ON registries_historyevent "
    "BEGIN SELECT RAISE(ABORT, 'History is append-only'); END;",
]
SQLITE_DROP = ["DROP TRIGGER IF EXISTS history_no_update;", "DROP TRIGGER IF EXISTS history_no_delete;"]


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_CREATE:
            schema_editor.execute(statement)


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(DROP, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_DROP:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("registries", "0002_history_user_no_constraint")]
    operations = [migrations.RunPython(forwards, backwards)]
