"""Passphrase -> Argon2id -> key-encryption key and authentication key.

The 64 Argon2id output bytes are split in two: the first 32 are the key-encryption
key (KEK), which wraps the account master key and never leaves the device; the last
32 are the authentication key, which the client sends at login and of which the
server stores only a slow hash (see ``duru.crypto.verifier``).
"""

from __future__ import annotations

import base64
import binascii
import os
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import nacl.exceptions
import nacl.pwhash.argon2id as argon2id

from duru.errors import CryptoError, UsageError

ALGORITHM = "argon2id13"
SALT_BYTES: int = argon2id.SALTBYTES
KEK_BYTES = 32
AUTH_KEY_BYTES = 32


@dataclass(frozen=True, slots=True)
class KdfParams:
    """How a passphrase is stretched: Argon2id cost and the user's salt.

    Stored with the account (``to_dict``) so the cost can be raised later. Build one
    with ``moderate()`` (the default for real accounts), ``interactive()``, or
    ``for_tests()`` (libsodium's minimums: fast, and useless against an attacker).
    Raises ``UsageError`` when a value is outside what libsodium accepts.
    """

    opslimit: int
    memlimit: int
    salt: bytes
    algorithm: str = ALGORITHM

    def __post_init__(self) -> None:
        if self.algorithm != ALGORITHM:
            raise UsageError(f"unknown KDF algorithm {self.algorithm!r}; expected {ALGORITHM!r}")
        if not argon2id.OPSLIMIT_MIN <= self.opslimit <= argon2id.OPSLIMIT_MAX:
            raise UsageError(f"Argon2id opslimit {self.opslimit} is out of range")
        if not argon2id.MEMLIMIT_MIN <= self.memlimit <= argon2id.MEMLIMIT_MAX:
            raise UsageError(f"Argon2id memlimit {self.memlimit} is out of range")
        if not isinstance(self.salt, bytes) or len(self.salt) != SALT_BYTES:
            raise UsageError(f"a KDF salt is {SALT_BYTES} bytes")

    @classmethod
    def moderate(cls, salt: bytes | None = None) -> KdfParams:
        """libsodium's MODERATE cost (256 MiB, 3 passes): the default for real accounts."""
        return cls(argon2id.OPSLIMIT_MODERATE, argon2id.MEMLIMIT_MODERATE, _salt(salt))

    @classmethod
    def sensitive(cls, salt: bytes | None = None) -> KdfParams:
        """libsodium's SENSITIVE cost (1 GiB, 4 passes): the most duru accepts."""
        return cls(argon2id.OPSLIMIT_SENSITIVE, argon2id.MEMLIMIT_SENSITIVE, _salt(salt))

    @classmethod
    def interactive(cls, salt: bytes | None = None) -> KdfParams:
        """libsodium's INTERACTIVE cost (64 MiB, 2 passes)."""
        return cls(argon2id.OPSLIMIT_INTERACTIVE, argon2id.MEMLIMIT_INTERACTIVE, _salt(salt))

    @classmethod
    def for_tests(cls, salt: bytes | None = None) -> KdfParams:
        """libsodium's minimum cost: for tests only, it protects nothing."""
        return cls(argon2id.OPSLIMIT_MIN, argon2id.MEMLIMIT_MIN, _salt(salt))

    def with_fresh_salt(self) -> KdfParams:
        """The same cost with a new random salt (a passphrase change uses one)."""
        return KdfParams(self.opslimit, self.memlimit, _salt(None), self.algorithm)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict; the salt is standard base64."""
        return {
            "algorithm": self.algorithm,
            "opslimit": self.opslimit,
            "memlimit": self.memlimit,
            "salt": base64.b64encode(self.salt).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KdfParams:
        """Read what ``to_dict`` wrote; raises ``CryptoError`` when it is not valid."""
        try:
            ops, mem = data["opslimit"], data["memlimit"]
            if type(ops) is not int or type(mem) is not int:
                raise TypeError("opslimit and memlimit must be integers")
            salt = base64.b64decode(data["salt"], validate=True)
            return cls(ops, mem, salt, data["algorithm"])
        except KeyError as exc:
            raise CryptoError(f"the KDF parameters lack {exc}") from exc
        except (TypeError, binascii.Error, UsageError) as exc:
            raise CryptoError(f"the KDF parameters are not valid: {exc}") from exc


@dataclass(frozen=True, slots=True, eq=False)
class DerivedKeys:
    """The two keys a passphrase yields; both are secret and kept out of the repr."""

    kek: bytes = field(repr=False)
    auth_key: bytes = field(repr=False)


def derive_keys(passphrase: str, params: KdfParams) -> DerivedKeys:
    """Stretch ``passphrase`` with Argon2id into a KEK and an authentication key.

    The passphrase is NFC-normalised before use, so the same words typed on two
    keyboards that compose accents differently give the same keys. Costs what
    ``params`` says (about a second and 256 MiB at ``moderate``). Raises
    ``UsageError`` for an empty or non-string passphrase.
    """
    secret = _passphrase_bytes(passphrase)
    try:
        out = argon2id.kdf(
            KEK_BYTES + AUTH_KEY_BYTES,
            secret,
            params.salt,
            opslimit=params.opslimit,
            memlimit=params.memlimit,
        )
    except (nacl.exceptions.RuntimeError, MemoryError) as exc:
        # libsodium fails here when it cannot allocate memlimit bytes.
        raise CryptoError(f"Argon2id could not run with these parameters: {exc}") from exc
    return DerivedKeys(kek=bytes(out[:KEK_BYTES]), auth_key=bytes(out[KEK_BYTES:]))


def _passphrase_bytes(passphrase: str) -> bytes:
    if not isinstance(passphrase, str):
        raise UsageError("a passphrase is a str")
    if not passphrase:
        raise UsageError("a passphrase cannot be empty")
    try:
        return unicodedata.normalize("NFC", passphrase).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UsageError("a passphrase must be valid Unicode text") from exc


def _salt(salt: bytes | None) -> bytes:
    return os.urandom(SALT_BYTES) if salt is None else salt
