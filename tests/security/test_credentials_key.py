"""The key that encrypts stored registry passwords: with PostgreSQL (several nodes share
the database) a missing key is a start-up error, never a generated one; with SQLite
(`make run`) it is generated once into the data dir."""

from __future__ import annotations

from tests.test_settings import refused, settings_of


def test_postgres_without_a_credentials_key_refuses_to_start(tmp_path):
    # Every other shared secret given, as on a real node: only the credentials key is missing.
    (tmp_path / "token.key").write_text("key")
    (tmp_path / "token.crt").write_text("cert")
    error = refused(
        tmp_path,
        DATABASE_URL="postgres://promoter:pw@db.example.com/prod",
        PROMOTER_SECRET_KEY="s" * 50,
        PROMOTER_NOTIFY_SECRET="n" * 40,
        PROMOTER_REGISTRY_HTTP_SECRET="h" * 40,
        PROMOTER_TOKEN_KEY=str(tmp_path / "token.key"),
        PROMOTER_TOKEN_CERT=str(tmp_path / "token.crt"),
    )
    assert "ImproperlyConfigured: PROMOTER_CREDENTIALS_KEY is not set" in error
    assert "encrypts the registry passwords" in error
    assert not (tmp_path / "data" / "credentials_key").exists()


def test_sqlite_generates_the_key_once_into_the_data_dir(tmp_path):
    first = settings_of(tmp_path, "PROMOTER_CREDENTIALS_KEY")["PROMOTER_CREDENTIALS_KEY"]
    again = settings_of(tmp_path, "PROMOTER_CREDENTIALS_KEY")["PROMOTER_CREDENTIALS_KEY"]
    assert len(first) > 40 and first == again
    key_file = tmp_path / "data" / "credentials_key"
    assert key_file.read_text().strip() == first and oct(key_file.stat().st_mode)[-3:] == "600"
