"""What a source file yields to the linter: candidate SQL texts and host comments.

A host-language string is decoded (escapes resolved, interpolations replaced by
placeholders), so its characters no longer sit at their source positions. Each
decoded text therefore carries a `LineMap` from offsets in the decoded text back
to 1-based lines of the source file; findings report those lines.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

PLACEHOLDER_PREFIX = "duru_expr_"


@dataclass(frozen=True)
class LineMap:
    """Source line of every offset of a decoded text, stored as runs."""

    starts: tuple[int, ...]
    lines: tuple[int, ...]

    def line_at(self, offset: int) -> int:
        """The source line of the character at `offset` (clamped to the text)."""
        index = bisect.bisect_right(self.starts, offset) - 1
        return self.lines[max(index, 0)]

    def column_at(self, offset: int) -> int:
        """1-based column of `offset`; exact only for an `identity` map (runs start lines)."""
        index = max(bisect.bisect_right(self.starts, offset) - 1, 0)
        return offset - self.starts[index] + 1

    @classmethod
    def identity(cls, text: str, first_line: int = 1) -> LineMap:
        """The map of text that is the source itself (a `.sql` file)."""
        starts = [0]
        lines = [first_line]
        for offset, char in enumerate(text):
            if char == "\n":
                starts.append(offset + 1)
                lines.append(lines[-1] + 1)
        return cls(tuple(starts), tuple(lines))


@dataclass
class TextBuilder:
    """Accumulates decoded characters together with the source line of each."""

    _parts: list[str] = field(default_factory=list)
    _length: int = 0
    _starts: list[int] = field(default_factory=list)
    _lines: list[int] = field(default_factory=list)

    def add(self, text: str, line: int) -> None:
        """Append `text`, all of whose characters come from source `line`."""
        if not text:
            return
        if not self._lines or self._lines[-1] != line:
            self._starts.append(self._length)
            self._lines.append(line)
        self._parts.append(text)
        self._length += len(text)

    def extend(self, other: TextBuilder) -> None:
        """Append everything `other` collected (implicit string concatenation)."""
        text = "".join(other._parts)
        for index, start in enumerate(other._starts):
            end = other._starts[index + 1] if index + 1 < len(other._starts) else other._length
            self.add(text[start:end], other._lines[index])

    def build(self, fallback_line: int) -> tuple[str, LineMap]:
        """The decoded text and its line map (`fallback_line` when empty)."""
        if not self._lines:
            return "", LineMap((0,), (fallback_line,))
        return "".join(self._parts), LineMap(tuple(self._starts), tuple(self._lines))


@dataclass(frozen=True)
class Literal:
    """One string (or implicitly concatenated group) of a host file, decoded.

    `frame` says how the host code runs it, when known (see `pyframe`): None, the
    `pyframe.AUTOCOMMIT` block, or the name of the host transaction block around it.
    """

    text: str
    lines: LineMap
    open_line: int
    frame: str | None = None


@dataclass(frozen=True)
class HostComment:
    """A comment of the host language; `own_line` when no code precedes it on its line."""

    line: int
    text: str
    own_line: bool


@dataclass(frozen=True)
class ScanProblem:
    """A source file the scanner could not read completely (reported, not raised)."""

    line: int
    message: str


@dataclass(frozen=True)
class ScannedSource:
    """Everything the linter takes from one file.

    `wrapped` when the framework the file is written for runs all of it in one
    transaction (an alembic migration).
    """

    literals: tuple[Literal, ...]
    comments: tuple[HostComment, ...]
    problems: tuple[ScanProblem, ...] = ()
    is_sql_file: bool = False
    placeholders: Mapping[str, str] = field(default_factory=dict)
    wrapped: bool = False


class Placeholders:
    """Numbers interpolations so that different expressions never share a name.

    Each name remembers how the interpolation was written (``${table}``), so that
    findings show the source, never the placeholder.
    """

    def __init__(self) -> None:
        self._count = 0
        self.written: dict[str, str] = {}

    def next(self, written: str = "${...}") -> str:
        """A fresh placeholder name for the interpolation written as `written`."""
        self._count += 1
        name = f"{PLACEHOLDER_PREFIX}{self._count}"
        self.written[name] = " ".join(written.split())
        return name


_PLACEHOLDER = re.compile(PLACEHOLDER_PREFIX + r"\d+")


def show_placeholders(text: str, written: Mapping[str, str]) -> str:
    """`text` with every placeholder name replaced by the interpolation it stands for."""
    if PLACEHOLDER_PREFIX not in text:
        return text
    return _PLACEHOLDER.sub(lambda match: written.get(match.group(0), "${...}"), text)
