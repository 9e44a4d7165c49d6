"""Counted clicks: the rewrite of an issue's links, the signed redirect of a real serve, scanners, status."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
import requests
from support.serve import SECRET, serve_process
from support.smtpd import configure, write_subscribers
from test_cli_build import run_cli
from test_send_cli import sample  # noqa: F401 - the fixture

from broadsheet.core.compose.clicks import count_links
from broadsheet.core.config import Tracking, load_config
from broadsheet.core.errors import ConfigError
from broadsheet.core.render import build_issue
from broadsheet.core.tokens import ClickLink, make_click_token, make_token, read_click_token
from broadsheet.data.store import Store
from broadsheet.data.store.clicks import Click, clicks_per_campaign, clicks_per_link, record_clicks
from broadsheet.faces.serve.clicks import BURST_SECONDS, HOLD_SECONDS, ClickRecorder, Seen, known_scanner, mark_bursts
from broadsheet.usecases.send import SendOptions, send_issue

ISSUE = "issues/2021-06-01-chengdu-flemish-brabant"
SLUG = "2021-06-01-chengdu-flemish-brabant"
LIST = "newsletter.bcecc.example.org"
LINKS = (
    "https://smarthub.example.org/international",
    "https://www.example.org/bcecc",
    "https://www.example.org/bcecc/events",
)
TOKEN = re.compile(r"/r/([A-Za-z0-9_-]+)")


def counted_config(project: Path, **tracking: bool):
    config = load_config(project / "broadsheet.toml")
    return dataclasses.replace(config, tracking=Tracking(clicks=True, **tracking))


def tokens_in(text: str) -> list[str]:
    return TOKEN.findall(text)


# -- tokens ------------------------------------------------------------------------------------------


def test_a_click_token_seals_campaign_link_and_address_and_refuses_any_change():
    token = make_click_token(ClickLink("spring", 2, "https://example.org/a?b=1&c=ü"), LIST, SECRET)
    assert read_click_token(token, LIST, (SECRET,)) == ClickLink("spring", 2, "https://example.org/a?b=1&c=ü")
    assert "example" not in token  # sealed, not shown
    flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    assert read_click_token(flipped, LIST, (SECRET,)) is None
    assert read_click_token(token, "other.list.example.org", (SECRET,)) is None
    assert read_click_token(token, LIST, ("another-secret-Zq8XvN3kT7wR2mJ5pL9cH4b",)) is None
    assert read_click_token(make_token("unsubscribe", "a@example.org", LIST, SECRET), LIST, (SECRET,)) is None


# -- the rewrite -------------------------------------------------------------------------------------


def test_each_link_is_rewritten_once_per_issue_but_unsubscribe_mailto_and_view_online_are_not(sample):
    config = counted_config(sample)
    rendered = build_issue(sample / ISSUE, config)
    tracked = count_links(rendered, config, secret=SECRET, campaign=SLUG)
    html, text = tracked.issue.html, tracked.issue.text
    assert tracked.urls == LINKS
    for url in LINKS:
        assert f'href="{url}"' not in html and url not in text
    assert 'href="{{ unsubscribe_url }}"' in html and 'href="{{ view_online_url }}"' in html
    assert 'href="mailto:info@example.org"' in html
    assert tracked.issue.web_html == rendered.web_html  # the browser version is not counted
    links = {read_click_token(token, LIST, (SECRET,)) for token in tokens_in(html) + tokens_in(text)}
    assert links == {ClickLink(SLUG, number, url) for number, url in enumerate(LINKS)}  # HTML and text: one link each
    assert "https://newsletter.example.org/r/" in html and "https://newsletter.example.org/r/" in text
    assert "{{ clicks" not in html  # the default path: nothing left to fill per recipient


@pytest.mark.parametrize("per_subscriber", [False, True])
def test_a_link_too_long_to_seal_is_left_as_it_is_and_numbers_stay_dense(sample, per_subscriber):
    config = counted_config(sample, per_subscriber=per_subscriber)
    rendered = build_issue(sample / ISSUE, config)
    long = "https://example.org/" + "a" * 600
    html = rendered.html.replace(f'href="{LINKS[0]}"', f'href="{long}"')
    tracked = count_links(dataclasses.replace(rendered, html=html), config, secret=SECRET, campaign=SLUG)
    assert f'href="{long}"' in tracked.issue.html
    assert long not in tracked.urls and tracked.urls[0] == LINKS[1]


def test_clicks_need_serve_and_per_subscriber_needs_clicks(tmp_path):
    config = tmp_path / "broadsheet.toml"
    config.write_text('name = "N"\n\n[tracking]\nclicks = true\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="public_url") as error:
        load_config(config)
    assert error.value.where == f"{config}:4"
    config.write_text('name = "N"\n\n[tracking]\nper_subscriber = true\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="needs clicks = true"):
        load_config(config)


def outbox_send(project: Path, people: int, tracking: str) -> list[email.message.EmailMessage]:
    write_subscribers(project / "list.csv", people)
    configure(project, send={"transport": "outbox", "list": "list.csv"})
    path = project / "broadsheet.toml"
    path.write_text(path.read_text(encoding="utf-8") + f"\n[tracking]\n{tracking}\n", encoding="utf-8")
    config = load_config(path)
    from support.reporting import Recorder

    result = send_issue(SendOptions(issue_dir=project / ISSUE, yes=True), config, Recorder())
    assert result.counts["sent"] == people
    parser = email.parser.BytesParser(policy=email.policy.default)
    return [parser.parsebytes(file.read_bytes()) for file in sorted((project / "outbox").rglob("*.eml"))]


def parts(message: email.message.EmailMessage) -> tuple[str, str]:
    html = message.get_body(("html",)).get_content()
    return html, message.get_body(("plain",)).get_content()


def test_a_campaign_sends_every_reader_the_same_counted_links(sample):
    messages = outbox_send(sample, 3, "clicks = true")
    seen = [sorted(set(tokens_in(parts(message)[0]))) for message in messages]
    assert len(seen[0]) == 3 and seen[0] == seen[1] == seen[2]  # made once, naming nobody
    links = [
        read_click_token(token, LIST, ("unsubscribe-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0",)) for token in seen[0]
    ]
    assert {link.email for link in links if link} == {""} and len([link for link in links if link]) == 3


def test_per_subscriber_links_name_each_reader(sample):
    messages = outbox_send(sample, 2, "clicks = true\nper_subscriber = true")
    secret = ("unsubscribe-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0",)
    for message in messages:
        html, text = parts(message)
        readers = {read_click_token(token, LIST, secret).email for token in tokens_in(html) + tokens_in(text)}
        assert readers == {message["To"].addresses[0].addr_spec}
    assert set(tokens_in(parts(messages[0])[0])).isdisjoint(tokens_in(parts(messages[1])[0]))


# -- scanners and the buffer -------------------------------------------------------------------------


def seen(when: float, link: int, client: str = "192.0.2.1", campaign: str = "c") -> Seen:
    return Seen(when, client, Click(campaign, link, f"https://example.org/{link}", "2026-01-01T00:00:00Z"), False)


def test_three_links_of_one_campaign_from_one_client_within_two_seconds_are_a_scanner():
    burst = [seen(0.0, 0), seen(0.3, 1), seen(0.6, 2)]
    reader = [seen(0.0, 0, "198.51.100.7"), seen(5.0, 1, "198.51.100.7"), seen(30.0, 2, "198.51.100.7")]
    again = [seen(10.0, 0, "203.0.113.9"), seen(10.1, 0, "203.0.113.9"), seen(10.2, 0, "203.0.113.9")]
    other = [seen(0.0, 0, "192.0.2.50", "a"), seen(0.1, 1, "192.0.2.50", "b"), seen(0.2, 2, "192.0.2.50", "c")]
    late = [seen(0.0, 0, "192.0.2.77"), seen(0.1, 1, "192.0.2.77"), seen(BURST_SECONDS + 0.5, 2, "192.0.2.77")]
    mark_bursts(sorted([*burst, *reader, *again, *other, *late], key=lambda item: item.when))
    assert [item.scanner for item in burst] == [True, True, True]
    assert not any(item.scanner for item in (*reader, *again, *other, *late))


def test_known_scanner_agents_and_head_requests():
    assert known_scanner("Mozilla/5.0 (compatible; Barracuda Sentinel)", "GET")
    assert known_scanner("", "GET") and known_scanner("python-requests/2.32", "GET")
    assert known_scanner("Mozilla/5.0 (Macintosh) Safari/605.1.15", "HEAD")
    assert not known_scanner("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) Safari/605.1.15", "GET")


def test_the_recorder_holds_clicks_until_their_burst_is_whole_then_writes_them_in_one_batch(store_location):
    now = [100.0]
    store = Store(store_location)
    recorder = ClickRecorder(lambda: store, clock=lambda: now[0])
    browser = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
    for number in range(3):
        recorder.record(ClickLink("c", number, f"https://example.org/{number}"), "192.0.2.1", browser, "GET")
    recorder.record(ClickLink("c", 0, "https://example.org/0"), "198.51.100.7", browser, "GET")
    assert recorder.flush() == 0  # too fresh: a burst may still grow
    now[0] += HOLD_SECONDS
    assert recorder.flush() == 4 and recorder.flush() == 0
    assert (clicks_per_campaign(store)["c"].total, clicks_per_campaign(store)["c"].scanner) == (4, 3)
    first = clicks_per_link(store, "c")[0]
    assert (first.url, first.total, first.scanner, first.unique) == ("https://example.org/0", 2, 1, None)
    store.close()


def test_unique_readers_per_link_only_when_clicks_name_them(store_location):
    with Store(store_location) as store:
        store.add("ann@example.org", status="subscribed")
        record_clicks(store, [
            Click("c", 0, "https://example.org/0", "2026-01-01T00:00:00Z", email="ann@example.org"),
            Click("c", 0, "https://example.org/0", "2026-01-01T00:00:09Z", email="ann@example.org"),
            Click("c", 0, "https://example.org/0", "2026-01-01T00:00:09Z", scanner=True, email="bob@example.org"),
        ])  # fmt: skip
        [link] = clicks_per_link(store, "c")
        assert (link.total, link.scanner, link.unique) == (3, 1, 1)
        store.forget("ann@example.org")
        assert store.db.execute("SELECT count(*) FROM clicks WHERE subscriber IS NOT NULL").fetchone()[0] == 0


def test_a_store_written_by_older_code_gets_the_clicks_table(tmp_path):
    path = tmp_path / "audience.db"
    shutil.copy(Path(__file__).parent / "data" / "store-v2.db", path)
    with Store(path) as store:
        record_clicks(store, [Click("c", 0, "https://example.org/0", "2026-01-01T00:00:00Z")])
        assert clicks_per_campaign(store)["c"].total == 1


# -- serve over HTTP, then status --------------------------------------------------------------------


@pytest.mark.slow
def test_serve_redirects_only_to_sealed_addresses_counts_and_status_lists_clicks(sample):
    messages = outbox_send(sample, 2, "clicks = true")
    html, _ = parts(messages[0])
    own = "unsubscribe-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0"
    tokens = {read_click_token(token, LIST, (own,)).url: token for token in tokens_in(html)}
    from support.serve import environment

    with serve_process(sample, env=environment(BROADSHEET_SECRET=own)) as base:
        browser = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"}
        answer = requests.get(f"{base}/r/{tokens[LINKS[1]]}", headers=browser, allow_redirects=False, timeout=10)
        assert answer.status_code == 302 and answer.headers["Location"] == LINKS[1]
        again = requests.get(f"{base}/r/{tokens[LINKS[1]]}?url=https://evil.example", headers=browser,
                             allow_redirects=False, timeout=10)  # fmt: skip
        assert again.status_code == 302 and again.headers["Location"] == LINKS[1]  # never the query's
        token = tokens[LINKS[0]]
        tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
        forged = make_click_token(
            ClickLink(SLUG, 0, "https://evil.example/"), LIST, "forged-secret-Zq8XvN3kT7wR2mJ5pL9cH"
        )
        for path in (f"/r/{tampered}", f"/r/{forged}", "/r/https://evil.example", "/r//evil.example", "/r/"):
            refused = requests.get(base + path, headers=browser, allow_redirects=False, timeout=10)
            assert refused.status_code == 404 and "Location" not in refused.headers, path
        scanner = requests.get(f"{base}/r/{token}", headers={"User-Agent": "Proofpoint URL Defense"},
                               allow_redirects=False, timeout=10)  # fmt: skip
        assert scanner.status_code == 302 and scanner.headers["Location"] == LINKS[0]
    # serve stopped: every click it held is written
    with sqlite3.connect(sample / ".broadsheet" / "audience.db") as db:
        rows = db.execute("SELECT campaign, link, url, scanner, subscriber FROM clicks ORDER BY id").fetchall()
    assert rows == [(SLUG, 1, LINKS[1], 0, None), (SLUG, 1, LINKS[1], 0, None), (SLUG, 0, LINKS[0], 1, None)]
    shown = run_cli(sample, "status", ISSUE)
    assert shown.returncode == 0, shown.stderr
    assert "clicks (3, of which link scanners 1):" in shown.stdout
    assert f"    {LINKS[0]}  1 clicks (1 by scanners)" in shown.stdout
    assert f"    {LINKS[1]}  2 clicks (0 by scanners)" in shown.stdout
