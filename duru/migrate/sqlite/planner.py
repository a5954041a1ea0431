"""Build the plan of a run from a live file: its version, the migration path, every step."""

from __future__ import annotations

from duru.local.db import Database
from duru.migrate.migration import Migration, MigrationSet
from duru.migrate.sqlite import state
from duru.migrate.sqlite.backup import table_counts
from duru.migrate.sqlite.impl import migration_steps
from duru.migrate.sqlite.plan import Plan
from duru.migrate.sqlite.run_steps import cleanup_steps, prepare_steps
from duru.migrate.state import RunRecord


def build_plan(db: Database, mset: MigrationSet, run: RunRecord | None = None) -> Plan:
    """The plan for ``db``: a new run from its version, or the rest of ``run``.

    Raises MigrationError when no migration path leads to the current version
    and SchemaMismatch when the file is not a device database at all.
    """
    if run is not None:
        source = run.source_version
        chain = [mset.by_id(i) for i in run.migrations]
    else:
        source = mset.detect(db.conn)
        chain = mset.path(source)
    if not chain:
        return Plan(db.path, source, source, (), ())
    rows = sum(table_counts(db.conn).values())
    steps = prepare_steps(rows)
    for m in chain:
        steps += migration_steps(db.conn, m)
    steps += cleanup_steps()
    done = frozenset() if run is None else _done(db, run.run_id, [s.key for s in steps])
    return Plan(
        db.path,
        source,
        chain[-1].target,
        tuple(m.id for m in chain),
        tuple(steps),
        run_id=None if run is None else run.run_id,
        done=done,
    )


def chain_of(mset: MigrationSet, run: RunRecord) -> dict[str, Migration]:
    return {i: mset.by_id(i) for i in run.migrations}


def _done(db: Database, run_id: str, keys: list[str]) -> frozenset[str]:
    out = set()
    for key in keys:
        found = state.progress(db.conn, run_id, key)
        if found is not None and found.state == "done":
            out.add(key)
    return frozenset(out)
