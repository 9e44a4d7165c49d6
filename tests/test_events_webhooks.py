"""Webhook verification and parsing per provider: real keys, tampered/stale/replayed requests refused."""

from __future__ import annotations

import json
import re
import time

import pytest
from pytest_httpserver import HTTPServer
from support.ports import refused_port
from support.webhooks import (
    TOPIC,
    MailgunSigner,
    SendgridSigner,
    SnsSigner,
    SvixSigner,
    basic_auth,
    local_https,
    ses_bounce,
)

from broadsheet.core.events import WebhookNotConfigured, WebhookRejected, WebhookUnavailable
from broadsheet.delivery.webhooks import mailgun, postmark, resend, sendgrid, ses
from broadsheet.delivery.webhooks.checks import ReplayGuard, WebhookContext, require_fresh
from broadsheet.usecases.events.webhooks import verified_events


def context(env: dict, **kwargs) -> WebhookContext:
    return WebhookContext(env=env, replays=ReplayGuard(), **kwargs)


# -- Postmark ----------------------------------------------------------------------------------------

POSTMARK_ENV = {"BROADSHEET_POSTMARK_WEBHOOK_USER": "hook", "BROADSHEET_POSTMARK_WEBHOOK_PASSWORD": "s3cret:pw"}
POSTMARK_BOUNCE = {
    "RecordType": "Bounce",
    "ID": 4323372036854775807,
    "Type": "HardBounce",
    "TypeCode": 1,
    "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
    "Email": "Gone@Example.com",
    "BouncedAt": "2026-12-01T10:00:00Z",
    "Details": "smtp;550 5.1.1 unknown user",
    "MessageStream": "broadcast",
}


def test_postmark_bounce_with_the_right_credentials_is_read():
    body = json.dumps(POSTMARK_BOUNCE).encode()
    [event] = verified_events(postmark, basic_auth("hook", "s3cret:pw"), body, context(POSTMARK_ENV))
    assert (event.kind, event.email, event.provider_message_id) == (
        "hard_bounce",
        "Gone@Example.com",
        POSTMARK_BOUNCE["MessageID"],
    )
    assert event.dedupe_key == "postmark:bounce:4323372036854775807" and event.at == "2026-12-01T10:00:00Z"
    assert "550 5.1.1" in event.detail


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic_auth("hook", "wrong"),
        basic_auth("other", "s3cret:pw"),
        {"Authorization": "Basic !!!"},
        {"Authorization": "Bearer s3cret:pw"},
    ],
)
def test_postmark_without_the_right_credentials_is_refused(headers):
    with pytest.raises(WebhookRejected):
        verified_events(postmark, headers, json.dumps(POSTMARK_BOUNCE).encode(), context(POSTMARK_ENV))


def test_postmark_kinds():
    complaint = {**POSTMARK_BOUNCE, "RecordType": "SpamComplaint", "Type": "SpamComplaint"}
    soft = {**POSTMARK_BOUNCE, "Type": "SoftBounce", "ID": 2}
    autoreply = {**POSTMARK_BOUNCE, "Type": "AutoResponder", "ID": 3}
    change = {
        "RecordType": "SubscriptionChange",
        "MessageID": "x",
        "Recipient": "a@example.com",
        "ChangedAt": "2026-12-01T10:00:00Z",
        "Origin": "Recipient",
        "SuppressSending": True,
        "SuppressionReason": "ManualSuppression",
    }
    reactivated = {**change, "SuppressSending": False}
    delivery = {
        "RecordType": "Delivery",
        "MessageID": "m",
        "Recipient": "a@example.com",
        "DeliveredAt": "2026-12-01T10:00:00Z",
    }
    kinds = [
        [e.kind for e in postmark.parse_record(r)]
        for r in (complaint, soft, autoreply, change, reactivated, delivery, {"RecordType": "Open"})
    ]
    assert kinds == [["complaint"], ["soft_bounce"], [], ["unsubscribe"], [], ["delivered"], []]


def test_postmark_without_configured_credentials_refuses_to_run():
    with pytest.raises(WebhookNotConfigured, match="BROADSHEET_POSTMARK_WEBHOOK_USER"):
        verified_events(postmark, basic_auth("", ""), b"{}", context({}))


# -- SendGrid ----------------------------------------------------------------------------------------

SENDGRID_EVENTS = [
    {
        "email": "a@example.com",
        "timestamp": 1764583200,
        "event": "bounce",
        "type": "bounce",
        "status": "5.1.1",
        "reason": "550 unknown",
        "sg_event_id": "ev-1",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
    },
    {"email": "b@example.com", "timestamp": 1764583200, "event": "bounce", "type": "blocked", "sg_event_id": "ev-2"},
    {"email": "c@example.com", "timestamp": 1764583200, "event": "spamreport", "sg_event_id": "ev-3"},
    {"email": "d@example.com", "timestamp": 1764583200, "event": "group_unsubscribe", "sg_event_id": "ev-4"},
    {"email": "e@example.com", "timestamp": 1764583200, "event": "deferred", "sg_event_id": "ev-5"},
    {
        "email": "f@example.com",
        "timestamp": 1764583200,
        "event": "dropped",
        "reason": "Bounced Address",
        "sg_event_id": "ev-6",
    },
]


def test_sendgrid_signed_batch_is_read():
    signer = SendgridSigner()
    body = json.dumps(SENDGRID_EVENTS).encode()
    events = verified_events(
        sendgrid, signer.sign(body), body, context({"BROADSHEET_SENDGRID_WEBHOOK_KEY": signer.public_key})
    )
    assert [(e.email[0], e.kind) for e in events] == [
        ("a", "hard_bounce"),
        ("b", "soft_bounce"),
        ("c", "complaint"),
        ("d", "unsubscribe"),
        ("f", "hard_bounce"),
    ]
    assert events[0].provider_message_id == "14c5d75ce93.dfd.64b469" and events[0].dedupe_key == "sendgrid:ev-1"
    assert events[0].message_id == "<14c5d75ce93.dfd.64b469@ismtpd-555>" and events[0].at == "2025-12-01T10:00:00Z"


def test_sendgrid_tampered_stale_or_foreign_signatures_are_refused():
    signer, stranger = SendgridSigner(), SendgridSigner()
    env = {"BROADSHEET_SENDGRID_WEBHOOK_KEY": signer.public_key}
    body = json.dumps(SENDGRID_EVENTS).encode()
    headers = signer.sign(body)
    for bad_headers, bad_body in [
        (headers, body.replace(b"a@example.com", b"z@example.com")),  # body changed
        ({**headers, "X-Twilio-Email-Event-Webhook-Timestamp": str(int(time.time()) + 1)}, body),  # timestamp changed
        (signer.sign(body, timestamp=time.time() - 3600), body),  # stale
        (stranger.sign(body), body),  # another key
        ({}, body),
    ]:
        with pytest.raises(WebhookRejected):
            verified_events(sendgrid, bad_headers, bad_body, context(env))


def test_sendgrid_key_in_pem_form_works_and_garbage_key_is_a_configuration_problem():
    from cryptography.hazmat.primitives import serialization

    signer = SendgridSigner()
    pem = (
        signer.key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    body = json.dumps(SENDGRID_EVENTS[:1]).encode()
    assert (
        len(verified_events(sendgrid, signer.sign(body), body, context({"BROADSHEET_SENDGRID_WEBHOOK_KEY": pem}))) == 1
    )
    with pytest.raises(WebhookNotConfigured):
        verified_events(sendgrid, signer.sign(body), body, context({"BROADSHEET_SENDGRID_WEBHOOK_KEY": "bm90IGEga2V5"}))


# -- Mailgun -----------------------------------------------------------------------------------------

MAILGUN_FAILED = {
    "event": "failed",
    "severity": "permanent",
    "id": "G9Bn5sl1TC6nu79C8C0bwg",
    "timestamp": 1764583200.5,
    "recipient": "alice@example.com",
    "reason": "bounce",
    "delivery-status": {"code": 550, "message": "5.1.1 The email account does not exist"},
    "message": {"headers": {"message-id": "20261201100000.1.ABC@mg.example.org"}},
}


def test_mailgun_signed_event_is_read_once():
    signer = MailgunSigner()
    ctx = context({"BROADSHEET_MAILGUN_WEBHOOK_KEY": signer.key})
    body = signer.body(MAILGUN_FAILED)
    [event] = verified_events(mailgun, {}, body, ctx)
    assert (event.kind, event.email, event.dedupe_key) == (
        "hard_bounce",
        "alice@example.com",
        "mailgun:G9Bn5sl1TC6nu79C8C0bwg",
    )
    assert event.message_id == "20261201100000.1.ABC@mg.example.org" and "550 5.1.1" in event.detail
    with pytest.raises(WebhookRejected, match="used before"):
        verified_events(mailgun, {}, body, ctx)  # the same signed request again


def test_mailgun_bad_stale_and_foreign_signatures_are_refused():
    signer = MailgunSigner()
    ctx = context({"BROADSHEET_MAILGUN_WEBHOOK_KEY": signer.key})
    tampered = json.loads(signer.body(MAILGUN_FAILED))
    tampered["signature"]["timestamp"] = str(int(time.time()) + 5)
    for body in (
        json.dumps(tampered).encode(),
        signer.body(MAILGUN_FAILED, timestamp=time.time() - 3600),
        MailgunSigner().body(MAILGUN_FAILED),
        json.dumps({"event-data": MAILGUN_FAILED}).encode(),
    ):
        with pytest.raises(WebhookRejected):
            verified_events(mailgun, {}, body, ctx)


def test_mailgun_kinds():
    kinds = [
        getattr(mailgun.parse_one({**MAILGUN_FAILED, **change}), "kind", None)
        for change in (
            {"severity": "temporary"},
            {"event": "complained"},
            {"event": "unsubscribed"},
            {"event": "opened"},
            {"recipient": None},
        )
    ]
    assert kinds == ["soft_bounce", "complaint", "unsubscribe", None, None]


# -- Resend (Svix) -----------------------------------------------------------------------------------

RESEND_BOUNCE = {
    "type": "email.bounced",
    "created_at": "2026-12-01T10:00:00.000Z",
    "data": {
        "email_id": "4ef9a417-02e9-4d39-ad75-9611e0fcc33c",
        "to": ["x@example.com"],
        "bounce": {"type": "Permanent", "subType": "General", "message": "mailbox does not exist"},
    },
}


def test_resend_signed_event_is_read():
    signer = SvixSigner()
    body = json.dumps(RESEND_BOUNCE).encode()
    headers = signer.sign(body, message_id="msg_2Lh9KRb0pzN4LePd3XiA4v12Axj")
    [event] = verified_events(resend, headers, body, context({"BROADSHEET_RESEND_WEBHOOK_SECRET": signer.secret}))
    assert (event.kind, event.email, event.provider_message_id) == (
        "hard_bounce",
        "x@example.com",
        "4ef9a417-02e9-4d39-ad75-9611e0fcc33c",
    )
    assert event.dedupe_key == "resend:msg_2Lh9KRb0pzN4LePd3XiA4v12Axj:x@example.com"


def test_resend_matches_the_svix_documented_example():
    # The worked example in Svix's "verifying payloads manually" documentation, checked at its own time.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    headers = {
        "svix-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "svix-timestamp": "1614265330",
        "svix-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    assert (
        resend.check_signature(headers, body, resend.signing_key(secret), now=1614265330)
        == "msg_p5jXN8AQM9LWM0D4loKWxJek"
    )


def test_resend_tampered_or_stale_is_refused():
    signer = SvixSigner()
    ctx = context({"BROADSHEET_RESEND_WEBHOOK_SECRET": signer.secret})
    body = json.dumps(RESEND_BOUNCE).encode()
    headers = signer.sign(body)
    for bad_headers, bad_body in [
        (headers, body.replace(b"x@example.com", b"y@example.com")),
        ({**headers, "svix-id": "msg_other"}, body),
        (signer.sign(body, timestamp=time.time() - 600), body),
        (SvixSigner().sign(body), body),
    ]:
        with pytest.raises(WebhookRejected):
            verified_events(resend, bad_headers, bad_body, ctx)


# -- SES through SNS ---------------------------------------------------------------------------------


CERTIFICATE_PATH = "/SimpleNotificationService-0123456789abcdef.pem"


@pytest.fixture(scope="module")
def sns_host(tmp_path_factory):
    """A local HTTPS 'SNS host' (trustme CA) and the signer whose certificate it serves, for the module: a
    key, a CA and a server's start and stop are most of a test's time."""
    tls, ca_file = local_https(tmp_path_factory.mktemp("sns"))
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=tls)
    server.start()
    yield server, SnsSigner(server.url_for(CERTIFICATE_PATH)), ca_file
    server.stop()


@pytest.fixture
def sns(sns_host):
    """(server, signer, context) for one test: the server serves the signing certificate and nothing else
    yet, its log is empty, and the context's certificate cache is new."""
    server, signer, ca_file = sns_host
    server.clear()
    server.expect_request(CERTIFICATE_PATH).respond_with_data(signer.pem)
    certificates = ses.SnsCertificates.for_local_tests("127.0.0.1", server.port, ca_file)
    yield server, signer, context({}, sns_topics=(TOPIC,), certificates=certificates)
    server.clear()


@pytest.mark.parametrize("version", ["1", "2"])
def test_ses_notification_signed_by_sns_is_read_and_the_certificate_fetched_once(sns, version):
    server, signer, ctx = sns
    events = []
    for _ in range(2):
        events += verified_events(ses, {}, signer.notification(ses_bounce("bob@example.com"), version=version), ctx)
    assert [(e.kind, e.email, e.provider_message_id, e.message_id) for e in events] == [
        ("hard_bounce", "bob@example.com", "ses-1", "<m1@example.org>")
    ] * 2
    assert len(server.log) == 1  # cached


def test_ses_tampered_foreign_topic_and_foreign_certificate_are_refused(sns):
    server, signer, ctx = sns
    good = json.loads(signer.notification(ses_bounce("bob@example.com")))
    tampered = {**good, "Message": good["Message"].replace("bob@", "eve@")}
    with pytest.raises(WebhookRejected, match="does not match"):
        verified_events(ses, {}, json.dumps(tampered).encode(), ctx)
    other_topic = signer.notification(
        ses_bounce("bob@example.com"), topic="arn:aws:sns:eu-west-1:999999999999:attacker"
    )
    with pytest.raises(WebhookRejected, match="topic"):
        verified_events(ses, {}, other_topic, ctx)
    for url in (
        "http://127.0.0.1/cert.pem",
        "https://evil.example.com/cert.pem",
        "https://sns.eu-west-1.amazonaws.com.evil.com/x.pem",
    ):
        foreign = SnsSigner(url, key=signer.key).notification(ses_bounce("bob@example.com"))
        with pytest.raises(WebhookRejected, match="SigningCertURL"):
            verified_events(ses, {}, foreign, ctx)
    assert len(server.log) == 1


def test_ses_subscription_confirmation_fetches_the_subscribe_url(sns):
    server, signer, ctx = sns
    server.expect_request("/", query_string={"Action": "ConfirmSubscription", "Token": "tok"}).respond_with_data(
        "<ok/>"
    )
    url = server.url_for("/") + "?Action=ConfirmSubscription&Token=tok"
    message = signer.message("SubscriptionConfirmation", Message="confirm", SubscribeURL=url, Token="tok")
    assert verified_events(ses, {}, json.dumps(message).encode(), ctx) == []
    assert [r.path for r, _ in server.log] == ["/SimpleNotificationService-0123456789abcdef.pem", "/"]


def test_production_certificate_source_accepts_only_amazon_sns_hosts():
    production = ses.SnsCertificates()
    assert production.allowed("https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem")
    assert production.allowed("https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem")
    assert production.allowed("https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-abc.pem")
    assert production.allowed("https://sns.ap-southeast-4.amazonaws.com/SimpleNotificationService-abc.pem")
    for url in (
        "http://sns.eu-west-1.amazonaws.com/x.pem",
        "https://sns.eu-west-1.amazonaws.com:8443/x.pem",
        "https://user@sns.eu-west-1.amazonaws.com/x.pem",
        "https://127.0.0.1/x.pem",
        "https://sns.eu-west-1.amazonaws.com.evil.com/x.pem",
        "https://s3.amazonaws.com/x.pem",
        "https://sns.eu-west-1.amazonaws.com.cn/x.pem",
        "https://sns.amazonaws.com/x.pem",
    ):
        assert not production.allowed(url), url
    for bucket in ("sns.s3.amazonaws.com", "sns.s3-accelerate.amazonaws.com", "sns.s3-website-us-east-1.amazonaws.com",
                   "sns.s3-eu-west-1.amazonaws.com", "sns.s3-external-1.amazonaws.com"):  # fmt: skip
        assert not production.allowed(f"https://{bucket}/SimpleNotificationService-abc.pem"), bucket
        with pytest.raises(WebhookRejected, match="SigningCertURL"):  # refused before any fetch
            production.key(f"https://{bucket}/SimpleNotificationService-abc.pem")
    with pytest.raises(ValueError):
        ses.SnsCertificates.for_local_tests("10.0.0.1", 443, "ca.pem")


def test_ses_without_a_configured_topic_refuses_to_run(sns):
    _server, signer, ctx = sns
    ctx.sns_topics = ()
    with pytest.raises(WebhookNotConfigured, match="sns_topic_arn"):
        verified_events(ses, {}, signer.notification(ses_bounce("bob@example.com")), ctx)


def test_ses_complaint_and_event_publishing_shapes():
    complaint = {
        "notificationType": "Complaint",
        "mail": {"messageId": "m"},
        "complaint": {
            "feedbackId": "f",
            "complaintFeedbackType": "abuse",
            "timestamp": "2026-12-01T10:00:00Z",
            "complainedRecipients": [{"emailAddress": "c@example.com"}],
        },
    }
    published = {**ses_bounce("d@example.com", bounce_type="Transient"), "eventType": "Bounce"}
    del published["notificationType"]
    events = ses.parse_notification(complaint, "sns-1") + ses.parse_notification(published, "sns-2")
    assert [(e.kind, e.email) for e in events] == [("complaint", "c@example.com"), ("soft_bounce", "d@example.com")]
    assert events[0].dedupe_key == "ses:f:c@example.com"


def test_ses_notification_with_a_subject_is_signed_with_it(sns):
    _server, signer, ctx = sns
    body = signer.notification(ses_bounce("sub@example.com"), Subject="Amazon SES Email Event Notification")
    assert [e.email for e in verified_events(ses, {}, body, ctx)] == ["sub@example.com"]
    forged = json.loads(body)
    forged["Subject"] = "changed"
    with pytest.raises(WebhookRejected):
        verified_events(ses, {}, json.dumps(forged).encode(), ctx)


def signed_requests(sns_signer: SnsSigner | None = None):
    """provider -> (env, headers, body) of one signed report that a.b@example.com hard-bounced."""
    sendgrid_signer, mailgun_signer, svix = SendgridSigner(), MailgunSigner(), SvixSigner()
    sendgrid_body = json.dumps([{**SENDGRID_EVENTS[0], "email": "a.b@example.com"}]).encode()
    resend_body = json.dumps({**RESEND_BOUNCE, "data": {**RESEND_BOUNCE["data"], "to": ["a.b@example.com"]}}).encode()
    requests = {
        "postmark": (
            POSTMARK_ENV,
            basic_auth("hook", "s3cret:pw"),
            json.dumps({**POSTMARK_BOUNCE, "Email": "a.b@example.com"}).encode(),
        ),
        "sendgrid": (
            {"BROADSHEET_SENDGRID_WEBHOOK_KEY": sendgrid_signer.public_key},
            sendgrid_signer.sign(sendgrid_body),
            sendgrid_body,
        ),
        "mailgun": (
            {"BROADSHEET_MAILGUN_WEBHOOK_KEY": mailgun_signer.key},
            {},
            mailgun_signer.body({**MAILGUN_FAILED, "recipient": "a.b@example.com"}),
        ),
        "resend": ({"BROADSHEET_RESEND_WEBHOOK_SECRET": svix.secret}, svix.sign(resend_body), resend_body),
    }
    if sns_signer is not None:
        requests["ses"] = (
            {},
            {"x-amz-sns-message-type": "Notification"},
            sns_signer.notification(ses_bounce("a.b@example.com")),
        )
    return requests


@pytest.mark.parametrize("provider", ["postmark", "sendgrid", "mailgun", "resend", "ses"])
def test_handle_records_each_provider_once_and_refuses_a_forged_request(provider, sns, tmp_path):
    from broadsheet.core.config import Config
    from broadsheet.data.store import Store
    from broadsheet.usecases.events.webhooks import handle

    _, sns_signer, sns_context = sns
    env, headers, body = signed_requests(sns_signer)[provider]
    ctx = WebhookContext(env=env, replays=ReplayGuard(), sns_topics=(TOPIC,), certificates=sns_context.certificates)
    with Store.for_project(tmp_path) as store:
        store.add("a.b@example.com")
        # Postmark signs nothing (credentials only) and Mailgun signs timestamp + token, not the body:
        # for them the forgery is a wrong password or another key; for the others, a changed body.
        forged_headers, forged = {
            "postmark": (basic_auth("hook", "guess"), body.replace(b"a.b@example.com", b"x.y@example.com")),
            "mailgun": ({}, MailgunSigner().body({**MAILGUN_FAILED, "recipient": "x.y@example.com"})),
        }.get(provider, (headers, body.replace(b"a.b@example.com", b"x.y@example.com")))
        assert handle(provider, forged_headers, forged, store, config=Config(root=tmp_path), context=ctx) == (
            401,
            "refused",
        )
        assert store.get("x.y@example.com") is None
        status, text = handle(provider, headers, body, store, config=Config(root=tmp_path), context=ctx)
        assert (status, store.get("a.b@example.com").status) == (200, "bounced") and "1 newly suppressed" in text
        events = len(store.events("a.b@example.com"))
        ctx.replays = ReplayGuard()  # even past the replay guard (another process), a repeat changes nothing
        assert handle(provider, headers, body, store, config=Config(root=tmp_path), context=ctx)[0] == 200
        assert len(store.events("a.b@example.com")) == events


def soft_bounces_at(stamp: str, sns_signer: SnsSigner) -> dict:
    """provider -> (env, headers, body) of one signed report that s@example.com soft-bounced at ``stamp``."""
    sendgrid_signer, mailgun_signer, svix = SendgridSigner(), MailgunSigner(), SvixSigner()
    sendgrid_body = json.dumps([{**SENDGRID_EVENTS[1], "email": "s@example.com", "timestamp": stamp}]).encode()
    resend_bounce = {"to": ["s@example.com"], "bounce": {"type": "Transient"}}
    resend_body = json.dumps({**RESEND_BOUNCE, "created_at": stamp, "data": resend_bounce}).encode()
    ses_record = ses_bounce("s@example.com", bounce_type="Transient")
    ses_record["bounce"]["timestamp"] = stamp
    postmark_body = {**POSTMARK_BOUNCE, "Type": "SoftBounce", "Email": "s@example.com", "BouncedAt": stamp}
    mailgun_data = {**MAILGUN_FAILED, "severity": "temporary", "recipient": "s@example.com", "timestamp": stamp}
    return {
        "postmark": (POSTMARK_ENV, basic_auth("hook", "s3cret:pw"), json.dumps(postmark_body).encode()),
        "sendgrid": (
            {"BROADSHEET_SENDGRID_WEBHOOK_KEY": sendgrid_signer.public_key},
            sendgrid_signer.sign(sendgrid_body),
            sendgrid_body,
        ),
        "mailgun": ({"BROADSHEET_MAILGUN_WEBHOOK_KEY": mailgun_signer.key}, {}, mailgun_signer.body(mailgun_data)),
        "resend": ({"BROADSHEET_RESEND_WEBHOOK_SECRET": svix.secret}, svix.sign(resend_body), resend_body),
        "ses": ({}, {}, sns_signer.notification(ses_record)),
    }


@pytest.mark.parametrize("stamp", ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00Z"])
@pytest.mark.parametrize("provider", ["postmark", "sendgrid", "mailgun", "resend", "ses"])
def test_an_event_time_at_the_edge_of_the_calendar_is_stored_not_a_failure(provider, stamp, sns, tmp_path):
    """One odd time must not refuse the provider's whole batch: the event is recorded (soft bounces also
    count those of the window before it)."""
    from broadsheet.core.config import Config
    from broadsheet.data.store import Store
    from broadsheet.usecases.events.webhooks import handle

    env, headers, body = soft_bounces_at(stamp, sns[1])[provider]
    ctx = WebhookContext(env=env, replays=ReplayGuard(), sns_topics=(TOPIC,), certificates=sns[2].certificates)
    with Store.for_project(tmp_path) as store:
        store.add("s@example.com")
        status, text = handle(provider, headers, body, store, config=Config(root=tmp_path), context=ctx)
        assert (status, text) == (200, "1 soft bounce; 0 newly suppressed")
        [event] = [e for e in store.events("s@example.com") if e.kind == "bounced_soft"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event.at)


HOSTILE_BODIES = [
    b"",
    b"\xff\xfe",
    b"null",
    b"[]",
    b"{}",
    b'"text"',
    b"1e999999",
    b'{"signature": "x", "event-data": []}',
    b'{"signature": {"timestamp": [], "token": {}, "signature": "\xc3\xa9\xc3\xa9"}}',
    json.dumps([{"event": ["bounce"], "email": {"a": 1}}]).encode(),
    b'{"Type": "Notification"}',
    json.dumps({"RecordType": "Bounce", "Type": ["HardBounce"], "Email": None}).encode(),
    b"[" * 5000 + b"]" * 5000,
]
HOSTILE_HEADERS = [
    {},
    {"Authorization": "Basic \u00e9\u00e9"},
    {"X-Twilio-Email-Event-Webhook-Signature": "\u00e9", "X-Twilio-Email-Event-Webhook-Timestamp": "\u00e9"},
    {"svix-id": "\u00e9", "svix-timestamp": "x", "svix-signature": "v1,\u00e9 v1"},
]


@pytest.mark.parametrize("provider", ["postmark", "sendgrid", "mailgun", "resend", "ses"])
def test_hostile_requests_are_answered_never_raised(provider, tmp_path):
    from broadsheet.core.config import Config
    from broadsheet.data.store import Store
    from broadsheet.usecases.events.webhooks import handle

    env = {
        **POSTMARK_ENV,
        "BROADSHEET_SENDGRID_WEBHOOK_KEY": SendgridSigner().public_key,
        "BROADSHEET_MAILGUN_WEBHOOK_KEY": "k",
        "BROADSHEET_RESEND_WEBHOOK_SECRET": SvixSigner().secret,
    }
    ctx = WebhookContext(env=env, replays=ReplayGuard(), sns_topics=(TOPIC,))
    with Store.for_project(tmp_path) as store:
        for body in HOSTILE_BODIES:
            for headers in HOSTILE_HEADERS:
                status, _ = handle(provider, headers, body, store, config=Config(root=tmp_path), context=ctx)
                assert status in (400, 401), (body[:40], headers)
        assert store.count() == 0


@pytest.mark.parametrize("stamp", ["nan", "inf", "-inf", "", "12abc"])
def test_a_signed_timestamp_that_is_no_finite_number_is_refused(stamp):
    """float('nan') compares false with everything: it would pass any 'too old' check."""
    with pytest.raises(WebhookRejected):
        require_fresh(stamp, time.time())


def test_a_certificate_that_could_not_be_fetched_is_not_fetched_again_at_once(sns):
    """Anyone can name a certificate URL in an unsigned request: a failing one costs one fetch, not one each."""
    server, signer, ctx = sns
    missing = server.url_for("/SimpleNotificationService-missing.pem")
    server.expect_request("/SimpleNotificationService-missing.pem").respond_with_data("gone", status=404)
    forged = SnsSigner(missing, key=signer.key)
    for _ in range(3):
        with pytest.raises(WebhookRejected, match=r"could not be fetched|asked lately"):
            verified_events(ses, {}, forged.notification(ses_bounce("x@example.com")), ctx)
    assert [entry[0].path for entry in server.log].count("/SimpleNotificationService-missing.pem") == 1


def test_a_certificate_out_of_reach_is_a_try_later_never_remembered(sns_host):
    """A network failure is no answer from Amazon: 503 (SNS delivers again; a 4xx would drop the bounce)."""
    _server, signer, ca_file = sns_host
    with refused_port() as port:  # the certificate host, where nothing listens
        gone = SnsSigner(f"https://127.0.0.1:{port}{CERTIFICATE_PATH}", key=signer.key)
        certificates = ses.SnsCertificates.for_local_tests("127.0.0.1", port, ca_file)
        ctx = context({}, sns_topics=(TOPIC,), certificates=certificates)
        for _ in range(2):  # not remembered as missing: each delivery tries again
            with pytest.raises(WebhookUnavailable):
                verified_events(ses, {}, gone.notification(ses_bounce("x@example.com")), ctx)


def test_a_webhook_without_config_finds_the_project_only_from_a_sqlite_store(store_location, tmp_path):
    from broadsheet.data.store import Store
    from broadsheet.usecases.events.webhooks import project_root

    with Store(store_location) as store:  # a PostgreSQL store has no project folder: the config comes from serve
        assert project_root(store) == (tmp_path if store.engine == "sqlite" else None)
