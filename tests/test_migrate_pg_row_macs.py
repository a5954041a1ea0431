"""Server migration 0002: a server of schema 1 (no row MACs) gets one on every row.

Rows are made by a real device store and crossed by the bridge, as a client of schema 1
wrote them (no ``row_mac``); the migration makes every MAC on the client side, and then
a device syncing through `duru serve` accepts every row.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from test_migrate_pg_support import fast_config, insert
from test_sync import Server, device

from duru import sync
from duru.bridge import account_row, codec_for
from duru.crypto import AccountKeys, KdfParams, new_account
from duru.errors import PreflightFailed, TamperedRow
from duru.local import DeviceStore
from duru.local.db import Database
from duru.migrate.postgres import server_run, server_status
from duru.migrate.server_migrations.history import schema_v1_ddl
from duru.model import ENTITIES
from duru.remote.schema import SERVER_SCHEMA_VERSION
from duru.schemacheck.check import check_schema

PASS = "row macs for everyone"
pytestmark = pytest.mark.pg_migration


def _v1_server(url: str, tmp_path: Path, name: str = "mia") -> tuple[AccountKeys, int]:
    """A schema-1 database holding one user's device data of every kind; (keys, rows)."""
    keys, record = new_account(PASS, str(uuid.uuid4()), KdfParams.interactive())
    source = tmp_path / f"{name}.sqlite"
    with DeviceStore.open(source) as s:
        folder = s.folders.create("Работа 📁")
        sub = s.folders.create("sub", parent_id=folder["id"])
        for i in range(40):
            note = s.notes.create(f"note {i} 東京", body=f"body {i}\n" * 3)
            s.tags.add(note["id"], f"tag{i % 3}")
            s.folders.file_note(note["id"], sub["id"] if i % 2 else folder["id"])
            if i % 4 == 0:
                s.tasks.create(note["id"], f"task {i}")
    rows = 0
    with psycopg.connect(url) as conn, Database.open(source) as db:
        for stmt in schema_v1_ddl():
            conn.execute(stmt)
        insert(conn, "accounts", {**account_row(keys.user_id, record), "name": name})
        for e in ENTITIES:
            codec = codec_for(e)
            listed = ", ".join(f'"{n}"' for n in e.field_names)
            for local in db.rows(f'SELECT {listed} FROM "{e.table}"'):
                remote = codec.to_remote(dict(local), keys, keys.user_id)
                del remote["row_mac"]  # a client of schema 1 made none
                rows += 1
                insert(conn, e.table, {**remote, "change_seq": rows})
        conn.execute("UPDATE accounts SET last_change_seq = %s", (rows,))
    return keys, rows


def _all_rows(url: str) -> list[tuple[Any, dict[str, Any]]]:
    out = []
    with psycopg.connect(url) as conn:
        for e in ENTITIES:
            cur = conn.execute(f'SELECT * FROM "{e.table}"')
            names = [d.name for d in cur.description or ()]
            out += [(e, dict(zip(names, r, strict=True))) for r in cur.fetchall()]
    return out


def test_every_row_gets_a_mac_that_its_users_devices_accept(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys, rows = _v1_server(pg_url, tmp_path)
    assert server_status(pg_url).version == "1"
    report = server_run(pg_url, passphrases={"mia": PASS}, config=fast_config())
    assert report.status == "done", report.reason
    assert server_status(pg_url).version == str(SERVER_SCHEMA_VERSION)
    assert check_schema(None, pg_url).ok
    found = _all_rows(pg_url)
    assert len(found) == rows > 100
    for e, row in found:
        assert codec_for(e).row_base(row, keys) == row["version"]
    # A device of the user, syncing through `duru serve` on the migrated database.
    home = tmp_path / "home"
    monkeypatch.setenv("DURU_HOME", str(home))
    server = Server(pg_url, home)
    server.start()
    try:
        fresh = device(tmp_path, "fresh")
        sync.login(fresh, server=server.url, user="mia", passphrase=PASS)
        pulled = sync.sync(fresh)
    finally:
        server.stop()
    assert pulled.quarantined == 0 and pulled.pulled == rows
    with Database.open(fresh) as db:
        assert db.rows("SELECT count(*) AS n FROM notes")[0]["n"] == 40


def test_rows_written_without_a_mac_before_the_contract_get_one_and_wrong_ones_are_redone(
    pg_url: str, tmp_path: Path
) -> None:
    keys, rows = _v1_server(pg_url, tmp_path)
    paused = server_run(pg_url, passphrases={"mia": PASS}, config=fast_config(), contract=False)
    assert paused.status == "paused"
    with psycopg.connect(pg_url) as conn:
        # A client of schema 1 still writes rows without a MAC ...
        conn.execute("UPDATE notes SET row_mac = NULL WHERE change_seq <= 3")
        # ... and a MAC that does not match its row (a bug, a bad disk) is made again.
        conn.execute("UPDATE notes SET is_pinned = NOT is_pinned WHERE change_seq = 4")
        assert conn.execute("SELECT count(*) FROM notes WHERE row_mac IS NULL").fetchone() == (3,)
    done = server_run(pg_url, passphrases={"mia": PASS}, config=fast_config())
    assert done.status == "done", done.reason
    damaged = []
    for e, row in _all_rows(pg_url):
        try:
            codec_for(e).row_base(row, keys)
        except TamperedRow:
            damaged.append((e.table, row["change_seq"]))
    # The rows written without one got theirs. The row changed after the check is not
    # vouched for afresh (the contract only fills missing MACs: a MAC made now would
    # launder a change made without the keys), so devices refuse it on pull.
    assert damaged == [("notes", 4)]


def test_rows_of_a_user_without_keys_hold_the_contract(pg_url: str, tmp_path: Path) -> None:
    _v1_server(pg_url, tmp_path)
    paused = server_run(pg_url, passphrases={}, config=fast_config())
    assert paused.status == "paused" and "have no MAC" in (paused.reason or "")
    assert server_status(pg_url).version == "1"


def test_a_server_stamped_1_without_the_sync_tables_is_refused_not_stamped_current(
    pg_url: str, tmp_path: Path
) -> None:
    _v1_server(pg_url, tmp_path)
    with psycopg.connect(pg_url) as conn:  # as a build from before sync made it
        conn.execute("DROP TABLE conflicts")
    with pytest.raises(PreflightFailed, match="not schema 1 apart from row MACs") as failed:
        server_run(pg_url, passphrases={"mia": PASS}, config=fast_config())
    assert "conflicts" in failed.value.message and "new server database" in failed.value.message
    assert server_status(pg_url).version == "1"
    with psycopg.connect(pg_url) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_attribute WHERE attname = 'row_mac' AND NOT attisdropped"
        ).fetchone() == (0,)
