"""Strings and comments of a Python file, found with `tokenize`.

Adjacent literals (implicit concatenation, also across lines inside brackets)
and literals joined by a single ``+`` form one text, as Python itself joins
them. Both Python 3.11 (an f-string is one STRING token) and 3.12+ (FSTRING_START
... FSTRING_END) are handled; the literal's source text is decoded by
`pystrings.decode_python_literal`.
"""

from __future__ import annotations

import io
import tokenize
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

from duru.migrate.lint.sources.base import (
    HostComment,
    Literal,
    Placeholders,
    ScannedSource,
    ScanProblem,
    TextBuilder,
)
from duru.migrate.lint.sources.pystrings import NotAStringLiteral, decode_python_literal

_FSTRING_START = getattr(tokenize, "FSTRING_START", -1)
_FSTRING_END = getattr(tokenize, "FSTRING_END", -2)
_TRANSPARENT = {tokenize.NL, tokenize.COMMENT}


@dataclass
class _Group:
    """Literals being joined into one text."""

    open_line: int
    text: TextBuilder = field(default_factory=TextBuilder)
    plus_used: bool = False


class _PythonScan:
    def __init__(self, source: str) -> None:
        self.source = source
        self.lines = _physical_lines(source)
        self.placeholders = Placeholders()
        self.literals: list[Literal] = []
        self.comments: list[HostComment] = []
        self.problems: list[ScanProblem] = []
        self.group: _Group | None = None

    def run(self) -> ScannedSource:
        problems = self.problems
        try:
            with warnings.catch_warnings():
                # Invalid escapes in the scanned file are its business, not a lint crash.
                warnings.simplefilter("ignore")
                self._walk(_literal_tokens(self.source))
        except (tokenize.TokenError, SyntaxError) as error:
            # tokenize reports an unclosed bracket at the line after the last one.
            line = min(_error_line(error), self.source.count("\n") + 1)
            problems.append(ScanProblem(line, f"cannot tokenize: {error}"))
        self._finish()
        return ScannedSource(
            tuple(self.literals),
            tuple(self.comments),
            tuple(problems),
            placeholders=self.placeholders.written,
        )

    def _walk(self, tokens: Iterator[tuple[int, str, int, int]]) -> None:
        for kind, text, row, col in tokens:
            if kind == tokenize.STRING:
                self._literal(text, row)
            elif kind == tokenize.COMMENT:
                own_line = not self.lines[row - 1][:col].strip()
                self.comments.append(HostComment(row, text[1:].strip(), own_line))
            elif kind == tokenize.OP and text == "+" and self._can_join_plus():
                assert self.group is not None
                self.group.plus_used = True
            elif kind == tokenize.ERRORTOKEN and text[:1] in ("'", '"'):
                # Python 3.11 tokenizes an unclosed quote as an error token and goes on.
                self.problems.append(ScanProblem(row, "unterminated string literal"))
                self._finish()
            elif kind not in _TRANSPARENT:
                self._finish()

    def _can_join_plus(self) -> bool:
        return self.group is not None and not self.group.plus_used

    def _literal(self, text: str, row: int) -> None:
        try:
            decoded = decode_python_literal(text, row, self.placeholders)
        except NotAStringLiteral:
            self._finish()
            return
        if self.group is None:
            self.group = _Group(open_line=row)
        self.group.text.extend(decoded)
        self.group.plus_used = False

    def _finish(self) -> None:
        if self.group is not None:
            text, lines = self.group.text.build(self.group.open_line)
            self.literals.append(Literal(text, lines, self.group.open_line))
            self.group = None


def _literal_tokens(source: str) -> Iterator[tuple[int, str, int, int]]:
    """Tokens as (type, text, row, col); an f-string of 3.12+ comes back as one STRING."""
    offsets = _line_offsets(_physical_lines(source))
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    for token in tokens:
        if token.type == _FSTRING_START:
            end = _fstring_end(token, tokens)
            start_offset = offsets[token.start[0] - 1] + token.start[1]
            end_offset = offsets[end.end[0] - 1] + end.end[1]
            text = source[start_offset:end_offset]
            yield tokenize.STRING, text, token.start[0], token.start[1]
        else:
            yield token.type, token.string, token.start[0], token.start[1]


def _fstring_end(
    start: tokenize.TokenInfo, tokens: Iterator[tokenize.TokenInfo]
) -> tokenize.TokenInfo:
    depth = 1
    for token in tokens:
        if token.type == _FSTRING_START:
            depth += 1
        elif token.type == _FSTRING_END:
            depth -= 1
            if depth == 0:
                return token
    raise tokenize.TokenError("unterminated f-string", start.start)


def _physical_lines(source: str) -> list[str]:
    # readline splits on "\n" only; str.splitlines would also split on \f and \u2028.
    parts = source.split("\n")
    return [part + "\n" for part in parts[:-1]] + [parts[-1]]


def _line_offsets(lines: list[str]) -> list[int]:
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    return offsets


def _error_line(error: Exception) -> int:
    if isinstance(error, SyntaxError):
        return error.lineno or 1
    position = error.args[1] if len(error.args) > 1 else (1, 0)
    return int(position[0]) if isinstance(position, tuple) else 1


def scan_python(source: str) -> ScannedSource:
    """Literals and comments of Python `source`; tokenizer errors become problems."""
    return _PythonScan(source).run()
