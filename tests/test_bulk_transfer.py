"""Bulk upload / download (duru.sync): real SQLite files, real PostgreSQL, real crypto."""

from __future__ import annotations

import json
import sqlite3
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

import duru.sync
from duru.bridge import codec_for
from duru.crypto import KdfParams
from duru.errors import (
    BridgeError,
    CryptoError,
    NotFound,
    RemoteError,
    StoreError,
    SyncError,
    UsageError,
    WrongPassphrase,
)
from duru.local import Database, export_json
from duru.model import ENTITIES, FOLDER, NOTE, NOTE_TAG, TASK, Entity, Field, Kind
from duru.remote.layout import ServerColumn, ServerIndex, ServerTable, server_table, server_tables
from duru.remote.schema import apply_server_schema
from duru.sync import download, upload
from duru.sync.bulk_keys import BulkKeys
from duru.sync.copy import StagedUpsert
from duru.sync.copy_format import CopyFormatter
from duru.sync.device_rows import count_rows, open_readonly, read_chunks, read_own_chunks
from duru.sync.server_account import KDF_FLOOR, set_user

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gen_device  # noqa: E402

PASS = "correct horse battery staple"
# The floor: as cheap as the client accepts, so tests stay fast.
KDF = KdfParams.interactive()
MARK = "ZQXMARK"


# -- device databases -----------------------------------------------------------


def _ids(count: int) -> list[str]:
    """Random uuids sorted descending: in key order every child comes before its parent."""
    return sorted((str(uuid.uuid4()) for _ in range(count)), reverse=True)


def _secret_value(e: Entity, f: Field, row: int) -> object:
    marker = f"{MARK}-{e.name}-{f.name}-{row}-ünï"
    if f.name == "sha256":
        return f"{abs(hash(marker)):064x}"[-64:]
    match f.kind:
        case Kind.TEXT:
            return marker
        case Kind.JSON:
            return json.dumps({"m": marker, "n": [1, 2.5, None]}, separators=(",", ":"))
        case Kind.FLOAT:
            return 47.0 + row / 7
        case _:
            raise AssertionError(f"no marker for {f.kind}")


def add_every_entity(db: Database, rows: int = 3) -> None:
    """Rows of every entity, every secret field set to a marker, trees nested deep.

    Children come before their parents both in key order and in table (rowid) order,
    so neither order would do for sending parents first.
    """
    with db.transaction():
        db.conn.execute("PRAGMA defer_foreign_keys = ON")
        notes = _ids(rows)
        for i, nid in enumerate(notes):
            db.insert(NOTE, _secrets(NOTE, i) | {"id": nid})
        folders = _ids(rows)
        for i in reversed(range(rows)):  # each folder inside the previous one, deepest first
            parent = folders[i - 1] if i else None
            db.insert(FOLDER, _secrets(FOLDER, i) | {"id": folders[i], "parent_id": parent})
        for i, nid in enumerate(notes):
            db.insert("note_folder", {"note_id": nid, "folder_id": folders[-1 - i]})
            db.insert(NOTE_TAG, _secrets(NOTE_TAG, i) | {"note_id": nid})
            target = notes[(i + 1) % rows] if i % 2 else None
            db.insert(
                "note_link", _secrets_of("note_link", i) | {"source_id": nid, "target_id": target}
            )
            reminder = db.insert("reminder", _secrets_of("reminder", i) | {"note_id": nid})
            tasks = _ids(2)
            db.insert(
                TASK,
                _secrets(TASK, i + rows)
                | {"id": tasks[0], "note_id": nid, "parent_task_id": tasks[1]}
                | {"reminder_id": reminder["id"]},
            )
            db.insert(TASK, _secrets(TASK, i) | {"id": tasks[1], "note_id": nid})
            db.insert("attachment", _secrets_of("attachment", i) | {"note_id": nid})
            db.insert("template", _secrets_of("template", i))
            db.insert("saved_search", _secrets_of("saved_search", i))


def _secrets(e: Entity, row: int) -> dict[str, object]:
    return {f.name: _secret_value(e, f, row) for f in e.secret_fields}


def _secrets_of(name: str, row: int) -> dict[str, object]:
    return _secrets(next(e for e in ENTITIES if e.name == name), row)


@pytest.fixture
def device(tmp_path: Path) -> Path:
    path = tmp_path / "device.db"
    with Database.open(path) as db:
        add_every_entity(db)
    return path


@pytest.fixture(scope="module")
def big_device(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The benchmark generator's 10k-note database, plus rows of every other entity."""
    path = tmp_path_factory.mktemp("big") / "device-10k.db"
    gen_device.fresh_copy(gen_device.device_db(10_000), path)
    with Database.open(path) as db:
        add_every_entity(db, rows=20)
    return path


def _export(path: Path) -> str:
    with Database.open(path, create=False) as db:
        return export_json(db)


def unversioned(export: str) -> dict[str, Any]:
    """An export without the rows' versions: what a re-upload keeps (it gives every row a
    new version)."""
    data = json.loads(export)
    for rows in data.values():
        if isinstance(rows, list):
            for row in rows:
                if isinstance(row, dict):
                    row.pop("version", None)
    return dict(data)


def _counts(path: Path) -> dict[str, int]:
    with Database.open(path, create=False) as db:
        return {e.name: int(db.scalar(f'SELECT count(*) FROM "{e.table}"')) for e in ENTITIES}


def _server_counts(inspect_url: str) -> dict[str, int]:
    """Rows of every user the server stored, per entity.

    Counted as the superuser (``pg_inspect_url``): every user's rows, past row level security.
    """
    with psycopg.connect(inspect_url) as conn:
        return {
            e.name: conn.execute(f"SELECT count(*) FROM {e.table}").fetchone()[0]  # type: ignore[index]
            for e in ENTITIES
        }


# -- round trips ----------------------------------------------------------------


def test_round_trip_of_10k_notes_reproduces_the_device_database(
    big_device: Path, pg_url: str, tmp_path: Path, pg_inspect_url: str
) -> None:
    up = upload(big_device, server_url=pg_url, passphrase=PASS, user="ada", kdf=KDF)
    assert up.account_created
    assert {e.entity: e.rows for e in up.entities} == _counts(big_device)
    assert _server_counts(pg_inspect_url) == _counts(big_device)

    target = tmp_path / "restored.db"
    down = download(target, server_url=pg_url, passphrase=PASS, user="ada")
    assert down.user_id == up.user_id and down.rows == up.rows
    assert _export(target) == _export(big_device)
    with Database.open(target, create=False) as db:
        assert db.scalar("SELECT count(*) FROM outbox") == 0  # synced already
        assert db.scalar("PRAGMA foreign_key_check") is None


@pytest.mark.parametrize("workers", [0, 1, 3], ids=["inline", "1-worker", "3-workers"])
def test_every_entity_round_trips_with_trees_split_across_chunks(
    device: Path, pg_url: str, tmp_path: Path, workers: int
) -> None:
    # One row per chunk: a child folder or subtask sorted before its parent would reach
    # the server first and break its foreign key, unless parents are sent first.
    up = upload(
        device,
        server_url=pg_url,
        passphrase=PASS,
        user="ada",
        kdf=KDF,
        chunk_rows=1,
        seal_workers=workers,
    )
    assert up.rows == sum(_counts(device).values())
    target = tmp_path / "restored.db"
    download(target, server_url=pg_url, passphrase=PASS, user="ada")
    assert _export(target) == _export(device)


def test_reupload_is_idempotent(
    device: Path, pg_url: str, tmp_path: Path, pg_inspect_url: str
) -> None:
    first = upload(device, server_url=pg_url, passphrase=PASS, user="ada", kdf=KDF)
    counts = _server_counts(pg_inspect_url)
    second = upload(device, server_url=pg_url, passphrase=PASS, user="ada", kdf=KDF)
    assert (first.account_created, second.account_created) == (True, False)
    assert second.user_id == first.user_id
    assert _server_counts(pg_inspect_url) == counts == _counts(device)
    target = tmp_path / "restored.db"
    download(target, server_url=pg_url, passphrase=PASS, user="ada")
    # Every row went again as a new write, at a new version: its change sequence number.
    assert unversioned(_export(target)) == unversioned(_export(device))
    with psycopg.connect(pg_inspect_url) as conn:
        for e in ENTITIES:
            if "version" in e.field_names:
                stale = conn.execute(
                    sql.SQL("SELECT count(*) FROM {} WHERE version <> change_seq").format(
                        sql.Identifier(server_table(e).name)
                    )
                ).fetchone()
                assert stale == (0,), e.name


def test_upload_of_an_edited_note_updates_its_server_row(
    device: Path, pg_url: str, pg_inspect_url: str
) -> None:
    report = upload(device, server_url=pg_url, passphrase=PASS, user="ada", kdf=KDF)
    with Database.open(device, create=False) as db:
        note_id = db.rows("SELECT id FROM notes ORDER BY id LIMIT 1")[0]["id"]
        db.update(NOTE, note_id, {"title": "Edited title", "body": "new body", "is_pinned": True})
        edited = db.get(NOTE, note_id)
    before = _server_note(pg_url, report.user_id, note_id)
    upload(device, server_url=pg_url, passphrase=PASS, user="ada", kdf=KDF)
    after = _server_note(pg_url, report.user_id, note_id)
    assert _server_counts(pg_inspect_url) == _counts(device)
    assert after["change_seq"] > before["change_seq"]
    assert after["title_enc"] != before["title_enc"] and after["is_pinned"] is True
    keys = _keys(pg_url, report.user_id)
    assert codec_for(NOTE).to_local(after, keys) == {**edited, "version": after["change_seq"]}


def _server_note(url: str, user_id: str, note_id: str) -> dict[str, Any]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        set_user(conn, user_id)
        row = conn.execute("SELECT * FROM notes WHERE id = %s", (note_id,)).fetchone()
    assert row is not None
    return row


def _keys(url: str, user_id: str) -> Any:
    from duru.sync.server_account import unlock_account

    with psycopg.connect(url) as conn:
        set_user(conn, user_id)
        name = conn.execute("SELECT name FROM accounts WHERE user_id = %s", (user_id,)).fetchone()
        assert name is not None
        return unlock_account(conn, name[0], PASS)


def test_download_skips_server_tombstones(device: Path, pg_url: str, tmp_path: Path) -> None:
    up = upload(device, server_url=pg_url, passphrase=PASS, user="ada", kdf=KDF)
    with psycopg.connect(pg_url) as conn:
        set_user(conn, up.user_id)  # as another device's delete would reach the server
        gone = conn.execute(
            "UPDATE note_tags SET deleted_at = now()"
            " WHERE id = (SELECT id FROM note_tags ORDER BY id LIMIT 1) RETURNING id"
        ).fetchone()
    assert gone is not None
    target = tmp_path / "restored.db"
    report = download(target, server_url=pg_url, passphrase=PASS, user="ada")
    assert report.entity("note_tags").rows == _counts(device)["note_tag"] - 1
    with Database.open(target, create=False) as db:
        assert db.find(NOTE_TAG, str(gone[0])) is None


# -- passphrases, accounts, key derivation cost -----------------------------------


def test_wrong_passphrase_on_download_fails_before_the_target_exists(
    device: Path, pg_url: str, tmp_path: Path
) -> None:
    upload(device, server_url=pg_url, passphrase=PASS, user="ada", kdf=KDF)
    target = tmp_path / "restored.db"
    with pytest.raises(WrongPassphrase, match="wrong passphrase for user 'ada'"):
        download(target, server_url=pg_url, passphrase="not it", user="ada")
    assert not target.exists()


def test_wrong_passphrase_on_a_second_upload_changes_nothing(
    device: Path, pg_url: str, pg_inspect_url: str
) -> None:
    upload(device, server_url=pg_url, passphrase=PASS, user="ada", kdf=KDF)
    counts = _server_counts(pg_inspect_url)
    with Database.open(device, create=False) as db:
        db.insert(NOTE, {"title": "after the first upload"})
    with pytest.raises(WrongPassphrase):
        upload(device, server_url=pg_url, passphrase="not it", user="ada", kdf=KDF)
    assert _server_counts(pg_inspect_url) == counts


def test_accounts_are_per_user_name(device: Path, pg_url: str, tmp_path: Path) -> None:
    ada = upload(device, server_url=pg_url, passphrase=PASS, user="ada", kdf=KDF)
    bob = upload(device, server_url=pg_url, passphrase="bob's own", user="bob", kdf=KDF)
    assert bob.account_created and bob.user_id != ada.user_id
    with psycopg.connect(pg_url, row_factory=dict_row) as conn:
        accounts = conn.execute("SELECT * FROM accounts ORDER BY name").fetchall()
    assert [a["name"] for a in accounts] == ["ada", "bob"]
    assert all(a["kdf_params"]["opslimit"] == KDF.opslimit for a in accounts)
    assert PASS not in json.dumps(accounts, default=str)
    target = tmp_path / "bob.db"
    download(target, server_url=pg_url, passphrase="bob's own", user="bob")
    assert _export(target) == _export(device)


def test_a_server_record_below_the_kdf_floor_is_refused(
    device: Path, pg_url: str, tmp_path: Path
) -> None:
    upload(device, server_url=pg_url, passphrase=PASS, user="ada", kdf=KDF)
    # A malicious server lowers the cost so that the passphrase becomes cheap to guess.
    with psycopg.connect(pg_url) as conn:
        conn.execute(
            "UPDATE accounts SET kdf_params = jsonb_set(kdf_params, '{memlimit}', to_jsonb(%s))",
            (KDF_FLOOR.memlimit // 8,),
        )
    with pytest.raises(CryptoError, match="below duru's floor") as raised:
        upload(device, server_url=pg_url, passphrase=PASS, user="ada", kdf=KDF)
    assert not isinstance(raised.value, WrongPassphrase)
    target = tmp_path / "restored.db"
    with pytest.raises(CryptoError, match="below duru's floor"):
        download(target, server_url=pg_url, passphrase=PASS, user="ada")
    assert not target.exists()


def test_creating_an_account_below_the_floor_is_refused(device: Path, pg_url: str) -> None:
    with pytest.raises(UsageError, match="below duru's floor"):
        upload(device, server_url=pg_url, passphrase=PASS, user="ada", kdf=KdfParams.for_tests())


@pytest.mark.parametrize("name", ["", " ada", "ada\n", "a" * 201, 7])
def test_user_names_are_checked(device: Path, pg_url: str, name: Any) -> None:
    with pytest.raises(UsageError):
        upload(device, server_url=pg_url, passphrase=PASS, user=name, kdf=KDF)


def test_download_of_an_unknown_user_or_an_empty_server(
    device: Path, pg_url: str, tmp_path: Path
) -> None:
    target = tmp_path / "restored.db"
    with pytest.raises(NotFound, match="no duru schema"):
        download(target, server_url=pg_url, passphrase=PASS, user="ada")
    upload(device, server_url=pg_url, passphrase=PASS, user="ada", kdf=KDF)
    with pytest.raises(NotFound, match="no account named 'eve'"):
        download(target, server_url=pg_url, passphrase=PASS, user="eve")
    assert not target.exists()


def test_download_refuses_a_device_file_with_rows(device: Path, pg_url: str) -> None:
    upload(device, server_url=pg_url, passphrase=PASS, user="ada", kdf=KDF)
    before = _export(device)
    with pytest.raises(UsageError, match="already holds rows"):
        download(device, server_url=pg_url, passphrase=PASS, user="ada")
    assert _export(device) == before


def test_download_into_an_empty_device_database(device: Path, pg_url: str, tmp_path: Path) -> None:
    upload(device, server_url=pg_url, passphrase=PASS, user="ada", kdf=KDF)
    target = tmp_path / "empty.db"
    Database.open(target).close()
    download(target, server_url=pg_url, passphrase=PASS, user="ada")
    assert _export(target) == _export(device)


# -- what the server sees ---------------------------------------------------------


def _markers(path: Path) -> set[str]:
    found: set[str] = set()
    with Database.open(path, create=False) as db:
        for e in ENTITIES:
            for row in db.rows(f'SELECT * FROM "{e.table}"'):
                found |= {w for v in row.values() for w in _words(v)}
    return found


def _words(value: object) -> set[str]:
    if isinstance(value, memoryview | bytearray):
        value = bytes(value)
    if isinstance(value, bytes):
        text = value.decode("latin-1")
    else:
        text = json.dumps(value, default=str, ensure_ascii=False)
    out = set()
    start = text.find(MARK)
    while start >= 0:
        out.add(text[start : start + 40])
        start = text.find(MARK, start + 1)
    return out


def test_no_plaintext_reaches_the_server(device: Path, pg_url: str, pg_inspect_url: str) -> None:
    secrets = _markers(device)
    # Every secret field of every entity carries one: the scan can see them.
    expected = {(e.name, f.name) for e in ENTITIES for f in e.secret_fields if f.kind != Kind.FLOAT}
    expected.discard(("attachment", "sha256"))
    assert {tuple(m.split("-")[1:3]) for m in secrets} >= expected
    upload(device, server_url=pg_url, passphrase=PASS, user="ada", kdf=KDF)
    seen: set[str] = set()
    # As the superuser: the scan must see every row, whoever's it is.
    with psycopg.connect(pg_inspect_url) as conn:
        for table in server_tables():
            for row in conn.execute(f"SELECT * FROM {table.name}").fetchall():
                seen |= {w for v in row for w in _words(v)}
            # Also as PostgreSQL itself prints the rows (bytea as hex, jsonb as text).
            for (text,) in conn.execute(f"SELECT t::text FROM {table.name} t").fetchall():
                seen |= _words(text)
        assert conn.execute("SELECT count(*) FROM notes").fetchone() == (3,)
    assert seen == set()


# -- reports and progress ----------------------------------------------------------


def test_progress_is_reported_per_chunk(device: Path, pg_url: str, tmp_path: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    upload(
        device,
        server_url=pg_url,
        passphrase=PASS,
        user="ada",
        kdf=KDF,
        chunk_rows=2,
        progress=lambda *a: calls.append(a),
    )
    _check_progress(calls, _counts(device), chunk=2)
    calls.clear()
    download(
        tmp_path / "restored.db",
        server_url=pg_url,
        passphrase=PASS,
        user="ada",
        progress=lambda *a: calls.append(a),
    )
    _check_progress(calls, _counts(device), chunk=None)


def _check_progress(
    calls: list[tuple[str, int, int]], counts: dict[str, int], chunk: int | None
) -> None:
    assert [c[0] for c in calls if c[1] == 0] == [e.name for e in ENTITIES]
    for name, total in counts.items():
        mine = [(done, t) for n, done, t in calls if n == name]
        assert mine[0] == (0, total) and mine[-1] == (total, total)
        dones = [d for d, _ in mine]
        assert dones == sorted(set(dones))
        if chunk is not None:
            assert len(mine) == 1 + -(-total // chunk)


def test_report_to_json(device: Path, pg_url: str) -> None:
    report = upload(device, server_url=pg_url, passphrase=PASS, user="ada", kdf=KDF)
    data = json.loads(report.to_json())
    assert data["direction"] == "upload" and data["user"] == "ada"
    assert data["rows"] == report.rows == sum(_counts(device).values())
    assert [e["entity"] for e in data["entities"]] == [e.name for e in ENTITIES]
    notes = report.entity("notes")
    assert notes.rows == 3 and notes.seconds > 0
    assert notes.rows_per_second == pytest.approx(notes.rows / notes.seconds)
    assert data["seconds"] >= data["transfer_seconds"] > 0


def test_exported_names() -> None:
    assert duru.sync.__all__ == sorted(duru.sync.__all__)
    assert set(duru.sync.__all__) == {
        "DEFAULT_CHUNK_ROWS",
        "EntityTransfer",
        "KDF_FLOOR",
        "KdfFloor",
        "Progress",
        "SyncReport",
        "TransferReport",
        "download",
        "login",
        "logout",
        "register",
        "sync",
        "sync_home",
        "upload",
    }
    assert all(hasattr(duru.sync, name) for name in duru.sync.__all__)


# -- failures leave nothing behind ---------------------------------------------------


@pytest.mark.parametrize("workers", [0, 2], ids=["inline", "2-workers"])
def test_a_row_that_cannot_cross_fails_the_whole_upload(
    device: Path, pg_url: str, workers: int, pg_inspect_url: str
) -> None:
    with Database.open(device, create=False) as db:
        # A NUL in a plain text column: SQLite keeps it, PostgreSQL text cannot.
        db.insert(FOLDER, {"name": "bad", "color": "red\x00blue"})
    with pytest.raises(BridgeError, match="NUL") as raised:
        upload(
            device,
            server_url=pg_url,
            passphrase=PASS,
            user="ada",
            kdf=KDF,
            chunk_rows=1,
            seal_workers=workers,
        )
    if workers:
        assert any("sealing process" in note for note in raised.value.__notes__)
    assert set(_server_counts(pg_inspect_url).values()) == {0}


def test_upload_of_a_missing_file(pg_url: str, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        upload(tmp_path / "nope.db", server_url=pg_url, passphrase=PASS, user="ada", kdf=KDF)
    assert not (tmp_path / "nope.db").exists()


# -- the COPY machinery on its own ---------------------------------------------------

_TINY = ServerTable(
    "tiny",
    (
        ServerColumn("user_id", "uuid"),
        ServerColumn("id", "uuid"),
        ServerColumn("label", "text", nullable=True),
        ServerColumn("amount", "bigint"),
        ServerColumn("ratio", "double precision", nullable=True),
        ServerColumn("flag", "boolean"),
        ServerColumn("at", "timestamp with time zone", nullable=True),
        ServerColumn("doc", "jsonb", nullable=True),
        ServerColumn("blob", "bytea", nullable=True),
        ServerColumn("note", "text", nullable=True),
    ),
    (ServerIndex("tiny_pkey", ("user_id", "id"), "test", constraint="PRIMARY KEY"),),
)
_TINY_COLUMNS = tuple(c.name for c in _TINY.columns if c.name != "note")


def _tiny_rows(user: uuid.UUID, count: int, label: str) -> list[tuple[object, ...]]:
    from datetime import UTC, datetime

    from psycopg.types.json import Jsonb

    return [
        (
            user,
            uuid.UUID(int=i + 1),
            None if i % 3 == 0 else f"{label} {i} ✓",
            i * 1_000_000_007,
            None if i % 2 else i / 3,
            bool(i % 2),
            datetime(2024, 1, 1, 12, 0, i % 60, 123000, tzinfo=UTC),
            Jsonb({"i": i, "s": [label]}),
            bytes(range(i % 256)),
        )
        for i in range(count)
    ]


@pytest.fixture
def tiny(pg_conn: psycopg.Connection[Any]) -> Iterator[psycopg.Connection[Any]]:
    pg_conn.execute(
        "CREATE TABLE tiny (user_id uuid, id uuid, label text, amount bigint NOT NULL,"
        " ratio double precision, flag boolean NOT NULL, at timestamptz, doc jsonb, blob bytea,"
        " note text DEFAULT 'default note', PRIMARY KEY (user_id, id))"
    )
    pg_conn.commit()
    yield pg_conn


def test_staged_upsert_inserts_then_replaces_rows(tiny: psycopg.Connection[Any]) -> None:
    user = uuid.uuid4()
    with tiny.transaction():
        stage = StagedUpsert(tiny, _TINY, _TINY_COLUMNS)
        stage.create()
        assert stage.write(_tiny_rows(user, 50, "first")) == 50
        tiny.execute("UPDATE tiny SET note = 'changed on the server'")
        assert stage.write(_tiny_rows(user, 80, "second")[30:]) == 50  # 20 updates, 30 new
    rows = tiny.execute("SELECT id, label, note FROM tiny ORDER BY id").fetchall()
    assert len(rows) == 80
    assert rows[1][1:] == ("first 1 ✓", "changed on the server")
    # A replaced row is the staged row whole: columns it does not carry take defaults.
    assert rows[31][1:] == ("second 31 ✓", "default note")
    stored = tiny.execute(f"SELECT {', '.join(_TINY_COLUMNS)} FROM tiny ORDER BY id").fetchall()
    expected = _tiny_rows(user, 80, "second")
    assert [r[8] for r in stored[30:]] == [r[8] for r in expected[30:]]
    assert [r[6] for r in stored] == [r[6] for r in expected]


@pytest.mark.parametrize("native", [True, False], ids=["psycopg-formatter", "python-formatter"])
def test_preformatted_copy_data_lands_like_rows(
    tiny: psycopg.Connection[Any], native: bool
) -> None:
    user = uuid.uuid4()
    types = [_TINY.column(c).type for c in _TINY_COLUMNS]  # type: ignore[union-attr]
    data = CopyFormatter(types, native=native).format(_tiny_rows(user, 40, "pre"))
    with tiny.transaction():
        stage = StagedUpsert(tiny, _TINY, _TINY_COLUMNS)
        stage.create()
        assert stage.write_copy_data(data) == 40
    got = tiny.execute(f"SELECT {', '.join(_TINY_COLUMNS)} FROM tiny ORDER BY id").fetchall()
    want = _tiny_rows(user, 40, "pre")
    assert [r[:7] for r in got] == [r[:7] for r in want]
    assert [r[7] for r in got] == [r[7].obj for r in want]  # type: ignore[attr-defined]
    assert [r[8] for r in got] == [r[8] for r in want]


def test_both_copy_formatters_write_the_same_bytes(pg_url: str) -> None:
    user = uuid.uuid4()
    rows = _tiny_rows(user, 30, "same")
    types = [_TINY.column(c).type for c in _TINY_COLUMNS]  # type: ignore[union-attr]
    assert CopyFormatter(types, native=True).format(rows) == CopyFormatter(
        types, native=False
    ).format(rows)
    assert CopyFormatter(types).format([]) == CopyFormatter(types, native=False).format([])
    with pytest.raises(UsageError):
        CopyFormatter(["no such type"])


def test_staged_upsert_refuses_unknown_columns(pg_conn: psycopg.Connection[Any]) -> None:
    apply_server_schema(pg_conn)
    with pytest.raises(UsageError, match="no column"):
        StagedUpsert(pg_conn, server_tables()[2], ("user_id", "id", "nope"))


def test_a_commit_to_the_device_during_the_upload_fails_it(
    device: Path, pg_url: str, pg_inspect_url: str
) -> None:
    def write_meanwhile(entity: str, done: int, total: int) -> None:
        if entity == "note" and done:
            with Database.open(device, create=False) as other:
                other.insert(NOTE, {"title": "written during the upload"})

    with pytest.raises(StoreError, match="changed during the upload"):
        upload(
            device,
            server_url=pg_url,
            passphrase=PASS,
            user="ada",
            kdf=KDF,
            progress=write_meanwhile,
        )
    assert set(_server_counts(pg_inspect_url).values()) == {0}


# -- foreign keys of a first upload, checked set-based ------------------------------


def _orphan_task(device: Path) -> None:
    """A task whose note is gone: SQLite with foreign keys off lets it in."""
    conn = sqlite3.connect(device)
    try:
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute(
            "UPDATE tasks SET note_id = ? WHERE rowid = (SELECT min(rowid) FROM tasks)",
            (str(uuid.uuid4()),),
        )
        conn.commit()
    finally:
        conn.close()


def test_a_first_upload_checks_every_foreign_key_once(
    device: Path, pg_url: str, pg_inspect_url: str, pg_role: str
) -> None:
    _orphan_task(device)
    if pg_role == "superuser":  # BulkKeys: triggers off, one anti-join per key at the end
        refused: tuple[type[Exception], str] = (
            SyncError,
            r"tasks: 1 rows have no notes row .*fk_tasks_note_id",
        )
    else:  # no session_replication_role without a superuser: PostgreSQL's per-row trigger
        refused = (RemoteError, r'table "tasks" violates foreign key constraint "fk_tasks_note_id"')
    with pytest.raises(refused[0], match=refused[1]):
        upload(device, server_url=pg_url, passphrase=PASS, user="ada", kdf=KDF, chunk_rows=2)
    assert set(_server_counts(pg_inspect_url).values()) == {0}


def test_bulk_keys_only_for_a_superuser_and_a_user_without_rows(
    device: Path, pg_url: str, pg_role: str
) -> None:
    upload(device, server_url=pg_url, passphrase=PASS, user="ada", kdf=KDF)
    tables = [t for t in server_tables() if t.entity]
    with psycopg.connect(pg_url) as conn:
        user_id = str(conn.execute("SELECT user_id FROM accounts").fetchone()[0])  # type: ignore[index]
        assert not BulkKeys(conn, user_id, tables).begin()  # ada has rows now
        fresh = BulkKeys(conn, str(uuid.uuid4()), tables)
        if pg_role != "superuser":  # the role of the session is the "any other role" below
            assert not fresh.begin()
            assert conn.execute("SHOW session_replication_role").fetchone() == ("origin",)
            return
        assert fresh.begin()
        assert conn.execute("SHOW session_replication_role").fetchone() == ("replica",)
        fresh.check()  # nothing written: nothing to find
        assert conn.execute("SHOW session_replication_role").fetchone() == ("origin",)
        conn.rollback()
        role = f"duru_plain_{uuid.uuid4().hex[:8]}"
        conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
        assert not BulkKeys(conn, str(uuid.uuid4()), tables).begin()
        conn.rollback()
        # A trigger of its own (a migration's sync trigger, say): replica would silence it.
        conn.execute(
            "CREATE FUNCTION duru_test_noop() RETURNS trigger LANGUAGE plpgsql"
            " AS $$ BEGIN RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER duru_test_sync BEFORE INSERT ON notes"
            " FOR EACH ROW EXECUTE FUNCTION duru_test_noop()"
        )
        assert not BulkKeys(conn, str(uuid.uuid4()), tables).begin()
        conn.rollback()
        # A foreign key the layout does not name would go unchecked.
        conn.execute("ALTER TABLE notes DROP CONSTRAINT fk_notes_user_id")
        assert not BulkKeys(conn, str(uuid.uuid4()), tables).begin()
        conn.rollback()


@pytest.mark.pg_superuser_only(
    "BulkKeys checks keys only when it turned the triggers off, which needs a superuser"
    " (session_replication_role); the other roles' path: the two tests above"
)
def test_bulk_keys_count_what_was_written(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        apply_server_schema(conn)
        conn.commit()
        notes = next(t for t in server_tables() if t.entity == NOTE.name)
        bulk = BulkKeys(conn, str(uuid.uuid4()), [notes])
        assert bulk.begin()
        bulk.wrote(notes, 1)  # claims a row the table does not hold
        with pytest.raises(SyncError, match="wrote 1 rows but the server holds 0"):
            bulk.check()
        conn.rollback()
        # A row of a user with no account: only the set-based check can see it.
        bulk = BulkKeys(conn, str(uuid.uuid4()), [notes])
        assert bulk.begin()
        conn.execute(
            "INSERT INTO notes (user_id, id, title_enc, note_type, is_pinned, deleted,"
            " created_at, updated_at, version, props_enc, row_mac, change_seq) VALUES"
            " (%s, gen_random_uuid(), '', 'note', false, false, now(), now(), 0, '', '', 1)",
            (bulk.user_id,),
        )
        bulk.wrote(notes, 1)
        with pytest.raises(SyncError, match="no accounts row for this user"):
            bulk.check()


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_sealers_split_the_reading_at_the_same_places(tmp_path: Path, workers: int) -> None:
    path = tmp_path / "device.db"
    with Database.open(path) as db:
        for i in range(23):
            db.insert(NOTE, {"title": f"note {i}", "body": "x" * i})
        db.conn.execute("DELETE FROM notes WHERE title IN ('note 3', 'note 11')")  # rowid gaps
    conn = open_readonly(path)
    try:
        total = count_rows(conn, NOTE)
        whole = [r for batch in read_chunks(conn, NOTE, 5, total) for r in batch]
        got = {
            index: batch
            for worker in range(workers)
            for index, batch in read_own_chunks(conn, NOTE, 5, total, worker, workers)
        }
        assert sorted(got) == list(range(5))  # 21 rows: chunks 0..4, each from one worker
        assert [len(got[i]) for i in range(5)] == [5, 5, 5, 5, 1]
        assert sorted(r for i in range(5) for r in got[i]) == sorted(whole)
        with pytest.raises(StoreError, match="no longer has 22 rows"):
            list(read_own_chunks(conn, NOTE, 5, total + 1, 0, workers))
    finally:
        conn.close()
