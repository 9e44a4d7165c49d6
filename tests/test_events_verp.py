"""VERP end to end: a send over real SMTP gives each recipient its own opaque return path; a bounce that
comes back to it over real IMAP names the right subscriber even when the report names another address."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from support.imapd import PASSWORD, USER, imap_server
from support.smtpd import Sink, configure, smtp_server, write_subscribers
from test_events_inbox import sample

from broadsheet.cli import main
from broadsheet.compose.verp import ReturnPaths
from broadsheet.config import Config, Inbox, Smtp, load_config
from broadsheet.errors import ConfigError
from broadsheet.events.inbox import read_inbox
from broadsheet.store import Store

ISSUE = "issues/2021-06-01-chengdu-flemish-brabant"
RETURN_PATH = "bounces+{token}@news.example.org"


def test_return_paths_round_trip_and_refuse_what_is_not_theirs():
    config = Config(list_id="weekly.example.org", smtp=Smtp(return_path=RETURN_PATH))
    paths = ReturnPaths(config, "news@example.org", token_secret="s3cret")
    address = paths.for_recipient("jane.doe@example.com")
    assert re.fullmatch(r"bounces\+[A-Za-z0-9_-]+@news\.example\.org", address) and "jane" not in address
    assert paths.recipient_of(address, ["s3cret"]) == "jane.doe@example.com"
    token = address.removeprefix("bounces+").removesuffix("@news.example.org")
    assert paths.recipient_of(f"bounces+{token.swapcase()}@news.example.org", ["s3cret"]) is None  # tampered token
    assert paths.recipient_of(address, ["another-secret"]) is None
    assert paths.recipient_of("bounces+AAAA@news.example.org", ["s3cret"]) is None
    assert paths.recipient_of(address.replace("news.", "evil."), ["s3cret"]) is None
    assert ReturnPaths(Config(), "news@example.org").for_recipient("a@example.com") == "news@example.org"
    for bad in ("bounces@news.example.org", "bounces+{token}", "{token}{token}@x.org", "b+{token}@x.org\r\nBcc: y"):
        with pytest.raises(ConfigError, match="return_path"):
            ReturnPaths(Config(smtp=Smtp(return_path=bad)), "n@example.org", token_secret="s")


def test_a_bounce_to_a_verp_address_suppresses_the_subscriber_it_was_made_for(project, tmp_path, monkeypatch):
    monkeypatch.setenv("BROADSHEET_SECRET", "verp-test-secret")
    monkeypatch.setenv("BROADSHEET_INBOX_PASSWORD", PASSWORD)
    monkeypatch.chdir(project)
    people = [email for email, _ in write_subscribers(project / "list.csv", 3)]
    sink = Sink()
    with smtp_server(sink) as (host, port):
        configure(project, send={"transport": "smtp", "connections": 1},
                  smtp={"host": host, "port": port, "security": "none", "return_path": RETURN_PATH})
        assert main(["send", ISSUE, "--list", "list.csv", "--yes"]) == 0
    senders = {r.recipients[0]: r.sender for r in sink.received}
    assert set(senders) == set(people) and len(set(senders.values())) == 3
    assert all(s.startswith("bounces+") and s.endswith("@news.example.org") and "reader" not in s for s in senders.values())

    # The remote server forwarded reader0001 elsewhere and reports the forwarding address, not ours.
    bounce = (sample("postfix.eml")
              .replace(b"Delivered-To: bounces@news.example.org", f"Delivered-To: {senders[people[1]]}".encode())
              .replace(b"ann@example.com", b"forwarded@elsewhere.example"))
    with Store.for_project(project) as store, imap_server(tmp_path) as imap:
        for person in people:
            store.add(person)
        imap.append(bounce)
        config = load_config(project / "broadsheet.toml")
        config = replace(config, inbox=Inbox(host=imap.host, port=imap.port, security="starttls", username=USER,
                                             ca_file=imap.ca_file, timeout=5))
        result = read_inbox(config, store)
        assert result.applied.suppressed == [people[1]]
        assert [store.get(p).status for p in people] == ["subscribed", "bounced", "subscribed"]
        assert store.get("forwarded@elsewhere.example") is None

    # The next send skips the address the bounce suppressed.
    configure(project, send={"transport": "outbox", "outbox_dir": "outbox"}, smtp={"return_path": RETURN_PATH})
    assert main(["send", ISSUE, "--list", "list.csv", "--yes"]) == 0
    written = sorted(p.name for p in (project / "outbox").rglob("*.eml"))
    assert len(written) == 2 and not any(people[1] in name for name in written)
