"""promoter.settings read in a fresh process with a controlled environment: X_FILE secrets,
clear errors for values that do not parse, and DATABASE_URL for PostgreSQL and SQLite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SHOW = """
import json
import django
django.setup()
from django.conf import settings
names = {names!r}
print(json.dumps({{n: getattr(settings, n) for n in names}}, default=str))
"""


def run(tmp_path: Path, code: str, **variables: str) -> subprocess.CompletedProcess:
    """`python -c code` with only PATH, the settings module, a data dir and `variables`."""
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "promoter.settings",
        "PROMOTER_DATA_DIR": str(tmp_path / "data"),
        **variables,
    }
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def settings_of(tmp_path: Path, *names: str, **variables: str) -> dict:
    result = run(tmp_path, SHOW.format(names=list(names)), **variables)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def refused(tmp_path: Path, **variables: str) -> str:
    """The start-up error the settings give for `variables` (its last line)."""
    result = run(tmp_path, "import django; django.setup()", **variables)
    assert result.returncode != 0, result.stdout
    return result.stderr.strip().splitlines()[-1]


def token_files(tmp_path: Path) -> dict[str, str]:
    """PROMOTER_TOKEN_KEY and _CERT naming files: with PostgreSQL they must be given."""
    (tmp_path / "token.key").write_text("key")
    (tmp_path / "token.crt").write_text("cert")
    return {
        "PROMOTER_TOKEN_KEY": str(tmp_path / "token.key"),
        "PROMOTER_TOKEN_CERT": str(tmp_path / "token.crt"),
    }


def shared_secrets(tmp_path: Path) -> dict[str, str]:
    """What every node of a PostgreSQL deployment is given (never generated then)."""
    return {
        "PROMOTER_SECRET_KEY": "k" * 50,
        "PROMOTER_NOTIFY_SECRET": "n" * 40,
        **token_files(tmp_path),
    }


def subset(database: dict, expected: dict) -> dict:
    """The keys of `expected` in `database` (Django adds its defaults to the rest)."""
    return {k: database.get(k) for k in expected} == expected


def test_every_secret_can_come_from_a_file(tmp_path):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "key").write_text("secret-key-from-a-file\n")
    (secrets / "notify").write_text("notify-secret-from-a-file\n")
    (secrets / "admin").write_text("admin password from a file\n")
    (secrets / "db").write_text("postgres://promoter:pw@db.internal:5432/promoter\n")
    (secrets / "credentials").write_text("credentials-key-from-a-file\n")

    seen = settings_of(
        tmp_path,
        "SECRET_KEY",
        "PROMOTER_NOTIFY_SECRET",
        "PROMOTER_ADMIN_PASSWORD",
        "PROMOTER_CREDENTIALS_KEY",
        "DATABASES",
        PROMOTER_SECRET_KEY_FILE=str(secrets / "key"),
        PROMOTER_CREDENTIALS_KEY_FILE=str(secrets / "credentials"),
        PROMOTER_NOTIFY_SECRET_FILE=str(secrets / "notify"),
        PROMOTER_ADMIN_PASSWORD_FILE=str(secrets / "admin"),
        DATABASE_URL_FILE=str(secrets / "db"),
        **token_files(tmp_path),
        # The file wins over the variable itself.
        PROMOTER_SECRET_KEY="secret-key-from-the-environment",
    )

    assert seen["SECRET_KEY"] == "secret-key-from-a-file"  # without the line break
    assert seen["PROMOTER_NOTIFY_SECRET"] == "notify-secret-from-a-file"
    assert seen["PROMOTER_ADMIN_PASSWORD"] == "admin password from a file"
    assert seen["PROMOTER_CREDENTIALS_KEY"] == "credentials-key-from-a-file"
    database = seen["DATABASES"]["default"]
    assert (database["ENGINE"], database["HOST"], database["PASSWORD"]) == (
        "django.db.backends.postgresql",
        "db.internal",
        "pw",
    )
    # Nothing was generated into the data dir: the secrets came from the files.
    assert not (tmp_path / "data" / "secret_key").exists()
    assert not (tmp_path / "data" / "notify_secret").exists()


def test_a_missing_secret_file_is_a_clear_error(tmp_path):
    missing = tmp_path / "nowhere" / "key"
    assert refused(tmp_path, PROMOTER_SECRET_KEY_FILE=str(missing)).endswith(
        f"PROMOTER_SECRET_KEY_FILE={str(missing)!r} cannot be read: "
        f"[Errno 2] No such file or directory: {str(missing)!r}"
    )


def test_a_value_that_does_not_parse_names_its_variable(tmp_path):
    assert refused(tmp_path, PROMOTER_TOKEN_TTL="five minutes").endswith(
        "ImproperlyConfigured: PROMOTER_TOKEN_TTL='five minutes' is not a whole number."
    )
    assert refused(tmp_path, PROMOTER_REGISTRY_RETRIES="3.5").endswith(
        "PROMOTER_REGISTRY_RETRIES='3.5' is not a whole number."
    )
    assert refused(tmp_path, PROMOTER_REGISTRY_BACKOFF="soon").endswith(
        "PROMOTER_REGISTRY_BACKOFF='soon' is not a number."
    )
    assert refused(tmp_path, PROMOTER_DEBUG="maybe").endswith(
        "PROMOTER_DEBUG='maybe' is not 1/0, true/false, yes/no or on/off."
    )


def test_values_are_parsed_and_empty_means_the_default(tmp_path):
    seen = settings_of(
        tmp_path,
        "PROMOTER_TOKEN_TTL",
        "PROMOTER_ADMIN_PASSWORD",
        "PROMOTER_DEMO",
        "PROMOTER_PORT",
        "PROMOTER_WEB_WORKERS",
        "PROMOTER_LOGIN_MAX_FAILURES",
        "PROMOTER_REGISTRY_BACKOFF",
        "DEBUG",
        "ALLOWED_HOSTS",
        "SECRET_KEY",
        PROMOTER_TOKEN_TTL="",
        PROMOTER_ADMIN_PASSWORD="",
        PROMOTER_DEMO="0",
        PROMOTER_PORT=" 8100 ",
        PROMOTER_WEB_WORKERS="3",
        PROMOTER_LOGIN_MAX_FAILURES="4",
        PROMOTER_REGISTRY_BACKOFF="0.5",
        PROMOTER_DEBUG="yes",
        PROMOTER_ALLOWED_HOSTS="portal.example.com, 10.0.0.7",
        # Taken as it is: "$HOME" is not the HOME variable here.
        PROMOTER_SECRET_KEY="$HOME-is-not-expanded",
    )
    assert seen == {
        "PROMOTER_TOKEN_TTL": 300,
        "PROMOTER_ADMIN_PASSWORD": None,
        "PROMOTER_DEMO": False,
        "PROMOTER_PORT": 8100,
        "PROMOTER_WEB_WORKERS": 3,
        "PROMOTER_LOGIN_MAX_FAILURES": 4,
        "PROMOTER_REGISTRY_BACKOFF": 0.5,
        "DEBUG": True,
        "ALLOWED_HOSTS": ["portal.example.com", "10.0.0.7"],
        "SECRET_KEY": "$HOME-is-not-expanded",
    }


def test_postgres_database_url(tmp_path):
    seen = settings_of(
        tmp_path,
        "DATABASES",
        DATABASE_URL="postgres://promoter:p%40ss%2Fword@db.example.com:5433/prod",
        **shared_secrets(tmp_path),
        PROMOTER_CREDENTIALS_KEY="a key every node shares",
    )
    assert subset(
        seen["DATABASES"]["default"],
        {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "prod",
            "USER": "promoter",
            "PASSWORD": "p@ss/word",
            "HOST": "db.example.com",
            "PORT": 5433,
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        },
    )
    seen = settings_of(
        tmp_path,
        "DATABASES",
        DATABASE_URL="postgresql://db/prod",
        PROMOTER_DB_CONN_MAX_AGE="0",
        **shared_secrets(tmp_path),
        PROMOTER_CREDENTIALS_KEY="a key every node shares",
    )
    database = seen["DATABASES"]["default"]
    assert (database["HOST"], database["NAME"], database["CONN_MAX_AGE"]) == ("db", "prod", 0)


def test_sqlite_database_url_and_the_default(tmp_path):
    options = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL;",
    }
    path = tmp_path / "elsewhere.sqlite3"
    seen = settings_of(tmp_path, "DATABASES", DATABASE_URL=f"sqlite:///{path}")
    assert seen["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert seen["DATABASES"]["default"]["NAME"] == str(path)
    assert seen["DATABASES"]["default"]["OPTIONS"] == options

    default = settings_of(tmp_path, "DATABASES")["DATABASES"]["default"]
    assert subset(
        default,
        {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(tmp_path / "data" / "promoter.sqlite3"),
            "OPTIONS": options,
        },
    )


def test_an_unsupported_database_is_a_clear_error(tmp_path):
    given = shared_secrets(tmp_path)
    assert refused(tmp_path, DATABASE_URL="mysql://u:p@db/promoter", **given).endswith(
        "DATABASE_URL scheme 'mysql' is not supported (postgres, sqlite)."
    )


@pytest.mark.slow
def test_bootstrap_reads_the_admin_password_file_and_skips_the_demo(tmp_path):
    """The compose deployment's first start: migrate, then bootstrap from secrets files."""
    (tmp_path / "admin").write_text("from the secrets file\n")
    variables = {"PROMOTER_ADMIN_PASSWORD_FILE": str(tmp_path / "admin"), "PROMOTER_DEMO": "0"}
    manage = "import sys; from django.core.management import execute_from_command_line as m; "
    for command in ("migrate", "bootstrap"):
        result = run(tmp_path, manage + f"m(['manage.py', '{command}'])", **variables)
        assert result.returncode == 0, result.stderr
        assert "password:" not in result.stdout  # not generated, so nothing printed

    check = """
import django
django.setup()
from django.contrib.auth import authenticate
from registries.models import Registry
print(authenticate(username="Admin", password="from the secrets file") is not None,
      Registry.objects.count())
"""
    result = run(tmp_path, check, **variables)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "0"]
