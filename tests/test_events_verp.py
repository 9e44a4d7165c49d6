"""VERP end to end: a send over real SMTP gives each recipient its own opaque return path; a bounce that
comes back to it over real IMAP names the right subscriber even when the report names another address."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from support.imapd import PASSWORD, USER, imap_server
from support.smtpd import Sink, configure, smtp_server, write_subscribers
from test_events_inbox import sample

from broadsheet.core.compose.verp import ReturnPaths
from broadsheet.core.config import Config, Inbox, Smtp, load_config
from broadsheet.core.errors import ConfigError
from broadsheet.core.tokens import make_token
from broadsheet.data.store import Store
from broadsheet.faces.cli import main
from broadsheet.usecases.events.inbox import read_inbox

ISSUE = "issues/2021-06-01-chengdu-flemish-brabant"
RETURN_PATH = "bounces+{token}@news.example.org"


def test_return_paths_round_trip_and_refuse_what_is_not_theirs():
    config = Config(list_id="weekly.example.org", smtp=Smtp(return_path=RETURN_PATH))
    paths = ReturnPaths(config, "news@example.org", token_secret="s3cret")
    rows = {41: "jane.doe@example.com", 42: "john@example.com"}
    address = paths.for_recipient("jane.doe@example.com", 41)
    assert re.fullmatch(r"bounces\+[a-z2-7]{17,24}@news\.example\.org", address) and "jane" not in address
    assert paths.recipient_of(address, ["s3cret"], rows.get) == "jane.doe@example.com"
    assert paths.recipient_of(address.upper(), ["s3cret"], rows.get) == "jane.doe@example.com"  # an MTA's case
    assert paths.recipient_of(address, ["new", "s3cret"], rows.get) == "jane.doe@example.com"  # a rotated secret
    token = address.removeprefix("bounces+").removesuffix("@news.example.org")
    for tampered in (
        token[:-1] + ("a" if token[-1] != "a" else "b"),
        "a" + token[1:] if token[0] != "a" else "b" + token[1:],
    ):
        assert paths.recipient_of(f"bounces+{tampered}@news.example.org", ["s3cret"], rows.get) is None
    assert paths.recipient_of(address, ["s3cret"], {41: "someone.else@example.com"}.get) is None  # row reused
    assert paths.recipient_of(address, ["s3cret"], {}.get) is None  # row gone
    assert paths.recipient_of(address, ["s3cret"]) is None  # no journal to look it up in
    assert paths.recipient_of(address, ["another-secret"], rows.get) is None
    assert paths.recipient_of("bounces+aaaa@news.example.org", ["s3cret"], rows.get) is None
    assert paths.recipient_of(address.replace("news.", "evil."), ["s3cret"], rows.get) is None
    assert paths.for_recipient("jane.doe@example.com") == "news@example.org"  # no journal row: the From address
    assert ReturnPaths(Config(), "news@example.org").for_recipient("a@example.com", 1) == "news@example.org"
    for bad in (
        "bounces@news.example.org",
        "bounces+{token}",
        "{token}{token}@x.org",
        "b+{token}@x.org\r\nBcc: y",
        "b" * 41 + "+{token}@x.org",
    ):
        with pytest.raises(ConfigError, match="return_path"):
            ReturnPaths(Config(smtp=Smtp(return_path=bad)), "n@example.org", token_secret="s")


def test_tokens_of_the_first_kind_are_still_read_for_bounces_of_mail_sent_before():
    config = Config(list_id="weekly.example.org", smtp=Smtp(return_path=RETURN_PATH))
    paths = ReturnPaths(config, "news@example.org", token_secret="s3cret")
    old = f"bounces+{make_token('bounce', 'jane.doe@example.com', 'weekly.example.org', 's3cret')}@news.example.org"
    assert paths.recipient_of(old, ["s3cret"]) == "jane.doe@example.com"


def test_a_long_address_still_gets_a_return_path_within_the_local_part_limit():
    longest = "b" * 39 + "+{token}@news.example.org"  # 40 + 24 = 64: the longest prefix allowed
    recipient = "a.very.long.local.part.for.testing.purpose@exampledomain.org"
    assert len(recipient) == 60
    for template in (RETURN_PATH, longest):
        paths = ReturnPaths(Config(smtp=Smtp(return_path=template)), "news@example.org", token_secret="s3cret")
        for row in (1, 2**20, 2**35 - 1):
            local, _, domain = paths.for_recipient(recipient, row).rpartition("@")
            assert len(local) <= 64 and domain == "news.example.org" and "very" not in local
            assert paths.recipient_of(f"{local}@{domain}", ["s3cret"], {row: recipient}.get) == recipient


def test_a_bounce_to_a_verp_address_suppresses_the_subscriber_it_was_made_for(project, tmp_path, monkeypatch):
    monkeypatch.setenv("BROADSHEET_SECRET", "verp-test-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    monkeypatch.setenv("BROADSHEET_INBOX_PASSWORD", PASSWORD)
    monkeypatch.chdir(project)
    people = [email for email, _ in write_subscribers(project / "list.csv", 3)]
    sink = Sink()
    with smtp_server(sink) as (host, port):
        configure(
            project,
            send={"transport": "smtp", "connections": 1},
            smtp={"host": host, "port": port, "security": "none", "return_path": RETURN_PATH},
        )
        assert main(["send", ISSUE, "--list", "list.csv", "--yes"]) == 0
    senders = {r.recipients[0]: r.sender for r in sink.received}
    assert set(senders) == set(people) and len(set(senders.values())) == 3
    assert all(
        s.startswith("bounces+") and s.endswith("@news.example.org") and "reader" not in s for s in senders.values()
    )

    # The remote server forwarded reader0001 elsewhere and reports the forwarding address, not ours.
    bounce = (
        sample("postfix.eml")
        .replace(b"Delivered-To: bounces@news.example.org", f"Delivered-To: {senders[people[1]]}".encode())
        .replace(b"ann@example.com", b"forwarded@elsewhere.example")
    )
    with Store.for_project(project) as store, imap_server(tmp_path) as imap:
        for person in people:
            store.add(person)
        imap.append(bounce)
        config = load_config(project / "broadsheet.toml")
        config = replace(
            config,
            inbox=Inbox(
                host=imap.host, port=imap.port, security="starttls", username=USER, ca_file=imap.ca_file, timeout=5
            ),
        )
        result = read_inbox(config, store)
        assert result.applied.suppressed == [people[1]]
        assert [store.get(p).status for p in people] == ["subscribed", "bounced", "subscribed"]
        assert store.get("forwarded@elsewhere.example") is None

    # The next send skips the address the bounce suppressed.
    configure(project, send={"transport": "outbox", "outbox_dir": "outbox"}, smtp={"return_path": RETURN_PATH})
    assert main(["send", ISSUE, "--list", "list.csv", "--yes"]) == 0
    written = sorted(p.name for p in (project / "outbox").rglob("*.eml"))
    assert len(written) == 2 and not any(people[1] in name for name in written)
