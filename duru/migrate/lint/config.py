"""The repository's lint settings: ``duru.toml`` or ``[tool.duru.lint]`` in pyproject.toml.

The nearest of those files at or above the starting folder wins (the search
stops at a folder holding ``.git``). In ``duru.toml`` the settings sit under
``[lint]``; in pyproject.toml under ``[tool.duru.lint]``. Keys::

    exclude = ["DURU221", "json-column"]   # rule ids or names, not run at all
    dialect = "postgres"                   # force one dialect
    pg-version = 15                        # the server's major version
    assume-in-transaction = true           # the runner wraps each file in a transaction

Command-line flags override the file. An unknown key or rule is a UsageError, so
that a typo never silently turns a rule off.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from duru.errors import UsageError
from duru.migrate.lint.rules import RULES_BY_ID, RULES_BY_NAME
from duru.migrate.lint.settings import DEFAULT_PG_VERSION, LintSettings

_KEYS = {"exclude", "dialect", "pg-version", "assume-in-transaction"}


@dataclass(frozen=True)
class LintConfig:
    """Settings read from a file (`path` None when there was none)."""

    settings: LintSettings
    path: Path | None = None


def find_config(start: Path) -> LintConfig:
    """The settings of the nearest config file at or above `start`, else the defaults."""
    folder = start.resolve()
    for candidate in (folder, *folder.parents):
        duru = candidate / "duru.toml"
        if duru.is_file():
            return LintConfig(_settings(_load(duru).get("lint", {}), duru), duru)
        pyproject = candidate / "pyproject.toml"
        if pyproject.is_file():
            section = _load(pyproject).get("tool", {}).get("duru", {}).get("lint")
            if section is not None:
                return LintConfig(_settings(section, pyproject), pyproject)
        if (candidate / ".git").exists():
            break
    return LintConfig(LintSettings())


def _load(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise UsageError(f"cannot read lint settings from {path}: {error}") from None


def _settings(section: Mapping[str, Any], path: Path) -> LintSettings:
    unknown = set(section) - _KEYS
    if unknown:
        raise UsageError(f"{path}: unknown lint setting(s) {', '.join(sorted(unknown))}")
    dialect = section.get("dialect")
    if dialect not in (None, "sqlite", "postgres"):
        raise UsageError(f"{path}: dialect must be sqlite or postgres, not {dialect!r}")
    version = section.get("pg-version", DEFAULT_PG_VERSION)
    if not isinstance(version, int) or isinstance(version, bool):
        raise UsageError(f"{path}: pg-version must be a major version number")
    return LintSettings(
        dialect=dialect,
        pg_version=version,
        assume_in_transaction=bool(section.get("assume-in-transaction", False)),
        exclude=rule_ids(section.get("exclude", []), str(path)),
    )


def rule_ids(references: object, where: str) -> frozenset[str]:
    """Rule ids for a list of ids or names; UsageError naming `where` for unknown ones."""
    if not isinstance(references, list | tuple):
        raise UsageError(f"{where}: exclude must be a list of rule ids")
    ids = set()
    for reference in references:
        text = str(reference)
        rule = RULES_BY_ID.get(text.upper()) or RULES_BY_NAME.get(text.lower())
        if rule is None:
            raise UsageError(f"{where}: unknown rule {text}")
        ids.add(rule.id)
    return frozenset(ids)
