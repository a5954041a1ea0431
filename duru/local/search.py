"""Full-text search over notes: bm25-ranked, filtered, with highlighted snippets.

By default a query is words, as a person types them (see
:mod:`duru.local.search_words`): all must occur; ``"design review"`` is a
phrase and ``desig*`` a prefix; any other character is text, never syntax, so
no typed text is an error. ``advanced=True`` passes FTS5's own syntax
through instead: ``AND``/``OR``/``NOT`` (upper case), parentheses, ``NEAR``
and ``title:word`` as well; a query FTS5 cannot parse raises
SearchQueryError with a one-line reason.

Matching folds case and diacritics both ways (tokenizer ``unicode61
remove_diacritics 2``): ``ünïcode`` finds ``unicode`` and ``unicode`` finds
``ünïcode``. Scripts written without spaces (Chinese, Japanese, Korean, Thai
and others) and emoji are found as substrings of the title or body, exactly
(the tokenizer keeps a whole unspaced sentence as one word and drops emoji).
Only live notes are searched; the trash is not.

Ranking is bm25 with the title weighted 10x the body. Each scored match
costs its term counts and length (a few microseconds), and only the best
``limit + offset`` are kept, by SQLite's top-N sorter; titles, flags and
snippets are then read for the rows returned only. (``ORDER BY rank`` is
slower on SQLite 3.40: FTS5 sorts every match there.) Filters (tag, folder,
pinned) are checked per match through indexed lookups before the cut, so
they never leave the top N short. A query of substrings only has no index to
use: it reads every live note (about 2 ms per thousand notes of 1.5 KB) and
scores each match by its occurrences, saturated as bm25 does, title 10x
body. Search never writes to the database, so it works on a read-only file
and beside another writer.

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
``Markers("<b>", "</b>", "…")`` (or any strings) for other renderings. Marking
reads a few hundred words of a note at most (its cost grows with the square of
the matches it reads), so a note of any size costs milliseconds; see
:mod:`duru.local.snippets`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from duru.errors import SearchQueryError, StoreError, UsageError
from duru.local.db import Database
from duru.local.failures import sqlite_failures
from duru.local.schema import fts_table, quote, where_sql
from duru.local.search_words import TypedQuery, index_words, read_typed
from duru.local.snippets import (
    DIRECT_CHARS,
    DIRECT_WORDS,
    Excerpts,
    Markers,
    any_word,
    mark_substrings,
    substring_snippet,
)
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
_LIVE = where_sql(NOTE, NOTE.search.only if NOTE.search else {}, "n.") or "1"

# Messages FTS5 gives for a query it cannot parse; any other error is not the user's.
_QUERY_ERRORS = {
    "fts5: syntax error near": "syntax error near {rest}",
    "unterminated string": "a double quote is not closed",
    "unknown special query": "a query cannot start with *",
    "no such column:": "{rest}: is not a searchable field (title, body)",
    "fts5: column queries are not supported": "field filters are not supported here",
    "fts5: phrase queries are not supported": "phrases are not supported here",
}

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


@dataclass(frozen=True, slots=True)
class _Found:
    """A matching note as the statements return it; marks are None when left to Python."""

    doc_id: int
    id: str
    title: str
    title_marked: str | None
    snippet: str | None
    score: float
    is_pinned: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class _Query:
    """What one call searches for and how its hits are marked."""

    match: str  # FTS5 expression, "" when only substrings are searched
    substrings: tuple[str, ...]
    words: tuple[str, ...]  # lower-case index words, to place excerpts of long bodies
    excerpt_queries: tuple[str, ...]  # FTS5 expressions tried on those excerpts
    markers: Markers
    tokens: int


class Search:
    """Searches the notes of one device database; never writes to it."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._excerpts = Excerpts()

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
        advanced: bool = False,
        markers: Markers = DEFAULT_MARKERS,
    ) -> list[SearchHit]:
        """The best ``limit`` notes matching ``text`` (after skipping ``offset``).

        ``text`` is words as typed, or FTS5 syntax with ``advanced``.
        ``tag`` (normalised as the tags API does), ``folder_id`` (the note's
        own folder) and ``pinned`` narrow the matches. Blank text gives no
        hits. Raises SearchQueryError for a query FTS5 cannot parse (only
        with ``advanced``), UsageError for a bad window, InvalidValue for an
        empty tag, StoreError when the database cannot be read.
        """
        _check_window(limit, offset, snippet_tokens)
        # FTS5 reads the query as a C string: a NUL would silently end it early.
        text = text.replace("\x00", " ")
        marks = (markers, snippet_tokens)
        q = _advanced(text, *marks) if advanced else _typed(read_typed(text), *marks)
        if not q.match.strip() and not q.substrings:
            return []
        where, params = _filters(tag, folder_id, pinned, q.substrings)
        params.update(
            match=q.match,
            candidates=RANK_CANDIDATES,
            open=markers.open,
            close=markers.close,
            ellipsis=markers.ellipsis,
            tokens=snippet_tokens,
            cap=DIRECT_CHARS,
        )
        try:
            with sqlite_failures(self.db.path):  # a damaged page or a lock is not the query's
                if q.match.strip():
                    found = self._ranked(_matches(where), params, limit, offset)
                    found = self._mark_few_words(found, params)
                else:
                    found = self._scanned(where, params, q.substrings, limit, offset)
                return [self._hit(row, q) for row in found]
        except sqlite3.OperationalError as exc:
            raise query_error(text, exc) from exc

    def _ranked(
        self, source: str, params: dict[str, object], limit: int, offset: int
    ) -> list[_Found]:
        """The window of index matches, group by group, newest first: each group is
        the RANK_CANDIDATES newest matches at or below ``upper``, ranked; the last
        one holds what is left."""
        found: list[Any] = []
        skip, want, upper = offset, limit, None
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
        return [_Found(*row) for row in found]

    def _scanned(
        self,
        where: list[str],
        params: dict[str, object],
        substrings: Sequence[str],
        limit: int,
        offset: int,
    ) -> list[_Found]:
        """The window of notes holding every substring: one pass over the live notes,
        grouped and ranked as :meth:`_ranked` does."""
        sql = (
            f"SELECT n.doc_id, {_substring_score(substrings)} FROM {_NOTES} n"
            f" WHERE {' AND '.join([_LIVE, *where])}"
        )
        scored = self.db.conn.execute(sql, params).fetchall()
        chosen = _window(scored, limit, offset)
        if not chosen:
            return []
        rows = {
            r[0]: r
            for r in self.db.conn.execute(
                f"SELECT doc_id, id, title, is_pinned, updated_at FROM {_NOTES}"
                f" WHERE doc_id IN ({', '.join('?' * len(chosen))})",
                [doc_id for doc_id, _ in chosen],
            )
        }
        return [
            _Found(d, rows[d][1], rows[d][2], None, None, score, rows[d][3], rows[d][4])
            for d, score in chosen
        ]

    def _mark_few_words(self, found: list[_Found], params: dict[str, object]) -> list[_Found]:
        """Marks from FTS5's functions for the long notes that hold few words.

        A note longer than DIRECT_CHARS may still hold at most DIRECT_WORDS
        words (their count is in the index's docsize table), so few matches:
        FTS5 marks it in full, as it marks a short one.
        """
        unmarked = [row.doc_id for row in found if row.snippet is None]
        if not unmarked:
            return found
        sizes = self.db.conn.execute(
            f"SELECT id, sz FROM {quote(fts_table(NOTE) + '_docsize')}"
            f" WHERE id IN ({', '.join('?' * len(unmarked))})",
            unmarked,
        )
        few = [doc_id for doc_id, sz in sizes if sum(_varints(sz)) <= DIRECT_WORDS]
        if not few:
            return found
        marks = {
            r[0]: (r[1], r[2])
            for r in self.db.conn.execute(
                f"SELECT rowid, highlight({_FTS}, 0, :open, :close),"
                f" snippet({_FTS}, 1, :open, :close, :ellipsis, :tokens)"
                f" FROM {_FTS} WHERE {_FTS} MATCH :match"
                f" AND rowid IN ({', '.join(str(int(d)) for d in few)})",
                params,
            )
        }
        return [
            replace(row, title_marked=marks[row.doc_id][0], snippet=marks[row.doc_id][1])
            if row.doc_id in marks
            else row
            for row in found
        ]

    def _hit(self, row: _Found, q: _Query) -> SearchHit:
        title_marked, snippet = row.title_marked, row.snippet
        if title_marked is None or snippet is None:
            title_marked, snippet = self._marks(row, q)
        title_marked = mark_substrings(title_marked, q.substrings, q.markers)
        if q.match.strip():  # a substring-only snippet comes marked
            snippet = mark_substrings(snippet, q.substrings, q.markers)
        return SearchHit(
            row.id,
            row.title,
            title_marked,
            snippet,
            row.score,
            bool(row.is_pinned),
            row.updated_at,
        )

    def _marks(self, row: _Found, q: _Query) -> tuple[str, str]:
        """Title and snippet marked in Python: a substring match, or a title or body
        too long for FTS5's functions (bounded by :mod:`duru.local.snippets`)."""
        body = str(self.db.scalar(f"SELECT body FROM {_NOTES} WHERE doc_id = ?", [row.doc_id]))
        if not q.match.strip():
            snippet = substring_snippet(body, q.substrings, q.markers, q.tokens)
            return row.title, snippet
        marked = self._excerpts.marked(
            q.excerpt_queries, row.title, body, q.words, q.markers, q.tokens
        )
        title_marked = marked[0] if row.title_marked is None else row.title_marked
        snippet = marked[1] if row.snippet is None else row.snippet
        return title_marked, snippet


def _typed(typed: TypedQuery, markers: Markers, tokens: int) -> _Query:
    # An excerpt of a long body may hold only some of the words: mark those.
    excerpt_queries = (" OR ".join(typed.phrases),) if typed.phrases else ()
    return _Query(typed.match, typed.substrings, typed.words, excerpt_queries, markers, tokens)


def _advanced(text: str, markers: Markers, tokens: int) -> _Query:
    words = index_words(text)
    # On an excerpt the expression may not hold (NOT, a field): then any of its words.
    excerpt_queries = (text, any_word(words, prefix=True)) if words else (text,)
    return _Query(text, (), words, excerpt_queries, markers, tokens)


def ensure_rank(db: Database) -> None:
    """Store duru's bm25 weights as the FTS table's rank, so ``ORDER BY rank``
    elsewhere agrees with duru (a write; a no-op when already there).

    Search itself never needs it: it names its weights in every statement.
    """
    config = quote(fts_table(NOTE) + "_config")
    current = db.scalar(f"SELECT v FROM {config} WHERE k = 'rank'")
    if current != RANK:
        with db.transaction():
            db.conn.execute(f"INSERT INTO {_FTS} ({_FTS}, rank) VALUES ('rank', ?)", [RANK])


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
                " (without advanced syntax, any text is searched as words)"
            )
    return StoreError(f"search failed: {message}", retryable="locked" in message)


def _check_window(limit: int, offset: int, snippet_tokens: int) -> None:
    if limit < 0 or offset < 0:
        raise UsageError(f"limit and offset must not be negative (got {limit}, {offset})")
    if not 1 <= snippet_tokens <= MAX_SNIPPET_TOKENS:
        raise UsageError(f"snippet_tokens must be 1..{MAX_SNIPPET_TOKENS} (got {snippet_tokens})")


def _filters(
    tag: str | None, folder_id: str | None, pinned: bool | None, substrings: Sequence[str]
) -> tuple[list[str], dict[str, object]]:
    """Conditions on the note ``n`` (filters and substrings), with their parameters."""
    where: list[str] = []
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
    for i, text in enumerate(substrings):
        title, body = (_haystack(f, text) for f in ("title", "body"))
        where.append(f"(instr({title}, :sub{i}) > 0 OR instr({body}, :sub{i}) > 0)")
        params[f"sub{i}"] = text
    return where, params


def _matches(where: list[str]) -> str:
    """The FROM and WHERE of the index matches that meet ``where``.

    The conditions sit in the WHERE of the FTS scan (indexed lookups per
    match), so they apply before any cut; CROSS JOIN keeps the FTS table the
    outer loop.
    """
    filtered = f" CROSS JOIN {_NOTES} n ON n.doc_id = {_FTS}.rowid" if where else ""
    return f"{_FTS}{filtered} WHERE {' AND '.join([f'{_FTS} MATCH :match', *where])}"


def _substring_score(substrings: Sequence[str]) -> str:
    """Score of a substring match, bm25's way round (more negative is better): per
    substring, its occurrences in title and body, each saturated as bm25's k1 does."""
    terms = []
    for i, text in enumerate(substrings):
        for field, weight in WEIGHTS.items():
            col = _haystack(field, text)
            count = f"((length({col}) - length(replace({col}, :sub{i}, ''))) / length(:sub{i}))"
            terms.append(f"{weight!r} * {count} / ({count} + 1.2)")
    return f"-({' + '.join(terms)})"


def _varints(blob: bytes) -> Iterator[int]:
    """The numbers of an FTS5 docsize blob (SQLite varints: 7 bits a byte, high bit
    set on every byte but a number's last)."""
    value = 0
    for byte in blob:
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            yield value
            value = 0


def _haystack(field: str, substring: str) -> str:
    """The note's ``field`` as a substring is looked for in it: ASCII-folded when the
    substring has ASCII letters (it comes folded), as is for the rest (faster)."""
    col = f"n.{quote(field)}"
    return f"lower({col})" if any(c.isascii() and c.isalpha() for c in substring) else col


def _window(scored: list[Any], limit: int, offset: int) -> list[tuple[int, float]]:
    """``limit`` of ``(doc_id, score)`` after ``offset``, in the order :meth:`Search._ranked`
    gives: groups of RANK_CANDIDATES, newest first, each ranked by score."""
    newest = sorted(scored, key=lambda r: r[0], reverse=True)
    order: list[tuple[int, float]] = []
    for start in range(0, len(newest), RANK_CANDIDATES):
        group = newest[start : start + RANK_CANDIDATES]
        order += sorted(((int(d), float(s)) for d, s in group), key=lambda r: (r[1], r[0]))
        if len(order) >= offset + limit:
            break
    return order[offset : offset + limit]


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
    that loop order. A note whose title or body is longer than ``:cap``
    gets NULL marks: FTS5's functions would take time growing with the
    square of its matches.
    """
    bounds = "" if floor is None else f" AND {_FTS}.rowid > :floor"
    bounds += "" if upper is None else f" AND {_FTS}.rowid <= :upper"
    # Both fields: either function walks every match of the row, in any column.
    short = "max(length(n.title), length(n.body)) <= :cap"
    top = (
        f"SELECT {_FTS}.rowid AS doc_id, bm25({_FTS}, {_WEIGHTS}) AS score"
        f" FROM {source}{bounds} ORDER BY score, doc_id LIMIT :limit OFFSET :offset"
    )
    return (
        "SELECT top.doc_id, n.id, n.title,"
        f" CASE WHEN {short} THEN highlight({_FTS}, 0, :open, :close) END,"
        f" CASE WHEN {short} THEN snippet({_FTS}, 1, :open, :close, :ellipsis, :tokens) END,"
        " top.score, n.is_pinned, n.updated_at"
        f" FROM ({top}) AS top"
        f" CROSS JOIN {_FTS} ON {_FTS}.rowid = top.doc_id"
        f" CROSS JOIN {_NOTES} n ON n.doc_id = top.doc_id"
        f" WHERE {_FTS} MATCH :match ORDER BY top.score, top.doc_id"
    )
