"""Full-text search: ranking, syntax, folding, filters, snippets, and an index kept right."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duru.errors import SearchQueryError, StoreError, UsageError
from duru.local import Database
from duru.local.maintenance import (
    CRISIS_MERGE,
    HARD_CAP_PAGES,
    USER_MERGE,
    Maintainer,
    WalState,
    checkpoint,
    configure_writer,
    index_shape,
    maintain,
    tune_index,
    verify_index,
    wal_state,
)
from duru.local.search import Markers, Search, SearchHit, ensure_rank, query_error
from duru.model import Row

# A property's examples share the test's database on purpose; none depends on another.
_FIXTURE_OK = [HealthCheck.function_scoped_fixture]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with Database.open(tmp_path / "device.sqlite") as database:
        yield database


def note(db: Database, title: str, body: str = "", **extra: object) -> Row:
    return db.insert("note", {"title": title, "body": body, **extra})


def titles(hits: list[SearchHit]) -> list[str]:
    return [h.title for h in hits]


def test_title_matches_outrank_body_matches(db: Database) -> None:
    note(db, "Groceries", "remember the quarterly budget review on friday")
    note(db, "Budget", "numbers for next year")
    hits = Search(db).query("budget")
    assert titles(hits) == ["Budget", "Groceries"]
    assert hits[0].score < hits[1].score  # bm25: more negative is better


def test_prefix_phrase_and_boolean_queries(db: Database) -> None:
    note(db, "Design review", "we reviewed the design of the sync server")
    note(db, "Designer meeting", "review of colours, not the design")
    note(db, "Lunch", "soup and bread")
    search = Search(db)
    # Prefixes and phrases work as typed words too; the operators need advanced syntax.
    for advanced in (False, True):
        found = search.query("desig*", advanced=advanced)
        assert set(titles(found)) == {"Design review", "Designer meeting"}
        assert titles(search.query('"design review"', advanced=advanced)) == ["Design review"]
    found = search.query("soup OR colours", advanced=True)
    assert set(titles(found)) == {"Lunch", "Designer meeting"}
    assert titles(search.query("design NOT colours", advanced=True)) == ["Design review"]
    assert titles(search.query("title:lunch", advanced=True)) == ["Lunch"]
    assert search.query("design AND bread", advanced=True) == []


@pytest.mark.parametrize(
    ("stored", "typed"),
    [("unicode", "ünïcode"), ("ünïcode", "unicode"), ("Café crème", "cafe CREME")],
)
def test_case_and_diacritics_fold_both_ways(db: Database, stored: str, typed: str) -> None:
    note(db, stored)
    note(db, "something else")
    assert titles(Search(db).query(typed)) == [stored]


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ('"unclosed', "double quote is not closed"),
        ("AND AND", 'syntax error near "AND"'),
        ("*", "cannot start with *"),
        ("NOT", 'syntax error near "NOT"'),
        ("design OR", "ends too soon"),
        ("(design", "ends too soon"),
        ("colour:red", "colour: is not a searchable field"),
    ],
)
def test_malformed_query_is_one_clear_line(db: Database, query: str, reason: str) -> None:
    note(db, "Design", "red")
    with pytest.raises(SearchQueryError) as caught:
        Search(db).query(query, advanced=True)
    message = str(caught.value)
    assert reason in message
    assert repr(query) in message
    assert "\n" not in message
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)


def test_errors_that_are_not_the_query_are_not_blamed_on_it() -> None:
    error = query_error("design", sqlite3.OperationalError("database is locked"))
    assert type(error) is StoreError
    assert error.retryable


def test_typed_words_take_any_text_literally(db: Database) -> None:
    note(db, "AND the design", 'a "quoted" word and an unclosed one')
    search = Search(db)
    assert titles(search.query('"unclosed AND')) == ["AND the design"]
    assert titles(search.query("the design AND")) == ["AND the design"]
    assert search.query("NOT design") == []  # "not" is just a word: absent
    assert search.query("* NOT (") == []


@settings(max_examples=200, deadline=None, suppress_health_check=_FIXTURE_OK)
@given(text=st.text(max_size=40))
def test_typed_words_never_raise(db: Database, text: str) -> None:
    if not db.scalar("SELECT count(*) FROM notes"):
        note(db, "Design review", "AND OR NOT * ( ) \" ' : ^ - + near NEAR")
    hits = Search(db).query(text)
    assert len(hits) <= 1


@settings(max_examples=60, deadline=None, suppress_health_check=_FIXTURE_OK)
@given(words=st.lists(st.text(st.characters(categories=("L", "N")), min_size=1), min_size=1))
def test_typed_words_find_a_note_by_its_own_words(db: Database, words: list[str]) -> None:
    title = " ".join(words)
    row = note(db, title)
    hits = Search(db).query(title, limit=1000)
    assert row["id"] in {h.id for h in hits}
    db.delete("note", row["id"])


def test_snippets_mark_matches_with_configurable_markers(db: Database) -> None:
    body = " ".join(["filler"] * 30 + ["the", "design", "review", "is", "friday"] + ["end"] * 30)
    note(db, "Weekly design", body)
    hit = Search(db).query("design", snippet_tokens=5)[0]
    assert hit.title_marked == "Weekly [design]"
    assert "[design]" in hit.snippet
    assert hit.snippet.startswith("…") and hit.snippet.endswith("…")
    assert len(hit.snippet.strip("…").split()) == 5
    html = Search(db).query("design", markers=Markers("<b>", "</b>", "..."))[0]
    assert html.title_marked == "Weekly <b>design</b>"
    assert "<b>design</b>" in html.snippet and "..." in html.snippet


def test_filters_by_tag_folder_and_pinned(db: Database) -> None:
    folder = db.insert("folder", {"name": "Work"})
    a = note(db, "alpha plan", is_pinned=True)
    b = note(db, "beta plan")
    c = note(db, "gamma plan")
    db.insert("note_tag", {"note_id": a["id"], "tag": "urgent"})
    db.insert("note_tag", {"note_id": c["id"], "tag": "urgent"})
    db.insert("note_folder", {"note_id": b["id"], "folder_id": folder["id"]})
    db.insert("note_folder", {"note_id": c["id"], "folder_id": folder["id"]})
    search = Search(db)
    assert set(titles(search.query("plan", tag="urgent"))) == {"alpha plan", "gamma plan"}
    assert set(titles(search.query("plan", folder_id=folder["id"]))) == {"beta plan", "gamma plan"}
    assert titles(search.query("plan", pinned=True)) == ["alpha plan"]
    assert set(titles(search.query("plan", pinned=False))) == {"beta plan", "gamma plan"}
    assert titles(search.query("plan", tag="urgent", folder_id=folder["id"])) == ["gamma plan"]
    assert search.query("plan", tag="nope") == []
    assert set(titles(search.query("plan", tag=" urgent "))) == {"alpha plan", "gamma plan"}
    assert search.query("plan", pinned=True)[0].is_pinned


def test_filters_never_cut_the_top_n_short(db: Database) -> None:
    # 40 strong matches without the tag outrank the 3 weak ones that have it.
    for i in range(40):
        note(db, f"report {i}", "report report report")
    weak = "a long body that mentions the report once " * 5
    tagged = [note(db, f"misc {i}", weak) for i in range(3)]
    for row in tagged:
        db.insert("note_tag", {"note_id": row["id"], "tag": "rare"})
    hits = Search(db).query("report", tag="rare", limit=20)
    assert {h.id for h in hits} == {r["id"] for r in tagged}


def test_pages_follow_rank_order_without_overlap(db: Database) -> None:
    for i in range(25):
        note(db, f"note {i}", "topic " * (i + 1) + "padding " * 20)
    search = Search(db)
    everything = search.query("topic", limit=100)
    pages = [search.query("topic", limit=10, offset=o) for o in (0, 10, 20)]
    assert [h.id for page in pages for h in page] == [h.id for h in everything]
    assert len(everything) == 25
    assert [h.score for h in everything] == sorted(h.score for h in everything)


def test_blank_text_finds_nothing_and_bad_windows_are_refused(db: Database) -> None:
    note(db, "anything")
    search = Search(db)
    assert search.query("") == [] and search.query("   ") == []
    with pytest.raises(UsageError):
        search.query("anything", limit=-1)
    with pytest.raises(UsageError):
        search.query("anything", snippet_tokens=65)


def test_index_follows_edits_trash_restore_and_purge(db: Database) -> None:
    search = Search(db)
    row = note(db, "Kickoff", "agenda for the launch")
    other = note(db, "Other", "launch party")
    assert set(titles(search.query("launch"))) == {"Kickoff", "Other"}

    db.update("note", row["id"], {"title": "Retro", "body": "what went well"})
    assert titles(search.query("launch")) == ["Other"]
    assert titles(search.query("retro")) == ["Retro"]
    assert search.query("kickoff") == []

    db.update("note", row["id"], {"deleted": True})  # to the trash
    assert search.query("retro") == []
    db.update("note", row["id"], {"body": "edited while in the trash"})
    assert search.query("trash") == []
    db.update("note", row["id"], {"deleted": False})  # restored
    assert titles(search.query("trash")) == ["Retro"]

    db.update("note", row["id"], {"is_pinned": True})  # not a searched field
    assert titles(search.query("retro")) == ["Retro"]
    db.delete("note", row["id"])  # purged
    assert search.query("retro") == []
    db.delete("note", other["id"])
    assert search.query("launch") == []
    assert verify_index(db) == 0


def test_index_stays_exactly_right_through_a_mixed_history(db: Database) -> None:
    rows = [note(db, f"title {i} alpha", f"body {i} beta gamma ünïcode") for i in range(60)]
    for i, row in enumerate(rows):
        key = row["id"]
        if i % 5 == 0:
            db.update("note", key, {"deleted": True})
        if i % 10 == 0:
            db.update("note", key, {"deleted": False, "body": f"restored {i}"})
        if i % 7 == 0:
            db.update("note", key, {"title": f"renamed {i}"})
        if i % 11 == 0:
            db.delete("note", key)
    assert verify_index(db) == 0
    live = db.scalar("SELECT count(*) FROM notes WHERE deleted = 0")
    assert len(Search(db).query("title OR renamed", limit=1000, advanced=True)) == live


def test_verify_index_notices_a_stale_entry(db: Database) -> None:
    row = note(db, "stale", "entry")
    # Bypass the triggers' rule of "live notes only": index a trashed note by hand.
    db.update("note", row["id"], {"deleted": True})
    db.conn.execute(
        "INSERT INTO notes_fts (rowid, title, body) SELECT doc_id, title, body FROM notes"
    )
    assert verify_index(db) > 0


def test_rank_weights_are_stored_once_when_asked(db: Database) -> None:
    note(db, "x")
    before = db.conn.total_changes
    Search(db).query("x")
    assert db.conn.total_changes == before  # search itself never writes
    ensure_rank(db)
    stored = db.conn.total_changes
    ensure_rank(db)
    assert db.conn.total_changes == stored
    assert db.scalar("SELECT v FROM notes_fts_config WHERE k = 'rank'") == "bm25(10.0, 1.0)"


# -- maintenance: merges and checkpoints off the write path, the index unchanged by them --------


def _spread_writes(db: Database, count: int, tag: str = "") -> list[Row]:
    """``count`` notes, each in its own transaction: one new FTS segment apiece."""
    words = "alpha beta gamma delta epsilon zeta eta theta".split()
    return [
        note(db, f"{words[i % 8]} {tag} {i}", " ".join(words[: 1 + i % 8]) + f" n{i}")
        for i in range(count)
    ]


def _answers(db: Database) -> dict[str, list[tuple[str, float]]]:
    search = Search(db)
    queries = ["alpha", "beta gamma", "eps*", '"gamma delta"', "zeta OR theta", "alpha NOT beta"]
    return {
        q: [(h.id, round(h.score, 9)) for h in search.query(q, limit=500, advanced=True)]
        for q in queries
    }


def test_tuning_turns_merges_in_commit_off_once(db: Database) -> None:
    tune_index(db)
    config = dict(db.conn.execute("SELECT k, v FROM notes_fts_config").fetchall())
    assert config["automerge"] == 0 and config["crisismerge"] == CRISIS_MERGE
    before = db.conn.total_changes
    tune_index(db)
    assert db.conn.total_changes == before
    configure_writer(db)
    assert db.scalar("PRAGMA wal_autocheckpoint") == HARD_CAP_PAGES


def test_segments_pile_up_without_automerge_and_maintain_merges_them(db: Database) -> None:
    tune_index(db)
    _spread_writes(db, 40)
    shape = index_shape(db.conn)
    assert shape.level0 >= 40
    assert shape.segments == db.scalar("SELECT count(DISTINCT segid) FROM notes_fts_idx")
    report = maintain(db, max_steps=1000)
    assert report.merge_done and report.merge_steps > 0
    assert report.shape.level0 < USER_MERGE
    assert report.shape.segments == db.scalar("SELECT count(DISTINCT segid) FROM notes_fts_idx")


def test_maintain_is_bounded(db: Database) -> None:
    tune_index(db)
    for i in range(40):  # enough distinct words that a merge spans many pages
        note(db, f"n{i}", " ".join(f"w{i * 7 + j}x{j}" for j in range(400)))
    assert not index_shape(db.conn).merging
    report = maintain(db, max_steps=1, pages=1)
    assert report.merge_steps == 1 and not report.merge_done
    assert report.shape.merging  # an incremental merge is left open, to resume
    assert not maintain(db, max_steps=10_000).shape.merging


def test_results_do_not_depend_on_merge_state(db: Database) -> None:
    tune_index(db)
    rows = _spread_writes(db, 60)
    for row in rows[::7]:
        db.update("note", row["id"], {"deleted": True})
    unmerged = _answers(db)
    assert index_shape(db.conn).level0 > 50 and all(unmerged.values())
    maintain(db, max_steps=3, pages=2)  # part way
    assert _answers(db) == unmerged
    maintain(db, max_steps=10_000)
    assert _answers(db) == unmerged
    db.conn.execute("INSERT INTO notes_fts (notes_fts) VALUES ('optimize')")
    assert index_shape(db.conn).segments == 1
    assert _answers(db) == unmerged
    assert verify_index(db) == 0


def _backlogs_while_editing(db: Database, count: int) -> list[int]:
    row = note(db, "edited", "")
    found = []
    for i in range(count):
        db.update("note", row["id"], {"body": f"edit {i}"})
        state = wal_state(db.path)
        assert state is not None
        found.append(state.backlog)
    return found


def test_the_writer_caps_the_wal_even_without_a_maintainer(db: Database) -> None:
    db.conn.execute("PRAGMA wal_autocheckpoint = 0")  # control: nothing checkpoints
    assert max(_backlogs_while_editing(db, 30)) > 40
    checkpoint(db.conn)
    configure_writer(db, hard_cap_pages=40)
    backlogs = _backlogs_while_editing(db, 60)
    assert max(backlogs) < 40  # the commit that crosses the cap checkpoints
    assert backlogs.count(0) >= 2


def test_wal_state_reads_the_same_frames_sqlite_reports(db: Database) -> None:
    db.conn.execute("PRAGMA wal_autocheckpoint = 0")
    _spread_writes(db, 10)
    before = wal_state(db.path)
    assert before is not None and before.backlog > 0
    after = checkpoint(db.conn)
    assert after.frames == before.frames
    assert wal_state(db.path) == WalState(after.frames, after.backfilled)
    assert after.backlog == 0


def test_maintainer_merges_and_checkpoints_once_writes_pause(db: Database) -> None:
    tune_index(db)
    configure_writer(db)
    with Maintainer(db.path, idle=0.05, busy_checkpoint_pages=10**6) as maintainer:
        assert maintainer.running
        _spread_writes(db, 30)
        assert maintainer.wait_settled(timeout=30)
    assert not maintainer.running and maintainer.error is None
    assert maintainer.merge_steps > 0 and maintainer.checkpoints > 0
    assert index_shape(db.conn).level0 < USER_MERGE
    # Checkpointed in full, then started over by the maintainer's own small write.
    state = wal_state(db.path)
    assert state is not None and 0 < state.frames == state.backlog <= 2
    assert maintainer.wal_restarts >= 1
    assert verify_index(db) == 0


def test_maintainer_leaves_a_few_segments_for_later(db: Database) -> None:
    tune_index(db)
    configure_writer(db)
    with Maintainer(db.path, idle=0.05, merge_at=8) as maintainer:
        _spread_writes(db, 5)
        assert maintainer.wait_settled(timeout=30)
        assert maintainer.merge_steps == 0 and index_shape(db.conn).level0 == 5
        _spread_writes(db, 5)
        assert maintainer.wait_settled(timeout=30)
    assert maintainer.merge_steps > 0 and index_shape(db.conn).level0 < USER_MERGE
    assert maintainer.error is None


def test_maintainer_checkpoints_while_writes_go_on(db: Database) -> None:
    configure_writer(db)
    with Maintainer(db.path, idle=60, busy_checkpoint_pages=20) as maintainer:
        deadline = time.monotonic() + 30
        while maintainer.checkpoints == 0 and time.monotonic() < deadline:
            _spread_writes(db, 5)  # never quiet for 60 s: only the WAL size can trigger
    assert maintainer.checkpoints > 0 and maintainer.merge_steps == 0
    assert maintainer.error is None


def test_maintainer_keeps_its_error_and_refuses_a_second_start(tmp_path: Path) -> None:
    maintainer = Maintainer(tmp_path)  # a directory: no database can open there
    maintainer.start()
    with pytest.raises(RuntimeError):
        maintainer.start()
    deadline = time.monotonic() + 10
    while maintainer.running and time.monotonic() < deadline:
        time.sleep(0.01)
    maintainer.stop()
    assert maintainer.error is not None


def test_a_query_matching_more_than_the_candidates_ranks_the_newest(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("duru.local.search.RANK_CANDIDATES", 5)
    # Twelve notes, oldest first; the two best matches (the word in the title) are old.
    made = [
        note(db, "common" if i in (0, 1) else f"note {i}", f"a common word, said {i} times")
        for i in range(12)
    ]
    db.insert("note_tag", {"note_id": made[2]["id"], "tag": "old"})
    db.insert("note_tag", {"note_id": made[3]["id"], "tag": "old"})
    search = Search(db)
    newest = {f"note {i}" for i in range(7, 12)}
    hits = search.query("common", limit=5)
    assert set(titles(hits)) == newest  # the newest five, ranked among themselves
    assert [h.score for h in hits] == sorted(h.score for h in hits)
    # Filters apply before the cut: the tagged old notes are still found.
    assert set(titles(search.query("common", tag="old"))) == {"note 2", "note 3"}
    # Pages go on group by group (the next-newest five, ranked, then the rest): the
    # order is fixed, so pages of any size tile it, every match on exactly one page.
    order = titles(search.query("common", limit=12))
    assert set(order[:5]) == newest and set(order[5:10]) == {f"note {i}" for i in range(2, 7)}
    assert set(order[10:]) == {"common"}
    for size in (1, 3, 4, 5, 7):
        pages = [search.query("common", limit=size, offset=at) for at in range(0, 12, size)]
        assert [t for page in pages for t in titles(page)] == order
    assert search.query("common", limit=5, offset=12) == []
    # Each score is the note's true bm25 over the whole index, as with no bound.
    monkeypatch.setattr("duru.local.search.RANK_CANDIDATES", 100)
    full = {h.title: h.score for h in search.query("common", limit=20)}
    assert titles(search.query("common", limit=2)) == ["common", "common"]
    assert all(full[h.title] == pytest.approx(h.score) for h in hits)
