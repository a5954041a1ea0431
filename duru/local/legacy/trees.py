"""Writing a tree (folders, subtasks) parents first, whatever order the file has.

The model checks each parent reference on insert, so a child cannot be
written before its parent. Rows whose parent is not written yet wait, keyed
by that parent, and follow it as soon as it is written; only waiting rows are
held in memory. When the table has been read, rows still waiting have a
parent that will never come:

- gone (not in the file) or not imported (quarantined, refused): the row is
  imported at the top level, and the report says so;
- a cycle of parent ids (a folder inside itself): the cycle is broken at its
  row with the smallest key, which goes to the top level, reported.
"""

from __future__ import annotations

from duru.local.legacy.report import Reason
from duru.local.legacy.rows import Prepared
from duru.local.legacy.run import EXACT, ImportRun
from duru.local.legacy.spec import LegacyTable


class TreeLoader:
    """Feed it a table's prepared rows with :meth:`add`, then call :meth:`finish`."""

    def __init__(self, run: ImportRun, spec: LegacyTable) -> None:
        parent = spec.parent
        assert parent is not None, f"{spec.name} is not a tree"
        target = spec.field_for(parent.column)
        assert target is not None
        self.run = run
        self.spec = spec
        self.column = parent.column
        self.field = target.name
        self.pending: dict[str, Prepared] = {}  # key -> row waiting for its parent
        self.waiting: dict[str, list[Prepared]] = {}  # parent key -> rows waiting for it
        self.copies: dict[str, list[Prepared]] = {}  # key -> exact duplicates of a pending row
        self._orphaned: list[str] = []  # keys that will not be written; their rows wait in vain

    def add(self, p: Prepared) -> None:
        """Take a row whose other references are resolved; write it when its parent is."""
        assert p.key is not None
        found = self.run.duplicate(self.spec, p, self.pending.get(p.key))
        if found == EXACT and p.key in self.pending:
            self.copies.setdefault(p.key, []).append(p)
            return
        if found == EXACT:
            self.run.merge(self.spec, p.source, EXACT)
            return
        if isinstance(found, Reason):
            self.run.quarantine(self.spec, p.source, found)
            return
        self.run.claim(self.spec, p)
        parent = self._parent(p)
        if parent is None or parent in self.run.imported[self.spec.name]:
            self._write(p)
            return
        self.pending[p.key] = p
        self.waiting.setdefault(parent, []).append(p)

    def finish(self) -> None:
        """Write every row still waiting, at the top level where its parent never came."""
        self._orphaned += [k for k in self.waiting if k not in self.pending]
        self._detach_orphans()
        # What waits now hangs from a cycle: break each once, then what follows it.
        for key in sorted(self.pending):
            if key in self.pending:
                self._break_cycle_above(key)
                self._detach_orphans()

    def _detach_orphans(self) -> None:
        # Rows waiting for a parent that will not be written: gone, quarantined, refused.
        while self._orphaned:
            parent = self._orphaned.pop()
            gone = self.run.gone(self.spec.name, parent)
            for p in self.waiting.pop(parent, []):
                self._to_top(p, "parent gone" if gone else "parent not imported")

    def _break_cycle_above(self, key: str) -> None:
        # Follow parents from ``key`` until one repeats: that one is on a cycle.
        seen: dict[str, int] = {}
        while key not in seen:
            seen[key] = len(seen)
            parent = self._parent(self.pending[key])
            assert parent is not None and parent in self.pending
            key = parent
        cycle = list(seen)[seen[key] :]
        chosen = self.pending[min(cycle)]
        parent = self._parent(chosen)
        assert parent is not None
        self.waiting[parent] = [w for w in self.waiting[parent] if w is not chosen]
        self._to_top(chosen, "parent cycle broken")

    def _to_top(self, p: Prepared, why: str) -> None:
        assert p.key is not None
        del self.pending[p.key]
        p.values[self.field] = None
        p.notices.append(f"{why}: moved to the top level")
        self._write(p)

    def _write(self, first: Prepared) -> None:
        stack = [first]
        while stack:
            p = stack.pop()
            assert p.key is not None
            self.pending.pop(p.key, None)
            written = self.run.insert(self.spec, p)
            self._settle_copies(p.key, written)
            if written:
                stack.extend(reversed(self.waiting.pop(p.key, [])))
            else:
                self._orphaned.append(p.key)

    def _settle_copies(self, key: str, written: bool) -> None:
        for copy in self.copies.pop(key, []):
            if written:
                self.run.merge(self.spec, copy.source, EXACT)
            else:
                self.run.quarantine(
                    self.spec, copy.source, Reason("refused", "exact copy of a row refused")
                )

    def _parent(self, p: Prepared) -> str | None:
        return p.refs.get(self.column)
