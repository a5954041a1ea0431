"""`duru demo` and the library's run_demo: every section, right answers, extensible steps."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from test_cli import invoke, ok
from test_cli_errors import one_line_error

from duru.demo import ALL_STEPS, STEPS, DemoContext, Shown, run_demo
from duru.demo.content import FOLDERS, NOTES
from duru.errors import UsageError
from duru.local import DeviceStore
from duru.local.export import EXPORT_KEY


@pytest.fixture(scope="module")
def result(pg_scratch: Callable[[str], Path]) -> dict[str, Shown]:
    # The demo starts an embedded server in its folder: keep it out of pytest's tmp root.
    done = run_demo(pg_scratch("demo") / "demo", extra_notes=40)
    assert [s.name for s in done.steps] == [name for name, _ in ALL_STEPS]
    assert all(s.ms >= 0 for s in done.steps)
    return {s.name: s.shown for s in done.steps}


def test_seeding_counts(result: dict[str, Shown]) -> None:
    counts = {r["what"]: r["count"] for r in result["seed"].rows}
    assert counts["folders"] == len(FOLDERS) and counts["deepest folder"] == 5
    assert counts["sample notes"] == len(NOTES) and counts["generated notes"] == 40
    assert counts["tasks (with subtasks)"] == sum(len(n.tasks) for n in NOTES)


def test_folder_tree_is_depth_first(result: dict[str, Shown]) -> None:
    names = [r["folder"] for r in result["folder tree"].rows]
    assert [n.strip() for n in names] == [
        "Work",
        "Duru",
        "Design",
        "Sync",
        "Conflicts",
        "Meetings",
        "Personal",
        "Travel",
        "Lisbon 2026",
        "Recipes",
        "Reading",
    ]
    assert names[4] == "        Conflicts"


def test_recent_lists_pinned_first(result: dict[str, Shown]) -> None:
    rows = result["recent"].rows
    pinned = {n.title for n in NOTES if n.pinned}
    assert {r["title"] for r in rows[: len(pinned)]} == pinned
    assert not any(r["pinned"] for r in rows[len(pinned) :])


def test_searches_find_what_they_should(result: dict[str, Shown]) -> None:
    hits: dict[str, list[dict[str, str]]] = {}
    current = ""
    for row in result["search"].rows:
        current = row["search"].split(":")[0] or current
        hits.setdefault(current, []).append(row)
    assert len(hits["prefix"]) == 3
    assert all("[desig" in (h["title"] + h["snippet"]).lower() for h in hits["prefix"])
    assert hits["phrase"][0]["title"] == "[Design review]: sync conflicts"
    assert [h["title"] for h in hits["accents folded"]] == ["Lisbon itinerary"]
    assert "[São]" in hits["accents folded"][0]["snippet"]
    assert {h["title"] for h in hits["tag filter"]} == {
        "[Sync] protocol v2",
        "Design review: [sync] conflicts",
    }


def test_open_tasks_due_soonest_first(result: dict[str, Shown]) -> None:
    dues = [r["due"] for r in result["open tasks"].rows]
    dated = [d for d in dues if d]
    assert dated and dated == sorted(dated)
    assert dues == dated + [""] * (len(dues) - len(dated))  # undated ones last
    assert len(dues) == min(8, sum(len(n.tasks) for n in NOTES))


def test_tags_and_links(result: dict[str, Shown]) -> None:
    notes = [r["notes"] for r in result["tags"].rows]
    assert notes == sorted(notes, reverse=True)
    sources = {r["linked from"] for r in result["links"].rows}
    assert sources == {n.title for n in NOTES if "Sync protocol v2" in n.links}


def test_trash_and_restore_keep_search_right(result: dict[str, Shown]) -> None:
    rows = result["trash and restore"].rows
    assert [(r["stage"], r["found"], r["in trash"]) for r in rows] == [
        ("before", True, 0),
        ("after trash", False, 1),
        ("after restore", True, 0),
    ]


def test_export_summary_matches_the_file(result: dict[str, Shown]) -> None:
    counts = {r["table"]: r["rows"] for r in result["export"].rows}
    backup = Path(result["export"].lines[0].split(": ", 1)[1].rsplit(" (", 1)[0])
    exported = json.loads(backup.read_text(encoding="utf-8"))
    del exported[EXPORT_KEY]  # the header: format, schema and model of the export
    assert counts == {table: len(rows) for table, rows in exported.items()}
    assert counts["notes"] == len(NOTES) + 40 and counts["quarantine"] == 0


def test_steps_can_be_extended_and_cleaned_up(tmp_path: Path) -> None:
    cleaned: list[str] = []

    def extra(ctx: DemoContext) -> Shown:
        ctx.cleanup.callback(cleaned.append, "done")
        return Shown("Extra", ("notes",), [{"notes": ctx.store.notes.count()}])

    seen: list[str] = []
    done = run_demo(
        tmp_path,
        extra_notes=0,
        steps=[STEPS[0], ("extra", extra)],
        on_step=lambda s: seen.append(s.name),
    )
    assert seen == ["seed", "extra"] and cleaned == ["done"]
    assert done.steps[1].shown.rows == [{"notes": len(NOTES)}]
    with DeviceStore.open(done.database, create=False) as store:
        assert store.notes.count() == len(NOTES)
    with pytest.raises(UsageError, match="already exists"):
        run_demo(tmp_path, extra_notes=0)
    with pytest.raises(UsageError, match="negative"):
        run_demo(tmp_path / "other", extra_notes=-1)


def test_demo_command_prints_every_section(pg_scratch: Callable[[str], Path]) -> None:
    tmp_path = pg_scratch("demo-cli")
    out = ok(None, "demo", "--dir", str(tmp_path), "--notes", "20").stdout
    for title in (
        "Sample notebook",
        "Folder tree",
        "Recent notes",
        "Full-text search",
        "Open tasks",
        "Tags",
        "Trash and restore",
        "Export",
        "Schema check",
        "Upload (end-to-end encrypted)",
        "What the server sees",
        "Download to a new device",
        "Timings",
        " ms",
        str(tmp_path / "duru-demo.sqlite"),
    ):
        assert title in out, title
    one_line_error(invoke(None, "demo", "--dir", str(tmp_path)), "already exists")


def test_demo_command_json_and_default_temporary_folder() -> None:
    printed = json.loads(ok(None, "demo", "--notes", "5", "--json").stdout)
    assert [s["name"] for s in printed["steps"]] == [name for name, _ in ALL_STEPS]
    database = Path(printed["database"])
    assert database.exists() and database.parent.name.startswith("duru-demo-")
    shutil.rmtree(database.parent)


def test_server_steps_show_ciphertext_only_and_a_faithful_round_trip(
    result: dict[str, Shown],
) -> None:
    assert any("compatible with model" in line for line in result["schema check"].lines)
    assert not any("NOT compatible" in line for line in result["schema check"].lines)
    uploaded = {r["entity"]: r["rows"] for r in result["upload"].rows}
    assert uploaded["note"] == len(NOTES) + 40
    view = result["server view"]
    assert view.rows[0]["title_enc"].startswith("02")  # envelope format version 2 (padded)
    assert view.lines == ["rows on the server containing the words 'sync conflicts': 0"]
    assert result["wrong passphrase"].lines[-1] == "file written: False"
    assert result["download"].lines[-1] == "export identical to the original device: True"


def test_sync_steps_keep_two_devices_the_same_and_every_word(result: dict[str, Shown]) -> None:
    devices = result["two devices"]
    assert devices.lines == ["device B holds exactly what A holds: True"]
    offline = result["offline edits"]
    assert offline.lines[-1] == "both devices hold the same notes: True"
    a, b = offline.rows
    assert a == {**b, "device": "A"}
    assert a["offline notes"] == 2
    # One title changed both ways: the first write stays, the other is a conflicted copy.
    assert "(A's agenda)" in a["clashing title"] and "(B's notes)" in a["conflicted copy"]
    # Different lines of one note: both edits merged.
    assert "(moved to Tuesday on A)" in a["merged note"] and "(added on B)" in a["merged note"]
