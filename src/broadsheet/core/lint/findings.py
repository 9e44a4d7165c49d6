"""What the lint reports: one finding per problem, naming the rule, the severity and where."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """One problem: ``where`` is ``file:line`` in the issue's sources when known, else the element."""

    rule: str
    severity: Severity
    message: str
    where: str

    def __str__(self) -> str:
        return f"{self.where}: {self.severity}: {self.message} [{self.rule}]"


def ordered(findings: Iterable[Finding]) -> list[Finding]:
    """Errors first, then warnings; within each, in the order the rules found them."""
    items = list(findings)
    return [f for f in items if f.severity == "error"] + [f for f in items if f.severity != "error"]


def counts(findings: Iterable[Finding]) -> tuple[int, int]:
    """(errors, warnings)."""
    items = list(findings)
    errors = sum(1 for f in items if f.severity == "error")
    return errors, len(items) - errors


def summary(findings: Iterable[Finding]) -> str:
    """'2 errors, 1 warning' or 'no problems found'."""
    errors, warnings = counts(findings)
    if not errors and not warnings:
        return "no problems found"
    return f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"


def to_json(findings: Iterable[Finding], **extra: object) -> str:
    """The findings as one JSON document for CI: findings, errors, warnings and any ``extra`` keys."""
    items = ordered(findings)
    errors, warnings = counts(items)
    document = {**extra, "errors": errors, "warnings": warnings, "findings": [asdict(f) for f in items]}
    return json.dumps(document, indent=2, ensure_ascii=False)
