"""Three-way merge (duru.sync.merge): properties, and the cases users see."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from duru.model import NOTE, TASK, TEMPLATE
from duru.sync.merge import keep_side, merge3, merge_json, merge_row, merge_text

ROW = {f.name: None for f in NOTE.fields} | {"id": "n", "created_at": 1, "deleted": 0}
lines = st.lists(st.sampled_from(["a\n", "b\n", "c\n", "東京\n", "🎉\n", "\n"]), max_size=12)


@given(lines, lines)
def test_a_side_that_left_the_base_alone_takes_the_other(o: list[str], x: list[str]) -> None:
    assert merge3(o, o, x) == (x, True)
    assert merge3(o, x, o) == (x, True)


@given(lines, lines)
def test_the_same_change_on_both_sides_is_taken_once(o: list[str], x: list[str]) -> None:
    merged, clean = merge3(o, x, x)
    assert clean and merged == x


@given(lines, lines, lines)
def test_a_merge_invents_nothing_and_is_clean_when_the_sides_agree(
    o: list[str], a: list[str], b: list[str]
) -> None:
    merged, clean = merge3(o, a, b)
    assert set(merged) <= set(a) | set(b)
    if a == b:
        assert clean and merged == a


def test_edits_to_different_paragraphs_both_survive() -> None:
    base = "Intro\n\nMiddle\n\nEnd\n"
    mine = "Intro, edited on A\n\nMiddle\n\nEnd\n"
    theirs = "Intro\n\nMiddle\n\nEnd, edited on B\n"
    assert merge_text(base, mine, theirs) == (
        "Intro, edited on A\n\nMiddle\n\nEnd, edited on B\n",
        True,
    )


def test_words_of_a_title_merge_and_a_clash_keeps_theirs() -> None:
    assert merge_text("weekly sync notes", "weekly SYNC notes", "weekly sync notes 東京") == (
        "weekly SYNC notes 東京",
        True,
    )
    assert merge_text("plan", "plan A", "plan B") == ("plan B", False)


def test_a_row_merges_per_field() -> None:
    base = {
        "id": "n",
        "title": "t",
        "body": "x\ny\n",
        "is_pinned": 0,
        "updated_at": 1,
        "version": 3,
    }
    mine = {**base, "title": "t mine", "is_pinned": 1, "updated_at": 5}
    theirs = {**base, "body": "x\ny\nz\n", "updated_at": 4, "version": 9}
    merged = merge_row(NOTE, base, mine, theirs)
    assert merged.clean
    changed = {k: v for k, v in merged.row.items() if base.get(k) != v}
    assert changed == {
        "title": "t mine",
        "body": "x\ny\nz\n",
        "is_pinned": 1,
        "updated_at": 5,
        "version": 9,
    }


def test_a_clash_is_reported_with_the_field() -> None:
    base = {**ROW, "title": "t", "body": "one\n", "version": 1}
    merged = merge_row(NOTE, base, {**base, "body": "mine\n"}, {**base, "body": "theirs\n"})
    assert merged.conflicts == ["body"] and merged.row["body"] == "theirs\n"


def test_a_text_cleared_on_one_side_and_edited_on_the_other_is_a_clash() -> None:
    base = {**ROW, "title": "t", "body": "b", "metadata": "m", "version": 1}
    for mine, theirs in ((None, "m edited"), ("m edited", None)):
        merged = merge_row(NOTE, base, {**base, "metadata": mine}, {**base, "metadata": theirs})
        assert merged.conflicts == ["metadata"] and merged.row["metadata"] == theirs
    # Cleared on one side only: no clash.
    merged = merge_row(NOTE, base, {**base, "metadata": None}, base)
    assert merged.clean and merged.row["metadata"] is None


def test_label_lists_merge_as_sets() -> None:
    base = {f.name: None for f in TASK.fields} | {"id": "t", "labels": '["shop","home"]'}
    mine = {**base, "labels": '["shop","home","urgent"]'}
    theirs = {**base, "labels": '["home","weekly"]'}
    merged = merge_row(TASK, base, mine, theirs)
    assert merged.clean and merged.row["labels"] == '["home","weekly","urgent"]'
    # --keep mine of a merged row keeps what merged cleanly from the other side.
    assert keep_side(TASK, base, merged.row, mine)["labels"] == merged.row["labels"]
    # Cleared on one side (NULL): its labels go, what the other added stays.
    assert merge_json(["a"], None, ["a", "b"]) == (["b"], True)
    assert merge_json(["a"], None, []) == (None, True)
    assert merge_json(["a"], None, ["b"]) == (["b"], True)
    assert merge_json(["a", "b"], ["b"], None) == (None, True)
    # 1, 1.0 and true are three labels, not one.
    assert merge_json([], [1, True], [1.0]) == ([1.0, 1, True], True)


@given(
    st.lists(st.sampled_from("abcdef"), unique=True),
    st.lists(st.sampled_from("abcdef"), unique=True),
    st.lists(st.sampled_from("abcdef"), unique=True),
)
def test_a_set_merge_keeps_every_addition_and_removal(
    o: list[str], a: list[str], b: list[str]
) -> None:
    merged, clean = merge_json(o, a, b)
    assert clean and len(set(merged)) == len(merged)
    for x in set(a) | set(b):
        assert (x in merged) == (x in a and x in b or x not in o)
    assert merge_json(o, o, b) == (b, True) and merge_json(o, a, o) == (a, True)


def test_json_that_does_not_merge_as_a_set_is_a_clash() -> None:
    base = {f.name: None for f in TEMPLATE.fields} | {"id": "t", "metadata": '{"k":1}'}
    mine, theirs = {**base, "metadata": '{"k":2}'}, {**base, "metadata": '{"k":3}'}
    merged = merge_row(TEMPLATE, base, mine, theirs)
    assert merged.conflicts == ["metadata"] and merged.row["metadata"] == '{"k":3}'
    assert keep_side(TEMPLATE, base, merged.row, mine)["metadata"] == '{"k":2}'
    # Repeated items or objects in a list: no set to merge.
    assert merge_json(["a"], ["a", "a"], ["b"]) == (["b"], False)
    assert merge_json([], [{"x": 1}], [{"x": 2}]) == ([{"x": 2}], False)
