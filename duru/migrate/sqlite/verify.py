"""Compare each committed chunk of a table copy with its source, beside the next chunk's copy."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from duru.errors import MigrationError
from duru.local.db import connect
from duru.migrate.sqlite.rebuild import TableRebuild
from duru.migrate.sqlite.steps import RowPosition


@dataclass
class _Held:
    """A copied chunk waiting for its compare, and, once it ran, the verdict."""

    lo: RowPosition | None
    hi: RowPosition
    copied: int
    thread: threading.Thread | None = None
    equal: int | None = None
    error: BaseException | None = None
    seconds: float = 0.0


class ChunkVerifier:
    """Compares each committed chunk of a copy with its source, beside the next chunk's copy.

    The row-by-row compare reads every source row of the chunk again, in the
    copy's order (for a key-ordered copy, one random read per row): about
    half the cost of the copy itself. It needs only committed rows, so it runs
    on a connection of its own in a thread while the next chunk copies; SQLite
    releases the GIL while it works, so on a second core the check costs
    little wall-clock time. Nothing is compared less or later than it must be:

    - :meth:`hold` keeps a copied chunk; the next :meth:`start` (the next
      chunk's, so the held one is committed by then) starts its compare;
    - the chunk after it awaits the verdict (:meth:`wait`) before it commits,
      so at most one committed chunk is ever unverified, and a mismatch fails
      that transaction and the step; the last chunk is awaited before the copy
      reports itself done;
    - a resumed step compares every copied row (:meth:`TableRebuild.check_resume`)
      and starts a fresh verifier, so a chunk left unverified by a crash or a
      stop is compared then.
    """

    def __init__(self, rebuild: TableRebuild, path: Path, cache_mb: int, mmap_mb: int) -> None:
        self.rebuild = rebuild
        self.path = path
        self.cache_mb = cache_mb
        self.mmap_mb = mmap_mb
        self.busy_seconds = 0.0
        self._held: _Held | None = None
        # One read connection for the whole copy (its page cache stays warm); used by
        # one compare thread at a time, and closed by drop().
        self._conn: sqlite3.Connection | None = None

    def hold(self, lo: RowPosition | None, hi: RowPosition, copied: int) -> None:
        """Keep the chunk ``(lo, hi]`` just copied (not yet committed) for its compare."""
        self._held = _Held(lo, hi, copied)

    def start(self, after: RowPosition | None) -> None:
        """Start comparing the held chunk, now committed when the copy goes on from its end.

        A held chunk that does not end at ``after`` was never committed (its
        transaction failed) and is dropped.
        """
        held = self._held
        if held is None or held.thread is not None:
            return
        if held.hi != after:
            self._held = None
            return
        held.thread = threading.Thread(
            target=self._compare, args=(held,), name="duru-verify", daemon=True
        )
        held.thread.start()

    def wait(self) -> dict[str, Any] | None:
        """The verdict on the chunk being compared (None if none is); ValidationFailed on a
        mismatch, MigrationError when the compare itself failed."""
        held = self._held
        if held is None or held.thread is None:
            return None
        held.thread.join()
        self._held = None
        self.busy_seconds += held.seconds
        if held.error is not None:
            raise MigrationError(
                f"{self.rebuild.table}: rows ({held.lo}, {held.hi}] could not be compared with"
                f" their source: {held.error}"
            ) from held.error
        assert held.equal is not None
        self.rebuild.check_equal(held.lo, held.hi, held.copied, held.equal)
        return {"hwm": held.hi, "rows": held.equal, "ms": round(held.seconds * 1000, 2)}

    def drop(self) -> None:
        """Forget any held chunk (after waiting for a compare in flight); close the connection."""
        held, self._held = self._held, None
        if held is not None and held.thread is not None:
            held.thread.join()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _compare(self, held: _Held) -> None:
        started = time.perf_counter()
        try:
            if self._conn is None:
                self._conn = connect(self.path, wal=False)
                self._conn.execute("PRAGMA query_only = 1")
                self._conn.execute(f"PRAGMA cache_size = -{self.cache_mb * 1024}")
                # Memory-mapped reads (RunConfig.mmap_mb): with read() calls, the
                # compare's random reads slowed the copy beside it by a third.
                self._conn.execute(f"PRAGMA mmap_size = {self.mmap_mb * 1024 * 1024}")
            where, params = self.rebuild.span(held.lo, held.hi)
            found = self._conn.execute(self.rebuild.compare_sql(where), params).fetchone()
            held.equal = int(found[0])
        except BaseException as exc:  # handed to the copy's thread by wait()
            held.error = exc
        held.seconds = time.perf_counter() - started
