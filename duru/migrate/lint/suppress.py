"""Inline suppressions: ``duru: allow RULE[, RULE...] because <reason>`` in a comment.

The comment may be SQL (``--`` or ``/* */``, also inside a host string) or the
host language's (``#`` in Python, ``//`` or ``/* */`` elsewhere). Rules are named
by id (DURU104) or short name (drop-without-backup). A directive applies to:

- a statement starting on the next line (or after the comment on its own line),
  when the comment stands on its own line; a host comment there also covers every
  statement of a string opening on the next line; a SQL comment on its own line
  inside a statement (above the column it excuses) covers that statement;
- the statements whose lines it sits on, when it trails code;
- the whole file, written ``duru: allow-file RULE[, RULE...] because <reason>``
  anywhere in it (rules named ``all`` cover every rule).

A directive without a reason, or naming an unknown rule, is itself a finding
(DURU002) and suppresses nothing (an unknown rule name is skipped, the rest of a
directive with a reason still applies).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from duru.migrate.lint.migration import Comment
from duru.migrate.lint.rules import RULES_BY_ID, RULES_BY_NAME

_DIRECTIVE = re.compile(r"\bduru:\s*allow(?P<file>-file)?\b(?P<body>.*)", re.IGNORECASE | re.DOTALL)
ALL_RULES = "all"
_BODY = re.compile(
    r"\s*(?P<rules>[\w-]+(?:\s*,\s*[\w-]+)*)(?:\s+because\b(?P<reason>.*))?\s*$",
    re.IGNORECASE | re.DOTALL,
)


@dataclass(frozen=True)
class Span:
    """Where a finding sits: first and last line, the line its host string opens, columns."""

    line: int
    end_line: int
    open_line: int | None = None
    column: int | None = None
    end_column: int | None = None


@dataclass(frozen=True)
class Directive:
    """One parsed suppression comment; `problems` say why it is invalid."""

    comment: Comment
    rules: frozenset[str]
    reason: str | None
    problems: tuple[str, ...]
    whole_file: bool = False

    def covers(self, rule_id: str, span: Span) -> bool:
        """True when this directive suppresses `rule_id` at `span`."""
        if self.reason is None:
            return False
        if rule_id not in self.rules and not (self.whole_file and ALL_RULES in self.rules):
            return False
        if self.whole_file:
            return True
        line = self.comment.line
        if self.comment.own_line:
            if span.line in (line, line + 1):
                return True
            # A SQL comment on its own line inside the statement, next to the clause it excuses.
            if not self.comment.host and span.line <= line <= span.end_line:
                return True
            return self.comment.host and span.open_line == line + 1
        return span.line <= line <= span.end_line or (self.comment.host and span.open_line == line)


def parse_directives(comments: tuple[Comment, ...]) -> list[Directive]:
    """Every suppression directive among `comments`, valid or not."""
    directives = []
    for comment in comments:
        match = _DIRECTIVE.search(comment.text)
        if match is not None:
            directive = _directive(comment, match.group("body"), bool(match.group("file")))
            directives.append(directive)
    return directives


def _directive(comment: Comment, body: str, whole_file: bool) -> Directive:
    match = _BODY.match(body)
    if match is None:
        return Directive(comment, frozenset(), None, ("names no rule",), whole_file)
    problems: list[str] = []
    rules: set[str] = set()
    for reference in re.split(r"\s*,\s*", match.group("rules")):
        rule = RULES_BY_ID.get(reference.upper()) or RULES_BY_NAME.get(reference.lower())
        if whole_file and reference.lower() == ALL_RULES:
            rules.add(ALL_RULES)
        elif rule is None:
            problems.append(f"unknown rule {reference}")
        else:
            rules.add(rule.id)
    reason = (match.group("reason") or "").strip() or None
    if reason is None:
        problems.append("gives no reason (write: because <reason>)")
    return Directive(comment, frozenset(rules), reason, tuple(problems), whole_file)
