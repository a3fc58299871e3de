"""The `promoter` command as a person or a CI job gets it: installed by `pip install .` into
a fresh virtual environment (no Django there: it speaks only HTTP), run as a process
against Promoter under gunicorn with the real task worker. It promotes with --wait, shows
a batch's progress (lines in a log, a bar on a terminal), prints --json, and leaves with the
documented exit code for each outcome."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from registries.models import Batch, HistoryEvent, Promotion, Registry
from registries.services.batches import batch_rerun_failed
from registries.services.policies import policy_update
from tests.support.accounts import key_secret
from tests.support.batches import break_blob, push_release, row_counts, wait_indexed
from tests.support.images import push_image
from tests.support.runner import ROOT, Gunicorn

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# The documented exit codes (README, "Many at once, a dry run first, and from the command line").
OK, FAILED, USAGE, POLICY, NOT_FOUND, AUTH, TIMEOUT, UNREACHABLE = 0, 1, 2, 3, 4, 5, 6, 7
SKIP = {".git", ".venv", ".cache", ".run", "staticfiles", "__pycache__", "build", "tests", "bench"}


@pytest.fixture(scope="module")
def promoter_bin(tmp_path_factory) -> Path:
    """`pip install .` of this checkout (copied, so the build leaves nothing in the tree)
    into a fresh venv of the running Python; returns its `promoter` script."""
    base = tmp_path_factory.mktemp("cli")
    source = base / "src"
    shutil.copytree(
        ROOT,
        source,
        ignore=lambda d, names: [n for n in names if n in SKIP or n.endswith(".egg-info")],
    )
    python = (
        Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    )
    venv = base / "venv"
    subprocess.run([str(python), "-m", "venv", str(venv)], check=True, timeout=120)
    installed = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-3000:]
    script = venv / "bin" / "promoter"
    assert script.exists()
    return script


@pytest.fixture(scope="module")
def stack(portal, django_db_setup, tmp_path_factory):
    """gunicorn on the test database, queueing promotions for the real worker."""
    server = Gunicorn(tmp_path_factory.mktemp("gunicorn"))
    yield server
    server.stop()


class Cli:
    """`promoter ARGS` as a process, with PROMOTER_URL and PROMOTER_API_KEY set."""

    def __init__(self, script: Path, url: str, key: str) -> None:
        self.script, self.url, self.key = script, url, key

    def env(self, url: str | None, key: str | None) -> dict[str, str]:
        return {
            "PATH": "/usr/bin:/bin",
            "HOME": os.environ.get("HOME", "/tmp"),
            "LANG": "C.UTF-8",
            "PROMOTER_URL": url or self.url,
            "PROMOTER_API_KEY": key or self.key,
        }

    def __call__(self, *args: str, key: str | None = None, url: str | None = None):
        return subprocess.run(
            [str(self.script), *args],
            capture_output=True,
            text=True,
            env=self.env(url, key),
            timeout=180,
        )

    def terminal(self, *args: str, timeout: float = 120) -> tuple[int, str]:
        """Run it in a pseudo-terminal, as at a person's shell; (exit code, what it showed)."""
        controller, terminal = pty.openpty()
        env = {**self.env(None, None), "TERM": "xterm-256color", "COLUMNS": "160"}
        proc = subprocess.Popen(
            [str(self.script), *args], stdin=terminal, stdout=terminal, stderr=terminal, env=env
        )
        os.close(terminal)
        screen, deadline = b"", time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([controller], [], [], 1.0)
                if not ready:
                    if proc.poll() is not None:
                        break
                    continue
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # the process closed the terminal
                    break
                if not chunk:
                    break
                screen += chunk
            code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            os.close(controller)
        return code, screen.decode(errors="replace")


@pytest.fixture
def cli(promoter_bin, stack, demo) -> Cli:
    return Cli(promoter_bin, stack.url, key_secret("system", name="ci"))


def test_promote_with_wait_prints_json_status_history_and_list(cli, demo, pushed, real_worker):
    repo, info = pushed

    done = cli(
        "promote", f"devdocker/{repo}:1.0", "--to", "rcdocker", "-m", "From CI", "--wait", "--json"
    )

    assert done.returncode == OK, done.stderr
    status = json.loads(done.stdout)
    assert (status["status"], status["digest"], status["toFeed"]) == (
        "succeeded",
        info.digest,
        "rcdocker",
    )
    blobs = len(info.blob_digests)  # the progress, one line per change (not a terminal)
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"promotion {status['id']} {repo}:1.0: succeeded, {blobs} of {blobs}")
    event = HistoryEvent.objects.get(action="promoted")
    assert (event.registry, event.digest, event.comment, event.actor) == (
        "rcdocker",
        info.digest,
        "From CI",
        "API key ci",
    )
    again = cli("status", str(status["id"]), "--json")
    assert again.returncode == OK and json.loads(again.stdout)["status"] == "succeeded"
    history = cli("history", f"rcdocker/{repo}:1.0", "--json")
    assert history.returncode == OK, history.stderr
    assert [(e["action"], e["fromFeed"], e["comments"]) for e in json.loads(history.stdout)][0] == (
        "promoted",
        "devdocker",
        "From CI",
    )
    listed = cli("list", "--from", "devdocker", "--status", "succeeded", "--json")
    assert [p["id"] for p in json.loads(listed.stdout)] == [status["id"]]
    table = cli("list", "--from", "devdocker")
    assert table.returncode == OK and f"{repo}:1.0" in table.stdout and "succeeded" in table.stdout
    none = cli("list", "--from", "devdocker", "--status", "failed", "--json")
    assert none.returncode == OK and json.loads(none.stdout) == []


def test_a_batch_shows_its_progress_and_exits_1_when_one_image_failed(
    cli, demo, admin_creds, tmp_path, real_worker
):
    prefix, images = push_release(
        demo.hostport, creds=admin_creds, tmp_path=tmp_path, repositories=2
    )
    wait_indexed("devdocker", images)
    broken = (f"{prefix}/svc1", "4.2.0")
    path, data = break_blob(demo.registry, images[broken].layer_digests[0])

    run = cli("promote", f"devdocker/{prefix}/*", "--tags", "4.2.*", "-m", "Release 4.2", "--wait")

    assert run.returncode == FAILED, run.stdout + run.stderr
    lines = [line for line in run.stderr.splitlines() if line.startswith("batch ")]
    assert lines and lines[-1].startswith("batch ") and ": failed, 6 of 6 images" in lines[-1]
    assert "5 succeeded, 1 failed, 0 refused" in run.stdout
    assert f"{broken[0]}:{broken[1]}" in run.stdout
    batch_id = run.stdout.split()[1].rstrip(":")
    assert HistoryEvent.objects.filter(action="promoted").count() == 5

    # On a terminal: rich's progress bar, once the failed one runs again and succeeds.
    path.write_bytes(data)
    rerun = cli("status", "--batch", batch_id, "--json")
    assert json.loads(rerun.stdout)["failed"] == 1 and rerun.returncode == FAILED
    batch_rerun_failed(batch=Batch.objects.get(pk=batch_id), actor=_admin())
    code, screen = cli.terminal("status", "--batch", batch_id, "--wait")
    assert code == OK, screen
    assert "6/6" in screen and "━" in screen, screen  # rich's bar: images done of all
    assert "6 succeeded, 0 failed" in screen


def test_each_outcome_has_its_exit_code(cli, demo, pushed, stack, tmp_path):
    """Without a worker here: a promotion stays queued (so --wait times out)."""
    repo, info = pushed
    ref = f"devdocker/{repo}:1.0"
    wait_indexed("devdocker", [(repo, "1.0")])  # the push's notification, before counting

    before = row_counts()
    dry = cli("promote", ref, "--dry-run", "--json")
    assert dry.returncode == OK, dry.stderr
    preview = json.loads(dry.stdout)
    assert preview["dryRun"] and preview["digest"] == info.digest and preview["ok"]
    assert preview["transfer"]["blobsToMount"] == len(info.blob_digests)
    assert row_counts() == before  # the dry run wrote nothing

    assert cli("promote", "devdocker/no/such:1.0").returncode == NOT_FOUND
    assert cli("promote", "nofeed/x:1.0").returncode == NOT_FOUND
    assert cli("status", "999999").returncode == NOT_FOUND
    assert cli("promote", "devdocker").returncode == USAGE
    assert cli("promote", ref, "--wait-timeout", "0").returncode == USAGE
    wrong = cli("promote", ref, key="not-a-key")
    assert wrong.returncode == AUTH and "API key" in wrong.stderr
    assert cli("list", url="http://127.0.0.1:9").returncode == UNREACHABLE

    policy_update(
        registry=Registry.objects.get(name="rcdocker"),
        actor=_admin(),
        values={"required_labels": [{"key": "org.opencontainers.image.revision"}]},
    )
    blocked = cli("promote", ref, "--json")
    assert blocked.returncode == POLICY, blocked.stderr
    refusal = json.loads(blocked.stdout)
    assert refusal["policy"]["unmet"] == ["labels"]
    assert "✗ label org.opencontainers.image.revision missing" in blocked.stderr
    would = cli("promote", ref, "--dry-run")
    assert (
        would.returncode == POLICY
        and "label org.opencontainers.image.revision missing" in would.stdout
    )
    policy_update(
        registry=Registry.objects.get(name="rcdocker"),
        actor=_admin(),
        values={"required_labels": []},
    )

    queued = cli("promote", ref, "--wait", "--wait-timeout", "2", "--poll", "0.5", "--json")
    assert queued.returncode == TIMEOUT, queued.stderr
    assert json.loads(queued.stdout)["status"] == "queued"
    assert "still queued after 2 seconds" in queued.stderr
    assert Promotion.objects.get().status == "queued"


def test_a_failed_promotion_exits_1(cli, demo, admin_creds, unique_repo, tmp_path, real_worker):
    info = push_image(
        demo.hostport,
        f"devdocker/{unique_repo}",
        "1.0",
        layers=2,
        creds=admin_creds,
        tmp_path=tmp_path,
    )
    break_blob(demo.registry, info.layer_digests[1])

    failed = cli("promote", f"devdocker/{unique_repo}:1.0", "--wait")

    assert failed.returncode == FAILED, failed.stdout + failed.stderr
    assert ": failed" in failed.stdout and info.layer_digests[1] in failed.stderr


def _admin():
    from django.contrib.auth import get_user_model

    from accounts.permissions import Principal

    return Principal(user=get_user_model().objects.get(username="Admin"))
