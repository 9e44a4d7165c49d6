"""The unsubscribe page's topics ([topics]) under a real `broadsheet serve` (waitress), over real HTTP."""

from __future__ import annotations

import re

import pytest
import requests
from support.serve import serve_process
from test_serve import copy_sample, form_token, gmail_one_click, status_of, unsubscribe_url

from broadsheet.data.store import Store

TOPICS = '\n[topics]\ntrade = "Trade missions"\nevents = "Events & visits"\n'


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    project = copy_sample(tmp_path_factory.mktemp("serve-topics"))
    with (project / "broadsheet.toml").open("a", encoding="utf-8") as config:
        config.write(TOPICS)
    with serve_process(project) as base:
        yield base, project


@pytest.fixture
def base(site) -> str:
    return site[0]


@pytest.fixture
def store(site):
    with Store.for_project(site[1]) as opened:
        yield opened


def buttons(page: str) -> list[tuple[str, str]]:
    """(action, topic) of each form of the page, in order ("" when it names no topic)."""
    found = []
    for form in re.findall(r"<form .*?</form>", page, flags=re.S):
        topic = re.search(r'name="topic" value="([^"]*)"', form)
        found.append((re.search(r'name="action" value="([^"]*)"', form)[1], topic[1] if topic else ""))
    return found


def test_the_page_lists_the_readers_topics_each_with_a_leave_button_and_everything(base, store):
    store.add("topical@example.org", tags=["trade", "events", "members"])  # members: a tag, not a topic
    session = requests.Session()
    page = session.get(unsubscribe_url(base, "topical@example.org"), timeout=10)
    assert page.status_code == 200 and "to•••l@example.org" in page.text and "topical@" not in page.text
    assert buttons(page.text) == [("leave-topic", "trade"), ("leave-topic", "events"), ("unsubscribe", "")]
    assert "Leave <strong>Trade missions</strong>" in page.text
    assert "Events &amp; visits" in page.text and "Unsubscribe from everything" in page.text
    assert status_of(store, "topical@example.org") == "subscribed" and store.left_topics("topical@example.org") == {}


def test_leaving_a_topic_records_it_confirms_and_offers_to_rejoin(base, store):
    store.add("leaver@example.org", tags=["trade", "events"])
    session = requests.Session()
    url = unsubscribe_url(base, "leaver@example.org")
    page = session.get(url, timeout=10).text
    left = session.post(url, data={"form": form_token(page), "action": "leave-topic", "topic": "trade"}, timeout=10)
    assert left.status_code == 200 and "You left a topic" in left.text
    assert buttons(left.text) == [("join-topic", "trade")]
    assert status_of(store, "leaver@example.org") == "subscribed"
    assert store.left_topics("leaver@example.org").keys() == {"trade"}
    event = store.events("leaver@example.org")[-1]
    assert (event.kind, event.source, event.detail) == ("left_topic", "unsubscribe-page", "trade")
    again = session.get(url, timeout=10).text  # the page now offers the way back beside the other topic
    assert buttons(again) == [("join-topic", "trade"), ("leave-topic", "events"), ("unsubscribe", "")]
    back = session.post(url, data={"form": form_token(left.text), "action": "join-topic", "topic": "trade"}, timeout=10)
    assert back.status_code == 200 and "You rejoined a topic" in back.text
    assert buttons(back.text) == [("leave-topic", "trade")]
    assert store.left_topics("leaver@example.org") == {}
    assert [e.kind for e in store.events("leaver@example.org")] == ["added", "left_topic", "joined_topic"]


def test_unsubscribing_from_everything_still_unsubscribes(base, store):
    store.add("all-gone@example.org", tags=["trade"])
    session = requests.Session()
    url = unsubscribe_url(base, "all-gone@example.org")
    page = session.get(url, timeout=10).text
    done = session.post(url, data={"form": form_token(page), "action": "unsubscribe"}, timeout=10)
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    assert status_of(store, "all-gone@example.org") == "unsubscribed"


def test_a_one_click_is_still_everything(base, store):
    store.add("one-click-topics@example.org", tags=["trade"])
    assert gmail_one_click(unsubscribe_url(base, "one-click-topics@example.org")).status_code == 200
    assert status_of(store, "one-click-topics@example.org") == "unsubscribed"
    assert store.left_topics("one-click-topics@example.org") == {}


@pytest.mark.parametrize("topic", ["members", "", "trade;events", "nope"])
def test_only_configured_topics_are_accepted(base, store, topic):
    address = f"bad-topic-{len(topic)}-{topic.replace(';', '')}@example.org"
    store.add(address, tags=["trade", "members"])
    session = requests.Session()
    url = unsubscribe_url(base, address)
    page = session.get(url, timeout=10).text
    answer = session.post(url, data={"form": form_token(page), "action": "leave-topic", "topic": topic}, timeout=10)
    assert answer.status_code == 400 and store.left_topics(address) == {}
    assert [e.kind for e in store.events(address)] == ["added"]


def test_the_answer_is_the_same_whatever_the_address_s_state(base, store):
    """An address the store never saw, one without the tag, one unsubscribed: the same confirmation page."""
    store.add("tagless@example.org")
    store.add("was-out@example.org", tags=["trade"], status="unsubscribed")
    pages = {}
    for address in ("never-seen@example.org", "tagless@example.org", "was-out@example.org"):
        session = requests.Session()
        url = unsubscribe_url(base, address)
        token = form_token(session.get(url, timeout=10).text)
        answer = session.post(url, data={"form": token, "action": "leave-topic", "topic": "trade"}, timeout=10)
        assert answer.status_code == 200
        masked = re.sub(r"<strong>[^<]*@example\.org</strong>", "ADDRESS", answer.text)
        pages[address] = re.sub(r'name="form" value="[^"]+"|action="/u/[^"]+"', "", masked)
    assert len(set(pages.values())) == 1
    assert store.get("never-seen@example.org") is None
    assert status_of(store, "was-out@example.org") == "unsubscribed"  # leaving a topic changes no status


@pytest.mark.parametrize("case", ["no form token", "foreign origin", "no form cookie"])
def test_topic_forms_refuse_cross_site_posts(base, store, case):
    address = f"topic-csrf-{case.replace(' ', '-')}@example.org"
    store.add(address, tags=["trade"])
    session = requests.Session()
    url = unsubscribe_url(base, address)
    data = {"form": form_token(session.get(url, timeout=10).text), "action": "leave-topic", "topic": "trade"}
    headers = {"Origin": "https://evil.example" if case == "foreign origin" else "null"}
    if case == "no form token":
        del data["form"]
    poster = requests.post if case == "no form cookie" else session.post
    answer = poster(url, data=data, headers=headers, timeout=10)
    assert answer.status_code == 403 and store.left_topics(address) == {}


def test_a_page_without_topics_for_the_reader_is_the_plain_one(base, store):
    store.add("plain@example.org", tags=["members"])
    page = requests.get(unsubscribe_url(base, "plain@example.org"), timeout=10).text
    assert buttons(page) == [("unsubscribe", "")] and '<button type="submit">Unsubscribe</button>' in page
