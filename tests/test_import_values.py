"""Reading version 11 values: every date form, numbers, flags, enums, ids."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from duru.errors import InvalidValue
from duru.local.legacy import LEGACY_NAMESPACE, composite_id, map_id
from duru.local.legacy.values import (
    legacy_key,
    normalize_tag,
    random_id,
    read_bool,
    read_enum,
    read_int,
    read_json,
    read_real,
    read_text,
    read_timestamp,
)
from duru.model import TASK_STATUS

MOMENT = datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)
MS = 1_700_000_000_123


@pytest.mark.parametrize(
    ("stored", "ms"),
    [
        (1_700_000_000, 1_700_000_000_000),
        ("1700000000", 1_700_000_000_000),
        (" 1700000000 ", 1_700_000_000_000),
        (1_700_000_000.123, MS),
        ("1700000000.123", MS),
        (MS, MS),
        (str(MS), MS),
        (MS * 1000, MS),
        (MS * 1_000_000, MS),
        ("2023-11-14T22:13:20.123Z", MS),
        ("2023-11-14T22:13:20.123+00:00", MS),
        ("2023-11-15T03:43:20.123+05:30", MS),
        ("2023-11-14T22:13:20.123", MS),
        ("2023-11-14 22:13:20", 1_700_000_000_000),
        ("2023-11-14", 1_699_920_000_000),
        (0, 0),
        (-86_400, -86_400_000),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_every_date_form_reads_as_epoch_ms(stored: object, ms: int | None) -> None:
    assert read_timestamp(stored) == ms


@pytest.mark.parametrize(
    "stored", ["yesterday", "2023-13-01", "1e400", b"\x00\x01", float("inf"), 10**20 * 10**20]
)
def test_what_is_not_a_date_is_refused(stored: object) -> None:
    with pytest.raises(InvalidValue):
        read_timestamp(stored)


@given(st.datetimes(min_value=datetime(1973, 3, 4), max_value=datetime(5000, 1, 1)))
def test_seconds_millis_and_iso_of_one_moment_agree(moment: datetime) -> None:
    aware = moment.replace(tzinfo=UTC)
    ms = (aware - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    assert read_timestamp(ms) == ms
    assert read_timestamp(ms // 1000) == ms // 1000 * 1000
    assert read_timestamp(aware.isoformat()) == ms
    assert read_timestamp(moment.isoformat()) == ms  # naive means UTC
    shifted = aware.astimezone(timezone(timedelta(hours=-7)))
    assert read_timestamp(shifted.isoformat()) == ms


def test_numbers_and_flags() -> None:
    assert [read_int(v) for v in (3, "3", " -4 ", 5.0, "6.0", None)] == [3, 3, -4, 5, 6, None]
    for bad in ("x", 1.5, "1.5", b"1", 2**63):
        with pytest.raises(InvalidValue):
            read_int(bad)
    assert [read_real(v) for v in (1, "2.5", 3.25, None)] == [1.0, 2.5, 3.25, None]
    for bad in (float("inf"), "nan", "north"):
        with pytest.raises(InvalidValue):
            read_real(bad)
    assert [read_bool(v) for v in (0, 1, "1", "true", "FALSE", 1.0, None)] == [
        False,
        True,
        True,
        True,
        False,
        True,
        None,
    ]
    for bad in (2, -1, "yes", 0.5):
        with pytest.raises(InvalidValue):
            read_bool(bad)


def test_enum_codes_inside_the_mapping_only() -> None:
    assert read_enum(TASK_STATUS, 2) == 2
    assert read_enum(TASK_STATUS, "3") == 3
    assert read_enum(TASK_STATUS, "completed") == 2
    for bad in (7, -1, "done", 1.5):
        with pytest.raises(InvalidValue, match="task_status"):
            read_enum(TASK_STATUS, bad)


def test_text_json_and_tags() -> None:
    assert read_text("çalışma 日本") == "çalışma 日本"
    assert read_text("é".encode()) == "é"
    assert read_text(12) == "12"
    with pytest.raises(InvalidValue):
        read_text(b"\xff\xfe")
    assert read_json('["a", 1]') == (["a", 1], True)
    assert read_json("a, b") == ("a, b", False)
    assert normalize_tag("  work\t") == "work"
    assert normalize_tag("  ") is None


def test_uuid_ids_keep_their_value_and_others_map_by_table() -> None:
    known = "5A0B6C7D-1E2F-4A3B-8C4D-5E6F7A8B9C0D"
    assert map_id("local_notes", known) == known.lower()
    assert map_id("local_notes", "note-1") == str(
        uuid.uuid5(LEGACY_NAMESPACE, "local_notes:note-1")
    )
    assert map_id("local_notes", "note-1") != map_id("local_folders", "note-1")
    # Not the usual 8-4-4-4-12 form: mapped, not reinterpreted.
    assert map_id("local_notes", known.replace("-", "")) != known.lower()
    assert legacy_key(12) == legacy_key("12") == legacy_key(12.0) == "12"
    assert legacy_key("") is None and legacy_key(None) is None
    with pytest.raises(InvalidValue):
        legacy_key(1.5)


def test_composite_ids_cannot_be_confused_by_separators() -> None:
    assert composite_id("note_tags", ["a:b", "c"]) != composite_id("note_tags", ["a", "b:c"])
    assert composite_id("note_tags", ["a", "b"]) == composite_id("note_tags", ["a", "b"])
    uuid.UUID(composite_id("note_links", ["x", None, "y"]))


@given(st.text(max_size=40))
def test_mapped_ids_are_the_documented_uuid5(key: str) -> None:
    if key.strip() and not re.fullmatch(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", key):
        want = uuid.uuid5(LEGACY_NAMESPACE, f"note_tasks:{key}")
        assert map_id("note_tasks", key) == str(want)
    parts = [key, None, 3]
    text = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    assert composite_id("note_links", parts) == str(
        uuid.uuid5(LEGACY_NAMESPACE, f"note_links:{text}")
    )


def test_random_ids_are_version_4_uuids() -> None:
    made = {random_id() for _ in range(200)}
    assert len(made) == 200
    for text in made:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)
