"""broadsheet inbox against a real IMAP server (pymap, STARTTLS, trustme CA), with real DSN and ARF shapes."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from support.imapd import PASSWORD, USER, imap_server

from broadsheet.campaign.journal import Journal, Outcome
from broadsheet.cli import main
from broadsheet.config import Config, Inbox
from broadsheet.events.inbox import InboxError, read_inbox, read_report
from broadsheet.store import Store

DATA = Path(__file__).parent / "data" / "inbox"
UNSUBSCRIBE = "mailto:unsubscribe@news.example.org"


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("postfix.eml", [("hard_bounce", "ann@example.com", "<issue-1.ann@news.example.org>")]),
        ("exim.eml", [("hard_bounce", "bob@example.net", "<issue-1.bob@news.example.org>")]),
        ("gmail.eml", [("hard_bounce", "cat.no.such.user@gmail.com", "<issue-1.cat@news.example.org>")]),
        ("microsoft.eml", [("hard_bounce", "dan@contoso.example", "<issue-1.dan@news.example.org>")]),
        ("mailbox-full.eml", [("soft_bounce", "eve@example.com", "")]),
        ("delayed.eml", []),
        ("arf.eml", [("complaint", "gus@example-isp.com", "<issue-1.gus@news.example.org>")]),
        ("unsubscribe.eml", [("unsubscribe", "hal@example.com", "")]),
        ("reply.eml", None),
    ],
)
def test_each_real_world_shape_is_read(name, expected):
    events = read_report(sample(name), unsubscribe_address=UNSUBSCRIBE)
    assert (None if events is None else [(e.kind, e.email, e.message_id) for e in events]) == expected


def test_reasons_and_keys():
    [postfix] = read_report(sample("postfix.eml"))
    assert postfix.detail.startswith("5.1.1 smtp; 550 5.1.1") and postfix.at == "2026-12-01T10:00:05Z"
    assert postfix.dedupe_key == read_report(sample("postfix.eml"))[0].dedupe_key  # the same mail: the same key
    [exim] = read_report(sample("exim.eml"))
    assert "550 5.1.1" in exim.detail
    assert read_report(sample("unsubscribe.eml"), unsubscribe_address="") is None  # no mailto configured: not ours


def test_a_verp_token_names_the_recipient_whatever_the_report_says():
    raw = sample("postfix.eml").replace(
        b"Delivered-To: bounces@news.example.org", b"Delivered-To: bounces+tok123@news.example.org"
    )
    [event] = read_report(
        raw, verp=lambda address: "real@example.com" if address == "bounces+tok123@news.example.org" else None
    )
    assert event.email == "real@example.com"


@pytest.fixture
def imap(tmp_path):
    with imap_server(tmp_path) as server:
        yield server


def inbox_config(root: Path, server, **changes) -> Config:
    settings = Inbox(
        host=server.host, port=server.port, security="starttls", username=USER, ca_file=server.ca_file, timeout=5
    )
    return Config(root=root, unsubscribe_mailto=UNSUBSCRIBE, inbox=replace(settings, **changes))


def test_inbox_applies_reports_moves_them_and_leaves_the_rest(tmp_path, imap, monkeypatch):
    monkeypatch.setenv("BROADSHEET_INBOX_PASSWORD", PASSWORD)
    with Journal.for_project(tmp_path) as journal:
        campaign, _ = journal.start_campaign("2026-12-issue", "smtp", "issues/x", "")
        journal.load_recipients(campaign, "fp", [("ann@example.com", 2, "{}")])
        [row] = journal.claim(campaign, 1, time.time())
        journal.record([Outcome(row.id, "sent", message_id="<issue-1.ann@news.example.org>")])
    names = sorted(p.name for p in DATA.glob("*.eml"))
    imap.append(*(sample(n) for n in names))
    with Store.for_project(tmp_path) as store:
        for email in ("ann@example.com", "hal@example.com", "ivy@example.com", "eve@example.com"):
            store.add(email)
        result = read_inbox(inbox_config(tmp_path, imap), store)
        assert (result.read, result.processed, result.unrecognised) == (len(names), len(names) - 1, 1)
        assert {
            s: store.get(e).status
            for s, e in [
                ("ann", "ann@example.com"),
                ("hal", "hal@example.com"),
                ("ivy", "ivy@example.com"),
                ("eve", "eve@example.com"),
            ]
        } == {"ann": "bounced", "hal": "unsubscribed", "ivy": "subscribed", "eve": "subscribed"}
        assert store.get("gus@example-isp.com").status == "complained"
        last = store.events("ann@example.com")[-1]
        assert (last.source, last.campaign) == ("inbox", "2026-12-issue")
        assert [e.kind for e in store.events("eve@example.com")][-1] == "bounced_soft"
        assert (imap.count("INBOX"), imap.count("broadsheet-processed")) == (1, len(names) - 1)

        imap.append(sample("postfix.eml"))  # the same report delivered again
        before = len(store.events("ann@example.com"))
        again = read_inbox(inbox_config(tmp_path, imap), store)
        assert (again.processed, again.unrecognised) == (1, 1) and again.applied.suppressed == []
        assert len(store.events("ann@example.com")) == before


def test_wrong_password_untrusted_certificate_and_missing_password_are_one_line_errors(
    tmp_path, imap, monkeypatch, capsys
):
    monkeypatch.setenv("BROADSHEET_INBOX_PASSWORD", "wrong-pw")
    with Store.for_project(tmp_path) as store:
        with pytest.raises(InboxError, match="refused") as caught:
            read_inbox(inbox_config(tmp_path, imap), store)
        assert "wrong-pw" not in str(caught.value)
        monkeypatch.setenv("BROADSHEET_INBOX_PASSWORD", PASSWORD)
        with pytest.raises(InboxError, match="certificate is not trusted: unable to get local issuer") as caught:
            read_inbox(inbox_config(tmp_path, imap, ca_file=""), store)  # the test CA is not trusted by default
        assert "Errno" not in str(caught.value) and "inbox.ca_file" in str(caught.value)
        with pytest.raises(InboxError, match="certificate is not trusted: Hostname mismatch"):
            read_inbox(inbox_config(tmp_path, imap, host="localhost"), store)  # issued for 127.0.0.1 only
        with pytest.raises(InboxError, match="processed_folder"):
            read_inbox(inbox_config(tmp_path, imap, processed_folder="inbox"), store)
    (tmp_path / "broadsheet.toml").write_text(
        f'[inbox]\nhost = "127.0.0.1"\nport = {imap.port}\nsecurity = "starttls"\nusername = "{USER}"\nca_file = "{imap.ca_file}"\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BROADSHEET_INBOX_PASSWORD")
    assert main(["inbox"]) == 2
    assert "BROADSHEET_INBOX_PASSWORD" in capsys.readouterr().err
    monkeypatch.setenv("BROADSHEET_INBOX_PASSWORD", PASSWORD)
    imap.append(sample("arf.eml"))
    assert main(["inbox"]) == 0
    assert "1 processed" in capsys.readouterr().out


def test_implicit_tls_is_verified_too(tmp_path, imap, monkeypatch):
    monkeypatch.setenv("BROADSHEET_INBOX_PASSWORD", PASSWORD)
    imap.append(sample("arf.eml"), sample("reply.eml"))
    with Store.for_project(tmp_path) as store:
        result = read_inbox(inbox_config(tmp_path, imap, security="ssl", port=imap.tls_port), store)
        assert (result.processed, result.unrecognised) == (1, 1)
        with pytest.raises(InboxError, match="certificate is not trusted"):
            read_inbox(inbox_config(tmp_path, imap, security="ssl", port=imap.tls_port, ca_file=""), store)
        with pytest.raises(InboxError, match="cannot reach"):  # STARTTLS expected, the server speaks TLS at once
            read_inbox(inbox_config(tmp_path, imap, security="starttls", port=imap.tls_port, timeout=0.5), store)


HOSTILE_MAILS = [
    b"",
    b"\x00\xff" * 100,
    b"Content-Type: multipart/report; report-type=delivery-status\r\n\r\nno boundary",
    b"Content-Type: multipart/mixed; boundary=a\r\n\r\n"
    + b"--a\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n" * 3000,
    b"Subject: " + b"x" * 100_000 + b"\r\n\r\nbody",
    b"Content-Type: multipart/report; report-type=feedback-report; boundary=b\r\n\r\n--b\r\n"
    b"Content-Type: message/feedback-report\r\n\r\nOriginal-Rcpt-To: \r\n--b--",
    b"From: x@y.org\r\nContent-Type: text/rfc822-headers\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!",
    b"From: \xff\xfe\r\nX-Failed-Recipients: \xff@\xfe\r\nSubject: \xe9\r\n\r\nbody",
]


@pytest.mark.parametrize("raw", HOSTILE_MAILS)
def test_hostile_mails_are_unrecognised_or_harmless_never_a_crash(raw, capsys):
    events = read_report(raw, unsubscribe_address=UNSUBSCRIBE)
    assert events is None or all(e.kind in ("hard_bounce", "soft_bounce", "complaint") for e in events)
    assert capsys.readouterr().err == ""
