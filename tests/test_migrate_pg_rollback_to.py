"""A server run rolled back to one of its rollback points, then resumed: to a done step's point
in the middle of the run, to a chunk inside the seal backfill, refused for rows that are no
point of the run, and, without a point, back to the start as before."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from test_migrate_pg_support import MIGRATION, User, audit_rows, columns, fast_config, make_v0
from typer.testing import CliRunner

import duru.cli.commands  # noqa: F401
from duru.cli import app
from duru.errors import NotFound, RollbackFailed, UsageError
from duru.migrate.postgres import server_rollback, server_run, server_status
from duru.migrate.postgres.ops import seal_target
from duru.migrate.postgres.seal import open_text
from duru.migrate.postgres.snapshot import snapshots
from duru.remote.schema import read_meta
from duru.schemacheck.check import check_schema

# As nonsuper these run as a BYPASSRLS role: a migration refuses one that RLS binds.
pytestmark = pytest.mark.pg_migration

TITLE = seal_target("notes", "title")


def _config() -> Any:
    return replace(fast_config(), keep_snapshots=True)


def _run(url: str, user: User) -> Any:
    return server_run(url, passphrases={user.name: user.passphrase}, config=_config())


def _layout(url: str) -> dict[str, Any]:
    """What a finished run leaves: columns, constraints, triggers, indexes, meta, snapshots."""
    with psycopg.connect(url) as conn:

        def names(query: str) -> list[str]:
            return sorted(str(r[0]) for r in conn.execute(query).fetchall())

        return {
            "columns": columns(conn, "notes"),
            "constraints": names(
                "SELECT conname FROM pg_constraint WHERE conrelid = 'notes'::regclass"
            ),
            "triggers": names("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"),
            "indexes": names("SELECT indexname FROM pg_indexes WHERE tablename = 'notes'"),
            "meta": read_meta(conn),
            "snapshots": len(snapshots(conn)),
        }


def _opened(url: str, user: User) -> dict[str, str]:
    """Every sealed title of ``user`` opened with their keys (each row's own envelope)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT id::text, title_enc FROM notes WHERE user_id = %s", (user.id,)
        ).fetchall()
    return {rid: open_text(TITLE, user.keys, user.id, rid, bytes(sealed)) for rid, sealed in rows}


def _sealed_ids(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id::text FROM notes WHERE title_enc IS NOT NULL").fetchall()
    return {str(r[0]) for r in rows}


def _live_chunks(url: str, step: str) -> list[dict[str, Any]]:
    """Chunk rows of ``step`` no rollback undid (rows between a point and its rollback event)."""
    rows = audit_rows(url)
    undone = [
        (int(r["details"]["to"]), r["id"])
        for r in rows
        if r["step"] == "run/rollback" and r["status"] == "ok" and "to" in r["details"]
    ]
    return [
        r
        for r in rows
        if r["step"] == step
        and r["kind"] == "chunk"
        and not any(lo < r["id"] < hi for lo, hi in undone)
    ]


def test_back_to_a_done_step_in_the_middle_then_resume_equals_a_run_never_rolled_back(
    pg_url: str,
) -> None:
    (alice,) = make_v0(pg_url, notes=300)
    first = _run(pg_url, alice)
    assert first.status == "done"
    finished = _layout(pg_url)
    verify = f"{MIGRATION}/00.verify[{alice.id}]"
    point = next(r for r in audit_rows(pg_url, step=verify, kind="step") if r["status"] == "ok")
    report = server_rollback(pg_url, to=point["id"])
    assert report.point is not None and report.point["id"] == point["id"]
    assert f"{MIGRATION}/01.drop-plaintext" in report.undone and report.snapshots_dropped
    assert f"rolled back to point #{point['id']}" in report.render()
    assert "\n" not in report.render() and json.dumps(report.to_json())
    # As right after the check: both columns, every title sealed and in plaintext, version 0.
    cols = _layout(pg_url)["columns"]
    assert cols["title"] is False and cols["title_enc"] is False
    assert _opened(pg_url, alice) == alice.titles
    status = server_status(pg_url)
    assert status.version == "0" and status.active is not None
    assert status.active.run_id == first.run_id and status.active.status == "paused"
    assert not audit_rows(pg_url, status="running")
    resumed = _run(pg_url, alice)
    assert (resumed.status, resumed.run_id) == ("done", first.run_id)
    assert _layout(pg_url) == finished
    assert _opened(pg_url, alice) == alice.titles
    assert check_schema(None, pg_url).ok
    keys = [s.key for s in resumed.steps]
    assert verify not in keys and f"{MIGRATION}/01.drop-plaintext" in keys


def test_back_to_a_chunk_of_the_backfill_then_resume_seals_every_row_once(pg_url: str) -> None:
    (alice,) = make_v0(pg_url, notes=400)
    assert _run(pg_url, alice).status == "done"
    seal = f"{MIGRATION}/00.seal[{alice.id}]"
    chunks = _live_chunks(pg_url, seal)
    assert len(chunks) > 3 and sum(c["rows"] for c in chunks) == 400
    point = chunks[2]
    hwm = point["details"]["point"]["hwm"][0]
    report = server_rollback(pg_url, to=point["id"])
    assert report.point == {"id": point["id"], "step": seal, "hwm": [hwm]}
    # Rows up to the chunk keep their ciphertext; those after it are plaintext only again.
    ordered = sorted(alice.titles)
    upto = {i for i in ordered if i <= hwm}
    assert len(upto) == sum(c["rows"] for c in chunks[:3])
    assert _sealed_ids(pg_url) == upto
    with psycopg.connect(pg_url) as conn:
        found = conn.execute(
            "SELECT state, rows, placed, chunks, hwm FROM duru_migration_progress WHERE step = %s",
            (seal,),
        ).fetchone()
        later = conn.execute(
            "SELECT count(*) FROM duru_migration_progress WHERE step LIKE %s",
            (f"{MIGRATION}/00.verify%",),
        ).fetchone()
    assert found == ("running", len(upto), len(upto), 3, [hwm]) and later == (0,)
    assert "title_enc" in columns_of(pg_url) and "title" in columns_of(pg_url)
    resumed = _run(pg_url, alice)
    assert resumed.status == "done"
    live = _live_chunks(pg_url, seal)
    assert live[:3] == chunks[:3] and sum(c["rows"] for c in live) == 400
    assert sum(c["details"]["placed"] for c in live) == 400  # each row sealed exactly once
    hwms = [c["details"]["point"]["hwm"] for c in live]
    assert hwms == sorted(hwms) and len({h[0] for h in hwms}) == len(hwms)
    assert hwms[2] == [hwm] and hwms[3][0] > hwm
    closing = [r for r in audit_rows(pg_url, step=seal, kind="step") if r["status"] == "ok"]
    assert closing[-1]["details"]["sealed"] == 400 and closing[-1]["details"]["resumed_from"]
    assert _opened(pg_url, alice) == alice.titles
    assert "title" not in columns_of(pg_url) and check_schema(None, pg_url).ok


def columns_of(url: str) -> dict[str, bool]:
    with psycopg.connect(url) as conn:
        return columns(conn, "notes")


def test_a_row_that_is_no_point_of_the_last_run_is_refused_and_nothing_changes(
    pg_url: str,
) -> None:
    (alice,) = make_v0(pg_url, notes=60)
    gate = f"{MIGRATION}/01.gate"
    paused = server_run(
        pg_url, passphrases={"alice": alice.passphrase}, config=_config(), stop_after=gate
    )
    assert paused.status == "paused"
    before, layout = audit_rows(pg_url), _layout(pg_url)
    event = next(r for r in before if r["kind"] == "event")
    with pytest.raises(NotFound, match="no audit row 999999"):
        server_rollback(pg_url, to=999_999)
    with pytest.raises(UsageError, match="is not a rollback point"):
        server_rollback(pg_url, to=event["id"])
    assert audit_rows(pg_url) == before and _layout(pg_url) == layout
    assert server_status(pg_url).active is not None
    # A point undone by an earlier rollback is no longer one to return to.
    seal = f"{MIGRATION}/00.seal[{alice.id}]"
    first, second = _live_chunks(pg_url, seal)[:2]
    server_rollback(pg_url, to=first["id"])
    before, layout = audit_rows(pg_url), _layout(pg_url)
    with pytest.raises(NotFound, match="undone by an earlier rollback"):
        server_rollback(pg_url, to=second["id"])
    assert audit_rows(pg_url) == before and _layout(pg_url) == layout
    assert _run(pg_url, alice).status == "done"
    assert _opened(pg_url, alice) == alice.titles


def test_without_a_point_the_run_still_goes_back_to_its_start(pg_url: str) -> None:
    (alice,) = make_v0(pg_url, notes=80)
    gate = f"{MIGRATION}/01.gate"
    server_run(pg_url, passphrases={"alice": alice.passphrase}, config=_config(), stop_after=gate)
    report = server_rollback(pg_url)
    assert report.point is None and report.to_json()["point"] is None
    assert "rolled back to its start" in report.render()
    cols = columns_of(pg_url)
    assert "title_enc" not in cols and cols["title"] is True
    status = server_status(pg_url)
    assert status.version == "0" and status.active is None
    assert status.last_run is not None and status.last_run.status == "rolled_back"
    with psycopg.connect(pg_url) as conn:
        left = conn.execute("SELECT count(*) FROM duru_migration_progress").fetchone()
        titles = dict(conn.execute("SELECT id::text, title FROM notes").fetchall())
    assert left == (0,) and titles == alice.titles
    # A point of that rolled-back run is no point of the last run once a new one began.
    old = next(r for r in audit_rows(pg_url, step=f"{MIGRATION}/00.expand", status="ok"))
    server_run(pg_url, passphrases={"alice": alice.passphrase}, config=_config(), stop_after=gate)
    with pytest.raises(NotFound, match="is not in the last run"):
        server_rollback(pg_url, to=old["id"])


def test_a_finished_run_without_snapshots_returns_to_a_point_after_its_contract(
    pg_url: str,
) -> None:
    (alice,) = make_v0(pg_url, notes=50)
    server_run(pg_url, passphrases={"alice": alice.passphrase}, config=fast_config())
    analyze = next(r for r in audit_rows(pg_url, step="run/analyze", status="ok"))
    report = server_rollback(pg_url, to=analyze["id"])
    assert report.unchanged == ("run/report", "run/checkpoint", "run/drop-snapshots")
    assert not report.undone
    assert server_status(pg_url).active is not None
    before = audit_rows(pg_url)
    verify = f"{MIGRATION}/00.verify[{alice.id}]"
    point = next(r for r in audit_rows(pg_url, step=verify, kind="step", status="ok"))
    with pytest.raises(RollbackFailed, match="dropped its snapshots"):
        server_rollback(pg_url, to=point["id"])
    assert audit_rows(pg_url) == before  # refused before anything was undone
    assert server_run(pg_url, passphrases={"alice": alice.passphrase}).status == "done"
    assert _opened(pg_url, alice) == alice.titles


def test_the_cli_rolls_a_server_back_to_a_point(pg_url: str) -> None:
    (alice,) = make_v0(pg_url, notes=60)
    verify = f"{MIGRATION}/00.verify[{alice.id}]"
    server_run(pg_url, passphrases={"alice": alice.passphrase}, config=_config(), stop_after=verify)
    expand = next(r for r in audit_rows(pg_url, step=f"{MIGRATION}/00.expand", status="ok"))
    result = CliRunner().invoke(
        app, ["migrate", "rollback", "--server", pg_url, "--to", str(expand["id"]), "--json"]
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["point"]["id"] == expand["id"]
    assert shown["undone"] == [] and f"{MIGRATION}/00.seal[{alice.id}]" in shown["unchanged"]
    assert _sealed_ids(pg_url) == set()  # the sealed rows were not done at that point
    assert _run(pg_url, alice).status == "done"
    assert _opened(pg_url, alice) == alice.titles
