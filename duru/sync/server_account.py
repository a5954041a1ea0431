"""An account in the server database, found by user name: create it or unlock it.

For the tools that talk to PostgreSQL directly (bulk ``upload`` / ``download``). The
``accounts`` table maps a unique ``name`` to a random ``user_id`` and keeps the crypto
record (salt, KDF cost, wrapped master key, verifier); the passphrase, the keys and the
plaintext never reach the server.

The KDF cost comes from the server, which the client does not trust: a server that
lowered it would make the passphrase cheap to guess from what the client then sends or
stores, and one that raised it past reason would spin the client for ever (or exhaust its
memory). ``check_kdf_floor`` refuses any cost below ``KDF_FLOOR`` and
``check_kdf_ceiling`` any above ``KDF_CEILING``, both before deriving keys.

These tools are for operators: whoever can connect to the database as a role that may set
``duru.user_id`` can read any user's ciphertext. They still check the passphrase against
the stored verifier (``unlock_account``), and find accounts through the owner's
``duru_login_record`` function, so they work as a role that row level security binds.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row

from duru.bridge import account_record, account_row, account_user_id
from duru.crypto import (
    AccountKeys,
    AccountRecord,
    KdfParams,
    new_account,
    unlock,
    verify_auth_key,
)
from duru.errors import CryptoError, NotFound, UsageError, WrongPassphrase
from duru.model import new_id
from duru.remote.layout import ACCOUNTS
from duru.remote.schema import LOGIN_RECORD_FUNCTION, USER_SETTING

NAME_MAX_CHARS = 200


@dataclass(frozen=True, slots=True)
class KdfFloor:
    """The cheapest Argon2id cost duru accepts for an account."""

    opslimit: int
    memlimit: int

    def allows(self, params: KdfParams) -> bool:
        return params.opslimit >= self.opslimit and params.memlimit >= self.memlimit


# libsodium's INTERACTIVE cost (2 passes, 64 MiB); real accounts use MODERATE.
_INTERACTIVE = KdfParams.interactive()
KDF_FLOOR = KdfFloor(_INTERACTIVE.opslimit, _INTERACTIVE.memlimit)
# libsodium's SENSITIVE cost (4 passes, 1 GiB) at the most: a few seconds on a phone.
_SENSITIVE = KdfParams.sensitive()
KDF_CEILING = KdfFloor(_SENSITIVE.opslimit, _SENSITIVE.memlimit)


def check_user_name(name: object) -> str:
    """The user name in NFC form; UsageError when empty, too long or not plain text."""
    if not isinstance(name, str):
        raise UsageError(f"a user name is text, not {type(name).__name__}")
    out = unicodedata.normalize("NFC", name)
    if not out or out != out.strip():
        raise UsageError(f"user name {name!r} is empty or starts or ends with a space")
    if len(out) > NAME_MAX_CHARS:
        raise UsageError(f"a user name has at most {NAME_MAX_CHARS} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in out):
        raise UsageError(f"user name {name!r} holds a control or unassigned character")
    return out


def check_kdf_floor(params: KdfParams, *, floor: KdfFloor = KDF_FLOOR) -> None:
    """CryptoError unless ``params`` costs at least ``floor`` (checked before deriving keys)."""
    if floor.allows(params):
        return
    raise CryptoError(
        f"the account's key derivation cost (Argon2id opslimit {params.opslimit}, memlimit "
        f"{params.memlimit} bytes) is below duru's floor (opslimit {floor.opslimit}, memlimit "
        f"{floor.memlimit}); refusing to use the passphrase with it: a server that lowered "
        "the cost could guess the passphrase cheaply"
    )


def check_kdf_ceiling(params: KdfParams, *, ceiling: KdfFloor = KDF_CEILING) -> None:
    """CryptoError when ``params`` costs more than ``ceiling`` (checked before deriving keys)."""
    if params.opslimit <= ceiling.opslimit and params.memlimit <= ceiling.memlimit:
        return
    raise CryptoError(
        f"the account's key derivation cost (Argon2id opslimit {params.opslimit}, memlimit "
        f"{params.memlimit} bytes) is above duru's ceiling (opslimit {ceiling.opslimit}, "
        f"memlimit {ceiling.memlimit}); refusing to derive keys with it: a tampered server "
        "record could make this device spin or run out of memory"
    )


def check_kdf_cost(params: KdfParams) -> None:
    """CryptoError unless ``params`` lies between duru's floor and ceiling."""
    check_kdf_floor(params)
    check_kdf_ceiling(params)


def find_account(conn: Connection[Any], name: str) -> tuple[str, AccountRecord] | None:
    """(user id, crypto record) of the account called ``name``, or None.

    Reads through the owner's ``duru_login_record`` (row level security hides the
    accounts table until a user is set) and ``account_info``-style columns after it.
    """
    found = conn.execute(f"SELECT user_id FROM {LOGIN_RECORD_FUNCTION}(%s)", (name,)).fetchone()
    if found is None:
        return None
    user_id = str(found[0])
    with conn.transaction():
        set_user(conn, user_id)
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "SELECT user_id, salt, kdf_params, wrapped_master_key, auth_verifier"
                f" FROM {ACCOUNTS} WHERE user_id = %s",
                (user_id,),
            ).fetchone()
    if row is None:
        return None
    return account_user_id(row), account_record(row)


def unlock_account(conn: Connection[Any], name: str, passphrase: str) -> AccountKeys:
    """The keys of the account called ``name``.

    Raises NotFound when there is no such account, CryptoError when its KDF cost is
    below the floor, and WrongPassphrase when the passphrase does not unlock it.
    """
    found = find_account(conn, name)
    if found is None:
        raise NotFound(f"the server has no account named {name!r} (upload creates one)")
    return _unlock(name, passphrase, *found)


def open_account(
    conn: Connection[Any], name: str, passphrase: str, *, kdf: KdfParams | None = None
) -> tuple[AccountKeys, bool]:
    """The keys of the account called ``name``, created first when there is none.

    Returns (keys, created). A new account gets a random user id and ``kdf`` (default:
    ``KdfParams.moderate()`` with a fresh salt); creating it commits on its own. Raises
    UsageError for a ``kdf`` below the floor, and what ``unlock_account`` raises.
    """
    found = find_account(conn, name)
    if found is not None:
        return _unlock(name, passphrase, *found), False
    params = KdfParams.moderate() if kdf is None else kdf.with_fresh_salt()
    if not KDF_FLOOR.allows(params):
        raise UsageError(
            f"Argon2id opslimit {params.opslimit} / memlimit {params.memlimit} is below "
            f"duru's floor (opslimit {KDF_FLOOR.opslimit}, memlimit {KDF_FLOOR.memlimit})"
        )
    keys, record = new_account(passphrase, new_id(), params)
    if insert_account(conn, name, keys.user_id, record):
        return keys, True
    # Another client created the account between our look-up and our insert.
    return unlock_account(conn, name, passphrase), False


def set_user(conn: Connection[Any], user_id: str) -> None:
    """Scope the current transaction to ``user_id`` for row level security (SET LOCAL)."""
    conn.execute("SELECT set_config(%s, %s, true)", (USER_SETTING, user_id))


def _unlock(name: str, passphrase: str, user_id: str, record: AccountRecord) -> AccountKeys:
    check_kdf_cost(record.kdf_params)
    wrong = WrongPassphrase(
        f"wrong passphrase for user {name!r}: it does not unlock the account's master key"
    )
    try:
        keys = unlock(passphrase, record, user_id)
    except WrongPassphrase:
        raise wrong from None
    # The verifier too: a record whose wrapped key was swapped would unlock with another
    # passphrase, but the verifier is the server's own check of who this is.
    if not verify_auth_key(record.auth_verifier, keys.auth_key):
        raise wrong
    return keys


def insert_account(conn: Connection[Any], name: str, user_id: str, record: AccountRecord) -> bool:
    """Store a new account; False (nothing written) when its name or id is taken."""
    row = {"name": name, **account_row(user_id, record)}
    cols = ", ".join(row)
    marks = ", ".join(["%s"] * len(row))
    with conn.transaction():
        set_user(conn, user_id)
        created = conn.execute(
            f"INSERT INTO {ACCOUNTS} ({cols}) VALUES ({marks})"
            " ON CONFLICT DO NOTHING RETURNING user_id",
            list(row.values()),
        ).fetchone()
    return created is not None
