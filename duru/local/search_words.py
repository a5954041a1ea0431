"""What a person typed into search, read as words: an FTS5 expression plus substrings.

The default search mode takes any text. Words are ANDed; ``"two words"`` (a
balanced pair of double quotes) is a phrase; a trailing ``*`` makes a prefix.
Nothing else is syntax: ``it's``, ``c++``, ``e-mail``, ``-plain``, ``AND``
and a lone ``"`` or ``(`` are words or nothing, never an error.

The index's tokenizer (``unicode61``) splits on spaces and punctuation, which
scripts written without spaces do not have: a whole Chinese or Japanese
sentence is one token, and emoji are not tokens at all. So runs of those
characters (CJK ideographs, kana, Hangul, Thai, Lao, Khmer, Myanmar, Tibetan,
Yi, emoji and other symbols) are found as substrings of the title or body
instead; everything else in the query goes to the index as before.
"""

from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass

# Blocks whose letters unicode61 glues into one token per run (no spaces between words).
_UNSPACED = (
    (0x0E00, 0x0FFF),  # Thai, Lao, Tibetan
    (0x1000, 0x109F),  # Myanmar
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x1780, 0x17FF),  # Khmer
    (0x2E80, 0x2FDF),  # CJK radicals
    (0x3040, 0x31FF),  # kana, Bopomofo, Hangul compatibility jamo
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xA000, 0xA4CF),  # Yi
    (0xAC00, 0xD7AF),  # Hangul syllables
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFF9F),  # half-width katakana
    (0x20000, 0x3FFFF),  # CJK extensions B and later
)
# Inside a run: marks, joiners and variation selectors belong to the character before.
_JOINING = {"Mn", "Mc", "Me", "Cf", "Sk", "So"}
_INDEX_WORD = re.compile(r"\w+")
# SQLite's lower() folds ASCII only; substrings are folded the same way.
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _separates(ch: str) -> bool:
    return not (ch.isalnum() or ch == "_" or unicodedata.category(ch) in _JOINING)


@dataclass(frozen=True, slots=True)
class TypedQuery:
    """A typed query split for the two ways of matching.

    ``phrases`` are FTS5 phrases (quoted, maybe with a trailing ``*``), all
    of which must match; ``substrings`` must all occur in the title or the
    body, exactly but for ASCII case (they are in lower case). ``words`` are
    the index words, lower case, for finding a match in a long body without
    the index.
    """

    phrases: tuple[str, ...]
    substrings: tuple[str, ...]
    words: tuple[str, ...]

    @property
    def match(self) -> str:
        """The FTS5 expression: every phrase must match ("" when there is none)."""
        return " ".join(self.phrases)


def read_typed(text: str) -> TypedQuery:
    """``text`` read as words and phrases; never fails, whatever the text."""
    phrases: list[str] = []
    substrings: list[str] = []
    for chunk in _chunks(text):
        prefix = chunk.endswith("*")
        indexed, found = split_scripts(chunk.rstrip("*"))
        substrings += found
        if _INDEX_WORD.search(indexed):
            phrases.append(fts_phrase(indexed) + ("*" if prefix and _ends_indexed(chunk) else ""))
    words = tuple(w.lower() for p in phrases for w in _INDEX_WORD.findall(p))
    return TypedQuery(tuple(phrases), tuple(dict.fromkeys(substrings)), words)


def index_words(expression: str) -> tuple[str, ...]:
    """The words of an FTS5 expression, lower case, without its operators and field names."""
    without_fields = re.sub(r"\w+\s*:", " ", expression)
    found = _INDEX_WORD.findall(without_fields)
    return tuple(w.lower() for w in found if w not in ("AND", "OR", "NOT", "NEAR"))


def fts_phrase(text: str) -> str:
    """``text`` as one FTS5 phrase: the index's tokenizer decides what its words are."""
    return '"' + " ".join(text.split()).replace('"', '""') + '"'


def split_scripts(text: str) -> tuple[str, list[str]]:
    """``text`` without its words that hold unspaced script or symbols, and those words.

    A word here runs between separators (spaces, punctuation), so letters
    glued to unspaced text stay with it (``0ก``, ``Tokyo東京``): the index
    holds such a word as one token, which no part of it would find.
    """
    indexed: list[str] = []
    found: list[str] = []
    for piece in _pieces(text):
        if any(is_unspaced(ch) for ch in piece):
            found.append(piece.translate(_ASCII_LOWER))
            indexed.append(" ")
        else:
            indexed.append(piece)
    return "".join(indexed), found


def is_unspaced(ch: str) -> bool:
    """True for a letter of a script written without spaces, an emoji or another symbol."""
    code = ord(ch)
    category = unicodedata.category(ch)
    if category == "So":
        return True
    return category[0] in "LNM" and any(lo <= code <= hi for lo, hi in _UNSPACED)


def _pieces(text: str) -> list[str]:
    """``text`` cut into runs of word characters and runs of separators, in order."""
    out: list[str] = []
    for ch in text:
        if out and _separates(out[-1][-1]) == _separates(ch):
            out[-1] += ch
        else:
            out.append(ch)
    return out


def _chunks(text: str) -> list[str]:
    """The phrases between balanced double quotes, and the other words (an odd quote is a space)."""
    pieces = text.split('"')
    if len(pieces) % 2 == 0:  # an odd number of quotes: the last one has no partner
        pieces[-2:] = [pieces[-2] + " " + pieces[-1]]
    out: list[str] = []
    for i, piece in enumerate(pieces):
        if i % 2 == 0:
            out += piece.split()
            continue
        after = pieces[i + 1] if i + 1 < len(pieces) else ""
        if after.startswith("*"):  # "design rev"* is a phrase ending in a prefix
            piece, pieces[i + 1] = piece + "*", after[1:]
        if piece.strip():
            out.append(piece)
    return out


def _ends_indexed(chunk: str) -> bool:
    """True when the last character before a trailing ``*`` goes to the index."""
    stem = chunk.rstrip("*").rstrip()
    return bool(stem) and not is_unspaced(stem[-1]) and bool(_INDEX_WORD.match(stem[-1]))
