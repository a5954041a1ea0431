"""A new device database built beside its final name, then moved into place.

``duru import`` and ``duru restore`` fill a new database in one long run. Built
in place, a run killed half-way (SIGKILL, a power cut) left an empty database
under the final name: it blocked the re-run ("already exists and is not
empty") and listed as an empty store. So the run builds in a hidden file
beside the target, ``.<name>.<kind>-<random>.partial``, holds an exclusive
``flock`` on it while it runs, and gives it the final name only when the
database is complete (a hard link, which never replaces a file that appeared
meanwhile). A killed run leaves only its partial file: the next run removes
it and starts over, and :func:`unfinished` lets every command say so.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from duru.errors import NotFound, StoreError, UsageError

_SUFFIX = ".partial"
_SIDECARS = ("-wal", "-shm", "-journal")


@dataclass(frozen=True, slots=True)
class Partial:
    """A partial build found beside a target: its file, what made it, whether it still runs."""

    path: Path
    kind: str
    running: bool


def check_new_target(target: Path) -> None:
    """NotFound without a folder for ``target``; UsageError when it exists and is not empty."""
    if not target.parent.is_dir():
        raise NotFound(f"no folder {target.parent} for the new device database")
    if os.path.lexists(target) and not _empty_file(target):
        raise UsageError(f"{target} already exists and is not empty: use a new file")


@contextmanager
def staged(target: Path, kind: str) -> Iterator[Path]:
    """Yield a new empty file to build the database for ``target`` in; then put it in place.

    The caller builds the database at the yielded path and closes every
    connection to it before the block ends. Partial builds of earlier runs
    that no process holds any more are removed first. Raises as
    :func:`check_new_target`; UsageError when ``target`` appeared while the
    block ran; StoreError when the build left a write-ahead log behind. On any
    failure the partial file goes and ``target`` stays as it was.
    """
    target = Path(target)
    check_new_target(target)
    was_empty_file = os.path.lexists(target)
    for stale in partials(target):
        if not stale.running:
            _remove(stale.path)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.{kind}-", suffix=_SUFFIX, dir=target.parent)
    partial = Path(name)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released by the kernel however the process ends
        _check_own(fd, partial)
        yield partial
        _check_closed(partial)
        os.fsync(fd)
        _place(partial, target, was_empty_file)
        fsync_path(target.parent)
    finally:
        _remove(partial)
        os.close(fd)  # after SQLite closed the file: closing an fd drops its POSIX locks


def partials(target: Path) -> list[Partial]:
    """The partial builds for ``target`` in its folder, each marked running or abandoned."""
    prefix = f".{target.name}."
    found = []
    try:
        names = sorted(os.listdir(target.parent if str(target.parent) else "."))
    except OSError:
        return []
    for name in names:
        if name.startswith(prefix) and name.endswith(_SUFFIX):
            kind = name[len(prefix) :].split("-", 1)[0]
            path = target.parent / name
            found.append(Partial(path, kind, _held(path)))
    return found


def unfinished(target: Path) -> str | None:
    """Why ``target`` is not there yet, when an import or restore into it is unfinished.

    None when ``target`` exists or no partial build lies beside it.
    """
    if os.path.lexists(target) and not _empty_file(target):
        return None
    found = partials(target)
    if not found:
        return None
    running = [p for p in found if p.running]
    if running:
        return f"a {running[0].kind} into {target} is still running; wait for it to finish"
    last = found[-1]
    return (
        f"a {last.kind} into {target} did not finish (it was interrupted): run the {last.kind}"
        f" again, which starts it over (or delete {last.path} to give it up)"
    )


def _held(path: Path) -> bool:
    """True when a running build holds ``path``'s lock."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # no SQLite connection of ours is on this file: safe to close
    return False


def _check_closed(partial: Path) -> None:
    # The database is one file only once its last connection checkpointed the WAL away.
    wal = Path(f"{partial}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise StoreError(f"{partial} still has a write-ahead log: the build did not close it")


def _check_own(fd: int, partial: Path) -> None:
    # Between mkstemp and flock another run may have taken the file for abandoned.
    try:
        same = os.stat(partial).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        same = False
    if not same:
        raise StoreError(f"another run removed {partial} as it began: try again", retryable=True)


def _place(partial: Path, target: Path, was_empty_file: bool) -> None:
    """Give ``partial`` the name ``target``, never replacing a database made meanwhile."""
    if was_empty_file:
        if not _empty_file(target):
            raise _appeared(target)
        os.replace(partial, target)
        return
    try:
        os.link(partial, target)
    except FileExistsError:
        raise _appeared(target) from None
    except OSError:
        # No hard links on this file system (FAT, some shares): check, then rename.
        if os.path.lexists(target):
            raise _appeared(target) from None
        os.replace(partial, target)


def _appeared(target: Path) -> UsageError:
    return UsageError(f"{target} was made by someone else while this ran: left as it is")


def _empty_file(path: Path) -> bool:
    try:
        return path.is_file() and not path.is_symlink() and path.stat().st_size == 0
    except OSError:
        return False


def _remove(path: Path) -> None:
    for suffix in ("", *_SIDECARS):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def fsync_path(path: Path) -> None:
    """Flush a file, or a folder's entries (a rename is durable only once its folder's
    entry is on disk; POSIX: elsewhere a folder cannot be opened, and is left)."""
    if os.name != "posix" and path.is_dir():
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
