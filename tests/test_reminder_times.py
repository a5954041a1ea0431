"""Reminder times (issue 11, item 14): seconds, negative and absurd times are refused clearly."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from duru.errors import InvalidValue
from duru.local import DeviceStore

NOW_S = 1_767_225_600  # 2026-01-01 in epoch seconds


@pytest.fixture
def store(tmp_path: Path) -> DeviceStore:
    s = DeviceStore.open(tmp_path / "d.sqlite")
    return s


@pytest.mark.parametrize(
    ("when", "words"),
    [
        (NOW_S, "looks like seconds"),
        (-5, "before 1970"),
        (0, "between 2000 and 3000"),
        (10**17, "between 2000 and 3000"),
        (2**63 - 1, "beyond any calendar"),
        (datetime(1, 1, 1, tzinfo=UTC), "between 2000 and 3000"),
        (datetime(9999, 12, 31, tzinfo=UTC), "9999-12-31"),
    ],
)
def test_a_time_no_one_means_is_refused(store: DeviceStore, when: object, words: str) -> None:
    note = store.notes.create("n")
    with pytest.raises(InvalidValue, match=words):
        store.reminders.create(note["id"], remind_at=when)
    good = store.reminders.create(note["id"], remind_at=NOW_S * 1000)
    with pytest.raises(InvalidValue, match=words):
        store.reminders.edit(good["id"], remind_at=when)
    with pytest.raises(InvalidValue, match=words):
        store.reminders.snooze(good["id"], when)  # type: ignore[arg-type]
    with pytest.raises(InvalidValue, match=words):
        store.reminders.edit(good["id"], recurrence_end_date=when)
    assert store.reminders.get(good["id"])["remind_at"] == NOW_S * 1000
    assert len(store.reminders.list_for_note(note["id"])) == 1
    store.close()


def test_the_seconds_mistake_says_what_to_give(store: DeviceStore) -> None:
    note = store.notes.create("n")
    with pytest.raises(InvalidValue) as raised:
        store.reminders.create(note["id"], remind_at=NOW_S)
    assert str(NOW_S * 1000) in raised.value.message and "2026-01-01" in raised.value.message
    at = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)
    assert (
        store.reminders.create(note["id"], remind_at=at)["remind_at"] == NOW_S * 1000 + 34_200_000
    )
    store.close()
