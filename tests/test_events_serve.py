"""Signed webhooks posted over real HTTP to `broadsheet serve` (waitress, a real process) and recorded in
the real store; forged and replayed ones refused with 401 and recorded nowhere."""

from __future__ import annotations

import json
import shutil
import time

import pytest
import requests
from conftest import ROOT
from support.ports import free_port
from support.serve import environment, serve_process, serving
from support.webhooks import TOPIC, MailgunSigner, SendgridSigner, SvixSigner, basic_auth

from broadsheet.core.config import load_config
from broadsheet.data.store import Store
from broadsheet.faces.serve.app import make_app

MAILGUN, SENDGRID, SVIX = MailgunSigner(), SendgridSigner(), SvixSigner()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    project = tmp_path_factory.mktemp("events-serve")
    shutil.copy(ROOT / "broadsheet.toml", project / "broadsheet.toml")
    with open(project / "broadsheet.toml", "a", encoding="utf-8") as config:
        config.write(f'\n[bounces]\nsns_topic_arn = "{TOPIC}"\n')
    env = environment(
        BROADSHEET_MAILGUN_WEBHOOK_KEY=MAILGUN.key,
        BROADSHEET_SENDGRID_WEBHOOK_KEY=SENDGRID.public_key,
        BROADSHEET_RESEND_WEBHOOK_SECRET=SVIX.secret,
        BROADSHEET_POSTMARK_WEBHOOK_USER="hook",
        BROADSHEET_POSTMARK_WEBHOOK_PASSWORD="pm-pass",
    )
    with Store.for_project(project) as store:
        for name in ("mg", "sg", "rs", "pm", "other"):
            store.add(f"{name}@example.com")
    with serve_process(project, env=env) as base:
        yield base, project


def status_of(project, email: str) -> str:
    with Store.for_project(project) as store:
        return store.get(email).status


def test_mailgun_over_http_once_then_replay_and_forgery_refused(site):
    base, project = site
    body = MAILGUN.body(
        {
            "event": "failed",
            "severity": "permanent",
            "id": "srv-1",
            "recipient": "mg@example.com",
            "timestamp": time.time(),
            "delivery-status": {"code": 550, "message": "no such user"},
        }
    )
    answer = requests.post(
        f"{base}/webhooks/mailgun", data=body, headers={"Content-Type": "application/json"}, timeout=10
    )
    assert (answer.status_code, answer.text) == (200, "1 hard bounce; 1 newly suppressed\n")
    assert status_of(project, "mg@example.com") == "bounced"
    assert requests.post(f"{base}/webhooks/mailgun", data=body, timeout=10).status_code == 401  # replayed
    forged = MailgunSigner().body(
        {"event": "complained", "id": "srv-2", "recipient": "other@example.com", "timestamp": time.time()}
    )
    assert requests.post(f"{base}/webhooks/mailgun", data=forged, timeout=10).status_code == 401
    assert status_of(project, "other@example.com") == "subscribed"


def test_sendgrid_resend_and_postmark_over_http(site):
    base, project = site
    batch = json.dumps(
        [{"email": "sg@example.com", "timestamp": int(time.time()), "event": "spamreport", "sg_event_id": "srv-sg-1"}]
    ).encode()
    assert (
        requests.post(f"{base}/webhooks/sendgrid", data=batch, headers=SENDGRID.sign(batch), timeout=10).status_code
        == 200
    )
    resend = json.dumps(
        {
            "type": "email.complained",
            "created_at": "2026-12-01T10:00:00Z",
            "data": {"email_id": "e1", "to": ["rs@example.com"]},
        }
    ).encode()
    tampered = resend.replace(b"rs@", b"other@")
    assert (
        requests.post(f"{base}/webhooks/resend", data=tampered, headers=SVIX.sign(resend), timeout=10).status_code
        == 401
    )
    assert (
        requests.post(f"{base}/webhooks/resend", data=resend, headers=SVIX.sign(resend), timeout=10).status_code == 200
    )
    postmark = json.dumps(
        {
            "RecordType": "SubscriptionChange",
            "Recipient": "pm@example.com",
            "SuppressSending": True,
            "SuppressionReason": "ManualSuppression",
            "Origin": "Recipient",
            "ChangedAt": "2026-12-01T10:00:00Z",
        }
    )
    assert (
        requests.post(
            f"{base}/webhooks/postmark", data=postmark, headers=basic_auth("hook", "wrong"), timeout=10
        ).status_code
        == 401
    )
    assert (
        requests.post(
            f"{base}/webhooks/postmark", data=postmark, headers=basic_auth("hook", "pm-pass"), timeout=10
        ).status_code
        == 200
    )
    assert [status_of(project, f"{n}@example.com") for n in ("sg", "rs", "pm", "other")] == [
        "complained",
        "complained",
        "unsubscribed",
        "subscribed",
    ]


def test_unknown_provider_and_ses_from_anywhere_but_amazon(site):
    base, _ = site
    assert requests.post(f"{base}/webhooks/nosuch", data=b"{}", timeout=10).status_code == 404
    # A running serve has no way to fetch a certificate anywhere but Amazon's SNS hosts, and no other topic.
    message = {
        "Type": "Notification",
        "SignatureVersion": "2",
        "Signature": "AAAA",
        "TopicArn": TOPIC,
        "SigningCertURL": f"{base}/cert.pem",
        "Message": "{}",
        "MessageId": "1",
        "Timestamp": "t",
    }
    assert requests.post(f"{base}/webhooks/ses", data=json.dumps(message), timeout=10).status_code == 401
    message["TopicArn"] = "arn:aws:sns:eu-west-1:999999999999:someone-else"
    assert requests.post(f"{base}/webhooks/ses", data=json.dumps(message), timeout=10).status_code == 401


def test_serve_applies_webhooks_with_its_own_config_not_one_found_beside_the_store(tmp_path, monkeypatch):
    """`serve --config staging.toml`: the policy comes from that file (soft_limit 1 here), not from a
    broadsheet.toml looked for upward from the store's folder (there is none: the defaults would apply)."""
    port = free_port()
    staging = tmp_path / "staging.toml"
    staging.write_text(
        f'list_id = "weekly.example.org"\n[serve]\npublic_url = "http://127.0.0.1:{port}"\n[bounces]\nsoft_limit = 1\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("BROADSHEET_MAILGUN_WEBHOOK_KEY", MAILGUN.key)
    monkeypatch.setenv("BROADSHEET_SECRET", "serve-config-secret-Zq8XvN3kT7wR2mJ5pL9cH4bF6dS1gY0")
    config = load_config(staging)
    with Store.for_project(config.root) as store:
        store.add("soft@example.com")
    app = make_app(config)
    with serving(app, config, port):
        body = MAILGUN.body(
            {
                "event": "failed",
                "severity": "temporary",
                "id": "cfg-1",
                "recipient": "soft@example.com",
                "timestamp": time.time(),
                "delivery-status": {"code": 452, "message": "mailbox full"},
            }
        )
        answer = requests.post(f"http://127.0.0.1:{port}/webhooks/mailgun", data=body, timeout=10)
    assert (answer.status_code, answer.text) == (200, "1 soft bounce; 1 newly suppressed\n")
    assert status_of(config.root, "soft@example.com") == "bounced"
