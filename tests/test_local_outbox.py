"""Every notes-API call writes exactly one outbox op per row it changed, in the same
transaction; a call that fails changes nothing and queues nothing.

Each case snapshots every table (via the export), runs one call, and compares
the rows that appeared, changed or went with the outbox rows that appeared.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from duru.errors import ConstraintViolation, DuruError, InvalidValue, NotFound
from duru.local import DeviceStore, export_all
from duru.model import BY_TABLE

World = dict[str, Any]
Op = Callable[[DeviceStore, World], object]


def snapshot(store: DeviceStore) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for table, rows in export_all(store.db).items():
        if table == "quarantine":
            continue
        key = BY_TABLE[table].key
        out.update({(BY_TABLE[table].name, row[key]): row for row in rows})
    return out


def outbox_since(store: DeviceStore, seq: int) -> list[tuple[str, str, str]]:
    cur = store.db.conn.execute(
        "SELECT entity, row_id, kind FROM outbox WHERE seq > ? ORDER BY seq", (seq,)
    )
    return [tuple(r) for r in cur]


def expected_ops(before: dict, after: dict) -> list[tuple[str, str, str]]:
    ops = [(e, k, "delete") for (e, k) in before.keys() - after.keys()]
    ops += [(e, k, "upsert") for (e, k), row in after.items() if before.get((e, k)) != row]
    return sorted(ops)


def build_world(store: DeviceStore) -> World:
    s = store
    top = s.folders.create("Top")
    sub = s.folders.create("Sub", top["id"])
    leaf = s.folders.create("Leaf", sub["id"])
    a = s.notes.create("Alpha", "a body", folder_id=sub["id"], tags=["work", "home"])
    b = s.notes.create("Beta", "b body", tags=["work"], folder_id=top["id"])
    s.links.add(a["id"], "Beta")
    waiting = s.links.add(b["id"], "Gamma")
    s.links.add(b["id"], "Alpha")
    root = s.tasks.create(a["id"], "root")
    child = s.tasks.create(a["id"], "child", parent_task_id=root["id"])
    grandchild = s.tasks.create(a["id"], "grandchild", parent_task_id=child["id"])
    other = s.tasks.create(a["id"], "other")
    rem = s.reminders.create(a["id"], remind_at=2_000_000_000_000, title="ping")
    s.tasks.edit(other["id"], reminder_id=rem["id"])
    att = s.attachments.add(a["id"], "scan.pdf", size_bytes=10, mime_type="application/pdf")
    tpl = s.templates.create("Daily", "- [ ] plan", tags=["daily"])
    saved = s.saved_searches.create("Work", "tag:work")
    trashed = s.notes.create("Old", "gone", tags=["old"])
    s.notes.trash(trashed["id"])
    return {
        "top": top["id"],
        "sub": sub["id"],
        "leaf": leaf["id"],
        "a": a["id"],
        "b": b["id"],
        "waiting": waiting["id"],
        "root": root["id"],
        "child": child["id"],
        "grandchild": grandchild["id"],
        "other": other["id"],
        "rem": rem["id"],
        "att": att["id"],
        "tpl": tpl["id"],
        "saved": saved["id"],
        "trashed": trashed["id"],
    }


OPS: dict[str, Op] = {
    "note create filed and tagged": lambda s, w: s.notes.create(
        "Gamma", "resolves a link", folder_id=w["leaf"], tags=["x", "y"]
    ),
    "note edit title resolves links": lambda s, w: s.notes.edit(w["a"], title="Gamma"),
    "note edit body": lambda s, w: s.notes.edit(w["a"], body="new"),
    "note edit nothing": lambda s, w: s.notes.edit(w["a"], title="Alpha", body="a body"),
    "note pin": lambda s, w: s.notes.pin(w["a"]),
    "note unpin unpinned": lambda s, w: s.notes.unpin(w["a"]),
    "note trash": lambda s, w: s.notes.trash(w["a"]),
    "note trash trashed": lambda s, w: s.notes.trash(w["trashed"]),
    "note restore": lambda s, w: s.notes.restore(w["trashed"]),
    "note purge with everything": lambda s, w: s.notes.purge(w["a"], force=True),
    "note purge trashed": lambda s, w: s.notes.purge(w["trashed"]),
    "note empty trash": lambda s, w: s.notes.empty_trash(),
    "folder create": lambda s, w: s.folders.create("New", w["leaf"]),
    "folder rename": lambda s, w: s.folders.rename(w["sub"], "Renamed"),
    "folder move": lambda s, w: s.folders.move(w["leaf"], None),
    "folder delete notes to parent": lambda s, w: s.folders.delete(w["sub"]),
    "folder delete notes to trash": lambda s, w: s.folders.delete(w["sub"], notes_to="trash"),
    "folder delete top unfiles": lambda s, w: s.folders.delete(w["top"]),
    "file note": lambda s, w: s.folders.file_note(w["a"], w["leaf"]),
    "refile note same folder": lambda s, w: s.folders.file_note(w["a"], w["sub"]),
    "unfile note": lambda s, w: s.folders.unfile(w["a"]),
    "tag add": lambda s, w: s.tags.add(w["a"], "new"),
    "tag add again": lambda s, w: s.tags.add(w["a"], " work "),
    "tag remove": lambda s, w: s.tags.remove(w["a"], "home"),
    "tag set_for": lambda s, w: s.tags.set_for(w["a"], ["home", "z"]),
    "tag rename merges": lambda s, w: s.tags.rename("home", "work"),
    "link add": lambda s, w: s.links.add(w["a"], "Nowhere"),
    "link remove": lambda s, w: s.links.remove(w["waiting"]),
    "task create": lambda s, w: s.tasks.create(w["a"], "new", parent_task_id=w["child"]),
    "task create at front": lambda s, w: s.tasks.create(w["a"], "first", position=0),
    "task status done": lambda s, w: s.tasks.set_status(w["root"], "completed"),
    "task priority": lambda s, w: s.tasks.set_priority(w["root"], "urgent"),
    "task due": lambda s, w: s.tasks.set_due(w["root"], 1_900_000_000_000),
    "task edit": lambda s, w: s.tasks.edit(w["root"], content="renamed", notes="n"),
    "task move": lambda s, w: s.tasks.move(w["grandchild"], w["other"]),
    "task reorder": lambda s, w: s.tasks.reorder(w["other"], 0),
    "task delete subtree": lambda s, w: s.tasks.delete(w["root"]),
    "reminder create": lambda s, w: s.reminders.create(
        w["b"], type="location", latitude=1.5, longitude=2.5, radius=100.0
    ),
    "reminder edit": lambda s, w: s.reminders.edit(w["rem"], title="pong"),
    "reminder snooze": lambda s, w: s.reminders.snooze(w["rem"], 2_100_000_000_000),
    "reminder deactivate": lambda s, w: s.reminders.deactivate(w["rem"]),
    "reminder delete unlinks tasks": lambda s, w: s.reminders.delete(w["rem"]),
    "template create": lambda s, w: s.templates.create("Weekly"),
    "template edit": lambda s, w: s.templates.edit(w["tpl"], body="changed"),
    "template instantiate": lambda s, w: s.templates.instantiate(w["tpl"], folder_id=w["top"]),
    "template delete": lambda s, w: s.templates.delete(w["tpl"]),
    "saved search create": lambda s, w: s.saved_searches.create("Home", "tag:home"),
    "saved search touch": lambda s, w: s.saved_searches.touch(w["saved"]),
    "saved search edit": lambda s, w: s.saved_searches.edit(w["saved"], is_pinned=True),
    "saved search delete": lambda s, w: s.saved_searches.delete(w["saved"]),
    "attachment add": lambda s, w: s.attachments.add(w["b"], "a.png", sha256="ab" * 32),
    "attachment remove": lambda s, w: s.attachments.remove(w["att"]),
}

FAILING: dict[str, tuple[Op, type[DuruError]]] = {
    "folder move into own subtree": (
        lambda s, w: s.folders.move(w["top"], w["leaf"]),
        ConstraintViolation,
    ),
    "note create in unknown folder": (
        lambda s, w: s.notes.create("X", folder_id="00000000-0000-4000-8000-000000000000"),
        NotFound,
    ),
    "note create with blank tag": (
        lambda s, w: s.notes.create("X", tags=["ok", " "]),
        InvalidValue,
    ),
    "purge a live note": (lambda s, w: s.notes.purge(w["a"]), ConstraintViolation),
    "edit a trashed note": (lambda s, w: s.notes.edit(w["trashed"], title="x"), NotFound),
    "task under another note's task": (
        lambda s, w: s.tasks.create(w["b"], "x", parent_task_id=w["root"]),
        ConstraintViolation,
    ),
    "task moved under its own subtask": (
        lambda s, w: s.tasks.move(w["root"], w["grandchild"]),
        ConstraintViolation,
    ),
    "task with a bad priority": (
        lambda s, w: s.tasks.create(w["a"], "x", priority="whenever"),
        InvalidValue,
    ),
    "time reminder without a time": (lambda s, w: s.reminders.create(w["a"]), InvalidValue),
    "reminder edited into nonsense": (
        lambda s, w: s.reminders.edit(w["rem"], type="location"),
        InvalidValue,
    ),
    "tag rename to blank": (lambda s, w: s.tags.rename("work", "  "), InvalidValue),
    "link with a blank title": (lambda s, w: s.links.add(w["a"], ""), InvalidValue),
    "folder delete with a bad mode": (
        lambda s, w: s.folders.delete(w["sub"], notes_to="void"),  # type: ignore[arg-type]
        InvalidValue,
    ),
    "template instantiated into an unknown folder": (
        lambda s, w: s.templates.instantiate(w["tpl"], folder_id=w["a"]),
        NotFound,
    ),
}


@pytest.fixture
def world(tmp_path: Path) -> tuple[DeviceStore, World]:
    store = DeviceStore.open(tmp_path / "device.db")
    return store, build_world(store)


def test_building_the_world_queued_one_op_per_row_change(tmp_path: Path) -> None:
    with DeviceStore.open(tmp_path / "device.db") as store:
        build_world(store)
        ops = outbox_since(store, 0)
        # Every live row has at least one upsert; nothing was deleted yet.
        assert {(e, k) for e, k, _ in ops} == set(snapshot(store))
        assert {kind for *_, kind in ops} == {"upsert"}


@pytest.mark.parametrize("name", sorted(OPS))
def test_each_call_queues_exactly_one_op_per_changed_row(
    world: tuple[DeviceStore, World], name: str
) -> None:
    store, w = world
    seq = store.db.scalar("SELECT max(seq) FROM outbox")
    before = snapshot(store)
    OPS[name](store, w)
    after = snapshot(store)
    assert sorted(outbox_since(store, seq)) == expected_ops(before, after)
    store.close()


def test_no_op_calls_queue_nothing(world: tuple[DeviceStore, World]) -> None:
    store, w = world
    seq = store.db.scalar("SELECT max(seq) FROM outbox")
    for name in ("note edit nothing", "note unpin unpinned", "note trash trashed"):
        OPS[name](store, w)
    for name in ("tag add again", "refile note same folder"):
        OPS[name](store, w)
    assert outbox_since(store, seq) == []
    store.close()


@pytest.mark.parametrize("name", sorted(FAILING))
def test_a_failing_call_changes_nothing_and_queues_nothing(
    world: tuple[DeviceStore, World], name: str
) -> None:
    store, w = world
    seq = store.db.scalar("SELECT max(seq) FROM outbox")
    before = snapshot(store)
    op, error = FAILING[name]
    with pytest.raises(error) as caught:
        op(store, w)
    assert "\n" not in str(caught.value) and str(caught.value)
    assert snapshot(store) == before
    assert outbox_since(store, seq) == []
    assert not store.db.in_transaction
    store.close()


def test_purge_leaves_nothing_for_a_cascade_to_do(world: tuple[DeviceStore, World]) -> None:
    store, w = world
    store.notes.purge(w["a"], force=True)
    left = {
        table: store.db.scalar(f"SELECT count(*) FROM {table} WHERE {col} = ?", (w["a"],))
        for table, col in [
            ("note_tags", "note_id"),
            ("note_folders", "note_id"),
            ("note_links", "source_id"),
            ("note_links", "target_id"),
            ("tasks", "note_id"),
            ("reminders", "note_id"),
            ("attachments", "note_id"),
        ]
    }
    assert set(left.values()) == {0}
    # The backlink from Beta now waits for another note titled "Alpha".
    back = [lk for lk in store.links.outgoing(w["b"]) if lk["target_title"] == "Alpha"]
    assert back[0]["target_id"] is None
    store.close()
