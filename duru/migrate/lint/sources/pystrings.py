"""Decode one Python string literal from its source text, keeping source lines.

`ast.literal_eval` gives the value but not where each character came from; the
linter needs both so that a statement in the middle of a triple-quoted string is
reported at its own line. Replacement fields of f-strings become placeholders.
Bytes literals are not decoded (SQLite and psycopg take str).
"""

from __future__ import annotations

import unicodedata

from duru.migrate.lint.sources.base import Placeholders, TextBuilder
from duru.migrate.lint.sources.cursor import Cursor

_SIMPLE_ESCAPES = {
    "\\": "\\",
    "'": "'",
    '"': '"',
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
}
_HEX_WIDTH = {"x": 2, "u": 4, "U": 8}
_OCTAL = "01234567"


class NotAStringLiteral(ValueError):
    """The text is a bytes literal or not a literal at all."""


def decode_python_literal(source: str, first_line: int, placeholders: Placeholders) -> TextBuilder:
    """Decode `source` (prefix, quotes and body of one literal) starting at `first_line`.

    Raises NotAStringLiteral for bytes literals.
    """
    cursor = Cursor(source, line=first_line)
    prefix = ""
    while cursor.peek().isalpha():
        prefix += cursor.advance().lower()
    if "b" in prefix:
        raise NotAStringLiteral(source[:20])
    quote = cursor.peek() * 3 if cursor.startswith(cursor.peek() * 3) else cursor.peek()
    if not quote or quote[0] not in "'\"":
        raise NotAStringLiteral(source[:20])
    cursor.advance(len(quote))
    out = TextBuilder()
    raw, formatted = "r" in prefix, "f" in prefix
    while not cursor.at_end() and not cursor.startswith(quote):
        char = cursor.peek()
        if char == "\\":
            _escape(cursor, out, raw)
        elif formatted and char in "{}":
            _format_part(cursor, out, placeholders)
        else:
            out.add(char, cursor.line)
            cursor.advance()
    return out


def _escape(cursor: Cursor, out: TextBuilder, raw: bool) -> None:
    line = cursor.line
    cursor.advance()
    char = cursor.advance()
    if raw:
        # A raw string keeps the backslash; it only stops the quote from ending the string.
        out.add("\\" + char, line)
    elif char == "\n":
        return
    elif char in _SIMPLE_ESCAPES:
        out.add(_SIMPLE_ESCAPES[char], line)
    elif char in _OCTAL:
        digits = char
        while len(digits) < 3 and cursor.peek() in _OCTAL and cursor.peek():
            digits += cursor.advance()
        out.add(chr(int(digits, 8)), line)
    elif char in _HEX_WIDTH:
        out.add(_code_point(cursor.advance(_HEX_WIDTH[char]), char), line)
    elif char == "N" and cursor.peek() == "{":
        end = cursor.text.find("}", cursor.pos)
        name = cursor.advance((end if end >= 0 else len(cursor.text)) - cursor.pos + 1)
        out.add(_named(name), line)
    else:
        out.add("\\" + char, line)


def _code_point(digits: str, kind: str) -> str:
    # tokenize does not validate escapes; a malformed one (a compile error) stays as text.
    try:
        return chr(int(digits, 16))
    except ValueError:
        return f"\\{kind}{digits}"


def _named(braced: str) -> str:
    try:
        return unicodedata.lookup(braced[1:-1])
    except KeyError:
        return "\\N" + braced


def _format_part(cursor: Cursor, out: TextBuilder, placeholders: Placeholders) -> None:
    char = cursor.peek()
    if cursor.peek(1) == char:
        out.add(char, cursor.line)
        cursor.advance(2)
        return
    if char == "}":
        out.add(char, cursor.line)
        cursor.advance()
        return
    line, start = cursor.line, cursor.pos
    cursor.skip_balanced("{", "}", quotes="'\"")
    out.add(placeholders.next(cursor.text[start : cursor.pos]), line)
