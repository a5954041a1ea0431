"""CopyRows (device rows straight to binary COPY) against the general path, and place_sealer."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import duru.crypto.envelope as envelope
from duru.bridge import codec_for
from duru.bridge.copy_rows import CopyRows
from duru.crypto import KdfParams, new_account, open_sealed, seal
from duru.crypto.envelope import place_sealer
from duru.errors import BridgeError, UnknownEnumValue, UsageError
from duru.model import ENTITIES, NOTE, NOTE_TAG, TASK, Entity, Kind, new_id
from duru.sync.sealer import format_chunk

USER = new_id()
KEYS, _ = new_account("pw", USER, KdfParams.interactive())


def _counting_nonces() -> Callable[[int], bytes]:
    count = itertools.count()
    return lambda n: next(count).to_bytes(n, "big")


@pytest.fixture
def fixed_nonces(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], None]]:
    """Call it to restart the nonce counter: both paths then draw the same nonces."""

    def restart() -> None:
        monkeypatch.setattr(envelope, "_urandom", _counting_nonces())

    restart()
    yield restart


def _value(e: Entity, name: str, rng: random.Random, row: int) -> object:
    f = e.field(name)
    if f.nullable and rng.random() < 0.3:
        return None
    match f.kind:
        case Kind.UUID:
            return new_id()
        case Kind.TEXT:
            return rng.choice(["", "a", "ünï €", "x" * 3000, f'row {row}\n\t"q"\\'])
        case Kind.INT:
            return rng.choice([0, -1, 2**63 - 1, -(2**63), row])
        case Kind.FLOAT:
            return rng.choice([0.0, -1.5, 1e300, 0.1])
        case Kind.BOOL:
            return rng.choice([0, 1])
        case Kind.TIMESTAMP:
            return rng.choice([0, 1_700_000_000_123, -62135596800000, 253402300799999, -1])
        case Kind.ENUM:
            return rng.choice([code for _, code in f.enum.members])
        case Kind.JSON:
            return rng.choice(['{"a":[1,2]}', "[]", '"s"', '{"k":"ü","n":null}'])
    raise AssertionError(f.kind)


def _rows(e: Entity, count: int, seed: int = 3) -> list[tuple[object, ...]]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        out.append(tuple(_value(e, n, rng, i) for n in e.field_names))
    return out


@pytest.mark.parametrize("e", ENTITIES, ids=lambda e: e.name)
def test_copy_rows_writes_the_bytes_of_the_general_path(
    e: Entity, fixed_nonces: Callable[[], None]
) -> None:
    rows = _rows(e, 60)
    fast = CopyRows.build(e, KEYS, USER)
    if fast is None:
        pytest.skip(f"{e.name} has a kind CopyRows leaves to the general path")
    data = fast.encode(rows, 17)
    fixed_nonces()
    assert data == format_chunk(e, KEYS, rows, 17)


def _note(**changes: Any) -> tuple[object, ...]:
    row = _rows(NOTE, 1)[0]
    values = dict(zip(NOTE.field_names, row, strict=True)) | changes
    return tuple(values[n] for n in NOTE.field_names)


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"id": "NOT-A-UUID"}, BridgeError, "not a uuid"),
        ({"id": str(new_id()).upper()}, BridgeError, "canonical"),
        ({"note_type": 99}, UnknownEnumValue, "note_type"),
        ({"is_pinned": 2}, BridgeError, "stored boolean"),
        ({"version": 2**63}, BridgeError, "64-bit"),
        ({"created_at": 10**17}, BridgeError, "year 1 to 9999"),
        ({"title": None}, BridgeError, "may not be null"),
        ({"body": None}, BridgeError, "may not be null"),
        ({"body": 5}, BridgeError, "expected text"),
        ({"title": "lone \ud800"}, BridgeError, "surrogate"),
    ],
)
def test_a_row_that_cannot_cross_raises_what_to_remote_raises(
    changes: dict[str, Any], error: type[Exception], match: str
) -> None:
    row = _note(**changes)
    fast = CopyRows.build(NOTE, KEYS, USER)
    assert fast is not None
    with pytest.raises(error, match=match) as fast_error:
        fast.encode([_note(), row], 1)
    with pytest.raises(error) as reference:
        codec_for(NOTE).to_remote(dict(zip(NOTE.field_names, row, strict=True)), KEYS, USER)
    assert str(fast_error.value) == str(reference.value)


def test_a_row_only_the_general_path_covers_returns_none() -> None:
    class Count(int):
        pass

    fast = CopyRows.build(NOTE, KEYS, USER)
    assert fast is not None
    assert fast.encode([_note(), _note(version=Count(3))], 1) is None  # to_remote takes it
    assert fast.encode([_note(), _note()], 1) is not None


def test_another_users_keys_are_refused() -> None:
    with pytest.raises(UsageError, match="cannot seal rows of user"):
        CopyRows.build(TASK, KEYS, new_id())


@pytest.mark.parametrize("raw", [True, False])
def test_place_sealer_gives_the_envelopes_of_seal(raw: bool, monkeypatch: Any) -> None:
    row_id = new_id()
    monkeypatch.setattr(envelope, "_urandom", _counting_nonces())  # before: the sealer keeps it
    sealer = place_sealer(KEYS.field_keys, entity="note_tag", field="tag", user_id=USER, raw=raw)
    fast = [sealer(b"work \xc3\xbc", row_id), sealer(b"", row_id)]
    monkeypatch.setattr(envelope, "_urandom", _counting_nonces())
    place = {"keys": KEYS.field_keys, "entity": "note_tag", "field": "tag", "user_id": USER}
    assert fast == [
        seal(b"work \xc3\xbc", row_id=row_id, **place),
        seal(b"", row_id=row_id, **place),
    ]
    assert open_sealed(fast[0], row_id=row_id, **place) == b"work \xc3\xbc"


def test_place_sealer_draws_a_fresh_nonce_and_checks_types() -> None:
    sealer = place_sealer(KEYS.field_keys, entity=NOTE_TAG.name, field="tag", user_id=USER)
    assert sealer(b"x", "r") != sealer(b"x", "r")
    with pytest.raises(UsageError):
        sealer("text", "r")  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        sealer(b"x", 5)  # type: ignore[arg-type]
