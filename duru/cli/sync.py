"""`duru serve`, `duru register`, `duru login`, `duru sync`, `duru logout`."""

from __future__ import annotations

import getpass
import os
import time
from pathlib import Path
from typing import Annotated

import typer

from duru.cli.app import EXIT_USAGE, DbOption, app, fail, reported, resolve_db
from duru.cli.output import print_json, progress_bar, visible
from duru.errors import NotFound, StoreError, SyncError, UsageError

ServerUrl = Annotated[
    str,
    typer.Option(
        "--server", help="The sync server's URL (http://HOST:PORT, as `duru serve` prints)."
    ),
]
UserName = Annotated[str, typer.Option("--user", help="The account's user name.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", help="Port to listen on (0: any free one).")
    ] = 8787,
    workers: Annotated[int, typer.Option("--workers", help="Worker processes.")] = 1,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-proxy",
            envvar="DURU_SERVER_TRUSTED_PROXIES",
            help="Address or network of a reverse proxy whose X-Forwarded-For is believed"
            " (repeatable; the variable takes several, space-separated). None by default:"
            " the connection's address is the client's.",
        ),
    ] = None,
) -> None:
    """Run the sync server over $DURU_DATABASE_URL, else an embedded PostgreSQL."""
    from duru.server import serve as run

    def ready(url: str) -> None:
        typer.echo(f"duru serve: listening on {url} (OpenAPI at {url}/openapi.json)", err=False)

    with reported():
        run(host, port, workers, trusted_proxies=trusted_proxy or (), ready=ready)


@app.command("register")
def register(server: ServerUrl, user: UserName, db: Path | None = DbOption) -> None:
    """Create an account on a sync server and log this device in to it."""
    from duru import sync

    with reported():
        phrase = _passphrase(f"new passphrase for {user}: ", confirm=True)
        saved = sync.register(resolve_db(db), server=server, user=user, passphrase=phrase)
    typer.echo(f"registered {saved.user} on {saved.server}; this device is logged in")


@app.command("login")
def login(server: ServerUrl, user: UserName, db: Path | None = DbOption) -> None:
    """Log this device in to an existing account (a second device of the same user)."""
    from duru import sync

    with reported():
        phrase = _passphrase(f"passphrase for {user}: ")
        saved = sync.login(resolve_db(db), server=server, user=user, passphrase=phrase)
    typer.echo(f"logged in to {saved.server} as {saved.user}")


@app.command("logout")
def logout(db: Path | None = DbOption) -> None:
    """End this device's session and forget its sync credentials."""
    from duru import sync

    with reported():
        done = sync.logout(resolve_db(db))
    typer.echo("logged out" if done else "this device was not logged in")


@app.command("sync")
def sync_command(
    db: Path | None = DbOption,
    as_json: JsonFlag = False,
    watch: Annotated[
        bool, typer.Option("--watch", help="Sync again every --every seconds until interrupted.")
    ] = False,
    every: Annotated[
        float, typer.Option("--every", help="Seconds between syncs with --watch.")
    ] = 5.0,
    snapshots: Annotated[
        bool,
        typer.Option(
            "--snapshot/--no-snapshot",
            help="Start a new, empty device from the account's encrypted snapshot on the"
            " server, and upload a new one when the server's is far behind"
            " (DURU_SNAPSHOT_EVERY changes, 10,000 by default; 0: never upload).",
        ),
    ] = True,
) -> None:
    """Push this device's changes to its sync server, then pull everyone else's."""
    from duru import sync
    from duru.sync.client import MAX_ENTRY_BYTES

    if watch and not every <= MAX_EVERY:  # inf or nan: time.sleep raises OverflowError
        raise fail(f"--every takes at most {MAX_EVERY} seconds, not {every:g}", EXIT_USAGE)
    path = resolve_db(db)
    while True:
        with reported(), progress_bar() as progress:
            try:
                report = sync.sync(path, progress=progress, snapshots=snapshots)
            except SyncError as exc:
                if not watch or not exc.retryable:
                    raise
                typer.echo(f"duru: {exc.message} (trying again in {every:g} s)", err=True)
                report = None
        if report is not None:
            if as_json:
                shown = report.to_json()
                if report.quarantined:  # which rows, and why (as the text output names them)
                    shown["refused"] = _refused(path, report.quarantined)
                print_json(shown)
            else:
                typer.echo(
                    f"pushed {report.pushed}, pulled {report.pulled} ({report.deleted} deleted)"
                    f" in {report.seconds:.2f} s"
                )
                if report.snapshot_in:
                    typer.echo(
                        f"  started from the account's snapshot (change {report.snapshot_in}),"
                        " then pulled what came after it"
                    )
                if report.snapshot_out:
                    typer.echo(
                        f"  uploaded a snapshot of this device (change {report.snapshot_out})"
                    )
                if report.snapshot_note:
                    typer.echo(f"  {visible(report.snapshot_note)}")  # server text
                if report.merged:
                    typer.echo(f"  {report.merged} rows edited here and elsewhere: merged")
                if report.copied:
                    typer.echo(
                        f"  {report.copied} edits clashed: kept as conflicted copies, see"
                        " `duru conflicts list`"
                    )
                if report.kept_local:
                    typer.echo(
                        f"  {report.kept_local} rows deleted elsewhere but edited here: kept"
                    )
                if report.quarantined:
                    typer.echo(
                        f"  {report.quarantined} rows from the server were refused (tampered"
                        " or replayed?) and kept in the quarantine, see `duru export`:",
                        err=True,
                    )
                    for line in _refused(path, report.quarantined):
                        typer.echo(f"    {line}", err=True)
                if report.waiting:
                    typer.echo(f"  {report.waiting} rows wait for a parent the server has not sent")
                if report.cannot_cross:
                    typer.echo(
                        f"  {len(report.cannot_cross)} rows hold a value the server cannot"
                        " carry and stay here, with the rows below them, until it is changed:",
                        err=True,
                    )
                    for name in report.cannot_cross[:_SHOWN_REFUSED]:
                        typer.echo(f"    {name}", err=True)
                if report.too_big:
                    below = report.held - len(report.too_big) - len(report.cannot_cross)
                    typer.echo(
                        f"  {len(report.too_big)} rows are too big to send (over"
                        f" {MAX_ENTRY_BYTES // 2**20} MiB sealed, or over what the server"
                        f" takes) and stay here, with {below} rows below them, until they"
                        " are shortened:",
                        err=True,
                    )
                    for name in report.too_big[:_SHOWN_REFUSED]:
                        typer.echo(f"    {name}", err=True)
            with reported():
                _housekeeping(path)
        if not watch:
            if report is not None and (report.quarantined or report.too_big or report.cannot_cross):
                raise typer.Exit(1)  # the rest synced, but a refused or held row needs a look
            return
        time.sleep(max(0.1, every))


_SHOWN_REFUSED = 20
MAX_EVERY = 24 * 60 * 60


def _housekeeping(path: Path) -> None:
    """The index merges and checkpoint a sync leaves out of its commits, once its report
    is out (a process without a store's maintainer does them after its writes)."""
    from duru.cli.device import housekeeping
    from duru.local.db import Database

    try:
        db = Database.open(path, create=False)
    except (StoreError, NotFound) as exc:  # read-only or gone since the sync committed
        typer.echo(f"duru: synced; housekeeping postponed: {exc.message}", err=True)
        return
    with db:
        housekeeping(db, path, done="synced")


def _refused(path: Path, count: int) -> list[str]:
    """The last ``count`` rows this sync put in the quarantine: which, and why."""
    from duru.local.db import Database

    with Database.open(path, create=False) as db:
        rows = db.rows(
            "SELECT source_table, source_key, reason FROM quarantine WHERE source = 'sync'"
            " ORDER BY id DESC LIMIT ?",
            (min(count, _SHOWN_REFUSED),),
        )
    out = [f"{r['source_table']} {r['source_key']}: {r['reason']}" for r in reversed(rows)]
    if count > _SHOWN_REFUSED:
        out.append(f"... and {count - _SHOWN_REFUSED} more")
    return out


def _passphrase(prompt: str, *, confirm: bool = False) -> str:
    """$DURU_PASSPHRASE, else a prompt without echo (twice for a new one)."""
    env = os.environ.get("DURU_PASSPHRASE")
    if env is not None:
        return env
    if not os.isatty(0):
        raise UsageError("no passphrase: set DURU_PASSPHRASE or run in a terminal to be asked")
    first = getpass.getpass(prompt)
    if confirm and getpass.getpass("again: ") != first:
        raise fail("the two passphrases differ")
    return first
