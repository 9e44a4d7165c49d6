"""The outbox transport: one .eml per recipient, in outbox/<slug>/, written whole."""

from __future__ import annotations

from broadsheet.core.compose.message import Message
from broadsheet.core.config import Config, Send
from broadsheet.delivery.transports import transport_class
from broadsheet.delivery.transports.base import TransportOptions
from broadsheet.delivery.transports.outbox import OutboxTransport, safe_address


def message(recipient: str) -> Message:
    raw = f"To: {recipient}\r\nSubject: hi\r\nMessage-ID: <1@example.org>\r\n\r\nHello\r\n".encode()
    return Message(
        recipient,
        "news@example.org",
        "news@example.org",
        recipient,
        "hi",
        {"Message-ID": "<1@example.org>"},
        "<p>Hello</p>",
        "Hello",
        raw,
    )


def test_writes_one_file_per_recipient_in_the_issue_folder(tmp_path):
    config = Config(root=tmp_path, send=Send(outbox_dir="out"))
    with OutboxTransport(config, TransportOptions(slug="2021-06-01-issue")) as outbox:
        deliveries = outbox.send_batch([message("ann@example.com"), message("bob@example.org")])
    folder = tmp_path / "out" / "2021-06-01-issue"
    assert sorted(p.name for p in folder.iterdir()) == ["1-ann@example.com.eml", "2-bob@example.org.eml"]
    assert (folder / "1-ann@example.com.eml").read_bytes() == message("ann@example.com").raw
    assert [d.status for d in deliveries] == ["sent", "sent"]
    assert deliveries[0].message_id == "<1@example.org>"


def test_numbers_continue_and_addresses_are_made_safe(tmp_path):
    config = Config(root=tmp_path)
    for _ in range(2):
        with OutboxTransport(config, TransportOptions(slug="s")) as outbox:
            outbox.send_batch([message("odd/name\\..@example.com")])
    names = sorted(p.name for p in (tmp_path / "outbox" / "s").iterdir())
    assert names == ["1-odd_name_..@example.com.eml", "2-odd_name_..@example.com.eml"]
    assert safe_address("a b/c@x") == "a_b_c@x"


def test_registered_and_works_without_a_slug(tmp_path):
    cls = transport_class("outbox")
    with cls(Config(root=tmp_path)) as outbox:
        outbox.send_batch([message("ann@example.com")])
    assert [p.name for p in (tmp_path / "outbox").glob("*.eml")] == ["1-ann@example.com.eml"]
