"""Legacy (version 11) Duru Notes device databases with every trap real files hold.

``make_legacy_db(path, seed=..., notes=..., traps=True)`` writes a file and
returns a :class:`LegacyFixture` that predicts, row by row, what an import
must do with it (imported, merged or quarantined, and why), so tests compare
the import's accounting with an independent oracle. ``write_legacy`` is the
lower level: the version 11 schema (columns shuffled, some added later by
ALTER TABLE) and rows inserted by column name; property tests feed it rows
of their own.

The traps (``traps=True``): dates as unix seconds, milliseconds, numeric
text and ISO-8601 (with and without zone); duplicate (note_id, tag) rows,
also differing only in whitespace; tags, tasks, links, reminders and filings
whose note is gone; folders nested 12 levels, a folder whose parent is gone,
folder and task cycles; tasks whose parent task is gone or quarantined;
columns in another order; unknown extra columns; NULLs in odd places; bad
enum codes; unparseable dates and numbers; a note filed in two folders;
unicode everywhere. The fixture's predictions are made here, from how the
rows were built, never by calling the importer.
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from duru.local.legacy import LEGACY_NAMESPACE

# The version 11 tables as the app declared them (all columns TEXT unless said).
V11: dict[str, tuple[tuple[str, str], ...]] = {
    "local_notes": (
        ("id", "TEXT PRIMARY KEY"),
        ("title", "TEXT"),
        ("body", "TEXT"),
        ("updated_at", "INTEGER"),
        ("deleted", "INTEGER"),
        ("encrypted_metadata", "TEXT"),
        ("is_pinned", "INTEGER"),
        ("note_type", "INTEGER"),
    ),
    "note_tags": (("note_id", "TEXT"), ("tag", "TEXT")),
    "note_links": (("source_id", "TEXT"), ("target_title", "TEXT"), ("target_id", "TEXT")),
    "note_reminders": (
        ("id", "INTEGER PRIMARY KEY AUTOINCREMENT"),
        ("note_id", "TEXT"),
        ("title", "TEXT"),
        ("body", "TEXT"),
        ("type", "INTEGER"),
        ("remind_at", "TEXT"),
        ("is_active", "INTEGER"),
        ("latitude", "REAL"),
        ("longitude", "REAL"),
        ("radius", "REAL"),
        ("location_name", "TEXT"),
        ("recurrence_pattern", "INTEGER"),
        ("recurrence_end_date", "TEXT"),
        ("recurrence_interval", "INTEGER"),
        ("snoozed_until", "TEXT"),
        ("snooze_count", "INTEGER"),
        ("notification_title", "TEXT"),
        ("notification_body", "TEXT"),
        ("notification_image", "TEXT"),
        ("time_zone", "TEXT"),
        ("created_at", "TEXT"),
        ("last_triggered", "TEXT"),
        ("trigger_count", "INTEGER"),
    ),
    "note_tasks": (
        ("id", "TEXT PRIMARY KEY"),
        ("note_id", "TEXT"),
        ("content", "TEXT"),
        ("status", "INTEGER"),
        ("priority", "INTEGER"),
        ("due_date", "TEXT"),
        ("completed_at", "TEXT"),
        ("completed_by", "TEXT"),
        ("position", "INTEGER"),
        ("content_hash", "TEXT"),
        ("reminder_id", "INTEGER"),
        ("labels", "TEXT"),
        ("notes", "TEXT"),
        ("estimated_minutes", "INTEGER"),
        ("actual_minutes", "INTEGER"),
        ("parent_task_id", "TEXT"),
        ("created_at", "TEXT"),
        ("updated_at", "TEXT"),
        ("deleted", "INTEGER"),
    ),
    "note_folders": (("note_id", "TEXT"), ("folder_id", "TEXT"), ("added_at", "TEXT")),
    "local_folders": (
        ("id", "TEXT PRIMARY KEY"),
        ("name", "TEXT"),
        ("parent_id", "TEXT"),
        ("path", "TEXT"),
        ("sort_order", "INTEGER"),
        ("color", "TEXT"),
        ("icon", "TEXT"),
        ("description", "TEXT"),
        ("created_at", "TEXT"),
        ("updated_at", "TEXT"),
        ("deleted", "INTEGER"),
    ),
    "saved_searches": (
        ("id", "TEXT PRIMARY KEY"),
        ("name", "TEXT"),
        ("query", "TEXT"),
        ("search_type", "TEXT"),
        ("parameters", "TEXT"),
        ("sort_order", "INTEGER"),
        ("color", "TEXT"),
        ("icon", "TEXT"),
        ("is_pinned", "INTEGER"),
        ("created_at", "TEXT"),
        ("last_used_at", "TEXT"),
        ("usage_count", "INTEGER"),
    ),
    "local_templates": (
        ("id", "TEXT PRIMARY KEY"),
        ("title", "TEXT"),
        ("body", "TEXT"),
        ("tags", "TEXT"),
        ("is_system", "INTEGER"),
        ("category", "TEXT"),
        ("description", "TEXT"),
        ("icon", "TEXT"),
        ("sort_order", "INTEGER"),
        ("metadata", "TEXT"),
        ("created_at", "TEXT"),
        ("updated_at", "TEXT"),
    ),
    "pending_ops": (
        ("id", "INTEGER PRIMARY KEY"),
        ("entity_id", "TEXT"),
        ("kind", "TEXT"),
        ("payload", "TEXT"),
        ("created_at", "TEXT"),
    ),
}
FTS_COLUMNS = ("id", "title", "body", "folder_path")
TABLES = (*V11, "fts_notes")
# Tables whose rows carry an id of their own (the others are keyed by rowid).
OWN_ID = frozenset(
    {
        "local_notes",
        "note_reminders",
        "note_tasks",
        "local_folders",
        "saved_searches",
        "local_templates",
        "pending_ops",
        "fts_notes",
    }
)
IMPORTED, MERGED, QUARANTINED = "imported", "merged", "quarantined"

_UUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_WORDS = (
    "meeting",
    "çalışma",
    "日本語のメモ",
    "idée",
    "Ünïcødé",
    "שלום",
    "🎉 party",
    "grocery",
    "naïve café",
    "Ελληνικά",
    "plan",
    "😀",
)
_TAGS = ("work", "personal", "çalışma", "日本", "🎉", "urgent", "idea", "ev işleri")


def legacy_uuid(table: str, legacy_id: object) -> str:
    """The uuid an import must give legacy id ``legacy_id`` of ``table`` (the documented rule)."""
    text = str(legacy_id)
    if _UUID.fullmatch(text):
        return text.lower()
    return str(uuid.uuid5(LEGACY_NAMESPACE, f"{table}:{text}"))


def composite_uuid(table: str, parts: list[object]) -> str:
    """The uuid of a row without an id of its own, from its identifying values."""
    text = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    return str(uuid.uuid5(LEGACY_NAMESPACE, f"{table}:{text}"))


def tag_key(note: str, tag: str) -> str:
    return composite_uuid("note_tags", [legacy_uuid("local_notes", note), tag])


def link_key(source: str, title: str | None, target: str | None) -> str:
    mapped = None if target is None else legacy_uuid("local_notes", target)
    return composite_uuid("note_links", [legacy_uuid("local_notes", source), title, mapped])


@dataclass
class Counts:
    """The accounting of one table."""

    read: int = 0
    imported: int = 0
    merged: int = 0
    quarantined: int = 0


@dataclass
class PlannedRow:
    """One row written to the legacy file and what the import must do with it.

    ``code`` is the quarantine reason code (or what the merge is); ``key`` the
    target key when the row is imported with an id; ``expect`` model field ->
    value in device storage form that the imported row must hold.
    """

    table: str
    values: dict[str, object]
    outcome: str
    code: str = ""
    key: str | None = None
    expect: dict[str, object] = field(default_factory=dict)
    rowid: int = 0

    @property
    def label(self) -> str:
        """How the import names the row in quarantine: its legacy id, else its rowid."""
        found = self.values.get("id") if self.table in OWN_ID else None
        if found is None or (isinstance(found, str) and not found.strip()):
            return f"rowid {self.rowid}"
        return str(found)


@dataclass
class LegacyFixture:
    """A legacy file on disk and the import's expected outcome for each of its rows."""

    path: Path
    rows: dict[str, list[PlannedRow]]
    deep_paths: dict[str, str] = field(default_factory=dict)
    moved_to_top: Counter[str] = field(default_factory=Counter)
    cleared_refs: Counter[str] = field(default_factory=Counter)
    unknown_columns: dict[str, list[str]] = field(default_factory=dict)

    @property
    def expected(self) -> dict[str, Counts]:
        """Per table: read, imported, merged, quarantined, as the import must report them."""
        out = {t: Counts() for t in TABLES}
        for table, rows in self.rows.items():
            c = out[table]
            for r in rows:
                c.read += 1
                setattr(c, r.outcome, getattr(c, r.outcome) + 1)
        return out

    def planned(self, table: str, outcome: str) -> list[PlannedRow]:
        return [r for r in self.rows[table] if r.outcome == outcome]


# -- the schema and the writing ---------------------------------------------------------


def write_legacy(
    path: Path,
    rows: dict[str, list[dict[str, object]]],
    *,
    rng: random.Random,
    extra_columns: dict[str, list[str]] | None = None,
    wal: bool = False,
) -> None:
    """Write a version 11 file: every table, columns in a shuffled order, some added late.

    Each table is created with its columns shuffled; then one to three of its
    columns (never the primary key) are added by ALTER TABLE, as app upgrades
    did, and so are ``extra_columns`` (unknown to version 11). Rows are
    inserted by column name, in list order, so rowids follow the list.
    """
    extra_columns = extra_columns or {}
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        if wal:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN")
        for table, columns in V11.items():
            _create(conn, rng, table, columns, extra_columns.get(table, []))
        conn.execute(
            "CREATE VIRTUAL TABLE fts_notes USING fts5(id UNINDEXED, title, body, folder_path)"
        )
        for table in TABLES:
            for values in rows.get(table, []):
                _insert(conn, table, values)
        conn.execute("PRAGMA user_version = 11")
        conn.execute("COMMIT")
    finally:
        conn.close()


def _create(
    conn: sqlite3.Connection,
    rng: random.Random,
    table: str,
    columns: tuple[tuple[str, str], ...],
    extra: list[str],
) -> None:
    movable = [c for c in columns if "PRIMARY KEY" not in c[1]]
    late = rng.sample(movable, k=min(len(movable) - 1, rng.randint(1, 3))) if movable else []
    first = [c for c in columns if c not in late]
    rng.shuffle(first)
    body = ", ".join(f'"{n}" {decl}' for n, decl in first)
    conn.execute(f'CREATE TABLE "{table}" ({body})')
    for name, decl in late:
        conn.execute(f'ALTER TABLE "{table}" ADD COLUMN "{name}" {decl}')
    for name in extra:
        conn.execute(f'ALTER TABLE "{table}" ADD COLUMN "{name}" TEXT')


def _insert(conn: sqlite3.Connection, table: str, values: dict[str, object]) -> None:
    names = list(values)
    cols = ", ".join(f'"{n}"' for n in names)
    marks = ", ".join("?" for _ in names)
    conn.execute(f'INSERT INTO "{table}" ({cols}) VALUES ({marks})', [values[n] for n in names])


# -- dates in every form ----------------------------------------------------------------


def render_date(rng: random.Random, truth_ms: int, *, text: bool = True) -> tuple[object, int]:
    """A date in one of the forms version 11 files hold, and the epoch ms it must read as.

    ``text`` says the column has TEXT affinity (so numeric text stays text).
    """
    seconds = truth_ms // 1000
    moment = datetime.fromtimestamp(truth_ms / 1000, UTC)
    forms = ["s", "ms", "s_real", "iso_z", "iso_offset", "iso_naive", "iso_date"]
    if text:
        forms.append("s_text")
    match rng.choice(forms):
        case "s":
            return seconds, seconds * 1000
        case "s_text":
            return str(seconds), seconds * 1000
        case "ms":
            return truth_ms, truth_ms
        case "s_real":
            return truth_ms / 1000, truth_ms
        case "iso_z":
            return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"), truth_ms
        case "iso_offset":
            zone = timezone(timedelta(hours=rng.choice([-8, 3, 5.5, 14])))
            return moment.astimezone(zone).isoformat(timespec="milliseconds"), truth_ms
        case "iso_naive":
            return moment.strftime("%Y-%m-%d %H:%M:%S"), seconds * 1000
        case _:
            day = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
            return day.strftime("%Y-%m-%d"), int(day.timestamp()) * 1000


def _truth(rng: random.Random) -> int:
    return rng.randint(1_420_070_400_000, 1_767_225_600_000)  # 2015 .. 2026


# -- the plan ---------------------------------------------------------------------------


class _Plan:
    """Builds the rows of every table and the fate of each."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.rows: dict[str, list[PlannedRow]] = {t: [] for t in TABLES}
        self.imported: dict[str, set[str]] = {t: set() for t in TABLES}
        self.moved: Counter[str] = Counter()
        self.cleared: Counter[str] = Counter()
        self.deep_paths: dict[str, str] = {}

    def add(
        self,
        table: str,
        values: dict[str, object],
        outcome: str,
        code: str = "",
        key: str | None = None,
        expect: dict[str, object] | None = None,
    ) -> PlannedRow:
        row = PlannedRow(table, values, outcome, code, key, expect or {})
        self.rows[table].append(row)
        if outcome == IMPORTED and key is not None:
            self.imported[table].add(key)
        return row

    def text(self, words: int = 3) -> str:
        return " ".join(self.rng.choice(_WORDS) for _ in range(words))

    def legacy_id(self, prefix: str, i: int) -> str:
        form = self.rng.random()
        if form < 0.4:
            return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        if form < 0.55:
            return str(uuid.UUID(int=self.rng.getrandbits(128), version=4)).upper()
        return f"{prefix}-{i}-{self.rng.randint(0, 10**6)}"

    def finish(self, shuffled: tuple[str, ...]) -> dict[str, list[PlannedRow]]:
        for table in shuffled:
            self.rng.shuffle(self.rows[table])
        for table, rows in self.rows.items():
            for i, row in enumerate(rows, start=1):
                own = row.values.get("id") if table in ("note_reminders", "pending_ops") else None
                row.rowid = int(own) if isinstance(own, int) else i
        return self.rows


def make_legacy_db(
    path: Path, *, seed: int, notes: int = 40, traps: bool = True, wal: bool = False
) -> LegacyFixture:
    """Write a version 11 file at ``path`` and return what its import must report.

    ``notes`` clean notes (with their tags, links, filings, reminders and
    tasks) are made; ``traps`` adds the trap rows listed in the module
    docstring. The same seed always gives the same file.
    """
    plan = _Plan(random.Random(seed))
    notes_made = _notes(plan, notes, traps)
    folders = _folders(plan, max(3, notes // 5), traps)
    _filings(plan, notes_made, folders, traps)
    _tags(plan, notes_made, traps)
    _links(plan, notes_made, traps)
    reminders = _reminders(plan, notes_made, traps)
    _tasks(plan, notes_made, reminders, traps)
    _templates(plan, traps)
    _searches(plan, traps)
    _pending_ops(plan, traps)
    _search_entries(plan, traps)
    rows = plan.finish(shuffled=("local_folders", "note_tasks"))
    extra = {"local_notes": ["legacy_color"], "note_tags": ["color"]} if traps else {}
    write_legacy(
        path,
        {t: [r.values for r in rs] for t, rs in rows.items()},
        rng=plan.rng,
        extra_columns=extra,
        wal=wal,
    )
    return LegacyFixture(path, rows, plan.deep_paths, plan.moved, plan.cleared, extra)


# Ids that no row of the file has: references to them dangle.
GONE_NOTE = "note-that-was-deleted"
GONE_FOLDER = "3f1e8a53-0000-4000-8000-00000000dead"


@dataclass
class _Note:
    legacy_id: str
    key: str
    title: str


def _notes(plan: _Plan, n: int, traps: bool) -> list[_Note]:
    made = []
    for i in range(n):
        legacy_id = plan.legacy_id("note", i)
        title = plan.text()
        stored, ms = render_date(plan.rng, _truth(plan.rng), text=False)
        values: dict[str, object] = {
            "id": legacy_id,
            "title": title,
            "body": plan.text(12),
            "updated_at": stored,
            "deleted": int(plan.rng.random() < 0.1),
            "is_pinned": int(plan.rng.random() < 0.2),
            "note_type": plan.rng.choice([0, 1]),
            "encrypted_metadata": plan.rng.choice([None, '{"v":1,"k":"ab=="}']),
        }
        expect = {
            "title": title,
            "body": values["body"],
            "updated_at": ms,
            "created_at": ms,
            "deleted": values["deleted"],
            "is_pinned": values["is_pinned"],
            "note_type": values["note_type"],
            "metadata": values["encrypted_metadata"],
        }
        key = legacy_uuid("local_notes", legacy_id)
        if traps and i % 7 == 3:
            values["legacy_color"] = "#ff00ff"
        plan.add("local_notes", values, IMPORTED, key=key, expect=expect)
        made.append(_Note(legacy_id, key, title))
    if traps:
        made += _trap_notes(plan)
    return made


def _trap_notes(plan: _Plan) -> list[_Note]:
    add = plan.add
    nulls = "nulls-everywhere"
    add(
        "local_notes",
        {"id": nulls, "title": None, "body": None, "updated_at": None, "is_pinned": None},
        IMPORTED,
        key=legacy_uuid("local_notes", nulls),
        expect={"title": "", "body": "", "is_pinned": 0, "deleted": 0, "note_type": 0},
    )
    add("local_notes", {"id": "bad-type", "title": "t", "note_type": 7}, QUARANTINED, "unparseable")
    add(
        "local_notes",
        {"id": "bad-date", "title": "t", "updated_at": "the day before yesterday"},
        QUARANTINED,
        "unparseable",
    )
    add("local_notes", {"id": None, "title": "no id"}, QUARANTINED, "missing")
    twin = str(uuid.UUID(int=plan.rng.getrandbits(128), version=4))
    same = {"title": "twin ☯", "body": "b", "updated_at": 1_700_000_000}
    add("local_notes", {"id": twin.upper(), **same}, IMPORTED, key=twin)
    add("local_notes", {"id": twin, **same}, MERGED, "exact duplicate")
    other = str(uuid.UUID(int=plan.rng.getrandbits(128), version=4))
    add("local_notes", {"id": other.upper(), "title": "first"}, IMPORTED, key=other)
    add("local_notes", {"id": other, "title": "second"}, QUARANTINED, "duplicate")
    return [
        _Note(nulls, legacy_uuid("local_notes", nulls), ""),
        _Note(twin, twin, "twin ☯"),
    ]


@dataclass
class _Folder:
    legacy_id: str
    key: str


def _folders(plan: _Plan, n: int, traps: bool) -> list[_Folder]:
    made: list[_Folder] = []
    for i in range(n):
        parent = plan.rng.choice([None, *made[-3:]]) if made else None
        made.append(_folder(plan, f"folder-{i}", plan.text(1), parent))
    if traps:
        made += _deep_chain(plan, 12)
        made += _trap_folders(plan)
    return made


def _folder(
    plan: _Plan,
    legacy_id: str,
    name: str | None,
    parent: _Folder | str | None,
    outcome: str = IMPORTED,
    code: str = "",
    **more: object,
) -> _Folder:
    parent_id = parent.legacy_id if isinstance(parent, _Folder) else parent
    key = legacy_uuid("local_folders", legacy_id)
    stored, ms = render_date(plan.rng, _truth(plan.rng))
    values: dict[str, object] = {
        "id": legacy_id,
        "name": name,
        "parent_id": parent_id,
        "path": "/stale/derived/path",
        "sort_order": plan.rng.choice([0, 1, 2, "3", None]),
        "created_at": stored,
        **more,
    }
    sort = values["sort_order"]
    expect: dict[str, object] = {
        "name": name or "",
        "sort_order": int(sort) if sort is not None else 0,
        "created_at": ms,
    }
    if isinstance(parent, _Folder) or parent is None:
        expect["parent_id"] = None if parent is None else parent.key
    plan.add("local_folders", values, outcome, code, key=key, expect=expect)
    return _Folder(legacy_id, key)


def _deep_chain(plan: _Plan, depth: int) -> list[_Folder]:
    chain: list[_Folder] = []
    names: list[str] = []
    for level in range(depth):
        name = f"level {level} · {plan.rng.choice(_WORDS)}"
        chain.append(_folder(plan, f"deep-{level}", name, chain[-1] if chain else None))
        names.append(name)
        plan.deep_paths[chain[-1].key] = "/".join(names)
    return chain


def _trap_folders(plan: _Plan) -> list[_Folder]:
    made = [_folder(plan, "orphaned-folder", "parent gone", GONE_FOLDER)]
    plan.moved["local_folders"] += 1
    loop = [f"loop-{i}" for i in range(3)]
    for i, legacy_id in enumerate(loop):
        made.append(_folder(plan, legacy_id, f"loop {i}", loop[(i + 1) % 3]))
    plan.moved["local_folders"] += 1
    made.append(_folder(plan, "inside-itself", "self", "inside-itself"))
    plan.moved["local_folders"] += 1
    _folder(plan, "bad-folder", "bad", None, QUARANTINED, "unparseable", updated_at="nope")
    made.append(_folder(plan, "child-of-bad", "child", "bad-folder"))
    plan.moved["local_folders"] += 1
    made.append(_folder(plan, "nameless", None, None))
    return made


def _filings(plan: _Plan, notes: list[_Note], folders: list[_Folder], traps: bool) -> None:
    unfiled = []
    for note in notes:
        if plan.rng.random() < 0.6:
            folder = plan.rng.choice(folders)
            added, _ = render_date(plan.rng, _truth(plan.rng))
            values = {"note_id": note.legacy_id, "folder_id": folder.legacy_id, "added_at": added}
            _filing(plan, values, IMPORTED, folder=folder, note=note)
        else:
            unfiled.append(note)
    if not traps or len(unfiled) < 3:
        return
    a, b, c = unfiled[:3]
    f1, f2 = folders[0], folders[1]
    older = {"note_id": a.legacy_id, "folder_id": f1.legacy_id, "added_at": 1_600_000_000}
    newer = {"note_id": a.legacy_id, "folder_id": f2.legacy_id, "added_at": "2024-05-01T10:00Z"}
    _filing(plan, older, QUARANTINED, "superseded")
    _filing(plan, newer, IMPORTED, folder=f2, note=a)
    _filing(plan, dict(newer), MERGED, "exact duplicate")
    _filing(plan, {"note_id": b.legacy_id, "folder_id": f1.legacy_id}, QUARANTINED, "superseded")
    dated = {"note_id": b.legacy_id, "folder_id": f2.legacy_id, "added_at": 1}
    _filing(plan, dated, IMPORTED, folder=f2, note=b)
    _filing(plan, {"note_id": c.legacy_id, "folder_id": GONE_FOLDER}, QUARANTINED, "orphan")
    _filing(plan, {"note_id": c.legacy_id, "folder_id": "bad-folder"}, QUARANTINED, "orphan")
    _filing(plan, {"note_id": GONE_NOTE, "folder_id": f1.legacy_id}, QUARANTINED, "orphan")


def _filing(
    plan: _Plan,
    values: dict[str, object],
    outcome: str,
    code: str = "",
    folder: _Folder | None = None,
    note: _Note | None = None,
) -> None:
    key = note.key if note is not None else None
    expect = {"folder_id": folder.key} if folder is not None else {}
    plan.add("note_folders", values, outcome, code, key=key, expect=expect)


def _tags(plan: _Plan, notes: list[_Note], traps: bool) -> None:
    first: tuple[_Note, str] | None = None
    for note in notes:
        for tag in plan.rng.sample(_TAGS, plan.rng.randint(0, 3)):
            _tag(plan, {"note_id": note.legacy_id, "tag": tag}, IMPORTED)
            first = first or (note, tag)
    if not traps or first is None:
        return
    note, tag = first
    mine = note.legacy_id
    _tag(plan, {"note_id": mine, "tag": tag}, MERGED, "exact duplicate")
    _tag(plan, {"note_id": mine, "tag": f"  {tag}\t"}, MERGED, "exact duplicate")
    _tag(plan, {"note_id": mine, "tag": tag, "color": "red"}, QUARANTINED, "duplicate")
    _tag(plan, {"note_id": GONE_NOTE, "tag": "lost"}, QUARANTINED, "orphan")
    _tag(plan, {"note_id": "bad-type", "tag": "lost"}, QUARANTINED, "orphan")
    _tag(plan, {"note_id": None, "tag": "nobody's"}, QUARANTINED, "orphan")
    _tag(plan, {"note_id": mine, "tag": "   "}, QUARANTINED, "unparseable")
    _tag(plan, {"note_id": mine, "tag": None}, QUARANTINED, "unparseable")
    _tag(plan, {"note_id": mine, "tag": " ✨ new "}, IMPORTED)


def _tag(plan: _Plan, values: dict[str, object], outcome: str, code: str = "") -> None:
    key = expect = None
    if outcome == IMPORTED:
        tag = str(values["tag"]).strip()
        key, expect = tag_key(str(values["note_id"]), tag), {"tag": tag}
    plan.add("note_tags", values, outcome, code, key=key, expect=expect)


def _links(plan: _Plan, notes: list[_Note], traps: bool) -> None:
    for note in notes:
        if plan.rng.random() < 0.3:
            target = plan.rng.choice(notes)
            _link(plan, note.legacy_id, target.title, target.legacy_id, IMPORTED, cleared=False)
    if not traps or len(notes) < 2:
        return
    a, b = notes[0], notes[1]
    _link(plan, a.legacy_id, "Deleted note", GONE_NOTE, IMPORTED, cleared=True)
    _link(plan, a.legacy_id, "Quarantined", "bad-type", IMPORTED, cleared=True)
    _link(plan, b.legacy_id, "Not yet written", None, IMPORTED, cleared=False)
    _link(plan, b.legacy_id, "Not yet written", None, MERGED, "exact duplicate")
    _link(plan, GONE_NOTE, a.title, a.legacy_id, QUARANTINED, "orphan")


def _link(
    plan: _Plan,
    source: str,
    title: str,
    target: str | None,
    outcome: str,
    code: str = "",
    *,
    cleared: bool = False,
) -> None:
    values = {"source_id": source, "target_title": title, "target_id": target}
    key = expect = None
    if outcome == IMPORTED:
        key = link_key(source, title, target)
        mapped = None if target is None or cleared else legacy_uuid("local_notes", target)
        expect = {"target_title": title, "target_id": mapped}
        plan.cleared["note_links"] += int(cleared)
    plan.add("note_links", values, outcome, code, key=key, expect=expect)


@dataclass
class _Reminder:
    legacy_id: int
    key: str
    note: _Note


def _reminders(plan: _Plan, notes: list[_Note], traps: bool) -> list[_Reminder]:
    made: list[_Reminder] = []
    next_id = iter(range(1, 10**6))
    for note in notes:
        if plan.rng.random() < 0.25:
            rid = next(next_id) * 3  # gaps, as deleted reminders leave
            remind, ms = render_date(plan.rng, _truth(plan.rng))
            kind = plan.rng.choice([0, 1, 2])
            values: dict[str, object] = {
                "id": rid,
                "note_id": note.legacy_id,
                "title": plan.text(2),
                "type": kind,
                "remind_at": remind,
                "is_active": plan.rng.choice([0, 1]),
                "latitude": 41.0082 if kind == 1 else None,
                "longitude": 28.9784 if kind == 1 else None,
                "recurrence_pattern": plan.rng.choice([0, 1, 2, 3, 4]),
                "time_zone": "Europe/Istanbul",
            }
            key = legacy_uuid("note_reminders", rid)
            expect = {"note_id": note.key, "type": kind, "remind_at": ms}
            plan.add("note_reminders", values, IMPORTED, key=key, expect=expect)
            made.append(_Reminder(rid, key, note))
    if traps and notes:
        note = notes[0]
        add = plan.add
        add("note_reminders", {"id": 900001, "note_id": GONE_NOTE}, QUARANTINED, "orphan")
        add(
            "note_reminders",
            {"id": 900002, "note_id": note.legacy_id, "type": 9},
            QUARANTINED,
            "unparseable",
        )
        add(
            "note_reminders",
            {"id": 900003, "note_id": note.legacy_id, "remind_at": "next tuesday"},
            QUARANTINED,
            "unparseable",
        )
        nulls = {"id": 900004, "note_id": note.legacy_id, "type": None, "is_active": None}
        key = legacy_uuid("note_reminders", 900004)
        add("note_reminders", nulls, IMPORTED, key=key, expect={"type": 0, "is_active": 1})
    return made


def _tasks(plan: _Plan, notes: list[_Note], reminders: list[_Reminder], traps: bool) -> None:
    by_note = {r.note.key: r for r in reminders}
    i = 0
    for note in notes:
        if plan.rng.random() >= 0.4:
            continue
        first = None
        for position in range(plan.rng.randint(1, 3)):
            i += 1
            parent = first if (first is not None and plan.rng.random() < 0.6) else None
            reminder = by_note.get(note.key) if plan.rng.random() < 0.5 else None
            made = _task(plan, f"task-{i}", note, position, parent, reminder)
            first = first or str(made.values["id"])
    if traps and notes:
        _trap_tasks(plan, notes[0])


def _task(
    plan: _Plan,
    legacy_id: str,
    note: _Note | str,
    position: int,
    parent: str | None,
    reminder: _Reminder | int | None = None,
    outcome: str = IMPORTED,
    code: str = "",
    **more: object,
) -> PlannedRow:
    due, ms = render_date(plan.rng, _truth(plan.rng))
    rid = reminder.legacy_id if isinstance(reminder, _Reminder) else reminder
    values: dict[str, object] = {
        "id": legacy_id,
        "note_id": note.legacy_id if isinstance(note, _Note) else note,
        "content": plan.text(2),
        "status": plan.rng.choice([0, 1, 2, 3]),
        "priority": plan.rng.choice([0, 1, 2, 3, None]),
        "due_date": due,
        "position": position,
        "content_hash": f"{plan.rng.getrandbits(64):016x}",
        "reminder_id": str(rid) if isinstance(rid, int) and position % 2 else rid,
        "labels": plan.rng.choice([None, '["home","💡"]']),
        "parent_task_id": parent,
        **more,
    }
    expect: dict[str, object] = {
        "due_date": ms,
        "status": values["status"],
        "priority": values["priority"] if values["priority"] is not None else 1,
        "parent_task_id": legacy_uuid("note_tasks", parent) if parent else None,
        "reminder_id": reminder.key if isinstance(reminder, _Reminder) else None,
    }
    if isinstance(note, _Note):
        expect["note_id"] = note.key
    for name, value in more.items():
        expect.pop(name, None)
        if name == "content":
            expect["content"] = value if value is not None else ""
    key = legacy_uuid("note_tasks", legacy_id)
    return plan.add("note_tasks", values, outcome, code, key=key, expect=expect)


def _trap_tasks(plan: _Plan, note: _Note) -> None:
    _task(plan, "parent-gone", note, 0, "task-that-was-deleted").expect["parent_task_id"] = None
    _task(plan, "orphan-task", GONE_NOTE, 0, None, outcome=QUARANTINED, code="orphan")
    _task(plan, "bad-status", note, 1, None, None, QUARANTINED, "unparseable", status=7)
    _task(plan, "child-of-bad", note, 2, "bad-status").expect["parent_task_id"] = None
    _task(plan, "bad-due", note, 3, None, None, QUARANTINED, "unparseable", due_date="soon-ish")
    _task(plan, "reminder-gone", note, 4, None, 424242)
    plan.cleared["note_tasks"] += 1
    _task(plan, "loose-labels", note, 5, None, labels="home, garden").expect["labels"] = (
        '"home, garden"'
    )
    _task(plan, "no-content", note, 6, None, content=None)
    for legacy_id, parent in (("ping", "pong"), ("pong", "ping")):
        _task(plan, legacy_id, note, 7, parent).expect.pop("parent_task_id")
    plan.moved["note_tasks"] += 3


def _templates(plan: _Plan, traps: bool) -> None:
    for i in range(3):
        values = {
            "id": f"template-{i}",
            "title": plan.text(2),
            "body": plan.text(8),
            "tags": '["a","b"]',
            "is_system": i % 2,
            "sort_order": i,
        }
        key = legacy_uuid("local_templates", f"template-{i}")
        plan.add("local_templates", values, IMPORTED, key=key, expect={"tags": '["a","b"]'})
    if traps:
        loose = {"id": "loose-tags", "title": "t", "tags": "a, b", "is_system": "true"}
        key = legacy_uuid("local_templates", "loose-tags")
        expect = {"tags": '"a, b"', "is_system": 1}
        plan.add("local_templates", loose, IMPORTED, key=key, expect=expect)
        plan.add("local_templates", {"id": None, "title": "no id"}, QUARANTINED, "missing")


def _searches(plan: _Plan, traps: bool) -> None:
    for i in range(3):
        used, ms = render_date(plan.rng, _truth(plan.rng))
        values = {
            "id": f"search-{i}",
            "name": plan.text(1),
            "query": "tag:work",
            "parameters": '{"sort":"recent"}',
            "last_used_at": used,
            "usage_count": i * 4,
        }
        key = legacy_uuid("saved_searches", f"search-{i}")
        plan.add("saved_searches", values, IMPORTED, key=key, expect={"last_used_at": ms})
    if traps:
        bad = {"id": "bad-count", "name": "n", "usage_count": "many"}
        plan.add("saved_searches", bad, QUARANTINED, "unparseable")


def _pending_ops(plan: _Plan, traps: bool) -> None:
    notes = [r for r in plan.rows["local_notes"] if r.outcome == IMPORTED]
    tasks = [r for r in plan.rows["note_tasks"] if r.outcome == IMPORTED]
    op_id = iter(range(1, 10**6))
    for row in [*notes[:3], *tasks[:1]]:
        values = {"id": next(op_id), "entity_id": row.values["id"], "kind": "upsert"}
        plan.add("pending_ops", values, MERGED, "pending op superseded")
    if traps:
        for target in (GONE_NOTE, "bad-type"):
            values = {"id": next(op_id), "entity_id": target, "kind": "delete", "payload": "{}"}
            plan.add("pending_ops", values, QUARANTINED, "stale")


def _search_entries(plan: _Plan, traps: bool) -> None:
    for row in list(plan.rows["local_notes"]):
        legacy_id = row.values.get("id")
        if legacy_id is None:
            continue
        key = legacy_uuid("local_notes", legacy_id)
        values = {"id": legacy_id, "title": row.values.get("title"), "body": row.values.get("body")}
        if key in plan.imported["local_notes"]:
            plan.add("fts_notes", values, MERGED, "search entry rebuilt")
        else:
            plan.add("fts_notes", values, QUARANTINED, "stale")
    if traps:
        stale = {"id": GONE_NOTE, "title": "only the index remembers", "body": "👻"}
        plan.add("fts_notes", stale, QUARANTINED, "stale")
