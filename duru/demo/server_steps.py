"""The demo's second half: the same notebook, encrypted, on a PostgreSQL server and back."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from duru.crypto import KdfParams
from duru.demo.context import DemoContext, Shown, Step
from duru.errors import WrongPassphrase
from duru.local import DeviceStore, export_json
from duru.remote import EmbeddedPostgres, RemoteConfig
from duru.remote.schema import apply_server_schema
from duru.schemacheck import check_schema
from duru.sync import download, upload

PASSPHRASE = "correct horse battery staple"
DEMO_KDF = KdfParams.interactive()
USER = "demo"


def server(ctx: DemoContext) -> Shown:
    """$DURU_DATABASE_URL, else a private PostgreSQL started from the embedded wheel."""
    url = RemoteConfig.from_env().database_url
    if url:
        where = "DURU_DATABASE_URL"
        url = _fresh_database(url)
    else:
        pg = EmbeddedPostgres(ctx.folder / "pg", cleanup_mode="stop")
        url = pg.start()
        ctx.cleanup.callback(pg.stop)
        where = f"embedded PostgreSQL in {ctx.folder / 'pg'}"
    with psycopg.connect(url) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        apply_server_schema(conn)
        conn.commit()
    ctx.server_url = url
    return Shown(
        "Server database",
        lines=[
            f"{where}: PostgreSQL {version[0] if version else '?'}",
            "server schema applied (derived from the same model)",
        ],
    )


def schema_check(ctx: DemoContext) -> Shown:
    """Both live schemas against the model: the cure for title vs title_enc drift."""
    report = check_schema(ctx.store.path, _url(ctx))
    return Shown("Schema check", lines=report.render_text().splitlines())


def upload_notes(ctx: DemoContext) -> Shown:
    """Every row sealed on the device, COPY into staging, one upsert per chunk."""
    report = upload(
        ctx.store.path, server_url=_url(ctx), passphrase=PASSPHRASE, user=USER, kdf=DEMO_KDF
    )
    rows = [
        {"entity": e.entity, "rows": e.rows, "rows/s": round(e.rows_per_second)}
        for e in report.entities
    ]
    lines = [
        f"account {'created' if report.account_created else 'unlocked'} for {USER!r};"
        f" {report.rows} rows in {report.seconds:.2f} s"
    ]
    return Shown("Upload (end-to-end encrypted)", ("entity", "rows", "rows/s"), rows, lines)


def what_the_server_sees(ctx: DemoContext) -> Shown:
    """A note as the server stores it: ids, flags and times in clear; title and body sealed."""
    note_id = ctx.notes["Design review: sync conflicts"]
    with psycopg.connect(_url(ctx)) as conn:
        conn.execute(
            "SELECT set_config('duru.user_id', user_id::text, false) FROM accounts WHERE name = %s",
            [USER],
        )
        row = conn.execute(
            "SELECT id, is_pinned, updated_at, title_enc, props_enc FROM notes WHERE id = %s",
            [note_id],
        ).fetchone()
        leaks = _count_plaintext(conn, "sync conflicts")
    assert row is not None
    shown: dict[str, Any] = {
        "id": str(row[0]),
        "is_pinned": row[1],
        "updated_at": row[2].isoformat(timespec="milliseconds"),
        "title_enc": bytes(row[3])[:16].hex() + f"... ({len(row[3])} B)",
        "props_enc": f"{len(row[4])} B",
    }
    lines = [f"rows on the server containing the words 'sync conflicts': {leaks}"]
    return Shown("What the server sees", tuple(shown), [shown], lines)


def wrong_passphrase(ctx: DemoContext) -> Shown:
    """A wrong passphrase is a clear error, before any file is written."""
    target = ctx.folder / "duru-demo-wrong.sqlite"
    try:
        download(target, server_url=_url(ctx), passphrase="wrong guess", user=USER)
    except WrongPassphrase as exc:
        return Shown(
            "Wrong passphrase",
            lines=[f"refused: {exc.message}", f"file written: {target.exists()}"],
        )
    raise AssertionError("a wrong passphrase opened the account")


def download_notes(ctx: DemoContext) -> Shown:
    """A new device from the passphrase alone: the export is byte-for-byte the same."""
    target = ctx.folder / "duru-demo-downloaded.sqlite"
    report = download(target, server_url=_url(ctx), passphrase=PASSPHRASE, user=USER)
    with DeviceStore.open(target) as copy:
        same = export_json(copy.db) == export_json(ctx.store.db)
    return Shown(
        "Download to a new device",
        lines=[
            f"{report.rows} rows decrypted into {target} in {report.seconds:.2f} s",
            f"export identical to the original device: {same}",
        ],
    )


def _url(ctx: DemoContext) -> str:
    if ctx.server_url is None:
        raise RuntimeError("the server step must run first")
    return ctx.server_url


def _fresh_database(url: str) -> str:
    """A new database on an external server, so the demo never touches existing data."""
    from duru.remote import with_database

    name = f"duru_demo_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(url, name)


def _count_plaintext(conn: psycopg.Connection[Any], words: str) -> int:
    """Rows of any table whose text form contains ``words`` (RLS scoped to the demo user)."""
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        ).fetchall()
    ]
    hits = 0
    for table in tables:
        found = conn.execute(
            psycopg.sql.SQL("SELECT count(*) FROM {} t WHERE t::text ILIKE %s").format(
                psycopg.sql.Identifier(table)
            ),
            [f"%{words}%"],
        ).fetchone()
        hits += found[0] if found else 0
    return hits


SERVER_STEPS: tuple[tuple[str, Step], ...] = (
    ("server", server),
    ("schema check", schema_check),
    ("upload", upload_notes),
    ("server view", what_the_server_sees),
    ("wrong passphrase", wrong_passphrase),
    ("download", download_notes),
)
"""The encryption and server story, on the notebook the device steps made."""
