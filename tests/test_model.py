"""The model is the one source of truth: check it is consistent with itself."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

import duru.model as model
from duru.errors import InvalidValue
from duru.model import ENTITIES, Default, Entity, Field, Kind, to_local


def test_every_reference_names_an_entity_declared_before_it() -> None:
    seen: set[str] = set()
    for e in ENTITIES:
        for f in e.foreign_keys:
            assert f.references in seen | {e.name}, f"{e.table}.{f.name}"
        seen.add(e.name)


def test_every_entity_carries_sync_fields() -> None:
    for e in ENTITIES:
        assert {"created_at", "updated_at", "version"} <= set(e.field_names), e.name
        assert e.field(e.key).kind is Kind.UUID


def test_secret_fields_say_where_they_go_on_the_server() -> None:
    note = model.NOTE
    assert note.field("title").remote == "title_enc"
    assert note.field("body").packed
    assert model.NOTE_TAG.field("tag").blind_index
    for e in ENTITIES:
        remotes = [f.remote for f in e.secret_fields if f.remote]
        assert len(remotes) == len(set(remotes)), e.name
        assert all(r.endswith("_enc") for r in remotes)


def test_entity_rejects_unknown_fields_in_indexes() -> None:
    with pytest.raises(ValueError, match="unknown fields"):
        Entity(
            "x",
            "xs",
            (Field("id", Kind.UUID),),
            indexes=(model.Index(("nope",), "a query"),),
        )


def test_an_index_must_name_its_query() -> None:
    with pytest.raises(ValueError, match="which query"):
        model.Index(("id",), "")


def test_fingerprint_is_stable_and_sensitive() -> None:
    assert model.fingerprint(ENTITIES) == model.MODEL_FINGERPRINT
    changed = (*ENTITIES[:-1], Entity("x", "xs", (Field("id", Kind.UUID),)))
    assert model.fingerprint(changed) != model.MODEL_FINGERPRINT


def test_entity_lookup_by_name_or_table() -> None:
    assert model.entity("note") is model.entity("notes") is model.NOTE
    with pytest.raises(KeyError):
        model.entity("nothing")


@pytest.mark.parametrize(
    ("kind_field", "friendly", "stored"),
    [
        (model.NOTE.field("is_pinned"), True, 1),
        (model.TASK.field("status"), "completed", 2),
        (model.TASK.field("status"), 3, 3),
        (model.TASK.field("labels"), ["a", "ü"], '["a","ü"]'),
        (model.NOTE.field("created_at"), datetime(2024, 1, 2, 3, 4, 5, 6000, UTC), 1704164645006),
        (
            model.NOTE.field("id"),
            "ABCDEF00-0000-4000-8000-000000000000",
            "abcdef00-0000-4000-8000-000000000000",
        ),
    ],
)
def test_to_local_accepts_friendly_values(
    kind_field: Field, friendly: object, stored: object
) -> None:
    assert to_local(kind_field, friendly) == stored


@pytest.mark.parametrize(
    ("f", "bad"),
    [
        (model.TASK.field("status"), "done"),
        (model.TASK.field("status"), 9),
        (model.NOTE.field("is_pinned"), 2),
        (model.NOTE.field("id"), "not-a-uuid"),
        (model.NOTE.field("title"), None),
        (model.NOTE.field("version"), True),
        (model.REMINDER.field("latitude"), float("nan")),
    ],
)
def test_to_local_refuses_values_that_do_not_fit(f: Field, bad: object) -> None:
    with pytest.raises(InvalidValue, match=f.name):
        to_local(f, bad)


@given(st.sampled_from([e for e in ENTITIES]))
def test_every_default_encodes(e: Entity) -> None:
    now = model.now_ms()
    for f in e.fields:
        if f.has_default:
            stored = model.default_local(f, now)
            if f.default is not Default.NOW:
                assert model.from_local(f, stored) == f.default


@given(st.integers(min_value=-(2**62), max_value=2**62))
def test_timestamps_round_trip_through_local_form(ms: int) -> None:
    f = model.NOTE.field("updated_at")
    assert model.from_local(f, to_local(f, ms)) == ms


def test_exported_names_are_sorted_and_complete() -> None:
    assert model.__all__ == sorted(model.__all__)
    for name in model.__all__:
        assert hasattr(model, name)
