"""Benchmark: the server backfill that seals 1M plaintext note titles, duru vs a bare loop.

Run: /work/.venv/bin/python benchmarks/bench_backfill.py [--rows 1000000] [--users 1]

One embedded PostgreSQL (fsync off, unix socket; or DURU_DATABASE_URL). A version-0
server database (``notes.title`` plaintext) is filled with ``--rows`` notes (generated
server side: real titles, a placeholder ``props_enc`` the backfill never reads), expanded
(``title_enc`` column and sync trigger), and copied twice with CREATE DATABASE ...
TEMPLATE, so both contenders start from the same files:

(a) duru: ``server_run`` through the seal steps: per chunk a keyset read, sealing on the
    client, binary COPY into the staging table, ``UPDATE ... FROM`` guarded by what was
    read, ``RETURNING`` compared byte for byte, an audit row (rollback point) and the
    checkpoint of the high-water mark, all in one transaction under lock/statement
    timeouts, with adaptive chunk sizes;
(b) bare: the same read, the same sealing, COPY into a two-column staging table and a
    plain ``UPDATE ... FROM``, commit; no checks, no audit, no checkpoint. Run in lockstep:
    after each chunk of (a), from its progress callback, one chunk of (b) of the same size
    on the other copy, so both meet the same load on this shared host (the time spent in
    the callback is taken out of (a)'s).

Target: (a) costs at most 30% more time than (b) over the backfill. Also printed: p50/p95/
p99 of the time per chunk of both (same sizes), and what the rest of the run costs:
the validation pass (every ciphertext opened and compared) and the contract.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from duru.bridge import account_row
from duru.crypto import AccountKeys, KdfParams, new_account
from duru.migrate.postgres import server_run
from duru.migrate.postgres.ops import seal_target
from duru.migrate.postgres.seal import expand_sql, seal_text
from duru.migrate.postgres.session import mark_backfill
from duru.migrate.progress import ProgressEvent
from duru.migrate.server_migrations.history import schema_v0_ddl
from duru.model import new_id
from duru.remote import EmbeddedPostgres, with_database

TARGET = seal_target("notes", "title")
MIGRATION = "0001_seal_note_titles"


def build_source(admin: str, name: str, rows: int, users: int) -> list[AccountKeys]:
    """A version-0 database with ``rows`` notes over ``users`` accounts, expanded."""
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    keys = []
    with psycopg.connect(with_database(admin, name)) as conn:
        for stmt in schema_v0_ddl():
            conn.execute(stmt)
        for u in range(users):
            k, record = new_account(f"pass {u}", new_id(), KdfParams.for_tests())
            keys.append(k)
            row = account_row(k.user_id, record)
            conn.execute(
                sql.SQL("INSERT INTO accounts ({}) VALUES ({})").format(
                    sql.SQL(", ").join(map(sql.Identifier, row)),
                    sql.SQL(", ").join(sql.Placeholder() * len(row)),
                ),
                list(row.values()),
            )
            conn.execute(
                "INSERT INTO notes (user_id, id, title, note_type, is_pinned, deleted,"
                " created_at, updated_at, version, props_enc, change_seq)"
                " SELECT %s, gen_random_uuid(),"
                " 'Meeting notes ' || g || ': ' || left(md5(g::text), 8 + g %% 24),"
                " 'note', false, false, now(), now(), 0, '\\x00'::bytea, g"
                " FROM generate_series(1, %s) g",
                (k.user_id, rows // users + (1 if u < rows % users else 0)),
            )
        for stmt in expand_sql(TARGET):
            conn.execute(stmt)
        conn.execute("ANALYZE notes")
    return keys


def copy_database(admin: str, source: str, name: str) -> str:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(source)
            )
        )
    return with_database(admin, name)


def undo_expand(url: str) -> None:
    """Take the expand back out of duru's copy, so its own expand step makes it as a real run."""
    with psycopg.connect(url) as conn:
        conn.execute("DROP TRIGGER duru_sync_notes_title ON notes")
        conn.execute("DROP FUNCTION duru_sync_notes_title()")
        conn.execute("ALTER TABLE notes DROP COLUMN title_enc")
        conn.execute("ALTER TABLE notes ALTER COLUMN title SET NOT NULL")


@dataclass
class Timing:
    """Seconds of the backfill and of each chunk."""

    seconds: float = 0.0
    chunks: list[float] = field(default_factory=list)


BARE_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS bare_stage (id uuid, sealed bytea) ON COMMIT DELETE ROWS"
)


@dataclass
class Bare:
    """The bare loop, advanced one chunk at a time by duru's progress events (lockstep)."""

    conn: psycopg.Connection[Any]
    keys: dict[str, AccountKeys]
    timing: Timing = field(default_factory=Timing)
    after: dict[str, str | None] = field(default_factory=dict)

    def chunk(self, user_id: str, limit: int) -> None:
        """Seal up to ``limit`` more rows of the user: read, seal, COPY, UPDATE, commit."""
        user, conn = self.keys[user_id], self.conn
        c0 = time.perf_counter()
        after = self.after.get(user_id)
        cond, params = ("", (user_id,)) if after is None else (" AND id > %s", (user_id, after))
        rows = conn.execute(
            "SELECT id, title FROM notes WHERE user_id = %s"
            + cond
            + " AND title_enc IS NULL AND title IS NOT NULL ORDER BY id LIMIT %s",
            (*params, limit),
            binary=True,
        ).fetchall()
        if rows:
            conn.execute(BARE_STAGE)
            with conn.cursor().copy(
                "COPY bare_stage (id, sealed) FROM STDIN (FORMAT BINARY)"
            ) as cp:
                cp.set_types(["uuid", "bytea"])
                for rid, title in rows:
                    cp.write_row((rid, seal_text(TARGET, user, user_id, str(rid), title)))
            mark_backfill(conn)  # the expand's trigger would otherwise clear the plaintext
            conn.execute(
                "UPDATE notes n SET title_enc = s.sealed FROM bare_stage s"
                " WHERE n.user_id = %s AND n.id >= %s AND n.id <= %s AND n.id = s.id",
                (user_id, rows[0][0], rows[-1][0]),
            )
            self.after[user_id] = str(rows[-1][0])
        conn.commit()
        spent = time.perf_counter() - c0
        self.timing.seconds += spent
        if rows:
            self.timing.chunks.append(spent)


def run_lockstep(
    duru_url: str, bare_url: str, keys: list[AccountKeys]
) -> tuple[Timing, Timing, list[int]]:
    """duru's seal steps, each chunk followed by a bare chunk of the same size on the copy.

    Pairing every chunk keeps both under the same load at the same moment (the host is
    shared); the bare work done inside the progress callback is taken out of duru's time.
    """
    duru = Timing()
    sizes: list[int] = []
    in_bare = 0.0
    mark = 0.0
    done: dict[str, int] = {}
    with psycopg.connect(bare_url) as conn:
        bare = Bare(conn, {k.user_id: k for k in keys})

        def progress(event: ProgressEvent) -> None:
            nonlocal in_bare, mark
            if ".seal[" not in event.step:
                return
            user_id = event.step[event.step.index("[") + 1 : -1]
            now = time.perf_counter()
            if event.kind == "start":
                done[user_id] = 0
            elif event.kind == "advance":
                size = event.done - done[user_id]
                done[user_id] = event.done
                duru.chunks.append(now - mark)
                sizes.append(size)
                bare.chunk(user_id, size)
            elif event.kind == "end":
                bare.chunk(user_id, 1)  # bare's last read finds nothing left, as duru's did
                assert bare.after.get(user_id) is not None
            spent = time.perf_counter() - now
            in_bare += spent
            mark = time.perf_counter()

        last = f"{MIGRATION}/00.seal[{keys[-1].user_id}]"
        report = server_run(duru_url, keys=keys, progress=progress, stop_after=last)
        duru.seconds = sum(s.seconds for s in report.steps if ".seal[" in s.key) - in_bare
        left = conn.execute("SELECT count(*) FROM notes WHERE title_enc IS NULL").fetchone()
        assert left == (0,), left
    return duru, bare.timing, sizes


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def line(name: str, rows: int, seconds: float, chunks: list[float]) -> str:
    ms = [c * 1000 for c in chunks]
    return (
        f"{name:<6} {seconds:7.2f} s  {rows / seconds:>10,.0f} rows/s   per chunk (ms)"
        f" p50 {pct(ms, 50):7.1f}  p95 {pct(ms, 95):7.1f}  p99 {pct(ms, 99):7.1f}"
        f"  ({len(ms)} chunks)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10)
    args = parser.parse_args()
    external = os.environ.get("DURU_DATABASE_URL", "").strip()
    server = None
    if external:
        admin = external
    else:
        server = EmbeddedPostgres(
            Path(tempfile.mkdtemp(prefix="duru-bench-backfill-")) / "pg",
            cleanup_mode="delete",
            durable=False,
        )
        admin = server.start()
    tag = uuid.uuid4().hex[:8]
    names = [f"bench_backfill_{tag}_{n}" for n in ("src", "duru", "bare")]
    try:
        t0 = time.perf_counter()
        keys = build_source(admin, names[0], args.rows, args.users)
        print(
            f"source: {args.rows:,} notes of {args.users} users in {time.perf_counter() - t0:.1f}s"
        )
        duru_url = copy_database(admin, names[0], names[1])
        bare_url = copy_database(admin, names[0], names[2])
        undo_expand(duru_url)
        duru, bare, sizes = run_lockstep(duru_url, bare_url, keys)
        t1 = time.perf_counter()
        verify = server_run(duru_url, keys=keys, contract=False)
        t2 = time.perf_counter()
        final = server_run(duru_url, keys=keys)
        t3 = time.perf_counter()
        assert final.status == "done", final.render()
        checked = sum(s.seconds for s in verify.steps if ".verify[" in s.key)
        print(
            f"chunk sizes (duru's adaptive sizer; bare runs each right after duru's):"
            f" first {sizes[:6]}, median {int(statistics.median(sizes)):,}, max {max(sizes):,}"
        )
        print(line("duru", args.rows, duru.seconds, duru.chunks))
        print(line("bare", args.rows, bare.seconds, bare.chunks))
        ratio = duru.seconds / bare.seconds
        print(
            f"overhead of duru's checks, audit rows and checkpoints: {ratio - 1:+.1%}"
            f" (ratio {ratio:.2f}; target <= +30%)"
        )
        print(
            f"validation pass (open every ciphertext, compare with the plaintext): {checked:.2f} s"
            f" ({args.rows / checked:,.0f} rows/s; call {t2 - t1:.2f} s); contract (gate, refuse,"
            f" reseal, validate, NOT NULL, snapshot, drop, stamp, analyze): {t3 - t2:.2f} s"
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in names:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
