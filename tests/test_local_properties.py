"""Property: any sequence of note and tag calls keeps the store equal to a plain model of it.

The model is a dict of notes (title, trashed, tag set). After every sequence:
the export's row counts match the model, each note's tags and the tag counts
match, and the outbox holds exactly one op per row the model says changed.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duru.errors import ConstraintViolation, NotFound
from duru.local import DeviceStore, export_all

TAGS = st.sampled_from(["a", "b", "c", " a", "B "])
SLOT = st.integers(0, 5)
OPS = st.one_of(
    st.tuples(st.just("create"), st.sampled_from(["x", "y"]), st.lists(TAGS, max_size=3)),
    st.tuples(st.just("tag"), SLOT, TAGS),
    st.tuples(st.just("untag"), SLOT, TAGS),
    st.tuples(st.just("rename"), TAGS, TAGS),
    st.tuples(st.just("trash"), SLOT),
    st.tuples(st.just("restore"), SLOT),
    st.tuples(st.just("purge"), SLOT),
    st.tuples(st.just("pin"), SLOT),
    st.tuples(st.just("retitle"), SLOT, st.sampled_from(["x", "y", "z"])),
)


@dataclass
class Model:
    notes: dict[str, dict] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    writes: int = 0

    def pick(self, slot: int) -> str | None:
        return self.order[slot % len(self.order)] if self.order else None


def apply(store: DeviceStore, m: Model, op: tuple) -> None:
    kind = op[0]
    if kind == "create":
        row = store.notes.create(op[1], tags=op[2])
        tags = {t.strip() for t in op[2]}
        m.notes[row["id"]] = {"title": op[1], "trashed": False, "tags": tags, "pinned": False}
        m.order.append(row["id"])
        m.writes += 1 + len(tags)
        return
    if kind == "rename":
        old, new = op[1].strip(), op[2].strip()
        changed = store.tags.rename(op[1], op[2])
        having = [n for n in m.notes.values() if old in n["tags"]] if old != new else []
        assert changed == len(having)
        for n in having:
            n["tags"] = (n["tags"] - {old}) | {new}
        m.writes += len(having)
        return
    note_id = m.pick(op[1])
    if note_id is None:
        return
    n = m.notes[note_id]
    try:
        m.writes += _note_op(store, n, note_id, op)
    except (NotFound, ConstraintViolation):
        assert n["trashed"] != (kind in ("trash", "purge"))  # refused: only on the wrong side
        return
    if kind == "purge":
        del m.notes[note_id]
        m.order.remove(note_id)


def _note_op(store: DeviceStore, n: dict, note_id: str, op: tuple) -> int:
    kind = op[0]
    if kind == "tag":
        store.tags.add(note_id, op[2])
        new = op[2].strip() not in n["tags"]
        n["tags"].add(op[2].strip())
        return int(new)
    if kind == "untag":
        gone = store.tags.remove(note_id, op[2])
        assert gone == (op[2].strip() in n["tags"])
        n["tags"].discard(op[2].strip())
        return int(gone)
    if kind in ("trash", "restore"):
        (store.notes.trash if kind == "trash" else store.notes.restore)(note_id)
        changed = n["trashed"] != (kind == "trash")
        n["trashed"] = kind == "trash"
        return int(changed)
    if kind == "purge":
        store.notes.purge(note_id)
        return 1 + len(n["tags"])
    if kind == "pin":
        store.notes.pin(note_id)
        changed = not n["pinned"]
        n["pinned"] = True
        return int(changed)
    store.notes.edit(note_id, title=op[2])
    changed = n["title"] != op[2]
    n["title"] = op[2]
    return int(changed)


def check(store: DeviceStore, m: Model) -> None:
    data = export_all(store.db)
    assert len(data["notes"]) == len(m.notes)
    assert len(data["note_tags"]) == sum(len(n["tags"]) for n in m.notes.values())
    assert store.db.scalar("SELECT count(*) FROM outbox") == m.writes
    for note_id, n in m.notes.items():
        row = store.notes.get(note_id)
        assert (row["title"], bool(row["deleted"]), bool(row["is_pinned"])) == (
            n["title"],
            n["trashed"],
            n["pinned"],
        )
        assert store.tags.list_for(note_id) == sorted(n["tags"])
    live = [n for n in m.notes.values() if not n["trashed"]]
    want: dict[str, int] = {}
    for n in live:
        for t in n["tags"]:
            want[t] = want.get(t, 0) + 1
    assert store.tags.counts() == dict(sorted(want.items()))
    assert store.notes.count() == len(live)
    assert len(store.notes.list_recent(100)) == len(live)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OPS, max_size=25))
def test_note_and_tag_calls_match_a_plain_model(ops: list[tuple]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with DeviceStore.open(Path(tmp) / "device.db") as store:
            m = Model()
            for op in ops:
                apply(store, m, op)
            check(store, m)
