"""Two `broadsheet serve` replicas (real processes, each its own folder and port, one PostgreSQL store)
driven at once over HTTP: whichever replica gets a one-click, a sign-up, a confirmation or a webhook, and
however many get the same one, it is recorded once and mailed once."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests
from support.serve import SECRET, environment, serve_process
from support.webhooks import basic_auth
from test_serve import LIST, confirm_link, copy_sample, form_token, outbox_messages

from broadsheet.core.audience.addresses import mailbox_of
from broadsheet.core.tokens import make_token
from broadsheet.data.store import Store

pytestmark = pytest.mark.timeout(120)

REPLICAS = 2
POSTMARK = {"BROADSHEET_POSTMARK_WEBHOOK_USER": "hook", "BROADSHEET_POSTMARK_WEBHOOK_PASSWORD": "pm-pass"}


@pytest.fixture
def replicas(tmp_path: Path, postgres_url: str) -> Iterator[list[tuple[str, Path]]]:
    """(base URL, project folder) of each replica: the same config but its port, the same database."""
    with Store(postgres_url):  # the schema, before either replica opens it
        pass
    with ExitStack() as stack:
        found = []
        for n in range(REPLICAS):
            (folder := tmp_path / f"replica-{n}").mkdir()
            project = copy_sample(folder)
            config = project / "broadsheet.toml"
            config.write_text(
                config.read_text(encoding="utf-8") + f'\n[database]\nurl = "{postgres_url}"\n', encoding="utf-8"
            )
            base = stack.enter_context(
                serve_process(
                    project,
                    extra_config="threads = 4\nsignups_per_minute = 100\nsignups_per_hour = 1000\n",
                    env=environment(**POSTMARK),
                )
            )
            found.append((base, project))
        yield found


def at_once(calls: list[Callable[[], requests.Response]]) -> list[requests.Response]:
    """Run ``calls`` in threads of their own, released together."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], requests.Response]) -> requests.Response:
        start.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def one_click(base: str, address: str) -> Callable[[], requests.Response]:
    url = f"{base}/u/{make_token('unsubscribe', address, LIST, SECRET)}"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return lambda: requests.post(url, data="List-Unsubscribe=One-Click", headers=headers, timeout=30)


def sign_up(base: str, address: str) -> Callable[[], requests.Response]:
    web = requests.Session()
    token = form_token(web.get(f"{base}/subscribe", timeout=10).text)
    return lambda: web.post(f"{base}/subscribe", data={"form": token, "email": address, "name": "Twin"}, timeout=30)


def confirmation(base: str, path: str) -> Callable[[], requests.Response]:
    web = requests.Session()
    token = form_token(web.get(f"{base}{path}", timeout=10).text)
    return lambda: web.post(f"{base}{path}", data={"form": token}, timeout=30)


def webhook(base: str, record: dict[str, object]) -> Callable[[], requests.Response]:
    body = json.dumps(record).encode()
    headers = {**basic_auth("hook", "pm-pass"), "Content-Type": "application/json"}
    return lambda: requests.post(f"{base}/webhooks/postmark", data=body, headers=headers, timeout=30)


def kinds(url: str, address: str) -> list[str]:
    with Store(url) as store:
        return [event.kind for event in store.events(address)]


def settled_mails(url: str, projects: list[Path], address: str) -> list:
    """The confirmations mailed to ``address``'s mailbox (ann+1@ is ann@'s) by any replica, once every
    replica's mailing thread is done with the intake (30 s at most)."""
    deadline = time.monotonic() + 30
    with Store(url) as store:
        while store.db.execute("SELECT count(*) FROM intake").fetchone()[0] and time.monotonic() < deadline:
            time.sleep(0.05)
    mailbox = mailbox_of(address)
    return [m for p in projects for m in outbox_messages(p) if mailbox_of(m["To"].addresses[0].addr_spec) == mailbox]


def test_one_clicks_to_both_replicas_unsubscribe_each_address_once(replicas, postgres_url):
    addresses = [f"reader{n}@example.org" for n in range(24)]
    with Store(postgres_url) as store:
        for address in addresses:
            store.add(address)
    same = at_once([one_click(base, addresses[0]) for base, _ in replicas])  # the same one-click on both
    spread = at_once([one_click(base, address) for address in addresses[1:] for base, _ in replicas])
    assert {answer.status_code for answer in same + spread} == {200}
    with Store(postgres_url) as store:
        assert {store.get(address).status for address in addresses} == {"unsubscribed"}
    assert {tuple(kinds(postgres_url, address)) for address in addresses} == {("added", "unsubscribed")}


def test_one_sign_up_on_both_replicas_is_mailed_and_confirmed_once(replicas, postgres_url):
    projects = [project for _, project in replicas]
    answers = at_once([sign_up(base, "twin@example.org") for base, _ in replicas])
    assert [answer.status_code for answer in answers] == [200] * REPLICAS
    [message] = settled_mails(postgres_url, projects, "twin@example.org")
    with Store(postgres_url) as store:
        assert store.get("twin@example.org").status == "unconfirmed"
    assert kinds(postgres_url, "twin@example.org") == ["signed_up"]
    path = "/c/" + confirm_link(message).rsplit("/c/", 1)[1]
    answers = at_once([confirmation(base, path) for base, _ in replicas])
    assert 200 in [answer.status_code for answer in answers]
    assert {answer.status_code for answer in answers} <= {200, 410}  # the other: the link worked once
    with Store(postgres_url) as store:
        assert store.get("twin@example.org").status == "subscribed"
    assert kinds(postgres_url, "twin@example.org") == ["signed_up", "confirmed"]


def test_sign_ups_for_one_inbox_through_both_replicas_are_mailed_as_one_replica_would(replicas, postgres_url):
    """Each replica lets a mailbox's first sign-up of the minute through its own memory (victim+0@ on one,
    victim+1@ on the other, at once); the store, which counts the mails for both, lets one of them be mailed."""
    projects = [project for _, project in replicas]
    answers = at_once([sign_up(base, f"victim+{n}@example.org") for n, (base, _) in enumerate(replicas)])
    assert [answer.status_code for answer in answers] == [200] * REPLICAS
    [message] = settled_mails(postgres_url, projects, "victim@example.org")
    with Store(postgres_url) as store:
        assert store.db.execute("SELECT count(*) FROM confirmation_mails").fetchone() == (1,)
        signed_up = [address for n in range(REPLICAS) if store.get(address := f"victim+{n}@example.org")]
    assert signed_up == [message["To"].addresses[0].addr_spec]  # the other was never applied: no nonce made


def test_one_webhook_event_delivered_to_both_replicas_is_recorded_once(replicas, postgres_url):
    with Store(postgres_url) as store:
        store.add("soft@example.com")
        store.add("hard@example.com")
    bounce = {"RecordType": "Bounce", "TypeCode": 1, "BouncedAt": "2026-12-01T10:00:00Z", "Details": "smtp;550"}
    soft = {**bounce, "ID": 7001, "Type": "SoftBounce", "Email": "soft@example.com"}
    hard = {**bounce, "ID": 7002, "Type": "HardBounce", "Email": "hard@example.com"}
    answers = at_once([webhook(base, record) for record in (soft, hard) for base, _ in replicas])
    assert {answer.status_code for answer in answers} == {200}
    assert kinds(postgres_url, "soft@example.com") == ["added", "bounced_soft"]
    assert kinds(postgres_url, "hard@example.com") == ["added", "bounced_hard"]
    with Store(postgres_url) as store:
        assert store.get("hard@example.com").status == "bounced"
        assert store.get("soft@example.com").status == "subscribed"
