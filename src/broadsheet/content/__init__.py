"""Content: an issue folder (issue.md + articles/*.md) → the typed Issue model."""

from .model import Article, Image, Issue
from .reader import read_issue

__all__ = ["Article", "Image", "Issue", "read_issue"]
