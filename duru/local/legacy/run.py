"""The state of one import and its three ways to account for a row.

Every source row ends in exactly one call of :meth:`ImportRun.insert` (that
succeeds), :meth:`ImportRun.merge` or :meth:`ImportRun.quarantine`; the
counts in the report come only from those.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from duru.errors import ConstraintViolation, InvalidValue
from duru.local.db import Database
from duru.local.legacy.reader import LegacyReader, SourceRow
from duru.local.legacy.report import QUARANTINE_SOURCE, ImportReport, Reason, TableReport
from duru.local.legacy.rows import Prepared, RowReader
from duru.local.legacy.spec import LegacyTable, Ref
from duru.local.legacy.writer import BulkWriter

Progress = Callable[[str, int, int], None]
"""Called as ``progress(table, rows_done, rows_in_table)`` while a table is read."""

EXACT = "exact duplicate"
_PROGRESS_EVERY = 5000


class ImportRun:
    """One import under way: source, target, accounting and what is imported so far."""

    def __init__(
        self,
        reader: LegacyReader,
        db: Database,
        report: ImportReport,
        now: int,
        progress: Progress | None = None,
    ) -> None:
        self.reader = reader
        self.db = db
        self.report = report
        self.now = now
        self.progress = progress
        self.imported: defaultdict[str, set[str]] = defaultdict(set)
        self.quarantined_keys: defaultdict[str, set[str]] = defaultdict(set)
        self.claimed: defaultdict[str, dict[str, int]] = defaultdict(dict)
        self.writer = BulkWriter(db, now)
        self._readers: dict[str, RowReader] = {}
        self._total = 0

    # -- reading -------------------------------------------------------------

    def start(self, spec: LegacyTable) -> TableReport:
        self._readers[spec.name] = RowReader(spec, self.reader.columns(spec.name))
        self._total = self.reader.count(spec.name)
        self._tick(spec, 0)
        return self.report.table(spec.name)

    def read(self, spec: LegacyTable, row: SourceRow) -> Prepared | None:
        """Count ``row`` as read and prepare it; None when it went to quarantine."""
        table = self.report.table(spec.name)
        table.read += 1
        if table.read % _PROGRESS_EVERY == 0:
            self._tick(spec, table.read)
        found = self._readers[spec.name].prepare(row, self.now)
        if isinstance(found, Reason):
            self.quarantine(spec, row, found)
            return None
        return found

    def finish(self, spec: LegacyTable) -> None:
        self.writer.flush()
        self._tick(spec, self.report.table(spec.name).read)

    # -- the three outcomes -------------------------------------------------

    def insert(self, spec: LegacyTable, p: Prepared) -> bool:
        """Write ``p`` and its outbox op; False (and ``p`` quarantined) if the model refused it."""
        assert spec.entity is not None and p.key is not None
        try:
            self.writer.insert(spec.entity, p.values)
        except (InvalidValue, ConstraintViolation) as exc:
            self.claimed[spec.name].pop(p.key, None)
            self.quarantine(spec, p.source, Reason("refused", exc.message))
            return False
        self.imported[spec.name].add(p.key)
        table = self.report.table(spec.name)
        table.imported += 1
        if p.notices:
            table.notices.update(p.notices)
        return True

    def merge(self, spec: LegacyTable, row: SourceRow, why: str) -> None:
        table = self.report.table(spec.name)
        table.merged += 1
        table.merges[why] += 1

    def quarantine(self, spec: LegacyTable, row: SourceRow, reason: Reason) -> None:
        """Keep ``row`` whole in the quarantine table with ``reason``."""
        rows = self._readers[spec.name]
        self.db.quarantine(
            QUARANTINE_SOURCE, spec.name, rows.label(row), str(reason), _storable(row.values)
        )
        key = rows.own_key(row)
        if key is not None:
            self.quarantined_keys[spec.name].add(key)
        table = self.report.table(spec.name)
        table.quarantined += 1
        table.quarantines[reason.code] += 1

    # -- references and duplicates ------------------------------------------

    def orphan_reason(self, spec: LegacyTable, p: Prepared) -> Reason | None:
        """Check every reference but the tree parent: a Reason when a needed one is missing.

        A dangling reference that is not needed is cleared on the way in.
        """
        for ref in spec.refs:
            if ref.parent:
                continue
            mapped = p.refs.get(ref.column)
            if mapped is not None and mapped in self.imported[ref.table]:
                continue
            if ref.needed:
                return Reason("orphan", self._describe(p, ref))
            if mapped is not None:
                target = spec.field_for(ref.column)
                assert target is not None
                p.values[target.name] = None
                p.notices.append(f"{ref.column} points to a row not imported: cleared")
        return None

    def gone(self, table: str, key: str) -> bool:
        """True when no row of ``table`` with ``key`` was in the file at all."""
        return key not in self.imported[table] and key not in self.quarantined_keys[table]

    def duplicate(
        self, spec: LegacyTable, p: Prepared, first: Prepared | None = None
    ) -> str | Reason | None:
        """Compare ``p`` with the row that already holds its key.

        None: the key is free. EXACT: the same in every column after reading
        (so it can be merged). A Reason: same key, other values. ``first`` is
        the holding row when it is still in memory; else it is read again.
        """
        assert p.key is not None
        rowid = self.claimed[spec.name].get(p.key)
        if rowid is None:
            return None
        if first is None:
            again = self._readers[spec.name].prepare(self.reader.row(spec.name, rowid), self.now)
            assert isinstance(again, Prepared), "a row that was imported reads again"
            first = again
        if first.normal == p.normal:
            return EXACT
        differ = sorted(
            c for c in {*first.normal, *p.normal} if first.normal.get(c) != p.normal.get(c)
        )
        return Reason(
            "duplicate",
            f"same key as {self._readers[spec.name].label(first.source)} (rowid {rowid}) but other"
            f" {', '.join(differ)}",
        )

    def claim(self, spec: LegacyTable, p: Prepared) -> None:
        assert p.key is not None
        self.claimed[spec.name][p.key] = p.source.rowid

    def _describe(self, p: Prepared, ref: Ref) -> str:
        raw = next((v for c, v in p.source.values.items() if c.lower() == ref.column), None)
        mapped = p.refs.get(ref.column)
        if mapped is None:
            return f"{ref.column} is empty"
        where = "is gone" if self.gone(ref.table, mapped) else "is quarantined"
        return f"{ref.column} = {raw!r}: that row of {ref.table} {where}"

    def _tick(self, spec: LegacyTable, done: int) -> None:
        if self.progress is not None:
            self.progress(spec.name, done, self._total)


def _storable(values: dict[str, object]) -> dict[str, Any]:
    # The quarantine keeps JSON, which has no infinity; say what the REAL was.
    return {
        c: {"$real": repr(v)} if isinstance(v, float) and not math.isfinite(v) else v
        for c, v in values.items()
    }
