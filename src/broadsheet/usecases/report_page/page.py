"""The report as one self-contained HTML page: its charts inline, its CSS in the page, no script, nothing
loaded from anywhere (Jinja2, autoescaped; the SVGs are the only markup put in as it is)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2
from markupsafe import Markup

from .model import ISSUE_SERIES, ReportData

TEMPLATES = Path(__file__).parent / "templates"


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )  # fmt: skip


def render_page(data: ReportData, *, generated: str) -> str:
    """The page for ``data``; ``generated`` is the time it shows as written (ISO 8601 UTC)."""
    from . import charts  # matplotlib is imported when a report is drawn, not by every command's --help

    drawn = {
        "subscribers": charts.subscribers_chart(data.days) if data.days else None,
        "issues": charts.issues_chart(data.issues) if data.issues else None,
        "rate": charts.send_rate_chart(data.send_rate) if data.send_rate else None,
        "warmup": charts.warmup_chart(data.warmup) if data.warmup else None,
    }
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            data=data,
            generated=generated,
            charts={name: Markup(svg) if svg else None for name, svg in drawn.items()},  # noqa: S704 (drawn here)
            issue_series=ISSUE_SERIES,
        )
    )
