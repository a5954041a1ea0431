"""`duru reminder`, `link`, `template`, `saved-search` and `attachment` on a device database."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_cli import data, invoke, ok

from duru.local import DeviceStore


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "device.sqlite"
    ok(path, "init")
    return path


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def test_reminder_commands(db: Path) -> None:
    note = data(db, "note", "add", "Trip")
    nid = note["id"][:6]
    later = data(db, "reminder", "add", nid, "2030-01-02T09:00", "--title", "pack")
    soon = data(
        db, "reminder", "add", nid, "2030-01-01", "--every", "weekly", "--until", "2031-01-01"
    )
    place = data(db, "reminder", "add", nid, "--lat", "0", "--lon", "0", "--place", "Home")
    assert later["remind_at"] == ms(datetime(2030, 1, 2, 9, tzinfo=UTC)) and later["type"] == "time"
    assert soon["type"] == "recurring" and soon["recurrence_pattern"] == "weekly"
    assert place["type"] == "location" and place["latitude"] == 0.0

    since = ["--since", "2029-12-31"]
    assert [r["id"] for r in data(db, "reminder", "list", *since)] == [soon["id"], later["id"]]
    assert [r["id"] for r in data(db, "reminder", "list", "--note", nid)] == [
        soon["id"],
        later["id"],
        place["id"],
    ]
    snoozed = data(db, "reminder", "snooze", soon["id"][:6], "2030-01-03")
    assert (
        snoozed["remind_at"] == ms(datetime(2030, 1, 3, tzinfo=UTC))
        and snoozed["snooze_count"] == 1
    )
    before = datetime.now(UTC)
    in_an_hour = data(db, "reminder", "snooze", later["id"][:6], "1h")["remind_at"]
    assert 3599 <= (in_an_hour - ms(before)) / 1000 <= 3700
    assert data(db, "reminder", "off", soon["id"][:6])["is_active"] is False
    assert [r["id"] for r in data(db, "reminder", "list")] == [later["id"]]  # from now on
    assert data(db, "reminder", "on", soon["id"][:6])["is_active"] is True
    assert data(db, "reminder", "show", place["id"][:6])["location_name"] == "Home"
    assert data(db, "reminder", "rm", place["id"][:6])["id"] == place["id"]
    assert invoke(db, "reminder", "show", place["id"]).exit_code == 3
    assert "pack" in ok(db, "reminder", "list", "--note", nid).stdout


@pytest.mark.parametrize(
    "args",
    [
        ["1700000000"],  # seconds typed where a date belongs
        ["5s"],
        ["9999999w"],
        ["999999w"],  # beyond any calendar
        ["2030-01-01", "--every", "hourly"],
        ["2030-01-01", "--interval", "2"],
        ["--lat", "91", "--lon", "0"],
        [],  # a time reminder without a time
    ],
)
def test_reminder_add_refuses_bad_times_and_shapes(db: Path, args: list[str]) -> None:
    note = data(db, "note", "add", "N")
    result = invoke(db, "reminder", "add", note["id"], *args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("duru: ") and "Traceback" not in result.output


def test_link_commands(db: Path) -> None:
    source = data(db, "note", "add", "Review")
    sid = source["id"][:6]
    waiting = data(db, "link", "add", sid, "Sync protocol")
    assert waiting["target_id"] is None
    assert [r["id"] for r in data(db, "link", "list", "--waiting")] == [waiting["id"]]
    target = data(db, "note", "add", "Sync protocol")
    assert data(db, "link", "list", sid)[0]["target_id"] == target["id"]  # resolved on create
    assert data(db, "link", "add", sid, "Sync protocol")["id"] == waiting["id"]  # idempotent
    back = data(db, "link", "backlinks", target["id"][:6])
    assert [r["source_id"] for r in back] == [source["id"]]
    assert data(db, "link", "list", "--waiting") == []
    assert data(db, "link", "rm", waiting["id"][:6])["id"] == waiting["id"]
    assert data(db, "link", "backlinks", target["id"]) == []
    assert invoke(db, "link", "list").exit_code == 2
    assert invoke(db, "link", "add", sid, "   ").exit_code == 2
    assert "Sync protocol" in ok(db, "link", "add", sid, "Sync protocol").stdout


def test_template_commands(db: Path) -> None:
    folder = data(db, "folder", "add", "Meetings")
    made = data(db, "template", "add", "Weekly 会議", "-b", "-", "-t", "work", "--category", "w")
    # `-b -` reads standard input
    with DeviceStore.open(db, create=False) as store:
        assert store.templates.get(made["id"])["body"] == ""
    tpl = data(db, "template", "add", "Stand-up 🎉", "--body", "agenda\n- a", "-t", "work")
    assert [t["title"] for t in data(db, "template", "list")] == ["Weekly 会議", "Stand-up 🎉"]
    assert data(db, "template", "show", tpl["id"][:6])["tags"] == ["work"]
    assert "agenda\n- a" in ok(db, "template", "show", tpl["id"][:6]).stdout
    note = data(db, "template", "use", tpl["id"][:6], "--folder", folder["id"][:6])
    view = data(db, "note", "show", note["id"])
    assert view["note"]["body"] == "agenda\n- a" and view["tags"] == ["work"]
    assert view["folder"]["path"] == ["Meetings"]
    assert data(db, "template", "rm", tpl["id"][:6])["id"] == tpl["id"]
    assert data(db, "note", "show", note["id"])["note"]["title"] == "Stand-up 🎉"  # note stays
    assert invoke(db, "template", "use", tpl["id"]).exit_code == 3
    assert invoke(db, "template", "add", " ").exit_code == 2


def test_saved_search_commands(db: Path) -> None:
    tokyo = data(db, "note", "add", "東京 trip", "--body", "design review", "-t", "travel")
    data(db, "note", "add", "Design notes", "--body", "other")
    plain = data(db, "saved-search", "add", "design", "design")
    travel = data(db, "saved-search", "add", "Tokyo", "東京", "-t", "travel", "--pin")
    assert travel["parameters"] == {"tag": "travel"} and travel["is_pinned"] is True
    assert [s["name"] for s in data(db, "saved-search", "list")] == ["Tokyo", "design"]

    hits = data(db, "saved-search", "run", travel["id"][:6])
    assert [h["id"] for h in hits] == [tokyo["id"]]
    assert len(data(db, "saved-search", "run", plain["id"][:6])) == 2
    shown = data(db, "saved-search", "show", travel["id"][:6])
    assert shown["usage_count"] == 1 and shown["last_used_at"] is not None
    ok(db, "saved-search", "run", travel["id"][:6], "--no-record")
    assert data(db, "saved-search", "show", travel["id"][:6])["usage_count"] == 1
    # On a terminal, matches are marked with guillemets, which Markdown gives no meaning.
    table = ok(db, "saved-search", "run", plain["id"][:6]).stdout
    assert "«" in table and "[" not in table.replace("[[", "")
    assert data(db, "saved-search", "rm", plain["id"][:6])["id"] == plain["id"]
    assert invoke(db, "saved-search", "run", plain["id"]).exit_code == 3


def test_a_saved_search_from_the_app_with_unknown_parameters_still_runs(db: Path) -> None:
    data(db, "note", "add", "milk", "--pin")
    with DeviceStore.open(db, create=False) as store:
        saved = store.saved_searches.create("m", "milk", parameters={"pinned": True, "sort": "x"})
    result = invoke(db, "saved-search", "run", saved["id"], "--json")
    assert result.exit_code == 0, result.output
    assert "sort" in result.stderr


def test_attachment_commands(db: Path, tmp_path: Path) -> None:
    note = data(db, "note", "add", "Scans")
    nid = note["id"][:6]
    picture = tmp_path / "receipt 東京.png"
    picture.write_bytes(b"\x89PNG" + bytes(range(256)) * 10)
    digest = hashlib.sha256(picture.read_bytes()).hexdigest()
    found = data(db, "attachment", "add", nid, "--from", str(picture))
    assert found == {
        **found,
        "file_name": "receipt 東京.png",
        "size_bytes": 4 + 2560,
        "sha256": digest,
        "mime_type": "image/png",
    }
    typed = data(
        db, "attachment", "add", nid, "scan.pdf", "--size", "12", "--sha256", digest.upper()
    )
    assert typed["sha256"] == digest and typed["mime_type"] is None
    assert [a["id"] for a in data(db, "attachment", "list", nid)] == [found["id"], typed["id"]]
    assert data(db, "attachment", "show", typed["id"][:6])["size_bytes"] == 12
    assert data(db, "attachment", "rm", typed["id"][:6])["id"] == typed["id"]
    assert [a["id"] for a in data(db, "attachment", "list", nid)] == [found["id"]]
    for bad in (
        ["x", "--sha256", "abc"],
        ["x", "--size", "-1"],
        ["--from", str(tmp_path)],
        ["--from", str(picture), "--size", "1"],
        ["x", "--from", str(picture)],
        [],
    ):
        result = invoke(db, "attachment", "add", nid, *bad)
        assert result.exit_code == 2, (bad, result.output)
    ok(db, "note", "rm", nid)
    assert invoke(db, "attachment", "add", nid, "late.txt").exit_code == 3  # a trashed note


def test_an_id_of_another_kind_is_not_found(db: Path) -> None:
    note = data(db, "note", "add", "N")
    for group in ("reminder", "template", "saved-search", "attachment", "link"):
        result = invoke(db, group, "rm", note["id"])
        assert result.exit_code == 3, (group, result.output)
    assert invoke(db, "link", "rm", "not-a-uuid-at-all").exit_code == 3
    assert invoke(db, "template", "use", "ffff").exit_code == 3
