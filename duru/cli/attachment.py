"""`duru attachment`: attachment metadata of notes (the files themselves live elsewhere)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from duru.cli.app import DbOption, app
from duru.cli.device import JsonOption, device, for_table, friendly, report_written, resolve
from duru.cli.output import print_fields, print_rows, visible
from duru.errors import UsageError

if TYPE_CHECKING:
    from duru.model import Row

attachment_app = typer.Typer(
    help="Attachments of notes: metadata only (name, type, size, checksum, storage key).",
    no_args_is_help=True,
)
app.add_typer(attachment_app, name="attachment")

AttachmentArg = typer.Argument(
    ..., help="Attachment id: the full uuid or a unique prefix (4+ characters)."
)
FromOption = typer.Option(
    None, "--from", help="Read name, size, SHA-256 and type from this local file (not copied)."
)
ATTACHMENT_COLUMNS = ("id", "file_name", "mime_type", "size_bytes", "created_at")


@attachment_app.command("add")
def add(
    note: str = typer.Argument(..., help="The note (id or unique prefix) the file belongs to."),
    file_name: str | None = typer.Argument(None, help="The file's name; leave out with --from."),
    source: Path | None = FromOption,
    size: int | None = typer.Option(None, "--size", help="The file's size in bytes."),
    sha256: str | None = typer.Option(
        None, "--sha256", help="SHA-256 of the file: 64 lower-case hex digits."
    ),
    mime: str | None = typer.Option(None, "--mime", help="Its media type, e.g. image/png."),
    storage_key: str | None = typer.Option(
        None, "--storage-key", help="Where the (encrypted) file is stored."
    ),
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """Record a file attached to a live note (metadata only; nothing is uploaded)."""
    from duru.model import ATTACHMENT, NOTE

    with device(db, writes=True) as store:
        if (file_name is None) == (source is None):
            raise UsageError("give either a file name or --from FILE, not both or neither")
        if source is not None:
            file_name, size, sha256, mime = _describe(source, size, sha256, mime)
        assert file_name is not None
        row = store.attachments.add(
            resolve(store, NOTE, note),
            file_name,
            size_bytes=0 if size is None else size,
            sha256=None if sha256 is None else sha256.strip().lower(),
            mime_type=mime,
            storage_key=storage_key,
        )
        report_written(ATTACHMENT, row, "added", visible(row["file_name"]), as_json)


def _describe(
    source: Path, size: int | None, sha256: str | None, mime: str | None
) -> tuple[str, int, str, str | None]:
    """Name, size, checksum and guessed type of a regular local file (given ones must agree)."""
    import hashlib
    import mimetypes

    if not source.is_file():
        raise UsageError(f"--from {source}: not a regular file")
    digest, length = hashlib.sha256(), 0
    with source.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            length += len(chunk)
    if size is not None and size != length:
        raise UsageError(f"--size {size} disagrees with {source} ({length} bytes)")
    if sha256 is not None and sha256.strip().lower() != digest.hexdigest():
        raise UsageError(f"--sha256 disagrees with the checksum of {source}")
    return source.name, length, digest.hexdigest(), mime or mimetypes.guess_type(source.name)[0]


@attachment_app.command("list")
def list_attachments(
    note: str = typer.Argument(..., help="The note (id or unique prefix) whose files to list."),
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """List a note's attachments, oldest first."""
    from duru.model import NOTE

    with device(db) as store:
        rows = store.attachments.list_for_note(resolve(store, NOTE, note))
    _print(rows, as_json)


@attachment_app.command("show")
def show(
    attachment: str = AttachmentArg, as_json: bool = JsonOption, db: Path | None = DbOption
) -> None:
    """Show every field of one attachment."""
    from duru.model import ATTACHMENT

    with device(db) as store:
        row = store.attachments.get(resolve(store, ATTACHMENT, attachment))
    print_fields(friendly(ATTACHMENT, row), as_json)


@attachment_app.command("rm")
def remove(
    attachment: str = AttachmentArg, as_json: bool = JsonOption, db: Path | None = DbOption
) -> None:
    """Delete an attachment's metadata (the stored file, if any, is not touched)."""
    from duru.model import ATTACHMENT

    with device(db, writes=True) as store:
        row = store.attachments.remove(resolve(store, ATTACHMENT, attachment))
        report_written(ATTACHMENT, row, "removed", visible(row["file_name"]), as_json)


def _print(rows: list[Row], as_json: bool) -> None:
    from duru.model import ATTACHMENT

    if as_json:
        print_rows([friendly(ATTACHMENT, r) for r in rows], ATTACHMENT_COLUMNS, as_json=True)
        return
    print_rows(for_table(ATTACHMENT, rows), ATTACHMENT_COLUMNS, title="Attachments")
