"""What a legacy import did with every row: the accounting and its check.

Each source row ends in exactly one of three places:

- imported: written to its model table (with its outbox op);
- merged: nothing of it is lost by not writing it again: an exact duplicate
  of an imported row, a pending op the import's own outbox op supersedes, or
  a row of the old search index, which the import rebuilds from the notes;
- quarantined: kept whole in the ``quarantine`` table (source
  ``legacy-import``) with its reason.

``read = imported + merged + quarantined`` must hold for every table;
:meth:`ImportReport.check` says so or raises LegacyImportError.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from duru.errors import LegacyImportError

QUARANTINE_SOURCE = "legacy-import"


@dataclass(frozen=True)
class Reason:
    """Why a row went to quarantine: a short ``code`` to count by, and the detail.

    Codes: ``orphan`` (the row it belongs to is not imported), ``missing`` (a
    key is NULL or empty), ``unparseable`` (a value that does not read as its
    field's type, an enum code outside the model's mapping), ``duplicate``
    (same key as an imported row, other values), ``superseded`` (a note's
    second folder), ``stale`` (a pending op or search entry whose row is not
    imported), ``refused`` (the model refused the row on insert).
    """

    code: str
    detail: str

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


@dataclass
class TableReport:
    """The accounting of one legacy table."""

    table: str
    read: int = 0
    imported: int = 0
    merged: int = 0
    quarantined: int = 0
    merges: Counter[str] = field(default_factory=Counter)
    quarantines: Counter[str] = field(default_factory=Counter)
    notices: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return self.read == self.imported + self.merged + self.quarantined

    def to_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "imported": self.imported,
            "merged": self.merged,
            "quarantined": self.quarantined,
            "merges": dict(sorted(self.merges.items())),
            "quarantines": dict(sorted(self.quarantines.items())),
            "notices": dict(sorted(self.notices.items())),
            "warnings": list(self.warnings),
        }


@dataclass
class ImportReport:
    """The outcome of :func:`duru.local.legacy.import_legacy`, table by table.

    ``notices`` count rows that came through changed (a folder moved to the
    root, a link whose target is gone); ``warnings`` name what the file held
    that has no place in the model (unknown columns and tables).
    """

    source: Path
    target: Path
    tables: dict[str, TableReport] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def table(self, name: str) -> TableReport:
        """The report of legacy table ``name``, made on first use."""
        if name not in self.tables:
            self.tables[name] = TableReport(name)
        return self.tables[name]

    def check(self) -> None:
        """Raise LegacyImportError unless every table's rows are all accounted for."""
        off = [
            f"{t.table}: read {t.read} != imported {t.imported} + merged {t.merged}"
            f" + quarantined {t.quarantined}"
            for t in self.tables.values()
            if not t.balanced
        ]
        if off:
            raise LegacyImportError("rows unaccounted for in " + "; ".join(off))

    @property
    def totals(self) -> dict[str, int]:
        keys = ("read", "imported", "merged", "quarantined")
        return {k: sum(getattr(t, k) for t in self.tables.values()) for k in keys}

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": str(self.source),
            "target": str(self.target),
            "seconds": round(self.seconds, 3),
            "totals": self.totals,
            "tables": {name: t.to_dict() for name, t in self.tables.items()},
            "warnings": list(self.warnings),
        }

    def to_json(self) -> str:
        """The report as JSON text: per table read, imported, merged, quarantined and why."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    def lines(self) -> list[str]:
        """A short human summary, one line per table, then notices and warnings."""
        out = [f"{'table':<16} {'read':>8} {'imported':>9} {'merged':>7} {'quarantined':>12}"]
        for t in self.tables.values():
            out.append(
                f"{t.table:<16} {t.read:>8} {t.imported:>9} {t.merged:>7} {t.quarantined:>12}"
            )
        for t in self.tables.values():
            for what, n in sorted(t.merges.items()):
                out.append(f"{t.table}: {n} merged: {what}")
            for what, n in sorted(t.quarantines.items()):
                out.append(f"{t.table}: {n} quarantined: {what}")
            for what, n in sorted(t.notices.items()):
                out.append(f"{t.table}: {n} imported, note: {what}")
            out += [f"{t.table}: warning: {w}" for w in t.warnings]
        out += [f"warning: {w}" for w in self.warnings]
        return out
