"""Sync a device database with a sync server: register, log in, sync, log out.

    register("notes.db", server="http://127.0.0.1:8787", user="ada", passphrase=pw)
    report = sync("notes.db")          # push the outbox, then pull every change
    logout("notes.db")

``register`` and ``login`` derive keys from the passphrase on this device, send only the
authentication key, and keep what later syncs need (token, master key) in the owner-only
credentials file (``duru.sync.credentials``). ``sync`` needs no passphrase. The device's
edits keep working offline: a server that cannot be reached raises SyncServerError and
leaves the outbox and the cursor as they were.
"""

from __future__ import annotations

import base64
import fcntl
import os
import shlex
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from duru.crypto import KdfParams, WrappedKey, derive_keys, new_account, unwrap_master_key
from duru.errors import (
    AlreadyExists,
    AuthFailed,
    CorruptDatabase,
    DuruError,
    RequestTooLarge,
    ResyncNeeded,
    SyncError,
    SyncServerError,
    UsageError,
)
from duru.local.db import BUSY_TIMEOUT_MS, Database
from duru.local.failures import store_failure
from duru.local.maintenance import maintain, tune_index
from duru.model import entity, new_id
from duru.remote.config import default_home

from . import credentials as creds_file
from . import inbox, outbox, snapshot
from .credentials import Credentials
from .http import SyncApi
from .protocol import MAX_RESOLUTIONS, PushEntry, PushResult
from .server_account import check_kdf_cost, check_user_name

Progress = Callable[[str, int, int], None]
DEFAULT_PUSH_CHUNK = 500
MIN_PUSH_CHUNK, MAX_PUSH_CHUNK = 50, 5_000
TAPER_FLOOR = DEFAULT_PUSH_CHUNK // 2  # the last chunks of a push shrink to this (_tapered)
PULL_PAGE = 2_000
INITIAL_PULL_PAGE = 5_000  # the server's largest page: a new device pulls everything
MERGE_AFTER_PULLED = 2_000  # a pull this big merges the index segments it left
BULK_MERGE_PAGES = 1_000  # pages per merge step then (its own short transaction)
BULK_MERGE_STEPS = 10_000  # a bound only: the merge after a 100k-note pull took 1.3 s
MAX_CHUNK_BYTES = 8 * 1024 * 1024
# One row, sealed, on the wire: more is never sent (the server takes request bodies of
# 32 MiB by default); it stays in the outbox with the rows below it (``_Held``).
MAX_ENTRY_BYTES = 24 * 1024 * 1024
# Chunks grow while a round trip takes less than this, shrink when it takes over 4x.
TARGET_SECONDS = 0.5


@dataclass
class SyncReport:
    """What one ``sync`` did."""

    pushed: int = 0
    applied: int = 0
    conflicts: int = 0
    superseded: int = 0
    pulled: int = 0
    deleted: int = 0
    conflicts_received: int = 0
    kept_local: int = 0
    waiting: int = 0
    quarantined: int = 0
    too_big: list[str] = field(default_factory=list)  # "entity row id" of rows not sent
    # "entity row id: why" of rows the server side cannot carry (not sent either)
    cannot_cross: list[str] = field(default_factory=list)
    held: int = 0  # rows left in the outbox: those, and the rows below them
    merged: int = 0
    copied: int = 0
    resynced: bool = False
    snapshot_in: int = 0  # the cursor of the snapshot this device started from (0: none)
    snapshot_out: int = 0  # the cursor of the snapshot this device uploaded (0: none)
    snapshot_note: str = ""  # why a snapshot was not used or sent, when it matters
    cursor: int = 0
    head: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def check_passphrase(passphrase: str) -> str:
    """``passphrase`` in NFC; UsageError when it is empty or only white space."""
    if not isinstance(passphrase, str) or not passphrase.strip():
        raise UsageError("the passphrase is empty or only white space")
    return unicodedata.normalize("NFC", passphrase)


def register(
    db_path: str | Path,
    *,
    server: str,
    user: str,
    passphrase: str,
    home: Path | None = None,
    kdf: KdfParams | None = None,
) -> Credentials:
    """Create the account ``user`` on ``server`` and log this device in to it.

    The account's keys are made here; the server gets the record (salt, cost, wrapped
    master key, verifier). Raises AlreadyExists when the name is taken.
    """
    name = check_user_name(user)
    phrase = check_passphrase(passphrase)
    # The device first: an account made for a device that then refuses it would keep
    # its name taken, with no device holding its keys.
    _check_device(db_path, home, name, None, new=True)
    user_id = new_id()
    keys, record = new_account(phrase, user_id, kdf)
    with SyncApi(server) as api:
        try:
            api.register(name, user_id, record)
        except AlreadyExists as exc:
            # A register run again after it made the account (its answer lost, or the
            # device logged out since) finds its own name: say how to sign in to it.
            raise AlreadyExists(
                f"{exc.message}; if the account is yours, log this device in to it:"
                f" duru login --server {shlex.quote(api.shown_url)} --user {shlex.quote(name)}"
            ) from None
        session = api.login(name, keys.auth_key)
        return _save_or_end(api, db_path, home, server, name, user_id, session, keys.master_key)


def login(
    db_path: str | Path,
    *,
    server: str,
    user: str,
    passphrase: str,
    home: Path | None = None,
) -> Credentials:
    """Log this device in to the existing account ``user`` (a second device, a new token).

    Raises AuthFailed for a wrong name or passphrase (the server does not say which),
    CryptoError when the server's KDF cost is outside duru's floor and ceiling.
    """
    name = check_user_name(user)
    phrase = check_passphrase(passphrase)
    _check_device(db_path, home, name, None)
    with SyncApi(server) as api:
        params = api.login_params(name)
        check_kdf_cost(params)
        derived = derive_keys(phrase, params)
        session = api.login(name, derived.auth_key)
        user_id = str(session["user_id"])
        try:
            info = api.account()
            _check_device(db_path, home, name, user_id)
        except (UsageError, SyncError):
            _end_session(api)
            raise
        wrapped = WrappedKey.from_bytes(base64.b64decode(info["wrapped_master_key"]))
        master = unwrap_master_key(wrapped, kek=derived.kek, user_id=user_id)
        return _save_or_end(api, db_path, home, server, name, user_id, session, master)


def logout(db_path: str | Path, *, home: Path | None = None) -> bool:
    """End the session on the server (if reachable) and forget the credentials here."""
    with Database.open(db_path, create=False) as db:
        device = _device_id(db)
    where = sync_home(home)
    try:
        saved = creds_file.load(where, device)
    except AuthFailed:
        return False
    except creds_file.UnreadableCredentials:  # no token to end: forgetting the file is all
        return creds_file.forget(where, device)
    try:
        with SyncApi(saved.server, token=saved.token) as api:
            api.logout()
    except (AuthFailed, UsageError):
        pass
    except Exception:  # noqa: BLE001 - unreachable: forgetting the token here still ends it
        pass
    return creds_file.forget(where, device)


def sync(
    db_path: str | Path,
    *,
    home: Path | None = None,
    progress: Progress | None = None,
    chunk: int = DEFAULT_PUSH_CHUNK,
    page: int = PULL_PAGE,
    api: SyncApi | None = None,
    snapshots: bool = True,
) -> SyncReport:
    """Push this device's outbox, then pull every change after its cursor.

    With ``snapshots`` (see :mod:`duru.sync.snapshot`), a device that holds nothing and
    never pulled starts from the account's encrypted snapshot when the server has one,
    and a device whose last known snapshot is far behind uploads a new one after
    syncing (a failed upload is a note in the report, not a failed sync).

    Raises AuthFailed when the device is not logged in or the session ended,
    SyncServerError when the server cannot be reached (nothing is lost: run it again).

    The full-text index's segment merges stay out of the pull's commits
    (:func:`~duru.local.maintenance.tune_index`, as in a :class:`~duru.local.DeviceStore`):
    a pulled edit then costs its own index entry only, not now and then a merge of the
    whole level. A pull of :data:`MERGE_AFTER_PULLED` rows or more (a new device's
    first) merges what it wrote before returning, in proportion to it, so search is
    quick at once; after smaller ones merging is left to the store's maintainer, or to
    the housekeeping ``duru sync`` runs after its report.
    """
    started = time.perf_counter()
    if snapshots:
        snapshot.every()  # a bad DURU_SNAPSHOT_EVERY stops the sync before it starts
    path = Path(db_path)
    db = Database.open(path, create=False)
    try:
        with _one_sync(sync_home(home), _device_id(db)):
            # Copies of the database a killed sync left (an upload's, a download's):
            # no other sync of this device runs now, so none is in use.
            for left in snapshot.scratch_files(Path(os.path.realpath(path))):
                snapshot.discard(left)
            saved = creds_file.load(sync_home(home), _device_id(db))
            keys = saved.keys()
            inbox.ensure_tables(db)
            if db.meta(inbox.ACCOUNT_KEY) is None:
                # A login killed after its credentials file and before its commit left
                # the account unrecorded: once synced with it, the device is its own.
                with db.transaction():
                    db.set_meta(inbox.ACCOUNT_KEY, saved.user_id)
            tune_index(db)
            own = api is None
            client = api or SyncApi(saved.server, token=saved.token)
            report = SyncReport()
            try:
                if snapshots and not inbox.cursor(db) and snapshot.empty_and_new(db.conn):
                    db.close()  # a snapshot takes the file's place when no one has it open
                    try:
                        _start_from_snapshot(path, client, keys, report, progress)
                    finally:
                        db = Database.open(path, create=False)
                    tune_index(db)  # a snapshot's index came with its maker's settings
                if inbox.cursor(db) is None:
                    outbox.seed(db)
                after = inbox.cursor(db) or 0
                results = _push(db, client, keys, _device_id(db), report, progress, chunk)
                if _only_own(db, results, after, report.head):
                    inbox.apply_page(db, keys, [], report.head, inbox.Applied())
                    report.cursor = report.head
                else:
                    _pull(db, client, keys, report, progress, page)
                # A merge leaves rows to push and revision outcomes to send: one more
                # round lands them, and brings back what they changed.
                if _send_resolutions(db, client) or outbox.count_pending(db) > report.held:
                    _push(db, client, keys, _device_id(db), report, progress, chunk)
                    _pull(db, client, keys, report, progress, page)
                    _send_resolutions(db, client)
                if snapshots:
                    _offer_snapshot(db, client, keys, report, progress)
            finally:
                if own:
                    client.close()
            if report.pulled >= MERGE_AFTER_PULLED:
                _merge_pulled(db)
    finally:
        db.close()
    report.seconds = time.perf_counter() - started
    return report


def _start_from_snapshot(
    path: Path, api: SyncApi, keys: Any, report: SyncReport, progress: Progress | None
) -> None:
    """Start a device that holds nothing and never pulled from the account's snapshot,
    when the server has one: downloaded and decrypted beside the database, then put in
    its place (``snapshot.install``, which checks again that the device is empty). A
    snapshot that cannot be used, or no room for it, leaves the device as it was and
    the pull that follows fetches the rows instead."""
    path = path.resolve()  # a device file reached by a link is replaced where it is
    for left in snapshot.scratch_files(path):  # from a process killed meanwhile
        snapshot.discard(left)
    into = snapshot.scratch_in(path)
    try:
        with api.snapshot() as found:
            if found is None:
                return
            size, pieces = found
            header = snapshot.fetch(
                pieces,
                keys.master_key,
                keys.user_id,
                into,
                lambda done: _report(progress, "snapshot bytes", done, max(size, done, 1)),
            )
        if snapshot.install(path, into, header):
            report.snapshot_in = header.cursor
    except AuthFailed:
        raise  # the session ended: the pull would say so too
    except SyncError as exc:
        # A download cut off, or refused (429, 410, ... from the server or a proxy before
        # it), is as good as none: the pull that follows says whether the server can be
        # reached at all. SnapshotUnusable and SyncServerError are SyncErrors.
        report.snapshot_note = f"the account's snapshot was not used: {exc.message}"
    except OSError as exc:
        report.snapshot_note = (
            f"the account's snapshot was not used: cannot write it beside {path}"
            f" ({exc.strerror or exc})"
        )
    finally:
        snapshot.discard(into)


def _offer_snapshot(
    db: Database, api: SyncApi, keys: Any, report: SyncReport, progress: Progress | None
) -> None:
    """Upload a snapshot when the newest one this device knows of is due for
    replacing (``snapshot.due``), unless the server holds a newer one; once a day, ask
    whether the one it knows of is still there (``snapshot.check_due``). Its failures
    are a note: the sync itself is done."""
    if not (snapshot.due(db, snapshot.behind(db)) or snapshot.check_due(db)):
        return
    if snapshot.not_shareable(db.conn, keys.user_id):
        # Not shareable now (rows held back as too big, an edit made during this sync):
        # no request and no note at every sync; the reason is the report's own.
        return
    made: snapshot.Made | str | None = None
    try:
        snapshot.checked(db, api.snapshot_info())
        if not snapshot.due(db, snapshot.behind(db)):
            return
        made = snapshot.make(db, keys.master_key, keys.user_id)
        if isinstance(made, str):
            report.snapshot_note = f"no snapshot uploaded: {made}"
            return
        total = made.header.size
        sent = 0

        def counted() -> Iterator[bytes]:
            nonlocal sent
            for piece in made.frames():
                sent += len(piece)
                _report(progress, "snapshot upload bytes", min(sent, total), max(total, 1))
                yield piece

        kept = api.put_snapshot(made.header.cursor, counted())
        snapshot.remember(db, kept)
        if kept == made.header.cursor:
            report.snapshot_out = kept
    except (DuruError, OSError, sqlite3.Error) as exc:
        why = exc.message if isinstance(exc, DuruError) else str(exc)
        report.snapshot_note = f"no snapshot uploaded: {why}"
        # Not again at every sync (a server from before snapshots, a full disk): after
        # as many changes again.
        with suppress(DuruError):  # a full disk: the sync is done all the same
            snapshot.remember(db, inbox.cursor(db) or 0, snapshot.TRIED_KEY)
    finally:
        if isinstance(made, snapshot.Made):
            made.discard()


def _merge_pulled(db: Database) -> None:
    """Merge the index segments a big pull left. Housekeeping, after every page and the
    cursor committed: it never waits for a lock another connection holds, and a lock or
    a full disk leaves the merging to later (the store's maintainer, or the housekeeping
    ``duru sync`` runs after its report) rather than fail a sync that is done."""
    db.conn.execute("PRAGMA busy_timeout = 0")
    try:
        maintain(db, max_steps=BULK_MERGE_STEPS, pages=BULK_MERGE_PAGES)
    except sqlite3.Error as exc:
        failure = store_failure(exc, db.path)
        if failure is None or isinstance(failure, CorruptDatabase):
            raise
    finally:
        db.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


class _Helper:
    """Runs work on a daemon thread (``submit``), one thread per piece of work, or on
    this thread (``now``), so a one-page sync starts no thread at all. On leaving, it
    waits for work still running, unless leaving on Ctrl-C: that work is a request
    (nothing here written), and waiting for it kept ``duru sync`` up to the request's
    deadline (a pool's threads are joined at exit even when not waited for)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.threads: list[threading.Thread] = []

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        done: Future[Any] = Future()
        thread = threading.Thread(
            target=self._run, args=(done, fn, *args), name=self.name, daemon=True
        )
        self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        thread.start()
        return done

    def now(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        done: Future[Any] = Future()
        self._run(done, fn, *args)
        return done

    @staticmethod
    def _run(done: Future[Any], fn: Callable[..., Any], *args: Any) -> None:
        try:
            done.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - handed over through the Future
            done.set_exception(exc)

    def __enter__(self) -> _Helper:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        if kind is None or issubclass(kind, Exception):
            for thread in self.threads:
                thread.join()


@dataclass
class _Chunk:
    sent: list[outbox.Pending]
    entries: list[PushEntry]
    pushed: dict[tuple[str, str], Any]
    size: int = 0  # the size it was sealed at (the one after it is sealed before it returns)
    taken: int = 0  # rows of the outbox it went through: sent, or held


@dataclass
class _Held:
    """The rows a push leaves in the outbox: any too big to send (over
    ``MAX_ENTRY_BYTES`` sealed, which the server would refuse on every push, and with it
    everything after it), and the rows below them, which the server could not place.
    The rest of the outbox goes, the pull runs, and the sync reports them."""

    too_big: list[str] = field(default_factory=list)
    cannot_cross: list[str] = field(default_factory=list)
    rows: set[tuple[str, str]] = field(default_factory=set)

    def holds(self, p: outbox.Pending, size: int, row: dict[str, Any] | None) -> bool:
        """Whether the row ``p`` (``row`` as sealed, None for a delete) stays here."""
        if size > MAX_ENTRY_BYTES:
            self.hold(p, too_big=True)
            return True
        return self.below(p, row)

    def below(self, p: outbox.Pending, row: dict[str, Any] | None) -> bool:
        """Whether ``row`` points at a held row (then it is held too)."""
        if row is None or not any(
            row.get(f.name) is not None and (f.references, str(row[f.name])) in self.rows
            for f in entity(p.entity).foreign_keys
        ):
            return False
        self.hold(p, too_big=False)
        return True

    def sendable(
        self, part: list[tuple[outbox.Pending, PushEntry]], rows: dict[tuple[str, str], Any]
    ) -> list[tuple[outbox.Pending, PushEntry]]:
        """``part`` less its rows below held ones (``rows``: the rows as sealed)."""
        return [(p, e) for p, e in part if not self.below(p, rows.get((p.entity, p.row_id)))]

    def refuse(self, p: outbox.Pending, why: str) -> None:
        """Hold a row that cannot cross to the server (``outbox.entries``' ``refused``):
        sent on every push it would fail every push, and every row after it."""
        self.cannot_cross.append(f"{p.entity} {p.row_id}: {why}")
        self.hold(p, too_big=False)

    def hold(self, p: outbox.Pending, *, too_big: bool) -> None:
        if too_big:
            self.too_big.append(f"{p.entity} {p.row_id}")
        self.rows.add((p.entity, p.row_id))


def _push(
    db: Database,
    api: SyncApi,
    keys: Any,
    device: str,
    report: SyncReport,
    progress: Progress | None,
    size: int,
) -> list[PushResult]:
    """Push the outbox in chunks, in order; the results. The next chunk is sealed here while the
    server applies the one before (the request runs on another thread), and it is sent
    as soon as that answer is in, before the answer is recorded here (the two chunks
    hold other rows, and the server has committed the first). Chunks grow while a
    round trip stays under ``TARGET_SECONDS`` and shrink when it takes 4x; the last ones
    taper (:func:`_tapered`)."""
    outbox.forget_sent(db)
    rows = outbox.pending(db)
    total, sealed, done = len(rows), 0, 0
    every: list[PushResult] = []
    held = _Held()
    budget = MAX_CHUNK_BYTES
    _report(progress, "push", 0, total)
    with _Helper("duru-push") as sender:
        flying: tuple[_Chunk, Any, float] | None = None
        while sealed < total or flying is not None:
            chunk = None
            if sealed < total:
                chunk = _seal_chunk(
                    db, rows[sealed : sealed + _tapered(size, total - sealed)], keys, held, budget
                )
                chunk.size = size
                sealed += chunk.taken
                if not chunk.entries:  # every row of it held
                    chunk = None
                else:
                    # Before it goes, and before the wait for the answer before it, which
                    # it spares. Should the chunk not go after all (a failure, rows held),
                    # a mark only adds an op id the server does not know to a later push.
                    outbox.mark_sent(db, chunk.sent, chunk.pushed)
            answered = None
            if flying is not None:
                prior, answer, began = flying
                try:
                    result, finished = answer.result()
                except RequestTooLarge:
                    # A server, or a proxy before it, that takes smaller bodies: the
                    # chunk goes again in halves, later ones are sealed to half its bytes.
                    budget = max(1, sum(_size(e.row) for e in prior.entries) // 2)
                    prior, result = _push_halves(api, device, prior, held)
                    finished = time.perf_counter()
                    if chunk is not None:
                        chunk = _without_held(chunk, held)
                answered = (prior, result, finished - began)
            flying = None
            if chunk is not None:
                # With nothing to overlap (no answer to record, nothing left to seal),
                # the request goes on this thread.
                alone = answered is None and sealed >= total
                send = sender.now if alone else sender.submit
                flying = (chunk, send(_timed_push, api, device, chunk), time.perf_counter())
            if answered is not None:
                prior, (results, head), took = answered
                report.head = head or report.head  # 0: every row of it held
                outbox.apply_results(db, prior.sent, results, prior.pushed)
                _count(report, results)
                every += results
                done += len(prior.sent)
                _report(progress, "push", done, total)
                # Judged by the size the answered chunk had: the one after it was sealed
                # before this answer came, maybe at a size already changed.
                if took < TARGET_SECONDS and len(prior.sent) >= prior.size:
                    size = min(MAX_PUSH_CHUNK, max(size, prior.size * 2))
                elif took > 4 * TARGET_SECONDS:
                    size = max(MIN_PUSH_CHUNK, min(size, prior.size // 2))
    report.too_big, report.held = held.too_big, len(held.rows)
    report.cannot_cross = held.cannot_cross
    if held.rows:
        _report(progress, "push", done + len(held.rows), total)
    return every


def _only_own(db: Database, results: list[PushResult], after: int, head: int) -> bool:
    """Whether the server's changes after cursor ``after`` up to ``head`` are this push's
    rows and nothing else, each applied as sent: then a pull would bring back only them,
    and the cursor moves to ``head`` without one. The numbers up to ``head`` are all
    committed (the push held the user's lock while it took its numbers; see
    ``duru.server.pull``), so if this push's versions are every number in between, no
    other change is there. Anything else (a conflict, a row the server wrote too, a
    retried op, another device's change, a resync) is pulled as ever."""
    if not results or head <= after or db.meta(inbox.RESYNC_KEY) == "1":
        return False
    if any(r.outcome != "applied" for r in results):
        return False
    return sorted(r.version for r in results) == list(range(after + 1, head + 1))


def _tapered(size: int, left: int) -> int:
    """How many of the ``left`` rows the next chunk takes: ``size``, but at most half of
    them, down to ``TAPER_FLOOR``. The server's work on the last chunk has nothing to
    overlap with: 10k new notes ended on a 3,000-row chunk, 0.3 s of a 1.5 s push.
    The floor keeps the extra requests (a round trip each, on a slow link) to two or
    three."""
    return min(size, max(TAPER_FLOOR, -(-left // 2)))


def _timed_push(api: SyncApi, device: str, chunk: _Chunk) -> tuple[Any, float]:
    """The server's answer and when it came: a round trip is timed to its answer, not to
    when this thread, busy recording the previous one, got to it."""
    return api.push(device, chunk.entries), time.perf_counter()


def _push_halves(
    api: SyncApi, device: str, chunk: _Chunk, held: _Held
) -> tuple[_Chunk, tuple[list[PushResult], int]]:
    """Send ``chunk``, refused as too large, again in halves, and each half refused in
    halves again; a row refused alone is held (``_Held``), with the rows below it.
    The chunk of what went, and its answers and head (0 when nothing went)."""
    out = _Chunk([], [], chunk.pushed, chunk.size)
    results: list[PushResult] = []
    head = 0

    def send(part: list[tuple[outbox.Pending, PushEntry]]) -> None:
        nonlocal head
        part = held.sendable(part, chunk.pushed)
        if not part:
            return
        try:
            answers, head = api.push(device, [e for _, e in part])
        except RequestTooLarge:
            if len(part) == 1:
                (p, entry), *_ = part
                if len(entry.op_ids) > 1:
                    # Alone and still too large: under a tiny body limit its older op ids
                    # (up to 64 edits between syncs) may be what does not fit, and
                    # shortening the row adds one. They only spare a write whose answer
                    # was lost a needless conflict (merged on the pull), so it goes with
                    # its newest op id alone.
                    send([(p, replace(entry, op_ids=entry.op_ids[-1:]))])
                    return
                held.hold(p, too_big=True)
                return
            send(part[: len(part) // 2])
            send(part[len(part) // 2 :])
            return
        out.sent.extend(p for p, _ in part)
        out.entries.extend(e for _, e in part)
        results.extend(answers)

    send(list(zip(chunk.sent, chunk.entries, strict=True)))
    return out, (results, head)


def _without_held(chunk: _Chunk, held: _Held) -> _Chunk | None:
    """``chunk`` less its rows below rows held since it was sealed; None if none is left."""
    kept = held.sendable(list(zip(chunk.sent, chunk.entries, strict=True)), chunk.pushed)
    if not kept:
        return None
    out = _Chunk([p for p, _ in kept], [e for _, e in kept], chunk.pushed, chunk.size)
    out.taken = chunk.taken
    return out


def _seal_chunk(
    db: Database, rows: list[outbox.Pending], keys: Any, held: _Held, budget: int
) -> _Chunk:
    chunk = _Chunk([], [], {})
    nbytes = 0
    refused: list[tuple[outbox.Pending, str]] = []

    def hold_refused() -> None:
        for p, why in refused:
            held.refuse(p, why)
            chunk.taken += 1
        refused.clear()

    for p, entry in outbox.entries(db, rows, keys, chunk.pushed, refused):
        hold_refused()  # rows before this one
        size = _size(entry.row)
        if held.holds(p, size, chunk.pushed.get((p.entity, p.row_id))):
            chunk.pushed.pop((p.entity, p.row_id), None)
            chunk.taken += 1
            continue
        nbytes += size
        if chunk.entries and nbytes > budget:
            break
        chunk.sent.append(p)
        chunk.entries.append(entry)
        chunk.taken += 1
    hold_refused()  # rows after the last one yielded
    return chunk


def _count(report: SyncReport, results: list[Any]) -> None:
    for r in results:
        if r.outcome == "conflict":
            report.conflicts += 1
        elif r.outcome == "superseded":
            report.superseded += 1
        elif r.outcome not in ("revive", "rebase"):  # sent again (after the rows it
            report.applied += 1  # needs, or sealed on the version it has)
    report.pushed += len(results)


def _pull(
    db: Database,
    api: SyncApi,
    keys: Any,
    report: SyncReport,
    progress: Progress | None,
    page: int,
) -> None:
    applied = inbox.Applied()
    after = inbox.cursor(db) or 0
    first = after
    size = INITIAL_PULL_PAGE if after == 0 else page
    # The next page is fetched on a thread (it waits on the server) while this one is
    # opened and written here. Not opened on a thread too: decrypting is Python work and
    # SQLite lets go of the GIL on every row it writes, so the two on threads take turns
    # on the GIL row by row (a page written next to a decrypting thread took ten times as
    # long). Pages and their cursors commit one by one, in order.
    with _Helper("duru-pull") as fetcher:
        coming = fetcher.now(api.changes, after, size)
        while True:
            try:
                changes, nxt, head, more = coming.result()
            except ResyncNeeded:
                if report.resynced:  # a server asking again and again: never an end
                    raise SyncServerError(
                        f"the sync server at {api.shown_url} asked for a full resync again"
                        " during one; stopped (run `duru sync` again later)"
                    ) from None
                inbox.start_resync(db)
                report.resynced = True
                after = first = 0
                size = INITIAL_PULL_PAGE
                coming = fetcher.now(api.changes, after, size)
                continue
            if more:
                coming = fetcher.submit(api.changes, nxt, size)
            inbox.apply_page(db, keys, changes, nxt, applied)
            report.pulled += len(changes)
            report.cursor, report.head, after = nxt, head, nxt
            _report(progress, "pull", nxt - first, max(head - first, 1))
            if not more:
                break
    if db.meta(inbox.RESYNC_KEY) == "1":
        report.deleted += inbox.finish_resync(db)
    report.deleted += applied.deletes
    # += : a sync that merged pulls twice, and the second pull must not hide the first's.
    report.conflicts_received += applied.conflicts
    report.kept_local += applied.kept_local
    report.waiting += applied.waiting
    report.quarantined += applied.quarantined
    report.merged += applied.merged
    report.copied += applied.copied


def _send_resolutions(db: Database, api: SyncApi) -> int:
    """Send queued revision outcomes; the number sent. They go in batches the server
    takes (``MAX_RESOLUTIONS``, halved while a body limit refuses them), and each batch
    leaves the queue once sent: a long queue never stops every later sync."""
    rows = db.rows("SELECT revision_id, status, copy_id FROM sync_resolutions ORDER BY rowid")
    sent, size = 0, MAX_RESOLUTIONS
    while sent < len(rows):
        batch = rows[sent : sent + size]
        try:
            api.resolve(
                [
                    {"id": r["revision_id"], "status": r["status"], "copy_id": r["copy_id"]}
                    for r in batch
                ]
            )
        except RequestTooLarge:
            if size == 1:
                raise
            size //= 2
            continue
        with db.transaction():
            db.conn.executemany(
                "DELETE FROM sync_resolutions WHERE revision_id = ? AND status = ?",
                [(r["revision_id"], r["status"]) for r in batch],
            )
        sent += len(batch)
    return sent


def _save_or_end(
    api: SyncApi,
    db_path: str | Path,
    home: Path | None,
    server: str,
    name: str,
    user_id: str,
    session: dict[str, Any],
    master_key: bytes,
) -> Credentials:
    """``_save`` the session just opened on ``api``; ended on the server when the device
    refuses it (another account's login won a race to it) or its credentials cannot be
    written (a full disk, a read-only folder), so no token of it is left."""
    try:
        saved, replaced = _save(
            db_path, home, server, name, user_id, str(session["token"]), master_key
        )
    except BaseException:
        _end_session(api)
        raise
    if replaced is not None:
        _end_replaced(replaced)
    return saved


REPLACED_LOGOUT_SECONDS = 5.0


def _end_replaced(old: Credentials) -> None:
    """End the session of credentials a login replaced (best effort): no device holds
    its token any more, and it stayed valid on the server until it expired. A few
    seconds at most: the old server may be gone for good (the reason to log in to
    another), and the login must not wait a request's full timeout on it."""
    try:
        with SyncApi(old.server, token=old.token, timeout=REPLACED_LOGOUT_SECONDS) as api:
            api.logout()
    except Exception:  # noqa: BLE001 - ended already, or unreachable: nothing to undo
        pass


def _save(
    db_path: str | Path,
    home: Path | None,
    server: str,
    name: str,
    user_id: str,
    token: str,
    master_key: bytes,
) -> tuple[Credentials, Credentials | None]:
    """Tie the device to the account ``user_id`` and save its credentials, checked first;
    those and the ones they replaced (another session of the account), if any.

    UsageError when the device is another account's (``_refuse_other_account``). The
    check, the account recorded in the device database and the credentials file are one
    write transaction of that database: a login of another account at the same time
    waits for it, then finds this one's and is refused. Checked apart, both passed, and
    the device could be left one account's with the other's keys and token. A refused
    login, or a file that cannot be written, leaves the database as it was.
    """
    saved = Credentials(
        server.rstrip("/"),
        name,
        user_id,
        token,
        base64.b64encode(master_key).decode("ascii"),
        str(Path(db_path).resolve()),
    )
    with Database.open(db_path) as db:
        device = _device_id(db)
        where = sync_home(home)
        with db.transaction():
            _refuse_other_account(db, db_path, where, device, name, user_id)
            inbox.ensure_tables(db)
            db.set_meta(inbox.ACCOUNT_KEY, user_id)
            try:
                before: Credentials | None = creds_file.load(where, device)
            except (AuthFailed, creds_file.UnreadableCredentials):
                before = None
            creds_file.save(where, device, saved)
    return saved, before if before is not None and before.token != token else None


def _check_device(
    db_path: str | Path, home: Path | None, name: str, user_id: str | None, *, new: bool = False
) -> None:
    """UsageError unless the device database at ``db_path`` may log in to the account
    ``name`` (``user_id``, None while not known yet); ``new``: an account being made."""
    with Database.open(db_path) as db:
        where = sync_home(home)
        _refuse_other_account(db, db_path, where, _device_id(db), name, user_id, new=new)


def _refuse_other_account(
    db: Database,
    db_path: str | Path,
    home: Path,
    device: str,
    name: str,
    user_id: str | None,
    *,
    new: bool = False,
) -> None:
    """UsageError when the device syncs, or synced, with another account than ``name``
    (``user_id``; None while not known yet; ``new``: an account being made, which is
    another one than any).

    One device database is one account: its cursor, versions and rows are that
    account's, so another account's sync would skip rows and never send these. A
    corrupt credentials file is no account (logging in replaces it); the account's user
    id stays in the database (``inbox.ACCOUNT_KEY``) after a logout.
    """
    try:
        before: Credentials | None = creds_file.load(home, device)
    except (AuthFailed, creds_file.UnreadableCredentials):
        before = None
    if before is not None:
        if new:
            other = True
        elif user_id is None:
            other = before.user != name
        else:
            other = before.user_id != user_id
        if other:
            raise UsageError(
                f"{db_path} syncs with account {before.user!r} already: use another device "
                "database for another account"
            )
    recorded = db.meta(inbox.ACCOUNT_KEY)
    # Synced before the account was recorded here: a cursor, of an account not known.
    if new and (recorded is not None or inbox.cursor(db) is not None):
        raise UsageError(
            f"{db_path} synced with another account before: use another device database "
            "for another account"
        )
    if recorded is not None and user_id is not None and recorded != user_id:
        raise UsageError(
            f"{db_path} synced with another account before (user id {recorded}): use "
            "another device database for another account"
        )


def _end_session(api: SyncApi) -> None:
    """End the session just opened, if the server answers (best effort)."""
    try:
        api.logout()
    except SyncError:
        pass


SYNC_LOCK_WAIT = 120.0


@contextmanager
def _one_sync(home: Path, device: str, wait: float = SYNC_LOCK_WAIT) -> Iterator[None]:
    """Hold this device's sync lock: two syncs of one device (a ``--watch`` and a manual
    one) take turns instead of interleaving pages and cursors. Waits up to ``wait`` s."""
    path = creds_file.credentials_path(home, device).with_suffix(".lock")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with path.open("a") as handle:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise SyncError(
                        f"another sync of this device has run for over {wait:g} s; try again",
                        retryable=True,
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def sync_home(home: Path | None = None) -> Path:
    """Where credentials live: ``home``, else $DURU_HOME, else the user data folder."""
    if home is not None:
        return home
    env = os.environ.get("DURU_HOME", "").strip()
    return Path(env).expanduser() if env else default_home()


def _device_id(db: Database) -> str:
    device = db.meta("device_id")
    if not device:
        raise UsageError(f"{db.path} has no device id (not a duru device database?)")
    return device


def _size(row: dict[str, Any] | None) -> int:
    if row is None:
        return 64
    return 64 + sum(len(v) if isinstance(v, str) else 16 for v in row.values())


def _report(progress: Progress | None, phase: str, done: int, total: int) -> None:
    if progress is not None:
        progress(phase, done, total)
