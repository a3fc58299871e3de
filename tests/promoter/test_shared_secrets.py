"""Shared secrets: one value for every process of a node, and never made up with PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Each process waits for the start file, then reads its settings (which may generate the
# secrets) and the token key and certificate, and prints fingerprints of what it got.
PROBE = """
import os, sys, time, hashlib, pathlib
go = pathlib.Path(sys.argv[1])
deadline = time.monotonic() + 60
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.001)
import django
django.setup()
from django.conf import settings
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from accounts.tokens import ensure_signing_key
key_path, cert_path = ensure_signing_key()
key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
der = lambda k: k.public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
)
h = lambda b: hashlib.sha256(b if isinstance(b, bytes) else b.encode()).hexdigest()[:16]
print(" ".join([
    h(settings.SECRET_KEY), h(settings.PROMOTER_NOTIFY_SECRET),
    h(settings.PROMOTER_REGISTRY_HTTP_SECRET), h(der(key.public_key())),
    "cert-matches" if der(cert.public_key()) == der(key.public_key()) else "cert-differs",
]))
"""

SHARED = (
    "PROMOTER_SECRET_KEY",
    "PROMOTER_NOTIFY_SECRET",
    "PROMOTER_REGISTRY_HTTP_SECRET",
    "PROMOTER_TOKEN_KEY",
    "PROMOTER_TOKEN_CERT",
)


def _env(data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SHARED and k != "DATABASE_URL"}
    env.update(DJANGO_SETTINGS_MODULE="promoter.settings", PROMOTER_DATA_DIR=str(data), **extra)
    return env


def test_eight_processes_starting_on_an_empty_data_dir_end_with_one_of_each_secret(tmp_path):
    data, go = tmp_path / "data", tmp_path / "go"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", PROBE, str(go)],
            cwd=ROOT,
            env=_env(data),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    time.sleep(1.5)  # let every interpreter get to the start line
    go.touch()
    results = [p.communicate(timeout=120) for p in processes]

    assert [p.returncode for p in processes] == [0] * 8, [err for _, err in results]
    lines = {out.strip() for out, _ in results}
    assert len(lines) == 1, lines  # one secret key, notify secret, http secret, token key
    assert lines.pop().endswith("cert-matches")
    on_disk = hashlib.sha256((data / "secret_key").read_bytes()).hexdigest()[:16]
    assert results[0][0].split()[0] == on_disk
    assert oct((data / "token.key").stat().st_mode & 0o777) == "0o600"
    assert not [p.name for p in data.iterdir() if p.name.startswith(".")]  # no temp files left


def _start(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_with_postgresql_a_missing_shared_secret_stops_the_start(tmp_path):
    postgres = {"DATABASE_URL": "postgres://promoter@127.0.0.1:1/promoter"}
    result = _start(_env(tmp_path / "a", **postgres))
    assert result.returncode != 0
    assert "PROMOTER_SECRET_KEY is not set" in result.stderr
    assert "every web and worker node must share it" in result.stderr
    assert not (tmp_path / "a" / "secret_key").exists()  # nothing made up

    given = {**postgres, "PROMOTER_SECRET_KEY": "k" * 50, "PROMOTER_NOTIFY_SECRET": "n" * 40}
    result = _start(_env(tmp_path / "b", **given))
    assert result.returncode != 0
    assert "PROMOTER_TOKEN_KEY is not set" in result.stderr
    assert not (tmp_path / "b" / "token.key").exists()


def test_an_empty_secret_file_left_by_a_crash_is_refused_not_used(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "secret_key").write_text("")
    result = _start(_env(data))
    assert result.returncode != 0
    assert "secret_key is empty" in result.stderr
