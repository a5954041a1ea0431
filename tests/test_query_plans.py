"""Every hot device query is served by an index, on a database big enough and ANALYZEd.

The SQL is not copied here: each test calls the real API (or search) with a
trace callback on the connection, then asks EXPLAIN QUERY PLAN about every
SELECT it ran (the trace gives the statement with its parameters inlined).
With ANALYZE statistics the planner weighs real row counts, so a plan that
only looked right on an empty table would show its full scan here.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator

import pytest

from duru.local.housekeeping import maintain
from duru.local.search import Search
from duru.local.store import DeviceStore
from duru.model import ENTITIES

NOTES = 3000
TAGS = [f"tag{i}" for i in range(40)]
WORDS = "design review budget plan meeting sync server launch draft idea garden recipe".split()
TABLES = {e.table for e in ENTITIES} | {"outbox", "quarantine", "duru_meta"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeviceStore]:
    path = tmp_path_factory.mktemp("plans") / "device.sqlite"
    with DeviceStore.open(path) as opened:
        _seed(opened)
        opened.db.conn.execute("ANALYZE")
        yield opened


def _seed(store: DeviceStore) -> None:
    """Rows shaped like a used device: tags and folders skewed, a little pinned and trash."""
    rng = random.Random(5)
    db = store.db
    with db.transaction():
        folders: list[str] = []
        for i in range(300):  # a tree: 30 at the top, the rest under an earlier one
            parent = rng.choice(folders) if i >= 30 else None
            folders.append(db.insert("folder", {"name": f"f{i}", "parent_id": parent})["id"])
        for i in range(NOTES):
            body = " ".join(rng.choices(WORDS, k=40))
            note = db.insert(
                "note",
                {
                    "title": f"note {i} {rng.choice(WORDS)}",
                    "body": body,
                    "is_pinned": rng.random() < 0.01,
                    "deleted": rng.random() < 0.02,
                    "updated_at": 1_700_000_000_000 + rng.randrange(10**10),
                },
            )
            nid = note["id"]
            for tag in set(rng.choices(TAGS, weights=range(40, 0, -1), k=2)):
                db.insert("note_tag", {"note_id": nid, "tag": tag})
            if rng.random() < 0.8:
                db.insert("note_folder", {"note_id": nid, "folder_id": rng.choice(folders)})
            for position in range(2):
                due = 1_700_000_000_000 + rng.randrange(10**9) if rng.random() < 0.6 else None
                db.insert(
                    "task",
                    {
                        "note_id": nid,
                        "content": f"task {i}.{position}",
                        "status": rng.choice(("open", "in_progress", "completed", "cancelled")),
                        "priority": rng.choice(("low", "medium", "high", "urgent")),
                        "due_date": due,
                        "position": position,
                    },
                )


def _selects(store: DeviceStore, call: Callable[[], object]) -> list[str]:
    seen: list[str] = []
    store.db.conn.set_trace_callback(seen.append)
    try:
        call()
    finally:
        store.db.conn.set_trace_callback(None)
    return [s for s in seen if s.lstrip().upper().startswith(("SELECT", "WITH"))]


def _plan(store: DeviceStore, sql: str) -> list[str]:
    return [str(r[3]) for r in store.db.conn.execute("EXPLAIN QUERY PLAN " + sql)]


def full_scans(plan: list[str]) -> list[str]:
    """Plan lines that read a whole table rather than an index, an FTS match or a subquery."""
    derived = {
        m.group(2) for line in plan if (m := re.match(r"(CO-ROUTINE|MATERIALIZE) (\S+)", line))
    }
    bad = []
    for line in plan:
        m = re.match(r"SCAN (\S+)", line)
        if m is None or m.group(1) in derived or line == "SCAN CONSTANT ROW":
            continue
        if "USING INDEX" in line or "USING COVERING INDEX" in line:
            continue
        if "VIRTUAL TABLE INDEX" in line and "M" in line.rsplit(":", 1)[-1]:
            continue  # an FTS5 MATCH: the index of the virtual table, not a table scan
        bad.append(line)
    return bad


def plans_of(store: DeviceStore, call: Callable[[], object]) -> list[list[str]]:
    found = [_plan(store, sql) for sql in _selects(store, call)]
    assert found, "the call ran no SELECT"
    return found


def _ids(store: DeviceStore) -> dict[str, str]:
    conn = store.db.conn
    # The busiest folder that has subfolders, so the tree query has a tree to walk.
    folder = conn.execute(
        "SELECT nf.folder_id FROM note_folders nf"
        " WHERE EXISTS (SELECT 1 FROM folders c WHERE c.parent_id = nf.folder_id)"
        " GROUP BY nf.folder_id ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()[0]
    return {"folder": folder, "tag": TAGS[0]}


HOT: dict[str, tuple[Callable[[DeviceStore, dict[str, str]], object], str]] = {
    "list recent, pinned first": (
        lambda s, ids: s.notes.list_recent(50),
        "ix_notes_is_pinned_updated_at",
    ),
    "recent page after a cursor": (
        lambda s, ids: s.notes.recent_page(50, s.notes.recent_page(50).cursor),
        "ix_notes_is_pinned_updated_at",
    ),
    "open tasks, due soonest": (
        lambda s, ids: s.tasks.open_tasks(50),
        "ix_tasks_due_date_priority",
    ),
    "notes in a folder": (
        lambda s, ids: s.folders.notes_in(ids["folder"]),
        "ix_note_folders_folder_id_note_id",
    ),
    "notes in a folder tree": (
        lambda s, ids: s.folders.notes_in(ids["folder"], recursive=True),
        "ix_note_folders_folder_id_note_id",
    ),
    "notes with a tag": (lambda s, ids: s.tags.notes_with(ids["tag"]), "ix_note_tags_tag_note_id"),
    "tag counts": (lambda s, ids: s.tags.counts(), "ix_note_tags_tag_note_id"),
    "search": (lambda s, ids: Search(s.db).query("design review"), "VIRTUAL TABLE INDEX"),
    "search, prefix and phrase": (
        lambda s, ids: Search(s.db).query('desig* OR "budget plan"'),
        "VIRTUAL TABLE INDEX",
    ),
    "search with every filter": (
        lambda s, ids: Search(s.db).query(
            "design", tag=ids["tag"], folder_id=ids["folder"], pinned=False
        ),
        "VIRTUAL TABLE INDEX",
    ),
}


@pytest.mark.parametrize("name", sorted(HOT))
def test_hot_query_uses_an_index_and_no_full_scan(store: DeviceStore, name: str) -> None:
    call, index = HOT[name]
    ids = _ids(store)
    plans = plans_of(store, lambda: call(store, ids))
    lines = [line for plan in plans for line in plan]
    assert any(index in line for line in lines), lines
    for plan in plans:
        assert full_scans(plan) == [], plan


@pytest.mark.parametrize(
    "name", ["list recent, pinned first", "recent page after a cursor", "open tasks, due soonest"]
)
def test_paged_lists_never_sort_the_table(store: DeviceStore, name: str) -> None:
    call, _ = HOT[name]
    ids = _ids(store)
    for plan in plans_of(store, lambda: call(store, ids)):
        assert not any("TEMP B-TREE FOR ORDER BY" in line for line in plan), plan


def test_search_computes_snippets_after_the_cut(store: DeviceStore) -> None:
    # The ranked cut happens in a subquery; the outer loop re-enters FTS by rowid (=)
    # for the snippet of each kept row only.
    search = Search(store.db)
    search.query("warm up")  # the first query of a Search also checks the stored rank
    floor, plan = plans_of(store, lambda: search.query("design"))
    # First the candidates' floor: FTS5 walks the matches newest first, with no sort.
    assert any("notes_fts VIRTUAL TABLE" in line for line in floor), floor
    assert not any("TEMP B-TREE" in line for line in floor), floor
    fts_lines = [line for line in plan if "notes_fts VIRTUAL TABLE" in line]
    assert len(fts_lines) == 2, plan
    assert any(re.search(r"INDEX \d+:=M", line) for line in fts_lines), plan


def test_the_full_scan_detector_sees_a_full_scan(store: DeviceStore) -> None:
    plan = _plan(store, "SELECT * FROM notes WHERE body LIKE '%design%' ORDER BY updated_at")
    assert full_scans(plan) == ["SCAN notes"]
    plan = _plan(store, "SELECT rowid FROM notes_fts ORDER BY rowid")
    assert full_scans(plan) != []


def test_the_seed_is_big_enough_to_matter(store: DeviceStore) -> None:
    counts = {t: store.db.scalar(f"SELECT count(*) FROM {t}") for t in sorted(TABLES)}
    assert counts["notes"] == NOTES and counts["tasks"] == 2 * NOTES
    assert store.db.scalar("SELECT count(*) FROM sqlite_stat1") > 0


def test_statistics_of_a_small_table_are_dropped_once_it_has_grown(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """ANALYZE (the end of a migration run) on a device of 20 notes, then 2,000 more:
    with those statistics SQLite listed the trash by reading every note's key and
    sorting. The housekeeping every writing command and sync runs drops them, and the
    trash list uses its index again; statistics of a big table stay."""
    path = tmp_path_factory.mktemp("stale") / "device.sqlite"
    with DeviceStore.open(path) as s:
        for i in range(20):
            s.notes.create(f"early {i}")
        s.db.conn.execute("ANALYZE")
        with s.db.transaction():
            for i in range(2000):
                note = s.db.insert("note", {"title": f"later {i}", "body": "words"})
                s.db.insert("task", {"note_id": note["id"], "content": "t"})
        s.db.conn.execute("ANALYZE tasks")  # 2,000 rows: statistics to keep

        def by_index() -> bool:
            plans = plans_of(s, lambda: s.notes.list_trash(50))
            return any("ix_notes_updated_at" in line for plan in plans for line in plan)

        assert not by_index()  # the premise
        maintain(s.db)
        assert by_index()
        kept = {t for (t,) in s.db.conn.execute("SELECT DISTINCT tbl FROM sqlite_stat1")}
        assert "tasks" in kept and "notes" not in kept, kept
        maintain(s.db)  # nothing more to drop
        assert {t for (t,) in s.db.conn.execute("SELECT DISTINCT tbl FROM sqlite_stat1")} == kept
