"""The rows a push chunk is sealed from (``outbox.entries``): read in groups, not one query
each, and still exactly the rows as they are when sealed.

Real SQLite device files, real keys; rows are opened back with ``to_local``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from duru.bridge import codec_for
from duru.crypto import AccountKeys, KdfParams, new_account
from duru.local import DeviceStore
from duru.model import entity, new_id
from duru.remote.layout import server_table
from duru.sync import client, outbox
from duru.sync.wire import decode_row


@pytest.fixture(scope="module")
def keys() -> AccountKeys:
    return new_account("pass phrase", new_id(), KdfParams.for_tests())[0]


def _opened(e: str, row: dict[str, Any], keys: AccountKeys) -> dict[str, Any]:
    codec = codec_for(entity(e))
    return codec.to_local(decode_row(server_table(entity(e)), row, codec.columns), keys)


def test_a_chunk_of_many_rows_of_several_entities_seals_each_as_it_is_now(
    tmp_path: Path, keys: AccountKeys
) -> None:
    """More than 500 rows of one entity and rows of others, one row deleted and one edited
    after ``pending()``: each entry is the row as it is when sealed, in the chunk's order."""
    with DeviceStore.open(tmp_path / "d.db") as s:
        notes = [s.notes.create(f"note {i}", body=f"body {i}") for i in range(1100)]
        s.tasks.create(notes[0]["id"], "a task")
        s.notes.create("tagged", tags=["t1", "t2"], folder_id=s.folders.create("f")["id"])
        rows = outbox.pending(s.db)
        assert len({p.entity for p in rows}) >= 4 and len(rows) > 1100
        s.notes.trash(notes[5]["id"])
        s.notes.purge(notes[5]["id"])  # gone since pending()
        s.notes.edit(notes[700]["id"], title="edited since")
        got = list(outbox.entries(s.db, rows, keys))
        assert [p for p, _ in got] == rows
        for p, entry in got:
            assert (entry.entity, entry.row_id) == (p.entity, p.row_id)
            now = s.db.find(entity(p.entity), p.row_id)
            if now is None:
                assert entry.kind == "delete" and entry.row is None
                continue
            assert entry.kind == "upsert" and entry.base_version == now["version"]
            assert entry.row is not None and _opened(p.entity, entry.row, keys) == now
        deleted = [e for p, e in got if p.row_id == notes[5]["id"]]
        assert [e.kind for e in deleted] == ["delete"]


def test_sealing_a_chunk_of_big_notes_reads_about_the_rows_it_sends(
    tmp_path: Path, keys: AccountKeys
) -> None:
    """A chunk stops at MAX_CHUNK_BYTES: the rows past that point must not all be read (and
    held) first, or every chunk of a push of big notes reads the rest of the outbox again."""
    body = "x" * 300_000
    with DeviceStore.open(tmp_path / "d.db") as s:
        for i in range(100):
            s.notes.create(f"big {i}", body=body)
        rows = outbox.pending(s.db)
        ids = {p.row_id for p in rows if p.entity == "note"}
        asked: list[str] = []

        def trace(statement: str) -> None:
            if statement.startswith("SELECT") and 'FROM "notes"' in statement:
                asked.extend(i for i in ids if i in statement)

        s.db.conn.set_trace_callback(trace)
        chunk = client._seal_chunk(s.db, rows, keys, client._Held(), client.MAX_CHUNK_BYTES)
        s.db.conn.set_trace_callback(None)
    sent = sum(p.entity == "note" for p in chunk.sent)
    assert 0 < sent < 50  # the chunk is cut by its bytes
    assert len(asked) <= 2 * sent + 16, f"read {len(asked)} notes to send {sent}"


def test_rows_are_found_by_key_even_with_statistics_from_when_the_device_was_small(
    tmp_path: Path, keys: AccountKeys
) -> None:
    """ANALYZE (the end of a migration run) on a small device, then thousands of notes:
    with those statistics SQLite scanned the whole table for each long ``IN (...)`` list,
    for every window of a push and every page of a pull. Reading 500 rows must cost
    about 500 index lookups, however big the table (SQLite's VM steps, counted)."""
    with DeviceStore.open(tmp_path / "d.db") as s:
        for i in range(20):
            s.notes.create(f"early {i}")
        s.db.conn.execute("ANALYZE")
        for _ in range(3):  # three big imports: 12,000 notes the statistics never saw
            with s.db.transaction():
                for i in range(4000):
                    s.notes.create(f"later {i}", body="words " * 20)
        rows = outbox.pending(s.db)
        wanted = [p for p in rows if p.entity == "note"][-500:]
        steps = 0

        def count() -> int:
            nonlocal steps
            steps += 1
            return 0

        s.db.conn.set_progress_handler(count, 100)
        found = outbox._current_rows(s.db, wanted)
        tombstones = dict(outbox._deleted_before(s.db, wanted))
        live = outbox._live_keys(s.db, wanted)
        s.db.conn.set_progress_handler(None, 0)
        assert len(found) == len(live) == 500 and not tombstones
        # A scan of the 12,020 notes: ~50,000 steps each; by key, ~12 steps a row and read.
        assert steps * 100 < 40_000, f"{steps * 100} SQLite VM steps for 3 reads of 500 rows"


def test_a_key_holding_a_nul_finds_no_row(tmp_path: Path) -> None:
    """SQLite's json_each ends a text at its first NUL: "<id>\\0x" found the row "<id>"
    (an IN list compares the whole text). No key of ours holds one; a server's could."""
    with DeviceStore.open(tmp_path / "d.db") as s:
        note = s.notes.create("one")
        fake = outbox.Pending("note", note["id"] + "\x00x", ("op",), 1)
        assert outbox._current_rows(s.db, [fake]) == {}
        assert outbox._live_keys(s.db, [fake]) == set()
        assert outbox._current_rows(s.db, [replace(fake, row_id=note["id"])])
