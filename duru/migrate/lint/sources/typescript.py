"""TypeScript string literals: '...', "...", template literals `...${}...`.

A template tagged with ``String.raw`` keeps its backslashes. A ``/`` where an
expression may start begins a regular expression literal, which is skipped
whole so that a quote inside it does not start a string.
"""

from __future__ import annotations

import re

from duru.migrate.lint.sources.base import ScannedSource, TextBuilder
from duru.migrate.lint.sources.hostscan import HostScanner

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "v": "\v"}
_REGEX_AFTER_WORDS = {
    "return", "typeof", "case", "do", "else", "in", "of", "new", "delete", "void",
    "throw", "yield", "await", "instanceof",
}  # fmt: skip
_RAW_TAG = re.compile(r"String\s*\.\s*raw\s*$")


class TypeScriptScanner(HostScanner):
    """Scanner for `.ts` files."""

    def scan_literal(self) -> TextBuilder | None:
        quote = self.cur.peek()
        if quote == "`":
            raw = _RAW_TAG.search(self.cur.text, 0, self.cur.pos) is not None
            self.cur.advance()
            return self._body("`", raw=raw, template=True)
        if quote in ("'", '"'):
            self.cur.advance()
            return self._body(quote, raw=False, template=False)
        return None

    def skip_other(self) -> bool:
        cur = self.cur
        if cur.peek() != "/" or cur.peek(1) in ("/", "*") or not self._regex_may_start():
            return False
        start, line = cur.pos, cur.line
        cur.advance()
        in_class = False
        while not cur.at_end() and cur.peek() != "\n":
            char = cur.advance()
            if char == "\\":
                cur.advance()
            elif char == "[":
                in_class = True
            elif char == "]":
                in_class = False
            elif char == "/" and not in_class:
                while cur.peek().isalpha():
                    cur.advance()
                return True
        # No closing slash on the line: it was a division after all.
        cur.pos, cur.line = start + 1, line
        return True

    def _regex_may_start(self) -> bool:
        last = self.last_token
        if not last:
            return True
        if last[0].isalnum() or last[0] in "_$":
            return last in _REGEX_AFTER_WORDS
        return last not in (")", "]", '"', "'")

    def _body(self, quote: str, *, raw: bool, template: bool) -> TextBuilder:
        cur = self.cur
        out = TextBuilder()
        while not cur.at_end() and cur.peek() != quote:
            char = cur.peek()
            if char == "\n" and not template:
                break
            if char == "\\" and raw:
                line = cur.line
                out.add(cur.advance(2), line)
            elif char == "\\":
                self._escape(out)
            elif template and cur.startswith("${"):
                cur.advance(2)
                self.interpolation(out, "}")
            else:
                out.add(char, cur.line)
                cur.advance()
        cur.advance(1 if cur.peek() == quote else 0)
        return out

    def _escape(self, out: TextBuilder) -> None:
        cur = self.cur
        line = cur.line
        cur.advance()
        char = cur.advance()
        if char in _ESCAPES:
            out.add(_ESCAPES[char], line)
        elif char == "0" and not cur.peek().isdigit():
            out.add("\0", line)
        elif char == "x":
            self.add_hex(out, 2, line)
        elif char == "u" and cur.peek() == "{":
            self.add_braced_hex(out, line)
        elif char == "u":
            self.add_hex(out, 4, line)
        elif char == "\r" and cur.peek() == "\n":
            cur.advance()
        elif char not in ("\n", "\u2028", "\u2029"):
            out.add(char, line)


def scan_typescript(source: str) -> ScannedSource:
    """Literals and comments of TypeScript `source`."""
    return TypeScriptScanner(source).run()
