"""The events policy and webhooks.handle over a real subscriber store and a real send journal."""

from __future__ import annotations

import time

import pytest
from support.webhooks import MailgunSigner

from broadsheet.core.config import Bounces, Config
from broadsheet.data.journal.journal import Journal, Outcome
from broadsheet.data.store import Store
from broadsheet.delivery.webhooks.checks import ReplayGuard, WebhookContext
from broadsheet.usecases.events import MailEvent, apply
from broadsheet.usecases.events.webhooks import handle


@pytest.fixture
def store(store_location):
    """A store on each engine (SQLite, PostgreSQL): every test that takes it runs on both."""
    with Store(store_location) as opened:
        for email in ("ann@example.com", "bob@example.com", "cat@example.com"):
            opened.add(email)
        yield opened


def event(
    kind: str, email: str = "ann@example.com", key: str = "k1", at: str = "2026-12-01T10:00:00Z", **kw
) -> MailEvent:
    return MailEvent(kind=kind, email=email, provider="mailgun", at=at, dedupe_key=key, **kw)


def test_hard_bounce_complaint_and_unsubscribe_suppress_and_record_their_source(store):
    applied = apply(
        [
            event("hard_bounce", key="a", detail="550 5.1.1 no such user"),
            event("complaint", "bob@example.com", key="b"),
            event("unsubscribe", "CAT@example.com", key="c"),
        ],
        store,
        Bounces(),
        source="webhook",
    )
    assert [store.get(e).status for e in ("ann@example.com", "bob@example.com", "cat@example.com")] == [
        "bounced",
        "complained",
        "unsubscribed",
    ]
    assert sorted(applied.suppressed) == ["CAT@example.com", "ann@example.com", "bob@example.com"]
    last = store.events("ann@example.com")[-1]
    assert (last.kind, last.source, last.detail, last.dedupe_key) == (
        "bounced_hard",
        "webhook:mailgun",
        "550 5.1.1 no such user",
        "a",
    )
    assert store.suppressed(["ann@example.com", "bob@example.com", "cat@example.com"]) == {
        "ann@example.com",
        "bob@example.com",
        "cat@example.com",
    }


def test_a_replayed_event_changes_nothing(store):
    apply([event("unsubscribe", key="u")], store, Bounces(), source="webhook")
    store.set_status("ann@example.com", "subscribed", source="cli", resubscribe=True)  # the person came back
    again = apply([event("unsubscribe", key="u")], store, Bounces(), source="webhook")
    assert store.get("ann@example.com").status == "subscribed" and again.suppressed == []
    assert [e.kind for e in store.events("ann@example.com")].count("unsubscribed") == 1


def test_the_strongest_status_stays_and_only_a_new_suppression_is_counted(store):
    first = apply([event("hard_bounce", key="h1")], store, Bounces(), source="webhook")
    assert first.summary() == "1 hard bounce; 1 newly suppressed"
    for kind, key in (("complaint", "c1"), ("hard_bounce", "h2"), ("unsubscribe", "u1")):
        later = apply([event(kind, key=key)], store, Bounces(), source="webhook")
        assert later.suppressed == [] and "; 0 newly suppressed" in later.summary()
        assert store.get("ann@example.com").status == "complained"
    both = apply([event("hard_bounce", "bob@example.com", key="b1"), event("complaint", "bob@example.com", key="b2")],
                 store, Bounces(), source="sync")  # fmt: skip
    assert both.suppressed == ["bob@example.com"] and store.get("bob@example.com").status == "complained"


def test_soft_bounces_count_as_hard_at_the_limit_within_the_window(store):
    policy = Bounces(soft_limit=3, window_days=30)
    apply([event("soft_bounce", key="old", at="2026-09-01T10:00:00Z")], store, policy, source="sync")  # outside
    apply(
        [event("soft_bounce", key=f"s{n}", at=f"2026-12-0{n}T10:00:00Z") for n in (1, 2)], store, policy, source="sync"
    )
    apply([event("soft_bounce", key="s2", at="2026-12-02T10:00:00Z")], store, policy, source="sync")  # replay
    assert store.get("ann@example.com").status == "subscribed"
    applied = apply([event("soft_bounce", key="s3", at="2026-12-03T10:00:00Z")], store, policy, source="sync")
    assert store.get("ann@example.com").status == "bounced" and applied.suppressed == ["ann@example.com"]
    assert "3 soft bounces within 30 days" in store.events("ann@example.com")[-1].detail
    apply(
        [event("soft_bounce", "bob@example.com", key=f"b{n}", at=f"2026-12-0{n}T10:00:00Z") for n in (1, 2, 3)],
        store,
        Bounces(soft_limit=0),
        source="sync",
    )
    assert store.get("bob@example.com").status == "subscribed"  # soft_limit 0: never


def test_an_unknown_address_that_bounces_is_suppressed_and_a_bad_one_skipped(store):
    applied = apply(
        [
            event("hard_bounce", "new@example.com", key="n"),
            event("complaint", "not an address\r\nX: y", key="x"),
            event("delivered", "nobody@example.com", key="d"),
        ],
        store,
        Bounces(),
        source="inbox",
    )
    assert store.get("new@example.com").status == "bounced" and applied.invalid == 1
    assert store.get("nobody@example.com") is None
    assert store.events("new@example.com")[-1].source == "inbox"


def test_events_are_matched_to_their_campaign_through_the_journal(tmp_path, store):
    with Journal.for_project(tmp_path) as journal:
        campaign, _ = journal.start_campaign("2026-12-issue", "mailgun", "issues/x", "")
        journal.load_recipients(campaign, "fp", [("ann@example.com", 2, "{}"), ("bob@example.com", 3, "{}")])
        rows = journal.claim(campaign, 2, time.time())
        journal.record([Outcome(r.id, "sent", message_id=f"<20261201.{r.email[0]}@mg.example.org>") for r in rows])
    signer = MailgunSigner()
    body = signer.body(
        {
            "event": "failed",
            "severity": "permanent",
            "id": "ev-1",
            "recipient": "ann@example.com",
            "timestamp": time.time(),
            "message": {"headers": {"message-id": "20261201.a@mg.example.org"}},
        }
    )
    context = WebhookContext(env={"BROADSHEET_MAILGUN_WEBHOOK_KEY": signer.key}, replays=ReplayGuard())
    status, answer = handle("mailgun", {}, body, store, config=Config(root=tmp_path), context=context)
    assert (status, answer) == (200, "1 hard bounce; 1 newly suppressed")
    last = store.events("ann@example.com")[-1]
    assert (last.kind, last.campaign, last.source) == ("bounced_hard", "2026-12-issue", "webhook:mailgun")


def test_the_campaign_look_up_reads_the_message_id_index_not_the_whole_journal(tmp_path):
    with Journal.for_project(tmp_path) as journal:
        campaign, _ = journal.start_campaign("2026-12-issue", "mailgun", "issues/x", "")
        journal.load_recipients(campaign, "fp", [("ann@example.com", 2, "{}")])
        [row] = journal.claim(campaign, 1, time.time())
        journal.record([Outcome(row.id, "sent", message_id="<m1@mg.example.org>")])
        statements: list[str] = []
        journal.db.set_trace_callback(statements.append)
        assert journal.campaign_of(["m1@mg.example.org", ""], "ann@example.com") == "2026-12-issue"
        journal.db.set_trace_callback(None)
        [select] = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        plan = " ".join(str(step[-1]) for step in journal.db.execute(f"EXPLAIN QUERY PLAN {select}"))
        assert "USING INDEX recipients_by_message_id" in plan and "SCAN r" not in plan


def test_handle_refuses_bad_signatures_without_recording_and_answers_plain_statuses(tmp_path, store, monkeypatch):
    signer = MailgunSigner()
    monkeypatch.setenv("BROADSHEET_MAILGUN_WEBHOOK_KEY", signer.key)
    monkeypatch.delenv("BROADSHEET_POSTMARK_WEBHOOK_USER", raising=False)
    data = {"event": "complained", "id": "ev-2", "recipient": "bob@example.com", "timestamp": time.time()}
    before = len(store.events("bob@example.com"))
    forged = MailgunSigner().body(data)
    assert handle("mailgun", {}, forged, store) == (401, "refused")
    assert len(store.events("bob@example.com")) == before and store.get("bob@example.com").status == "subscribed"
    assert handle("nosuch", {}, b"{}", store)[0] == 404
    assert (
        handle("postmark", {}, b"{}", store)[0] == 503
    )  # credentials not configured: nothing verified, nothing recorded
    assert handle("mailgun", {}, b"x" * (6 * 1024 * 1024), store)[0] == 413
    good = signer.body(data)
    assert handle("mailgun", {}, good, store)[0] == 200  # config found from the store's project folder
    assert store.get("bob@example.com").status == "complained"
    assert handle("mailgun", {}, good, store) == (401, "refused")  # the same signed request again
