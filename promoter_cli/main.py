"""The `promoter` command: promote one image or many, with a dry run, wait with a progress
bar, and read status, History and promotions, from a shell or a CI job.

It talks only HTTP to a portal's API (PROMOTER_URL, PROMOTER_API_KEY, or --url and
--api-key; the key goes in the X-ApiKey header). Exit codes are in promoter_cli.client
and the README; --json prints the API's answer for scripts.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from promoter_cli import client
from promoter_cli.client import Api, CliError

GLOB = set("*?[")
DONE = {"succeeded", "failed"}

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
for _console in (out, err):
    if not _console.is_terminal:
        # A log or a pipe: whole lines (rich would fit tables into 80 columns otherwise).
        _console.width = 400


# --- the command line ---------------------------------------------------------------------
@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--url",
    envvar="PROMOTER_URL",
    metavar="URL",
    help="The portal, e.g. https://promoter.example.com (or PROMOTER_URL).",
)
@click.option(
    "--api-key",
    envvar="PROMOTER_API_KEY",
    metavar="KEY",
    help="An API key, sent as X-ApiKey (or PROMOTER_API_KEY).",
)
@click.option(
    "--timeout",
    envvar="PROMOTER_TIMEOUT",
    type=click.FloatRange(min=1),
    default=30.0,
    show_default=True,
    help="Seconds each HTTP call may take.",
)
@click.pass_context
def app(ctx: click.Context, url: str | None, api_key: str | None, timeout: float) -> None:
    """Promote container images between the registries of a Promoter portal.

    \b
    Exit codes: 0 done, 1 a promotion failed, 2 usage or invalid input,
    3 refused by the target's policy, 4 not found, 5 authentication or permission,
    6 --wait ran out of time, 7 the portal could not be reached (or answered 5xx/429).
    """
    ctx.obj = {"url": url, "key": api_key, "timeout": timeout}


def _api(ctx: click.Context) -> Api:
    options = ctx.obj
    if not options["url"]:
        raise click.UsageError("Say which portal: --url URL or PROMOTER_URL.")
    if not options["url"].startswith(("http://", "https://")):
        raise click.UsageError(f"{options['url']!r} is not an http(s) URL.")
    return Api(options["url"], options["key"], timeout=options["timeout"])


def main() -> None:
    """The console script: run `app`, turning CliError into its message and exit code."""
    try:
        app.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)  # 2 for usage errors
    except click.Abort:
        err.print("Aborted.")
        sys.exit(130)
    except CliError as exc:
        if _JSON.get("on"):
            out.print_json(data=exc.answer if exc.answer is not None else {"error": exc.message})
        err.print(f"[bold red]Error:[/] {exc.message}", highlight=False)
        _checklist(exc.answer.get("policy") if isinstance(exc.answer, dict) else None)
        sys.exit(exc.code)
    sys.exit(_EXIT.get("code", client.OK))


# Set by the commands: --json for error output, and the exit code of a command that succeeded.
_JSON: dict[str, bool] = {}
_EXIT: dict[str, int] = {}


def _finish(code: int) -> None:
    _EXIT["code"] = code


WAIT_OPTIONS = [
    click.option(
        "--wait", is_flag=True, help="Wait until it finished (a progress bar on a terminal)."
    ),
    click.option(
        "--wait-timeout",
        type=click.FloatRange(min=1),
        default=1800.0,
        show_default=True,
        help="Seconds --wait waits at most (then exit 6).",
    ),
    click.option(
        "--poll",
        type=click.FloatRange(min=0.1, max=60),
        default=1.0,
        show_default=True,
        help="Seconds between looks while waiting.",
    ),
    click.option("--json", "as_json", is_flag=True, help="Print the API's answer as JSON."),
]


def wait_options(function):
    for option in reversed(WAIT_OPTIONS):
        function = option(function)
    return function


@app.command()
@click.argument("refs", nargs=-1, required=True, metavar="REGISTRY/REPOSITORY[:TAG]...")
@click.option(
    "--to",
    "target",
    metavar="REGISTRY",
    help="The target (default: the source's Promote To registry).",
)
@click.option("--comment", "-m", default="", help="Why; recorded in History.")
@click.option(
    "--tags",
    multiple=True,
    metavar="PATTERN",
    help="Tags (names or patterns such as '4.2.*') of the repositories named without a tag. "
    "Repeatable.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Say what it would do (blobs and bytes, the tag it replaces, the policy); do nothing.",
)
@wait_options
@click.pass_context
def promote(ctx, refs, target, comment, tags, dry_run, wait, wait_timeout, poll, as_json):
    """Promote an image, or many at once (a batch).

    \b
    promoter promote devdocker/team/api:1.0 --to rcdocker --comment "Ready" --wait
    promoter promote 'devdocker/team/*' --tags '4.2.*' --wait     (a batch)
    promoter promote devdocker/team/api:1.0 devdocker/team/web:2.1  (a batch of pairs)
    """
    _JSON["on"] = as_json
    api = _api(ctx)
    parsed = [_parse(ref) for ref in refs]
    feeds = {feed for feed, _, _ in parsed}
    if len(feeds) > 1:
        raise click.UsageError(f"One source registry at a time, not {', '.join(sorted(feeds))}.")
    feed = feeds.pop()
    single = len(parsed) == 1 and not tags and parsed[0][2] and not _globbed(*parsed[0][1:])
    if single:
        _, repository, tag = parsed[0]
        _promote_one(
            api, feed, repository, tag, target, comment, dry_run, wait, wait_timeout, poll, as_json
        )
        return
    body: dict[str, Any] = {"fromFeed": feed, "toFeed": target, "comments": comment or None}
    repositories, tag_patterns, images = [], list(tags), []
    for _, repository, tag in parsed:
        if tag and not _globbed(repository, tag) and not tags:
            images.append(f"{repository}:{tag}")
        else:
            repositories.append(repository)
            if tag:
                tag_patterns.append(tag)
    body.update(repositories=repositories or None, tags=tag_patterns or None, images=images or None)
    body = {k: v for k, v in body.items() if v is not None}
    answer = api.call(
        "POST", "/api/promotions/batch", params={"dryRun": "true" if dry_run else None}, body=body
    )
    if dry_run:
        _show_preview(answer, as_json)
        _finish(_preview_code(answer["images"]))
        return
    if wait:
        answer = _wait(api, answer, kind="batch", timeout=wait_timeout, poll=poll, quiet=as_json)
    _show_batch(answer, as_json)
    _finish(_batch_code(answer))


def _promote_one(
    api, feed, repository, tag, target, comment, dry_run, wait, wait_timeout, poll, as_json
):
    body = {"fromFeed": feed, "name": repository, "version": tag}
    if target:
        body["toFeed"] = target
    if comment:
        body["comments"] = comment
    params = {"dryRun": "true"} if dry_run else {"async": "true"}
    answer = api.call("POST", "/api/promotions/promote", params=params, body=body)
    if dry_run:
        _show_preview({"images": [answer], "toFeed": answer["toFeed"]}, as_json, single=answer)
        _finish(_preview_code([answer]))
        return
    if wait:
        answer = _wait(
            api, answer, kind="promotion", timeout=wait_timeout, poll=poll, quiet=as_json
        )
    _show_promotion(answer, as_json)
    _finish(client.FAILED if answer["status"] == "failed" else client.OK)


@app.command()
@click.argument("ident", type=click.IntRange(min=1), metavar="ID")
@click.option("--batch", is_flag=True, help="ID is a batch's (as `promoter promote` printed it).")
@wait_options
@click.pass_context
def status(ctx, ident, batch, wait, wait_timeout, poll, as_json):
    """Status and progress of a promotion (or with --batch, of a batch).

    Exit code: 0 succeeded or still under way, 1 failed (for a batch: as `promote`)."""
    _JSON["on"] = as_json
    api = _api(ctx)
    path = f"/api/promotions/batches/{ident}" if batch else f"/api/promotions/status/{ident}"
    answer = api.call("GET", path)
    kind = "batch" if batch else "promotion"
    if wait:
        answer = _wait(api, answer, kind=kind, timeout=wait_timeout, poll=poll, quiet=as_json)
    if batch:
        _show_batch(answer, as_json)
        _finish(_batch_code(answer))
    else:
        _show_promotion(answer, as_json)
        _finish(client.FAILED if answer["status"] == "failed" else client.OK)


@app.command()
@click.argument("ref", metavar="REGISTRY/REPOSITORY:TAG")
@click.option(
    "--limit",
    type=click.IntRange(min=1, max=1000),
    default=20,
    show_default=True,
    help="Events to show at most.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the events as JSON.")
@click.pass_context
def history(ctx, ref, limit, as_json):
    """History of a tag and its image: pushed, promoted, rolled back, by whom, when."""
    _JSON["on"] = as_json
    api = _api(ctx)
    feed, repository, tag = _parse(ref)
    if not tag or _globbed(repository, tag):
        raise click.UsageError(
            "Name one tag: REGISTRY/REPOSITORY:TAG, e.g. devdocker/team/api:1.0."
        )
    events, cursor = [], None
    while len(events) < limit:
        params = {"feed": feed, "name": repository, "version": tag, "cursor": cursor}
        page = api.call("GET", "/api/promotions/history", params=params)
        events += page["events"]
        cursor = page["next"]
        if not cursor:
            break
    events = events[:limit]
    if as_json:
        out.print_json(data=events)
        return
    table = Table("When", "Action", "Where", "By", "Digest", "Comment", box=None)
    for e in events:
        where = f"{e['fromFeed']} → {e['toFeed']}" if e["fromFeed"] else e["feed"]
        table.add_row(
            e["date"][:19].replace("T", " "),
            e["action"],
            where,
            e["user"],
            e["digest"][7:19],
            e["comments"] or "",
        )
    out.print(table)


@app.command(name="list")
@click.option("--from", "from_feed", metavar="REGISTRY", help="Only promotions from this registry.")
@click.option("--to", "to_feed", metavar="REGISTRY", help="Only promotions into this registry.")
@click.option(
    "--status",
    type=click.Choice(["queued", "running", "succeeded", "failed"]),
    help="Only promotions in this state.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1, max=200),
    default=50,
    show_default=True,
    help="Promotions to show at most.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the promotions as JSON.")
@click.pass_context
def list_(ctx, from_feed, to_feed, status, limit, as_json):
    """Promotions of any status, newest first."""
    _JSON["on"] = as_json
    api = _api(ctx)
    params = {"fromFeed": from_feed, "toFeed": to_feed, "status": status, "limit": limit}
    page = api.call("GET", "/api/promotions/search", params=params)
    if as_json:
        out.print_json(data=page["promotions"])
        return
    table = Table("#", "Image", "From → To", "Status", "By", "When", box=None)
    for p in page["promotions"]:
        table.add_row(
            str(p["id"]),
            f"{p['repository']}:{p['version']}",
            f"{p['fromFeed']} → {p['toFeed']}",
            p["status"],
            p["user"],
            p["created"][:19].replace("T", " "),
        )
    out.print(table)
    if not page["promotions"]:
        err.print("No promotions match.")


# --- helpers ------------------------------------------------------------------------------
def _parse(ref: str) -> tuple[str, str, str]:
    """`devdocker/team/api:1.0` -> ("devdocker", "team/api", "1.0"); the tag may be ""."""
    feed, sep, rest = ref.partition("/")
    if not sep or not feed or not rest:
        raise click.UsageError(
            f"{ref!r}: write REGISTRY/REPOSITORY[:TAG], e.g. devdocker/team/api:1.0."
        )
    repository, sep, tag = rest.rpartition(":") if ":" in rest else (rest, "", "")
    if not repository or (sep and not tag) or "/" in tag:
        raise click.UsageError(
            f"{ref!r}: write REGISTRY/REPOSITORY[:TAG], e.g. devdocker/team/api:1.0."
        )
    return feed, repository, tag


def _globbed(*values: str) -> bool:
    return any(GLOB & set(value) for value in values)


def _finished(answer: dict, kind: str) -> bool:
    return answer["status"] in DONE if kind == "promotion" else answer["status"] != "running"


def _wait(api: Api, answer: dict, *, kind: str, timeout: float, poll: float, quiet: bool) -> dict:
    """Poll the status URL until it finished, showing progress; TIMEOUT after `timeout` s."""
    path = answer["statusUrl"]
    deadline = time.monotonic() + timeout
    report = _reporter(kind, answer, quiet)
    try:
        while True:
            report(answer)
            if _finished(answer, kind):
                return answer
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                what = f"{kind} {answer['id']}"
                raise CliError(
                    f"{what} is still {answer['status']} after {timeout:g} seconds; it goes on. "
                    f"See `promoter status {'--batch ' if kind == 'batch' else ''}{answer['id']}`.",
                    client.TIMEOUT,
                    answer,
                )
            time.sleep(min(poll, remaining))
            answer = api.call("GET", path)
    finally:
        report(None)


def _reporter(kind: str, first: dict, quiet: bool):
    """Progress: a rich bar on a terminal (stderr), a line per change otherwise."""
    if err.is_terminal and not quiet:
        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=err,
            transient=False,
        )
        bar.start()
        task = bar.add_task(_title(kind, first), total=None, detail="")

        def show(answer: dict | None) -> None:
            if answer is None:
                bar.stop()
                return
            done, total, detail = _numbers(kind, answer)
            bar.update(task, completed=done, total=total or None, detail=detail)

        return show
    last: list[str] = []

    def line(answer: dict | None) -> None:
        if answer is None:
            return
        done, total, detail = _numbers(kind, answer)
        text = f"{_title(kind, answer)}: {answer['status']}, {done} of {total} {detail}"
        if not last or last[-1] != text:
            last.append(text)
            err.print(text, highlight=False)

    return line


def _title(kind: str, answer: dict) -> str:
    if kind == "batch":
        return f"batch {answer['id']} ({answer['fromFeed']} → {answer['toFeed']})"
    return f"promotion {answer['id']} {answer['repository']}:{answer['version']}"


def _size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"


def _numbers(kind: str, answer: dict) -> tuple[int, int, str]:
    """(done, total, "images · bytes …") of a batch, or (blobs done, blobs, …) of a promotion."""
    if kind == "batch":
        detail = f"images · {_size(answer['bytesDone'])} of {_size(answer['bytesTotal'])}"
        if answer["failed"] or answer["refused"]:
            detail += f" · {answer['failed']} failed, {answer['refused']} refused"
        return answer["finished"], answer["images"], detail
    progress = answer["progress"]
    blobs = progress["blobsCopied"] + progress["blobsMounted"] + progress["blobsSkipped"]
    detail = f"blobs · {_size(progress['bytesDone'])} of {_size(progress['bytesTotal'])}"
    return blobs, progress["blobsTotal"], detail


def _show_promotion(answer: dict, as_json: bool) -> None:
    if as_json:
        out.print_json(data=answer)
        return
    image = f"{answer['repository']}:{answer['version']}"
    line = (
        f"promotion {answer['id']}: {image} {answer['fromFeed']} → {answer['toFeed']} "
        f"{answer['digest']}: {answer['status']}"
    )
    out.print(line, highlight=False)
    if answer["error"]:
        err.print(answer["error"], highlight=False)


def _show_batch(answer: dict, as_json: bool) -> None:
    if as_json:
        out.print_json(data=answer)
        return
    out.print(
        f"batch {answer['id']}: {answer['fromFeed']} → {answer['toFeed']}: {answer['status']}, "
        f"{answer['finished']} of {answer['images']} images finished ({answer['succeeded']} "
        f"succeeded, {answer['failed']} failed, {answer['refused']} refused)",
        highlight=False,
    )
    table = Table("Image", "Status", "Promotion", "Detail", box=None)
    for item in answer["items"]:
        table.add_row(
            f"{item['repository']}:{item['version']}",
            item["status"],
            str(item["promotionId"] or "—"),
            item["error"] or "",
        )
    out.print(table)


def _show_preview(answer: dict, as_json: bool, single: dict | None = None) -> None:
    if as_json:
        out.print_json(data=single if single is not None else answer)
        return
    table = Table(
        "Image", "Digest", "Copy", "Mount", "There", "Target tag now", "Would start", box=None
    )
    for image in answer["images"]:
        transfer = image["transfer"]
        moves = [
            f"{transfer[f'blobs{kind}']} · {_size(transfer[f'bytes{kind}'])}" if transfer else "—"
            for kind in ("ToCopy", "ToMount", "Present")
        ]
        now = image["targetTag"]
        if now is None:
            where = f"new in {image['toFeed']}"
        elif image["replaces"]:
            where = (
                f"replaces {now['digest'][7:19]} ({now['user'] or '?'}, {(now['date'] or '')[:10]})"
            )
        else:
            where = "already points at it"
        verdict = "yes" if image["ok"] else f"no: {image['error']}"
        table.add_row(
            f"{image['repository']}:{image['version']}",
            (image["digest"] or "—")[7:19],
            *moves,
            where,
            verdict,
        )
    out.print(table)
    for image in answer["images"]:
        if image["policy"] and not image["policy"]["ok"]:
            out.print(f"{image['repository']}:{image['version']}:", highlight=False)
            _checklist(image["policy"], console=out)
    out.print("Dry run: nothing was started or written.")


def _checklist(policy: dict | None, console: Console = err) -> None:
    if not policy:
        return
    for rule in policy["rules"]:
        mark = "✓" if rule["ok"] else "✗"
        console.print(f"  {mark} {rule['message']}", highlight=False)


ORDER = [
    client.FAILED,
    client.POLICY,
    client.NOT_FOUND,
    client.AUTH,
    client.USAGE,
    client.UNREACHABLE,
]
REFUSAL_CODES = {
    "policy": client.POLICY,
    "not_found": client.NOT_FOUND,
    "forbidden": client.AUTH,
    "invalid": client.USAGE,
    "rate_limited": client.UNREACHABLE,
}


def _worst(codes: list[int]) -> int:
    for code in ORDER:
        if code in codes:
            return code
    return client.OK


def _batch_code(answer: dict) -> int:
    codes = []
    for item in answer["items"]:
        if item["status"] == "failed":
            codes.append(client.FAILED)
        elif item["status"] == "refused":
            codes.append(REFUSAL_CODES.get(item["refusal"] or "", client.FAILED))
    return _worst(codes)


def _preview_code(images: list[dict]) -> int:
    return _worst(
        [REFUSAL_CODES.get(i["refusal"] or "", client.FAILED) for i in images if not i["ok"]]
    )


if __name__ == "__main__":
    main()
