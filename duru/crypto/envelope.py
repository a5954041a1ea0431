"""Sealed envelopes: one field's ciphertext, bound to its place (entity, field, user, row).

Layout, version 2 (53 bytes + the padded plaintext's length):

    offset  size  what
    0       1     format version (= 2)
    1       4     key id, unsigned big-endian (names a key in the ``KeyRing``)
    5       8     binding tag = BLAKE2b-64(place, person=b"duru/bind/v1")
    13      24    random nonce
    37      p+16  XChaCha20-Poly1305 ciphertext and its 16-byte tag

The encrypted ``p`` bytes are the plaintext, one ``0x80`` byte, then zero bytes up
to ``padded_size(len(plaintext))`` (ISO/IEC 7816-4 padding): 64 bytes at least,
then the next power of two up to 1 KiB (titles, tags, names: at most 512 bytes
more), then Padmé buckets (bodies: at most 12% more, leaking O(log log n) bits
of the length). So the server sees a value's size only up to its bucket: every
title under 64 bytes looks alike. The padding is inside the AEAD, so it is
authenticated like the value. Version 1 envelopes (the same layout without
padding: ``n+16`` bytes after the nonce) are still opened, never written.

``place`` is ``frame(entity, field, user_id, row_id)`` (see ``framing``); the AEAD's
associated data is the 13 header bytes followed by ``place``, so altering the header
or moving the envelope breaks authentication.

The binding tag is not a secret (anyone who knows the place can compute it); it
only lets ``open_sealed`` tell a misplaced envelope from a tampered one. The error
is that of the first failing check in this order (the tag is only computed once
opening has failed, but the outcome is the same):

    empty or shorter than 53 bytes -> MalformedEnvelope
        (UnknownEnvelopeVersion instead when the first byte is not a known version)
    version byte                   -> UnknownEnvelopeVersion
    binding tag                    -> MisplacedCiphertext
    key id                         -> UnknownKey
    AEAD                           -> TamperedCiphertext
    padding (version 2)            -> MalformedEnvelope (only a key holder can make one)

So a flipped bit in the binding tag reports ``MisplacedCiphertext`` (it cannot be
told from a move without the key), one in the key id ``UnknownKey`` (or
``TamperedCiphertext`` if the new id happens to be in the ring), and one in the
nonce, ciphertext or tag ``TamperedCiphertext``.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable
from typing import NoReturn

import nacl.exceptions
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)

from duru.errors import (
    MalformedEnvelope,
    MisplacedCiphertext,
    TamperedCiphertext,
    UnknownEnvelopeVersion,
    UnknownKey,
    UsageError,
)

from .framing import encode_text, frame, frame_place
from .keys import KeyRing

ENVELOPE_VERSION = 2
UNPADDED_VERSION = 1  # before size buckets: still opened, never written
KNOWN_VERSIONS = frozenset({UNPADDED_VERSION, ENVELOPE_VERSION})
MIN_BUCKET = 64
POWER_OF_TWO_UP_TO = 1024
PAD_MARKER = b"\x80"
BINDING_TAG_BYTES = 8
NONCE_BYTES = 24
TAG_BYTES = 16
HEADER_BYTES = 1 + 4 + BINDING_TAG_BYTES
MIN_ENVELOPE_BYTES = HEADER_BYTES + NONCE_BYTES + TAG_BYTES
BINDING_PERSON = b"duru/bind/v1"

_NONCE_END = HEADER_BYTES + NONCE_BYTES
# Bound once at import: seal and open sit on the sync path and run per field.
_pack_header = struct.Struct(">BI8s").pack
_unpack_header = struct.Struct(">BI8s").unpack_from
_BINDING_HASHER = hashlib.blake2b(digest_size=BINDING_TAG_BYTES, person=BINDING_PERSON)
_urandom = os.urandom
_encrypt = crypto_aead_xchacha20poly1305_ietf_encrypt
_decrypt = crypto_aead_xchacha20poly1305_ietf_decrypt

PlaceSealer = Callable[[bytes, str], bytes]


def _raw_encrypt() -> Callable[[bytes, bytes, bytes, bytes], bytes] | None:
    """libsodium's XChaCha20-Poly1305 encrypt through PyNaCl's cffi module, or None.

    PyNaCl's binding spends about half a field's sealing time on argument checks that a
    ``PlaceSealer`` makes once; ``nacl._sodium`` is private, so its absence falls back
    to the binding (the tests check both give the same bytes).
    """
    try:
        from nacl._sodium import ffi, lib
    except ImportError:  # pragma: no cover - depends on the installed PyNaCl
        return None
    encrypt, new, buffer, null = (
        lib.crypto_aead_xchacha20poly1305_ietf_encrypt,
        ffi.new,
        ffi.buffer,
        ffi.NULL,
    )

    def raw(plaintext: bytes, aad: bytes, nonce: bytes, key: bytes) -> bytes:
        size = len(plaintext) + TAG_BYTES
        out = new("unsigned char[]", size)
        if encrypt(out, null, plaintext, len(plaintext), aad, len(aad), null, nonce, key):
            raise nacl.exceptions.CryptoError("encryption failed")  # pragma: no cover
        return buffer(out, size)[:]  # type: ignore[no-any-return]

    return raw


def _raw_decrypt() -> Callable[[bytes, bytes, bytes, bytes], bytes | None] | None:
    """libsodium's XChaCha20-Poly1305 decrypt through PyNaCl's cffi module, or None.

    The checked binding spends about four times the cipher's own time on a small field
    (a pull opens one or two per row); ``open_sealed`` has checked every argument's type
    and size already. The raw call answers None where the binding raises CryptoError.
    """
    try:
        from nacl._sodium import ffi, lib
    except ImportError:  # pragma: no cover - depends on the installed PyNaCl
        return None
    decrypt, new, buffer, null = (
        lib.crypto_aead_xchacha20poly1305_ietf_decrypt,
        ffi.new,
        ffi.buffer,
        ffi.NULL,
    )

    def raw(ciphertext: bytes, aad: bytes, nonce: bytes, key: bytes) -> bytes | None:
        size = len(ciphertext) - TAG_BYTES
        out = new("unsigned char[]", size or 1)  # cffi refuses a zero-length array
        if decrypt(out, null, null, ciphertext, len(ciphertext), aad, len(aad), nonce, key):
            return None
        return buffer(out, size)[:]  # type: ignore[no-any-return]

    return raw


_RAW_ENCRYPT = _raw_encrypt()
_RAW_DECRYPT = _raw_decrypt()


def _checked_decrypt(ciphertext: bytes, aad: bytes, nonce: bytes, key: bytes) -> bytes | None:
    try:
        return _decrypt(ciphertext, aad, nonce, key)
    except nacl.exceptions.CryptoError:
        return None


_open_aead = _RAW_DECRYPT or _checked_decrypt
# seal has checked the plaintext's type; the key, nonce and header are its own.
_seal_aead = _RAW_ENCRYPT or _encrypt


def padded_size(length: int) -> int:
    """The bytes a plaintext of ``length`` bytes is encrypted as (with its end marker).

    At least ``MIN_BUCKET``; the next power of two up to ``POWER_OF_TWO_UP_TO``; above
    that, Padmé (Nikitin et al., PURBs 2019): keep the top ``log2(log2 n) + 1`` bits
    of the size and round the rest up, for at most 12% more bytes.
    """
    need = length + 1
    if need <= MIN_BUCKET:
        return MIN_BUCKET
    if need <= POWER_OF_TWO_UP_TO:
        return 1 << (need - 1).bit_length()
    exponent = need.bit_length() - 1
    mask = (1 << (exponent - exponent.bit_length())) - 1
    return (need + mask) & ~mask


def _pad(plaintext: bytes) -> bytes:
    return plaintext + _tail(padded_size(len(plaintext)) - len(plaintext))


def _unpad(padded: bytes, entity: str, field: str, row_id: str) -> bytes:
    # The last 0x80 is the marker when only zeros follow it.
    end = padded.rfind(PAD_MARKER)
    if end < 0 or not padded.endswith(_tail(len(padded) - end)):
        raise MalformedEnvelope(
            f"{_where(entity, field, row_id)}: the envelope opened but its padding is not"
            " 0x80 then zero bytes (sealed by a faulty writer)"
        )
    return padded[:end]


# Padding of up to 4 KiB (values up to about 128 KiB) is a slice of one constant: seal and
# open run per field, and allocating fresh zeros each time was a visible share of a small
# field's cost in benchmarks/bench_crypto.py.
_PAD_TAIL = PAD_MARKER + bytes(4095)


def _tail(size: int) -> bytes:
    """The marker and zeros that make ``size`` bytes of padding."""
    return _PAD_TAIL[:size] if size <= len(_PAD_TAIL) else PAD_MARKER + bytes(size - 1)


def binding_tag(entity: str, field: str, user_id: str, row_id: str) -> bytes:
    """The 8-byte binding tag an envelope for this place carries."""
    return _binding_tag(frame_place(entity, field, user_id, row_id))


def seal(
    plaintext: bytes, *, keys: KeyRing, entity: str, field: str, user_id: str, row_id: str
) -> bytes:
    """Encrypt ``plaintext``, padded to its size bucket, for one place with ``keys.current``.

    Every call draws a fresh random nonce from the OS, so sealing the same value twice gives
    different envelopes; values of one bucket give envelopes of one length. Raises
    ``UsageError`` for a non-bytes plaintext.
    """
    if type(plaintext) is not bytes:
        raise UsageError(f"seal takes bytes, got {type(plaintext).__name__}")
    key = keys.current
    place = frame_place(entity, field, user_id, row_id)
    header = _pack_header(ENVELOPE_VERSION, key.key_id, _binding_tag(place))
    nonce = _urandom(NONCE_BYTES)
    sealed = _seal_aead(_pad(plaintext), header + place, nonce, key.secret)
    return b"".join((header, nonce, sealed))


def place_sealer(
    keys: KeyRing, *, entity: str, field: str, user_id: str, raw: bool = True
) -> PlaceSealer:
    """``seal`` for one (entity, field, user) with ``keys.current``: call it with (plaintext,
    row id) per row.

    Gives exactly the envelopes ``seal`` gives (same layout and associated data, fresh
    nonce per call), for a fraction of the per-call cost: the key, the place prefix and
    the checks of the fixed arguments are done once. ``raw=False`` uses PyNaCl's checked
    binding. Raises ``UsageError`` for a non-bytes plaintext or non-str row id.
    """
    key = keys.current
    prefix = frame(entity, field, user_id)
    secret, head = key.secret, struct.pack(">BI", ENVELOPE_VERSION, key.key_id)
    encrypt = _RAW_ENCRYPT if raw and _RAW_ENCRYPT is not None else _encrypt
    hasher, urandom, pad = _BINDING_HASHER.copy, _urandom, _pad

    def seal_place(plaintext: bytes, row_id: str) -> bytes:
        if type(plaintext) is not bytes or type(row_id) is not str:
            raise UsageError(
                f"a place sealer takes bytes and a str row id, got {type(plaintext).__name__}"
                f" and {type(row_id).__name__}"
            )
        place = prefix + encode_text(f"{len(row_id)}:{row_id}")
        tag = hasher()
        tag.update(place)
        header = head + tag.digest()
        nonce = urandom(NONCE_BYTES)
        return header + nonce + encrypt(pad(plaintext), header + place, nonce, secret)

    return seal_place


def open_sealed(
    envelope: bytes | bytearray | memoryview,
    *,
    keys: KeyRing,
    entity: str,
    field: str,
    user_id: str,
    row_id: str,
) -> bytes:
    """Decrypt an envelope sealed for exactly this place; the plaintext.

    Raises (see the module docstring for the order) ``MalformedEnvelope``,
    ``UnknownEnvelopeVersion``, ``MisplacedCiphertext``, ``UnknownKey`` or
    ``TamperedCiphertext``; never returns unauthenticated bytes. A ``bytearray`` or
    ``memoryview`` envelope is copied to bytes first; anything else is malformed.
    """
    data = envelope if type(envelope) is bytes else _as_bytes(envelope)
    if len(data) < MIN_ENVELOPE_BYTES:
        _raise_short(data, entity, field, row_id)
    version, key_id, tag = _unpack_header(data)
    if version not in KNOWN_VERSIONS:
        raise UnknownEnvelopeVersion(
            f"{_where(entity, field, row_id)}: envelope format version {version} is unknown"
        )
    place = frame_place(entity, field, user_id, row_id)
    key = keys.get(key_id)
    if key is not None:
        opened = _open_aead(
            data[_NONCE_END:],
            data[:HEADER_BYTES] + place,
            data[HEADER_BYTES:_NONCE_END],
            key.secret,
        )
        if opened is not None:
            if version == UNPADDED_VERSION:
                return opened
            return _unpad(opened, entity, field, row_id)
    # The binding tag is only checked once opening has failed: a successful open
    # already proves the place (it is in the associated data), and skipping the
    # hash keeps the common path fast. The errors come out as if checked first.
    where = _where(entity, field, row_id)
    if tag != _binding_tag(place):
        raise MisplacedCiphertext(
            f"{where}: envelope was sealed for another entity, field, user or row "
            f"(user {user_id!r})"
        )
    if key is None:
        raise UnknownKey(
            f"{where}: envelope names key id {key_id}, which is not in the key ring "
            f"(holds {list(keys.key_ids)})"
        )
    raise TamperedCiphertext(
        f"{where}: envelope failed authentication "
        f"(altered, or sealed under another key with id {key_id})"
    )


def _binding_tag(place: bytes) -> bytes:
    # Copying a hasher that already holds the person parameter is cheaper than
    # constructing one per call, and seal pays this per field.
    hasher = _BINDING_HASHER.copy()
    hasher.update(place)
    return hasher.digest()


def _as_bytes(envelope: object) -> bytes:
    # bytes(n) of an int would make n zero bytes, so only buffer types are converted.
    if isinstance(envelope, bytearray | memoryview):
        return bytes(envelope)
    raise MalformedEnvelope(f"an envelope is bytes, got {type(envelope).__name__}")


def _raise_short(envelope: bytes, entity: str, field: str, row_id: str) -> NoReturn:
    where = _where(entity, field, row_id)
    if envelope and envelope[0] not in KNOWN_VERSIONS:
        raise UnknownEnvelopeVersion(f"{where}: envelope format version {envelope[0]} is unknown")
    raise MalformedEnvelope(
        f"{where}: envelope is {len(envelope)} bytes, shorter than the "
        f"{MIN_ENVELOPE_BYTES}-byte minimum"
    )


def _where(entity: str, field: str, row_id: str) -> str:
    return f"{entity}.{field} row {row_id!r}"
