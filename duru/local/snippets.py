"""Marked titles and snippets whose cost is bounded, whatever the note.

FTS5's ``snippet()`` and ``highlight()`` take time that grows with the square
of the matches in the text they read: a 5 MB note took 603 s, a 1 MB log 8 s.
So the index's own functions only ever read a note of at most
:data:`DIRECT_CHARS` characters per field or :data:`DIRECT_WORDS` words in
all (the index's docsize table counts them): at most that many matches, a
few milliseconds. A longer note's body is cut to an excerpt of at most
:data:`SNIPPET_CHARS` characters and :data:`SNIPPET_WORDS` words around its
first match, found with a regular expression (a linear scan), and the same
functions mark the excerpt in an in-memory FTS5 table with the device's
tokenizer, so matching stays exactly the index's. Its title is marked in its
first :data:`TITLE_WORDS` words.

Text found as substrings (unspaced scripts and emoji, see
:mod:`duru.local.search_words`) is marked here too, by a linear search.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from duru.local.schema import FTS_TOKENIZER
from duru.local.search_words import fts_phrase

DIRECT_CHARS = 512  # longest title or body whose marks FTS5 makes on the device table
DIRECT_WORDS = 600  # or most words in a note (title and body) that it marks there
SNIPPET_CHARS = 2048  # longest excerpt of a body marked in memory ...
SNIPPET_WORDS = 400  # ... and most words in it: 400 matches at most, about 2 ms
TITLE_WORDS = 100  # words of a long note's title that are marked
_WORD = re.compile(r"\w+")
# Characters of unspaced text (a CJK sentence) shown per snippet token asked for.
_CHARS_PER_TOKEN = 4


@dataclass(frozen=True, slots=True)
class Markers:
    """How a snippet marks matches (``open``/``close``) and cut text (``ellipsis``)."""

    open: str = "["
    close: str = "]"
    ellipsis: str = "…"


class Excerpts:
    """Marks excerpts of long notes with FTS5's functions, on a private in-memory table.

    Private, so marking never writes to (or waits for) the device database.
    """

    def __init__(self) -> None:
        self._conn: sqlite3.Connection | None = None

    def marked(
        self,
        expressions: Sequence[str],
        title: str,
        body: str,
        words: Sequence[str],
        markers: Markers,
        tokens: int,
    ) -> tuple[str, str]:
        """The marked title and a snippet of ``body``, reading at most SNIPPET_CHARS of each.

        ``expressions`` are FTS5 queries tried in turn until one matches the
        excerpts; ``words`` (lower case) place the body's excerpt.
        """
        start, end = excerpt_bounds(body, words)
        head = title[: words_end(title, 0, min(len(title), SNIPPET_CHARS), TITLE_WORDS)]
        for expression in expressions:
            found = self._mark(expression, head, body[start:end], markers, tokens)
            if found is not None:
                title_marked, snippet = found
                break
        else:
            title_marked, snippet = head, leading_words(body[start:end], tokens, markers)
        if start > 0 and not snippet.startswith(markers.ellipsis):
            snippet = markers.ellipsis + snippet
        if end < len(body) and not snippet.endswith(markers.ellipsis):
            snippet += markers.ellipsis
        return title_marked + title[len(head) :], snippet

    def _mark(
        self, expression: str, title: str, body: str, markers: Markers, tokens: int
    ) -> tuple[str, str] | None:
        conn = self._table()
        conn.execute("DELETE FROM excerpt")
        conn.execute("INSERT INTO excerpt (title, body) VALUES (?, ?)", (title, body))
        try:
            row = conn.execute(
                "SELECT highlight(excerpt, 0, ?1, ?2), snippet(excerpt, 1, ?1, ?2, ?3, ?4)"
                " FROM excerpt WHERE excerpt MATCH ?5",
                (markers.open, markers.close, markers.ellipsis, tokens, expression),
            ).fetchone()
        except sqlite3.OperationalError:
            return None  # an expression only the full note satisfies (NOT, a field)
        return None if row is None else (str(row[0]), str(row[1]))

    def _table(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = sqlite3.connect(":memory:", check_same_thread=False)
            self._conn.execute(
                f"CREATE VIRTUAL TABLE excerpt USING fts5(title, body, tokenize='{FTS_TOKENIZER}')"
            )
        return self._conn


def any_word(words: Sequence[str], prefix: bool = False) -> str:
    """An FTS5 expression matching any of ``words`` (each a prefix with ``prefix``)."""
    star = "*" if prefix else ""
    return " OR ".join(fts_phrase(w) + star for w in words)


def excerpt_bounds(body: str, words: Sequence[str]) -> tuple[int, int]:
    """Start and end of the at most SNIPPET_CHARS characters and SNIPPET_WORDS words
    of ``body`` to mark.

    The excerpt starts a little before the first place a word begins
    (case-insensitively), else at the body's start (a match only the
    tokenizer's folding sees, such as ``cafe`` for ``café``, or a title match).
    """
    first = _first_word(body, words) if len(body) > SNIPPET_CHARS else None
    start = 0 if first is None else max(0, first - SNIPPET_CHARS // 4)
    if first is not None and start > 0:  # begin after a space, so no word is cut in two
        space = body.find(" ", start, first)
        start = start if space < 0 else space + 1
    end = min(len(body), start + SNIPPET_CHARS)
    if end < len(body):
        space = body.rfind(" ", end - 64, end)
        end = space if space > start else end
    return start, words_end(body, start, end, SNIPPET_WORDS)


def words_end(text: str, start: int, end: int, most: int) -> int:
    """Where ``text[start:end]`` ends when cut after its first ``most`` words."""
    for count, word in enumerate(_WORD.finditer(text, start, end)):
        if count == most:
            return word.start()
    return end


def leading_words(text: str, tokens: int, markers: Markers) -> str:
    """The first ``tokens`` words of ``text``, unmarked, with an ellipsis when cut."""
    words = text.split(maxsplit=tokens)
    if len(words) <= tokens:
        return " ".join(words)
    return " ".join(words[:tokens]) + markers.ellipsis


def mark_substrings(text: str, substrings: Sequence[str], markers: Markers) -> str:
    """``text`` with every occurrence of ``substrings`` marked (longest first, any case)."""
    if not substrings:
        return text
    return _any_of(substrings).sub(lambda m: markers.open + m.group(0) + markers.close, text)


def substring_snippet(body: str, substrings: Sequence[str], markers: Markers, tokens: int) -> str:
    """An excerpt of ``body`` around its first substring match, matches marked.

    Unspaced text has no words to count, so the excerpt holds about four
    characters per token asked for.
    """
    found = _any_of(substrings).search(body) if substrings else None
    if found is None:
        return leading_words(body, tokens, markers)
    width = tokens * _CHARS_PER_TOKEN
    start = max(0, found.start() - width // 4)
    # Stretch to hold the whole first match, however long the typed text was.
    end = min(len(body), max(start + width, found.end()))
    snippet = mark_substrings(body[start:end], substrings, markers)
    head = markers.ellipsis if start > 0 else ""
    tail = markers.ellipsis if end < len(body) else ""
    return head + snippet + tail


def _any_of(substrings: Sequence[str]) -> re.Pattern[str]:
    alternatives = sorted(substrings, key=len, reverse=True)
    return re.compile("|".join(re.escape(s) for s in alternatives), re.IGNORECASE)


def _first_word(body: str, words: Sequence[str]) -> int | None:
    if not words:
        return None
    pattern = r"\b(?:" + "|".join(re.escape(w) for w in words) + ")"
    found = re.search(pattern, body, re.IGNORECASE)
    return None if found is None else found.start()
