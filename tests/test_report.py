"""broadsheet report (issue 20): a store and a journal with known events and campaigns, made through the
project's own Store and Journal, read by the use case in-process; the page parsed with lxml."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import lxml.html
import pytest

from broadsheet.core.config import load_config
from broadsheet.data.journal.engines import open_journal_for
from broadsheet.data.journal.journal import Journal, Outcome, journal_path
from broadsheet.data.store import Store
from broadsheet.data.store.clicks import Click, record_clicks
from broadsheet.faces.cli import main
from broadsheet.usecases.campaign.caps import DAY, WARMUP, WARMUP_DAYS
from broadsheet.usecases.report_page import ReportOptions, write_report

START = dt.datetime(2026, 11, 2, tzinfo=dt.UTC).timestamp()  # day 1 of the warm-up
NOW = START + 10 * DAY
EXTERNAL = re.compile(r"https?://", re.IGNORECASE)


def at(days: float) -> str:
    return dt.datetime.fromtimestamp(START + days * DAY, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def send(journal: Journal, slug: str, emails: list[str], *, sent: int, first: float, step: float) -> None:
    """A campaign of ``emails`` whose first ``sent`` went out ``step`` seconds apart from ``first``; the rest failed."""
    record, _ = journal.start_campaign(slug, "smtp", f"issues/{slug}", "fp", slug=slug, subject=f"About {slug}")
    journal.load_recipients(record, "fp", [(email, line, "{}") for line, email in enumerate(emails, 2)])
    rows = journal.claim(journal.current(slug, "smtp"), len(emails), first)
    journal.record(Outcome(row.id, "sent" if n < sent else "failed") for n, row in enumerate(rows))
    for n, row in enumerate(rows):  # the journal stamps outcomes with the clock: put them at known times
        journal.db.execute("UPDATE recipients SET updated = ? WHERE id = ?", (first + n * step, row.id))
    journal.db.execute("UPDATE campaigns SET created = ? WHERE key = ?", (at(first / DAY - START / DAY), slug))


@pytest.fixture
def history(tmp_path: Path, store_location: Path | str) -> Path:
    """Ten people; issue-a sent to 8 on day 1, issue-b to 4 of 6 on day 2, and what came back after each
    (the store on each engine: every test that takes it runs on both)."""
    database = f'[database]\nurl = "{store_location}"\n' if isinstance(store_location, str) else ""
    (tmp_path / "broadsheet.toml").write_text(
        'name = "Weekly <Test>"\n[send]\ntransport = "smtp"\nwarmup = true\nwarmup_start = "2026-11-02"\n' + database,
        encoding="utf-8",
    )
    people = [f"p{n}@example.com" for n in range(10)]
    with Store(store_location) as store:
        for email in people:
            store.add(email, source="import")
        store.record_event(people[0], "bounced_hard", source="webhook:test", campaign="issue-a", at=at(1))
        for _ in range(2):  # one person, counted once
            store.record_event(people[1], "bounced_soft", source="webhook:test", campaign="issue-a", at=at(1))
        store.record_event(people[3], "unsubscribed", source="one-click", campaign="issue-a", at=at(2))
        store.record_event(people[4], "unsubscribed", source="one-click", campaign="issue-a", at=at(2))
        store.record_event(people[2], "complained", source="webhook:test", campaign="issue-b", at=at(3))
    with open_journal_for(load_config(tmp_path / "broadsheet.toml")) as journal:
        send(journal, "issue-a", people[:8], sent=8, first=START + 600, step=30)
        send(journal, "issue-b", people[4:], sent=4, first=START + DAY + 600, step=20)
    return tmp_path


def report(project: Path) -> tuple[lxml.html.HtmlElement, object]:
    written = write_report(load_config(project / "broadsheet.toml"), ReportOptions(project / "out/report.html", NOW))
    return lxml.html.fromstring(written.out.read_bytes()), written.data


def chart_ids(page: lxml.html.HtmlElement, section: str) -> set[str]:
    (svg,) = page.xpath(f"//section[@id='{section}']//*[local-name()='svg']")
    return {element.get("id") for element in svg.iter() if element.get("id")}


def section_text(page: lxml.html.HtmlElement, section: str) -> list[str]:
    return page.xpath(f"//section[@id='{section}']//*[local-name()='svg']//text()")


def test_the_page_loads_nothing_from_elsewhere_and_has_no_script(history):
    page, _ = report(history)
    assert not page.xpath("//script") and not page.xpath("//*[@*[starts-with(name(), 'on')]]")
    for element in page.iter():
        for name, value in element.attrib.items():
            if name.endswith("href") or name == "src" or name == "style":
                assert not EXTERNAL.search(value), (element.tag, name, value)
    for style in [*page.xpath("//style/text()"), *page.xpath("//@style")]:
        assert not re.search(r"url\(\s*['\"]?https?:", style) and "@import" not in style and "@font-face" not in style
    assert len(page.xpath("//*[local-name()='svg']")) == 4


def test_every_chart_is_there_with_its_series(history):
    page, _ = report(history)
    assert {f"subscribers-{name}" for name in ("joined", "left", "bounced", "complained")} <= chart_ids(
        page, "subscribers"
    )
    issue_ids = chart_ids(page, "issues")
    for series in ("hard-bounces", "soft-bounces", "complaints", "unsubscribes", "clicks"):
        assert {f"issues-{series}-0", f"issues-{series}-1"} <= issue_ids  # a bar per issue
    assert "clicks: no click data" in "".join(section_text(page, "issues"))
    assert "rate-messages-per-minute" in chart_ids(page, "rate")
    warmup_ids = chart_ids(page, "warmup")
    assert {"warmup-cap", "warmup-sent"} <= warmup_ids
    every_id = [element.get("id") for element in page.iter() if element.get("id")]
    assert len(every_id) == len(set(every_id))  # four charts in one page, no id twice


def test_the_numbers_are_right(history):
    page, data = report(history)
    rows = {row.get("data-slug"): row for row in page.xpath("//section[@id='issues']//tbody/tr")}
    assert list(rows) == ["issue-a", "issue-b"]

    def cell(slug: str, series: str) -> str:
        return rows[slug].xpath(f"td[@data-series='{series}']")[0].text_content().strip()

    assert rows["issue-a"].xpath("td")[1].text_content() == "8"
    assert cell("issue-a", "hard bounces") == "1 (12.50%)"
    assert cell("issue-a", "soft bounces") == "1 (12.50%)"  # two soft bounces of one person
    assert cell("issue-a", "unsubscribes") == "2 (25.00%)"
    assert cell("issue-a", "complaints") == "0 (0.00%)"
    assert rows["issue-b"].xpath("td")[1].text_content() == "4"  # the two that failed are not sent
    assert cell("issue-b", "complaints") == "1 (25.00%)"
    assert cell("issue-b", "clicks") == "no click data"
    assert data.issues[0].rates()[:4] == (0.125, 0.125, 0.0, 0.25)

    totals = [sum(day.counts[n] for day in data.days) for n in range(4)]
    assert totals == [10, 2, 1, 1]  # joined, left, bounced (hard only), complained
    assert data.subscribers["subscribed"] == 10

    assert data.send_rate.slug == "issue-b"  # the campaign that sent last
    assert sum(point.per_minute * data.send_rate.seconds / 60 for point in data.send_rate.points) == 4
    assert data.send_rate.points[0].minutes == 0 and data.send_rate.points[-1].minutes == 1  # 3 × 20 s

    assert [(day.sent, day.cap) for day in data.warmup[:3]] == [(8, WARMUP[0]), (4, WARMUP[1]), (0, WARMUP[2])]
    assert len(data.warmup) == WARMUP_DAYS and data.warmup[-1].cap == WARMUP[-1]
    assert "Weekly <Test>" in page.xpath("//h1")[0].text_content()  # escaped in the source, shown as written


def test_the_page_follows_dark_mode_and_scales_to_a_phone(history):
    page, _ = report(history)
    css = "".join(page.xpath("//style/text()"))
    dark = css[css.index("@media (prefers-color-scheme: dark)") :]
    assert all(f"--{name}:" in dark for name in ("bg", "fg", "grid", "s1", "s5"))
    assert page.xpath("//meta[@name='viewport']") and re.search(r"svg\s*{[^}]*width:\s*100%", css)
    for svg in page.xpath("//*[local-name()='svg']"):
        assert svg.get("viewbox") or svg.get("viewBox")
        assert svg.get("width") is None and svg.get("height") is None
        drawn = lxml.html.tostring(svg, encoding="unicode")
        assert "var(--fg)" in drawn and "var(--s1)" in drawn
        assert not re.search(r"(fill|stroke):\s*#", drawn)  # every colour follows the page's scheme


def test_clicks_are_rates_when_the_store_keeps_them(history):
    with Store.for_config(load_config(history / "broadsheet.toml")) as store:
        at = "2026-12-01T10:00:00Z"
        record_clicks(store, [Click("issue-a", 0, "https://example.org/a", at), Click("issue-a", 1, "https://example.org/b", at),
                              Click("issue-a", 1, "https://example.org/b", at, scanner=True)])  # fmt: skip
    page, data = report(history)
    assert [issue.clicks for issue in data.issues] == [2, 0]  # a scanner's click is no reader's
    assert "no click data" not in "".join(section_text(page, "issues"))


def test_an_empty_project_gets_a_page_that_says_so_and_nothing_is_created(tmp_path):
    (tmp_path / "broadsheet.toml").write_text('name = "Empty"\n', encoding="utf-8")
    page, data = report(tmp_path)
    assert data.empty and page.xpath("//*[@id='empty']") and not page.xpath("//*[local-name()='svg']")
    assert not (tmp_path / ".broadsheet").exists()


def test_a_journal_with_nothing_sent_says_so(tmp_path):
    (tmp_path / "broadsheet.toml").write_text('name = "Quiet"\n', encoding="utf-8")
    Journal(journal_path(tmp_path)).close()
    page, data = report(tmp_path)
    assert data.issues == () and data.send_rate is None and data.warmup is None
    assert "Nothing sent yet." in page.xpath("//section[@id='rate']")[0].text_content()
    assert "No subscriber store." in page.xpath("//section[@id='subscribers']")[0].text_content()


def test_the_command_writes_the_file_and_exits_0(history, capsys):
    out = history / "reports" / "now.html"
    assert main(["--config", str(history / "broadsheet.toml"), "report", "--out", str(out)]) == 0
    assert out.is_file() and lxml.html.fromstring(out.read_bytes()).xpath("//section[@id='warmup']")
    assert str(out) in capsys.readouterr().out


def test_publish_shows_the_subscriber_count_only_when_asked(history):
    with Store.for_config(load_config(history / "broadsheet.toml")) as store:
        store.set_status("p9@example.com", "unsubscribed", source="cli")
    for asked, shown in ((False, []), (True, ["9 subscribers"])):
        out = history / f"site-{asked}"
        assert main(["--config", str(history / "broadsheet.toml"), "publish", "--out", str(out)]
                    + (["--subscriber-count"] if asked else [])) == 0  # fmt: skip
        index = lxml.html.fromstring((out / "index.html").read_bytes())
        assert [p.text_content() for p in index.xpath("//*[@class='subscribers']")] == shown
        assert ("9 subscribers" in index.text_content()) is asked


def test_outbox_campaigns_and_rows_sent_elsewhere_are_not_counted_as_sent(history):
    with open_journal_for(load_config(history / "broadsheet.toml")) as journal:
        record, _ = journal.start_campaign("issue-a", "outbox", "issues/issue-a", "fp", slug="issue-a")
        journal.load_recipients(record, "fp", [("p9@example.com", 2, "{}")])
        journal.record(Outcome(row.id, "sent") for row in journal.claim(record, 1, NOW))
        record, _ = journal.start_campaign("issue-a", "postmark", "issues/issue-a", "fp", slug="issue-a")
        journal.load_recipients(record, "fp", [("p0@example.com", 2, "{}")])
        assert journal.skip_sent_elsewhere(record) == {"smtp": 1}  # marked sent, no attempt: not mailed again
    _, data = report(history)
    assert data.issues[0].sent == 8


def test_a_page_that_cannot_be_written_is_one_line_and_exit_2(history, capsys):
    (history / "taken").mkdir()
    assert main(["--config", str(history / "broadsheet.toml"), "report", "--out", str(history / "taken")]) == 2
    error = capsys.readouterr().err
    assert "cannot write the report" in error and "taken" in error and "Traceback" not in error
