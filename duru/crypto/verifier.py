"""The server's slow hash of an account's authentication key.

The server never stores the authentication key itself, only an Argon2id string
hash of it (``$argon2id$v=19$m=...``), which carries its own salt and cost, so
``verify_auth_key`` needs nothing else.
"""

from __future__ import annotations

import nacl.exceptions
import nacl.pwhash.argon2id as argon2id

from duru.errors import CryptoError, UsageError

from .kdf import AUTH_KEY_BYTES, KdfParams

_PREFIX = b"$argon2id$"


def verifier_cost(params: KdfParams) -> tuple[int, int]:
    """(opslimit, memlimit) for a verifier: the account's cost, capped at INTERACTIVE.

    The authentication key is already 256 bits of Argon2id output, so the server's
    hash need not be as slow as the client's; the cap keeps a login cheap for it.
    """
    return (
        min(params.opslimit, argon2id.OPSLIMIT_INTERACTIVE),
        min(params.memlimit, argon2id.MEMLIMIT_INTERACTIVE),
    )


def make_auth_verifier(auth_key: bytes, *, opslimit: int, memlimit: int) -> bytes:
    """Hash ``auth_key`` for storage on the server (an ASCII Argon2id string, as bytes)."""
    _check_auth_key(auth_key)
    try:
        return bytes(argon2id.str(auth_key, opslimit=opslimit, memlimit=memlimit))
    except (nacl.exceptions.ValueError, nacl.exceptions.RuntimeError) as exc:
        raise UsageError(f"cannot hash the authentication key: {exc}") from exc


def verify_auth_key(verifier: bytes, auth_key: bytes) -> bool:
    """True when ``auth_key`` matches ``verifier``.

    Raises ``CryptoError`` when ``verifier`` is not an Argon2id string at all (a
    corrupt row), so that is not mistaken for a wrong key.
    """
    _check_auth_key(auth_key)
    if not isinstance(verifier, bytes) or not verifier.startswith(_PREFIX):
        raise CryptoError("the stored authentication verifier is not an Argon2id hash")
    try:
        return bool(argon2id.verify(verifier, auth_key))
    except nacl.exceptions.InvalidkeyError:
        return False
    except (nacl.exceptions.ValueError, nacl.exceptions.RuntimeError) as exc:
        raise CryptoError(f"the stored authentication verifier is not valid: {exc}") from exc


def _check_auth_key(auth_key: bytes) -> None:
    if not isinstance(auth_key, bytes) or len(auth_key) != AUTH_KEY_BYTES:
        raise UsageError(f"an authentication key is {AUTH_KEY_BYTES} bytes")
