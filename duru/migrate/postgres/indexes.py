"""Index builds that never block writes: CONCURRENTLY, outside transactions, leftovers cleaned.

``CREATE INDEX CONCURRENTLY`` that fails or is killed part way (a lock
timeout while it waits for older transactions, a unique violation, a dead
process) leaves an INVALID index behind (``pg_index.indisvalid = false``):
PostgreSQL keeps maintaining it on every write but never uses it, and a plain
retry fails because the name is taken. :func:`build_index` finds such a
leftover before every attempt, drops it concurrently and builds again; after
a build it checks the index is valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import Connection

from duru.errors import ValidationFailed
from duru.migrate.ops import IndexSpec, quote
from duru.migrate.postgres.audit import Where
from duru.migrate.postgres.safe_ddl import SafeDDL
from duru.model import now_ms


@dataclass(frozen=True)
class IndexBuild:
    """What :func:`build_index` did: attempts made, invalid leftovers dropped."""

    attempts: int
    leftovers_dropped: int
    already_valid: bool = False


def create_sql(spec: IndexSpec) -> str:
    """``CREATE [UNIQUE] INDEX CONCURRENTLY`` for ``spec``."""
    return spec.sql().replace("INDEX ", "INDEX CONCURRENTLY ", 1)


def drop_sql(name: str) -> str:
    return f"DROP INDEX CONCURRENTLY IF EXISTS {quote(name)}"


def index_validity(conn: Connection[Any], name: str) -> bool | None:
    """Whether the index ``name`` (current schema) is valid; None when there is no such index."""
    with conn.transaction():
        found = conn.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relname = %s AND n.nspname = current_schema()",
            (name,),
        ).fetchone()
    return None if found is None else bool(found[0])


def build_index(ddl: SafeDDL, where: Where, spec: IndexSpec) -> IndexBuild:
    """Build ``spec`` concurrently (outside any transaction), retrying lock timeouts.

    A valid index of that name already there counts as built. Raises
    ValidationFailed when the build reports success but the index is not
    valid, MigrationError (retryable) when every attempt timed out, and the
    server's error otherwise (the invalid leftover is dropped first, best effort).
    """
    conn = ddl.conn
    if index_validity(conn, spec.name) is True:
        return IndexBuild(0, 0, already_valid=True)
    dropped = 0

    def clean(attempt: int) -> None:
        nonlocal dropped
        if index_validity(conn, spec.name) is False:
            drop_leftover(ddl, where, spec.name, attempt)
            dropped += 1

    try:
        attempts = ddl.outside(where, create_sql(spec), before_attempt=clean)
    except Exception:
        _drop_quietly(ddl, where, spec.name)
        raise
    if index_validity(conn, spec.name) is not True:
        raise ValidationFailed(
            f"index {spec.name} on {spec.table} was built but is not valid"
            " (pg_index.indisvalid is false); it was left in place for inspection"
        )
    return IndexBuild(attempts, dropped)


def drop_index(ddl: SafeDDL, where: Where, name: str) -> int:
    """Drop an index concurrently (outside any transaction); the attempts it took."""
    return ddl.outside(where, drop_sql(name))


def drop_leftover(ddl: SafeDDL, where: Where, name: str, attempt: int) -> None:
    """Drop the invalid index ``name`` a failed build left, and say so in the audit."""
    started = now_ms()
    ddl.outside(where, drop_sql(name))
    if ddl.audit is not None:
        with ddl.conn.transaction():
            ddl.audit.record(
                where,
                started_at=started,
                kind="event",
                details={"dropped_invalid_index": name, "before_attempt": attempt},
            )


def _drop_quietly(ddl: SafeDDL, where: Where, name: str) -> None:
    # An invalid index slows every write to its table: do not leave one behind.
    # Cleanup must never hide the build's own error, so its failures are dropped.
    try:
        if not ddl.conn.closed and index_validity(ddl.conn, name) is False:
            ddl.outside(where, drop_sql(name))
    except Exception:
        pass
