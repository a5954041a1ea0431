"""One folder per note: choosing among a note's filings in a version 11 file.

Version 11 let a note sit in several folders; the model keeps one. Among a
note's filings whose note and folder are both imported, the most recent by
``added_at`` is kept (a NULL ``added_at`` counts as oldest; a tie goes to the
row written later, the higher rowid). An exact copy of a kept filing is
merged; every other filing is quarantined as ``superseded``, naming the
folder the note was kept in.
"""

from __future__ import annotations

from duru.local.legacy.report import Reason
from duru.local.legacy.rows import Prepared
from duru.local.legacy.run import EXACT, ImportRun
from duru.local.legacy.spec import LegacyTable


class FilingLoader:
    """Feed it the prepared filings with :meth:`add`, then :meth:`finish` writes the kept ones."""

    def __init__(self, run: ImportRun, spec: LegacyTable) -> None:
        self.run = run
        self.spec = spec
        self.kept: dict[str, Prepared] = {}  # note key -> its most recent filing so far
        self.copies: dict[str, list[Prepared]] = {}  # note key -> exact copies of the kept one

    def add(self, p: Prepared) -> None:
        assert p.key is not None
        current = self.kept.get(p.key)
        if current is None:
            self.kept[p.key] = p
        elif current.normal == p.normal:
            self.copies.setdefault(p.key, []).append(p)
        elif _recency(p) > _recency(current):
            self.kept[p.key] = p
            for old in [current, *self.copies.pop(p.key, [])]:
                self._supersede(old, p)
        else:
            self._supersede(p, current)

    def finish(self) -> None:
        for key, p in self.kept.items():
            written = self.run.insert(self.spec, p)
            for copy in self.copies.pop(key, []):
                if written:
                    self.run.merge(self.spec, copy.source, EXACT)
                else:
                    self.run.quarantine(
                        self.spec, copy.source, Reason("refused", "exact copy of a row refused")
                    )
        self.kept.clear()

    def _supersede(self, loser: Prepared, winner: Prepared) -> None:
        folder = _column(winner, "folder_id")
        detail = f"the note is kept in folder {folder!r}, filed more recently; one folder per note"
        self.run.quarantine(self.spec, loser.source, Reason("superseded", detail))


def _recency(p: Prepared) -> tuple[int, int, int]:
    added = p.normal.get(_name(p, "added_at"))
    stamp = added if isinstance(added, int) else 0
    return (0 if added is None else 1, stamp, p.source.rowid)


def _column(p: Prepared, name: str) -> object:
    return p.source.values.get(_name(p, name))


def _name(p: Prepared, name: str) -> str:
    return next((c for c in p.source.values if c.lower() == name), name)
