"""Swift string literals: "...", \"""...\""" multi-line, #"..."# raw, \\(...) interpolation.

A multi-line literal loses the indentation of its closing delimiter from every
line and the newline before the delimiter, and a backslash at the end of a line
joins it to the next, as in Swift. Raw strings with n ``#`` need ``\\#...#`` (n
signs) to escape or interpolate. Extended regex literals ``#/.../#`` are skipped;
bare ``/.../`` regex literals are not recognised.
"""

from __future__ import annotations

import re

from duru.migrate.lint.sources.base import ScannedSource, ScanProblem, TextBuilder
from duru.migrate.lint.sources.hostscan import HostScanner

_ESCAPES = {"0": "\0", "\\": "\\", "t": "\t", "n": "\n", "r": "\r", '"': '"', "'": "'"}


class SwiftScanner(HostScanner):
    """Scanner for `.swift` files."""

    nested_comments = True

    def scan_literal(self) -> TextBuilder | None:
        cur = self.cur
        hashes = 0
        while cur.peek(hashes) == "#":
            hashes += 1
        if cur.peek(hashes) != '"':
            return None
        cur.advance(hashes)
        if cur.startswith('"""'):
            cur.advance(3)
            return self._multiline(hashes)
        cur.advance()
        return self._single(hashes)

    def skip_other(self) -> bool:
        cur = self.cur
        if not cur.startswith("#/"):
            return False
        end = cur.text.find("/#", cur.pos + 2)
        cur.advance((end + 2 if end >= 0 else len(cur.text)) - cur.pos)
        return True

    def _single(self, hashes: int) -> TextBuilder:
        cur = self.cur
        out = TextBuilder()
        closer, escape = '"' + "#" * hashes, "\\" + "#" * hashes
        while not cur.at_end() and cur.peek() != "\n":
            if cur.startswith(closer):
                cur.advance(len(closer))
                break
            if cur.startswith(escape):
                self._escape(out, escape)
            else:
                out.add(cur.peek(), cur.line)
                cur.advance()
        return out

    def _multiline(self, hashes: int) -> TextBuilder:
        cur = self.cur
        out = TextBuilder()
        escape = "\\" + "#" * hashes
        cur.advance(len(cur.rest_of_line()))
        closing = re.compile(r"\n([ \t]*)\"\"\"" + "#" * hashes).search(cur.text, cur.pos)
        if closing is None:
            self.problems.append(ScanProblem(cur.line, "unterminated multi-line string"))
            cur.advance(len(cur.text))
            return out
        indent, end = closing.group(1), closing.start()
        cur.advance(1)
        while cur.pos <= end:
            if cur.startswith(indent):
                cur.advance(len(indent))
            joined = self._line(out, escape, end)
            if cur.pos >= end:
                break
            if not joined:
                out.add("\n", cur.line)
            cur.advance()
        cur.advance(closing.end() - cur.pos)
        return out

    def _line(self, out: TextBuilder, escape: str, end: int) -> bool:
        """Decode up to the end of this line; True when it ends with a line continuation."""
        cur = self.cur
        while cur.pos < end and cur.peek() != "\n":
            if cur.startswith(escape + "\n"):
                cur.advance(len(escape))
                return True
            if cur.startswith(escape):
                self._escape(out, escape)
            else:
                out.add(cur.peek(), cur.line)
                cur.advance()
        return False

    def _escape(self, out: TextBuilder, escape: str) -> None:
        cur = self.cur
        line = cur.line
        cur.advance(len(escape))
        char = cur.advance()
        if char in _ESCAPES:
            out.add(_ESCAPES[char], line)
        elif char == "u" and cur.peek() == "{":
            self.add_braced_hex(out, line)
        elif char == "(":
            self.interpolation(out, ")", opener="\\(")


def scan_swift(source: str) -> ScannedSource:
    """Literals and comments of Swift `source`."""
    return SwiftScanner(source).run()
