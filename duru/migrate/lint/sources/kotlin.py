"""Kotlin string literals: "..." with escapes, \"""...\""" raw, $name and ${...} templates.

A raw string has no escapes but still has templates; the idiom ``${'$'}`` (a
literal dollar sign) decodes to ``$``. Character literals ('"') and backtick
names are skipped so their quotes do not start strings.
"""

from __future__ import annotations

import re

from duru.migrate.lint.sources.base import ScannedSource, TextBuilder
from duru.migrate.lint.sources.hostscan import HostScanner

_ESCAPES = {"t": "\t", "b": "\b", "n": "\n", "r": "\r", "'": "'", '"': '"', "\\": "\\", "$": "$"}
_CONSTANT_TEMPLATE = re.compile(r"""\s*(?:'([^'\\])'|"((?:[^"\\$]|\$(?![A-Za-z_{]))*)")\s*""")


class KotlinScanner(HostScanner):
    """Scanner for `.kt` files."""

    nested_comments = True

    def scan_literal(self) -> TextBuilder | None:
        cur = self.cur
        if cur.startswith('"""'):
            cur.advance(3)
            return self._body('"""', raw=True)
        if cur.peek() == '"':
            cur.advance()
            return self._body('"', raw=False)
        return None

    def skip_other(self) -> bool:
        cur = self.cur
        closer = {"'": "'", "`": "`"}.get(cur.peek())
        if closer is None:
            return False
        cur.advance()
        while not cur.at_end() and cur.peek() not in (closer, "\n"):
            cur.advance(2 if cur.peek() == "\\" else 1)
        cur.advance(1 if cur.peek() == closer else 0)
        return True

    def _body(self, delimiter: str, *, raw: bool) -> TextBuilder:
        cur = self.cur
        out = TextBuilder()
        while not cur.at_end():
            if cur.startswith(delimiter):
                if raw and cur.startswith('""""'):
                    # Extra quotes before the closing three belong to the text.
                    out.add('"', cur.line)
                    cur.advance()
                    continue
                cur.advance(len(delimiter))
                break
            char = cur.peek()
            if char == "\n" and not raw:
                break
            if char == "\\" and not raw:
                self._escape(out)
            elif char == "$":
                self._template(out)
            else:
                out.add(char, cur.line)
                cur.advance()
        return out

    def _escape(self, out: TextBuilder) -> None:
        cur = self.cur
        line = cur.line
        cur.advance()
        char = cur.advance()
        if char in _ESCAPES:
            out.add(_ESCAPES[char], line)
        elif char == "u":
            self.add_hex(out, 4, line)

    def _template(self, out: TextBuilder) -> None:
        cur = self.cur
        line = cur.line
        if cur.peek(1) == "{":
            cur.advance(2)
            start = cur.pos
            self.code(stop="}", record=False, opened=line)
            constant = _CONSTANT_TEMPLATE.fullmatch(cur.text, start, cur.pos - 1)
            if constant:
                out.add(constant.group(1) or constant.group(2) or "", line)
            else:
                written = "${" + cur.text[start : cur.pos]
                out.add(self.placeholders.next(written), line)
        elif cur.peek(1).isalpha() or cur.peek(1) == "_":
            start = cur.pos
            cur.advance()
            while cur.peek().isalnum() or cur.peek() == "_":
                cur.advance()
            out.add(self.placeholders.next(cur.text[start : cur.pos]), line)
        else:
            out.add("$", line)
            cur.advance()


def scan_kotlin(source: str) -> ScannedSource:
    """Literals and comments of Kotlin `source`."""
    return KotlinScanner(source).run()
