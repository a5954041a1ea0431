"""Split SQL text into statements and comments, with offsets.

The splitter knows enough of each dialect's lexical rules not to split inside
quotes, comments or bodies: '...' strings, "..." identifiers, -- and /* */
comments; for SQLite also `...` and [...] identifiers, and trigger bodies
(``CREATE TRIGGER ... BEGIN ...; END``), which it leaves to SQLite's own
`sqlite3.complete_statement`; for PostgreSQL also nested /* */ comments, E'...'
strings with backslash escapes and $tag$...$tag$ bodies. It does not parse;
the parsers see one statement at a time.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from typing import Literal

Dialect = Literal["sqlite", "postgres"]

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


@dataclass(frozen=True)
class SqlComment:
    """A comment inside SQL text; `own_line` when nothing but blanks precedes it on its line."""

    start: int
    text: str
    own_line: bool


@dataclass(frozen=True)
class RawStatement:
    """One statement: `text` runs from its first token to before its semicolon."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class SplitSql:
    """Statements and comments; `unterminated` holds the offsets of /* comments never closed
    (they swallow the rest of the text, so no parser would see it)."""

    statements: tuple[RawStatement, ...]
    comments: tuple[SqlComment, ...]
    unterminated: tuple[int, ...] = ()


class _Splitter:
    def __init__(self, text: str, dialect: Dialect) -> None:
        self.text = text
        self.dialect = dialect
        self.pos = 0
        self.start: int | None = None
        self.statements: list[RawStatement] = []
        self.comments: list[SqlComment] = []
        self.unterminated: list[int] = []

    def run(self) -> SplitSql:
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if text.startswith("--", self.pos):
                self._comment(text.find("\n", self.pos), 2, 0)
            elif text.startswith("/*", self.pos):
                self._comment(self._block_end(), 2, 2)
            elif char == ";":
                self._semicolon()
            elif char.isspace():
                self.pos += 1
            else:
                self._token_start()
                self.pos = self._token_end(char)
        self._close(len(text))
        return SplitSql(tuple(self.statements), tuple(self.comments), tuple(self.unterminated))

    def _token_start(self) -> None:
        if self.start is None:
            self.start = self.pos

    def _token_end(self, char: str) -> int:
        text, pos = self.text, self.pos
        if char == "'":
            escapes = self.dialect == "postgres" and _is_escape_string(text, pos)
            return _quoted_end(text, pos, "'", backslash=escapes)
        if char == '"':
            return _quoted_end(text, pos, '"', backslash=False)
        if self.dialect == "sqlite" and char in "`[":
            return _quoted_end(text, pos, "`" if char == "`" else "]", backslash=False)
        if self.dialect == "postgres" and char == "$":
            tag = _DOLLAR_TAG.match(text, pos)
            if tag and not _ident_char(text[pos - 1] if pos else ""):
                close = text.find(tag.group(0), tag.end())
                return len(text) if close < 0 else close + len(tag.group(0))
        return pos + 1

    def _comment(self, end: int, opener: int, closer: int) -> None:
        end = len(self.text) if end < 0 else end
        line_start = self.text.rfind("\n", 0, self.pos) + 1
        own_line = not self.text[line_start : self.pos].strip()
        body = self.text[self.pos + opener : max(end - closer, self.pos + opener)]
        self.comments.append(SqlComment(self.pos, body.strip(), own_line))
        self.pos = end

    def _block_end(self) -> int:
        depth, pos, text = 0, self.pos, self.text
        while pos < len(text):
            if text.startswith("/*", pos) and (depth == 0 or self.dialect == "postgres"):
                depth, pos = depth + 1, pos + 2
            elif text.startswith("*/", pos):
                depth, pos = depth - 1, pos + 2
                if depth == 0:
                    return pos
            else:
                pos += 1
        self.unterminated.append(self.pos)
        return len(text)

    def _semicolon(self) -> None:
        if self.start is not None and self.dialect == "sqlite":
            # Inside a trigger body a semicolon does not end the CREATE TRIGGER.
            piece = self.text[self.start : self.pos + 1].replace("\x00", " ")
            if not sqlite3.complete_statement(piece):
                self.pos += 1
                return
        self._close(self.pos)
        self.pos += 1

    def _close(self, end: int) -> None:
        if self.start is not None:
            body = self.text[self.start : end].rstrip()
            self.statements.append(RawStatement(self.start, self.start + len(body), body))
        self.start = None


def _quoted_end(text: str, pos: int, quote: str, *, backslash: bool) -> int:
    index = pos + 1
    while index < len(text):
        char = text[index]
        if backslash and char == "\\":
            index += 2
        elif char == quote and text.startswith(quote * 2, index) and quote != "]":
            index += 2
        elif char == quote:
            return index + 1
        else:
            index += 1
    return len(text)


def _is_escape_string(text: str, pos: int) -> bool:
    return pos > 0 and text[pos - 1] in "eE" and not _ident_char(text[pos - 2] if pos > 1 else "")


def _ident_char(char: str) -> bool:
    # "" (before the start of text) is "in" every string: test it first.
    return bool(char) and (char.isalnum() or char in "_$")


def split_sql(text: str, dialect: Dialect) -> SplitSql:
    """Statements and comments of `text`; a final statement needs no semicolon."""
    return _Splitter(text, dialect).run()
