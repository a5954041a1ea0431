"""Full-text search over notes: bm25-ranked, filtered, with highlighted snippets.

Query syntax is FTS5's own, passed through because users type it: words are
ANDed (``design review``), ``desig*`` is a prefix, ``"design review"`` a
phrase, ``AND``/``OR``/``NOT`` (upper case) and parentheses combine, and
``title:word`` searches one field. A query FTS5 cannot parse raises
SearchQueryError with a one-line reason. ``plain=True`` quotes every word, so
any text a person types is a valid query (all words must occur).

Matching folds case and diacritics both ways (tokenizer ``unicode61
remove_diacritics 2``): ``ünïcode`` finds ``unicode`` and ``unicode`` finds
``ünïcode``. Only live notes are in the index; the trash is not searched.

Ranking is bm25 with the title weighted 10x the body. Each scored match
costs its term counts and length (a few microseconds), and only the best
``limit + offset`` are kept, by SQLite's top-N sorter; titles, flags and
snippets are then read for the rows returned only. (``ORDER BY rank`` is
slower on SQLite 3.40: FTS5 sorts every match there. The same weights are
still stored as the table's ``rank`` on first use, so ``ORDER BY rank``
elsewhere agrees with duru.) Filters (tag, folder, pinned) are checked per
match through indexed lookups before the cut, so they never leave the top N
short.

A query matching more than :data:`RANK_CANDIDATES` notes (after filters)
ranks the newest that many of them (the last added to this device), not all:
scoring every match of 100k notes takes 300 ms and more, and words common
enough to match that many notes are the ones bm25 gives almost no weight
(FTS5 floors the idf of a word in over half the notes at 1e-6), so their
ranking says little beyond length and repetition. Pages past them go on with
the next-newest :data:`RANK_CANDIDATES` matches, ranked among themselves, and
so on: the order is fixed, so every match is on exactly one page. Scores stay
the true bm25 of the whole index (its statistics are global), and a query
matching fewer notes is ranked in full as before. One cheap pass over the
matches' rowids, newest first (no scoring), finds where a group starts.

A snippet is an excerpt of the body around its best match (the body's start
when only the title matched); ``title_marked`` is the whole title. Matches are
wrapped in ``[`` and ``]`` with ``…`` where text was cut; pass
``Markers("<b>", "</b>", "…")`` (or any strings) for other renderings.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from duru.errors import SearchQueryError, StoreError, UsageError
from duru.local.db import Database
from duru.local.failures import sqlite_failures
from duru.local.schema import fts_table, quote
from duru.local.tags import normalize_tag
from duru.model import NOTE, NOTE_FOLDER, NOTE_TAG

# bm25 weight of each searched field, in the FTS table's column order.
WEIGHTS = {"title": 10.0, "body": 1.0}
_WEIGHTS = ", ".join(repr(WEIGHTS[f]) for f in (NOTE.search.fields if NOTE.search else ()))
RANK = f"bm25({_WEIGHTS})"
MAX_SNIPPET_TOKENS = 64  # FTS5's own limit for snippet()
RANK_CANDIDATES = 20_000  # matches ranked together, newest first (see above)

_FTS = quote(fts_table(NOTE))
_NOTES = quote(NOTE.table)

# Messages FTS5 gives for a query it cannot parse; any other error is not the user's.
_QUERY_ERRORS = {
    "fts5: syntax error near": "syntax error near {rest}",
    "unterminated string": "a double quote is not closed",
    "unknown special query": "a query cannot start with *",
    "no such column:": "{rest}: is not a searchable field (title, body)",
    "fts5: column queries are not supported": "field filters are not supported here",
    "fts5: phrase queries are not supported": "phrases are not supported here",
}


@dataclass(frozen=True, slots=True)
class Markers:
    """How a snippet marks matches (``open``/``close``) and cut text (``ellipsis``)."""

    open: str = "["
    close: str = "]"
    ellipsis: str = "…"


DEFAULT_MARKERS = Markers()


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One matching note, best first.

    ``score`` is the bm25 score (more negative is better). ``title_marked`` is
    the title with matches marked; ``snippet`` a body excerpt with matches marked.
    """

    id: str
    title: str
    title_marked: str
    snippet: str
    score: float
    is_pinned: bool
    updated_at: int


class Search:
    """Searches the notes of one device database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._ranked = False

    def query(
        self,
        text: str,
        *,
        limit: int = 20,
        offset: int = 0,
        tag: str | None = None,
        folder_id: str | None = None,
        pinned: bool | None = None,
        snippet_tokens: int = 12,
        plain: bool = False,
        markers: Markers = DEFAULT_MARKERS,
    ) -> list[SearchHit]:
        """The best ``limit`` notes matching ``text`` (after skipping ``offset``).

        ``tag`` (normalised as the tags API does), ``folder_id`` (the note's
        own folder) and ``pinned`` narrow the matches. Blank text gives no
        hits. Raises SearchQueryError for a query FTS5 cannot parse (never
        with ``plain``), UsageError for a bad window, InvalidValue for an
        empty tag.
        """
        _check_window(limit, offset, snippet_tokens)
        # FTS5 reads the query as a C string: a NUL would silently end it early.
        text = text.replace("\x00", " ")
        match = plain_query(text) if plain else text
        if not match.strip():
            return []
        self._ensure_rank()
        source, params = _matches(tag, folder_id, pinned)
        params.update(
            match=match,
            candidates=RANK_CANDIDATES,
            open=markers.open,
            close=markers.close,
            ellipsis=markers.ellipsis,
            tokens=snippet_tokens,
        )
        found: list[Any] = []
        skip, want, upper = offset, limit, None
        try:
            with sqlite_failures(self.db.path):  # a damaged page or a lock is not the query's
                # Group by group, newest first: each group is the RANK_CANDIDATES newest
                # matches at or below ``upper``, ranked; the last one holds what is left.
                while want > 0:
                    params.update(upper=upper)
                    below = self.db.conn.execute(_floor_sql(source, upper), params).fetchone()
                    floor = None if below is None else below[0]
                    if floor is not None and skip >= RANK_CANDIDATES:
                        skip, upper = skip - RANK_CANDIDATES, floor
                        continue
                    params.update(floor=floor, limit=want, offset=skip)
                    page = self.db.conn.execute(_select(source, floor, upper), params).fetchall()
                    found += page
                    if floor is None:
                        break
                    skip, want, upper = 0, want - len(page), floor
        except sqlite3.OperationalError as exc:
            raise query_error(text, exc) from exc
        return [SearchHit(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6]) for r in found]

    def _ensure_rank(self) -> None:
        if not self._ranked:
            ensure_rank(self.db)
            self._ranked = True


def ensure_rank(db: Database) -> None:
    """Store duru's bm25 weights as the FTS table's rank (a no-op when already there)."""
    config = quote(fts_table(NOTE) + "_config")
    current = db.scalar(f"SELECT v FROM {config} WHERE k = 'rank'")
    if current != RANK:
        with db.transaction():
            db.conn.execute(f"INSERT INTO {_FTS} ({_FTS}, rank) VALUES ('rank', ?)", [RANK])


def plain_query(text: str) -> str:
    """``text`` as an FTS5 query that matches notes holding every word, as typed."""
    return " ".join('"' + word.replace('"', '""') + '"' for word in text.split())


def query_error(text: str, exc: sqlite3.OperationalError) -> StoreError:
    """SearchQueryError when FTS5 rejected the query; otherwise a StoreError."""
    message = str(exc)
    for prefix, reason in _QUERY_ERRORS.items():
        if message.startswith(prefix):
            rest = message[len(prefix) :].strip()
            if rest == '""':
                reason = "it ends too soon (an operator or bracket lacks its other side)"
            return SearchQueryError(
                f"cannot search for {text!r}: {reason.format(rest=rest)}"
                ' (put words in "double quotes" to search for them as typed)'
            )
    return StoreError(f"search failed: {message}", retryable="locked" in message)


def _check_window(limit: int, offset: int, snippet_tokens: int) -> None:
    if limit < 0 or offset < 0:
        raise UsageError(f"limit and offset must not be negative (got {limit}, {offset})")
    if not 1 <= snippet_tokens <= MAX_SNIPPET_TOKENS:
        raise UsageError(f"snippet_tokens must be 1..{MAX_SNIPPET_TOKENS} (got {snippet_tokens})")


def _matches(
    tag: str | None, folder_id: str | None, pinned: bool | None
) -> tuple[str, dict[str, object]]:
    """The FROM and WHERE of the matching notes, with the filters' parameters.

    Filters sit in the WHERE of the FTS scan (indexed lookups per match), so
    they apply before any cut; CROSS JOIN keeps the FTS table the outer loop.
    """
    where = [f"{_FTS} MATCH :match"]
    params: dict[str, object] = {}
    if pinned is not None:
        where.append("n.is_pinned = :pinned")
        params["pinned"] = int(pinned)
    if tag is not None:
        where.append(
            f"EXISTS (SELECT 1 FROM {quote(NOTE_TAG.table)} t"
            " WHERE t.note_id = n.id AND t.tag = :tag)"
        )
        params["tag"] = normalize_tag(tag)
    if folder_id is not None:
        where.append(
            f"EXISTS (SELECT 1 FROM {quote(NOTE_FOLDER.table)} f"
            " WHERE f.note_id = n.id AND f.folder_id = :folder_id)"
        )
        params["folder_id"] = folder_id
    filtered = f" CROSS JOIN {_NOTES} n ON n.doc_id = {_FTS}.rowid" if len(where) > 1 else ""
    return f"{_FTS}{filtered} WHERE {' AND '.join(where)}", params


def _floor_sql(source: str, upper: int | None) -> str:
    """The rowid just below the newest ``:candidates`` matches (at or below ``:upper``
    when given); no row when there are no more.

    FTS5 walks the matches newest first without scoring them (``ORDER BY rowid
    DESC`` is its native order, no sort).
    """
    below = "" if upper is None else f" AND {_FTS}.rowid <= :upper"
    return (
        f"SELECT {_FTS}.rowid FROM {source}{below}"
        f" ORDER BY {_FTS}.rowid DESC LIMIT 1 OFFSET :candidates"
    )


def _select(source: str, floor: int | None, upper: int | None) -> str:
    """The search statement over the matches of ``source`` in ``(:floor, :upper]``
    (each bound only when given).

    The inner query ranks the matches but keeps only the best ``limit +
    offset`` (SQLite's top-N sorter). The outer query reads notes and builds
    snippets for those rows only: snippet() needs the FTS cursor on the row,
    hence the second MATCH, constrained to one rowid each. CROSS JOIN fixes
    that loop order.
    """
    bounds = "" if floor is None else f" AND {_FTS}.rowid > :floor"
    bounds += "" if upper is None else f" AND {_FTS}.rowid <= :upper"
    top = (
        f"SELECT {_FTS}.rowid AS doc_id, bm25({_FTS}, {_WEIGHTS}) AS score"
        f" FROM {source}{bounds} ORDER BY score, doc_id LIMIT :limit OFFSET :offset"
    )
    return (
        f"SELECT n.id, n.title, highlight({_FTS}, 0, :open, :close),"
        f" snippet({_FTS}, 1, :open, :close, :ellipsis, :tokens),"
        " top.score, n.is_pinned, n.updated_at"
        f" FROM ({top}) AS top"
        f" CROSS JOIN {_FTS} ON {_FTS}.rowid = top.doc_id"
        f" CROSS JOIN {_NOTES} n ON n.doc_id = top.doc_id"
        f" WHERE {_FTS} MATCH :match ORDER BY top.score, top.doc_id"
    )
