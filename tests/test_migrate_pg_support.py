"""Helpers shared by the server migration tests (no tests here).

A version-0 server database (the crisis era: ``notes.title`` plaintext) with real accounts
and notes made through the bridge, the sealed title swapped for its plaintext; a small
scratch migration set on a current server database; and fast run settings.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from duru.bridge import account_row, codec_for, to_local
from duru.crypto import AccountKeys, KdfParams, new_account
from duru.migrate.config import RunConfig
from duru.migrate.postgres import DdlPolicy, ServerRunConfig
from duru.migrate.server_migrations.history import schema_v0_ddl
from duru.model import complete_row, entity, new_id, now_ms

NOTES = entity("notes")
MIGRATION = "0001_seal_note_titles"


@dataclass
class User:
    name: str
    passphrase: str
    keys: AccountKeys
    titles: dict[str, str] = field(default_factory=dict)  # note id -> its title

    @property
    def id(self) -> str:
        return self.keys.user_id


def fast_config(**chunks: Any) -> ServerRunConfig:
    """Short lock waits and backoffs, small chunks, so tests see many chunks quickly."""
    run = {"first_chunk": 50, "min_chunk": 50, "max_chunk": 200, **chunks}
    policy = DdlPolicy(
        lock_timeout=0.2, statement_timeout=30, attempts=20, backoff=0.02, max_backoff=0.2
    )
    return ServerRunConfig(ddl=policy, chunks=RunConfig(**run))


def insert(conn: psycopg.Connection[Any], table: str, row: dict[str, Any]) -> None:
    conn.execute(
        sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier(table),
            sql.SQL(", ").join(map(sql.Identifier, row)),
            sql.SQL(", ").join(sql.Placeholder() * len(row)),
        ),
        list(row.values()),
    )


def add_user(conn: psycopg.Connection[Any], name: str) -> User:
    keys, record = new_account(f"{name} passphrase", new_id(), KdfParams.for_tests())
    row = account_row(keys.user_id, record)
    row["name"] = name
    insert(conn, "accounts", row)
    return User(name, f"{name} passphrase", keys)


def plaintext_note(user: User, title: str, seq: int) -> dict[str, Any]:
    """A full server notes row of the crisis era: the bridge's row, title in plaintext."""
    local = complete_row(NOTES, {"id": new_id(), "title": title, "body": f"body {seq}"}, now_ms())
    remote = codec_for(NOTES).to_remote(local, user.keys, user.id)
    del remote["title_enc"], remote["row_mac"]  # the crisis era had neither
    remote.update(title=title, change_seq=seq)
    user.titles[local["id"]] = title
    return remote


def make_v0(url: str, users: tuple[str, ...] = ("alice",), notes: int = 120) -> list[User]:
    """A version-0 server database with ``notes`` plaintext-titled notes per user."""
    made = []
    with psycopg.connect(url) as conn:
        for stmt in schema_v0_ddl():
            conn.execute(stmt)
        for name in users:
            user = add_user(conn, name)
            rows = [plaintext_note(user, f"{name} note {i} ünïcode", i) for i in range(notes)]
            with conn.cursor() as cur:
                cols = list(rows[0])
                cur.executemany(
                    sql.SQL("INSERT INTO notes ({}) VALUES ({})").format(
                        sql.SQL(", ").join(map(sql.Identifier, cols)),
                        sql.SQL(", ").join(sql.Placeholder() * len(cols)),
                    ),
                    [list(r.values()) for r in rows],
                )
            made.append(user)
    return made


def open_titles(url: str, user: User) -> dict[str, str]:
    """Every note of ``user`` read back through the bridge (the sealed title opened)."""
    with psycopg.connect(url) as conn:
        cur = conn.execute("SELECT * FROM notes WHERE user_id = %s", (user.id,))
        cols = [d.name for d in cur.description or ()]
        rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    return {r["id"]: r["title"] for r in (to_local(NOTES, row, user.keys) for row in rows)}


def columns(conn: psycopg.Connection[Any], table: str) -> dict[str, bool]:
    """Column name -> NOT NULL of a live table."""
    rows = conn.execute(
        "SELECT attname, attnotnull FROM pg_attribute WHERE attrelid = %s::regclass"
        " AND attnum > 0 AND NOT attisdropped",
        (table,),
    ).fetchall()
    return {str(n): bool(nn) for n, nn in rows}


def audit_rows(url: str, **where: str) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn:
        cur = conn.execute("SELECT * FROM duru_migration_audit ORDER BY id")
        cols = [d.name for d in cur.description or ()]
        rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    return [r for r in rows if all(r[k] == v for k, v in where.items())]


@contextmanager
def holding(url: str, statement: str, seconds: float) -> Iterator[threading.Thread]:
    """Another session runs ``statement`` in an open transaction and keeps it ``seconds``."""
    ready = threading.Event()

    def hold() -> None:
        with psycopg.connect(url) as conn:
            conn.execute(statement)
            ready.set()
            time.sleep(seconds)
            conn.commit()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert ready.wait(10), "the holding session did not start"
    try:
        yield thread
    finally:
        thread.join(seconds + 10)
