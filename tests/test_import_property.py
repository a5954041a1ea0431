"""Property: on any small legacy file, every source row is accounted for and none vanishes.

Rows are drawn from small pools of ids (so references collide, dangle and
form cycles) and of values (good and bad dates, numbers, enum codes, NULLs,
BLOBs, unicode). After the import, each source row must be in quarantine
(whole), or findable in the target by its mapped id or its contents.
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
import tempfile
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from legacy_factory import (
    TABLES,
    V11,
    composite_uuid,
    legacy_uuid,
    link_key,
    write_legacy,
)

from duru.local import Database
from duru.local.legacy import QUARANTINE_SOURCE, import_legacy

U1 = "0b9f3e2a-5c1d-4e8f-9a7b-6c5d4e3f2a1b"
NOTE_IDS = ["n1", "n2", "n3", U1, U1.upper()]
U2, U3 = "7c1e0d2f-3a4b-4c5d-8e6f-0a1b2c3d4e5f", "e4d3c2b1-a0f9-4e8d-b7c6-5a4b3c2d1e0f"
# Two spellings of one uuid: different rows for the file, one row for the model.
FOLDER_IDS = ["f1", "f2", "f3", U2, U2.upper()]
TASK_IDS = ["t1", "t2", "t3", U3, U3.upper()]


def mostly(good: st.SearchStrategy[object], bad: st.SearchStrategy[object]) -> Any:
    """Good values most of the time, NULL some of the time, a bad value now and then."""
    return st.integers(0, 29).flatmap(lambda i: bad if i == 0 else st.none() if i < 3 else good)


texts = mostly(st.text(max_size=6), st.binary(max_size=3))
dates = mostly(
    st.one_of(
        st.integers(0, 2 * 10**9),
        st.integers(10**11, 2 * 10**12),
        st.datetimes(min_value=datetime(1900, 1, 1)).map(datetime.isoformat),
        st.floats(0, 2e9),
    ),
    st.one_of(st.floats(), st.sampled_from(["", "soon", "13/13", "2024-02-30"])),
)
ints = mostly(st.sampled_from([0, 1, "1"]), st.sampled_from([7, -1, "x", 1.5, float("inf")]))
reals = mostly(st.floats(-180, 180), st.one_of(st.floats(), st.sampled_from(["north"])))


def ref(pool: list[str]) -> Any:
    return mostly(st.sampled_from(pool), st.sampled_from(["", "  ", "gone"]))


def column_values(table: str, column: str, decl: str) -> Any:
    """A value strategy for one v11 column, by what the column holds."""
    if column in ("id", "note_id", "source_id", "target_id") and table != "note_reminders":
        pools = {
            "local_folders": FOLDER_IDS,
            "note_tasks": TASK_IDS,
            "pending_ops": NOTE_IDS,
        }
        pool = NOTE_IDS if column != "id" else pools.get(table, NOTE_IDS)
        return ref(pool)
    if column in ("parent_id", "folder_id"):
        return ref(FOLDER_IDS)
    if column == "parent_task_id":
        return ref(TASK_IDS)
    if column == "reminder_id":
        return mostly(st.integers(1, 4), st.sampled_from(["2", "r"]))
    if column == "entity_id":
        return ref(NOTE_IDS + FOLDER_IDS + TASK_IDS)
    if column == "tag":
        return mostly(st.sampled_from(["a", " a ", "b", "ü"]), st.sampled_from(["", "  "]))
    if column.endswith(("_at", "_date", "_until", "last_triggered")):
        return dates
    if "REAL" in decl:
        return reals
    if "INTEGER" in decl:
        return ints
    return texts


def table_rows(table: str) -> st.SearchStrategy[list[dict[str, object]]]:
    columns = V11[table] if table != "fts_notes" else (("id", ""), ("title", ""), ("body", ""))
    fields = {
        c: column_values(table, c, d) for c, d in columns if not d.startswith("INTEGER PRIMARY")
    }
    row = st.fixed_dictionaries(fields)
    if table in ("note_reminders", "pending_ops"):
        row = st.builds(lambda r, i: {**r, "id": i}, row, st.integers(1, 6))
    unique = dict(V11.get(table, ())).get("id", "").startswith(("TEXT PRIMARY", "INTEGER"))

    def key(r: dict[str, object]) -> object:
        return r["id"] if unique and r["id"] is not None else id(r)

    return st.lists(row, min_size=int(table == "local_notes"), max_size=6, unique_by=key)


legacy_files = st.fixed_dictionaries({t: table_rows(t) for t in TABLES})


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(rows=legacy_files, seed=st.integers(0, 2**32))
def test_no_source_row_vanishes(rows: dict[str, list[dict[str, object]]], seed: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "app.sqlite", Path(tmp) / "duru.sqlite"
        write_legacy(source, rows, rng=random.Random(seed))
        report = import_legacy(source, target)
        report.check()
        with Database.open(target, create=False) as db:
            kept = Counter(
                (q["source_table"], _canonical(json.loads(q["row_json"])))
                for q in db.rows("SELECT * FROM quarantine WHERE source = ?", [QUARANTINE_SOURCE])
            )
            for table in TABLES:
                originals = _source_rows(source, table)
                assert report.tables[table].read == len(originals), table
                for original in originals:
                    entry = (table, _canonical(original))
                    if kept[entry] > 0:
                        kept[entry] -= 1
                    else:
                        assert _findable(db, table, original), (table, original)
            assert not +kept, f"quarantined rows that are not in the source: {+kept}"


def _source_rows(path: Path, table: str) -> list[dict[str, object]]:
    conn = sqlite3.connect(path)
    try:
        cur = conn.execute(f'SELECT * FROM "{table}" ORDER BY rowid')
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        conn.close()


def _canonical(row: dict[str, Any]) -> str:
    def plain(v: object) -> object:
        if isinstance(v, bytes):
            return {"$bytes_hex": v.hex()}
        if isinstance(v, float) and not math.isfinite(v):
            return {"$real": repr(v)}
        return v

    return json.dumps({k: plain(v) for k, v in row.items()}, sort_keys=True)


def _id(value: object) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return str(int(value)) if isinstance(value, float) else str(value)


# A text column of each table with an id, compared to tell a row from another with its id.
TEXT_COLUMN = {
    "local_notes": "title",
    "local_folders": "name",
    "note_tasks": "content",
    "note_reminders": "title",
    "local_templates": "title",
    "saved_searches": "name",
}


def _same_text(source: object, stored: object) -> bool:
    if isinstance(source, bytes):
        source = source.decode("utf-8")
    return stored == ("" if source is None else source)


def _findable(db: Database, table: str, row: dict[str, Any]) -> bool:
    """Is this (not quarantined) source row in the target, by mapped id or by contents?"""
    own = {
        "local_notes": "note",
        "local_folders": "folder",
        "note_tasks": "task",
        "note_reminders": "reminder",
        "local_templates": "template",
        "saved_searches": "saved_search",
    }
    if table in own:
        key = _id(row["id"])
        found = None if key is None else db.find(own[table], legacy_uuid(table, key))
        text = TEXT_COLUMN[table]
        return found is not None and _same_text(row[text], found[text])
    if table == "note_tags":
        note, tag = _id(row["note_id"]), row["tag"]
        if note is None or not isinstance(tag, str):
            return False
        key = composite_uuid("note_tags", [legacy_uuid("local_notes", note), tag.strip()])
        return db.find("note_tag", key) is not None
    if table == "note_links":
        source, target = _id(row["source_id"]), _id(row["target_id"])
        title = row["target_title"]
        title = title.decode("utf-8") if isinstance(title, bytes) else title
        if source is None:
            return False
        return db.find("note_link", link_key(source, title, target)) is not None
    if table == "note_folders":
        note, folder = _id(row["note_id"]), _id(row["folder_id"])
        if note is None or folder is None:
            return False
        found = db.find("note_folder", legacy_uuid("local_notes", note))
        return found is not None and found["folder_id"] == legacy_uuid("local_folders", folder)
    if table == "fts_notes":
        key = _id(row["id"])
        return key is not None and db.find("note", legacy_uuid("local_notes", key)) is not None
    assert table == "pending_ops"
    key = _id(row["entity_id"])
    return key is not None and any(
        db.find(entity, legacy_uuid(legacy, key)) is not None for legacy, entity in own.items()
    )
