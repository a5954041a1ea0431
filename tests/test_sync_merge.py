"""Three-way merge (duru.sync.merge): properties, and the cases users see."""

from __future__ import annotations

from unittest.mock import patch

from hypothesis import given
from hypothesis import strategies as st

from duru.model import NOTE, TASK, TEMPLATE
from duru.sync import merge
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
    # Stored JSON that does not parse (no device writes it): a clash, not a failed sync.
    merged = merge_row(TEMPLATE, base, {**base, "metadata": "{oops"}, theirs)
    assert merged.conflicts == ["metadata"] and merged.row["metadata"] == '{"k":3}'


def _lcs(o: list[str], x: list[str]) -> int:
    best = [[0] * (len(x) + 1) for _ in range(len(o) + 1)]
    for i in reversed(range(len(o))):
        for j in reversed(range(len(x))):
            same = best[i + 1][j + 1] + 1 if o[i] == x[j] else 0
            best[i][j] = max(same, best[i + 1][j], best[i][j + 1])
    return best[0][0]


tokens = st.lists(st.sampled_from(["a", "b", " ", "東京"]), max_size=30)


@given(tokens, tokens, tokens)
def test_long_text_paths_match_in_order_and_merge_alike(
    o: list[str], a: list[str], b: list[str]
) -> None:
    """Anchors and the fewest-edits diff (for long texts) on short ones: their matches are
    equal tokens in order, as many as can be when found by fewest edits, and merge3 keeps
    its properties."""
    found = merge._fewest_edits(o, a, 0, len(o), 0, len(a))
    if found is not None:
        assert len(found) == _lcs(o, a)
    with patch.object(merge, "_DIFF_TOKENS", 0), patch.object(merge, "_MAX_EDITS", 8):
        pairs = sorted(merge._matches(o, a).items())
        assert all(o[i] == a[j] for i, j in pairs)
        assert all(i < k and j < m for (i, j), (k, m) in zip(pairs, pairs[1:], strict=False))
        assert merge3(o, o, b) == (b, True) and merge3(o, a, o) == (a, True)
        merged, clean = merge3(o, a, b)
        assert set(merged) <= set(a) | set(b)
        if a == b:
            assert clean and merged == a


def test_a_long_one_line_text_of_one_word_merges_edits_far_apart() -> None:
    base = " ".join(["ha"] * 9_900)
    words = base.split(" ")
    mine, theirs = list(words), list(words)
    mine[10], mine[9_000], theirs[5_000] = "A", "B", "C"
    assert merge_text(base, " ".join(mine), " ".join(theirs)) == (
        " ".join(mine[:5_000] + ["C"] + mine[5_001:]),
        True,
    )
    # Edits past the fewest-edits bound in a stretch with nothing to anchor it: a clash
    # (the caller keeps mine whole).
    many = [("X" if i % 7 == 0 else w) for i, w in enumerate(words)]
    assert merge_text(base, " ".join(many), " ".join(theirs))[1] is False
