"""`duru monitor`: planted trouble on a real PostgreSQL and a real device file is named."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest
from test_cli import invoke

from duru.local import Database
from duru.model import now_ms
from duru.monitor import Thresholds, alerts, load_thresholds, server_report
from duru.remote.schema import apply_server_schema

DAY_MS = 86_400_000


def plant(url: str, inspect_url: str) -> None:
    """A slow query, a table that is mostly dead rows, and an index no query uses."""
    # As the DBA would: only a superuser may create this extension.
    with psycopg.connect(inspect_url, autocommit=True) as dba:
        dba.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    with psycopg.connect(url, autocommit=True) as conn:
        apply_server_schema(conn)
        conn.execute("CREATE TABLE planted_bloat (id bigint, tag int, payload text)")
        conn.execute(
            "INSERT INTO planted_bloat SELECT g, g % 97, repeat('x', 80)"
            " FROM generate_series(1, 60000) g"
        )
        conn.execute("CREATE INDEX ix_planted_unused ON planted_bloat (payload, id)")
        # Every tenth row stays, so no trailing page empties and a vacuum cannot shrink it.
        conn.execute("DELETE FROM planted_bloat WHERE id % 10 <> 0")
        conn.execute("ANALYZE planted_bloat")
        for _ in range(2):
            conn.execute("SELECT pg_sleep(0.15), 'planted slow query'")


def by_rule(found: list[dict[str, Any]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for a in found:
        out.setdefault(a["rule"], []).append(str(a["subject"]))
    return out


def test_monitor_json_names_the_slow_query_the_bloated_table_and_the_unused_index(
    pg_url: str, pg_inspect_url: str, pg_role: str, tmp_path: Path
) -> None:
    plant(pg_url, pg_inspect_url)
    result = invoke(None, "monitor", "--server-db", pg_url, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    server = report["server"]
    assert server["hints"] == []
    assert any("pg_sleep" in q["query"] for q in server["queries"]["by_mean"][:3])
    assert "public.planted_bloat" in [b["name"] for b in server["bloat"]]
    assert "public.ix_planted_unused" in [i["name"] for i in server["unused_indexes"]]
    rules = by_rule(report["alerts"])
    assert any("pg_sleep" in q for q in rules["slow_query"])
    assert "public.planted_bloat" in rules["bloat"]
    assert "public.ix_planted_unused" in rules["unused_index"]
    assert server["sync"] == {"users": [], "sees_all_users": pg_role == "superuser"}
    text = invoke(None, "monitor", "--server-db", pg_url).stdout
    assert "alert unused_index: public.ix_planted_unused" in text
    assert "alert bloat: public.planted_bloat" in text


def test_the_bloat_estimate_sees_the_dead_rows_without_pgstattuple(
    pg_url: str, pg_inspect_url: str
) -> None:
    plant(pg_url, pg_inspect_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP EXTENSION IF EXISTS pgstattuple")
        bloat = {b["name"]: b for b in server_report(conn)["bloat"]}
    planted = bloat["public.planted_bloat"]
    assert planted["source"] == "estimate"
    assert planted["ratio"] > 0.7  # nine rows in ten were deleted


def test_without_pg_stat_statements_the_report_says_how_to_turn_it_on(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        report = server_report(conn)
    assert report["queries"] == {"by_total": [], "by_mean": []}
    assert "CREATE EXTENSION pg_stat_statements" in report["hints"][0]
    assert report["sync"]["users"] == []  # no duru schema here: nothing to read, no error


def stuck_device(tmp_path: Path, rows: int = 1500) -> Path:
    path = tmp_path / "stuck.sqlite"
    Database.open(path).close()
    old = now_ms() - 3 * DAY_MS
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO outbox (op_id, entity, row_id, kind, base_version, created_at)"
            " VALUES (?, 'note', ?, 'upsert', 0, ?)",
            [(f"op-{i}", f"row-{i}", old + i) for i in range(rows)],
        )
    return path


def test_monitor_says_a_device_outbox_is_stuck(tmp_path: Path) -> None:
    path = stuck_device(tmp_path)
    result = invoke(None, "monitor", "--db", str(path), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["device"]["outbox"]["depth"] == 1500
    assert report["device"]["outbox"]["oldest_age_seconds"] > 2 * 86400
    assert set(by_rule(report["alerts"])) == {"outbox_depth", "outbox_age"}
    text = invoke(None, "monitor", "--db", str(path)).stdout
    assert "alert outbox_depth: " in text
    assert "1500 changes wait to be pushed: sync is stuck" in text


def test_a_healthy_device_raises_no_alert(tmp_path: Path) -> None:
    path = tmp_path / "fine.sqlite"
    Database.open(path).close()
    report = json.loads(invoke(None, "monitor", "--db", str(path), "--json").stdout)
    assert report["alerts"] == []
    assert report["device"]["sync_cursor"] is None


def test_monitor_needs_something_to_watch(tmp_path: Path) -> None:
    result = invoke(tmp_path / "absent.sqlite", "monitor", "--json", DURU_DATABASE_URL=None)
    assert result.exit_code == 2
    assert "nothing to watch" in result.output


def test_alerts_follow_the_thresholds() -> None:
    device = {
        "path": "d",
        "pages": 10,
        "free_ratio": 0.0,
        "free_pages": 0,
        "wal_bytes": 0,
        "search_segments": {},
        "outbox": {"depth": 5, "oldest_age_seconds": 10.0},
        "unfinished_imports": [],
        "unfinished_migrations": [],
    }
    assert alerts({"device": device}, Thresholds(outbox_rows=4)) != []
    assert alerts({"device": device}, Thresholds(outbox_rows=5)) == []
    with pytest.raises(Exception, match="unknown monitor setting"):
        Thresholds.from_mapping({"nope": 1})
    assert load_thresholds(folder=Path("/nonexistent")) == Thresholds()


def test_the_package_exports_its_entry_points() -> None:
    import duru.monitor

    assert duru.monitor.__all__ == sorted(duru.monitor.__all__)
    assert set(duru.monitor.__all__) >= {"monitor", "load_thresholds", "alerts", "Thresholds"}
