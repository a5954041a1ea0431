"""`duru upload` and `duru download`: a whole device database to the server and back."""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from duru.cli.app import DbOption, app, reported, resolve_db
from duru.cli.output import print_json, progress_bar
from duru.errors import UsageError

if TYPE_CHECKING:
    from duru.sync import TransferReport

UserOption = Annotated[
    str | None,
    typer.Option("--user", help="The account's user name (default: $DURU_USER, else your login)."),
]
ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        help="Server database URL (default: $DURU_DATABASE_URL, else the embedded PostgreSQL).",
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the transfer report as JSON.")]


_OPERATORS = (
    " It connects to PostgreSQL directly, as a role that may set duru.user_id: whoever has"
    " one can act as any user, so keep it to operators. The passphrase is checked against"
    " the account's verifier."
)


@app.command(
    "upload",
    epilog="For a first seed of the server database, or a restore over it."
    + _OPERATORS
    + " It only adds or replaces rows: it carries no deletes and does not compare versions,"
    " so it can undo other devices' newer edits, and a restore of an older copy brings back"
    " rows deleted since. Into an account that holds rows, each row goes as a new write"
    " that every device takes on its next `duru sync`.",
)
def upload(
    db: Path | None = DbOption,
    user: UserOption = None,
    server: ServerOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Operators: seal a whole device database and upsert it straight into PostgreSQL."""
    from duru import sync

    _transfer(sync.upload, db, user, server, as_json)


@app.command(
    "download",
    epilog="For a restore into a new or empty file." + _OPERATORS + " The copy is not logged"
    " in to a sync server: `duru login` it to keep it in sync.",
)
def download(
    db: Path | None = DbOption,
    user: UserOption = None,
    server: ServerOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Operators: rebuild a new device database from an account's rows in PostgreSQL."""
    from duru import sync

    _transfer(sync.download, db, user, server, as_json)


def _transfer(
    move: Callable[..., TransferReport],
    db: Path | None,
    user: str | None,
    server: str | None,
    as_json: bool,
) -> None:
    with reported():
        path = resolve_db(db)
        name = _user(user)
        passphrase = _passphrase(f"passphrase for {name}: ")
        with _server(server) as url, progress_bar() as progress:
            report = move(path, server_url=url, passphrase=passphrase, user=name, progress=progress)
    _print(report, as_json)


def _user(user: str | None) -> str:
    """--user, else $DURU_USER, else the login name; UsageError for one given but blank.

    A blank name is a mistake (an unset shell variable), never a request for the login
    name: acting on another account than the one meant could upload into it.
    """
    if user is not None:
        return _named(user, "--user")
    env = os.environ.get("DURU_USER")
    if env is not None:
        return _named(env, "$DURU_USER")
    return getpass.getuser()


def _named(name: str, source: str) -> str:
    if not name.strip():
        raise UsageError(f"{source} is empty: give the account's user name")
    return name


def _passphrase(prompt: str) -> str:
    """$DURU_PASSPHRASE, else a prompt without echo; never an argument (it would show in ps).

    UsageError for an empty or whitespace-only passphrase: it protects nothing.
    """
    env = os.environ.get("DURU_PASSPHRASE")
    if env is None and not os.isatty(0):
        raise UsageError("no passphrase: set DURU_PASSPHRASE or run in a terminal to be asked")
    secret = env if env is not None else getpass.getpass(prompt)
    if not secret.strip():
        raise UsageError("the passphrase is empty or only spaces; refusing it")
    return secret


@contextmanager
def _server(url: str | None) -> Iterator[str]:
    """The given URL, else the configured or embedded server for the length of the command."""
    if url:
        yield url
        return
    from duru.remote import RemoteConfig, RemoteServer

    with RemoteServer(RemoteConfig.from_env()) as started:
        yield started


def _print(report: TransferReport, as_json: bool) -> None:
    if as_json:
        print_json(report.to_dict())
        return
    typer.echo(
        f"{report.direction} of {report.user}: {report.rows} rows in {report.seconds:.2f} s"
        f" ({report.rows_per_second:,.0f} rows/s)"
    )
    for line in report.entities:
        typer.echo(f"  {line.entity:<14} {line.rows:>8} rows {line.rows_per_second:>10,.0f}/s")
