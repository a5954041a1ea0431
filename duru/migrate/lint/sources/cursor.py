"""A read position in source text that knows its line."""

from __future__ import annotations


class Cursor:
    """Walks `text` one character at a time and counts lines as it goes."""

    def __init__(self, text: str, *, line: int = 1, pos: int = 0) -> None:
        self.text = text
        self.pos = pos
        self.line = line

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self, ahead: int = 0) -> str:
        """The character `ahead` positions on, or "" past the end."""
        index = self.pos + ahead
        return self.text[index] if index < len(self.text) else ""

    def startswith(self, prefix: str) -> bool:
        return self.text.startswith(prefix, self.pos)

    def advance(self, count: int = 1) -> str:
        """Consume and return up to `count` characters."""
        chunk = self.text[self.pos : self.pos + count]
        self.pos += len(chunk)
        self.line += chunk.count("\n")
        return chunk

    def rest_of_line(self) -> str:
        """The text from here to (not including) the next newline."""
        end = self.text.find("\n", self.pos)
        return self.text[self.pos : end if end >= 0 else len(self.text)]

    def skip_balanced(self, opener: str, closer: str, *, quotes: str) -> None:
        """Skip from `opener` at the cursor to its matching `closer`.

        Quoted strings (any of `quotes`, backslash escapes) inside are skipped whole,
        so a closer inside a string does not end the span. Stops at the end of text.
        """
        depth = 0
        while not self.at_end():
            char = self.advance()
            if char == "\\":
                self.advance()
            elif char in quotes:
                self._skip_quoted(char)
            elif char == opener:
                depth += 1
            elif char == closer:
                depth -= 1
                if depth == 0:
                    return

    def _skip_quoted(self, quote: str) -> None:
        while not self.at_end():
            char = self.advance()
            if char == "\\":
                self.advance()
            elif char == quote:
                return
