"""Expand/contract on the server: a rename and a type change keep clients of both releases
reading and writing correctly between expand and contract; the backfill runs in audited
chunks; contract snapshots what it drops, and a rollback restores it from the snapshot."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import psycopg
import pytest
from test_migrate_pg_support import audit_rows, columns, fast_config

from duru.errors import UsageError
from duru.migrate.migration import Migration
from duru.migrate.ops import ChangeType, Operation
from duru.migrate.postgres import (
    ContractColumn,
    ExpandColumn,
    server_plan,
    server_rollback,
    server_run,
    server_set,
    server_status,
)
from duru.migrate.postgres.snapshot import snapshots
from duru.remote.schema import SERVER_SCHEMA_VERSION, apply_server_schema

# As nonsuper these run as a BYPASSRLS role: a migration refuses one that RLS binds.
pytestmark = pytest.mark.pg_migration

RENAME = ExpandColumn("items", "label", "title", "text")
RETYPE = ExpandColumn(
    "items", "priority", "rank", "integer", up="{value}::integer", down="{value}::text"
)


def _items(url: str, rows: int = 500) -> None:
    with psycopg.connect(url) as conn:
        apply_server_schema(conn)
        conn.execute(
            "CREATE TABLE items (user_id uuid NOT NULL, id bigint NOT NULL, label text NOT NULL,"
            " priority text, PRIMARY KEY (user_id, id))"
        )
        conn.execute(
            "INSERT INTO items SELECT '00000000-0000-4000-8000-000000000001', g, 'item ' || g,"
            " (g %% 5)::text FROM generate_series(1, %s) g",
            (rows,),
        )


def _v(release: int) -> str:
    """Release 1 is the current server schema; release 2 the next, and so on."""
    return str(SERVER_SCHEMA_VERSION + release - 1)


def _id(release: int) -> str:
    return f"{int(_v(release)):04d}_step"


def _chain(*steps: tuple[Operation, ...]) -> Any:
    """Releases 1 -> 2 -> ...: one migration (one release) per tuple of operations."""
    made = [Migration(_id(n + 2), _v(n + 1), _v(n + 2), ops) for n, ops in enumerate(steps)]
    return made


def _to(url: str, migrations: list[Migration], version: int) -> Any:
    """Run the releases up to ``version`` (snapshots kept, so a rollback can use them)."""
    mset = server_set(migrations[: version - 1], _v(version))
    return server_run(url, migrations=mset, config=replace(fast_config(), keep_snapshots=True))


def _rows(conn: psycopg.Connection[Any], *cols: str) -> dict[int, tuple[Any, ...]]:
    listed = ", ".join(cols)
    return {r[0]: tuple(r[1:]) for r in conn.execute(f"SELECT id, {listed} FROM items ORDER BY id")}


USER = "00000000-0000-4000-8000-000000000001"


def test_old_and_new_clients_both_work_between_expand_and_contract(pg_url: str) -> None:
    _items(pg_url)
    chain = _chain((RENAME, RETYPE), (ContractColumn(RENAME), ContractColumn(RETYPE)))
    assert _to(pg_url, chain, 2).status == "done"
    with psycopg.connect(pg_url) as conn:
        assert {"label", "title", "priority", "rank"} <= set(columns(conn, "items"))
        # The backfill filled every existing row.
        assert all(
            t == f"item {i}" and r == i % 5 for i, (t, r) in _rows(conn, "title", "rank").items()
        )
        # A client of the previous release writes the old columns only ...
        conn.execute(
            f"INSERT INTO items (user_id, id, label, priority) VALUES ('{USER}', 1001, 'old', '7')"
        )
        conn.execute("UPDATE items SET label = 'old edit', priority = '3' WHERE id = 1")
        # ... and a client of the new release the new ones only.
        conn.execute(
            f"INSERT INTO items (user_id, id, title, rank) VALUES ('{USER}', 1002, 'new', 9)"
        )
        conn.execute("UPDATE items SET title = 'new edit', rank = 4 WHERE id = 2")
        both = _rows(conn, "label", "title", "priority", "rank")
    assert both[1001] == ("old", "old", "7", 7)
    assert both[1] == ("old edit", "old edit", "3", 3)
    assert both[1002] == ("new", "new", "9", 9)
    assert both[2] == ("new edit", "new edit", "4", 4)
    chunks = audit_rows(pg_url, kind="chunk")
    assert {r["step"] for r in chunks} == {f"{_id(2)}/00.backfill", f"{_id(2)}/01.backfill"}
    assert all(r["details"]["point"]["hwm"] for r in chunks)  # each chunk is a rollback point

    # Contract (a later release): the old columns go, the values stay.
    assert _to(pg_url, chain, 3).status == "done"
    with psycopg.connect(pg_url) as conn:
        cols = columns(conn, "items")
        assert "label" not in cols and "priority" not in cols
        after = _rows(conn, "title", "rank")
        trigger = conn.execute("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'duru_sync%'")
        assert trigger.fetchone() == (0,)
    assert after[1001] == ("old", 7) and after[2] == ("new edit", 4) and len(after) == 502


def test_a_contract_rolls_back_from_its_snapshot(pg_url: str) -> None:
    _items(pg_url, rows=300)
    chain = _chain((RENAME,), (ContractColumn(RENAME),))
    _to(pg_url, chain, 2)
    with psycopg.connect(pg_url) as conn:
        before = _rows(conn, "label")
    _to(pg_url, chain, 3)
    with psycopg.connect(pg_url) as conn:
        assert snapshots(conn), "keep_snapshots keeps the run's snapshot"
        # A new client writes after the contract: the rollback fills its label from title.
        conn.execute(f"INSERT INTO items (user_id, id, title) VALUES ('{USER}', 5000, 'late')")
    report = server_rollback(pg_url, migrations=server_set(chain, _v(3)))
    assert report.undone == (f"{_id(3)}/01.stamp", f"{_id(3)}/00.contract")
    with psycopg.connect(pg_url) as conn:
        restored = _rows(conn, "label")
        assert columns(conn, "items")["label"] is True  # NOT NULL again
        assert not snapshots(conn)
        # The sync trigger is back: both releases work again.
        conn.execute(f"INSERT INTO items (user_id, id, label) VALUES ('{USER}', 5001, 'again')")
        assert conn.execute("SELECT title FROM items WHERE id = 5001").fetchone() == ("again",)
    assert restored[5000] == ("late",)
    assert {k: v for k, v in restored.items() if k < 5000} == before
    status = server_status(pg_url, migrations=server_set(chain, _v(3)))
    assert status.version == _v(2) and status.last_run is not None
    assert status.last_run.status == "rolled_back"


def test_change_type_is_refused_on_the_server_with_the_safe_alternative(pg_url: str) -> None:
    _items(pg_url, rows=10)
    op = ChangeType("items", "priority", "text", "integer", up="x", down="y")
    mset = server_set(_chain((op,)), _v(2))
    with pytest.raises(UsageError, match="ExpandColumn"):
        server_plan(pg_url, migrations=mset)


def test_expand_needs_value_placeholders_and_reverses_to_a_contract_keeping_the_old() -> None:
    with pytest.raises(UsageError):
        ExpandColumn("items", "a", "b", "bigint", up="a::bigint")
    back = RETYPE.reverse()
    assert back == ContractColumn(RETYPE, keep="old") and back.dropped == "rank"
    assert RENAME.describe() == "expand items.label into title (rename)"
