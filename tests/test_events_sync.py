"""broadsheet sync against local fakes that page the way each provider documents, over a real store."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from support.providers import ACCESS_KEY, ENV, REGION, SECRET, make_config, sigv4_problem
from werkzeug import Request, Response

from broadsheet.core.errors import ConfigError, TransportAuthError
from broadsheet.data.store import Store
from broadsheet.delivery.sync import reader
from broadsheet.faces.cli import main
from broadsheet.usecases.events.sync import sync


@pytest.fixture
def store(store_location):
    """A store on each engine (SQLite, PostgreSQL): every test that takes it runs on both."""
    with Store(store_location) as opened:
        opened.add("keep@example.com")
        opened.add("bounced-0@example.com")
        yield opened


def env(monkeypatch, provider: str) -> None:
    for name, value in ENV[provider].items():
        monkeypatch.setenv(name, value)


def answer(data, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(data), status, headers=headers, content_type="application/json")


def statuses(store: Store) -> dict[str, int]:
    return {status: store.count(status) for status in ("subscribed", "bounced", "complained", "unsubscribed")}


def test_sendgrid_pages_by_offset_waits_on_429_and_a_second_sync_changes_nothing(httpserver, store, monkeypatch):
    env(monkeypatch, "sendgrid")
    lists = {
        "bounces": [
            {"created": 1764583200 + i, "email": f"bounced-{i}@example.com", "reason": "550 unknown", "status": "5.1.1"}
            for i in range(1203)
        ],
        "spam_reports": [{"created": 1764583200, "email": "spam@example.com", "ip": "10.0.0.1"}],
        "unsubscribes": [{"created": 1764583200, "email": "gone@example.com"}],
    }
    seen, throttled = [], []

    def handler(request: Request) -> Response:
        assert request.headers["Authorization"] == f"Bearer {SECRET}"
        name = request.path.rsplit("/", 1)[-1]
        limit, offset = int(request.args["limit"]), int(request.args["offset"])
        assert 1 <= limit <= 500, "SendGrid: limit is at most 500"
        if name == "bounces" and offset == 500 and not throttled:
            throttled.append(1)
            return answer({"errors": [{"message": "too many requests"}]}, 429, {"Retry-After": "0"})
        seen.append((name, offset, request.args.get("start_time")))
        return answer(lists[name][offset : offset + limit])

    httpserver.expect_request("/v3/suppression/bounces", method="GET").respond_with_handler(handler)
    httpserver.expect_request("/v3/suppression/spam_reports", method="GET").respond_with_handler(handler)
    httpserver.expect_request("/v3/suppression/unsubscribes", method="GET").respond_with_handler(handler)
    config = make_config("sendgrid", httpserver.url_for("/"))
    waits: list[float] = []
    result = sync(config, store, "sendgrid", datetime(2026, 11, 1, tzinfo=UTC), sleep=waits.append)
    assert [s[:2] for s in seen] == [
        ("bounces", 0),
        ("bounces", 500),
        ("bounces", 1000),
        ("spam_reports", 0),
        ("unsubscribes", 0),
    ]
    assert {s[2] for s in seen} == {str(int(datetime(2026, 11, 1, tzinfo=UTC).timestamp()))}
    assert waits == [0.0] and result.requests == 6
    assert statuses(store) == {"subscribed": 1, "bounced": 1203, "complained": 1, "unsubscribed": 1}
    assert store.events("bounced-7@example.com")[-1].source == "sync:sendgrid"
    assert "5.1.1 550 unknown" in store.events("bounced-7@example.com")[-1].detail
    events_before = sum(len(store.events(e)) for e in ("bounced-0@example.com", "spam@example.com"))
    again = sync(config, store, "sendgrid", datetime(2026, 11, 1, tzinfo=UTC), sleep=waits.append)
    assert again.applied.suppressed == []
    assert sum(len(store.events(e)) for e in ("bounced-0@example.com", "spam@example.com")) == events_before


def test_mailgun_follows_paging_next_until_an_empty_page(httpserver, store, monkeypatch):
    env(monkeypatch, "mailgun")
    base = httpserver.url_for("/")
    items = {
        "bounces": [
            {
                "address": f"b{i}@example.com",
                "code": "550",
                "error": "No such mailbox",
                "created_at": "Tue, 01 Dec 2026 10:00:00 UTC",
            }
            for i in range(3)
        ],
        "complaints": [
            {"address": "c@example.com", "created_at": "Tue, 01 Dec 2026 10:00:00 UTC"},
            {"address": "old@example.com", "created_at": "Mon, 01 Jan 2024 10:00:00 UTC"},
        ],
        "unsubscribes": [],
    }
    pages = []

    def handler(request: Request) -> Response:
        expected = "Basic " + base64.b64encode(f"api:{SECRET}".encode()).decode()
        assert request.headers["Authorization"] == expected
        name = request.path.rsplit("/", 1)[-1]
        start = int(request.args.get("p", 0))
        limit = int(request.args.get("limit", 2))
        pages.append((name, start))
        chunk = items[name][start : start + 2]  # pages of two, whatever is asked, to exercise paging
        assert limit <= 1000
        nxt = f"{base.rstrip('/')}/v3/mg.example.org/{name}?page=next&p={start + 2}&limit={limit}"
        return answer({"items": chunk, "paging": {"first": "x", "next": nxt, "previous": "y", "last": "z"}})

    for name in items:
        httpserver.expect_request(f"/v3/mg.example.org/{name}", method="GET").respond_with_handler(handler)
    result = sync(make_config("mailgun", base), store, "mailgun", datetime(2026, 1, 1, tzinfo=UTC))
    assert pages == [
        ("bounces", 0),
        ("bounces", 2),
        ("bounces", 4),
        ("complaints", 0),
        ("complaints", 2),
        ("unsubscribes", 0),
    ]
    assert sorted(result.applied.suppressed) == ["b0@example.com", "b1@example.com", "b2@example.com", "c@example.com"]
    assert store.get("old@example.com") is None  # before --since


def test_mailgun_paging_link_to_another_host_is_not_followed(httpserver, store, monkeypatch):
    env(monkeypatch, "mailgun")
    httpserver.expect_request("/v3/mg.example.org/bounces").respond_with_json(
        {
            "items": [{"address": "x@example.com", "created_at": ""}],
            "paging": {"next": "https://evil.example.com/steal"},
        }
    )
    with pytest.raises(Exception, match="another host"):
        sync(make_config("mailgun", httpserver.url_for("/")), store, "mailgun", None)


def test_mailgun_paging_link_that_repeats_stops_at_the_repeat_and_says_so(httpserver, tmp_path, monkeypatch, capsys):
    env(monkeypatch, "mailgun")
    base = httpserver.url_for("/").rstrip("/")
    for name in ("bounces", "complaints", "unsubscribes"):
        httpserver.expect_request(f"/v3/mg.example.org/{name}").respond_with_json(
            {
                "items": [{"address": f"{name}@example.com", "created_at": "Tue, 01 Dec 2026 10:00:00 UTC"}],
                "paging": {"next": f"{base}/v3/mg.example.org/{name}?page=next&p=same"},  # the same link, for ever
            }
        )
    (tmp_path / "broadsheet.toml").write_text(f'[mailgun]\nbase_url = "{base}"\ndomain = "mg.example.org"\n')
    monkeypatch.chdir(tmp_path)
    assert main(["sync", "--transport", "mailgun"]) == 0
    captured = capsys.readouterr()
    assert "(6 request(s))" in captured.out  # each list: its first page, the linked page, then the repeat is seen
    assert "Mailgun's bounces list links to a page already read; stopped there" in captured.err
    with Store.for_project(tmp_path) as opened:
        assert opened.get("complaints@example.com").status == "complained"


def test_a_provider_that_pages_for_ever_stops_at_the_page_bound(httpserver, store, monkeypatch):
    env(monkeypatch, "ses")
    monkeypatch.setattr(reader, "MAX_PAGES", 5)
    tokens = iter(range(1_000_000))
    httpserver.expect_request("/v2/email/suppression/addresses").respond_with_handler(
        lambda request: answer({"SuppressedDestinationSummaries": [], "NextToken": f"t{next(tokens)}"})
    )
    result = sync(make_config("ses", httpserver.url_for("/")), store, "ses", None)
    assert result.requests == 5 and result.notes == [
        "stopped after 5 pages, the most one run reads; the lists were not read to the end"
    ]


def test_postmark_suppression_dump_and_ses_next_token(httpserver, store, monkeypatch):
    env(monkeypatch, "postmark")
    env(monkeypatch, "ses")
    httpserver.expect_request(
        "/message-streams/broadcast/suppressions/dump",
        method="GET",
        headers={"X-Postmark-Server-Token": SECRET, "Accept": "application/json"},
    ).respond_with_json(
        {
            "Suppressions": [
                {
                    "EmailAddress": "pm-hard@example.com",
                    "SuppressionReason": "HardBounce",
                    "Origin": "Recipient",
                    "CreatedAt": "2026-12-01T10:00:00-05:00",
                },
                {
                    "EmailAddress": "pm-spam@example.com",
                    "SuppressionReason": "SpamComplaint",
                    "Origin": "Recipient",
                    "CreatedAt": "2026-12-01T10:00:00-05:00",
                },
                {
                    "EmailAddress": "keep@example.com",
                    "SuppressionReason": "ManualSuppression",
                    "Origin": "Customer",
                    "CreatedAt": "2026-12-01T10:00:00-05:00",
                },
            ]
        }
    )
    postmark = sync(make_config("postmark", httpserver.url_for("/")), store, "postmark", None)
    assert sorted(postmark.applied.suppressed) == ["keep@example.com", "pm-hard@example.com", "pm-spam@example.com"]
    assert store.get("keep@example.com").status == "unsubscribed"

    tokens = []

    def ses_handler(request: Request) -> Response:
        problem = sigv4_problem(request, ACCESS_KEY, SECRET, REGION, "ses")
        assert problem is None, problem
        token = request.args.get("NextToken", "")
        tokens.append(token)
        pages = {
            "": ([("ses-b@example.com", "BOUNCE")], "page2"),
            "page2": ([("ses-c@example.com", "COMPLAINT")], None),
        }
        entries, nxt = pages[token]
        body = {
            "SuppressedDestinationSummaries": [
                {"EmailAddress": e, "Reason": r, "LastUpdateTime": 1764583200} for e, r in entries
            ]
        }
        if nxt:
            body["NextToken"] = nxt
        return answer(body)

    httpserver.expect_request("/v2/email/suppression/addresses", method="GET").respond_with_handler(ses_handler)
    ses = sync(make_config("ses", httpserver.url_for("/")), store, "ses", datetime(2026, 1, 1, tzinfo=UTC))
    assert tokens == ["", "page2"] and sorted(ses.applied.suppressed) == ["ses-b@example.com", "ses-c@example.com"]
    assert store.get("ses-c@example.com").status == "complained"


def test_refused_credentials_stop_with_the_secret_kept_out(httpserver, store, monkeypatch):
    env(monkeypatch, "sendgrid")
    httpserver.expect_request("/v3/suppression/bounces").respond_with_json(
        {"errors": [{"message": f"bad key {SECRET}"}]}, status=401
    )
    with pytest.raises(TransportAuthError) as caught:
        sync(make_config("sendgrid", httpserver.url_for("/")), store, "sendgrid", None)
    assert SECRET not in str(caught.value)


def test_resend_and_smtp_have_nothing_to_sync(store):
    from broadsheet.core.config import Config

    for name in ("resend", "smtp"):
        with pytest.raises(ConfigError, match="cannot sync"):
            sync(Config(), store, name, None)


def test_the_command_prints_what_it_did_and_errors_are_one_line(httpserver, tmp_path, monkeypatch, capsys):
    env(monkeypatch, "sendgrid")
    (tmp_path / "broadsheet.toml").write_text(f'[sendgrid]\nbase_url = "{httpserver.url_for("/").rstrip("/")}"\n')
    for name in ("bounces", "spam_reports", "unsubscribes"):
        httpserver.expect_request(f"/v3/suppression/{name}").respond_with_json(
            [{"created": 1764583200, "email": f"{name}@example.com"}] if name == "bounces" else []
        )
    monkeypatch.chdir(tmp_path)
    assert main(["sync", "--transport", "sendgrid", "--since", "2026-11-01"]) == 0
    out = capsys.readouterr().out
    assert "sendgrid: 1 hard bounce; 1 newly suppressed" in out and "bounces@example.com" in out
    assert main(["sync", "--transport", "resend"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["sync", "--since", "yesterday"]) == 2
    assert capsys.readouterr().err.count("\n") == 1  # one line, no usage block
