"""Whom a test copy and the preview are personalised as: ``--as`` finds the store's subscriber, else the
list's, by one function; a test copy needs no list at all."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest
from support.reporting import Recorder
from support.smtpd import configure

from broadsheet.core.config import load_config
from broadsheet.core.errors import AudienceError
from broadsheet.data.store.recipients import find_subscriber, first_recipient
from broadsheet.data.store.store import Store
from broadsheet.faces.preview import Preview
from broadsheet.usecases.send import SendOptions, send_issue

ISSUE = "issues/2021-06-01-chengdu-flemish-brabant"


def outbox_copies(project: Path) -> list[email.message.EmailMessage]:
    """The test copies in the outbox, oldest first."""
    folder = project / "outbox" / "2021-06-01-chengdu-flemish-brabant" / "test"
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for path in sorted(folder.glob("*.eml"))
    ]


def body(message: email.message.EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return part.get_content()


@pytest.fixture
def no_list(project: Path, monkeypatch) -> Path:
    """The sample project with its list gone (as a new project has none yet) and no secret."""
    (project / "subscribers.example.csv").unlink()
    monkeypatch.delenv("BROADSHEET_SECRET", raising=False)
    return project


def test_a_test_copy_needs_no_list(no_list: Path):
    config = load_config(no_list / "broadsheet.toml")
    reporter = Recorder()
    result = send_issue(SendOptions(issue_dir=no_list / ISSUE, test="editor@example.net"), config, reporter)
    assert result.complete
    [line] = reporter.infos
    assert line.startswith("test copy to editor@example.net (personalised as reader@example.com): sent")
    [copy] = outbox_copies(no_list)
    assert copy["To"] == "Sam Reader <editor@example.net>" and copy["Subject"].startswith("[TEST]")
    assert "Dear Sam," in body(copy)  # [preview] sample_subscriber's first name
    assert not (no_list / ".broadsheet" / "state.db").exists()


def test_a_named_list_that_is_missing_is_still_an_error(no_list: Path):
    config = load_config(no_list / "broadsheet.toml")
    options = SendOptions(issue_dir=no_list / ISSUE, test="editor@example.net", list_file=no_list / "gone.csv")
    with pytest.raises(AudienceError, match="subscriber list not found"):
        send_issue(options, config, Recorder())


def test_an_empty_list_personalises_as_the_sample_subscriber(no_list: Path):
    (no_list / "subscribers.example.csv").write_text("email,name\n", encoding="utf-8")
    config = load_config(no_list / "broadsheet.toml")
    assert first_recipient(config, None, ()) is None
    assert send_issue(SendOptions(issue_dir=no_list / ISSUE, test="editor@example.net"), config, Recorder()).complete


def store_with(project: Path, address: str, name: str, **fields: str) -> None:
    with Store.for_project(project) as store:
        store.add(address, name=name, fields=fields)


def test_as_finds_the_stores_subscriber_before_the_lists(project: Path):
    store_with(project, "Ann.Peeters@example.com", "Annelies Peeters", company="Store NV")
    config = load_config(project / "broadsheet.toml")
    found = find_subscriber(config, "ann.peeters@EXAMPLE.com")
    assert (found.name, found.first_name, found.fields) == ("Annelies Peeters", "Annelies", {"company": "Store NV"})
    listed = find_subscriber(config, "wei.zhang@example.org")  # not in the store: the list's row
    assert (listed.name, listed.first_name, listed.fields["company"]) == ("Zhang Wei", "Wei", "Chengdu Bio Town")
    with pytest.raises(
        AudienceError, match=r"nobody@example\.com is not a subscribed address in the store or the list"
    ):
        find_subscriber(config, "nobody@example.com")


def test_an_unsubscribed_store_entry_is_not_personalised_as(no_list: Path):
    with Store.for_project(no_list) as store:
        store.add("gone@example.org", name="Gone", status="unsubscribed")
    with pytest.raises(AudienceError, match="not a subscribed address"):
        find_subscriber(load_config(no_list / "broadsheet.toml"), "gone@example.org")


def test_send_test_and_preview_as_a_store_subscriber_without_a_list(no_list: Path):
    """Both commands find a subscriber only the store knows (the preview once read the list alone)."""
    store_with(no_list, "mei@example.org", "Mei Chen", first_name="Meimei")
    config = load_config(no_list / "broadsheet.toml")
    options = SendOptions(issue_dir=no_list / ISSUE, test="editor@example.net", as_email="mei@example.org")
    reporter = Recorder()
    assert send_issue(options, config, reporter).complete
    assert "(personalised as mei@example.org)" in reporter.infos[0]
    assert "Dear Meimei," in body(outbox_copies(no_list)[0])
    with Preview(no_list / ISSUE, port=0, config_path=no_list / "broadsheet.toml", as_email="mei@example.org",
                 watch=False) as running:  # fmt: skip
        assert running.current.error is None
        assert "Dear Meimei," in running.current.email.text


def test_send_test_without_as_takes_the_first_subscriber_of_the_store(no_list: Path):
    store_with(no_list, "first@example.org", "First Reader")
    store_with(no_list, "second@example.org", "Second Reader")
    configure(no_list, send={"transport": "outbox"})
    reporter = Recorder()
    config = load_config(no_list / "broadsheet.toml")
    assert send_issue(SendOptions(issue_dir=no_list / ISSUE, test="editor@example.net"), config, reporter).complete
    assert "(personalised as first@example.org)" in reporter.infos[0]
