"""`broadsheet serve` as a real waitress process on 127.0.0.1, hit with real HTTP (requests)."""

from __future__ import annotations

import email.parser
import email.policy
import io
import re
import shutil
import socket
import time
from pathlib import Path

import pytest
import requests
from conftest import ROOT
from PIL import Image
from support.ports import free_port
from support.serve import SECRET, configure, serve_process, serving
from test_cli_build import run_cli

from broadsheet.core.config import load_config
from broadsheet.core.tokens import make_token
from broadsheet.data.store import Store
from broadsheet.faces.serve.app import make_app
from broadsheet.faces.serve.signup import confirm_token

LIST = "newsletter.bcecc.example.org"
GMAIL_BOUNDARY = "000000000000c0ffee0123456789"
web = requests.Session()  # a browser: keeps serve's form cookie


def copy_sample(folder: Path) -> Path:
    for name in ("broadsheet.toml", "subscribers.example.csv"):
        shutil.copy(ROOT / name, folder / name)
    shutil.copytree(ROOT / "assets", folder / "assets")
    return folder


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """(base URL, project folder) of one serve process shared by this module's tests."""
    project = copy_sample(tmp_path_factory.mktemp("serve"))
    with serve_process(project) as base:
        yield base, project


@pytest.fixture
def base(site) -> str:
    return site[0]


@pytest.fixture
def store(site):
    with Store.for_project(site[1]) as opened:
        yield opened


def unsubscribe_url(base: str, address: str) -> str:
    return f"{base}/u/{make_token('unsubscribe', address, LIST, SECRET)}"


def gmail_one_click(url: str, *, multipart: bool = True) -> requests.Response:
    """The POST Gmail sends for a List-Unsubscribe-Post header (RFC 8058): no cookies, no Origin."""
    if multipart:
        body = (
            f'--{GMAIL_BOUNDARY}\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
            f"One-Click\r\n--{GMAIL_BOUNDARY}--\r\n"
        )
        headers = {"Content-Type": f"multipart/form-data; boundary={GMAIL_BOUNDARY}"}
    else:
        body, headers = "List-Unsubscribe=One-Click", {"Content-Type": "application/x-www-form-urlencoded"}
    return requests.post(
        url, data=body.encode(), headers={**headers, "User-Agent": "Google-OneClick"}, allow_redirects=False, timeout=10
    )


def form_token(page: str) -> str:
    return re.search(r'name="form" value="([^"]+)"', page)[1]


def status_of(store: Store, address: str) -> str | None:
    found = store.get(address)
    return found.status if found else None


def outbox_messages(project: Path, slug: str = "") -> list:
    folder = project / "outbox" / slug
    parser = email.parser.BytesParser(policy=email.policy.default)
    return [parser.parsebytes(path.read_bytes()) for path in sorted(folder.glob("*.eml"))] if folder.is_dir() else []


def confirm_link(message) -> str:
    return re.search(r"(http://\S+/c/[A-Za-z0-9_-]+)", message.get_body(("plain",)).get_content())[1]


# -- one-click and the unsubscribe page ---------------------------------------------------------


@pytest.mark.parametrize("multipart", [True, False])
def test_the_one_click_post_as_gmail_sends_it_unsubscribes_at_once(base, store, multipart):
    address = f"oneclick{int(multipart)}@example.org"
    store.add(address, name="One Click")
    answer = gmail_one_click(unsubscribe_url(base, address), multipart=multipart)
    assert answer.status_code == 200 and "Location" not in answer.headers
    assert status_of(store, address) == "unsubscribed"
    assert [(e.kind, e.source) for e in store.events(address)][-1] == ("unsubscribed", "one-click")
    again = gmail_one_click(unsubscribe_url(base, address), multipart=multipart)
    assert again.status_code == 200 and status_of(store, address) == "unsubscribed"


def test_a_one_click_in_rfc_8058s_exact_body_is_answered_as_any_other_one_click(base, store):
    """The urlencoded body every provider posts is answered without form parsing: the same status, text and
    headers as a one-click whose form carries one more field (which takes the whole request path)."""
    exact, extra = "exact-body@example.org", "extra-field@example.org"
    for address in (exact, extra):
        store.add(address)
    answers = [
        requests.post(
            unsubscribe_url(base, address),
            data=body,
            timeout=10,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        for address, body in ((exact, b"List-Unsubscribe=One-Click"), (extra, b"List-Unsubscribe=One-Click&x=1"))
    ]
    assert [(a.status_code, a.text) for a in answers] == [(200, "unsubscribed\n")] * 2
    headers = [{k: v for k, v in a.headers.items() if k not in ("Date", "Server")} for a in answers]
    assert headers[0] == headers[1]
    assert status_of(store, exact) == status_of(store, extra) == "unsubscribed"
    assert store.events(exact)[-1].source == store.events(extra)[-1].source == "one-click"


def test_a_one_click_for_an_address_the_store_never_saw_suppresses_it(base, store):
    """Links in messages sent from a CSV still work: the address is kept as unsubscribed, never mailed."""
    assert gmail_one_click(unsubscribe_url(base, "csv-only@example.org")).status_code == 200
    assert store.suppressed(["csv-only@example.org"]) == {"csv-only@example.org"}


def test_a_repeated_one_click_records_nothing_and_never_weakens_a_complaint(base, store):
    store.add("twice@example.org")
    store.add("angry-one-click@example.org", status="complained")
    before = len(store.events("angry-one-click@example.org"))
    answers = [gmail_one_click(unsubscribe_url(base, "twice@example.org")) for _ in range(3)]
    answers.append(gmail_one_click(unsubscribe_url(base, "angry-one-click@example.org")))
    assert [(a.status_code, a.text) for a in answers] == [(200, "unsubscribed\n")] * 4
    assert [e.kind for e in store.events("twice@example.org")] == ["added", "unsubscribed"]
    assert status_of(store, "angry-one-click@example.org") == "complained"
    assert len(store.events("angry-one-click@example.org")) == before


def test_a_link_sent_with_a_token_of_the_first_format_still_unsubscribes(base, store):
    """Minted by the first token format (version 1) under SECRET, as in links already sent."""
    store.add("kept-link@example.org")
    answer = gmail_one_click(f"{base}/u/AW8tKJJfmOjJ702f-A-KWyIDrvX3s4jfWeFmZNetimGOGfMEsyFi")
    assert answer.status_code == 200 and status_of(store, "kept-link@example.org") == "unsubscribed"
    assert store.events("kept-link@example.org")[-1].source == "one-click"


def test_one_clicks_are_rate_limited_per_link_and_per_client(base, store):
    from broadsheet.faces.serve.app import ONE_CLICKS_PER_ADDRESS, ONE_CLICKS_PER_CLIENT

    def one_click(address: str, client: str) -> int:
        return requests.post(
            unsubscribe_url(base, address),
            data={"List-Unsubscribe": "One-Click"},
            headers={"X-Forwarded-For": client},
            timeout=10,
        ).status_code

    per_link = [one_click("clicker@example.org", f"192.0.2.{n}") for n in range(ONE_CLICKS_PER_ADDRESS[0] + 2)]
    assert per_link == [200] * ONE_CLICKS_PER_ADDRESS[0] + [429, 429]
    flood = [one_click(f"flood{n}@example.org", "203.0.113.200") for n in range(ONE_CLICKS_PER_CLIENT[0] + 1)]
    assert flood == [200] * ONE_CLICKS_PER_CLIENT[0] + [429]
    assert store.get(f"flood{ONE_CLICKS_PER_CLIENT[0]}@example.org") is None
    assert one_click(f"flood{ONE_CLICKS_PER_CLIENT[0]}@example.org", "203.0.113.201") == 200  # another client


def test_the_unsubscribe_page_shows_a_masked_address_and_never_unsubscribes_on_get(base, store):
    store.add("jane.doe@example.org", name="Jane")
    answer = web.get(unsubscribe_url(base, "jane.doe@example.org"), timeout=10)
    assert answer.status_code == 200 and status_of(store, "jane.doe@example.org") == "subscribed"
    page = answer.text
    assert "ja•••e@example.org" in page and "jane.doe@example.org" not in page and "BCECC Newsletter" in page
    assert '<html lang="en">' in page and '<button type="submit">Unsubscribe</button>' in page
    assert "<script" not in page and not re.search(r'(src|href)="(https?:)?//', page)  # nothing from other hosts
    headers = answer.headers
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["Referrer-Policy"] == "no-referrer" and headers["X-Content-Type-Options"] == "nosniff"
    assert "SameSite=Strict" in headers["Set-Cookie"] and "HttpOnly" in headers["Set-Cookie"]


def test_the_page_button_unsubscribes_and_offers_to_resubscribe(site, store):
    base, project = site
    store.add("button@example.org")
    url = unsubscribe_url(base, "button@example.org")
    page = web.get(url, timeout=10).text
    done = web.post(url, data={"form": form_token(page), "action": "unsubscribe"}, timeout=10)
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    assert status_of(store, "button@example.org") == "unsubscribed"
    assert store.events("button@example.org")[-1].source == "unsubscribe-page"
    back = web.post(url, data={"form": form_token(done.text), "action": "resubscribe"}, timeout=10)
    assert back.status_code == 200 and "Check your inbox" in back.text
    assert status_of(store, "button@example.org") == "unsubscribed"  # not until the mailbox says so
    [message] = mails_to(project, "button@example.org", expected=1)
    page = web.get(confirm_link(message), timeout=10)
    confirmed = web.post(confirm_link(message), data={"form": form_token(page.text)}, timeout=10)
    assert confirmed.status_code == 200 and status_of(store, "button@example.org") == "subscribed"
    assert [e.kind for e in store.events("button@example.org")][-2:] == ["signed_up", "confirmed"]


def test_an_old_unsubscribe_link_alone_never_resubscribes_anyone(site, store):
    """The link travels (a forwarded issue, an archive): whoever holds it may ask, only the mailbox decides."""
    base, project = site
    store.add("gone@example.org")
    url = unsubscribe_url(base, "gone@example.org")
    assert gmail_one_click(url).status_code == 200
    page = web.get(url, timeout=10)
    assert page.status_code == 200 and "You are unsubscribed" in page.text and "resubscribe" in page.text
    assert status_of(store, "gone@example.org") == "unsubscribed"  # the GET changed nothing
    stranger = requests.Session()  # someone else's browser, with the same link
    page = stranger.get(url, timeout=10)
    back = stranger.post(url, data={"form": form_token(page.text), "action": "resubscribe"}, timeout=10)
    assert back.status_code == 200 and "Check your inbox" in back.text
    assert status_of(store, "gone@example.org") == "unsubscribed"
    assert len(mails_to(project, "gone@example.org", expected=1)) == 1  # the confirmation goes to the owner


def test_resubscribing_never_undoes_a_complaint(base, store):
    store.add("angry@example.org", status="complained")
    url = unsubscribe_url(base, "angry@example.org")
    token = form_token(web.get(url, timeout=10).text)
    answer = web.post(url, data={"form": token, "action": "resubscribe"}, timeout=10)
    assert answer.status_code == 409 and status_of(store, "angry@example.org") == "complained"


def test_a_one_click_never_lifts_a_complaint_or_a_bounce_so_a_sign_up_mails_them_nothing(site, store):
    """Suppression only gets stronger: the one-click changes nothing (so records nothing), and a later
    sign-up answers as for anyone else but mails no confirmation."""
    base, project = site
    strong = {"complained": "strong-complained@example.org", "bounced": "strong-bounced@example.org"}
    for status, address in strong.items():
        store.add(address, status=status)
        assert gmail_one_click(unsubscribe_url(base, address)).status_code == 200
        assert status_of(store, address) == status
        assert [(e.kind, e.source) for e in store.events(address)] == [("added", "cli")]
    pages = {address: sign_up(base, address) for address in (*strong.values(), "strong-fresh@example.org")}
    bodies = {a: p.text.replace(a, "ADDRESS") for a, p in pages.items()}
    assert {p.status_code for p in pages.values()} == {200} and len(set(bodies.values())) == 1
    assert len(mails_to(project, "strong-fresh@example.org", expected=1)) == 1  # mailed in turn: the others first
    assert [mails_to(project, address) for address in strong.values()] == [[], []]
    assert [status_of(store, address) for address in strong.values()] == list(strong)


@pytest.mark.parametrize(
    "case", ["no form token", "foreign origin", "token for another page", "no form cookie", "another browser's cookie"]
)
def test_page_forms_refuse_cross_site_posts(base, store, case):
    address = f"csrf-{case.replace(' ', '-')}@example.org"
    store.add(address)
    url = unsubscribe_url(base, address)
    token = form_token(web.get(url, timeout=10).text)
    data, headers = {"form": token, "action": "unsubscribe"}, {}
    if case == "no form token":
        del data["form"]
    elif case == "foreign origin":
        headers["Origin"] = "https://evil.example"
    elif case == "token for another page":
        data["form"] = form_token(web.get(unsubscribe_url(base, "other@example.org"), timeout=10).text)
    elif case == "another browser's cookie":
        headers["Cookie"] = "broadsheet_form=" + "A" * 22
    poster = requests.post if case in ("no form cookie", "another browser's cookie") else web.post
    answer = poster(url, data=data, headers={"Origin": "null", **headers}, timeout=10)
    assert answer.status_code == 403 and status_of(store, address) == "subscribed"


def test_bad_and_tampered_tokens_change_nothing(base, store):
    store.add("tamper@example.org")
    token = make_token("unsubscribe", "tamper@example.org", LIST, SECRET)
    flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    forged = [
        flipped,
        token[:-2],
        "AAAA",
        make_token("unsubscribe", "tamper@example.org", LIST, "guessed-secret"),
        make_token("confirm", "tamper@example.org", LIST, SECRET, extra="x.1"),
    ]
    for bad in forged:
        assert web.get(f"{base}/u/{bad}", timeout=10).status_code == 400
        assert gmail_one_click(f"{base}/u/{bad}").status_code == 400
        assert gmail_one_click(f"{base}/u/{bad}", multipart=False).status_code == 400  # the exact body too
    assert web.get(f"{base}/u/not*a*token", timeout=10).status_code == 404
    assert status_of(store, "tamper@example.org") == "subscribed"
    assert [e.kind for e in store.events("tamper@example.org")] == ["added"]


def test_a_post_without_one_click_or_a_form_is_refused(base, store):
    store.add("empty-post@example.org")
    answer = web.post(unsubscribe_url(base, "empty-post@example.org"), data={"x": "y"}, timeout=10)
    assert answer.status_code == 403 and status_of(store, "empty-post@example.org") == "subscribed"


def test_a_foreign_host_is_refused(base, store):
    store.add("host@example.org")
    url = unsubscribe_url(base, "host@example.org")
    answer = web.post(url, data={"List-Unsubscribe": "One-Click"}, headers={"Host": "evil.example"}, timeout=10)
    assert answer.status_code == 421 and status_of(store, "host@example.org") == "subscribed"


def test_an_oversized_body_is_refused_before_it_is_read(base, store):
    store.add("big@example.org")
    body = "List-Unsubscribe=One-Click&pad=" + "x" * 20_000
    answer = web.post(
        unsubscribe_url(base, "big@example.org"),
        data=body,
        timeout=10,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 413 and status_of(store, "big@example.org") == "subscribed"
    huge = web.post(f"{base}/webhooks/postmark", data=b"x" * (5 * 1024 * 1024), timeout=30)
    assert huge.status_code == 413


def test_other_methods_are_not_allowed(base):
    answer = web.put(f"{base}/subscribe", data="x", timeout=10)
    assert answer.status_code == 405 and answer.headers["Allow"] == "GET, HEAD, POST"


def test_the_logo_is_served_by_serve_itself(base):
    answer = web.get(f"{base}/brand/logo", timeout=10)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/png"
    with Image.open(io.BytesIO(answer.content)) as logo, Image.open(ROOT / "assets" / "bcecc-logo.png") as original:
        assert logo.size == original.size


def test_the_logo_is_served_without_its_metadata(tmp_path, monkeypatch):
    """The copy build and publish use: a comment or EXIF in the file never reaches a visitor."""
    project = copy_sample(tmp_path)
    buffer = io.BytesIO()
    Image.new("RGB", (200, 80), (30, 80, 120)).save(buffer, "JPEG", comment=b"Jane Private, at home")
    (project / "assets" / "logo.jpg").write_bytes(buffer.getvalue())
    port = free_port()
    configure(project, port)
    path = project / "broadsheet.toml"
    path.write_text(path.read_text("utf-8").replace("assets/bcecc-logo.png", "assets/logo.jpg"), "utf-8")
    monkeypatch.setenv("BROADSHEET_SECRET", SECRET)
    config = load_config(path)
    with serving(make_app(config), config, port):
        answer = requests.get(f"http://127.0.0.1:{port}/brand/logo", timeout=10)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/jpeg"
    assert b"Jane Private" not in answer.content
    with Image.open(io.BytesIO(answer.content)) as logo:
        assert logo.size == (200, 80) and "comment" not in logo.info


def test_webhooks_of_an_unknown_provider_are_not_found(base):
    assert web.post(f"{base}/webhooks/nosuchprovider", data=b"{}", timeout=10).status_code == 404


# -- sign-up and confirmation -------------------------------------------------------------------


def sign_up(base: str, address: str, **fields: str) -> requests.Response:
    token = form_token(web.get(f"{base}/subscribe", timeout=10).text)
    return web.post(
        f"{base}/subscribe",
        data={"form": token, "email": address, "name": "New Reader", **fields},
        headers={"X-Forwarded-For": f"198.51.100.{sum(map(ord, address)) % 250}"},
        timeout=10,
    )


def mails_to(project: Path, address: str, *, expected: int = 0) -> list:
    """The confirmations mailed to ``address``; waits (10 s at most) until ``expected`` arrived: serve mails
    them from a thread of its own, after its answer."""
    deadline = time.monotonic() + 10
    while True:
        found = [m for m in outbox_messages(project) if m["To"].addresses[0].addr_spec == address]
        if len(found) >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def test_sign_up_mails_a_themed_confirmation_and_its_link_confirms_once(site, store):
    base, project = site
    answer = sign_up(base, "newbie@example.org")
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    [message] = mails_to(project, "newbie@example.org", expected=1)
    assert status_of(store, "newbie@example.org") == "unconfirmed"  # recorded before it was mailed
    assert message["Subject"] == "Confirm your subscription to BCECC Newsletter"
    html = message.get_body(("html",)).get_content()
    assert f"{base}/brand/logo" in html and "#1f4e79" in html and "Confirm my subscription" in html
    link = confirm_link(message)
    assert link in html and "newbie" not in link
    page = web.get(link, timeout=10)
    assert page.status_code == 200 and status_of(store, "newbie@example.org") == "unconfirmed"
    confirmed = web.post(link, data={"form": form_token(page.text)}, timeout=10)
    assert confirmed.status_code == 200 and "You are subscribed" in confirmed.text
    assert status_of(store, "newbie@example.org") == "subscribed"
    replay = web.post(link, data={"form": form_token(page.text)}, timeout=10)
    assert replay.status_code == 410 and status_of(store, "newbie@example.org") == "subscribed"


def test_signing_up_answers_the_same_page_whatever_the_address_and_never_mails_complainers(site, store):
    base, project = site
    store.add("member@example.org")
    store.add("complainer@example.org", status="complained")
    store.add("leaver@example.org", status="unsubscribed")
    pages = {
        address: sign_up(base, address)
        for address in ("fresh@example.org", "member@example.org", "complainer@example.org", "leaver@example.org")
    }
    bodies = {a: p.text.replace(a, "ADDRESS") for a, p in pages.items()}
    assert {p.status_code for p in pages.values()} == {200} and len(set(bodies.values())) == 1
    assert len(mails_to(project, "fresh@example.org", expected=1)) == 1
    assert len(mails_to(project, "leaver@example.org", expected=1)) == 1
    assert mails_to(project, "member@example.org") == [] and mails_to(project, "complainer@example.org") == []
    assert status_of(store, "complainer@example.org") == "complained"


def test_the_honeypot_records_and_mails_nothing(site, store):
    base, project = site
    answer = sign_up(base, "robot@example.org", website="https://spam.example")
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    assert store.get("robot@example.org") is None and mails_to(project, "robot@example.org") == []


def test_an_invalid_address_shows_the_form_again_with_the_reason(site, store):
    answer = sign_up(site[0], "not an address <script>")
    assert answer.status_code == 400 and "does not look like an email address" in answer.text
    assert "<script>" not in answer.text and "&lt;script&gt;" in answer.text


def test_a_sign_up_post_from_another_site_is_refused(base, store):
    token = form_token(web.get(f"{base}/subscribe", timeout=10).text)
    answer = web.post(
        f"{base}/subscribe",
        data={"form": token, "email": "victim@example.org"},
        headers={"Origin": "https://evil.example"},
        timeout=10,
    )
    assert answer.status_code == 403 and store.get("victim@example.org") is None


def test_an_expired_or_tampered_confirmation_link_confirms_nothing(site, store):
    base, project = site
    config = load_config(project / "broadsheet.toml")
    nonce = store.sign_up("late@example.org")
    old = confirm_token("late@example.org", nonce, config, SECRET, issued=int(time.time()) - 8 * 24 * 3600)
    assert web.get(f"{base}/c/{old}", timeout=10).status_code == 410
    fresh = confirm_token("late@example.org", nonce, config, SECRET)
    form = form_token(web.get(f"{base}/c/{fresh}", timeout=10).text)
    assert web.post(f"{base}/c/{old}", data={"form": form}, timeout=10).status_code in (403, 410)
    wrong_nonce = confirm_token("late@example.org", "guessed", config, SECRET)
    form = form_token(web.get(f"{base}/c/{wrong_nonce}", timeout=10).text)
    assert web.post(f"{base}/c/{wrong_nonce}", data={"form": form}, timeout=10).status_code == 410
    assert web.get(f"{base}/c/{fresh[:-3]}", timeout=10).status_code == 400
    assert status_of(store, "late@example.org") == "unconfirmed"


def test_sign_ups_are_rate_limited_per_client(tmp_path):
    project = copy_sample(tmp_path)
    with serve_process(project, extra_config="signups_per_minute = 2\n") as base:
        codes, web = [], requests.Session()
        for n in range(4):
            token = form_token(web.get(f"{base}/subscribe", timeout=10).text)
            codes.append(
                web.post(
                    f"{base}/subscribe", data={"form": token, "email": f"r{n}@example.org"}, timeout=10
                ).status_code
            )
        other = web.post(
            f"{base}/subscribe",
            data={"form": token, "email": "x@example.org"},
            headers={"X-Forwarded-For": "203.0.113.9"},
            timeout=10,
        )
    assert codes == [200, 200, 429, 429] and other.status_code == 200
    with Store.for_project(project) as store:
        assert store.get("r2@example.org") is None and store.get("r1@example.org") is not None


# -- the command ----------------------------------------------------------------------------------


def test_serve_without_public_url_or_secret_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    from broadsheet.faces.cli import main

    project = copy_sample(tmp_path)
    config = project / "broadsheet.toml"
    monkeypatch.setenv("BROADSHEET_SECRET", SECRET)
    monkeypatch.chdir(project)
    config.write_text(re.sub(r'public_url = ".*\n', "", config.read_text()), encoding="utf-8")
    assert main(["serve", "--port", "0"]) == 2
    assert "[serve] public_url is not set" in capsys.readouterr().err
    config.write_text(config.read_text().replace("[serve]\n", '[serve]\npublic_url = "https://n.example.org"\n'))
    monkeypatch.delenv("BROADSHEET_SECRET")
    assert main(["serve", "--port", "0"]) == 2
    assert "BROADSHEET_SECRET is not set" in capsys.readouterr().err


@pytest.mark.parametrize("variable", ["BROADSHEET_SECRET", "BROADSHEET_SECRET_PREVIOUS"])
def test_serve_refuses_a_weak_secret_at_start_up(tmp_path, monkeypatch, capsys, variable):
    from broadsheet.faces.cli import main

    monkeypatch.chdir(copy_sample(tmp_path))
    monkeypatch.setenv("BROADSHEET_SECRET", SECRET)
    monkeypatch.setenv(variable, "tiny")
    assert main(["serve", "--port", "0"]) == 2
    out, err = capsys.readouterr()
    assert err.startswith(f"broadsheet: error: environment variable {variable}: too weak to sign links: it is shorter")
    assert "secrets.token_urlsafe(32)" in err and "tiny" not in err and err.count("\n") == 1
    assert "listening" not in out


def test_a_public_url_with_a_path_is_refused_with_its_line(tmp_path):
    from broadsheet.core.errors import ConfigError

    project = copy_sample(tmp_path)
    config = project / "broadsheet.toml"
    config.write_text(re.sub(r'public_url = "[^"]*"', 'public_url = "https://n.example.org/news/"', config.read_text()))
    line = next(n for n, text in enumerate(config.read_text().splitlines(), 1) if text.startswith("public_url"))
    with pytest.raises(ConfigError, match="public_url must be a site's address") as caught:
        load_config(config)
    assert caught.value.where.endswith(f"broadsheet.toml:{line}")


def test_the_form_snippet_posts_to_the_public_url(tmp_path, monkeypatch, capsys):
    from broadsheet.faces.cli import main

    project = copy_sample(tmp_path)
    monkeypatch.chdir(project)
    assert main(["serve", "--form-snippet"]) == 0
    snippet = capsys.readouterr().out
    assert 'action="https://newsletter.example.org/subscribe"' in snippet and 'name="email"' in snippet
    assert 'name="website"' in snippet and "<script" not in snippet and "form_origins" in snippet


def test_a_campaign_running_while_a_reader_unsubscribes_does_not_mail_them(project, monkeypatch):
    """A send in its own process, held by the SMTP server after its first message (one connection, one
    reader a batch: nobody else is claimed yet), while serve, in this process, takes a one-click."""
    import subprocess
    import sys

    from support.serve import environment
    from support.smtpd import Sink, smtp_server
    from support.smtpd import configure as configure_sending

    readers = [f"reader{n:02d}@example.org" for n in range(16)]
    with Store.for_project(project) as store:
        for address in readers:
            store.add(address)
    (project / "subscribers.example.csv").unlink()  # the store alone: no [send] list imported into it
    issue = "issues/2021-06-01-chengdu-flemish-brabant"
    sink = Sink(hold_after=1)
    port = free_port()
    base = configure(project, port)
    monkeypatch.setenv("BROADSHEET_SECRET", SECRET)
    with smtp_server(sink) as (host, smtp_port):
        configure_sending(
            project,
            send={"transport": "smtp", "connections": 1, "batch_size": 1},
            smtp={"host": host, "port": smtp_port, "security": "none", "timeout": 10},
        )
        config = load_config(project / "broadsheet.toml")
        with serving(make_app(config), config, port):
            send = subprocess.Popen(
                [sys.executable, "-m", "broadsheet", "send", issue, "--yes", "--force"],
                cwd=project,
                env=environment(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                deadline = time.monotonic() + 30
                while not sink.received and time.monotonic() < deadline and send.poll() is None:
                    time.sleep(0.01)
                assert gmail_one_click(unsubscribe_url(base, readers[-1])).status_code == 200
                sink.released.set()
                _, err = send.communicate(timeout=60)
            finally:
                sink.released.set()
                send.kill()
    assert send.returncode == 0, err
    mailed = set(sink.recipients())
    assert readers[0] in mailed, err
    assert readers[-1] not in mailed and mailed == set(readers[:-1])


def test_pages_label_every_field_and_keep_readable_contrast(base):
    from lxml import html as lxml_html

    from broadsheet.core.lint.colour import contrast, parse_colour

    page = web.get(f"{base}/subscribe", timeout=10).text
    document = lxml_html.fromstring(page)
    labelled = {label.get("for") for label in document.iter("label")}
    fields = [i for i in document.iter("input") if i.get("type") != "hidden"]
    assert fields and all(field.get("id") in labelled for field in fields)
    css = document.find(".//style").text
    button = re.search(r"button\{[^}]*background:(#[0-9a-f]{6});color:(#[0-9a-f]{6})", css)
    assert contrast(parse_colour(button[1]), parse_colour(button[2])) >= 4.5


@pytest.mark.parametrize(
    "language, lang, heading",
    [("fr-BE", "fr-BE", "Se désabonner"), ("nl", "nl", "Uitschrijven"), ("de", "en", "Unsubscribe")],
)
def test_pages_speak_the_configured_language(tmp_path, language, lang, heading):
    from dataclasses import replace

    from broadsheet.faces.serve.pages import Pages

    config = replace(load_config(copy_sample(tmp_path) / "broadsheet.toml"), language=language)
    page = (
        Pages(config)
        .render("unsubscribe.html", address="a•••@example.org", action="/u/x", form="f")
        .get_data(as_text=True)
    )
    assert f'<html lang="{lang}">' in page and f"<h1>{heading}</h1>" in page


def test_a_site_folder_is_served_and_nothing_outside_it(tmp_path):
    import http.client

    project = copy_sample(tmp_path)
    (project / "site" / "2021").mkdir(parents=True)
    (project / "site" / "index.html").write_text("<h1>Archive</h1>", encoding="utf-8")
    (project / "site" / "2021" / "issue.html").write_text("<h1>An issue</h1>", encoding="utf-8")
    with serve_process(project) as base:
        assert web.get(f"{base}/", timeout=10).text == "<h1>Archive</h1>"
        assert web.get(f"{base}/2021/issue.html", timeout=10).text == "<h1>An issue</h1>"
        assert "Subscribe to" in web.get(f"{base}/subscribe", timeout=10).text
        host, port = base.removeprefix("http://").split(":")
        for path in ("/../broadsheet.toml", "/2021/../../broadsheet.toml", "/%2e%2e/broadsheet.toml"):
            connection = http.client.HTTPConnection(host, int(port), timeout=10)
            connection.request("GET", path, headers={"Host": f"{host}:{port}"})
            answer = connection.getresponse()
            assert answer.status == 404 and b"public_url" not in answer.read(), path
            connection.close()


@pytest.mark.parametrize(
    "content_type, body",
    [
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n'
            b"Content-Type: text/plain; charset=no-such-charset\r\n\r\nOne-Click\r\n--x--\r\n",
        ),
        ("multipart/form-data; boundary=x", b"--x\r\nno headers at all\r\n--y--"),
        ("multipart/form-data", b"List-Unsubscribe=One-Click"),
        ("application/x-www-form-urlencoded", b"List-Unsubscribe=One-Click\xff\xfe"),
        ("application/json", b'{"List-Unsubscribe": "One-Click"}'),
    ],
)
def test_hostile_bodies_are_refused_without_an_error(base, store, content_type, body):
    store.add(f"hostile{len(body)}{len(content_type)}@example.org")
    address = f"hostile{len(body)}{len(content_type)}@example.org"
    answer = requests.post(
        unsubscribe_url(base, address), data=body, headers={"Content-Type": content_type}, timeout=10
    )
    assert answer.status_code == 403 and status_of(store, address) == "subscribed"


def test_one_address_gets_at_most_one_confirmation_a_minute_however_often_it_signs_up(site, store):
    base, project = site
    answers = [sign_up(base, "popular@example.org", name=f"Try {n}") for n in range(3)]
    assert {a.status_code for a in answers} == {200}
    [message] = mails_to(project, "popular@example.org", expected=1)
    page = web.get(confirm_link(message), timeout=10)  # the one link mailed still works
    assert web.post(confirm_link(message), data={"form": form_token(page.text)}, timeout=10).status_code == 200
    assert status_of(store, "popular@example.org") == "subscribed"


def test_tagged_and_dotted_forms_of_one_mailbox_share_its_confirmation_limit(site, store):
    """victim+1@, vic.tim+2@ … all reach one Gmail inbox: a flood by variants is still one mail a minute."""
    base, project = site
    variants = ["victim+1@gmail.com", "vic.tim+2@gmail.com", "Victim@googlemail.com"]
    assert {sign_up(base, address).status_code for address in variants} == {200}
    first = mails_to(project, variants[0], expected=1)
    assert len(first) + sum(len(mails_to(project, address)) for address in variants[1:]) == 1


@pytest.mark.parametrize("port", ["taken", 99999])
def test_a_port_serve_cannot_have_is_one_line(tmp_path, port, monkeypatch):
    project = copy_sample(tmp_path)
    monkeypatch.setenv("BROADSHEET_SECRET", SECRET)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        number = taken.getsockname()[1] if port == "taken" else port
        done = run_cli(project, "serve", "--port", str(number))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"broadsheet: error: 127.0.0.1:{number}: cannot listen on port {number}: "
        + ("it is already in use" if port == "taken" else done.stderr.split(": ", 4)[-1].split(" (")[0])
        + " (choose another with --port N, or stop the other server)"
    ]


def test_hidden_files_of_the_site_folder_and_odd_paths_are_not_served(site, store):
    base, project = site
    (project / "site" / ".git").mkdir(parents=True, exist_ok=True)
    (project / "site" / ".env").write_text("SECRET=1\n")
    (project / "site" / ".git" / "config").write_text("[core]\n")
    (project / "site" / "page.html").write_text("<p>public</p>\n")
    assert web.get(f"{base}/page.html", timeout=10).status_code == 200
    (project / "site" / "innocent.txt").symlink_to(project / "site" / ".env")
    for path in ("/.env", "/.git/config", "/innocent.txt"):
        assert web.get(base + path, timeout=10).status_code == 404, path
    store.add("newline@example.org")
    answer = requests.post(unsubscribe_url(base, "newline@example.org") + "%0a", data={"List-Unsubscribe": "One-Click"},
                           timeout=10)  # fmt: skip
    assert answer.status_code == 404 and status_of(store, "newline@example.org") == "subscribed"
    assert web.request("TRACE", f"{base}/healthz", timeout=10).status_code == 405


def test_a_path_routes_only_as_written(base, store):
    """No trailing slash, newline or doubled slash variant reaches an endpoint, and none is redirected."""
    import http.client

    store.add("as-written@example.org")
    token_path = unsubscribe_url(base, "as-written@example.org").removeprefix(base)
    host, port = base.removeprefix("http://").split(":")
    for method, path in [
        ("POST", token_path.replace("/u/", "/u//")),
        ("POST", token_path + "/"),
        ("POST", token_path + "%0a"),
        ("GET", "/healthz/"),
        ("GET", "/subscribe/"),
        ("POST", "/webhooks//sendgrid"),
    ]:
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        body = b"List-Unsubscribe=One-Click"
        headers = {"Host": f"{host}:{port}", "Content-Type": "application/x-www-form-urlencoded"}
        connection.request(method, path, body=body if method == "POST" else None, headers=headers)
        answer = connection.getresponse()
        answer.read()
        connection.close()
        assert answer.status == 404 and answer.getheader("Location") is None, path
    assert status_of(store, "as-written@example.org") == "subscribed"


def test_serve_logs_its_notices_on_stderr_a_line_each(tmp_path):
    """The CLI's handler for the ``broadsheet.faces.serve`` logger: what the mailing thread reports at start-up
    reaches stderr as ``broadsheet serve: …``."""
    project = copy_sample(tmp_path)
    with Store.for_project(project) as opened:
        assert opened.take_sign_up("cut-off@example.org", name="", source="form", limit=10)
        assert opened.sign_up_waiting(opened.waiting_sign_ups(1)[0])
        opened.db.execute("UPDATE intake SET mailing = '2026-01-01T00:00:00Z'")  # its serve stopped while mailing
    log = tmp_path / "serve.log"
    with log.open("w+") as stderr, serve_process(project, log=stderr):
        deadline = time.monotonic() + 30
        while "not sent" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
    assert (
        "broadsheet serve: 1 confirmation message(s) not sent: serve stopped while sending them, so whether they"
        " left is unknown (not sent again)"
    ) in log.read_text().splitlines()
