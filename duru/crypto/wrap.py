"""The account master key, wrapped under the key-encryption key for the server.

Layout of ``WrappedKey.to_bytes()`` (73 bytes):

    version (1 byte, = 1) | nonce (24 bytes) | XChaCha20-Poly1305(master key) + tag (48 bytes)

The associated data is ``b"duru/amk/v1\\x00" + user_id`` (UTF-8), so a wrapped key
copied to another account does not unwrap there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import nacl.exceptions
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)

from duru.errors import MalformedEnvelope, UnknownEnvelopeVersion, UsageError, WrongPassphrase

from .kdf import KEK_BYTES

WRAP_VERSION = 1
MASTER_KEY_BYTES = 32
_NONCE_BYTES = 24
_TAG_BYTES = 16
WRAPPED_KEY_BYTES = 1 + _NONCE_BYTES + MASTER_KEY_BYTES + _TAG_BYTES
_AD_PREFIX = b"duru/amk/v1\x00"


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A master key sealed under a KEK; safe to store on the server."""

    nonce: bytes
    ciphertext: bytes
    version: int = WRAP_VERSION

    def __post_init__(self) -> None:
        if len(self.nonce) != _NONCE_BYTES or len(self.ciphertext) != MASTER_KEY_BYTES + _TAG_BYTES:
            raise MalformedEnvelope(
                "a wrapped master key has a 24-byte nonce and 48 bytes after it"
            )

    def to_bytes(self) -> bytes:
        """The stored form (see the module docstring for the layout)."""
        return bytes([self.version]) + self.nonce + self.ciphertext

    @classmethod
    def from_bytes(cls, data: bytes) -> WrappedKey:
        """Parse the stored form.

        Raises ``UnknownEnvelopeVersion`` for a version this build cannot read and
        ``MalformedEnvelope`` when the length is wrong.
        """
        if data and data[0] != WRAP_VERSION:
            raise UnknownEnvelopeVersion(f"wrapped master key has unknown version {data[0]}")
        if len(data) != WRAPPED_KEY_BYTES:
            raise MalformedEnvelope(
                f"a wrapped master key is {WRAPPED_KEY_BYTES} bytes, got {len(data)}"
            )
        nonce, ciphertext = data[1 : 1 + _NONCE_BYTES], data[1 + _NONCE_BYTES :]
        return cls(nonce=bytes(nonce), ciphertext=bytes(ciphertext))


def wrap_master_key(master_key: bytes, *, kek: bytes, user_id: str) -> WrappedKey:
    """Seal ``master_key`` under ``kek`` for ``user_id`` with a fresh random nonce."""
    if len(master_key) != MASTER_KEY_BYTES or len(kek) != KEK_BYTES:
        raise UsageError(f"master key and KEK are {MASTER_KEY_BYTES} bytes each")
    nonce = os.urandom(_NONCE_BYTES)
    ciphertext = crypto_aead_xchacha20poly1305_ietf_encrypt(
        master_key, _associated_data(user_id), nonce, kek
    )
    return WrappedKey(nonce=nonce, ciphertext=bytes(ciphertext))


def unwrap_master_key(wrapped: WrappedKey, *, kek: bytes, user_id: str) -> bytes:
    """Open ``wrapped`` with ``kek``; the account master key.

    Raises ``WrongPassphrase`` when it does not open: the KEK came from a wrong
    passphrase, or the record belongs to another user or was altered.
    """
    if wrapped.version != WRAP_VERSION:
        raise UnknownEnvelopeVersion(f"wrapped master key has unknown version {wrapped.version}")
    if len(kek) != KEK_BYTES:
        raise UsageError(f"a KEK is {KEK_BYTES} bytes")
    try:
        master_key = crypto_aead_xchacha20poly1305_ietf_decrypt(
            wrapped.ciphertext, _associated_data(user_id), wrapped.nonce, kek
        )
    except nacl.exceptions.CryptoError:
        raise WrongPassphrase(
            f"the passphrase does not unlock the account of user {user_id!r} "
            "(wrong passphrase, or the stored key belongs to another user or was altered)"
        ) from None
    return bytes(master_key)


def _associated_data(user_id: str) -> bytes:
    if not isinstance(user_id, str) or not user_id:
        raise UsageError("a user id is a non-empty str")
    try:
        return _AD_PREFIX + user_id.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UsageError("a user id must be valid Unicode text") from exc
