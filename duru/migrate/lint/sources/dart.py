"""Dart string literals: '...', "...", ''' and \""" multi-line, r'' raw, $x and ${...}.

Dart joins adjacent literals (``'a' 'b'``). A multi-line literal whose first line
holds only whitespace starts after that line, as in Dart.
"""

from __future__ import annotations

from duru.migrate.lint.sources.base import ScannedSource, TextBuilder
from duru.migrate.lint.sources.hostscan import HostScanner

_ESCAPES = {"n": "\n", "r": "\r", "f": "\f", "b": "\b", "t": "\t", "v": "\v"}


class DartScanner(HostScanner):
    """Scanner for `.dart` files."""

    nested_comments = True
    adjacent_concatenation = True

    def scan_literal(self) -> TextBuilder | None:
        cur = self.cur
        raw = cur.peek() == "r" and cur.peek(1) in ("'", '"') and not _ident(self.previous_char())
        offset = 1 if raw else 0
        quote = cur.peek(offset)
        if not quote or quote not in "'\"":
            return None
        triple = cur.text.startswith(quote * 3, cur.pos + offset)
        delimiter = quote * 3 if triple else quote
        cur.advance(offset + len(delimiter))
        if triple and not cur.rest_of_line().strip(" \t"):
            cur.advance(len(cur.rest_of_line()) + 1)
        return self._body(delimiter, raw)

    def _body(self, delimiter: str, raw: bool) -> TextBuilder:
        cur = self.cur
        out = TextBuilder()
        while not cur.at_end() and not cur.startswith(delimiter):
            char = cur.peek()
            if char == "\n" and len(delimiter) == 1:
                break
            if char == "\\" and not raw:
                self._escape(out)
            elif char == "$" and not raw:
                self._dollar(out)
            else:
                out.add(char, cur.line)
                cur.advance()
        cur.advance(len(delimiter) if cur.startswith(delimiter) else 0)
        return out

    def _escape(self, out: TextBuilder) -> None:
        cur = self.cur
        line = cur.line
        cur.advance()
        char = cur.advance()
        if char in _ESCAPES:
            out.add(_ESCAPES[char], line)
        elif char == "x":
            self.add_hex(out, 2, line)
        elif char == "u" and cur.peek() == "{":
            self.add_braced_hex(out, line)
        elif char == "u":
            self.add_hex(out, 4, line)
        else:
            out.add(char, line)

    def _dollar(self, out: TextBuilder) -> None:
        cur = self.cur
        if cur.peek(1) == "{":
            cur.advance(2)
            self.interpolation(out, "}")
        elif cur.peek(1).isalpha() or cur.peek(1) == "_":
            line, start = cur.line, cur.pos
            cur.advance()
            while cur.peek().isalnum() or cur.peek() == "_":
                cur.advance()
            out.add(self.placeholders.next(cur.text[start : cur.pos]), line)
        else:
            out.add("$", cur.line)
            cur.advance()


def _ident(char: str) -> bool:
    return bool(char) and (char.isalnum() or char in "_$")


def scan_dart(source: str) -> ScannedSource:
    """Literals and comments of Dart `source`."""
    return DartScanner(source).run()
