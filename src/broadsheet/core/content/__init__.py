"""Content: an issue folder (issue.md + articles/*.md) → the typed Issue model."""

from .model import Article, Image, Issue, Schedule
from .reader import read_issue, read_schedule

__all__ = ["Article", "Image", "Issue", "Schedule", "read_issue", "read_schedule"]
