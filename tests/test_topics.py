"""Topics ([topics]): config validation, the segment a send mails, `subscribers show`; in-process, real SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.reporting import Recorder
from support.smtpd import configure
from test_cli_build import assert_one_line_error, run_cli
from test_send_cli import sample  # noqa: F401 - sample is the fixture

from broadsheet.core.config import load_config, parse_config
from broadsheet.core.errors import ConfigError
from broadsheet.data.store import Store
from broadsheet.data.store.recipients import StoreList
from broadsheet.usecases.send import SendOptions, send_issue

ISSUE = "issues/2021-06-01-chengdu-flemish-brabant"
TOPICS = '\n[topics]\ntrade = "Trade missions"\nevents = "Events"\n'


@pytest.mark.parametrize(
    ("table", "line", "fragment"),
    [
        ('[topics]\ntrade = "Trade"\n"a;b" = "Both"\n', 3, "'a;b' is not a tag name"),
        ('[topics]\n" trade" = "Trade"\n', 2, "' trade' is not a tag name"),
        ('[topics]\ntrade = "Trade"\nTRADE = "Again"\n', 3, "are one tag"),
        ('[topics]\ntrade = "  "\n', 2, "topics.trade has no label"),
        ("[topics]\ntrade = 3\n", 2, "'topics.trade' must be a string"),
    ],
)
def test_a_topic_that_is_no_tag_is_one_line_naming_its_line(tmp_path: Path, table: str, line: int, fragment: str):
    with pytest.raises(ConfigError) as caught:
        parse_config(table, tmp_path / "broadsheet.toml")
    assert caught.value.where == f"{tmp_path / 'broadsheet.toml'}:{line}" and fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_topics_are_read_in_their_order_as_tag_and_label(tmp_path: Path):
    config = parse_config('name = "N"\n[topics]\ntrade = "Trade missions"\n"life sciences" = "Life"\n', tmp_path / "b")
    assert list(config.topics.items()) == [("trade", "Trade missions"), ("life sciences", "Life")]


def test_the_cli_says_a_bad_topic_in_one_line(project: Path):
    with (project / "broadsheet.toml").open("a", encoding="utf-8") as config:
        config.write('\n[topics]\n"a,b" = "Both"\n')
    assert_one_line_error(run_cli(project, "subscribers", "list"), "broadsheet.toml:", "'a,b' is not a tag name")


def store_with_readers(root: Path) -> None:
    """stays (trade), leaves (trade, left it), back (trade, left and rejoined), other (events), both (trade+events,
    left trade)."""
    with Store.for_project(root) as store:
        for email, tags in [
            ("stays@example.org", ["trade"]),
            ("leaves@example.org", ["Trade"]),
            ("back@example.org", ["trade"]),
            ("other@example.org", ["events"]),
            ("both@example.org", ["trade", "events"]),
        ]:
            store.add(email, tags=tags)
        for email in ("leaves@example.org", "back@example.org", "both@example.org"):
            assert store.choose_topic(email, "trade", leave=True, source="unsubscribe-page")
        assert not store.choose_topic("leaves@example.org", "TRADE", leave=True, source="unsubscribe-page")  # a repeat
        assert store.choose_topic("back@example.org", "trade", leave=False, source="unsubscribe-page")
        assert not store.choose_topic("nobody@example.org", "trade", leave=True, source="unsubscribe-page")


def test_a_send_to_a_segment_skips_who_left_that_topic_and_only_that_topic(sample: Path):
    configure(sample, send={"transport": "outbox", "list": "absent.csv"})
    with (sample / "broadsheet.toml").open("a", encoding="utf-8") as file:
        file.write(TOPICS)
    store_with_readers(sample)
    config = load_config(sample / "broadsheet.toml")
    options = SendOptions(issue_dir=sample / ISSUE, segments=("trade",), yes=True)
    result = send_issue(options, config, Recorder())
    assert result.complete and result.counts["sent"] == 2
    mailed = {path.read_text(encoding="utf-8").split("\nTo: ", 1)[1].split("\n", 1)[0].strip()
              for path in (sample / "outbox").rglob("*.eml")}  # fmt: skip
    assert mailed == {"stays@example.org", "back@example.org"}
    # the other segment still has whoever left trade; the dry run's stream agrees with the send's selection
    assert {s.email for s in StoreList(sample, segments=("events",))} == {"other@example.org", "both@example.org"}
    assert {s.email for s in StoreList(sample, segments=("trade", "events"))} == {
        "stays@example.org", "back@example.org", "other@example.org", "both@example.org"
    }  # fmt: skip
    assert {s.email for s in StoreList(sample)} == {  # no segment: everyone, topics or not
        "stays@example.org", "leaves@example.org", "back@example.org", "other@example.org", "both@example.org"
    }  # fmt: skip


def test_topic_choices_are_events_with_their_source_and_shown_by_subscribers_show(project: Path):
    with (project / "broadsheet.toml").open("a", encoding="utf-8") as file:
        file.write(TOPICS)
    store_with_readers(project)
    with Store.for_project(project) as store:
        events = [(e.kind, e.source, e.detail) for e in store.events("back@example.org")]
        assert events == [("added", "cli", ""), ("left_topic", "unsubscribe-page", "trade"),
                          ("joined_topic", "unsubscribe-page", "trade")]  # fmt: skip
        assert [e.kind for e in store.events("leaves@example.org")] == ["added", "left_topic"]  # the repeat: none
    shown = run_cli(project, "subscribers", "show", "both@example.org")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    [trade] = [line for line in lines if line.startswith("  topic    trade")]
    assert trade.startswith("  topic    trade (Trade missions): left 20")
    assert "  topic    events (Events): in" in lines
    assert "left_topic" in shown.stdout and "(trade)" in shown.stdout
    stays = run_cli(project, "subscribers", "show", "stays@example.org").stdout.splitlines()
    assert [line for line in stays if "topic " in line] == ["  topic    trade (Trade missions): in"]


def test_forgetting_a_subscriber_erases_their_topic_choices(project: Path):
    store_with_readers(project)
    with Store.for_project(project) as store:
        assert store.left_topics("both@example.org").keys() == {"trade"}
        assert store.forget("both@example.org")
        assert store.db.execute("SELECT count(*) FROM topic_choices").fetchone()[0] == 1  # leaves@ only
