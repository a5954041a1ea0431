"""What the sync server's PostgreSQL says about itself: slow queries, bloat, indexes, locks, sync.

Every figure is read from the server's statistics views, except table bloat without
``pgstattuple``, which is the usual estimate from ``pg_stats`` (marked ``"estimate"``).
Statistics count from their last reset (``stats_reset``), so "unused" means unused since
then. Read as the schema owner: the per-user tables force row level security, so the
tombstone counts need a role that bypasses it (``sync.sees_all_users`` says whether it does).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import Connection

from duru.model import ENTITIES

Section = list[dict[str, Any]]
TOP = 10
_QUERY_CHARS = 200
_PGSS_HINT = (
    "pg_stat_statements is off: add it to shared_preload_libraries, restart PostgreSQL, then run"
    " CREATE EXTENSION pg_stat_statements in this database (the embedded server does both)"
)


def server_report(conn: Connection[Any], *, min_table_bytes: int = 1 << 20) -> dict[str, Any]:
    """Every server section; read-only, each query bounded by the connection's timeouts.

    ``min_table_bytes``: smaller tables are left out of the bloat and seq-scan sections.
    """
    extensions = _extensions(conn)
    queries = _top_queries(conn) if "pg_stat_statements" in extensions else None
    return {
        "database": conn.info.dbname,
        "stats_reset": _stats_reset(conn),
        "queries": queries or {"by_total": [], "by_mean": []},
        "hints": [] if queries is not None else [_PGSS_HINT],
        "bloat": _bloat(conn, "pgstattuple" in extensions, min_table_bytes),
        "unused_indexes": _unused_indexes(conn),
        "seq_scans": _seq_scans(conn, min_table_bytes),
        "long_transactions": _long_transactions(conn),
        "blocked": _blocked(conn),
        "sync": _sync(conn),
        "migrations": _migrations(conn),
    }


def _rows(conn: Connection[Any], query: str, params: tuple[Any, ...] = ()) -> Section:
    cur = conn.execute(query, params)
    names = [d.name for d in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _extensions(conn: Connection[Any]) -> set[str]:
    return {r["extname"] for r in _rows(conn, "SELECT extname FROM pg_extension")}


def _stats_reset(conn: Connection[Any]) -> str | None:
    found = conn.execute(
        "SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()"
    ).fetchone()
    return None if found is None or found[0] is None else found[0].isoformat()


def _exists(conn: Connection[Any], table: str) -> bool:
    found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    return bool(found and found[0])


# -- queries -------------------------------------------------------------------------------


def _top_queries(conn: Connection[Any]) -> dict[str, Section]:
    base = (
        "SELECT queryid::text AS queryid, left(query, %s) AS query, calls,"
        " round(total_exec_time::numeric, 1)::float AS total_ms,"
        " round(mean_exec_time::numeric, 1)::float AS mean_ms,"
        " round(max_exec_time::numeric, 1)::float AS max_ms, rows"
        " FROM pg_stat_statements"
        " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " ORDER BY {} DESC LIMIT %s"
    )
    return {
        "by_total": _rows(conn, base.format("total_exec_time"), (_QUERY_CHARS, TOP)),
        "by_mean": _rows(conn, base.format("mean_exec_time"), (_QUERY_CHARS, TOP)),
    }


# -- bloat ---------------------------------------------------------------------------------

_TABLES = (
    "SELECT c.oid, n.nspname || '.' || c.relname AS name, pg_relation_size(c.oid) AS bytes"
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
    " AND n.nspname NOT LIKE 'pg_toast%%' AND pg_relation_size(c.oid) >= %s"
    " ORDER BY bytes DESC LIMIT 50"
)


def _bloat(conn: Connection[Any], pgstattuple: bool, min_bytes: int) -> Section:
    if pgstattuple:
        try:
            return _bloat_measured(conn, min_bytes)
        except psycopg.errors.InsufficientPrivilege:
            conn.rollback()  # needs pg_stat_scan_tables; fall back to the estimate
    return _bloat_estimated(conn, min_bytes)


def _bloat_measured(conn: Connection[Any], min_bytes: int) -> Section:
    """Dead tuples and free space as ``pgstattuple_approx`` reads them (visibility map aided)."""
    query = (
        f"SELECT t.name, t.bytes, 'pgstattuple' AS source,"
        " round(((s.dead_tuple_len + s.approx_free_space)::numeric"
        " / greatest(s.table_len, 1)), 3)::float AS ratio,"
        " round(s.dead_tuple_percent::numeric, 1)::float AS dead_percent,"
        " round(s.approx_free_percent::numeric, 1)::float AS free_percent"
        f" FROM ({_TABLES}) t, LATERAL pgstattuple_approx(t.oid) s ORDER BY ratio DESC"
    )
    tables = _rows(conn, query, (min_bytes,))
    return tables + _index_bloat(conn, min_bytes)


def _index_bloat(conn: Connection[Any], min_bytes: int) -> Section:
    """B-tree leaf density from ``pgstatindex``: 90% is a freshly built index."""
    query = (
        "SELECT i.indexrelid::regclass::text AS name, pg_relation_size(i.indexrelid) AS bytes,"
        " 'pgstatindex' AS source,"
        " round(greatest(0, 1 - s.avg_leaf_density / 90)::numeric, 3)::float AS ratio,"
        " s.avg_leaf_density::float AS leaf_density"
        " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " JOIN pg_am a ON a.oid = c.relam AND a.amname = 'btree'"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        " AND n.nspname NOT LIKE 'pg_toast%%',"
        " LATERAL pgstatindex(i.indexrelid) s"
        " WHERE pg_relation_size(i.indexrelid) >= %s ORDER BY ratio DESC LIMIT 50"
    )
    return _rows(conn, query, (min_bytes,))


def _bloat_estimated(conn: Connection[Any], min_bytes: int) -> Section:
    """The usual estimate: pages that ``reltuples`` rows of ``pg_stats`` widths would need.

    A tuple is a 24-byte header plus its columns' average widths, rounded up to 8 bytes,
    plus a 4-byte line pointer; each page has 24 bytes of header and keeps fillfactor.
    Tables never analysed (``reltuples`` < 0) are left out: there is nothing to estimate from.
    """
    query = (
        "SELECT t.name, t.bytes, 'estimate' AS source,"
        " round(greatest(0, 1 - ceil(c.reltuples * (ceil((24 + w.width) / 8.0) * 8 + 4)"
        " / ((current_setting('block_size')::int - 24)"
        " * coalesce((SELECT substring(o FROM 'fillfactor=(\\d+)')::int"
        " FROM unnest(c.reloptions) o WHERE o LIKE 'fillfactor=%%'), 100) / 100.0))"
        " / greatest(c.relpages, 1))::numeric, 3)::float AS ratio"
        f" FROM ({_TABLES}) t JOIN pg_class c ON c.oid = t.oid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " JOIN LATERAL (SELECT coalesce(sum(s.avg_width), 0) AS width FROM pg_stats s"
        " WHERE s.schemaname = n.nspname AND s.tablename = c.relname) w ON true"
        " WHERE c.reltuples >= 0 ORDER BY ratio DESC"
    )
    return _rows(conn, query, (min_bytes,))


# -- indexes and scans ---------------------------------------------------------------------


def _unused_indexes(conn: Connection[Any]) -> Section:
    """Indexes no query used since the stats reset; unique ones enforce a rule, so are kept."""
    return _rows(
        conn,
        "SELECT s.schemaname || '.' || s.indexrelname AS name,"
        " s.schemaname || '.' || s.relname AS table_name,"
        " pg_relation_size(s.indexrelid) AS bytes, s.idx_scan AS scans"
        " FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid"
        " WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary"
        " ORDER BY bytes DESC, name LIMIT 50",
    )


def _seq_scans(conn: Connection[Any], min_bytes: int) -> Section:
    """Tables of ``min_bytes`` or more read by sequential scans, most rows read first."""
    return _rows(
        conn,
        "SELECT schemaname || '.' || relname AS name, n_live_tup AS live_rows,"
        " pg_relation_size(relid) AS bytes, seq_scan AS seq_scans,"
        " seq_tup_read AS rows_read_by_seq_scans, coalesce(idx_scan, 0) AS index_scans"
        " FROM pg_stat_user_tables"
        " WHERE seq_scan > 0 AND pg_relation_size(relid) >= %s"
        " ORDER BY seq_tup_read DESC LIMIT %s",
        (min_bytes, TOP),
    )


# -- sessions ------------------------------------------------------------------------------


def _long_transactions(conn: Connection[Any]) -> Section:
    return _rows(
        conn,
        "SELECT pid, usename AS user_name, application_name, state,"
        " round(extract(epoch FROM now() - xact_start)::numeric, 1)::float AS seconds,"
        " left(query, %s) AS query"
        " FROM pg_stat_activity"
        " WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid()"
        " AND backend_type = 'client backend'"
        " ORDER BY xact_start LIMIT %s",
        (_QUERY_CHARS, TOP),
    )


def _blocked(conn: Connection[Any]) -> Section:
    """Sessions waiting on a lock, and the sessions that hold it."""
    return _rows(
        conn,
        "SELECT pid, pg_blocking_pids(pid) AS blocked_by, wait_event_type, wait_event,"
        " round(extract(epoch FROM now() - query_start)::numeric, 1)::float AS seconds,"
        " left(query, %s) AS query"
        " FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0"
        " ORDER BY query_start LIMIT %s",
        (_QUERY_CHARS, TOP),
    )


# -- sync ----------------------------------------------------------------------------------


def _sync(conn: Connection[Any]) -> dict[str, Any]:
    """Per user: change head, tombstone horizon, the oldest open conflict, tombstones waiting."""
    if not _exists(conn, "accounts"):
        return {"users": [], "sees_all_users": None}
    tombstones = " UNION ALL ".join(
        f"SELECT user_id, deleted_at FROM {e.table} WHERE deleted_at IS NOT NULL" for e in ENTITIES
    )
    users = _rows(
        conn,
        "SELECT a.user_id::text, a.name, a.last_change_seq AS head, a.horizon_seq AS horizon,"
        " c.oldest AS oldest_open_conflict, coalesce(c.open, 0) AS open_conflicts,"
        " coalesce(t.waiting, 0) AS tombstones, t.oldest AS oldest_tombstone"
        " FROM accounts a"
        " LEFT JOIN (SELECT user_id, min(created_at) AS oldest, count(*) AS open"
        " FROM conflicts WHERE status = 'open' GROUP BY user_id) c USING (user_id)"
        f" LEFT JOIN (SELECT user_id, count(*) AS waiting, min(deleted_at) AS oldest"
        f" FROM ({tombstones}) d GROUP BY user_id) t USING (user_id)"
        " ORDER BY c.oldest NULLS LAST, t.oldest NULLS LAST LIMIT 50",
    )
    for user in users:
        for key in ("oldest_open_conflict", "oldest_tombstone"):
            user[key] = None if user[key] is None else user[key].isoformat()
    role = conn.execute(
        "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    return {"users": users, "sees_all_users": bool(role and role[0])}


def _migrations(conn: Connection[Any]) -> Section:
    """Server migration runs not done: rows so far and their rate (no total is kept: no ETA)."""
    if not _exists(conn, "duru_migration_runs"):
        return []
    runs = _rows(
        conn,
        "SELECT r.run_id, r.status, r.started_at, r.error,"
        " coalesce(sum(p.rows), 0)::bigint AS rows, coalesce(sum(p.failed), 0)::bigint AS failed"
        " FROM duru_migration_runs r LEFT JOIN duru_migration_progress p USING (run_id)"
        " WHERE r.status IN ('running', 'paused', 'failed')"
        " GROUP BY r.run_id ORDER BY r.started_at",
    )
    now = conn.execute("SELECT (extract(epoch FROM now()) * 1000)::bigint").fetchone()
    for run in runs:
        seconds = max((now[0] if now else 0) - run["started_at"], 1) / 1000
        run["rows_per_second"] = round(run["rows"] / seconds, 1)
        run["error_rate"] = round(run["failed"] / max(run["rows"], 1), 4)
    return runs
