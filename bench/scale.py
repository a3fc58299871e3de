"""Pages at real data sizes (run by hand; results go to bench/README.md).

Seeds 3 registries, 2,000 repositories (one with 9,000 tags), 100,000 tags, 1,000,000
History events (one repository with 347,000, one tag with 15,000, a 25-event tag inside
that repository) and 50,000 promotions, with bulk inserts (COPY on PostgreSQL,
executemany in large transactions on SQLite); then, through real HTTP to gunicorn, times
every page and list (p50/p95) as Admin and as a user who may view only devdocker, and
counts each page's SQL queries (Django's test client, in-process, same database).

    .venv/bin/python bench/scale.py [--db postgres,sqlite] [--scale 1.0] [--requests 40]

`--scale 0.1` seeds a tenth of every size (a quick look). `--no-readme` prints only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import (  # noqa: E402
    Postgres,
    Web,
    machine,
    percentile,
    readme_section,
    signed_in,
)

PASSWORD = "bench-password"
VIEWER = "viewer"  # may view devdocker only
BIG = "big/app"  # the repository with 9,000 tags and 347,000 events
HOT = "hot"  # its tag with 15,000 events
QUIET = "quiet"  # its tag with 25 events
SIZES = {
    "repositories": 2_000,
    "tags": 100_000,
    "big_tags": 9_000,
    "events": 1_000_000,
    "big_events": 347_000,
    "hot_events": 15_000,
    "quiet_events": 25,
    "promotions": 50_000,
}


# --- the seeding child (Django configured on the benchmark's database) -----------------


def _django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "promoter.settings")
    import django

    django.setup()


def _digest(n: int) -> str:
    return f"sha256:{n:064x}"


class Writer:
    """Bulk rows into a model's table: COPY on PostgreSQL, executemany on SQLite."""

    def __init__(self, connection) -> None:
        self.connection = connection
        self.postgres = connection.vendor == "postgresql"
        self.now = dt.datetime.now(dt.UTC)

    def when(self, value):
        # PostgreSQL takes aware datetimes; SQLite stores Django's text form.
        return value if self.postgres else self.connection.ops.adapt_datetimefield_value(value)

    def insert(self, model, fields: list[str], rows) -> int:
        """Insert `rows` (tuples in `fields` order); other columns get their defaults."""
        concrete = [f for f in model._meta.concrete_fields if not f.primary_key]
        given = {name: i for i, name in enumerate(fields)}
        columns, extra = [], []
        for f in concrete:
            if f.name in given or f.attname in given:
                continue
            default = f.get_default()
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                default = self.when(self.now)
            elif f.get_internal_type() == "JSONField":
                default = json.dumps(default)
            elif f.null and default in ("", None) and f.get_internal_type() != "CharField":
                default = None
            extra.append(default)
            columns.append(f.column)
        named = [model._meta.get_field(name).column for name in fields]
        table = model._meta.db_table
        cols = [*named, *columns]
        tail = tuple(extra)
        count = 0
        with self.connection.cursor() as cursor:
            if self.postgres:
                raw = cursor.cursor
                quoted = ", ".join(f'"{c}"' for c in cols)
                with raw.copy(f'COPY "{table}" ({quoted}) FROM STDIN') as copy:
                    for row in rows:
                        copy.write_row(row + tail)
                        count += 1
            else:
                marks = ", ".join("?" for _ in cols)
                quoted = ", ".join(f'"{c}"' for c in cols)
                sql = f'INSERT INTO "{table}" ({quoted}) VALUES ({marks})'
                raw = cursor.connection
                batch = []
                for row in rows:
                    batch.append(row + tail)
                    if len(batch) >= 50_000:
                        raw.executemany(sql, batch)
                        count += len(batch)
                        batch.clear()
                if batch:
                    raw.executemany(sql, batch)
                    count += len(batch)
        return count


def seed(scale: float) -> dict:
    """Fill the database; returns the sizes reached and the seconds taken."""
    import random

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import Privilege, Task
    from registries.bootstrap import admin_ensure, demo_ensure, tasks_ensure
    from registries.models import HistoryEvent, ImageFacts, Promotion, Registry, Repository, Tag

    started = time.monotonic()
    call_command("migrate", verbosity=0)
    tasks_ensure()
    admin_ensure(PASSWORD)
    demo_ensure()
    viewer = get_user_model().objects.create_user(VIEWER, password=PASSWORD)
    regs = {r.name: r for r in Registry.objects.all()}
    Privilege.objects.create(
        task=Task.objects.get(name="View & Download Packages"),
        user=viewer,
        registry=regs["devdocker"],
    )
    n = {k: max(1, int(v * scale)) for k, v in SIZES.items()}
    n["quiet_events"] = SIZES["quiet_events"]
    rng = random.Random(12)
    now = timezone.now()
    span = dt.timedelta(days=730).total_seconds()
    w = Writer(connection)

    # Repositories: devdocker 60 %, rcdocker 25 %, proddocker 15 %; the big one in devdocker.
    share = [("devdocker", 0.60), ("rcdocker", 0.25), ("proddocker", 0.15)]
    repos: list[tuple[str, str]] = [("devdocker", BIG)]
    for name, part in share:
        count = int(n["repositories"] * part) - (1 if name == "devdocker" else 0)
        repos += [(name, f"team{i % 40}/app{len(repos) + i}") for i in range(count)]
    other_tags = n["tags"] - n["big_tags"]
    per_repo = [other_tags // (len(repos) - 1)] * (len(repos) - 1)
    for i in range(other_tags - sum(per_repo)):
        per_repo[i] += 1
    tag_counts = [n["big_tags"], *per_repo]
    size_of = 5_000_000

    with transaction.atomic():
        w.insert(
            Repository,
            ["registry", "name", "created_at", "tag_count", "total_size"],
            (
                (regs[reg].pk, name, w.when(now), tag_counts[i], tag_counts[i] * size_of)
                for i, (reg, name) in enumerate(repos)
            ),
        )
    repo_ids = dict(Repository.objects.values_list("name", "pk"))  # names are unique here

    # Tags, and History events for each: the hot and quiet tags get their sizes, the rest
    # share the remaining events. Every event has its own digest; a tag points at the
    # digest of its newest event.
    tag_rows, event_rows = [], []
    big_rest = n["big_events"] - n["hot_events"] - n["quiet_events"]
    other_events = n["events"] - n["big_events"]
    digest_no = 0
    current: dict[tuple[str, str], str] = {}

    def events_for(reg: str, repo: str, tag: str, count: int) -> None:
        nonlocal digest_no
        times = sorted(rng.random() * span for _ in range(count))
        for t in times:
            digest_no += 1
            digest = _digest(digest_no)
            at = w.when(now - dt.timedelta(seconds=span - t))
            if reg == "devdocker":
                event_rows.append(("pushed", reg, repo, tag, digest, "ci", "", "", at))
            else:
                src = "devdocker" if reg == "rcdocker" else "rcdocker"
                event_rows.append(("promoted", reg, repo, tag, digest, "Admin", src, reg, at))
        current[(repo, tag)] = _digest(digest_no)

    fields_event = [
        "action",
        "registry",
        "repository",
        "tag",
        "digest",
        "actor",
        "from_registry",
        "to_registry",
        "created_at",
    ]
    fields_tag = ["repository", "registry", "name", "digest", "size", "platforms", "pushed_at"]
    inserted_events = inserted_tags = 0

    def flush(force: bool = False) -> None:
        nonlocal inserted_events, inserted_tags
        if len(event_rows) >= 200_000 or force:
            with transaction.atomic():
                inserted_events += w.insert(HistoryEvent, fields_event, iter(event_rows))
            event_rows.clear()
        if len(tag_rows) >= 50_000 or force:
            with transaction.atomic():
                inserted_tags += w.insert(Tag, fields_tag, iter(tag_rows))
            tag_rows.clear()

    platforms = '["linux/amd64"]'
    big_id = repo_ids[BIG]
    dev_id = regs["devdocker"].pk
    events_for("devdocker", BIG, HOT, n["hot_events"])
    events_for("devdocker", BIG, QUIET, n["quiet_events"])
    tag_rows.append((big_id, dev_id, HOT, current[(BIG, HOT)], size_of, platforms, w.when(now)))
    tag_rows.append((big_id, dev_id, QUIET, current[(BIG, QUIET)], size_of, platforms, w.when(now)))
    big_other = n["big_tags"] - 2
    for i in range(big_other):
        k = big_rest // big_other + (1 if i < big_rest % big_other else 0)
        events_for("devdocker", BIG, f"1.{i}", k)
        at = w.when(now - dt.timedelta(seconds=i))
        digest = current[(BIG, f"1.{i}")]
        tag_rows.append((big_id, dev_id, f"1.{i}", digest, size_of, platforms, at))
        flush()
    for r, (reg, repo) in enumerate(repos[1:]):
        rid = repo_ids[repo]
        for i in range(per_repo[r]):
            k = other_events // other_tags + (1 if rng.random() < 0.18 else 0)
            events_for(reg, repo, f"{i}.0", k)
            at = w.when(now - dt.timedelta(seconds=r * 100 + i))
            digest = current[(repo, f"{i}.0")]
            tag_rows.append((rid, regs[reg].pk, f"{i}.0", digest, size_of, platforms, at))
        flush()
    flush(force=True)

    # Promotions: dev → rc and rc → prod, newest first over two years; a few failed.
    groups = [(reg, repo) for reg, repo in repos if reg != "proddocker"]
    # Looked up before the COPY: the connection is busy while it runs.
    targets = {name: (r.promote_to or regs["proddocker"]) for name, r in regs.items()}

    def promotions():
        for i in range(n["promotions"]):
            reg, repo = groups[i % len(groups)]
            source = regs[reg]
            target = targets[reg]
            group, _, package = repo.rpartition("/")
            at = now - dt.timedelta(seconds=span * i / n["promotions"])
            status = "failed" if i % 50 == 7 else "succeeded"
            yield (
                source.pk,
                target.pk,
                repo,
                group,
                package,
                "1.0",
                _digest(i),
                "application/vnd.oci.image.manifest.v1+json",
                f"release {i}",
                status,
                "Admin",
                w.when(at),
                w.when(at + dt.timedelta(seconds=2)),
            )

    with transaction.atomic():
        inserted_promotions = w.insert(
            Promotion,
            [
                "source",
                "target",
                "repository",
                "group_name",
                "package_name",
                "tag",
                "digest",
                "media_type",
                "comment",
                "status",
                "actor",
                "created_at",
                "finished_at",
            ],
            promotions(),
        )
    # The tag pages' image facts, as a first view leaves them.
    layers = [
        {"digest": _digest(9_000_000 + i), "size": 1_000_000, "mediaType": "layer"}
        for i in range(5)
    ]
    for tag in (HOT, QUIET):
        ImageFacts.objects.create(
            digest=current[(BIG, tag)],
            media_type="application/vnd.oci.image.manifest.v1+json",
            facts={
                "images": [
                    {
                        "platform": "linux/amd64",
                        "digest": current[(BIG, tag)],
                        "size": 5_000_000,
                        "layers": layers,
                        "labels": {},
                    }
                ]
            },
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {
        "seconds": round(time.monotonic() - started, 1),
        "repositories": Repository.objects.count(),
        "tags": inserted_tags,
        "events": inserted_events,
        "big_events": n["big_events"],
        "promotions": inserted_promotions,
    }


def pages() -> list[tuple[str, str, dict]]:
    """(label, path, params) of every page and list measured; cursors from the database."""
    from registries.models import HistoryEvent, Promotion
    from registries.selectors import cursor_for

    hot_events = HistoryEvent.objects.filter(
        repository=BIG, registry="devdocker", tag=HOT
    ).order_by("-created_at", "-id")
    deep_event = hot_events[min(10_000, hot_events.count() - 1)]
    newest = Promotion.objects.order_by("-created_at", "-id")
    total = newest.count()
    tag = f"/registries/devdocker/images/{BIG}"
    return [
        ("pipeline board (home)", "/", {}),
        ("registries index", "/registries/", {}),
        ("registry devdocker, page 1", "/registries/devdocker/", {}),
        (f"repository {BIG} (9,000 tags), page 1", tag, {}),
        (f"tag page {BIG}:{HOT}", f"{tag}:{HOT}", {}),
        ("History, 15k-event tag, page 1", f"{tag}:{HOT}", {"tab": "history"}),
        (
            "History, 15k-event tag, row 10,000 (cursor)",
            f"{tag}:{HOT}",
            {"tab": "history", "cursor": cursor_for(deep_event)},
        ),
        ("History, the 25-event tag in the 347k repository", f"{tag}:{QUIET}", {"tab": "history"}),
        ("promotions list, page 1", "/promotions/", {}),
        (
            "promotions list, row 25,000 (cursor)",
            "/promotions/",
            {"cursor": cursor_for(newest[total // 2])},
        ),
        (
            "promotions list, row 49,000 (cursor)",
            "/promotions/",
            {"cursor": cursor_for(newest[max(0, total - 1000)])},
        ),
        ("`GET /api/promotions/list`", "/api/promotions/list", {}),
        (
            "`GET /api/promotions/list?packageName=app7&toFeed=rcdocker`",
            "/api/promotions/list",
            {"packageName": "app7", "toFeed": "rcdocker"},
        ),
        ("`GET /api/promotions/list?group=team3`", "/api/promotions/list", {"group": "team3"}),
    ]


def query_counts(listed) -> dict:
    """Per user and page: SQL queries of one request, and the median ms they took (of 5).

    Django's test client in-process, on the same database: how much of a page is SQL.
    """
    import statistics

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    counts = {}
    for who in ("Admin", VIEWER):
        client = Client()
        client.force_login(get_user_model().objects.get(username=who))
        for label, path, params in listed:
            client.get(path, params)  # warm: sessions, caches
            sql_ms = []
            for _ in range(5):
                with CaptureQueriesContext(connection) as ctx:
                    response = client.get(path, params)
                sql_ms.append(sum(float(q["time"]) for q in ctx.captured_queries) * 1000)
            counts[f"{who}|{label}"] = (
                len(ctx.captured_queries),
                response.status_code,
                statistics.median(sql_ms),
            )
    return counts


def child(scale: float, out: Path) -> None:
    _django()
    sizes = seed(scale)
    listed = pages()
    counts = query_counts(listed)
    out.write_text(json.dumps({"sizes": sizes, "pages": listed, "counts": counts}))


# --- the orchestrating parent ------------------------------------------------------------


def measure(url: str, listed, requests_per_page: int) -> dict:
    """p50/p95 ms and errors of every page, per user, through real HTTP (sequential).

    Pages with the signed-in session, the API with Basic user:password (as pgutil sends it);
    any answer but a 200 (a redirect included) counts as an error.
    """
    results = {}
    for who in ("Admin", VIEWER):
        session = signed_in(url, who, PASSWORD)
        for _ in range(8):  # both gunicorn workers remember the verified password
            session.get(url + "/api/promotions/list", auth=(who, PASSWORD), timeout=60)
        for label, path, params in listed:
            auth = (who, PASSWORD) if path.startswith("/api/") else None
            times, errors = [], 0
            for i in range(requests_per_page + 3):
                started = time.perf_counter()
                response = session.get(
                    url + path, params=params, auth=auth, timeout=60, allow_redirects=False
                )
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200:
                    errors += 1
                if i >= 3:  # the first three warm the caches of both workers
                    times.append(elapsed)
            results[f"{who}|{label}"] = (percentile(times, 50), percentile(times, 95), errors)
    return results


def run_one(db: str, scale: float, requests_per_page: int, tmp: Path) -> dict:
    pg = Postgres() if db == "postgres" else None
    data = tmp / f"{db}-{scale}"
    data.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        PROMOTER_DATA_DIR=str(data),
        PROMOTER_TASKS_BACKEND="django.tasks.backends.dummy.DummyBackend",
        PROMOTER_ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        PROMOTER_LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    if pg is not None:
        env.update(pg.node_env(data / "secrets"))
    web = None
    try:
        out = tmp / f"{db}-{scale}.json"
        started = time.monotonic()
        subprocess.run(
            [sys.executable, __file__, "--child", "--scale", str(scale), "--out", str(out)],
            env=env,
            cwd=ROOT,
            check=True,
        )
        child_out = json.loads(out.read_text())
        print(f"{db}: seeded in {child_out['sizes']['seconds']} s: {child_out['sizes']}")
        web = Web(env, tmp / f"{db}-{scale}-web.log")
        web.wait_up()
        timings = measure(web.url, child_out["pages"], requests_per_page)
        return {
            "db": db,
            "scale": scale,
            "version": pg.version() if pg else _sqlite_version(),
            "sizes": child_out["sizes"],
            "pages": [p[0] for p in child_out["pages"]],
            "counts": child_out["counts"],
            "timings": timings,
            "seconds": round(time.monotonic() - started, 1),
        }
    finally:
        if web is not None:
            web.stop()
        if pg is not None:
            pg.stop()


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


def table(results: list[dict], requests_per_page: int) -> str:
    """The README's markdown for the runs: one table per database."""
    lines = [f"Machine: {machine()}.", ""]
    for r in results:
        s = r["sizes"]
        lines.append(
            f"- {r['db']} {r['version']}, scale {r['scale']}: {s['repositories']:,} "
            f"repositories, {s['tags']:,} tags, {s['events']:,} History events "
            f"({s['big_events']:,} in `{BIG}`), {s['promotions']:,} promotions; seeded in "
            f"{s['seconds']} s."
        )
    lines += [
        "",
        f"Cells: p50/p95 ms over {requests_per_page} sequential requests per page (after 3 "
        "to warm up) through HTTP to gunicorn (2 workers × 4 threads); `q` = SQL queries of "
        "one request; `sql` = the median ms those queries took (Django's test client, "
        "in-process, same database). Admin sees every registry; `viewer` may view devdocker "
        "only.",
    ]
    worst = {}
    for db in dict.fromkeys(r["db"] for r in results):
        runs = [r for r in results if r["db"] == db]
        header, rule = "| page |", "|---|"
        for r in runs:
            for who in ("Admin", VIEWER):
                header += f" scale {r['scale']}, {who} |"
                rule += "---|"
        lines += ["", f"**{db}**", "", header, rule]
        for label in runs[0]["pages"]:
            row = f"| {label} |"
            for r in runs:
                for who in ("Admin", VIEWER):
                    p50, p95, errors = r["timings"][f"{who}|{label}"]
                    q, status, sql = r["counts"][f"{who}|{label}"]
                    key = (db, r["scale"])
                    worst[key] = max(worst.get(key, 0.0), p95)
                    mark = f", **{errors} errors**" if errors else ""
                    shown = f"{p50:.0f}/{p95:.0f}" if status == 200 else f"HTTP {status}"
                    row += f" {shown} (q {q}, sql {sql:.1f}){mark} |"
            lines.append(row)
    lines.append("")
    lines.append(
        "Worst p95: "
        + ", ".join(f"{db} scale {scale}: **{ms:.0f} ms**" for (db, scale), ms in worst.items())
        + " (target < 100 ms)."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="postgres,sqlite")
    parser.add_argument("--scale", default="1.0", help="e.g. 0.01,1 for a baseline too")
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(float(args.scale), args.out)
        return
    tmp = Path(tempfile.mkdtemp(prefix="promoter-scale-"))
    results = [
        run_one(db, float(scale), args.requests, tmp)
        for db in args.db.split(",")
        for scale in args.scale.split(",")
    ]
    text = table(results, args.requests)
    print(text)
    (tmp / "result.json").write_text(json.dumps(results))
    if not args.no_readme:
        readme_section("Pages at real data sizes (`bench/scale.py`)", text)


if __name__ == "__main__":
    main()
