"""An unambiguous byte encoding of a few strings, for associated data and hash inputs.

Each part is written as ``<length in code points>:<part>`` and the whole is UTF-8,
so ``("ab", "c")`` and ``("a", "bc")`` can never encode alike.
"""

from __future__ import annotations

from functools import lru_cache

from duru.errors import UsageError


def frame(*parts: str) -> bytes:
    """``parts`` length-prefixed and UTF-8 encoded; ``UsageError`` for a non-str or bad text."""
    for part in parts:
        if type(part) is not str:
            raise UsageError(f"expected a str, got {type(part).__name__}")
    return encode_text("".join([f"{len(p)}:{p}" for p in parts]))


def frame_place(entity: str, field: str, user_id: str, row_id: str) -> bytes:
    """``frame(entity, field, user_id, row_id)``, tuned because sealing calls it per field.

    Only the row id changes from call to call when syncing, so the rest is cached.
    """
    if type(row_id) is not str:
        raise UsageError(f"a row id is a str, got {type(row_id).__name__}")
    try:
        prefix = _place_prefix(entity, field, user_id)
    except TypeError as exc:  # unhashable arguments never reach the type checks
        raise UsageError(f"entity, field and user id are str: {exc}") from exc
    return prefix + encode_text(f"{len(row_id)}:{row_id}")


@lru_cache(maxsize=512)
def _place_prefix(entity: str, field: str, user_id: str) -> bytes:
    return frame(entity, field, user_id)


def encode_text(text: str) -> bytes:
    """``text`` as UTF-8; ``UsageError`` for lone surrogates."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UsageError("text with lone surrogates cannot be encoded") from exc
