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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

from duru.model import Entity, Kind, from_local, to_local

# Larger texts are not diffed (difflib is quadratic at worst): both sides are kept whole.
MAX_MERGE_TOKENS = 20_000
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
            value, clean = merge_json(*(from_local(f, x) for x in (old, a, b)))
            out.row[name] = to_local(f, value)
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
            value, clean = merge_json(*(from_local(f, x) for x in (old, a, b)))
            out[name] = to_local(f, value) if clean else a  # row's order; a clash: side's
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
    """Base index -> index in ``x`` of every token the two have in common, in order."""
    out: dict[int, int] = {}
    for i, j, n in SequenceMatcher(None, o, x, autojunk=False).get_matching_blocks():
        for k in range(n):
            out[i + k] = j + k
    return out


def _lines(text: str) -> list[str]:
    return text.split("\n")


def _words(text: str) -> list[str]:
    return _WORDS.findall(text)
