"""Seal a device database's rows into binary COPY data, in this process or in workers.

Sealing (bridge + encryption, pure Python) is where an upload spends its client time,
while its connection mostly waits for the server. For a large upload, ``SealerPool``
starts worker processes (fresh interpreters: nothing is forked, callers need no
``__main__`` guard): worker ``k`` of ``n`` reads the device file itself and seals chunks
``k, k+n, k+2n, ...`` of each entity, so the workers run on other cores, ahead of the
server, and the process holding the connection only forwards finished bytes in order.
The account keys travel to the workers over pipes between processes of the same user,
which already hold them in memory.

Every sealer reads in its own read transaction and checks each entity's row count
against the plan (the change sequence numbers reserved for the upload are exactly
enough); the caller checks that nothing committed to the file meanwhile, so all of them
saw the same rows.
"""

from __future__ import annotations

import contextlib
import pickle
import struct
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Generator, Iterator
from dataclasses import dataclass, replace
from types import TracebackType
from typing import IO, Any

from duru.bridge import codec_for
from duru.bridge.copy_rows import CopyRows
from duru.crypto import AccountKeys
from duru.errors import StoreError, SyncError
from duru.model import Entity, entity
from duru.remote.layout import CHANGE_SEQ, server_table

from .copy_format import CopyFormatter
from .device_rows import count_rows, open_readonly, read_own_chunks, read_snapshot

# A frame between the processes: its length (8 bytes, big-endian), then a pickle.
_FRAME = struct.Struct(">Q")
# Fewer, larger pipe reads for multi-megabyte chunks (Linux; best effort).
_PIPE_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class EntityPlan:
    """One entity of an upload: its row count and its first change sequence number."""

    entity: str
    rows: int
    first_seq: int


@dataclass(frozen=True, slots=True)
class SealJob:
    """What one sealer does: chunks ``worker, worker + workers, ...`` of every planned entity.

    ``restamp``: each row goes at its change sequence number as its version, and its MAC
    vouches for that as its base, instead of the device's version (see ``bulk.upload``).
    Picklable, so it can cross to a worker process.
    """

    db_path: str
    keys: AccountKeys
    chunk_rows: int
    plan: tuple[EntityPlan, ...]
    restamp: bool = False
    worker: int = 0
    workers: int = 1


@dataclass(frozen=True, slots=True)
class SealedChunk:
    """Chunk ``index`` of ``entity``: ``rows`` rows as one binary COPY stream of
    ``copy_columns(entity)``."""

    entity: str
    index: int
    rows: int
    data: bytes


def copy_columns(e: Entity) -> tuple[str, ...]:
    """The server columns a sealed row carries, in order: the bridge's, then change_seq."""
    return (*codec_for(e).columns, CHANGE_SEQ)


def chunk_count(rows: int, chunk_rows: int) -> int:
    return -(-rows // chunk_rows)


def sealed_chunks(job: SealJob) -> Generator[SealedChunk, None, None]:
    """This job's chunks of every planned entity, sealed and formatted, in order.

    Raises StoreError when the device database no longer matches the plan's counts,
    and what the bridge raises for a row that cannot cross.
    """
    conn = open_readonly(job.db_path)
    try:
        with read_snapshot(conn):
            for step in job.plan:
                yield from _entity_chunks(conn, job, step)
    finally:
        conn.close()


def _entity_chunks(conn: Any, job: SealJob, step: EntityPlan) -> Iterator[SealedChunk]:
    e = entity(step.entity)
    if count_rows(conn, e) != step.rows:
        raise StoreError(
            f"{job.db_path} changed during the upload ({e.table} no longer has {step.rows} "
            "rows); run the upload again"
        )
    fast = CopyRows.build(e, job.keys, job.keys.user_id)
    chunks = read_own_chunks(conn, e, job.chunk_rows, step.rows, job.worker, job.workers)
    at = e.field_names.index("version") if job.restamp and "version" in e.field_names else -1
    for index, batch in chunks:
        seq = step.first_seq + index * job.chunk_rows
        if at >= 0:
            batch = [(*row[:at], seq + i, *row[at + 1 :]) for i, row in enumerate(batch)]
        data = None if fast is None else fast.encode(batch, seq)
        if data is None:
            data = format_chunk(e, job.keys, batch, seq)
        yield SealedChunk(e.name, index, len(batch), data)


def format_chunk(e: Entity, keys: AccountKeys, batch: list[tuple[object, ...]], seq: int) -> bytes:
    """``batch`` through the bridge's ``to_remote`` and psycopg's dumpers: the general path
    for rows ``CopyRows`` does not cover (same bytes, apart from the random nonces)."""
    table = server_table(e)
    formatter = CopyFormatter([table.column(c).type for c in copy_columns(e)])  # type: ignore[union-attr]
    names, seal, user_id = e.field_names, codec_for(e).to_remote, keys.user_id
    rows = [
        (*seal(dict(zip(names, row, strict=True)), keys, user_id).values(), seq + i)
        for i, row in enumerate(batch)
    ]
    return formatter.format(rows)


class SealerPool:
    """``workers`` worker processes sealing one job together; chunks come back in order.

    The processes start at once and wait for the job (:meth:`start`): an upload starts
    them before it derives the account keys, so their interpreters load meanwhile. Use
    as a context manager; leaving it stops the workers. A worker's exception is raised
    from ``chunks()``, with the worker's traceback as a note.
    """

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("a sealer pool needs at least one worker")
        self.job: SealJob | None = None
        self._workers: list[_Worker] = []
        try:
            for _ in range(workers):
                self._workers.append(_Worker())
        except BaseException:
            self.close()
            raise

    def start(self, job: SealJob) -> None:
        """Hand ``job`` to the workers, worker ``k`` of ``n`` sealing chunks ``k, k+n, ...``."""
        if self.job is not None:
            raise RuntimeError("the sealer pool already has its job")
        self.job = job
        n = len(self._workers)
        for k, worker in enumerate(self._workers):
            worker.send(replace(job, worker=k, workers=n))

    def chunks(self) -> Iterator[SealedChunk]:
        """Every chunk of the job, in plan order, each from the worker that sealed it."""
        if self.job is None:
            raise RuntimeError("start the sealer pool with a job first")
        n = len(self._workers)
        for step in self.job.plan:
            for index in range(chunk_count(step.rows, self.job.chunk_rows)):
                chunk = self._workers[index % n].receive()
                if (chunk.entity, chunk.index) != (step.entity, index):
                    raise SyncError(
                        f"a sealer sent {chunk.entity} chunk {chunk.index} while {step.entity} "
                        f"chunk {index} was due"
                    )
                yield chunk

    def close(self) -> None:
        for worker in self._workers:
            worker.close()

    def __enter__(self) -> SealerPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _Worker:
    """One worker process: the job goes in on stdin, sealed chunks come out on stdout."""

    def __init__(self) -> None:
        self._errors = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            [sys.executable, "-c", f"from {__name__} import worker_main; worker_main()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._errors,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._in, self._out = self._proc.stdin, self._proc.stdout
        _widen_pipe(self._out)

    def send(self, job: SealJob) -> None:
        try:
            _write_frame(self._in, job)
            self._in.close()
        except BrokenPipeError:
            raise SyncError(
                f"a sealing process ended before its job (exit code {self._proc.wait()}): "
                + _tail(self._errors)
            ) from None

    def receive(self) -> SealedChunk:
        try:
            message = _read_frame(self._out)
        except EOFError:
            raise SyncError(
                f"a sealing process ended unexpectedly (exit code {self._proc.wait()}): "
                + _tail(self._errors)
            ) from None
        if isinstance(message, BaseException):
            raise message
        if not isinstance(message, SealedChunk):
            raise SyncError(f"a sealing process sent {type(message).__name__}, not rows")
        return message

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        with contextlib.suppress(BrokenPipeError):
            self._in.close()
        self._out.close()
        self._errors.close()


def worker_main() -> None:
    """A worker's whole life: read its job, write each chunk, or the exception."""
    out = sys.stdout.buffer
    # Anything else printing to stdout would corrupt the frames.
    sys.stdout = sys.stderr
    with contextlib.suppress(BrokenPipeError):  # the parent stopped listening
        try:
            job = _read_frame(sys.stdin.buffer)
            for chunk in sealed_chunks(job):
                _write_frame(out, chunk)
        except BaseException as exc:
            _write_frame(out, _picklable(exc))


def _write_frame(stream: IO[bytes], obj: object) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_FRAME.pack(len(data)))
    stream.write(data)
    stream.flush()


def _read_frame(stream: IO[bytes]) -> Any:
    head = stream.read(_FRAME.size)
    if len(head) < _FRAME.size:
        raise EOFError
    (size,) = _FRAME.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


def _picklable(exc: BaseException) -> BaseException:
    note = "raised in a sealing process:\n" + "".join(traceback.format_exception(exc))
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        exc = SyncError(f"a sealing process failed: {exc!r}")
    exc.add_note(note)
    return exc


def _widen_pipe(stream: IO[bytes]) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return
    setsize = getattr(fcntl, "F_SETPIPE_SZ", None)  # Linux only
    if setsize is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(stream.fileno(), setsize, _PIPE_BYTES)


def _tail(errors: IO[bytes], limit: int = 2000) -> str:
    errors.seek(0)
    text = errors.read().decode("utf-8", "replace").strip()
    return text[-limit:] or "(no output)"
