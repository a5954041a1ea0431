"""Benchmark: duru upload of a 100k-note device database against two references.

Run: /work/.venv/bin/python benchmarks/bench_upload.py [--notes 100000] [--repeats 3]

In one run, on one embedded PostgreSQL (fsync off, unix socket), each repeat into a
fresh database, the three in interleaved rounds so drift and neighbours' load hit all
alike:

(a) duru: ``duru.sync.upload`` into an empty server database: read the device file,
    bridge and seal every row, binary COPY into a staging table, one upsert per chunk
    (account creation with the default Argon2id cost and schema creation included);
(b) bare: the same rows sealed beforehand (outside the timing), then the same server path
    as duru's (``StagedUpsert`` for a first write, which COPYs straight into the table
    when nothing can conflict, and ``BulkKeys``, the foreign keys checked once per key)
    with psycopg's ``write_row``: the server work duru cannot avoid;
(c) pgloader: ``/usr/bin/pgloader`` loading the same tables as plaintext from the
    SQLite file with its default mapping (creates tables, loads, then indexes and keys).

Targets: (a) >= 0.5x (b) in rows/s over the rows phase, and (a) faster than (c) over
the whole call. Also printed: p50/p95/p99 of the time per chunk of (a) and (b).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from duru.bridge import account_row, codec_for
from duru.crypto import KdfParams, new_account
from duru.model import ENTITIES, new_id
from duru.remote import EmbeddedPostgres, with_database
from duru.remote.layout import server_table
from duru.remote.schema import RESERVE_FUNCTION, apply_server_schema
from duru.sync import DEFAULT_CHUNK_ROWS, upload
from duru.sync.bulk_keys import BulkKeys
from duru.sync.copy import StagedUpsert
from duru.sync.device_rows import count_rows, open_readonly, read_chunks, read_snapshot
from duru.sync.sealer import copy_columns

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_device import device_db  # noqa: E402

PASSPHRASE = "bench passphrase"
PGLOADER = "/usr/bin/pgloader"
Rows = list[tuple[object, ...]]


@dataclass
class Run:
    """One timed load: rows, whole-call seconds, rows-phase seconds, per-chunk seconds."""

    rows: int
    seconds: float
    rows_seconds: float
    chunks: list[float] = field(default_factory=list)
    client_cpu: float = 0.0  # this process and its children (sealers, pgloader)
    server_cpu: float = 0.0  # every PostgreSQL process of the embedded server

    @property
    def rate(self) -> float:
        return self.rows / self.seconds

    @property
    def rows_rate(self) -> float:
        return self.rows / self.rows_seconds


# -- (a) duru ----------------------------------------------------------------------


def run_duru(device: Path, url: str) -> Run:
    stamps: list[float] = []
    started = time.perf_counter()
    report = upload(
        device,
        server_url=url,
        passphrase=PASSPHRASE,
        user="bench",
        progress=lambda entity, done, total: stamps.append(time.perf_counter()),
    )
    seconds = time.perf_counter() - started
    check_counts(device, url)
    return Run(report.rows, seconds, report.transfer_seconds, _gaps(stamps))


def _gaps(stamps: list[float]) -> list[float]:
    return [b - a for a, b in zip(stamps, stamps[1:], strict=False) if b > a]


# -- (b) bare: rows sealed beforehand, written by duru's server path ------------------------


@dataclass
class Sealed:
    """Every device row sealed once, in upload order, with its change sequence number."""

    user_id: str
    account: dict[str, object]
    by_entity: list[tuple[str, list[Rows]]]


def seal_everything(device: Path, chunk_rows: int) -> Sealed:
    user_id = new_id()
    keys, record = new_account(PASSPHRASE, user_id, KdfParams.interactive())
    conn = open_readonly(device)
    out: list[tuple[str, list[Rows]]] = []
    seq = 1
    with read_snapshot(conn):
        for e in ENTITIES:
            codec, names, chunks = codec_for(e), e.field_names, []
            for batch in read_chunks(conn, e, chunk_rows, count_rows(conn, e)):
                rows = []
                for row in batch:
                    remote = codec.to_remote(dict(zip(names, row, strict=True)), keys, user_id)
                    rows.append((*remote.values(), seq))
                    seq += 1
                chunks.append(rows)
            out.append((e.name, chunks))
    conn.close()
    return Sealed(user_id, account_row(user_id, record), out)


def run_bare(sealed: Sealed, url: str) -> Run:
    chunk_times: list[float] = []
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        apply_server_schema(conn)
        row = {"name": "bench", **sealed.account}
        conn.execute(
            f"INSERT INTO accounts ({', '.join(row)}) VALUES ({', '.join(['%s'] * len(row))})",
            list(row.values()),
        )
        rows_started = time.perf_counter()
        total = sum(len(c) for _, chunks in sealed.by_entity for c in chunks)
        with conn.transaction():
            conn.execute("SELECT set_config('duru.user_id', %s, true)", (sealed.user_id,))
            conn.execute(f"SELECT {RESERVE_FUNCTION}(%s, %s)", (sealed.user_id, total))
            loaded = [
                server_table(next(x for x in ENTITIES if x.name == name))
                for name, chunks in sealed.by_entity
                if chunks
            ]
            bulk = BulkKeys(conn, sealed.user_id, loaded)
            bulk.begin()
            for name, chunks in sealed.by_entity:
                if not chunks:
                    continue
                e = next(x for x in ENTITIES if x.name == name)
                table = server_table(e)
                stage = StagedUpsert(conn, table, copy_columns(e), first_write=True)
                stage.create()
                for chunk in chunks:
                    t = time.perf_counter()
                    bulk.wrote(table, stage.write(chunk))
                    chunk_times.append(time.perf_counter() - t)
            bulk.check()
        end = time.perf_counter()
    return Run(total, end - started, end - rows_started, chunk_times)


# -- (c) pgloader ------------------------------------------------------------------------


def run_pgloader(device: Path, url: str, socket_dir: Path, port: str, dbname: str) -> Run:
    tables = ", ".join(f"'{e.table}'" for e in ENTITIES)
    target = f"postgresql://postgres@unix:{socket_dir}:{port}/{dbname}"
    with tempfile.TemporaryDirectory(prefix="duru-pgloader-") as work:
        command = Path(work) / "load.pgl"
        command.write_text(
            f"LOAD DATABASE\n  FROM sqlite://{device}\n  INTO {target}\n"
            "  WITH include drop, create tables, create indexes, reset sequences,"
            " prefetch rows = 10000\n"
            f"  INCLUDING ONLY TABLE NAMES LIKE {tables};\n"
        )
        started = time.perf_counter()
        done = subprocess.run(
            [PGLOADER, "--root-dir", work, str(command)],
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"pgloader failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    rows = check_counts(device, url)
    return Run(rows, seconds, seconds)


# -- shared --------------------------------------------------------------------------------


def client_cpu() -> float:
    """CPU seconds of this process and its waited-for children (sealers, pgloader)."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def server_cpu(pgdata: Path) -> float:
    """CPU seconds of the server: the postmaster, its live processes and the exited ones."""
    pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(proc.name) == pid:
            total += sum(int(x) for x in fields[11:15]) / tick  # utime stime cutime cstime
        elif int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def check_counts(device: Path, url: str) -> int:
    """The rows on the server, which must be every device row of every entity."""
    conn = open_readonly(device)
    want = {e.table: count_rows(conn, e) for e in ENTITIES}
    conn.close()
    count = "SELECT count(*) FROM {}"
    with psycopg.connect(url) as pg:
        got = {
            t: pg.execute(sql.SQL(count).format(sql.Identifier(t))).fetchone()[0]  # type: ignore[index]
            for t in want
        }
    if got != want:
        raise SystemExit(f"row counts differ: device {want}, server {got}")
    return sum(want.values())


def fresh_database(admin_url: str) -> tuple[str, str]:
    name = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_database(admin_url, name), name


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))] * 1000

    return f"p50 {at(0.50):8.1f} ms  p95 {at(0.95):8.1f} ms  p99 {at(0.99):8.1f} ms"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not os.access(PGLOADER, os.X_OK):
        raise SystemExit(f"{PGLOADER} is not installed")

    device = device_db(args.notes)
    pgdata = Path(tempfile.mkdtemp(prefix="duru-bench-pg-", dir="/tmp")) / "pg"
    server = EmbeddedPostgres(pgdata, cleanup_mode="delete", durable=False)
    admin = server.start()
    try:
        params = psycopg.conninfo.conninfo_to_dict(admin)
        socket_dir, port = Path(str(params["host"])), str(params.get("port") or 5432)
        print(f"device: {device} ({device.stat().st_size / 1e6:.0f} MB)")
        print(f"server: embedded PostgreSQL, fsync off, socket {socket_dir}")
        t = time.perf_counter()
        sealed = seal_everything(device, DEFAULT_CHUNK_ROWS)
        print(f"(b) sealed every row beforehand in {time.perf_counter() - t:.1f} s (not timed)")

        runs: dict[str, list[Run]] = {"duru": [], "bare": [], "pgloader": []}
        loads: dict[str, Callable[[str, str], Run]] = {
            "duru": lambda url, name: run_duru(device, url),
            "bare": lambda url, name: run_bare(sealed, url),
            "pgloader": lambda url, name: run_pgloader(device, url, socket_dir, port, name),
        }
        for repeat in range(args.repeats):
            for label, load in loads.items():
                url, name = fresh_database(admin)
                cpu = client_cpu(), server_cpu(pgdata)
                try:
                    run = load(url, name)
                    run.client_cpu = client_cpu() - cpu[0]
                    run.server_cpu = server_cpu(pgdata) - cpu[1]
                finally:
                    drop_database(admin, name)
                runs[label].append(run)
                print(
                    f"  round {repeat + 1} {label:9} {run.rows} rows in {run.seconds:7.2f} s"
                    f" = {run.rate:9.0f} rows/s (rows phase {run.rows_rate:9.0f} rows/s)"
                    f"  cpu: client {run.client_cpu:6.1f} s, server {run.server_cpu:6.1f} s"
                )
        report(runs)
    finally:
        server.stop()
        shutil.rmtree(pgdata.parent, ignore_errors=True)


def report(runs: dict[str, list[Run]]) -> None:
    def med(label: str, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in runs[label])

    duru_rows, bare_rows = med("duru", "rows_rate"), med("bare", "rows_rate")
    duru_call, loader_call = med("duru", "rate"), med("pgloader", "rate")
    print("\nmedians over the rounds (rows/s)")
    print(f"  (a) duru upload      call {duru_call:9.0f}   rows phase {duru_rows:9.0f}")
    print(f"  (b) bare, pre-sealed call {med('bare', 'rate'):9.0f}   rows phase {bare_rows:9.0f}")
    print(f"  (c) pgloader         call {loader_call:9.0f}")
    print("medians of CPU seconds per load (context: the machine is shared)")
    for label in runs:
        print(
            f"  {label:9} client {med(label, 'client_cpu'):6.1f}"
            f"  server {med(label, 'server_cpu'):6.1f}"
        )
    for label in ("duru", "bare"):
        chunks = [c for r in runs[label] for c in r.chunks]
        print(f"  time per chunk of {DEFAULT_CHUNK_ROWS} rows, {label:5}: {percentiles(chunks)}")
    ratio_bare = duru_rows / bare_rows
    ratio_loader = duru_call / loader_call
    # The rounds ran back to back, so each round's ratios compare loads under the same
    # neighbours: their spread shows how much of a difference is noise.
    paired = zip(runs["duru"], runs["bare"], runs["pgloader"], strict=True)
    for i, (a, b, c) in enumerate(paired, 1):
        ab, ac = a.rows_rate / b.rows_rate, a.rate / c.rate
        print(f"  round {i}: (a)/(b) {ab:.2f}x  (a)/(c) {ac:.2f}x")
    print(
        f"\n(a)/(b) rows phase = {ratio_bare:.2f}x  (target >= 0.50x)  {verdict(ratio_bare >= 0.5)}"
    )
    print(
        f"(a)/(c) whole call = {ratio_loader:.2f}x  (target > 1.00x: faster than pgloader)"
        f"  {verdict(ratio_loader > 1.0)}"
    )
    # Context for (c): the server-side work alone, with sealing taken away entirely.
    print(f"(b)/(c) whole call = {med('bare', 'rate') / loader_call:.2f}x  (no target)")


if __name__ == "__main__":
    main()
