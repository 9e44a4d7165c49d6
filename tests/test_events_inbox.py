"""broadsheet inbox against a real IMAP server (pymap, STARTTLS, trustme CA), with real DSN and ARF shapes."""

from __future__ import annotations

import email
import time
from dataclasses import replace
from pathlib import Path

import pytest
from support.imapd import PASSWORD, USER, imap_server

from broadsheet.core.compose.verp import ReturnPaths
from broadsheet.core.config import Config, Inbox, load_config
from broadsheet.core.errors import ConfigError
from broadsheet.data.journal.journal import Journal, Outcome
from broadsheet.data.store import Store
from broadsheet.faces.cli import main
from broadsheet.usecases.events.inbox import InboxError, Refused, read_inbox, read_report

DATA = Path(__file__).parent / "data" / "inbox"
UNSUBSCRIBE = "mailto:unsubscribe@news.example.org"
RECEIVER = "mx.news.example.org"  # the receiving server's authserv-id
FEEDBACK = "abuse@example-isp.com"  # arf.eml's sender, a feedback loop
TRUST = {"feedback_senders": [FEEDBACK], "authserv_id": RECEIVER}


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def received(raw: bytes, results: str = "", authserv_id: str = RECEIVER) -> bytes:
    """``raw`` as the receiving server stores it: its Authentication-Results on top (by default: the From's
    domain passed DKIM, SPF and DMARC)."""
    domain = email.message_from_bytes(raw)["From"].rpartition("@")[2].strip("> ")
    results = results or f"dkim=pass header.d={domain}; spf=pass smtp.mailfrom=bounce@{domain}; dmarc=pass"
    return f"Authentication-Results: {authserv_id};\r\n\t{results}\r\n".encode() + raw


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
    events = read_report(received(sample(name)), unsubscribe_address=UNSUBSCRIBE, **TRUST)
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


UNAUTHENTICATED = "no DMARC pass, nor DKIM or SPF pass aligned with the From domain"


@pytest.mark.parametrize(
    ("raw", "trust", "refused"),
    [
        (sample("unsubscribe.eml"), TRUST, "unsubscribe mail: no Authentication-Results"),
        (
            received(sample("unsubscribe.eml"), "dmarc=fail header.from=example.com"),
            TRUST,
            "unsubscribe mail: DMARC failed",
        ),
        (
            received(sample("unsubscribe.eml"), "dkim=pass header.d=example.com; dmarc=fail"),
            TRUST,
            "unsubscribe mail: DMARC failed",
        ),
        (
            received(sample("unsubscribe.eml"), authserv_id="mx.elsewhere.example"),
            TRUST,
            f"unsubscribe mail: the topmost Authentication-Results is not from {RECEIVER}",
        ),
        (  # the receiving server's header says none; one the sender wrote lower down says pass
            received(received(sample("unsubscribe.eml")), "dkim=none; spf=none; dmarc=none"),
            TRUST,
            f"unsubscribe mail: {UNAUTHENTICATED}",
        ),
        (
            received(
                sample("unsubscribe.eml"), "dkim=pass header.d=evil.example; spf=pass smtp.mailfrom=x@evil.example"
            ),
            TRUST,
            f"unsubscribe mail: {UNAUTHENTICATED}",
        ),
        (
            received(
                sample("unsubscribe.eml"), "dkim=pass header.d=notexample.com; dmarc=pass header.from=evil.example"
            ),
            TRUST,
            f"unsubscribe mail: {UNAUTHENTICATED}",
        ),
        (
            received(sample("unsubscribe.eml"), "spf=pass smtp.helo=example.com"),
            TRUST,
            f"unsubscribe mail: {UNAUTHENTICATED}",
        ),
        (
            received(sample("unsubscribe.eml"), "dkim=pass (" * 3000),
            TRUST,
            "unsubscribe mail: unreadable Authentication-Results",
        ),
        (
            received(sample("unsubscribe.eml")),
            {**TRUST, "authserv_id": ""},
            "unsubscribe mail: [inbox] authserv_id is not set (the name your receiving server gives in Authentication-Results)",
        ),
        (
            received(sample("arf.eml")),
            {**TRUST, "feedback_senders": []},
            "complaint report: [inbox] feedback_senders is empty (your providers' feedback-loop addresses)",
        ),
        (
            received(sample("arf.eml").replace(FEEDBACK.encode(), b"anyone@example-isp.com")),
            TRUST,
            "complaint report: its sender is not in [inbox] feedback_senders",
        ),
        (sample("arf.eml"), TRUST, "complaint report: no Authentication-Results"),
        (received(sample("arf.eml"), "dmarc=fail"), TRUST, "complaint report: DMARC failed"),
    ],
)
def test_forged_complaints_and_unsubscribes_are_refused(raw, trust, refused):
    assert read_report(raw, unsubscribe_address=UNSUBSCRIBE, **trust) == Refused(refused)


@pytest.mark.parametrize(
    "results",
    [
        "dmarc=pass header.from=example.com",
        "dkim=pass header.d=example.com",
        "dkim=pass header.i=@mail.example.com",  # aligned: a subdomain of the From's
        "spf=pass smtp.mailfrom=bounce@example.com",
        "spf=fail smtp.mailfrom=example.com; dkim=pass header.d=example.com; dmarc=pass",
        "iprev=pass policy.iprev=192.0.2.1; dkim=fail header.d=other.example; dmarc=pass header.from=EXAMPLE.COM",
    ],
)
def test_an_unsubscribe_whose_from_the_receiving_server_authenticated_is_applied(results):
    raw = received(sample("unsubscribe.eml"), results)
    [event] = read_report(raw, unsubscribe_address=UNSUBSCRIBE, **TRUST)
    assert (event.kind, event.email) == ("unsubscribe", "hal@example.com")


@pytest.fixture(scope="module")
def imap_host(tmp_path_factory):
    """One pymap server for the module (its start is most of a test's time); (server, its folders new)."""
    with imap_server(tmp_path_factory.mktemp("imap")) as server:
        yield server, server.folders()


@pytest.fixture
def imap(imap_host):
    """The module's IMAP server, emptied back to the folders it started with."""
    server, new = imap_host
    assert server.empty() == new
    return server


def inbox_config(root: Path, server, **changes) -> Config:
    settings = Inbox(
        host=server.host, port=server.port, security="starttls", username=USER, ca_file=server.ca_file, timeout=5
    )
    return Config(root=root, unsubscribe_mailto=UNSUBSCRIBE, inbox=replace(settings, **{**TRUST, **changes}))


def test_inbox_applies_reports_moves_them_and_leaves_the_rest(tmp_path, imap, monkeypatch):
    monkeypatch.setenv("BROADSHEET_INBOX_PASSWORD", PASSWORD)
    with Journal.for_project(tmp_path) as journal:
        campaign, _ = journal.start_campaign("2026-12-issue", "smtp", "issues/x", "")
        journal.load_recipients(campaign, "fp", [("ann@example.com", 2, "{}")])
        [row] = journal.claim(campaign, 1, time.time())
        journal.record([Outcome(row.id, "sent", message_id="<issue-1.ann@news.example.org>")])
    names = sorted(p.name for p in DATA.glob("*.eml"))
    imap.append(*(received(sample(n)) for n in names))
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

        imap.append(received(sample("postfix.eml")))  # the same report delivered again
        before = len(store.events("ann@example.com"))
        again = read_inbox(inbox_config(tmp_path, imap), store)
        assert (again.processed, again.unrecognised) == (1, 1) and again.applied.suppressed == []
        assert len(store.events("ann@example.com")) == before


def test_with_verp_only_genuine_reports_change_the_store_the_forged_are_counted_and_left(
    tmp_path, imap, monkeypatch, capsys
):
    monkeypatch.setenv("BROADSHEET_INBOX_PASSWORD", PASSWORD)
    monkeypatch.setenv("BROADSHEET_SECRET", "inbox-test-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    (tmp_path / "broadsheet.toml").write_text(
        f'list_id = "weekly.news.example.org"\nunsubscribe_mailto = "{UNSUBSCRIBE}"\n'
        '[smtp]\nreturn_path = "bounces+{token}@news.example.org"\n'
        f'[inbox]\nhost = "127.0.0.1"\nport = {imap.port}\nsecurity = "starttls"\nusername = "{USER}"\n'
        f'ca_file = "{imap.ca_file}"\nfeedback_senders = ["{FEEDBACK.upper()}"]\nauthserv_id = "{RECEIVER}"\n'
    )
    config = load_config(tmp_path / "broadsheet.toml")
    people = ["ann@example.com", "bob@example.com", "gus@example-isp.com", "hal@example.com", "ivy@example.com"]
    with Journal.for_project(tmp_path) as journal:
        campaign, _ = journal.start_campaign("2026-12-issue", "smtp", "issues/x", "")
        journal.load_recipients(campaign, "fp", [(p, i + 2, "{}") for i, p in enumerate(people[:2])])
        rows = {row.email: row.id for row in journal.claim(campaign, 2, time.time())}
    paths = ReturnPaths(config, config.from_address, token_secret="inbox-test-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    ann_path, bob_path = (paths.for_recipient(p, rows[p]) for p in people[:2])
    token = bob_path.removeprefix("bounces+").removesuffix("@news.example.org")
    tampered = "bounces+" + token[:-1] + ("a" if token[-1] != "a" else "b") + "@news.example.org"

    def bounce_to(address: str, names: str, number: int) -> bytes:
        return (
            sample("postfix.eml")
            .replace(b"Delivered-To: bounces@news.example.org", f"Delivered-To: {address}".encode())
            .replace(b"ann@example.com", names.encode())
            .replace(b"Message-ID: <", f"Message-ID: <{number}.".encode(), 1)
        )

    genuine = [
        bounce_to(ann_path, "forwarded@elsewhere.example", 1),  # the token names ann, whatever the report says
        received(sample("arf.eml")),  # gus, by the listed feedback loop, authenticated
        received(sample("unsubscribe.eml")),  # hal, DKIM/SPF/DMARC pass at our server
    ]
    forged = [
        bounce_to(tampered, "bob@example.com", 2),
        bounce_to("bounces@news.example.org", "bob@example.com", 3),  # no token at all
        received(sample("exim.eml").replace(b"bob@example.net", b"bob@example.com")),  # another shape, no token
        received(sample("arf.eml").replace(FEEDBACK.encode(), b"someone@example-isp.com")),
        sample("arf.eml"),  # the listed sender, but nothing shows it was them
        received(sample("unsubscribe.eml"), "dkim=pass header.d=example.com; dmarc=fail"),
        received(received(sample("unsubscribe.eml").replace(b"hal@", b"ivy@")), "dmarc=fail", RECEIVER),
    ]
    imap.append(*genuine, *forged)
    with Store.for_project(tmp_path) as store:
        for person in people:
            store.add(person)
    monkeypatch.chdir(tmp_path)
    assert main(["inbox"]) == 0
    out = capsys.readouterr().out
    assert "read 10 message(s): 3 processed and moved to broadsheet-processed, 0 not recognised and 7 refused" in out
    for line in (
        "  refused 3: bounce: no valid return-path token",
        "  refused 1: complaint report: its sender is not in [inbox] feedback_senders",
        "  refused 1: complaint report: no Authentication-Results",
        "  refused 2: unsubscribe mail: DMARC failed",
    ):
        assert line in out.splitlines()
    with Store.for_project(tmp_path) as store:
        assert [store.get(p).status for p in people] == [
            "bounced",
            "subscribed",
            "complained",
            "unsubscribed",
            "subscribed",
        ]
        assert store.get("forwarded@elsewhere.example") is None
    assert (imap.count("INBOX"), imap.count("broadsheet-processed")) == (7, 3)
    assert main(["inbox"]) == 0  # the refused are read again, and refused again
    assert "read 7 message(s): 0 processed and moved to broadsheet-processed, 0 not recognised and 7 refused" in (
        capsys.readouterr().out
    )


def test_inbox_trust_keys_are_checked_with_the_line_and_the_fix(tmp_path):
    for line, words in (
        ('feedback_senders = ["fbl at isp"]', "feedback_senders must hold addresses"),
        ('feedback_senders = "fbl@isp.example"', "must be a list of strings"),
        ('authserv_id = "mx.example.org; dkim=pass"', "authserv_id must be a host name"),
    ):
        (tmp_path / "broadsheet.toml").write_text(f'[inbox]\nhost = "imap.example.org"\n{line}\n')
        with pytest.raises(ConfigError, match=words) as caught:
            load_config(tmp_path / "broadsheet.toml")
        assert caught.value.where.endswith("broadsheet.toml:3")


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
        f'feedback_senders = ["{FEEDBACK}"]\nauthserv_id = "{RECEIVER}"\n'
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BROADSHEET_INBOX_PASSWORD")
    assert main(["inbox"]) == 2
    assert "BROADSHEET_INBOX_PASSWORD" in capsys.readouterr().err
    monkeypatch.setenv("BROADSHEET_INBOX_PASSWORD", PASSWORD)
    imap.append(received(sample("arf.eml")))
    assert main(["inbox"]) == 0
    assert "1 processed" in capsys.readouterr().out


def test_implicit_tls_is_verified_too(tmp_path, imap, monkeypatch):
    monkeypatch.setenv("BROADSHEET_INBOX_PASSWORD", PASSWORD)
    imap.append(received(sample("arf.eml")), sample("reply.eml"))
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
