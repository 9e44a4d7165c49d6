"""Render: Issue + theme → RenderedIssue (MJML compiled once, CSS inlined, plain text)."""

from .build import build_issue, write_build
from .model import PERSONAL_VARIABLES, RenderedIssue

__all__ = ["build_issue", "write_build", "RenderedIssue", "PERSONAL_VARIABLES"]
