"""The key that encrypts stored registry passwords: with PostgreSQL (several nodes share
the database) a missing key is a start-up error, never a generated one; with SQLite
(`make run`) it is generated once into the data dir."""

from __future__ import annotations

from tests.test_settings import refused, settings_of


def test_postgres_without_a_credentials_key_refuses_to_start(tmp_path):
    error = refused(tmp_path, DATABASE_URL="postgres://promoter:pw@db.example.com/prod")
    assert error.endswith(
        "ImproperlyConfigured: Set PROMOTER_CREDENTIALS_KEY (a long random string, the same "
        "on every node): it encrypts the registry passwords stored in the database."
    )
    assert not (tmp_path / "data" / "credentials_key").exists()


def test_sqlite_generates_the_key_once_into_the_data_dir(tmp_path):
    first = settings_of(tmp_path, "PROMOTER_CREDENTIALS_KEY")["PROMOTER_CREDENTIALS_KEY"]
    again = settings_of(tmp_path, "PROMOTER_CREDENTIALS_KEY")["PROMOTER_CREDENTIALS_KEY"]
    assert len(first) > 40 and first == again
    key_file = tmp_path / "data" / "credentials_key"
    assert key_file.read_text().strip() == first and oct(key_file.stat().st_mode)[-3:] == "600"
