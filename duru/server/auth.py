"""Accounts and sessions on the server: register, log in, authenticate, log out.

The server never sees a passphrase or an encryption key. At registration the device sends
its ``AccountRecord`` (KDF parameters with salt, the master key wrapped under a key only the
passphrase gives, and an Argon2id verifier of the authentication key). To log in it asks
for the KDF parameters (``login_params``), derives the authentication key, and sends that;
the server checks it against the verifier and hands out a random bearer token, of which
it keeps only the SHA-256.

An unknown user name gets KDF parameters with a salt derived from a server secret and the
name, the same on every call, and a login for it costs one verifier check like a real
one: both answers look the same as for a real account with a wrong passphrase.

Failed logins are counted per account name and per client address in
``login_failures`` (in the database, so every server process shares them); past the
limit within the window, logins answer RateLimited until the window ends. Each attempt
is counted before its (slow) verifier check and given back when it succeeds, so guesses
sent at once cannot all pass the check before any of them is counted.

A verifier check takes up to 64 MiB and a core for a tenth of a second. At most
``VERIFY_SLOTS`` run at once in a process (the others wait their turn), and none holds a
database connection: logins sent at once neither fill the memory nor take the pool from
pushes and pulls.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import re
import secrets
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from psycopg import Connection
from psycopg.types.json import Jsonb

from duru.crypto import AccountRecord, KdfParams, make_auth_verifier, verify_auth_key
from duru.errors import AlreadyExists, AuthFailed, CryptoError, RateLimited, UsageError
from duru.remote.layout import ACCOUNTS, LOGIN_FAILURES, SESSIONS, USER_ID
from duru.remote.schema import LOGIN_RECORD_FUNCTION, NAME_SALT_FUNCTION, SESSION_USER_FUNCTION
from duru.sync.server_account import (
    KDF_FLOOR,
    check_kdf_ceiling,
    check_user_name,
    insert_account,
    set_user,
)

from .config import ServerConfig

_WRONG = "wrong user name or passphrase"


@dataclass(frozen=True)
class Session:
    token: str
    user_id: str
    expires_at: datetime


def register(
    conn: Connection[Any],
    name: str,
    user_id: str,
    record: AccountRecord,
    address: str,
    config: ServerConfig,
) -> None:
    """Create the account ``name``; AlreadyExists when the name (or id) is taken.

    Refuses (UsageError) a KDF cost below duru's floor or above its ceiling, and a
    verifier that is not an Argon2id hash. Every well-formed attempt, made or refused as
    taken, counts against the address's ``max_registrations_per_address`` (an IPv6
    address's /64's) within ``registration_window``: RateLimited past it (counting
    nothing), so one address can neither fill the database with accounts nor test names
    for being taken at speed.
    """
    name = check_user_name(name)
    if not KDF_FLOOR.allows(record.kdf_params):
        raise UsageError("the account's key derivation cost is below duru's floor")
    try:
        check_kdf_ceiling(record.kdf_params)
    except CryptoError as exc:
        raise UsageError(exc.message) from None
    _check_verifier(record.auth_verifier)
    _take_attempt(
        conn,
        {f"register:{_network(address)}": config.max_registrations_per_address},
        config.registration_window,
        "too many accounts registered from this address: try again later",
    )
    if not insert_account(conn, name, user_id, record):
        raise AlreadyExists(f"the user name {name!r} is taken")


def login_params(conn: Connection[Any], name: str) -> KdfParams:
    """The KDF parameters (with salt) to derive ``name``'s authentication key.

    For a name with no account: made-up parameters that are the same on every call.
    """
    name = check_user_name(name)
    found = _login_record(conn, name)
    if found is not None:
        kdf = dict(found[2])
        kdf["salt"] = _b64(bytes(found[1]))
        return KdfParams.from_dict(kdf)
    salt = conn.execute(f"SELECT {NAME_SALT_FUNCTION}(%s)", (name,)).fetchone()
    assert salt is not None and salt[0] is not None, "duru_secrets has no name salt key"
    return KdfParams.moderate(bytes(salt[0]))


# Verifier checks running at once in one process: more than the cores gains nothing.
VERIFY_SLOTS = max(2, os.cpu_count() or 2)
_verifying = threading.BoundedSemaphore(VERIFY_SLOTS)


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """A login counted against its limits (``begin_login``), its key not checked yet."""

    keys: tuple[str, str]  # the account's and the address's failure counters
    user_id: str | None  # None for an unknown name
    verifier: bytes


def begin_login(
    conn: Connection[Any], name: str, address: str, config: ServerConfig
) -> LoginAttempt:
    """Count the attempt against the name's and the address's limits; RateLimited past
    them. The verifier of an unknown name is a dummy at the usual cost.

    A login is ``begin_login``, ``check_login_key`` (slow: hold no connection over it),
    ``finish_login``. Each failure is recorded in its own transaction, so it counts even
    though the check raises (AuthFailed, alike for an unknown name and a wrong key).
    """
    name = check_user_name(name)
    keys = (f"account:{name}", f"address:{_network(address)}")
    limits = {keys[0]: config.max_failures_per_account, keys[1]: config.max_failures_per_address}
    _take_attempt(conn, limits, config.login_window, "too many failed logins: try again later")
    found = _login_record(conn, name)
    if found is None:
        return LoginAttempt(keys, None, _dummy_verifier())
    return LoginAttempt(keys, str(found[0]), str(found[3]).encode("ascii"))


def check_login_key(attempt: LoginAttempt, auth_key: bytes) -> str:
    """The user id when ``auth_key`` matches; AuthFailed otherwise (counted already)."""
    with _verifying:
        ok = verify_auth_key(attempt.verifier, auth_key)
    if not ok or attempt.user_id is None:
        raise AuthFailed(_WRONG)
    return attempt.user_id


def finish_login(
    conn: Connection[Any], attempt: LoginAttempt, user_id: str, config: ServerConfig
) -> Session:
    """A new session for ``user_id``, whose key matched; the attempt no longer counts."""
    keys = attempt.keys
    token = secrets.token_urlsafe(32)
    expires = datetime.now(UTC) + timedelta(seconds=config.token_ttl)
    with conn.transaction():
        conn.execute(f"DELETE FROM {LOGIN_FAILURES} WHERE key = %s", (keys[0],))
        # This attempt was counted against the address too, and did not fail.
        conn.execute(
            f"UPDATE {LOGIN_FAILURES} SET failures = failures - 1 WHERE key = %s AND failures > 0",
            (keys[1],),
        )
        set_user(conn, user_id)
        conn.execute(
            f"INSERT INTO {SESSIONS} ({USER_ID}, token_hash, expires_at) VALUES (%s, %s, %s)",
            (uuid.UUID(user_id), token_hash(token), expires),
        )
    return Session(token, user_id, expires)


def authenticate(conn: Connection[Any], token: str) -> str:
    """The user id of a live session token; AuthFailed otherwise."""
    if not token or len(token) > 200:
        raise AuthFailed("no valid session: log in again")
    found = conn.execute(f"SELECT {SESSION_USER_FUNCTION}(%s)", (token_hash(token),)).fetchone()
    if found is None or found[0] is None:
        raise AuthFailed("the session expired or was logged out: log in again")
    return str(found[0])


def logout(conn: Connection[Any], user_id: str, token: str) -> None:
    """End the session of ``token`` (and any of the user's expired ones)."""
    with conn.transaction():
        set_user(conn, user_id)
        conn.execute(
            f"DELETE FROM {SESSIONS} WHERE {USER_ID} = %s AND (token_hash = %s"
            " OR expires_at <= now())",
            (uuid.UUID(user_id), token_hash(token)),
        )


def account_info(conn: Connection[Any], user_id: str) -> dict[str, Any]:
    """What a logged-in device fetches: name, user id and the crypto record (as JSON)."""
    with conn.transaction():
        set_user(conn, user_id)
        row = conn.execute(
            f"SELECT name, salt, kdf_params, wrapped_master_key, auth_verifier FROM {ACCOUNTS}"
            f" WHERE {USER_ID} = %s",
            (uuid.UUID(user_id),),
        ).fetchone()
    if row is None:
        raise AuthFailed("the account of this session no longer exists")
    kdf = dict(row[2].obj if isinstance(row[2], Jsonb) else row[2])
    kdf["salt"] = _b64(bytes(row[1]))
    return {
        "user_id": user_id,
        "name": row[0],
        "kdf": kdf,
        "wrapped_master_key": _b64(bytes(row[3])),
    }


_VERIFIER = re.compile(
    rb"^\$argon2id\$v=19\$m=(\d{1,10}),t=(\d{1,10}),p=(\d{1,3})\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$"
)


def _check_verifier(verifier: bytes) -> None:
    """UsageError unless ``verifier`` is an Argon2id hash at most at INTERACTIVE cost.

    Every login of the account runs this hash on the server: a costlier one would let a
    client make the server spin (``verifier_cost`` caps what devices make at this).
    """
    found = _VERIFIER.match(verifier)
    if found is None:
        raise UsageError("auth_verifier must be an Argon2id hash of the authentication key")
    cap = KdfParams.interactive()
    memory_kib, passes, lanes = (int(g) for g in found.groups())
    if memory_kib * 1024 > cap.memlimit or passes > cap.opslimit or lanes != 1:
        raise UsageError(
            f"auth_verifier costs more than the server checks at login (at most "
            f"m={cap.memlimit // 1024},t={cap.opslimit},p=1)"
        )


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _login_record(conn: Connection[Any], name: str) -> tuple[Any, ...] | None:
    return conn.execute(
        f"SELECT user_id, salt, kdf_params, auth_verifier FROM {LOGIN_RECORD_FUNCTION}(%s)",
        (name,),
    ).fetchone()


def _network(address: str) -> str:
    """What logins and registrations from ``address`` count against: an IPv6 address's
    /64 (one line or host holds all of it, and can send from a new address each time),
    an IPv4 address (or an IPv4-mapped one) as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # "unknown", or what a trusted proxy named
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else ip)


def _take_attempt(conn: Connection[Any], limits: dict[str, int], window: int, refusal: str) -> None:
    """Count one attempt against each key of ``limits`` (a login: as a failure, until it
    succeeds); RateLimited (``refusal``), counting nothing, when a key is past its limit
    within ``window`` seconds.

    One statement takes each key's row lock and counts, so concurrent attempts are
    counted one after the other: at most the limit of them pass, at once or in turn.
    """
    with conn.transaction():
        rows = conn.execute(
            f"INSERT INTO {LOGIN_FAILURES} AS f (key, window_start, failures)"
            " SELECT k, now(), 1 FROM unnest(%s::text[]) AS k"
            " ON CONFLICT (key) DO UPDATE SET"
            " failures = CASE WHEN f.window_start > now() - make_interval(secs => %s)"
            " THEN f.failures + 1 ELSE 1 END,"
            " window_start = CASE WHEN f.window_start > now() - make_interval(secs => %s)"
            " THEN f.window_start ELSE now() END"
            " RETURNING key, failures, window_start",
            (list(limits), window, window),
        ).fetchall()
        for key, failures, started in rows:
            if failures > limits[key]:
                left = started + timedelta(seconds=window) - datetime.now(UTC)
                # Raised inside the transaction: it rolls back, so a refused attempt
                # does not count (nor move the window).
                raise RateLimited(refusal, retry_after=max(1, int(left.total_seconds()) + 1))


@cache
def _dummy_verifier() -> bytes:
    """A verifier at the usual cost, so an unknown name costs what a real one does."""
    params = KdfParams.interactive()
    return make_auth_verifier(
        secrets.token_bytes(32), opslimit=params.opslimit, memlimit=params.memlimit
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
