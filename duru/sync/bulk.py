"""Bulk transfer: a whole device database up to the server, or down into a new device file.

``upload`` seals every row of a device database on the client and upserts it into the
server database in chunks; the first upload of a user name creates the account there.
``download`` unlocks the account and rebuilds a device database from the server rows, as
the device that uploaded them had them (``export_json`` equal after a first seed; a later
upload gives every row a new version).

    upload("notes.db", server_url=url, passphrase=pw, user="ada")
    download("copy.db", server_url=url, passphrase=pw, user="ada")

Both talk to PostgreSQL directly (``server_url`` is a PostgreSQL URL) and run their data
phase in one server transaction: a failed transfer leaves nothing half written. Upload
only adds and replaces rows; rows the device deleted stay on the server.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import Connection
from psycopg.rows import TupleRow, dict_row

from duru.bridge import EntityCodec, codec_for
from duru.crypto import AccountKeys, KdfParams
from duru.errors import (
    NotFound,
    RemoteError,
    ServerUnavailable,
    StoreError,
    SyncError,
    UsageError,
)
from duru.local.db import Database
from duru.local.sync_tables import create_sync_tables
from duru.model import ENTITIES, Entity, entity
from duru.remote.config import RemoteConfig, describe_url
from duru.remote.layout import DELETED_AT, USER_ID, server_table
from duru.remote.pool import connect
from duru.remote.schema import RESERVE_FUNCTION, apply_server_schema, read_meta

from .bulk_keys import BulkKeys
from .copy import StagedUpsert
from .device_rows import count_rows, insert_rows
from .inbox import ACCOUNT_KEY, CURSOR_KEY, RESYNC_KEY
from .sealer import EntityPlan, SealedChunk, SealerPool, SealJob, copy_columns, sealed_chunks
from .server_account import check_user_name, open_account, set_user, unlock_account
from .target import remove_database, replace_database, require_empty_file, staging_path
from .transfer import EntityTransfer, Progress, TransferReport

DEFAULT_CHUNK_ROWS = 5_000
DOWNLOAD_CHUNK_ROWS = 2_000
# Below this many rows, starting sealing processes costs more than it saves.
SEAL_IN_PROCESS_ROWS = 20_000
MAX_SEAL_WORKERS = 4


def upload(
    db_path: str | Path,
    *,
    server_url: str,
    passphrase: str,
    user: str,
    progress: Progress | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    kdf: KdfParams | None = None,
    seal_workers: int | None = None,
) -> TransferReport:
    """Seal every row of the device database at ``db_path`` and upsert it on the server.

    The first upload of ``user`` creates its account (``kdf``: the Argon2id cost, default
    ``KdfParams.moderate()``); later ones unlock it. Entities go parents first, each in
    chunks of ``chunk_rows``: binary COPY into a staging table, one upsert per chunk.
    ``seal_workers`` processes seal the rows meanwhile (0: this process does it;
    default: none for up to ``SEAL_IN_PROCESS_ROWS`` rows, else one per CPU up to
    ``MAX_SEAL_WORKERS``). The device file is only read; a commit to it during the upload
    fails the upload.

    Into an account nothing was written to yet (a first seed), rows keep the versions
    the device holds, so a download rebuilds the device as it was (``export_json``
    equal). Into an account that holds anything (an earlier upload, devices' pushes,
    tombstones), every row is a new write: it goes at a new version, and its MAC vouches
    for that version as its base. Devices that hold an older version of the row take it
    on their next pull; one that saw the row deleted takes it back (a restore of an older
    copy brings back rows deleted since); an unpushed edit to it on a device is merged
    as any edit that raced another. Newer server versions are replaced, not compared.

    Raises NotFound (no such file), WrongPassphrase, CryptoError (an
    account whose KDF cost is below the floor), BridgeError (a row that cannot cross),
    StoreError, RemoteError / ServerUnavailable. The server keeps no row of a failed
    upload (an account it created stays: the next upload unlocks it).
    """
    started = time.perf_counter()
    name = check_user_name(user)
    _check_positive("chunk_rows", chunk_rows)
    with Database.open(db_path, create=False) as db:
        version = _data_version(db)
        with db.snapshot():
            counts = [(e, count_rows(db.conn, e)) for e in ENTITIES]
        rows = sum(n for _, n in counts)
        workers = _seal_workers(seal_workers, rows)
        # The sealers' interpreters load while the account keys are derived.
        with _pool(workers) as pool, _connect(server_url) as conn:
            with _server_errors("opening the account"):
                apply_server_schema(conn)
                keys, created = open_account(conn, name, passphrase, kdf=kdf)
            with _server_errors("uploading"), conn.transaction():
                set_user(conn, keys.user_id)
                first = _reserve_change_seqs(conn, keys.user_id, rows) if rows else 0
                # Anything written to the account before (an upload, a device's push):
                # devices may hold these rows, or saw them deleted, at the versions here.
                restamp = first > 1
                job = SealJob(str(db.path), keys, chunk_rows, _plan(counts, first), restamp)
                # After the reservation: the account row is locked, so "no rows yet" holds.
                bulk = BulkKeys(conn, keys.user_id, [server_table(e) for e, n in counts if n])
                if rows:
                    bulk.begin()
                with _sealed(job, pool) as chunks:
                    lines = tuple(_upload_entity(conn, s, chunks, progress, bulk) for s in job.plan)
                bulk.check()
                if _data_version(db) != version:
                    raise StoreError(
                        f"{db.path} changed during the upload; nothing was uploaded, run it again"
                    )
    return TransferReport("upload", name, keys.user_id, created, lines, _since(started))


def download(
    db_path: str | Path,
    *,
    server_url: str,
    passphrase: str,
    user: str,
    progress: Progress | None = None,
) -> TransferReport:
    """Build the device database at ``db_path`` from ``user``'s rows on the server.

    ``db_path`` must not exist, be empty, or be a device database without rows (else
    UsageError). Rows are written without outbox entries (the server has them already),
    in one device transaction; server tombstones are not rows. Once logged in, the copy
    pulls from the start as a new device does and pushes none of those rows again.
    Raises NotFound (no such account), WrongPassphrase or CryptoError before the file is
    touched. The database is built beside ``db_path`` and moved over it only once
    complete: on any error (or a kill) an existing file is left byte for byte as it was.
    """
    started = time.perf_counter()
    name = check_user_name(user)
    path = Path(db_path)
    require_empty_file(path)
    with _connect(server_url) as conn:
        with _server_errors("opening the account"):
            _require_server_schema(conn, server_url)
            keys = unlock_account(conn, name, passphrase)
        lines = _download_into(path, conn, keys, progress)
    return TransferReport("download", name, keys.user_id, False, lines, _since(started))


# -- upload -------------------------------------------------------------------


def _plan(counts: list[tuple[Entity, int]], first_seq: int) -> tuple[EntityPlan, ...]:
    """Each entity's share of the change sequence numbers reserved for the upload."""
    plan, seq = [], first_seq
    for e, rows in counts:
        plan.append(EntityPlan(e.name, rows, seq))
        seq += rows
    return tuple(plan)


@contextmanager
def _pool(workers: int) -> Iterator[SealerPool | None]:
    if not workers:
        yield None
        return
    with SealerPool(workers) as pool:
        yield pool


@contextmanager
def _sealed(job: SealJob, pool: SealerPool | None) -> Iterator[Iterator[SealedChunk]]:
    if pool is None:
        inline = sealed_chunks(job)
        try:
            yield inline
        finally:
            inline.close()  # ends its read transaction now, not whenever it is collected
        return
    pool.start(job)
    yield pool.chunks()


def _seal_workers(requested: int | None, rows: int) -> int:
    if requested is not None:
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 0:
            raise UsageError(f"seal_workers must be 0 or more, not {requested!r}")
        return requested
    if rows <= SEAL_IN_PROCESS_ROWS:
        return 0
    return max(1, min(MAX_SEAL_WORKERS, os.cpu_count() or 1))


def _data_version(db: Database) -> int:
    """Changes whenever another connection commits to the file (SQLite's data_version)."""
    return int(db.scalar("PRAGMA data_version"))


def _check_positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{name} must be a positive integer, not {value!r}")


def _upload_entity(
    conn: Connection[Any],
    step: EntityPlan,
    chunks: Iterator[SealedChunk],
    progress: Progress | None,
    bulk: BulkKeys,
) -> EntityTransfer:
    """Write the next ``step.rows`` rows of ``chunks`` (all of ``step.entity``)."""
    started = time.perf_counter()
    e = entity(step.entity)
    _report(progress, e.name, 0, step.rows)
    done = 0
    if step.rows:
        # The account row is locked (change sequence reserved): no other writer of this
        # user can add rows, so an empty table means nothing can conflict.
        table = server_table(e)
        stage = StagedUpsert(conn, table, copy_columns(e), first_write=True)
        stage.create()
        while done < step.rows:
            chunk = next(chunks, None)
            if chunk is None or chunk.entity != e.name:
                sent = "nothing more" if chunk is None else f"{chunk.entity} rows"
                raise SyncError(f"the sealer sent {sent} while {e.name} rows were due")
            bulk.wrote(table, stage.write_copy_data(chunk.data))
            done += chunk.rows
            _report(progress, e.name, done, step.rows)
    return EntityTransfer(e.name, e.table, done, _since(started))


def _reserve_change_seqs(conn: Connection[Any], user_id: str, count: int) -> int:
    found = conn.execute(f"SELECT {RESERVE_FUNCTION}(%s, %s)", (user_id, count)).fetchone()
    if found is None or found[0] is None:
        raise RemoteError(f"the account {user_id} disappeared from the server during the upload")
    return int(found[0])


# -- download -----------------------------------------------------------------


def _require_server_schema(conn: Connection[Any], server_url: str) -> None:
    if read_meta(conn) is None:
        raise NotFound(
            f"the server database {describe_url(server_url)} has no duru schema: "
            "nothing was uploaded there"
        )
    apply_server_schema(conn)  # creates nothing here; raises SchemaMismatch for another model


def _download_into(
    path: Path, conn: Connection[Any], keys: AccountKeys, progress: Progress | None
) -> tuple[EntityTransfer, ...]:
    """Build the device database in a staging file beside ``path``, then move it over ``path``.

    Until the move ``path`` is never opened for writing, so a download that fails (or is
    killed) leaves an existing target byte for byte as it was; only the staging file goes.
    """
    staging = staging_path(path)
    remove_database(staging)
    try:
        with Database.open(staging) as db, conn.transaction(), db.transaction():
            # One server snapshot for every entity, or a concurrent upload could hand us a
            # child whose parent we read before it existed.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            set_user(conn, keys.user_id)
            # Checked at COMMIT: within an entity, rows come in key order, not tree order.
            db.conn.execute("PRAGMA defer_foreign_keys = ON")
            lines = tuple(_download_entity(conn, db, e, keys, progress) for e in ENTITIES)
            _mark_as_the_servers(db, keys.user_id)
        replace_database(staging, path)
    except BaseException:
        remove_database(staging)
        raise
    return lines


def _mark_as_the_servers(db: Database, user_id: str) -> None:
    """Make the copy a device that already holds the server's rows, once logged in.

    A pull cursor of 0 (not none): its first sync must not take the rows for rows made
    before syncing (``outbox.seed``) and push each one again as new, which made every row
    changed elsewhere since a conflict merged with no base (a conflicted copy of the
    untouched row), and brought back rows deleted since whose tombstones were purged.
    That sync is a full resync instead: it pulls everything, and drops the rows the
    server no longer has (``inbox.finish_resync``). The sync tables, so an edit made
    before logging in keeps its merge base (``Database._keep_base``). The account, so the
    copy logs in to no other one (its rows are this one's).
    """
    create_sync_tables(db.conn)
    db.set_meta(ACCOUNT_KEY, user_id)
    db.set_meta(CURSOR_KEY, "0")
    db.set_meta(RESYNC_KEY, "1")


def _download_entity(
    conn: Connection[Any], db: Database, e: Entity, keys: AccountKeys, progress: Progress | None
) -> EntityTransfer:
    started = time.perf_counter()
    codec = codec_for(e)
    select, count = _download_sql(e, codec)
    done = 0
    with _server_errors(f"downloading {e.table}"):
        total = int(conn.execute(count, (keys.user_id,)).fetchone()[0])  # type: ignore[index]
        _report(progress, e.name, 0, total)
        with conn.cursor(name=f"duru_download_{e.table}", row_factory=dict_row) as cur:
            cur.itersize = DOWNLOAD_CHUNK_ROWS
            cur.execute(select, (keys.user_id,))
            while rows := cur.fetchmany(DOWNLOAD_CHUNK_ROWS):
                insert_rows(db, e, [tuple(codec.to_local(r, keys).values()) for r in rows])
                done += len(rows)
                _report(progress, e.name, done, total)
    return EntityTransfer(e.name, e.table, done, _since(started))


def _download_sql(e: Entity, codec: EntityCodec) -> tuple[str, str]:
    live = f"FROM {e.table} WHERE {USER_ID} = %s AND {DELETED_AT} IS NULL"
    return (
        f"SELECT {', '.join(codec.columns)} {live} ORDER BY {e.key}",
        f"SELECT count(*) {live}",
    )


# -- shared -------------------------------------------------------------------


def _connect(server_url: str) -> Connection[TupleRow]:
    config = RemoteConfig.from_env(database_url=server_url)
    return connect(config, server_url, autocommit=True)


@contextmanager
def _server_errors(doing: str) -> Iterator[None]:
    """psycopg errors as duru's: ServerUnavailable (retryable) when the link broke."""
    try:
        yield
    except psycopg.OperationalError as exc:
        raise ServerUnavailable(f"{doing}: {_one_line(exc)}") from exc
    except psycopg.errors.UniqueViolation as exc:
        table = exc.diag.table_name or "a table"
        raise RemoteError(
            f"{doing}: a {table} row of this device takes the place of another row on the"
            f" server ({exc.diag.constraint_name}), one written since this copy was made (a"
            " tag removed and added again, say); nothing was uploaded"
        ) from exc
    except psycopg.Error as exc:
        raise RemoteError(f"{doing}: {_one_line(exc)}") from exc


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _report(progress: Progress | None, entity: str, done: int, total: int) -> None:
    if progress is not None:
        progress(entity, done, total)


def _since(started: float) -> float:
    return time.perf_counter() - started
