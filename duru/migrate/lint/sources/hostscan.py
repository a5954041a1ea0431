"""The shared walk over a brace-language file (Dart, TypeScript, Kotlin, Swift).

Subclasses say how a string literal starts and decodes (`scan_literal`) and which
other tokens may hold quote characters and must be skipped whole (`skip_other`:
character literals, regular expressions). The walk itself handles comments,
words, brackets and the joining of literals: ``"a" + "b"`` is one text in every
language, and ``'a' 'b'`` too where the language concatenates adjacent literals.

Interpolated expressions (``${...}``, ``\\(...)``) are walked with the same code
so that strings and braces inside them cannot end the outer literal early; the
literals they contain are not linted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from duru.migrate.lint.sources.base import (
    HostComment,
    Literal,
    Placeholders,
    ScannedSource,
    ScanProblem,
    TextBuilder,
)
from duru.migrate.lint.sources.cursor import Cursor

_PAIRS = {")": "(", "}": "{", "]": "["}


@dataclass
class _Group:
    open_line: int
    text: TextBuilder = field(default_factory=TextBuilder)
    plus_used: bool = False


class HostScanner:
    """Walks one file; subclass per language."""

    nested_comments = False
    adjacent_concatenation = False

    def __init__(self, source: str) -> None:
        self.cur = Cursor(source)
        self.placeholders = Placeholders()
        self.literals: list[Literal] = []
        self.comments: list[HostComment] = []
        self.problems: list[ScanProblem] = []
        self.group: _Group | None = None
        self.last_code_line = 0
        self.last_token = ""

    def run(self) -> ScannedSource:
        """Scan the whole file."""
        self.code(stop=None, record=True)
        self._finish_group()
        return ScannedSource(
            tuple(self.literals),
            tuple(self.comments),
            tuple(self.problems),
            placeholders=self.placeholders.written,
        )

    # Subclass hooks -------------------------------------------------------

    def scan_literal(self) -> TextBuilder | None:
        """Consume and decode a string literal at the cursor, or return None."""
        raise NotImplementedError

    def skip_other(self) -> bool:
        """Consume a non-string token that may contain quotes; True if one was consumed."""
        return False

    # The walk ----------------------------------------------------------------

    def code(self, *, stop: str | None, record: bool, opened: int | None = None) -> None:
        """Walk code until the unmatched `stop` closer (consumed) or the end of text.

        `opened` is the line where the construct `stop` closes began (for the problem
        reported when the text ends first).
        """
        cur = self.cur
        depth = 0
        while not cur.at_end():
            char = cur.peek()
            if char in " \t\r\n\f":
                cur.advance()
            elif cur.startswith("//"):
                self._line_comment(record)
            elif cur.startswith("/*"):
                self._block_comment(record)
            elif self._literal(record):
                continue
            elif self.skip_other():
                self._code_seen(record, "'")
            elif char.isalnum() or char == "_" or char == "$":
                self._code_seen(record, self._word())
            else:
                if stop is not None and char == stop:
                    if depth == 0:
                        cur.advance()
                        return
                    depth -= 1
                elif stop is not None and char == _PAIRS[stop]:
                    depth += 1
                cur.advance()
                if record and char == "+" and self._join_plus():
                    self.last_code_line = cur.line
                    self.last_token = char
                else:
                    self._code_seen(record, char)
        if stop is not None:
            self.problems.append(
                ScanProblem(opened or cur.line, f"unterminated interpolation, missing {stop}")
            )

    def interpolation(self, out: TextBuilder, closer: str, opener: str = "${") -> None:
        """Walk an interpolated expression up to `closer`; a placeholder stands for it."""
        line = self.cur.line
        start = self.cur.pos
        self.code(stop=closer, record=False, opened=line)
        written = opener + self.cur.text[start : self.cur.pos]
        out.add(self.placeholders.next(written), line)

    def _literal(self, record: bool) -> bool:
        open_line = self.cur.line
        decoded = self.scan_literal()
        if decoded is None:
            return False
        self.last_code_line = self.cur.line
        self.last_token = '"'
        if not record:
            return True
        joinable = self.group is not None and (self.group.plus_used or self.adjacent_concatenation)
        if not joinable:
            self._finish_group()
        if self.group is None:
            self.group = _Group(open_line)
        self.group.text.extend(decoded)
        self.group.plus_used = False
        return True

    def _join_plus(self) -> bool:
        if self.group is None or self.group.plus_used or self.last_token != '"':
            return False
        self.group.plus_used = True
        return True

    def _code_seen(self, record: bool, token: str) -> None:
        self.last_code_line = self.cur.line
        self.last_token = token
        if record:
            self._finish_group()

    def _finish_group(self) -> None:
        if self.group is not None:
            text, lines = self.group.text.build(self.group.open_line)
            self.literals.append(Literal(text, lines, self.group.open_line))
            self.group = None

    def _word(self) -> str:
        cur = self.cur
        start = cur.pos
        while _word_char(cur.peek()):
            cur.advance()
        return cur.text[start : cur.pos]

    def _line_comment(self, record: bool) -> None:
        line = self.cur.line
        own_line = self.last_code_line != line
        text = self.cur.rest_of_line()
        self.cur.advance(len(text))
        if record:
            self.comments.append(HostComment(line, text[2:].strip(), own_line))

    def _block_comment(self, record: bool) -> None:
        cur = self.cur
        line = cur.line
        own_line = self.last_code_line != line
        start = cur.pos
        cur.advance(2)
        depth = 1
        while not cur.at_end() and depth:
            if cur.startswith("*/"):
                depth -= 1
                cur.advance(2)
            elif self.nested_comments and cur.startswith("/*"):
                depth += 1
                cur.advance(2)
            else:
                cur.advance()
        if record:
            body = cur.text[start + 2 : cur.pos - 2] if not depth else cur.text[start + 2 : cur.pos]
            self._record_block(body, line, own_line)

    def _record_block(self, body: str, line: int, own_line: bool) -> None:
        # Each line of a block comment may carry its own directive.
        for index, text in enumerate(body.split("\n")):
            cleaned = text.strip().lstrip("*").strip()
            if cleaned:
                self.comments.append(HostComment(line + index, cleaned, own_line or index > 0))

    # Helpers for subclasses ------------------------------------------------

    def previous_char(self) -> str:
        """The character before the cursor ("" at the start)."""
        return self.cur.text[self.cur.pos - 1] if self.cur.pos else ""

    def add_hex(self, out: TextBuilder, digits: int, line: int) -> None:
        """Decode exactly `digits` hex digits; a malformed escape (a compile error) adds nothing."""
        chunk = self.cur.text[self.cur.pos : self.cur.pos + digits]
        if len(chunk) == digits and _is_hex(chunk):
            self.cur.advance(digits)
            out.add(chr(int(chunk, 16)), line)

    def add_braced_hex(self, out: TextBuilder, line: int) -> None:
        """Decode ``{hex}`` as used by ``\\u{...}`` escapes."""
        end = self.cur.text.find("}", self.cur.pos)
        chunk = self.cur.text[self.cur.pos + 1 : end] if end > 0 else ""
        if chunk and _is_hex(chunk) and int(chunk, 16) <= 0x10FFFF:
            self.cur.advance(len(chunk) + 2)
            out.add(chr(int(chunk, 16)), line)


def _word_char(char: str) -> bool:
    # "" (the end of text) is "in" every string: test it first.
    return bool(char) and (char.isalnum() or char in "_$")


def _is_hex(text: str) -> bool:
    return all(char in "0123456789abcdefABCDEF" for char in text)
