"""Every error duru raises, in one tree.

DuruError                      base; ``retryable`` says whether trying again can help
├── UsageError                 bad arguments from a caller or the command line
│   └── InvalidValue           a value that does not fit its field's type
├── NotFound                   an id, file or row that does not exist
├── StoreError                 the device (SQLite) store
│   ├── CorruptDatabase        not a database, or integrity_check failed
│   ├── SchemaMismatch         live tables differ from the model
│   ├── ConstraintViolation    a write the model forbids (cycle, bad enum, ...)
│   └── SearchQueryError       a malformed full-text query
├── LegacyImportError          `duru import` could not account for every row
├── CryptoError                key derivation and sealed envelopes
│   ├── WrongPassphrase        the master key did not unwrap
│   ├── MalformedEnvelope      too short / not an envelope at all
│   ├── UnknownEnvelopeVersion a format this build cannot read
│   ├── UnknownKey             sealed under a key id we do not hold
│   ├── MisplacedCiphertext    sealed for another entity, field, user or row
│   ├── TamperedCiphertext     authentication failed (flipped bit, wrong key)
│   ├── TamperedRow            a row's MAC does not match its columns (changed on the server)
│   └── ReplayedRow            the server sent an older version of a row than this device saw
├── RemoteError                the server (PostgreSQL) store
│   └── ServerUnavailable      cannot connect or start the server (retryable)
├── BridgeError                a value that cannot cross between device and server
│   └── UnknownEnumValue       an enum value outside the model's mapping
├── SchemaCheckError           `duru schema check` found incompatibilities
├── MigrationError             the migration engine
│   ├── LintFailed             error-severity lint findings
│   ├── PreflightFailed        integrity, foreign keys, disk, locks
│   ├── ValidationFailed       counts or checksums disagree after a chunk
│   └── RollbackFailed         a rollback point could not be restored
└── SyncError                  the sync protocol
    ├── AuthFailed             no session, an expired token, a wrong name or passphrase
    ├── RateLimited            too many failed logins for now (retryable, later)
    ├── AlreadyExists          a user name (or id) taken at registration
    ├── ResyncNeeded           the device's cursor is older than the tombstone horizon
    └── SyncServerError        the sync server answered with an error, or not at all
"""

from __future__ import annotations


class DuruError(Exception):
    """Base of every error duru raises on purpose."""

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class UsageError(DuruError):
    """A caller passed arguments duru cannot act on."""


class InvalidValue(UsageError):
    """A value that does not fit its field's type, enum or nullability."""


class NotFound(DuruError):
    """An id, file or row that does not exist."""


class StoreError(DuruError):
    """Something went wrong in the device store."""


class CorruptDatabase(StoreError):
    """The file is not an SQLite database, or fails its integrity check."""


class SchemaMismatch(StoreError):
    """A live database's tables differ from the model."""


class ConstraintViolation(StoreError):
    """A write the model forbids: a folder cycle, an unknown enum value, a missing parent."""


class SearchQueryError(StoreError):
    """A full-text query that FTS5 cannot parse."""


class LegacyImportError(DuruError):
    """A legacy import that could not account for every source row."""


class CryptoError(DuruError):
    """Key derivation or a sealed envelope failed."""


class WrongPassphrase(CryptoError):
    """The passphrase did not unwrap the account master key."""


class MalformedEnvelope(CryptoError):
    """The bytes are too short or not shaped as an envelope."""


class UnknownEnvelopeVersion(CryptoError):
    """The envelope's format version is not one this build reads."""


class UnknownKey(CryptoError):
    """The envelope names a key id that is not in the key ring."""


class MisplacedCiphertext(CryptoError):
    """The envelope was sealed for another entity, field, user or row."""


class TamperedCiphertext(CryptoError):
    """Authentication failed: the ciphertext or its header was altered."""


class TamperedRow(CryptoError):
    """A row's MAC does not match its columns: someone without the keys changed it."""


class ReplayedRow(CryptoError):
    """The server sent an older version of a row than this device already saw."""


class RemoteError(DuruError):
    """Something went wrong in the server store."""


class ServerUnavailable(RemoteError):
    """The PostgreSQL server cannot be reached or started."""

    retryable = True


class BridgeError(DuruError):
    """A value that cannot be converted between a device row and a server row."""


class UnknownEnumValue(BridgeError):
    """An enum value outside the model's mapping."""


class SchemaCheckError(DuruError):
    """A live schema is not compatible with the model."""


class MigrationError(DuruError):
    """The migration engine stopped."""


class LintFailed(MigrationError):
    """Lint found error-severity problems."""


class PreflightFailed(MigrationError):
    """A preflight check (integrity, foreign keys, free disk, locks) failed."""


class ValidationFailed(MigrationError):
    """Counts or checksums disagree after a migration step."""


class RollbackFailed(MigrationError):
    """A rollback point could not be restored."""


class SyncError(DuruError):
    """The sync protocol failed."""


class AuthFailed(SyncError):
    """No valid session: log in again (a wrong name and a wrong passphrase look the same)."""


class RateLimited(SyncError):
    """Too many failed logins for this account or address; ``retry_after`` seconds."""

    retryable = True

    def __init__(self, message: str, *, retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AlreadyExists(SyncError):
    """The user name or id is taken."""


class ResyncNeeded(SyncError):
    """The device missed deletes the server no longer keeps: it must resync in full."""


class SyncServerError(SyncError):
    """The sync server could not be reached, or answered with an error."""


class RequestTooLarge(SyncServerError):
    """The sync server, or a proxy before it, refused a request as too large (HTTP 413)."""
