"""Key derivation, master-key wrapping, the auth verifier and the account life cycle."""

from __future__ import annotations

import json
import unicodedata

import nacl.pwhash.argon2id as argon2id
import pytest

from duru.crypto import (
    AccountKeys,
    AccountRecord,
    DerivedKeys,
    KdfParams,
    WrappedKey,
    change_passphrase,
    derive_keys,
    make_auth_verifier,
    new_account,
    open_sealed,
    seal,
    unlock,
    unwrap_master_key,
    verifier_cost,
    verify_auth_key,
    wrap_master_key,
)
from duru.errors import (
    CryptoError,
    MalformedEnvelope,
    UnknownEnvelopeVersion,
    UsageError,
    WrongPassphrase,
)

USER = "2c6f0d1e-7b3a-4c55-9e0f-a1b2c3d4e5f6"
PASSPHRASE = "correct horse battery staple"
PLACE = {"entity": "note", "field": "title", "user_id": USER, "row_id": "row-1"}


Account = tuple[AccountKeys, AccountRecord]


@pytest.fixture(scope="module")
def account() -> Account:
    return new_account(PASSPHRASE, USER, KdfParams.for_tests())


# --- KDF parameters and derivation -------------------------------------------------------


def test_presets_follow_libsodium_and_draw_fresh_salts() -> None:
    moderate, interactive, fast = (
        KdfParams.moderate(),
        KdfParams.interactive(),
        KdfParams.for_tests(),
    )
    assert (moderate.opslimit, moderate.memlimit) == (
        argon2id.OPSLIMIT_MODERATE,
        argon2id.MEMLIMIT_MODERATE,
    )
    assert (interactive.opslimit, interactive.memlimit) == (
        argon2id.OPSLIMIT_INTERACTIVE,
        argon2id.MEMLIMIT_INTERACTIVE,
    )
    assert (fast.opslimit, fast.memlimit) == (argon2id.OPSLIMIT_MIN, argon2id.MEMLIMIT_MIN)
    assert len({moderate.salt, interactive.salt, fast.salt}) == 3
    resalted = fast.with_fresh_salt()
    assert resalted.salt != fast.salt and resalted.opslimit == fast.opslimit


def test_params_round_trip_through_json() -> None:
    params = KdfParams.interactive()
    restored = KdfParams.from_dict(json.loads(json.dumps(params.to_dict())))
    assert restored == params


@pytest.mark.parametrize(
    "change",
    [
        {"algorithm": "scrypt"},
        {"opslimit": 0},
        {"opslimit": "3"},
        {"memlimit": True},
        {"salt": "not base64!"},
        {"salt": "AAAA"},
        {"salt": None},
    ],
)
def test_invalid_stored_params_raise_crypto_error(change: dict[str, object]) -> None:
    data = {**KdfParams.for_tests().to_dict(), **change}
    with pytest.raises(CryptoError, match="KDF parameters"):
        KdfParams.from_dict(data)


def test_missing_stored_param_raises_crypto_error() -> None:
    data = KdfParams.for_tests().to_dict()
    del data["salt"]
    with pytest.raises(CryptoError):
        KdfParams.from_dict(data)


def test_invalid_params_are_usage_errors() -> None:
    with pytest.raises(UsageError):
        KdfParams(1, argon2id.MEMLIMIT_MIN, b"short")
    with pytest.raises(UsageError):
        KdfParams(1, argon2id.MEMLIMIT_MIN - 1, bytes(16))


def test_derive_keys_splits_argon2id_output() -> None:
    params = KdfParams.for_tests(bytes(range(16)))
    keys = derive_keys(PASSPHRASE, params)
    raw = argon2id.kdf(
        64, PASSPHRASE.encode(), params.salt, opslimit=params.opslimit, memlimit=params.memlimit
    )
    assert (keys.kek, keys.auth_key) == (raw[:32], raw[32:])
    assert keys.kek != keys.auth_key
    assert isinstance(keys, DerivedKeys) and repr(keys) == "DerivedKeys()"


def test_derive_keys_depends_on_salt_and_passphrase() -> None:
    params = KdfParams.for_tests()
    base = derive_keys(PASSPHRASE, params).kek
    assert derive_keys(PASSPHRASE, params.with_fresh_salt()).kek != base
    assert derive_keys(PASSPHRASE + "!", params).kek != base
    assert derive_keys(PASSPHRASE, params).kek == base


def test_passphrase_is_nfc_normalised() -> None:
    params = KdfParams.for_tests()
    composed, decomposed = "crème brûlée", unicodedata.normalize("NFD", "crème brûlée")
    assert composed != decomposed
    assert derive_keys(composed, params).kek == derive_keys(decomposed, params).kek


@pytest.mark.parametrize("bad", ["", b"bytes", None, "\ud800"])
def test_bad_passphrase_is_a_usage_error(bad: object) -> None:
    with pytest.raises(UsageError):
        derive_keys(bad, KdfParams.for_tests())  # type: ignore[arg-type]


# --- Wrapping the master key ---------------------------------------------------------------


def test_wrap_round_trip_and_stored_form() -> None:
    kek, master = bytes(32), bytes(range(32))
    wrapped = wrap_master_key(master, kek=kek, user_id=USER)
    stored = wrapped.to_bytes()
    assert len(stored) == 73 and stored[0] == 1
    assert unwrap_master_key(WrappedKey.from_bytes(stored), kek=kek, user_id=USER) == master


def test_wrapped_key_does_not_open_for_another_user_or_kek() -> None:
    wrapped = wrap_master_key(bytes(range(32)), kek=bytes(32), user_id=USER)
    with pytest.raises(WrongPassphrase, match=USER):
        unwrap_master_key(wrapped, kek=b"\x01" * 32, user_id=USER)
    with pytest.raises(WrongPassphrase):
        unwrap_master_key(wrapped, kek=bytes(32), user_id="someone-else")


def test_wrapped_key_tampering_and_bad_shapes() -> None:
    stored = wrap_master_key(bytes(range(32)), kek=bytes(32), user_id=USER).to_bytes()
    for i in range(1, len(stored)):
        altered = stored[:i] + bytes([stored[i] ^ 0x80]) + stored[i + 1 :]
        with pytest.raises(WrongPassphrase):
            unwrap_master_key(WrappedKey.from_bytes(altered), kek=bytes(32), user_id=USER)
    with pytest.raises(UnknownEnvelopeVersion):
        WrappedKey.from_bytes(b"\x02" + stored[1:])
    for length in (0, 1, 72, 74):
        with pytest.raises(MalformedEnvelope):
            WrappedKey.from_bytes((stored + b"\x00")[:length])


# --- The server's verifier ---------------------------------------------------------------


def test_verifier_accepts_only_the_auth_key() -> None:
    auth_key = derive_keys(PASSPHRASE, KdfParams.for_tests()).auth_key
    verifier = make_auth_verifier(
        auth_key, opslimit=argon2id.OPSLIMIT_MIN, memlimit=argon2id.MEMLIMIT_MIN
    )
    assert verifier.startswith(b"$argon2id$") and auth_key not in verifier
    assert verify_auth_key(verifier, auth_key)
    assert not verify_auth_key(verifier, bytes(32))
    with pytest.raises(CryptoError, match="not an Argon2id"):
        verify_auth_key(b"plaintext-password", auth_key)
    with pytest.raises(UsageError):
        verify_auth_key(verifier, b"short")


def test_verifier_cost_is_capped_at_interactive() -> None:
    assert verifier_cost(KdfParams.moderate()) == (
        argon2id.OPSLIMIT_INTERACTIVE,
        argon2id.MEMLIMIT_INTERACTIVE,
    )
    assert verifier_cost(KdfParams.for_tests()) == (argon2id.OPSLIMIT_MIN, argon2id.MEMLIMIT_MIN)


# --- Account life cycle ------------------------------------------------------------------


def test_new_account_then_unlock(account: Account) -> None:
    created, record = account
    unlocked = unlock(PASSPHRASE, record, USER)
    assert unlocked.master_key == created.master_key
    assert unlocked.field_keys.current.secret == created.field_keys.current.secret
    assert unlocked.field_keys.current.key_id == 1
    envelope = seal(b"hello", keys=created.field_keys, **PLACE)
    assert open_sealed(envelope, keys=unlocked.field_keys, **PLACE) == b"hello"
    assert unlocked.blind_index("work", entity="note_tag", field="tag") == created.blind_index(
        "work", entity="note_tag", field="tag"
    )
    assert verify_auth_key(record.auth_verifier, unlocked.auth_key)


def test_record_holds_no_secrets_and_round_trips_json(
    account: Account,
) -> None:
    keys, record = account
    data = json.loads(json.dumps(record.to_dict()))
    assert AccountRecord.from_dict(data) == record
    assert record.salt == record.kdf_params.salt
    text = json.dumps(data) + repr(record)
    for secret in (keys.master_key, keys.auth_key, keys.field_keys.current.secret):
        assert secret.hex() not in text and repr(secret) not in text
        assert secret not in record.wrapped_master_key.to_bytes()
    shown = repr(keys)
    assert USER in shown
    for secret in (keys.master_key, keys.auth_key):
        assert repr(secret) not in shown and secret.hex() not in shown


def test_invalid_record_dict_raises_crypto_error(
    account: Account,
) -> None:
    data = account[1].to_dict()
    for key in data:
        with pytest.raises(CryptoError):
            AccountRecord.from_dict({k: v for k, v in data.items() if k != key})
    with pytest.raises(CryptoError):
        AccountRecord.from_dict({**data, "wrapped_master_key": "AAAA"})


def test_wrong_passphrase_or_user(account: Account) -> None:
    record = account[1]
    with pytest.raises(WrongPassphrase):
        unlock("correct horse battery stapler", record, USER)
    with pytest.raises(WrongPassphrase):
        unlock(PASSPHRASE, record, "another-user")


def test_two_accounts_with_one_passphrase_share_nothing() -> None:
    a_keys, a_record = new_account(PASSPHRASE, "user-a", KdfParams.for_tests())
    b_keys, b_record = new_account(PASSPHRASE, "user-b", KdfParams.for_tests())
    assert a_record.salt != b_record.salt
    assert a_keys.master_key != b_keys.master_key
    assert a_keys.auth_key != b_keys.auth_key


def test_change_passphrase_rewraps_the_same_master_key(
    account: Account,
) -> None:
    keys, record = account
    envelope = seal(b"written before", keys=keys.field_keys, **PLACE)
    changed = change_passphrase(PASSPHRASE, "a new passphrase", record, USER)
    assert changed.salt != record.salt
    assert changed.wrapped_master_key != record.wrapped_master_key
    assert changed.auth_verifier != record.auth_verifier
    unlocked = unlock("a new passphrase", changed, USER)
    assert unlocked.master_key == keys.master_key
    assert open_sealed(envelope, keys=unlocked.field_keys, **PLACE) == b"written before"
    assert verify_auth_key(changed.auth_verifier, unlocked.auth_key)
    assert not verify_auth_key(changed.auth_verifier, keys.auth_key)
    with pytest.raises(WrongPassphrase):
        unlock(PASSPHRASE, changed, USER)


def test_change_passphrase_needs_the_old_one_and_can_raise_the_cost(
    account: Account,
) -> None:
    record = account[1]
    with pytest.raises(WrongPassphrase):
        change_passphrase("not it", "new", record, USER)
    stronger = KdfParams(argon2id.OPSLIMIT_MIN + 1, argon2id.MEMLIMIT_MIN * 2, bytes(16))
    changed = change_passphrase(PASSPHRASE, "new", record, USER, params=stronger)
    assert (changed.kdf_params.opslimit, changed.kdf_params.memlimit) == (
        stronger.opslimit,
        stronger.memlimit,
    )
    assert changed.salt != stronger.salt  # always a fresh salt
    assert unlock("new", changed, USER).master_key == account[0].master_key
