"""Render: Issue + theme → RenderedIssue (MJML compiled once, CSS inlined, plain text)."""

from .build import build_issue, read_and_build, write_build
from .model import PERSONAL_VARIABLES, RenderedIssue

__all__ = ["build_issue", "read_and_build", "write_build", "RenderedIssue", "PERSONAL_VARIABLES"]
