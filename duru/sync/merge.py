"""Three-way merge of one row: the base the device last saw, its own version, the server's.

Per field:
- changed on one side only: that side's value;
- changed on both sides to the same value: that value;
- text changed differently on both sides: a diff3 merge (lines for multi-line text,
  words for one-line text), so edits to different paragraphs both survive; a hunk edited
  differently on both sides is a conflict: the merged text keeps the server's hunk and
  the field is reported, so the caller keeps the device's whole text as a copy;
- text cleared (NULL) on one side and edited on the other: a conflict too, the row
  keeps the server's value;
- JSON changed differently on both sides: lists of distinct plain values (task labels,
  template tags) merge as sets, an item added on either side kept and one removed on
  either side gone; other JSON (objects, lists of objects or with repeats) is a
  conflict, the row keeps the server's;
- anything else (flags, dates, enums, numbers): last writer wins in the server's
  order, and the device's write is the later one (it reaches the server after).

Pure functions; no I/O, so property tests drive them directly.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

from duru.model import Entity, Field, Kind, from_local, to_local

# Larger texts are not diffed: both sides are kept whole.
MAX_MERGE_TOKENS = 20_000
# The longest stretch (between anchors) given to difflib, quadratic in repeated tokens:
# 1,000 tokens of one word take it 0.05 s, 4,000 take 0.7 s, 20,000 half a minute.
_DIFF_TOKENS = 1_000
# A longer stretch with no anchor is diffed in time that grows with its edits (Myers):
# up to this many token inserts and deletes (0.2 s), past it one changed hunk.
_MAX_EDITS = 200
_WORDS = re.compile(r"\s+|[^\s]+")


@dataclass
class Merged:
    """The merged row and the fields whose edits clashed (merged text keeps theirs)."""

    row: dict[str, Any]
    conflicts: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.conflicts


def merge_row(
    e: Entity,
    base: Mapping[str, Any] | None,
    mine: Mapping[str, Any],
    theirs: Mapping[str, Any],
) -> Merged:
    """Merge ``mine`` (this device) and ``theirs`` (the server) against ``base``.

    With no base (the device never saw a server version of the row), every field that
    differs is treated as changed on both sides. ``version`` is always theirs: the
    merged row is a new write on top of the server's.
    """
    out = Merged(dict(theirs))
    for f in e.fields:
        name = f.name
        if name in ("version", e.key):
            continue
        old = None if base is None else base.get(name)
        a, b = mine.get(name), theirs.get(name)
        if a == b or (base is not None and a == old):
            out.row[name] = b
        elif base is not None and b == old:
            out.row[name] = a
        elif name == "updated_at":
            out.row[name] = max(a or 0, b or 0)
        elif f.kind is Kind.TEXT and isinstance(a, str) and isinstance(b, str):
            text, clean = merge_text(old if isinstance(old, str) else "", a, b)
            out.row[name] = text
            if not clean:
                out.conflicts.append(name)
        elif f.kind is Kind.TEXT:
            # Cleared (NULL) on one side, edited on the other: a clash like emptying it.
            out.row[name] = b
            out.conflicts.append(name)
        elif f.kind is Kind.JSON:
            value, clean = _merge_stored_json(f, old, a, b)
            out.row[name] = value
            if not clean:
                out.conflicts.append(name)
        else:
            out.row[name] = a
    return out


def keep_side(
    e: Entity, base: Mapping[str, Any], row: Mapping[str, Any], side: Mapping[str, Any]
) -> dict[str, Any]:
    """``row`` with ``side``'s edits (against ``base``) taken where the two clash.

    For ``--keep mine`` of a merged row: the side kept aside wins its clashing fields
    and hunks; what merged cleanly into ``row`` from elsewhere stays.
    """
    out = dict(row)
    for f in e.fields:
        name = f.name
        if name in ("version", "created_at", "updated_at", e.key):
            continue
        old, a, b = base.get(name), side.get(name), row.get(name)
        if a == old or a == b:
            continue  # the side left it alone, or row has it already
        if f.kind is Kind.TEXT and isinstance(a, str) and isinstance(b, str) and b != old:
            out[name] = merge_text(old if isinstance(old, str) else "", b, a)[0]
        elif f.kind is Kind.JSON and b != old:
            value, clean = _merge_stored_json(f, old, a, b)
            out[name] = value if clean else a  # the row's order; a clash: the side's
        else:
            out[name] = a
    return out


def merge_text(base: str, mine: str, theirs: str) -> tuple[str, bool]:
    """diff3 of three texts: (merged, clean). Clashing hunks keep ``theirs``."""
    if mine == theirs or mine == base:
        return theirs, True
    if theirs == base:
        return mine, True
    # Lines without their ends, so a last line that gained a newline is the same line.
    lines = "\n" in base + mine + theirs
    split, glue = (_lines, "\n") if lines else (_words, "")
    o, a, b = split(base), split(mine), split(theirs)
    if max(len(o), len(a), len(b)) > MAX_MERGE_TOKENS:
        return theirs, False
    merged, clean = merge3(o, a, b)
    return glue.join(merged), clean


def merge_json(base: Any, mine: Any, theirs: Any) -> tuple[Any, bool]:
    """Three-way merge of two decoded JSON values: (merged, clean). Clashes keep ``theirs``.

    Lists of distinct plain values merge as sets (NULL is the empty list): ``theirs`` in
    its order less what ``mine`` removed, then what ``mine`` added, in its order. Other
    values changed differently on both sides clash.
    """
    if mine == theirs or mine == base:
        return theirs, True
    if theirs == base:
        return mine, True
    o, a, b = _items(base), _items(mine), _items(theirs)
    if o is None or a is None or b is None:
        return theirs, False
    kept, gone, had = set(a), set(o), set(b)
    merged = [x for x in b if x in kept or x not in gone]
    merged += [x for x in a if x not in had and x not in gone]
    if not merged and (mine is None or theirs is None):
        return None, True
    return [json.loads(x) for x in merged], True


def _merge_stored_json(f: Field, base: Any, mine: Any, theirs: Any) -> tuple[Any, bool]:
    """``merge_json`` of three values of ``f`` as a device stores them (JSON text)."""
    try:
        decoded = [from_local(f, x) for x in (base, mine, theirs)]
    except ValueError:  # no device writes JSON that does not parse: keep it, a clash
        return theirs, False
    value, clean = merge_json(*decoded)
    return (to_local(f, value), True) if clean else (theirs, False)


def _items(value: Any) -> list[str] | None:
    """A list of distinct plain values as their JSON texts (None is empty); else None."""
    if value is None:
        return []
    if not isinstance(value, list) or any(isinstance(x, list | dict) for x in value):
        return None
    # As JSON texts: 1, 1.0 and true are one item to Python's ==, three to the user.
    texts = [json.dumps(x, ensure_ascii=False) for x in value]
    return texts if len(set(texts)) == len(texts) else None


def merge3(o: Sequence[str], a: Sequence[str], b: Sequence[str]) -> tuple[list[str], bool]:
    """diff3 of token lists ``a`` and ``b`` against their common ancestor ``o``.

    Walks the base: a base token that both sides kept in place is stable; between two
    stable tokens, a side that left the base alone takes the other side's tokens, equal
    changes are taken once, and different changes are a conflict (``b`` wins).
    """
    ma, mb = _matches(o, a), _matches(o, b)
    io = ia = ib = 0
    out: list[str] = []
    clean = True
    while io < len(o) or ia < len(a) or ib < len(b):
        if io < len(o) and ma.get(io) == ia and mb.get(io) == ib:
            out.append(o[io])
            io, ia, ib = io + 1, ia + 1, ib + 1
            continue
        nxt = next(
            (m for m in range(io, len(o)) if ma.get(m, -1) >= ia and mb.get(m, -1) >= ib),
            None,
        )
        eo, ea, eb = (len(o), len(a), len(b)) if nxt is None else (nxt, ma[nxt], mb[nxt])
        so, sa, sb = o[io:eo], a[ia:ea], b[ib:eb]
        if sa == so:
            out += sb
        elif sb == so or sa == sb:
            out += sa
        else:
            out += sb
            clean = False
        io, ia, ib = eo, ea, eb
    return out, clean


def _matches(o: Sequence[str], x: Sequence[str]) -> dict[int, int]:
    """Base index -> index in ``x`` of tokens the two have in common, in order.

    difflib matches short texts (up to ``_DIFF_TOKENS``). Of a long one the common start
    and end match as they are; between them, tokens found once on each side anchor the
    rest (patience diff), and difflib matches each short stretch between anchors. A long
    stretch with no anchor (one word pasted thousands of times) is diffed by fewest
    edits, up to ``_MAX_EDITS``; past that it stays unmatched, one changed hunk: a clash
    at worst, never a stalled sync. Each pair found is two equal tokens, in order.
    """
    out: dict[int, int] = {}
    todo = [(0, len(o), 0, len(x))]
    while todo:
        lo, ho, lx, hx = todo.pop()
        if max(ho - lo, hx - lx) > _DIFF_TOKENS:  # short ones: difflib alone, as ever
            lo, ho, lx, hx = _trim(o, x, lo, ho, lx, hx, out)
        if lo == ho or lx == hx:
            continue
        if max(ho - lo, hx - lx) <= _DIFF_TOKENS:
            matcher = SequenceMatcher(None, o[lo:ho], x[lx:hx], autojunk=False)
            for i, j, n in matcher.get_matching_blocks():
                for k in range(n):
                    out[lo + i + k] = lx + j + k
            continue
        anchors = _anchors(o, x, lo, ho, lx, hx)
        if not anchors:  # one word over and over: few edits are still found quickly
            out.update(_fewest_edits(o, x, lo, ho, lx, hx) or {})
            continue
        for i, j in anchors:
            out[i] = j
            todo.append((lo, i, lx, j))  # the stretch before this anchor
            lo, lx = i + 1, j + 1
        todo.append((lo, ho, lx, hx))
    return out


def _trim(
    o: Sequence[str], x: Sequence[str], lo: int, ho: int, lx: int, hx: int, out: dict[int, int]
) -> tuple[int, int, int, int]:
    """Match the common start and end of ``o[lo:ho]`` and ``x[lx:hx]``; what is left."""
    while lo < ho and lx < hx and o[lo] == x[lx]:
        out[lo] = lx
        lo, lx = lo + 1, lx + 1
    while lo < ho and lx < hx and o[ho - 1] == x[hx - 1]:
        ho, hx = ho - 1, hx - 1
        out[ho] = hx
    return lo, ho, lx, hx


def _anchors(
    o: Sequence[str], x: Sequence[str], lo: int, ho: int, lx: int, hx: int
) -> list[tuple[int, int]]:
    """The longest in-order run of (i, j) with ``o[i] == x[j]`` found once in
    ``o[lo:ho]`` and once in ``x[lx:hx]`` (patience sorting: n log n)."""
    in_o, in_x = Counter(o[lo:ho]), Counter(x[lx:hx])
    at = {x[j]: j for j in range(lx, hx) if in_x[x[j]] == 1 and in_o[x[j]] == 1}
    pairs = [(i, at[o[i]]) for i in range(lo, ho) if o[i] in at]
    ends: list[int] = []  # ends[k]: the least j that ends a run of k + 1 pairs
    last: list[int] = []  # last[k]: the pair it is
    back = [-1] * len(pairs)
    for n, (_, j) in enumerate(pairs):
        k = bisect_left(ends, j)
        back[n] = last[k - 1] if k else -1
        if k == len(ends):
            ends.append(j)
            last.append(n)
        else:
            ends[k], last[k] = j, n
    run: list[tuple[int, int]] = []
    n = last[-1] if last else -1
    while n >= 0:
        run.append(pairs[n])
        n = back[n]
    return run[::-1]


def _fewest_edits(
    o: Sequence[str], x: Sequence[str], lo: int, ho: int, lx: int, hx: int
) -> dict[int, int] | None:
    """The matches of a shortest edit script of ``o[lo:ho]`` into ``x[lx:hx]`` (Myers'
    O(ND) diff), or None when it takes more than ``_MAX_EDITS`` inserts and deletes."""
    n, m = ho - lo, hx - lx
    v = {1: 0}  # diagonal k = i - j -> the furthest i reached on it
    trace = []
    for d in range(_MAX_EDITS + 1):
        trace.append(dict(v))
        for k in range(-d, d + 1, 2):
            i = v[k + 1] if k == -d or (k != d and v[k - 1] < v[k + 1]) else v[k - 1] + 1
            j = i - k
            while i < n and j < m and o[lo + i] == x[lx + j]:
                i, j = i + 1, j + 1
            v[k] = i
            if i >= n and j >= m:
                return _walk_back(trace, n, m, lo, lx)
    return None


def _walk_back(trace: list[dict[int, int]], i: int, j: int, lo: int, lx: int) -> dict[int, int]:
    """The diagonal (matching) steps of the path ``_fewest_edits`` found to (i, j)."""
    out: dict[int, int] = {}
    for d in range(len(trace) - 1, -1, -1):
        v, k = trace[d], i - j
        pk = k + 1 if k == -d or (k != d and v[k - 1] < v[k + 1]) else k - 1
        pi = v[pk]
        while i > pi and j > pi - pk:
            i, j = i - 1, j - 1
            out[lo + i] = lx + j
        i, j = pi, pi - pk
    return out


def _lines(text: str) -> list[str]:
    return text.split("\n")


def _words(text: str) -> list[str]:
    return _WORDS.findall(text)
