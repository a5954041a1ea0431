"""Loading each legacy table: the path every row of it takes to one outcome.

- entity tables: read, check references (an orphan goes to quarantine), merge
  an exact duplicate, quarantine a different row with the same key, write
  the rest; trees (folders, tasks) parents first, note_folders one per note;
- ``pending_ops``: the app's unsynced changes. The import writes an outbox op
  for every imported row, so an op for an imported row is merged (superseded
  by that op); an op for a row that is not imported is quarantined as stale,
  since duru cannot replay the app's own op format;
- ``fts_notes``: the old search index, derived from the notes. An entry of an
  imported note is merged (the import rebuilds the index from the notes); an
  entry of a note that is not imported is quarantined as stale, so text that
  only the index still held is kept.
"""

from __future__ import annotations

from collections.abc import Iterator

from duru.errors import InvalidValue
from duru.local.legacy.filing import FilingLoader
from duru.local.legacy.report import Reason
from duru.local.legacy.rows import Prepared
from duru.local.legacy.run import EXACT, ImportRun
from duru.local.legacy.spec import LEGACY_TABLES, LegacyTable
from duru.local.legacy.trees import TreeLoader
from duru.local.legacy.values import legacy_key, map_id
from duru.model import NOTE_FOLDER

SUPERSEDED_OP = "pending op superseded by the import's outbox op"
REBUILT = "search entry rebuilt from local_notes"


def load_table(run: ImportRun, spec: LegacyTable) -> None:
    """Account for every row of ``spec``'s table (absent optional tables count zero)."""
    table = run.report.table(spec.name)
    if not run.reader.has_table(spec.name):
        run.report.warnings.append(f"table {spec.name} is absent: nothing to account for")
        return
    run.start(spec)
    for column in run.reader.columns(spec.name):
        if not spec.knows(column.lower()):
            n = run.reader.count(spec.name, column)
            table.warnings.append(
                f"column {column!r} has no field in the model: its {n} non-NULL value(s)"
                " are left out (quarantined rows keep theirs)"
            )
    if spec.name == "pending_ops":
        _pending_ops(run, spec)
    elif spec.name == "fts_notes":
        _search_entries(run, spec)
    elif spec.parent is not None:
        _tree(run, spec)
    elif spec.entity is NOTE_FOLDER:
        _filings(run, spec)
    else:
        _plain(run, spec)
    run.finish(spec)


def _rows(run: ImportRun, spec: LegacyTable) -> Iterator[Prepared]:
    # Orphans and unreadable rows are accounted for here; the rest are handed out.
    for row in run.reader.rows(spec.name):
        p = run.read(spec, row)
        if p is None:
            continue
        reason = run.orphan_reason(spec, p)
        if reason is not None:
            run.quarantine(spec, row, reason)
            continue
        yield p


def _plain(run: ImportRun, spec: LegacyTable) -> None:
    for p in _rows(run, spec):
        found = run.duplicate(spec, p)
        if found == EXACT:
            run.merge(spec, p.source, EXACT)
        elif isinstance(found, Reason):
            run.quarantine(spec, p.source, found)
        else:
            run.claim(spec, p)
            run.insert(spec, p)


def _tree(run: ImportRun, spec: LegacyTable) -> None:
    loader = TreeLoader(run, spec)
    for p in _rows(run, spec):
        loader.add(p)
    loader.finish()


def _filings(run: ImportRun, spec: LegacyTable) -> None:
    loader = FilingLoader(run, spec)
    for p in _rows(run, spec):
        loader.add(p)
    loader.finish()


def _pending_ops(run: ImportRun, spec: LegacyTable) -> None:
    for p in _rows(run, spec):
        entity_id = _value(p, "entity_id")
        if _imported_anywhere(run, entity_id):
            run.merge(spec, p.source, SUPERSEDED_OP)
        else:
            detail = f"op for {entity_id!r}, which is not among the imported rows"
            run.quarantine(spec, p.source, Reason("stale", detail))


def _search_entries(run: ImportRun, spec: LegacyTable) -> None:
    for p in _rows(run, spec):
        note_id = _value(p, "id")
        key = _key(note_id)
        if key is not None and map_id("local_notes", key) in run.imported["local_notes"]:
            run.merge(spec, p.source, REBUILT)
        else:
            detail = f"search entry of note {note_id!r}, which is not imported"
            run.quarantine(spec, p.source, Reason("stale", detail))


def _imported_anywhere(run: ImportRun, entity_id: object) -> bool:
    key = _key(entity_id)
    if key is None:
        return False
    return any(
        map_id(t.name, key) in run.imported[t.name]
        for t in LEGACY_TABLES
        if t.entity is not None and t.own_id
    )


def _key(value: object) -> str | None:
    try:
        return legacy_key(value)
    except InvalidValue:
        return None


def _value(p: Prepared, name: str) -> object:
    return next((v for c, v in p.source.values.items() if c.lower() == name), None)
