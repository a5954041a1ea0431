"""The flagship server migration: notes.title plaintext (the crisis era) -> title_enc, sealed on
the client side. Expand, a chunked and resumable client-side backfill, every value opened and
compared, contract; clients of both releases between expand and contract; a killed run
resuming from its last committed chunk; rollback from the snapshot, automatic and asked for."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from test_migrate_pg_support import (
    MIGRATION,
    NOTES,
    User,
    audit_rows,
    columns,
    fast_config,
    holding,
    insert,
    make_v0,
    open_titles,
    plaintext_note,
)

from duru.bridge import codec_for
from duru.errors import MigrationError, RollbackFailed
from duru.migrate.lint import lint_paths, lint_source
from duru.migrate.postgres import (
    server_history,
    server_plan,
    server_rollback,
    server_run,
    server_status,
)
from duru.migrate.postgres.ops import seal_target
from duru.migrate.postgres.seal import open_text, seal_text
from duru.migrate.postgres.snapshot import snapshots
from duru.migrate.server_migrations import SERVER_MIGRATIONS
from duru.model import complete_row, new_id, now_ms
from duru.remote.schema import SERVER_SCHEMA_VERSION, apply_server_schema, read_meta
from duru.schemacheck.check import check_schema

# As nonsuper these run as a BYPASSRLS role: a migration refuses one that RLS binds.
pytestmark = pytest.mark.pg_migration

TITLE = seal_target("notes", "title")
MACS = "0002_row_macs"
SNAPSHOTS = "0003_snapshots"
SEAL_DIR = Path(__file__).resolve().parents[1] / "duru" / "migrate" / "server_migrations"


def _passphrases(*users: User) -> dict[str, str]:
    return {u.name: u.passphrase for u in users}


def _titles_in_plaintext(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return {str(i): t for i, t in conn.execute("SELECT id, title FROM notes")}


def test_sealing_moves_every_title_off_plaintext_and_the_server_matches_the_model(
    pg_url: str,
) -> None:
    alice, bob = make_v0(pg_url, ("alice", "bob"), notes=150)
    before = server_status(pg_url)
    assert (before.version, before.pending) == ("0", (MIGRATION, MACS, SNAPSHOTS))
    report = server_run(pg_url, passphrases=_passphrases(alice, bob), config=fast_config())
    assert report.status == "done"
    for user in (alice, bob):
        assert open_titles(pg_url, user) == user.titles
    assert check_schema(None, pg_url).ok
    with psycopg.connect(pg_url) as conn:
        assert apply_server_schema(conn) is False  # meta says: made by this build
        assert "title" not in columns(conn, "notes") and columns(conn, "notes")["title_enc"]
        assert not snapshots(conn)
        # No title is left in plaintext anywhere: not in any row of any table.
        tables = [r[0] for r in conn.execute("SELECT relname FROM pg_stat_user_tables")]
        for table in tables:
            for title in list(alice.titles.values())[:3]:
                found = conn.execute(
                    f'SELECT count(*) FROM "{table}" t WHERE t::text LIKE %s', (f"%{title}%",)
                ).fetchone()
                assert found == (0,), (table, title)
    after = server_status(pg_url)
    assert (after.version, after.pending) == (str(SERVER_SCHEMA_VERSION), ())
    assert after.last_run is not None and after.last_run.status == "done"


def test_the_audit_trail_has_the_device_shape_and_a_point_per_chunk(pg_url: str) -> None:
    (alice,) = make_v0(pg_url, notes=260)
    report = server_run(pg_url, passphrases=_passphrases(alice), config=fast_config())
    rows = server_history(pg_url, report.run_id)
    assert rows and {r.status for r in rows} == {"ok"}
    for r in rows:
        assert r.run_id == report.run_id and r.ended_at is not None and r.ended_at >= r.started_at
    seal = f"{MIGRATION}/00.seal[{alice.id}]"
    chunks = [r for r in rows if r.step == seal and r.kind == "chunk"]
    assert sum(r.rows for r in chunks) == 260 and len(chunks) > 2
    hwms = [r.point["hwm"] for r in chunks if r.point]
    assert len(hwms) == len(chunks) and hwms == sorted(hwms)
    phases = {r.step: r.phase for r in rows if r.kind == "step"}
    assert phases[f"{MIGRATION}/00.expand"] == "bridge" and phases[seal] == "migrate"
    assert phases[f"{MIGRATION}/01.drop-plaintext"] == "cleanup"


def test_the_plan_shows_each_phase_and_every_shipped_migration_lints_clean(pg_url: str) -> None:
    (alice,) = make_v0(pg_url, notes=5)
    plan = server_plan(pg_url, keys=[alice.keys])
    text = plan.render()
    assert f"server schema 0 -> {SERVER_SCHEMA_VERSION}" in text
    assert "phase 2 bridge" in text and "phase 4 cleanup" in text
    # The same kind words as a device plan's (test_migrate_runner).
    kinds = {s["kind"] for s in plan.to_json()["steps"]}
    assert kinds == {"transaction", "outside", "chunked"}
    for m in SERVER_MIGRATIONS.migrations:
        script = plan.script()
        report = lint_source(script, Path(f"server/{m.id}.sql"), dialect="postgres")
        report.raise_for_errors()
        suppressed = [f for f in report.findings if f.suppressed]
        assert [f.rule for f in suppressed] == ["DURU207"]
        assert "contract step" in (suppressed[0].suppression_reason or "")
    assert not lint_paths([SEAL_DIR]).findings  # the migrations' own files: nothing to say


def _new_client_title(conn: psycopg.Connection[Any], user: User, note_id: str) -> str:
    """A client of the new release: reads title_enc; while it is not sealed yet, the plaintext."""
    sealed, plain = conn.execute(
        "SELECT title_enc, title FROM notes WHERE id = %s", (note_id,)
    ).fetchone() or (None, None)
    if sealed is None:
        return str(plain)
    return open_text(TITLE, user.keys, user.id, note_id, bytes(sealed))


def test_old_and_new_clients_both_work_between_expand_and_contract(pg_url: str) -> None:
    (alice,) = make_v0(pg_url, notes=100)
    paused = server_run(
        pg_url, passphrases=_passphrases(alice), config=fast_config(), contract=False
    )
    assert paused.status == "paused" and "contract waits" in (paused.reason or "")
    a, d = list(alice.titles)[:2]
    c = new_id()
    with psycopg.connect(pg_url) as conn:
        # A client of the previous release edits and creates notes in plaintext ...
        conn.execute("UPDATE notes SET title = 'edited by an old client' WHERE id = %s", (a,))
        old_row = plaintext_note(alice, "made by an old client", 500)
        insert(conn, "notes", old_row)
        b = str(old_row["id"])
        # ... a client of the new release seals its writes and never sends plaintext.
        local = complete_row(NOTES, {"id": c, "title": "made by a new client"}, now_ms())
        new_row = codec_for(NOTES).to_remote(local, alice.keys, alice.id)
        del new_row["row_mac"]  # the release of schema 1 made no row MACs yet
        insert(conn, "notes", {**new_row, "change_seq": 501})
        sealed = seal_text(TITLE, alice.keys, alice.id, d, "edited by a new client")
        conn.execute("UPDATE notes SET title_enc = %s WHERE id = %s", (sealed, d))
        conn.commit()
        # Each reads what the other wrote (the old client sees no stale plaintext: none).
        old_reads = dict(
            conn.execute(
                "SELECT id::text, title FROM notes WHERE id IN (%s, %s, %s)", (a, b, d)
            ).fetchall()
        )
        assert old_reads == {a: "edited by an old client", b: "made by an old client", d: None}
        assert _new_client_title(conn, alice, a) == "edited by an old client"
        assert _new_client_title(conn, alice, b) == "made by an old client"
        assert _new_client_title(conn, alice, c) == "made by a new client"
        assert _new_client_title(conn, alice, d) == "edited by a new client"
    done = server_run(pg_url, passphrases=_passphrases(alice), config=fast_config())
    assert done.status == "done"
    alice.titles.update({a: "edited by an old client", d: "edited by a new client"})
    alice.titles[c] = "made by a new client"
    assert open_titles(pg_url, alice) == alice.titles


def test_rows_of_users_without_keys_hold_the_contract_until_a_run_has_them(pg_url: str) -> None:
    alice, bob = make_v0(pg_url, ("alice", "bob"), notes=60)
    first = server_run(pg_url, passphrases=_passphrases(alice), config=fast_config())
    assert first.status == "paused"
    assert "of 1 user(s) are still plaintext" in (first.reason or "") and bob.id in (
        first.reason or ""
    )
    assert "title" in columns_of(pg_url)  # nothing dropped while bob's rows wait
    second = server_run(pg_url, passphrases=_passphrases(bob), config=fast_config())
    # Sealed; but alice's rows still need row MACs, made with her keys (migration 0002).
    assert second.status == "paused" and second.run_id == first.run_id
    assert "have no MAC" in (second.reason or "") and alice.id in (second.reason or "")
    third = server_run(pg_url, passphrases=_passphrases(alice), config=fast_config())
    assert third.status == "done" and third.run_id == first.run_id
    assert open_titles(pg_url, alice) == alice.titles and open_titles(pg_url, bob) == bob.titles


def columns_of(url: str) -> dict[str, bool]:
    with psycopg.connect(url) as conn:
        return columns(conn, "notes")


def _corrupt_quietly(conn: psycopg.Connection[Any]) -> None:
    """Damage stored ciphertexts as a disk or a bug would, not as a client: no sync trigger."""
    conn.execute("SELECT set_config('duru.migration_backfill', 'on', true)")


def test_tampered_ciphertexts_past_the_error_budget_roll_the_run_back(pg_url: str) -> None:
    (alice,) = make_v0(pg_url, notes=300)
    seal = f"{MIGRATION}/00.seal[{alice.id}]"
    paused = server_run(
        pg_url, passphrases=_passphrases(alice), config=fast_config(), stop_after=seal
    )
    assert paused.status == "paused"
    with psycopg.connect(pg_url) as conn:  # ciphertexts moved to other rows: they must not open
        _corrupt_quietly(conn)
        conn.execute(
            "WITH pick AS (SELECT id, lead(title_enc) OVER (ORDER BY id) AS other FROM notes"
            " ORDER BY id LIMIT 20) UPDATE notes n SET title_enc = p.other FROM pick p"
            " WHERE n.id = p.id AND p.other IS NOT NULL"
        )
    with pytest.raises(MigrationError, match="rolled back to its start"):
        server_run(pg_url, passphrases=_passphrases(alice), config=fast_config())
    cols = columns_of(pg_url)
    assert "title_enc" not in cols and cols["title"] is True  # the version-0 layout again
    assert _titles_in_plaintext(pg_url) == alice.titles
    status = server_status(pg_url)
    assert status.version == "0" and status.last_run is not None
    assert status.last_run.status == "rolled_back"
    assert any(r["step"] == "run/rollback" for r in audit_rows(pg_url))
    assert not audit_rows(pg_url, status="running")  # the stopped step's row was closed


def test_a_few_bad_ciphertexts_within_the_budget_are_sealed_again(pg_url: str) -> None:
    (alice,) = make_v0(pg_url, notes=200)
    config = fast_config(max_failed_ratio=0.02)
    seal = f"{MIGRATION}/00.seal[{alice.id}]"
    server_run(pg_url, passphrases=_passphrases(alice), config=config, stop_after=seal)
    victim = sorted(alice.titles)[7]
    with psycopg.connect(pg_url) as conn:
        _corrupt_quietly(conn)
        conn.execute(
            "UPDATE notes SET title_enc = (SELECT title_enc FROM notes WHERE id <> %s LIMIT 1)"
            " WHERE id = %s",
            (victim, victim),
        )
    assert server_run(pg_url, passphrases=_passphrases(alice), config=config).status == "done"
    assert open_titles(pg_url, alice) == alice.titles
    flagged = [r for r in audit_rows(pg_url, kind="chunk") if r["details"].get("unopened")]
    assert flagged[0]["details"]["unopened"] == [victim]


_CHILD = """
import sys, time
from duru.migrate.postgres import server_run
from test_migrate_pg_support import fast_config
server_run(sys.argv[1], passphrases={"alice": "alice passphrase"},
           config=fast_config(max_chunk=50), progress=lambda event: time.sleep(0.03))
"""


def _chunks(url: str, step: str) -> list[dict[str, Any]]:
    try:
        return audit_rows(url, step=step, kind="chunk")
    except psycopg.errors.UndefinedTable:
        return []


def _wait_for_no_runner(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(200):
            left = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'duru-migrate'"
                " AND datname = current_database()"
            ).fetchone()
            if left == (0,):
                return
            time.sleep(0.05)
    raise AssertionError("a killed runner's session is still there")


def test_a_killed_backfill_resumes_from_its_last_committed_chunk(pg_url: str) -> None:
    (alice,) = make_v0(pg_url, notes=1500)
    seal = f"{MIGRATION}/00.seal[{alice.id}]"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    for _ in range(3):
        seen = len(_chunks(pg_url, seal))
        child = subprocess.Popen([sys.executable, "-c", _CHILD, pg_url], env=env)
        try:
            deadline = time.monotonic() + 60
            while len(_chunks(pg_url, seal)) < seen + 4:
                assert child.poll() is None, "the run ended before it could be killed"
                assert time.monotonic() < deadline
                time.sleep(0.02)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        _wait_for_no_runner(pg_url)
    report = server_run(pg_url, passphrases=_passphrases(alice), config=fast_config(max_chunk=50))
    assert report.status == "done"
    assert open_titles(pg_url, alice) == alice.titles
    chunks = _chunks(pg_url, seal)
    assert sum(r["rows"] for r in chunks) == 1500  # every row once: none lost, none doubled
    hwms = [r["details"]["point"]["hwm"] for r in chunks]
    assert hwms == sorted(hwms) and len(set(map(tuple, hwms))) == len(hwms)
    interrupted = audit_rows(pg_url, step=seal, status="interrupted")
    assert len(interrupted) >= 3 and all("resumed_by" in r["details"] for r in interrupted)
    assert len({r["run_id"] for r in audit_rows(pg_url)}) == 1  # one run, resumed
    assert not audit_rows(pg_url, status="running")  # every killed step's row was closed


def test_a_finished_run_kept_with_its_snapshots_rolls_back_to_plaintext(pg_url: str) -> None:
    (alice,) = make_v0(pg_url, notes=120)
    config = replace(fast_config(), keep_snapshots=True)
    assert server_run(pg_url, passphrases=_passphrases(alice), config=config).status == "done"
    report = server_rollback(pg_url)
    assert f"{MIGRATION}/01.drop-plaintext" in report.undone and report.snapshots_dropped
    cols = columns_of(pg_url)
    assert "title_enc" not in cols and cols["title"] is True
    assert _titles_in_plaintext(pg_url) == alice.titles
    with psycopg.connect(pg_url) as conn:
        meta = read_meta(conn) or {}
        assert (meta["schema_version"], meta["model_fingerprint"]) == ("0", "crisis-era")
        assert not snapshots(conn)
        triggers = conn.execute("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'duru_%'")
        assert triggers.fetchone() == (0,)
    # And forward again, as a new run.
    assert server_run(pg_url, passphrases=_passphrases(alice), config=config).status == "done"
    assert open_titles(pg_url, alice) == alice.titles


def test_a_run_that_dropped_its_snapshots_refuses_to_roll_back(pg_url: str) -> None:
    (alice,) = make_v0(pg_url, notes=30)
    server_run(pg_url, passphrases=_passphrases(alice), config=fast_config())
    with pytest.raises(RollbackFailed, match="dropped its snapshots"):
        server_rollback(pg_url)
    assert open_titles(pg_url, alice) == alice.titles  # nothing was undone


def test_rollback_refuses_to_lose_rows_only_new_clients_wrote(pg_url: str) -> None:
    (alice,) = make_v0(pg_url, notes=40)
    server_run(pg_url, passphrases=_passphrases(alice), config=fast_config(), contract=False)
    c = new_id()
    with psycopg.connect(pg_url) as conn:
        local = complete_row(NOTES, {"id": c, "title": "sealed only"}, now_ms())
        row = codec_for(NOTES).to_remote(local, alice.keys, alice.id)
        del row["row_mac"]  # the release of schema 1 made no row MACs yet
        insert(conn, "notes", {**row, "change_seq": 99})
    with pytest.raises(RollbackFailed, match="exist only in title_enc"):
        server_rollback(pg_url)
    assert "title_enc" in columns_of(pg_url)
    # Forward still works: the failed rollback left the run resumable.
    assert (
        server_run(pg_url, passphrases=_passphrases(alice), config=fast_config()).status == "done"
    )
    alice.titles[c] = "sealed only"
    assert open_titles(pg_url, alice) == alice.titles


# -- the plaintext leaves the data files ---------------------------------------------------


def _database_files(conn: psycopg.Connection[Any]) -> list[Path]:
    """Every file of this database under the server's data directory (relations, TOAST,
    indexes, catalogs such as pg_statistic)."""
    data = Path(str(conn.execute("SHOW data_directory").fetchone()[0]))  # type: ignore[index]
    folder = conn.execute("SELECT pg_relation_filepath('notes')").fetchone()[0]  # type: ignore[index]
    if not data.is_dir():
        pytest.skip(f"the server's data directory {data} is not on this machine")
    return [p for p in (data / str(folder)).parent.iterdir() if p.is_file()]


def _files_holding(inspect_url: str, needles: list[bytes]) -> dict[str, list[bytes]]:
    """After a CHECKPOINT (what the server keeps in memory reaches disk): file -> needles in it.

    Reads the server's files as the superuser (``pg_inspect_url``): only it may CHECKPOINT
    and see the data directory.
    """
    with psycopg.connect(inspect_url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        found: dict[str, list[bytes]] = {}
        for path in _database_files(conn):
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                # Removed between the listing and the read (pg_internal.init after a
                # catalog change, a dropped relation's file): no file keeps it any more.
                continue
            hits = [n[:24] for n in needles if n in data]
            if hits:
                node = path.name.split("_")[0].split(".")[0]
                name = conn.execute(
                    "SELECT pg_filenode_relation(0, %s::oid)::text", (node,)
                ).fetchone()
                found[f"{path.name} ({name[0] if name else '?'})"] = hits
    return found


def _hostile_titles(url: str, user: User) -> list[str]:
    """Titles a hostile test needs: CJK and emoji, a value repeated enough to be a most common
    value in the planner's statistics, and one too big for a row (TOAST, kept uncompressed since
    random CJK does not compress)."""
    rng = random.Random(11)
    big = "".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(6000))
    titles = ["東京の会議 🎉 秘密の議題", "中文标题 🔐 机密", big] + ["会議メモ 🎉 繰り返し"] * 40
    with psycopg.connect(url) as conn:
        for n, title in enumerate(titles):
            insert(conn, "notes", plaintext_note(user, title, 10_000 + n))
    return titles


def _needles(titles: list[str]) -> list[bytes]:
    # A TOASTed value is cut into chunks of about 2 kB: a 600-byte piece fits within one.
    return sorted({t.encode()[:600] for t in titles})


def test_sealing_leaves_no_old_title_in_the_database_files_also_after_vacuum(
    pg_url: str, pg_inspect_url: str, pg_role: str
) -> None:
    (alice,) = make_v0(pg_url, notes=150)
    _hostile_titles(pg_url, alice)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ANALYZE notes")  # as a live server has: titles in pg_statistic
    needles = _needles(list(alice.titles.values()))
    assert _files_holding(pg_inspect_url, needles)  # the check sees plaintext where there is some
    report = server_run(pg_url, passphrases=_passphrases(alice), config=fast_config())
    assert report.status == "done"
    assert open_titles(pg_url, alice) == alice.titles
    assert _left_in_files(pg_inspect_url, needles, pg_role) == {}
    # The plan showed the rewrite, its lock and how long; the report what it cannot reach.
    plan = report.plan.render()
    rewrite = next(line for line in plan.splitlines() if "01.rewrite" in line)
    assert "VACUUM FULL" in rewrite and "ACCESS EXCLUSIVE lock on notes" in rewrite
    assert "MB now" in rewrite and "statement_timeout" in rewrite
    assert any("WAL" in n and "backups" in n and "replicas" in n for n in report.notices)
    assert "still hold the old plaintext" in report.render()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("VACUUM notes")
    assert _left_in_files(pg_inspect_url, needles, pg_role) == {}
    details = audit_rows(pg_url, step="run/checkpoint")[-1]["details"]
    if pg_role == "superuser":
        assert details["checkpoint"] == "done"
        assert details["pg_statistic"]["statistics"] == "rewritten"
    else:  # the run goes on, and its audit says what this role could not do
        assert details["checkpoint"] == "refused" and "pg_checkpoint" in details["why"]
        assert details["pg_statistic"]["statistics"] == "not rewritten"
        assert "VACUUM FULL pg_catalog.pg_statistic" in details["pg_statistic"]["why"]


def _left_in_files(inspect_url: str, needles: list[bytes], pg_role: str) -> dict[str, list[bytes]]:
    """Files still holding a needle, but for pg_statistic's when the run could not rewrite it.

    A role without superuser or MAINTAIN on pg_statistic leaves the planner statistics of the
    dropped columns in that catalog's files (the run's audit says so); every table file of the
    database must be clean all the same.
    """
    found = _files_holding(inspect_url, needles)
    if pg_role == "superuser":
        return found
    return {f: hits for f, hits in found.items() if "(pg_statistic)" not in f}


_REWRITE_CHILD = """
import sys
from duru.migrate.postgres import server_run
from test_migrate_pg_support import fast_config
server_run(sys.argv[1], passphrases={"alice": "alice passphrase"}, config=fast_config())
"""


def test_a_rewrite_killed_while_it_waits_is_safe_to_run_again(
    pg_url: str, pg_inspect_url: str, pg_role: str
) -> None:
    (alice,) = make_v0(pg_url, notes=80)
    _hostile_titles(pg_url, alice)
    needles = _needles(list(alice.titles.values()))
    drop = f"{MIGRATION}/01.drop-plaintext"
    paused = server_run(
        pg_url, passphrases=_passphrases(alice), config=fast_config(), stop_after=drop
    )
    assert paused.status == "paused"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ANALYZE")  # as autovacuum would: the snapshot's titles in pg_statistic
    assert _files_holding(pg_inspect_url, needles)  # dropped, and still on disk
    rewrite = f"{MIGRATION}/01.rewrite"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    # A reader holds notes: the rewrite's lock waits time out and retry until it is killed.
    with holding(pg_url, "SELECT count(*) FROM notes", 30):
        child = subprocess.Popen([sys.executable, "-c", _REWRITE_CHILD, pg_url], env=env)
        try:
            deadline = time.monotonic() + 30
            while len(audit_rows(pg_url, step=rewrite, status="failed")) < 2:
                assert child.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        _wait_for_no_runner(pg_url)
    assert _files_holding(pg_inspect_url, needles)  # killed before it could rewrite
    report = server_run(pg_url, passphrases=_passphrases(alice), config=fast_config())
    assert report.status == "done" and rewrite in [s.key for s in report.steps]
    assert _left_in_files(pg_inspect_url, needles, pg_role) == {}
    assert open_titles(pg_url, alice) == alice.titles
    assert audit_rows(pg_url, step=rewrite, status="interrupted")
    # Run a finished rewrite again (as a run killed right after VACUUM FULL committed would).
    from duru.migrate.postgres.audit import Where
    from duru.migrate.postgres.rewrite import rewrite_table
    from duru.migrate.postgres.safe_ddl import SafeDDL
    from duru.migrate.postgres.steps import PgContext

    with psycopg.connect(pg_url) as conn:
        ctx = PgContext(conn, SafeDDL(conn, fast_config().ddl), "again", fast_config())
        again = rewrite_table(ctx, Where("t", "cleanup", rewrite), "notes")
    assert again["attempts"] == 1 and open_titles(pg_url, alice) == alice.titles
