"""No plaintext on the server: every secret field of every entity goes through the bridge
into PostgreSQL with a marker, then every value of every column of every table (and the
server's files on disk) is searched for the markers. Zero hits; and the rows still read back.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import TupleRow

from duru.bridge import account_row, codec_for
from duru.crypto import AccountKeys, KdfParams, new_account
from duru.model import ENTITIES, Entity, Kind, Row, complete_row, new_id
from duru.remote.schema import apply_server_schema
from duru.sync.server_account import set_user

if TYPE_CHECKING:
    from conftest import PgDatabases

Conn = psycopg.Connection[TupleRow]
RUN = uuid.uuid4().hex[:12]


@dataclass
class Upload:
    conn: Conn  # as the database's owner (the role under test)
    inspect: Conn  # as the superuser: the scans must see every row and the data files
    keys: AccountKeys
    rows: dict[str, Row]
    markers: list[str]  # each one must appear nowhere on the server


def _secret_values(e: Entity, markers: list[str]) -> Row:
    """A value carrying a fresh marker for every secret field of ``e`` (from the model)."""
    values: Row = {}
    for i, f in enumerate(e.secret_fields):
        marker = f"MARK{RUN}{e.name}{f.name}"
        match f.kind:
            case Kind.TEXT:
                values[f.name] = f"{marker} ünïcode 🌍 {marker}"
            case Kind.JSON:
                values[f.name] = json.dumps({marker: [marker, 1.5]}, ensure_ascii=False)
            case Kind.FLOAT:
                number = 4242.0 + (hash(marker) % 10**9) / 1e9 + i / 7
                values[f.name] = number
                marker = repr(number)
            case _:
                raise AssertionError(f"no marker for a secret {f.kind} field; add one")
        markers.append(marker)
    return values


def _rows(markers: list[str]) -> dict[str, Row]:
    """One row of every entity, parents first, wired by real foreign keys."""
    ids = {e.name: new_id() for e in ENTITIES}
    links = {
        "note_id": ids["note"],
        "folder_id": ids["folder"],
        "source_id": ids["note"],
        "reminder_id": ids["reminder"],
    }
    out = {}
    for e in ENTITIES:
        values = {"id": ids[e.name]} if "id" in e.field_names else {}
        values.update({k: v for k, v in links.items() if k in e.field_names})
        values.update(_secret_values(e, markers))
        out[e.name] = complete_row(e, values, 1_700_000_000_000)
    return out


@pytest.fixture(scope="module")
def upload(pg_databases: PgDatabases) -> Iterator[Upload]:
    with (
        pg_databases.fresh("duru_test_plain") as url,
        psycopg.connect(url) as conn,
        psycopg.connect(pg_databases.inspect(url)) as inspect,
    ):
        keys, record = new_account(f"passphrase {RUN}", new_id(), KdfParams.for_tests())
        markers: list[str] = [f"passphrase {RUN}"]
        rows = _rows(markers)
        apply_server_schema(conn)
        _write(conn, keys, record, rows)
        yield Upload(conn, inspect, keys, rows, markers)


def _write(conn: Conn, keys: AccountKeys, record: Any, rows: dict[str, Row]) -> None:
    set_user(conn, keys.user_id)  # the rows are this user's (row level security)
    account = account_row(keys.user_id, record)
    conn.execute(
        sql.SQL("INSERT INTO accounts ({}) VALUES ({})").format(
            sql.SQL(", ").join(map(sql.Identifier, account)),
            sql.SQL(", ").join(sql.Placeholder() * len(account)),
        ),
        list(account.values()),
    )
    seq = conn.execute(
        "SELECT duru_reserve_change_seqs(%s, %s)", (keys.user_id, len(rows))
    ).fetchone()
    assert seq is not None
    for offset, e in enumerate(ENTITIES):
        codec = codec_for(e)
        remote = codec.to_remote(rows[e.name], keys, keys.user_id)
        conn.execute(
            sql.SQL("INSERT INTO {} ({}, change_seq) VALUES ({}, %s)").format(
                sql.Identifier(e.table),
                sql.SQL(", ").join(map(sql.Identifier, codec.columns)),
                sql.SQL(", ").join(sql.Placeholder() * len(codec.columns)),
            ),
            [*(remote[c] for c in codec.columns), seq[0] + offset],
        )
    conn.commit()


def scan(conn: Conn, markers: list[str]) -> list[tuple[str, str, str]]:
    """(table, column, marker) for every marker found in any column of any table.

    Every column is read as text (any type casts to text); bytea columns are also
    searched for the marker's UTF-8 and UTF-16 bytes.
    """
    columns = conn.execute(
        "SELECT n.nspname, c.relname, a.attname, t.typname"
        " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON t.oid = a.atttypid"
        " WHERE c.relkind IN ('r', 'p', 'm') AND a.attnum > 0 AND NOT a.attisdropped"
        " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        " AND n.nspname NOT LIKE 'pg_toast%'"
    ).fetchall()
    assert len(columns) > 100, "the scan must see the whole schema"
    hits = []
    for schema, table, column, type_name in columns:
        target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        col = sql.Identifier(column)
        as_text = sql.SQL(
            "SELECT m FROM unnest(%s::text[]) m"
            " WHERE EXISTS (SELECT 1 FROM {} WHERE strpos({}::text, m) > 0)"
        ).format(target, col)
        found = [r[0] for r in conn.execute(as_text, (markers,))]
        if type_name == "bytea":
            as_bytes = sql.SQL(
                "SELECT %s FROM {} WHERE position(%s::bytea IN {}) > 0 LIMIT 1"
            ).format(target, col)
            for marker in markers:
                for encoded in (marker.encode("utf-8"), marker.encode("utf-16-le")):
                    if conn.execute(as_bytes, (marker, encoded)).fetchone():
                        found.append(marker)
        hits += [(table, column, m) for m in found]
    return hits


def test_no_marker_is_in_any_column_of_any_table(upload: Upload) -> None:
    counts = {
        e.table: upload.inspect.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(e.table))
        ).fetchone()
        for e in ENTITIES
    }
    assert all(c == (1,) for c in counts.values()), counts
    assert len(upload.markers) > 30
    assert scan(upload.inspect, upload.markers) == []
    upload.inspect.rollback()


def test_the_scan_finds_a_marker_in_text_json_and_bytea(upload: Upload) -> None:
    """The scanner itself can fail: plant markers on purpose and it names each place."""
    conn, planted = upload.inspect, [f"CONTROL{RUN}a", f"CONTROL{RUN}b", f"CONTROL{RUN}c"]
    with conn.transaction(force_rollback=True):
        conn.execute("CREATE TABLE scan_control (t text, j jsonb, b bytea)")
        conn.execute(
            "INSERT INTO scan_control VALUES (%s, %s, %s)",
            (f"x{planted[0]}y", json.dumps({"k": planted[1]}), f"..{planted[2]}..".encode()),
        )
        hits = scan(conn, planted)
    assert sorted(hits) == [
        ("scan_control", "b", planted[2]),
        ("scan_control", "j", planted[1]),
        ("scan_control", "t", planted[0]),
    ]


def test_every_row_reads_back_exactly(upload: Upload) -> None:
    set_user(upload.conn, upload.keys.user_id)  # read back as the owner, as the product does
    for e in ENTITIES:
        codec = codec_for(e)
        query = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(map(sql.Identifier, codec.columns)), sql.Identifier(e.table)
        )
        stored = upload.conn.execute(query).fetchone()
        assert stored is not None
        back = codec.to_local(dict(zip(codec.columns, stored, strict=True)), upload.keys)
        assert back == upload.rows[e.name], e.name
    upload.conn.rollback()


def test_no_marker_is_in_the_servers_files(upload: Upload) -> None:
    conn = upload.inspect
    conn.execute("CHECKPOINT")
    row = conn.execute("SHOW data_directory").fetchone()
    conn.rollback()
    assert row is not None
    root = Path(row[0])
    if not os.access(root, os.R_OK | os.X_OK):
        pytest.skip(f"the server's data directory {root} is not readable from this process")
    needles = [m.encode("utf-8") for m in upload.markers]
    searched = 0
    for path in root.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        searched += len(data)
        found = [n for n in needles if n in data]
        assert not found, f"{path} holds {found[0]!r}"
    assert searched > 1_000_000
