"""The report's charts as inline SVG, drawn offline by matplotlib's SVG backend.

Colours are drawn as placeholder values and then replaced by CSS variables (``var(--fg)``, ``var(--s1)``…),
which the page defines for light and dark mode; the background is transparent. The SVG keeps its
viewBox without a fixed width or height, so the page scales it to the screen. Ids are made per chart
(``svg.hashsalt`` and a prefix), so several charts live in one page.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

from .model import ISSUE_SERIES, SUBSCRIBER_SERIES, DayCounts, IssueCounts, SendRateCurve, WarmupDay

# placeholder colour -> the CSS variable that replaces it (the page's stylesheet defines each)
COLOURS = {
    "#010101": "var(--fg)",
    "#020202": "var(--grid)",
    "#030301": "var(--s1)",
    "#030302": "var(--s2)",
    "#030303": "var(--s3)",
    "#030304": "var(--s4)",
    "#030305": "var(--s5)",
}
FG, GRID = "#010101", "#020202"
EPOCH = dt.date(1970, 1, 1)
SERIES = ("#030301", "#030302", "#030303", "#030304", "#030305")
STYLE: dict[Any, Any] = {
    "date.epoch": EPOCH.isoformat() + "T00:00:00",  # what ``_dates`` counts from
    "svg.fonttype": "none",  # text stays text, in the page's fonts: nothing embedded, nothing fetched
    "font.family": "sans-serif",
    "font.size": 10,
    "text.parse_math": False,  # a slug with $ in it is text, not TeX
    "text.color": FG,
    "axes.labelcolor": FG,
    "axes.edgecolor": FG,
    "xtick.color": FG,
    "ytick.color": FG,
    "grid.color": GRID,
    "axes.grid": True,
    "axes.axisbelow": True,
    "legend.frameon": False,
    "figure.facecolor": "none",
    "axes.facecolor": "none",
    "savefig.facecolor": "none",
    "savefig.edgecolor": "none",
}
CHART_ISSUES = 24  # more bars than a phone can show apart; the page's table lists every issue
SIZE = (5.6, 3.4)  # inches, at 72 px each: on a phone the text keeps about its 10 px
_DECLARATION = re.compile(r"^.*?(?=<svg\b)", re.DOTALL)
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)
_SIZE_ATTRIBUTES = re.compile(r'(<svg\b[^>]*?)\s+width="[^"]*"\s+height="[^"]*"')
_GENERIC_ID = re.compile(r'\bid="([a-zA-Z][\w.]*_\d+)"')
_PLACEHOLDER = re.compile("|".join(COLOURS))


def subscribers_chart(days: Sequence[DayCounts]) -> str:
    """Joined, left, bounced and complained, each as a running total by day."""
    with _figure("subscribers") as (figure, axes):
        dates = _dates(day.day for day in days)
        for position, name in enumerate(SUBSCRIBER_SERIES):
            total, totals = 0, []
            for day in days:
                total += day.counts[position]
                totals.append(total)
            (line,) = axes.step(dates, totals, where="post", color=SERIES[position], label=name, linewidth=1.8)
            line.set_gid(f"subscribers-{name}")
        return _by_day(figure, axes, "subscribers", "people (running total)")


def issues_chart(issues: Sequence[IssueCounts]) -> str:
    """Per issue (the last ``CHART_ISSUES``), bounces, complaints, unsubscribes and clicks as shares of the
    messages sent (grouped bars); clicks without click data are marked so."""
    issues = issues[-CHART_ISSUES:]
    with _figure("issues") as (figure, axes):
        width = 0.8 / len(ISSUE_SERIES)
        positions = range(len(issues))
        for number, name in enumerate(ISSUE_SERIES):
            rates = [issue.rates()[number] for issue in issues]
            known = [0.0 if rate is None else rate * 100 for rate in rates]
            label = name if all(rate is not None for rate in rates) else f"{name}: no click data"
            bars = axes.bar([p + (number - 2) * width for p in positions], known, width, color=SERIES[number],
                            label=label)  # fmt: skip
            for index, bar in enumerate(bars.patches):
                bar.set_gid(f"issues-{name.replace(' ', '-')}-{index}")
        axes.set_xticks(list(positions), [issue.slug for issue in issues], rotation=30, ha="right")
        axes.set_ylabel("% of messages sent")
        figure.legend(loc="outside lower center", ncols=3)  # below the chart: bars reach the top
        return _svg(figure, "issues")


def send_rate_chart(curve: SendRateCurve) -> str:
    """The last campaign's messages per minute against minutes since its first message."""
    with _figure("rate") as (figure, axes):
        minutes = [point.minutes for point in curve.points]
        (line,) = axes.plot(minutes, [point.per_minute for point in curve.points], color=SERIES[0], marker=".",
                            linewidth=1.8)  # fmt: skip
        line.set_gid("rate-messages-per-minute")
        axes.set_xlabel(f"minutes since the first message of {curve.slug}")
        axes.set_ylabel("messages per minute")
        axes.set_ylim(bottom=0)
        return _svg(figure, "rate")


def warmup_chart(days: Sequence[WarmupDay]) -> str:
    """Messages sent per day (filled steps, one artist however many days) against the day's cap (a line)."""
    with _figure("warmup") as (figure, axes):
        dates = _dates(day.day for day in days)
        edges = [date - 0.5 for date in dates] + [dates[-1] + 0.5]
        axes.stairs([day.sent for day in days], edges, fill=True, color=SERIES[0], label="sent", gid="warmup-sent")
        if any(day.cap is not None for day in days):
            caps = [float("nan") if day.cap is None else day.cap for day in days]
            (line,) = axes.step(dates, caps, where="mid", color=SERIES[3], label="cap", linewidth=1.8)
            line.set_gid("warmup-cap")
        axes.set_ylim(0, _top(days))
        return _by_day(figure, axes, "warmup", "messages per day (UTC)")


def _by_day(figure: Figure, axes: Axes, chart: str, label: str) -> str:
    """The SVG of a chart over days: dates along the bottom, slanted to fit, and the legend at the top left."""
    axes.xaxis_date()
    axes.set_ylabel(label)
    axes.legend(loc="upper left")
    figure.autofmt_xdate()
    return _svg(figure, chart)


def _top(days: Sequence[WarmupDay]) -> float:
    """The top of the warm-up chart: what was sent and the caps up to the last day anything went out (the
    warm-up's later days grow far beyond a new list and would flatten the bars)."""
    last = max((number for number, day in enumerate(days) if day.sent), default=len(days) - 1)
    return 1.15 * max([1, *(day.sent for day in days), *(day.cap or 0 for day in days[: last + 1])])


def _dates(days: Iterable[str]) -> list[float]:
    """``YYYY-MM-DD`` days as matplotlib's date numbers, days since ``EPOCH`` (the axes show them as dates)."""
    return [float((dt.date.fromisoformat(day) - EPOCH).days) for day in days]


@contextmanager
def _figure(chart: str) -> Iterator[tuple[Figure, Axes]]:
    """A figure of one axes under the report's style; ids salted with ``chart`` (unique in the page,
    the same for the same data)."""
    with matplotlib.rc_context({**STYLE, "svg.hashsalt": chart}):
        figure = Figure(figsize=SIZE, layout="constrained")
        FigureCanvasSVG(figure)
        yield figure, figure.add_subplot()


def _svg(figure: Figure, chart: str) -> str:
    """The figure as an ``<svg>`` element for the page: no XML declaration, no fixed size, colours as CSS
    variables, generic ids prefixed with the chart's name."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    svg = _DECLARATION.sub("", buffer.getvalue(), count=1)
    svg = _SIZE_ATTRIBUTES.sub(r"\1", svg, count=1)
    svg = _METADATA.sub("", svg, count=1)  # RDF naming outside vocabularies: nothing a reader needs
    svg = _GENERIC_ID.sub(lambda m: f'id="{chart}-{m.group(1)}"', svg)
    return _PLACEHOLDER.sub(lambda m: COLOURS[m.group(0)], svg)
