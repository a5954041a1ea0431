"""What a device keeps to sync without its passphrase, in a file only its owner can read.

One JSON file per device database, ``<home>/sync/<device id>.json``, mode 0600 in a 0700
folder: the server URL, user name and id, the session token and the account master key
(the device needs it to seal and open rows; the passphrase itself is never kept). Never in
the device database, which is backed up, exported and copied around.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from duru.crypto import AccountKeys, keys_from_master
from duru.errors import AuthFailed, CryptoError, UsageError
from duru.model.values import uuid_text


class UnreadableCredentials(UsageError):
    """A credentials file that is not what duru wrote (cut short, emptied, edited):
    logging in again replaces it, logging out removes it."""


@dataclass(frozen=True)
class Credentials:
    server: str
    user: str
    user_id: str
    token: str
    master_key: str  # base64
    device_db: str

    def keys(self) -> AccountKeys:
        return keys_from_master(self.user_id, base64.b64decode(self.master_key))


def credentials_path(home: Path, device_id: str) -> Path:
    return home / "sync" / f"{device_id}.json"


def save(home: Path, device_id: str, creds: Credentials) -> Path:
    """Write ``creds`` atomically with mode 0600 (its folder 0700); the path."""
    path = credentials_path(home, device_id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    _forget_copies(path)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(creds), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def load(home: Path, device_id: str) -> Credentials:
    """The device's credentials; AuthFailed when it never logged in (or logged out).

    Refuses (UsageError) a file that others can read or write: its key would be exposed.
    """
    path = credentials_path(home, device_id)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise AuthFailed(
            "this device database is not logged in to a sync server: run `duru register` "
            "or `duru login`"
        ) from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UsageError(f"{path} is readable by others: run `chmod 600 {path}` first")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        creds = Credentials(**data)
    except (ValueError, TypeError) as exc:
        problem: str | None = str(exc)
    else:
        problem = _problem(creds)
    if problem is not None:
        raise UnreadableCredentials(
            f"{path} is not a duru credentials file ({problem}): log in again"
        ) from None
    return creds


def _problem(creds: Credentials) -> str | None:
    """What is wrong with values read from a file (someone may have edited it); None
    when they are what ``save`` writes."""
    for f in fields(creds):
        if not isinstance(getattr(creds, f.name), str):
            return f"{f.name} is not text"
    if not creds.server.startswith(("http://", "https://")):
        return "server is not an http:// or https:// URL"
    if uuid_text(creds.user_id) is None:
        return "user_id is not a uuid"
    if not creds.token or not (creds.token.isascii() and creds.token.isprintable()):
        return "token is not printable ASCII"
    if any(ch.isspace() for ch in creds.token):
        return "token holds white space"
    try:
        keys_from_master(creds.user_id, base64.b64decode(creds.master_key, validate=True))
    except (binascii.Error, ValueError, CryptoError):
        return "master_key is not a base64 master key"
    return None


def forget(home: Path, device_id: str) -> bool:
    """Remove the device's credentials; True when there were any."""
    path = credentials_path(home, device_id)
    _forget_copies(path)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _forget_copies(path: Path) -> None:
    """Remove the temporary copies of ``path`` that processes killed while writing it
    left (``<device>.<pid>.tmp``: a token and master key no one else removes); a live
    process's, being written now, stays."""
    for tmp in path.parent.glob(f"{path.stem}.*.tmp"):
        pid = tmp.name[len(path.stem) + 1 : -len(".tmp")]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's; not a pid duru wrote
        return True
    return True
