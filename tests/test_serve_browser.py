"""A reader's whole life in real headless Chromium against a real `broadsheet serve` process: sign up,
confirm from the message, receive the next issue, leave with one click, receive nothing after."""

from __future__ import annotations

import email.parser
import email.policy
import re
from pathlib import Path

import pytest
import requests
from support.browser import browser, require_chromium, wait_for
from support.issues import write_issue
from support.serve import SECRET, serve_process

from broadsheet.data.store import Store
from broadsheet.faces.cli import main

pytestmark = pytest.mark.browser

ISSUE = "issues/2021-06-01-chengdu-flemish-brabant"
READER = "new.reader@example.org"


def messages(folder: Path) -> list:
    parser = email.parser.BytesParser(policy=email.policy.default)
    return [parser.parsebytes(p.read_bytes()) for p in sorted(folder.glob("*.eml"))] if folder.is_dir() else []


def recipients(folder: Path) -> set[str]:
    return {m["To"].addresses[0].addr_spec for m in messages(folder)}


def send(project: Path, issue: str) -> int:
    return main(["--config", str(project / "broadsheet.toml"), "send", issue, "--yes", "--force"])


def test_sign_up_confirm_receive_one_click_unsubscribe_and_receive_nothing_more(project, monkeypatch):
    require_chromium()
    monkeypatch.setenv("BROADSHEET_SECRET", SECRET)
    monkeypatch.chdir(project)
    with Store.for_project(project) as store:
        store.add("long.time@example.org", name="Long Time")
    (project / "subscribers.example.csv").unlink()  # the store alone: no [send] list imported into it
    with serve_process(project) as base, browser(900, 900) as driver:
        driver.get(f"{base}/subscribe")
        assert driver.find_element("tag name", "html").get_attribute("lang") == "en"
        driver.find_element("id", "email").send_keys(READER)
        driver.find_element("id", "name").send_keys("New <b>Reader</b>")
        driver.find_element("css selector", "button[type=submit]").click()
        wait_for(
            lambda: "Check your inbox" in driver.find_element("tag name", "h1").text,
            what="the answer page: " + driver.page_source[-600:],
        )

        [confirmation] = [m for m in messages(project / "outbox") if m["To"].addresses[0].addr_spec == READER]
        assert "New <b>Reader</b>" in str(confirmation["To"])
        link = re.search(r"(http://\S+/c/[A-Za-z0-9_-]+)", confirmation.get_body(("plain",)).get_content())[1]
        driver.get(link)
        assert "ne•••r@example.org" in driver.find_element("tag name", "main").text
        driver.find_element("css selector", "button[type=submit]").click()
        wait_for(lambda: "You are subscribed" in driver.find_element("tag name", "h1").text, what="confirmed")
        with Store.for_project(project) as store:
            assert store.get(READER).status == "subscribed" and store.get(READER).name == "New <b>Reader</b>"

        assert send(project, ISSUE) == 0
        issue_box = project / "outbox" / ISSUE.rsplit("/", 1)[1]
        assert recipients(issue_box) == {READER, "long.time@example.org"}
        [issue_mail] = [m for m in messages(issue_box) if m["To"].addresses[0].addr_spec == READER]
        unsubscribe = issue_mail["List-Unsubscribe"].split(",")[0].strip().strip("<>")
        assert unsubscribe.startswith(f"{base}/u/") and "reader" not in unsubscribe
        answer = requests.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}, allow_redirects=False, timeout=10)
        assert answer.status_code == 200
        with Store.for_project(project) as store:
            assert store.get(READER).status == "unsubscribed"
            assert store.events(READER)[-1].source == "one-click"

        next_issue = write_issue(project)
        assert send(project, str(next_issue)) == 0
        assert recipients(project / "outbox" / next_issue.name) == {"long.time@example.org"}
