"""The shape of the SELECT that feeds a copy: where rows come from and what drops them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SelectShape:
    """Source tables, whether the select list uses ``*``, and the row filters.

    Filters are the clauses that can leave source rows out of the copy: WHERE,
    an inner JOIN, LIMIT, DISTINCT, GROUP BY, HAVING, INTERSECT and EXCEPT (a
    LEFT JOIN keeps every row of its left side and is not a filter).
    """

    sources: tuple[str, ...] = ()
    star: bool = False
    filters: tuple[str, ...] = ()

    def merged(self, other: SelectShape) -> SelectShape:
        """The shape of two selects combined (a UNION, or a subquery in FROM)."""
        return SelectShape(
            _unique(self.sources + other.sources),
            self.star or other.star,
            _unique(self.filters + other.filters),
        )

    def with_filter(self, name: str) -> SelectShape:
        return SelectShape(self.sources, self.star, _unique((*self.filters, name)))


def _unique(items: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
