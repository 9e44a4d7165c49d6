"""broadsheet report: the store's and the journal's history as one self-contained HTML page of charts.

``gather`` reads both through their read-only history queries (aggregated in SQL), ``page`` draws the
charts and lays out the page. A project without a store or a journal gets a page that says so.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

from broadsheet.core.config import Config
from broadsheet.core.errors import BroadsheetError

from .gather import gather
from .model import ReportData
from .page import render_page


@dataclass(frozen=True)
class ReportOptions:
    out: Path
    now: float | None = None  # Unix time the report is written at (tests); None: now


@dataclass(frozen=True)
class ReportWritten:
    out: Path
    data: ReportData


def write_report(config: Config, options: ReportOptions) -> ReportWritten:
    """Gather the project's history and write the page to ``options.out`` (its folder is made)."""
    now = time.time() if options.now is None else options.now
    data = gather(config, now=now)
    generated = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    html = render_page(data, generated=generated)
    try:
        options.out.parent.mkdir(parents=True, exist_ok=True)
        options.out.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise BroadsheetError(
            f"cannot write the report: {exc.strerror}", where=str(options.out), fix="choose another --out"
        ) from None
    return ReportWritten(options.out, data)


__all__ = ["ReportData", "ReportOptions", "ReportWritten", "gather", "write_report"]
