"""`manage.py check --deploy` is clean with production settings."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import django
from django.core.management import call_command
django.setup()
call_command("check", deploy=True, fail_level="DEBUG")
from django.conf import settings
assert settings.SESSION_COOKIE_SECURE and settings.CSRF_COOKIE_SECURE
print("clean")
"""


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "promoter.settings",
        "PROMOTER_PUBLIC_URL": "https://promoter.example.com",
        "PROMOTER_DEBUG": "0",
        "PROMOTER_SECRET_KEY": secrets.token_urlsafe(64),
        "PROMOTER_DATA_DIR": str(tmp_path),
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set for browser tests, never in deployment
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "clean" in result.stdout
    assert "WARNINGS" not in output and "?:" not in output, output
