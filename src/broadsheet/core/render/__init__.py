"""Render: Issue + theme → RenderedIssue (MJML compiled once, CSS inlined, plain text).

``build_issue`` and its kin load on first use: a module that only reads ``render.model`` (compose,
reports) does not import Jinja2, MRML, premailer and coloraide with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .model import PERSONAL_VARIABLES, RenderedIssue

if TYPE_CHECKING:
    from .build import build_issue, read_and_build, write_build

__all__ = ["build_issue", "read_and_build", "write_build", "RenderedIssue", "PERSONAL_VARIABLES"]

_FROM_BUILD = ("build_issue", "read_and_build", "write_build")


def __getattr__(name: str) -> Any:
    if name in _FROM_BUILD:
        return getattr(importlib.import_module(".build", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
