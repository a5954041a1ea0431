"""Reminders, templates, saved searches and attachment metadata."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from duru.errors import InvalidValue, NotFound
from duru.local import DeviceStore
from duru.model import now_ms


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DeviceStore]:
    with DeviceStore.open(tmp_path / "device.db") as s:
        yield s


@pytest.fixture
def note_id(store: DeviceStore) -> str:
    return str(store.notes.create("n")["id"])


def test_reminder_kinds_are_checked(store: DeviceStore, note_id: str) -> None:
    r = store.reminders
    at = datetime(2031, 5, 6, 7, 8, tzinfo=UTC)
    timed = r.create(note_id, remind_at=at, title="call")
    assert timed["remind_at"] == int(at.timestamp() * 1000) and timed["type"] == 0
    placed = r.create(note_id, type="location", latitude=52.5, longitude=13.4, radius=50.0)
    assert placed["remind_at"] is None
    weekly = r.create(note_id, type="recurring", remind_at=at, recurrence_pattern="weekly")
    assert r.list_for_note(note_id)[0]["id"] == timed["id"]  # same time: made first, first
    assert weekly["recurrence_pattern"] == 2
    bad = [
        {"type": "time"},
        {"type": "location", "latitude": 1.0},
        {"type": "recurring", "remind_at": at},
        {"remind_at": at, "recurrence_interval": 0},
        {"type": "location", "latitude": 91.0, "longitude": 0.0},
        {"remind_at": at, "colour": "red"},
    ]
    for fields in bad:
        with pytest.raises(InvalidValue):
            r.create(note_id, **fields)
    with pytest.raises(InvalidValue, match="cannot set note_id"):
        r.edit(timed["id"], note_id=note_id)
    assert r.edit(timed["id"], title="call mum")["title"] == "call mum"
    assert [x["id"] for x in r.list_for_note(note_id)] == [timed["id"], weekly["id"], placed["id"]]


def test_upcoming_snooze_and_deactivate(store: DeviceStore, note_id: str) -> None:
    r = store.reminders
    base = now_ms() + 60_000
    first = r.create(note_id, remind_at=base + 1)
    second = r.create(note_id, remind_at=base + 2)
    r.create(note_id, remind_at=base - 120_000)  # already past
    assert [x["id"] for x in r.upcoming()] == [first["id"], second["id"]]
    snoozed = r.snooze(first["id"], base + 10)
    assert (snoozed["snoozed_until"], snoozed["snooze_count"]) == (base + 10, 1)
    assert [x["id"] for x in r.upcoming()] == [second["id"], first["id"]]
    r.deactivate(second["id"])
    assert [x["id"] for x in r.upcoming(1)] == [first["id"]]
    r.activate(second["id"])
    assert len(r.upcoming(since=0)) == 3
    store.notes.trash(note_id)
    assert r.upcoming(since=0) == []


def test_deleting_a_reminder_unlinks_its_tasks(store: DeviceStore, note_id: str) -> None:
    rem = store.reminders.create(note_id, remind_at=now_ms() + 60_000)
    task = store.tasks.create(note_id, "t", reminder_id=rem["id"])
    store.reminders.delete(rem["id"])
    assert store.tasks.get(task["id"])["reminder_id"] is None
    with pytest.raises(NotFound):
        store.reminders.get(rem["id"])


def test_templates_in_order_and_instantiated(store: DeviceStore) -> None:
    t = store.templates
    b = t.create("B", "body b", tags=["x", " y "])
    a = t.create("A", sort_order=-5, category="work")
    assert [x["title"] for x in t.list()] == ["A", "B"]
    assert json.loads(b["tags"]) == ["x", "y"]
    folder = store.folders.create("f")
    note = t.instantiate(b["id"], folder_id=folder["id"])
    assert (note["title"], note["body"]) == ("B", "body b")
    assert store.tags.list_for(note["id"]) == ["x", "y"]
    assert store.folders.folder_of(note["id"])["id"] == folder["id"]
    assert json.loads(t.edit(a["id"], tags=["z"])["tags"]) == ["z"]
    with pytest.raises(InvalidValue):
        t.create(" ")
    t.delete(a["id"])
    assert [x["title"] for x in t.list()] == ["B"]


def test_saved_searches_pinned_first_and_usage(store: DeviceStore) -> None:
    s = store.saved_searches
    one = s.create("one", "a")
    two = s.create("two", "b")
    three = s.create("three", "c", is_pinned=True)
    assert [x["name"] for x in s.list()] == ["three", "one", "two"]
    s.edit(two["id"], is_pinned=True)
    assert [x["name"] for x in s.list()] == ["two", "three", "one"]
    used = s.touch(one["id"])
    used = s.touch(one["id"])
    assert used["usage_count"] == 2 and used["last_used_at"] is not None
    s.delete(three["id"])
    with pytest.raises(NotFound):
        s.get(three["id"])


def test_attachments_metadata(store: DeviceStore, note_id: str) -> None:
    a = store.attachments
    first = a.add(note_id, "a.pdf", size_bytes=3, sha256="0f" * 32, mime_type="application/pdf")
    a.add(note_id, "b.png")
    assert [x["file_name"] for x in a.list_for_note(note_id)] == ["a.pdf", "b.png"]
    for bad in ({"size_bytes": -1}, {"sha256": "XYZ"}, {"sha256": "0F" * 32}):
        with pytest.raises(InvalidValue):
            a.add(note_id, "c", **bad)  # type: ignore[arg-type]
    a.remove(first["id"])
    assert len(a.list_for_note(note_id)) == 1
    store.notes.trash(note_id)
    with pytest.raises(NotFound, match="trash"):
        a.add(note_id, "d")
