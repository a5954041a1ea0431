"""Machine formats of a lint report: GitHub Actions annotations and SARIF 2.1.0.

GitHub: one ``::error file=...,line=...::message`` workflow command per active
finding (``::warning`` for warnings), which the Actions runner turns into
annotations on the pull request. SARIF: one run of the tool ``duru migrate
lint`` with every rule as a reportingDescriptor and every finding as a result;
suppressed findings carry a ``suppressions`` entry with the reason.
"""

from __future__ import annotations

from typing import Any

from duru.migrate.lint.report import Finding, LintReport
from duru.migrate.lint.rules import RULES

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def render_github(report: LintReport) -> str:
    """Workflow commands for GitHub Actions, one line per active finding."""
    return "".join(_github_line(finding) + "\n" for finding in report.active)


def _github_line(finding: Finding) -> str:
    where = [f"file={_property(finding.file)}", f"line={finding.line}"]
    if finding.end_line is not None:
        where.append(f"endLine={finding.end_line}")
    if finding.column is not None:
        where.append(f"col={finding.column}")
    where.append(f"title={_property(f'{finding.rule} {finding.name}')}")
    message = f"{finding.message}. Fix: {finding.fix}"
    return f"::{finding.severity} {','.join(where)}::{_data(message)}"


def _data(text: str) -> str:
    # The escapes GitHub's workflow command parser undoes.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def to_sarif(report: LintReport) -> dict[str, Any]:
    """The report as a SARIF 2.1.0 log (a JSON-ready dict)."""
    rules = [
        {
            "id": rule.id,
            "name": rule.name,
            "shortDescription": {"text": rule.name.replace("-", " ")},
            "fullDescription": {"text": rule.why},
            "help": {"text": rule.fix},
            "defaultConfiguration": {"level": rule.severity},
        }
        for rule in RULES
    ]
    index = {rule.id: position for position, rule in enumerate(RULES)}
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "duru migrate lint", "rules": rules}},
                "results": [_result(f, index[f.rule]) for f in report.findings],
            }
        ],
    }


def _result(finding: Finding, rule_index: int) -> dict[str, Any]:
    region: dict[str, Any] = {"startLine": finding.line}
    if finding.end_line is not None:
        region["endLine"] = finding.end_line
    if finding.column is not None:
        region["startColumn"] = finding.column
    if finding.end_column is not None:
        # SARIF's endColumn is exclusive.
        region["endColumn"] = finding.end_column + 1
    result: dict[str, Any] = {
        "ruleId": finding.rule,
        "ruleIndex": rule_index,
        "level": finding.severity,
        "message": {"text": finding.message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": finding.file},
                    "region": region,
                }
            }
        ],
    }
    if finding.suppressed:
        result["suppressions"] = [
            {"kind": "inSource", "justification": finding.suppression_reason or ""}
        ]
    return result
