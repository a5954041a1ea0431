"""The `duru` command: a veneer over the library.

Each command calls one library function and formats its result. Errors from
duru's tree become one line on stderr and a non-zero exit; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from duru.cli.output import visible
from duru.errors import DuruError, NotFound, UsageError


class OneLineErrors(TyperGroup):
    """The top-level group: click's own usage errors become one line too."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            result = super().main(
                args, prog_name, complete_var, False, windows_expand_args, **extra
            )
        except typer.TyperException as exc:
            code = _usage_error(exc)
            if not standalone_mode:
                raise
            sys.exit(code)
        except typer.Abort:
            typer.echo("duru: aborted", err=True)
            sys.exit(EXIT_FAILED)
        if standalone_mode:
            sys.exit(result if isinstance(result, int) else 0)
        return result


def _usage_error(exc: typer.TyperException) -> int:
    ctx = getattr(exc, "ctx", None)
    message = exc.format_message()
    if type(exc).__name__ == "NoArgsIsHelpError":
        # `duru note` with no subcommand: the help (already formatted) is the answer.
        typer.echo(message, err=True)
    elif ctx is not None and _missing_subcommand(ctx, message):
        # A group made without no_args_is_help (`duru migrate`): the same answer.
        typer.echo(ctx.get_help(), err=True)
    else:
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        typer.echo(f"duru: {visible(' '.join(message.split()))}{hint}", err=True)
    return int(getattr(exc, "exit_code", EXIT_USAGE))


app = typer.Typer(
    cls=OneLineErrors,
    name="duru",
    help="The data platform of Duru Notes: device store, encryption, sync and safe migrations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _missing_subcommand(ctx: Any, message: str) -> bool:
    """True when click refused a group's command line for lacking a subcommand."""
    # click says so only in words (a UsageError like any other); groups have ``commands``.
    return ctx is not None and hasattr(ctx.command, "commands") and message == "Missing command."


def _print_version(wanted: bool) -> None:
    if wanted:
        from duru import __version__
        from duru.local import SCHEMA_VERSION
        from duru.model import MODEL_FINGERPRINT

        typer.echo(
            f"duru {__version__} (device schema {SCHEMA_VERSION}, model {MODEL_FINGERPRINT})"
        )
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=_print_version,
        help="Print duru's version (and the device schema it makes) and exit.",
    ),
) -> None:
    """The data platform of Duru Notes: device store, encryption, sync and safe migrations."""


# Exit statuses: 1 for a refused operation, 2 for bad usage (as click uses), 3 for not found.
EXIT_FAILED, EXIT_USAGE, EXIT_NOT_FOUND = 1, 2, 3

DbOption = typer.Option(
    None,
    "--db",
    help="Device database file (default: $DURU_DB, else duru.sqlite in the user data folder).",
)


def data_home() -> Path:
    """duru's folder for its files: $DURU_HOME, else the platform's user data folder."""
    home = os.environ.get("DURU_HOME")
    if home:
        return Path(home)
    import platformdirs

    return Path(platformdirs.user_data_dir("duru"))


def resolve_db(db: Path | None) -> Path:
    """The device database path: --db, else $DURU_DB, else the user data folder."""
    if db is not None:
        return db
    env = os.environ.get("DURU_DB")
    if env:
        return Path(env)
    return data_home() / "duru.sqlite"


def fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    """Print ``message`` as one line on stderr and return the Exit to raise."""
    typer.echo(f"duru: {visible(message)}", err=True)
    return typer.Exit(code)


@contextmanager
def reported() -> Iterator[None]:
    """Turn duru's errors into one clear line and a non-zero exit."""
    try:
        yield
    except NotFound as exc:
        raise fail(exc.message, EXIT_NOT_FOUND) from None
    except UsageError as exc:
        raise fail(exc.message, EXIT_USAGE) from None
    except DuruError as exc:
        raise fail(exc.message) from None
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None
    except UnicodeEncodeError as exc:
        # An argument with bytes that are not UTF-8 reaches Python as lone surrogates.
        bad = exc.object[exc.start : exc.end] if isinstance(exc.object, str) else ""
        shown = bad.encode("utf-8", "surrogateescape").hex() if bad else "?"
        raise fail(
            f"text that is not UTF-8 (bytes {shown}) cannot be used here", EXIT_USAGE
        ) from None
    except OSError as exc:
        raise fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from None


def main() -> None:
    """Entry point of the console script."""
    from duru.cli import commands  # noqa: F401  (registers the commands)

    try:
        app()
    except BrokenPipeError:
        # `duru note list | head`: the reader left; nothing is wrong.
        sys.stderr.close()
        sys.exit(0)
